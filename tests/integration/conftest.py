"""Integration tests run against the real parts: the Asterisk the suite starts, Chromium, the
speech and TTS engines. Tests marked `asterisk` share the one Asterisk (fixed ports)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dialer.asterisk.host import AmiCredentials, provision, start
from tests.support.project import PROJECT_ROOT, STATE_DIR


@pytest.fixture(scope="session")
def asterisk() -> Iterator[AmiCredentials]:
    """AMI credentials of our Asterisk, (re)started once so it runs the config in the working tree.

    It is left running after the session: the next one reuses the chroot and restarts it in a second.
    """
    install = provision(PROJECT_ROOT, STATE_DIR)
    yield start(install, PROJECT_ROOT, STATE_DIR)

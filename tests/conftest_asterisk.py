"""Session fixture: a real Asterisk, provisioned and (re)started once per test session.

Register it from the root conftest.py with `pytest_plugins = ["conftest_asterisk"]`
(or import the fixture into a test module).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dialer.asterisk_host import AmiCredentials, provision, start

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = PROJECT_ROOT / "var"


@pytest.fixture(scope="session")
def asterisk() -> Iterator[AmiCredentials]:
    """AMI credentials of our Asterisk, restarted so it runs the config in the working tree.

    It is left running after the session: the next session (or the developer) reuses the
    chroot and restarts it in about a second.
    """
    install = provision(PROJECT_ROOT, STATE_DIR)
    yield start(install, PROJECT_ROOT, STATE_DIR)

"""What DueCall writes is readable by its own user only: checks by stat (tests run as root)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_private(*paths: Path) -> None:
    """Files 0600 and folders 0700 (or tighter): nothing for group or others."""
    modes = {str(p): oct(mode(p)) for p in paths}
    assert all(mode(p) & 0o077 == 0 for p in paths), modes
    assert all(mode(p) & 0o600 == 0o600 for p in paths), modes  # and still usable by the owner


def usual_umask() -> Iterator[None]:
    """The umask a shell usually has; the CLI must not leave its own private umask behind either."""
    old = os.umask(0o022)
    yield
    os.umask(old)

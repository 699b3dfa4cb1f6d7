"""Only the user who runs DueCall may read what it writes.

The database (borrowers, calls, the audit trail), rejects CSVs, recordings, prompts and secrets
(the AMI secret, the carrier's SIP password in the rendered Asterisk config) are made 0600 (files)
and 0700 (folders). The command line sets `PRIVATE_UMASK` for its whole process and the workers and
Asterisk it starts, so every file is created private; the store and the Asterisk host also create
their own files private, so code that uses them without the command line (tests, other programs)
gets the same. Files and folders made by older versions are tightened on start with `tighten`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
FILE_MODE = 0o600
DIR_MODE = 0o700


def set_private_umask() -> int:
    """From now on this process and its children create files 0600, folders 0700; returns the old umask."""
    return os.umask(PRIVATE_UMASK)


def tighten(path: Path) -> None:
    """Take group and other permissions away from an existing file or folder of ours; cheap if none."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(info.st_mode)
    # Someone else's file (a shared folder given in the settings) is not ours to change.
    if info.st_uid == os.geteuid() and mode & PRIVATE_UMASK:
        path.chmod(mode & ~PRIVATE_UMASK)


def create_private(path: Path) -> None:
    """Make sure `path` exists and is private; an existing file keeps its content."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    tighten(path)


def write_private(path: Path, data: str | bytes) -> None:
    """Write `data` (text as UTF-8) to `path`, never readable by others, not even for a moment."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(fd, FILE_MODE)  # O_CREAT's mode applies only to a new file
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)


def make_private_dir(path: Path) -> None:
    """Create `path` (and its parents) 0700 if missing; tighten it if it is there already."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tighten(path)


def tighten_tree(root: Path) -> None:
    """`tighten` every file and folder under root (a small one: Asterisk's state), never following links."""
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            path = Path(folder) / name
            if not path.is_symlink():
                tighten(path)

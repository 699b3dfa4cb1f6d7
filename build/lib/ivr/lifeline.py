"""Worker processes die with the dialer that started them.

Without this, every SIGKILL of the dialer left its speech worker (about 570 MB, holding the
vosk model) running for good. Two guards, started first thing in the worker:

- Linux: `prctl(PR_SET_PDEATHSIG, SIGKILL)`: the kernel kills the worker when its parent dies.
  (Strictly when the parent *thread* that started it ends: the dialer starts its workers from
  the event loop's thread, which lives as long as the dialer.) The parent may have died before
  the call: checked right after it.
- Everywhere: a daemon thread that polls the parent pid, for systems without prctl and as a
  fallback; it also covers a worker busy in native code, which never reads its stdin's EOF.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.5


def die_with_parent(parent_pid: int | None = None) -> None:
    """Arrange for this process to end when `parent_pid` (default: the current parent) ends."""
    expected = os.getppid() if parent_pid is None else parent_pid
    _set_pdeathsig()
    if os.getppid() != expected:  # it died before the guard was up
        os._exit(1)
    threading.Thread(target=_watch, args=(expected,), name="lifeline", daemon=True).start()


def _set_pdeathsig() -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols: libc's prctl among them
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        print(f"lifeline: prctl failed: {os.strerror(errno)}", file=sys.stderr)  # the poller remains


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_SECONDS)
    os._exit(1)  # orphaned: reparented to init or a subreaper

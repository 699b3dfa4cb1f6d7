"""Workers die with the dialer (issue 9 item 18): a SIGKILL of the dialer used to leave its speech
worker (~570 MB) and multiprocessing's resource tracker running for good, one more pair per restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

DIALER_SIDE = textwrap.dedent(
    """
    import asyncio
    from ivr.speech import Recognizer, find_model

    async def main():
        recognizer = Recognizer(find_model(None), workers=2)
        await recognizer.start()
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def _children(pid: int) -> list[int]:
    """Every live process whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _stat(int(entry.name))[1] == pid:
            found.append(int(entry.name))
    return found


def _stat(pid: int) -> tuple[str, int]:
    """(state, parent pid) of `pid`; ("gone", 0) when it no longer exists."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone", 0
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    return _stat(pid)[0] not in ("gone", "Z", "X")  # a zombie is dead, only not yet reaped


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_the_dialer_takes_its_speech_workers_with_it() -> None:
    dialer = subprocess.Popen(
        [sys.executable, "-c", DIALER_SIDE], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
    )
    children: list[int] = []
    try:
        assert dialer.stdout is not None
        assert dialer.stdout.readline().strip() == "ready"
        children += _children(dialer.pid)
        workers = [p for p in children if "ivr.speech_worker" in _cmdline(p)]
        assert len(workers) == 2, [_cmdline(p) for p in children]
        assert not [p for p in children if "resource_tracker" in _cmdline(p)]  # before: one
        dialer.send_signal(signal.SIGKILL)
        dialer.wait(10)
        started = time.monotonic()
        # Before: still running a minute later (and for good).
        assert _wait_gone(children, 5.0) == [], [_cmdline(p) for p in children]
        assert time.monotonic() - started < 2.0
    finally:
        dialer.kill()
        dialer.wait(10)
        dialer.stdout.close()
        for pid in [p for p in children if _alive(p)]:  # the guards failed: clean up
            os.kill(pid, signal.SIGKILL)


BUSY_PARENT = textwrap.dedent(
    """
    import os, subprocess, sys
    child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid())])
    print(child.pid, flush=True)
    child.wait()
    """
)
# Each guard alone, in a child busy in a long computation (it never reads a stdin EOF):
PDEATHSIG_ONLY = "import ivr.lifeline as l; l._set_pdeathsig(); sum(i for i in range(10**12))"
WATCH_ONLY = (
    "import sys, threading, ivr.lifeline as l; "
    "threading.Thread(target=l._watch, args=(int(sys.argv[1]),)).start(); "
    "sum(i for i in range(10**12))"
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl and /proc")
@pytest.mark.parametrize("guard", [PDEATHSIG_ONLY, WATCH_ONLY], ids=["pdeathsig", "parent-watch"])
def test_each_guard_alone_ends_a_busy_orphan(guard: str) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", BUSY_PARENT, guard],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        time.sleep(0.3)
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _wait_gone([child], 3.0) == []
    finally:
        parent.kill()
        parent.wait(10)
        parent.stdout.close()
        if child and _alive(child):  # the guard failed: do not leave it spinning
            os.kill(child, signal.SIGKILL)

"""sipp (Debian's sip-tester) as the carrier on loopback: start it as a UAS, stop it, read what it got.

The scenario (tests/support/sipp/carrier_uas.xml) answers, rings, is busy or fails by the dialled
number's last four digits. Every SIP message sipp receives is traced to a file; `invites()` counts
the distinct calls (Call-IDs) each number got, so a test can prove no call was placed twice.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parent / "sipp"
CARRIER_SCENARIO = SCENARIOS / "carrier_uas.xml"
HOST = "127.0.0.1"
SIP_PORT = 5170  # the carrier's SIP port (5170-5179 are this suite's)
MEDIA_PORT = 5174  # its RTP port
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
_INVITE = re.compile(r"^INVITE sip:\+?(\d+)@", re.MULTILINE)
_CALL_ID = re.compile(r"^Call-ID:\s*(\S+)", re.MULTILINE | re.IGNORECASE)
# sipp's trace puts a dashed line with the time before each message it sent or received.
_RECEIVED = re.compile(r"^(?:UDP|TCP) message received \[\d+\] bytes :$", re.MULTILINE)


def sipp_binary() -> str | None:
    return shutil.which("sipp")


@dataclass(frozen=True)
class SippRun:
    process: subprocess.Popen[bytes]
    messages: Path  # -message_file: every SIP message sent and received
    screen: Path  # its stdout (the statistics screens)
    port: int

    def invites(self) -> dict[str, int]:
        """Distinct calls (Call-IDs of initial INVITEs, retransmissions counted once) per number."""
        calls: set[tuple[str, str]] = set()
        for message in self.received():
            number, call_id = _INVITE.search(message), _CALL_ID.search(message)
            if number and call_id:
                calls.add((number.group(1), call_id.group(1)))
        return dict(Counter(number for number, _ in calls))

    def received(self) -> list[str]:
        """The SIP messages sipp received, in order (from its trace file)."""
        if not self.messages.exists():
            return []
        text = self.messages.read_text(encoding="utf-8", errors="replace")
        parts = _RECEIVED.split(text)[1:]
        return [part.split("\n-----", 1)[0].strip() for part in parts]


def _udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return True
    return False


def start(work_dir: Path, scenario: Path = CARRIER_SCENARIO, port: int = SIP_PORT) -> SippRun:
    """sipp as a UAS on HOST:port, once its SIP socket is bound (it binds before it is ready)."""
    binary = sipp_binary()
    if binary is None:
        raise RuntimeError("sipp is not installed (Debian package sip-tester)")
    if _udp_port_taken(port):
        raise RuntimeError(f"UDP port {port} is taken: another sipp or SIP peer runs there")
    messages, screen = work_dir / "sipp-messages.log", work_dir / "sipp-screen.log"
    argv = [
        binary, "-sf", str(scenario), "-i", HOST, "-p", str(port), "-mi", HOST, "-mp", str(MEDIA_PORT),
        "-nostdin", "-trace_msg", "-message_file", str(messages),
        "-trace_err", "-error_file", str(work_dir / "sipp-errors.log"),
    ]  # fmt: skip
    with screen.open("wb") as out:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=work_dir
        )
    run = SippRun(process, messages, screen, port)
    deadline = time.monotonic() + START_TIMEOUT
    while not _udp_port_taken(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(run)
            raise RuntimeError(f"sipp did not listen on {port}: {screen.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)
    return run


def stop(run: SippRun) -> None:
    """SIGUSR1 asks sipp to quit softly (it writes its files); SIGKILL if it will not."""
    if run.process.poll() is None:
        run.process.send_signal(signal.SIGUSR1)
        try:
            run.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            run.process.kill()
            run.process.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def carrier(work_dir: Path, port: int = SIP_PORT) -> Iterator[SippRun]:
    run = start(work_dir, port=port)
    try:
        yield run
    finally:
        stop(run)

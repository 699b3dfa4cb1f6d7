"""Call recordings as evidence: sealing (hash, size, duration) and finding what retention allows to purge.

Asterisk's MixMonitor keeps writing a call's WAV for a moment after the hangup
the dialer hears about, and a hash of a half-written file later looks like
tampering. So a recording is sealed only once it is closed, by this rule:

1. both sizes in the header agree with the file's length. Asterisk's format_wav
   writes zeros there at open and the real sizes only when it closes the file,
   in two separate writes: the RIFF size at offset 4, then the data chunk's size
   (offset 40). Checking the RIFF size alone sealed 3 of 315 recordings between
   the two writes;
2. and the file has not changed for `QUIET_SECONDS` (its size and mtime), so a
   writer still busy after a header update is never caught mid-way.

The AMI `MixMonitorStop` event is no substitute: it is sent only for an explicit
StopMixMonitor, not at hangup, which is how a call's recording usually ends (the
MixMonitor thread closes the file a moment after the channel is gone).
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
import wave
from dataclasses import dataclass
from pathlib import Path

from dialer.core.digest import sha256_file

log = logging.getLogger(__name__)
QUIET_SECONDS = 1.0  # a closed recording has not changed for this long


@dataclass(frozen=True, slots=True)
class RecordingFacts:
    path: str
    kind: str  # call: the whole call (MixMonitor); reply: one utterance the borrower spoke
    sha256: str
    bytes: int
    duration_ms: int
    complete: bool = True  # False: sealed at the deadline, the header never showed it closed


def header_final(path: Path) -> bool:
    """True when the WAV's RIFF size and its data chunk's size both match the file's length."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return False
    if struct.unpack_from("<I", head, 4)[0] + 8 != size:
        return False
    data = _data_chunk(head)
    return data is not None and data[0] + 8 + data[1] in (size, size - 1)  # odd data: one pad byte


def _data_chunk(head: bytes) -> tuple[int, int] | None:
    """(offset, declared size) of the `data` chunk, walking the chunks after `WAVE`."""
    at = 12
    while at + 8 <= len(head):
        name, length = head[at : at + 4], struct.unpack_from("<I", head, at + 4)[0]
        if name == b"data":
            return at, length
        at += 8 + length + (length & 1)
    return None


def closed(path: Path, now: float | None = None) -> bool:
    """The seal's rule (see the module doc): header final and no change for QUIET_SECONDS."""
    if not header_final(path):
        return False
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return False
    return (time.time() if now is None else now) - mtime >= QUIET_SECONDS


def duration_ms(path: Path) -> int:
    try:
        with wave.open(str(path), "rb") as w:
            return round(1000 * w.getnframes() / w.getframerate())
    except (wave.Error, EOFError, OSError):
        return 0


def facts(path: Path, kind: str, complete: bool = True) -> RecordingFacts:
    return RecordingFacts(
        str(path), kind, sha256_file(path), path.stat().st_size, duration_ms(path), complete
    )


def call_files(recording_base: str) -> tuple[Path, list[Path]]:
    """The call's WAV and its reply utterances, from the attempt's recording path (no extension)."""
    base = Path(recording_base)
    replies = base.with_name(f"{base.name}-replies")
    found = sorted(replies.glob("*.wav")) if replies.is_dir() else []
    return base.with_suffix(".wav"), found


def seal_now(recording_base: str, force: bool = False) -> list[RecordingFacts] | None:
    """The call's recordings hashed, if Asterisk has closed them already; None if it hasn't yet
    (with `force`: hashed as they are, the call's file marked incomplete).

    Blocking: run it in a thread. Often the file is closed by the time the call's result is ready,
    so the recording can be stored with the call's outcome in one transaction; if not, `seal`.
    """
    wav, replies = call_files(recording_base)
    done = not wav.exists() or closed(wav)
    if not done and not force:
        return None
    found = [facts(wav, "call", done)] if wav.exists() else []
    return found + [facts(reply, "reply") for reply in replies]


async def seal(recording_base: str, timeout: float, poll: float = 0.2) -> list[RecordingFacts]:
    """Wait until Asterisk has closed the call's recording, then hash it and the replies (in a
    thread); at the deadline, hash it as it is."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (found := await asyncio.to_thread(seal_now, recording_base)) is None:
        if loop.time() >= deadline:
            log.warning("%s.wav: still open after %.0f s; hashing it as it is", recording_base, timeout)
            return await asyncio.to_thread(_forced, recording_base)
        await asyncio.sleep(poll)
    return found


def _forced(recording_base: str) -> list[RecordingFacts]:
    found = seal_now(recording_base, force=True)
    assert found is not None  # force never waits
    return found

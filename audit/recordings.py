"""Call recordings as evidence: sealing (hash, size, duration) and finding what retention allows to purge.

Asterisk's MixMonitor keeps writing a call's WAV for a moment after the hangup
the dialer hears about. The file is complete when its RIFF header carries the
final sizes (format_wav writes them on close), so the seal waits for that
before hashing: a hash of a half-written file would later look like tampering.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import struct
import time
import wave
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class RecordingFacts:
    path: str
    kind: str  # call: the whole call (MixMonitor); reply: one utterance the borrower spoke
    sha256: str
    bytes: int
    duration_ms: int
    complete: bool = True  # False: sealed at the deadline, the header never showed it closed


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def header_final(path: Path) -> bool:
    """True when the WAV's RIFF size matches the file: the writer has closed it."""
    try:
        with path.open("rb") as f:
            head = f.read(12)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return False
    riff = struct.unpack("<I", head[4:8])[0]
    return riff + 8 == size and size > 44


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


def _settled(path: Path) -> bool:
    # The header alone could match an empty file just opened; an old mtime rules that out.
    if not header_final(path):
        return False
    return path.stat().st_size > 44 or time.time() - path.stat().st_mtime > 2


def seal_now(recording_base: str, force: bool = False) -> list[RecordingFacts] | None:
    """The call's recordings hashed, if Asterisk has closed them already; None if it hasn't yet
    (with `force`: hashed as they are, the call's file marked incomplete).

    Blocking: run it in a thread. Usually the file is closed by the time the call's last event
    arrives, so the result can be stored with the call's outcome in one transaction.
    """
    wav, replies = call_files(recording_base)
    closed = not wav.exists() or _settled(wav)
    if not closed and not force:
        return None
    found = [facts(wav, "call", closed)] if wav.exists() else []
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

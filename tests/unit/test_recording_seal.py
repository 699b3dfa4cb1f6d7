"""Sealing a call's recording only once Asterisk has closed it (issue 9 item 16).

Asterisk's format_wav writes a 44-byte header with zero sizes at open, appends audio, and on
close writes the RIFF size (offset 4), seeks, and writes the data size (offset 40): two writes.
`AsteriskLikeWav` reproduces that order so the seal can be caught between them.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import threading
import time
from pathlib import Path

import pytest

from dialer.store.evidence import QUIET_SECONDS, closed, header_final, seal, seal_now

RATE = 8000


class AsteriskLikeWav:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = path.open("wb", buffering=0)
        fmt = struct.pack("<HHIIHH", 1, 1, RATE, 2 * RATE, 2, 16)
        self.f.write(b"RIFF" + struct.pack("<I", 0) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt)
        self.f.write(b"data" + struct.pack("<I", 0))
        self.audio = 0

    def write_audio(self, seconds: float) -> None:
        samples = int(RATE * seconds)
        self.f.write(struct.pack(f"<{samples}h", *((i * 37) % 2000 - 1000 for i in range(samples))))
        self.audio += 2 * samples

    def write_riff_size(self) -> None:
        self.f.seek(4)
        self.f.write(struct.pack("<I", 36 + self.audio))

    def write_data_size_and_close(self) -> None:
        self.f.seek(40)
        self.f.write(struct.pack("<I", self.audio))
        self.f.close()


def _age(path: Path, seconds: float) -> None:
    """Pretend the last write was `seconds` ago (instead of sleeping through the quiet period)."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_between_the_two_size_writes_the_file_is_not_closed(tmp_path: Path) -> None:
    wav = tmp_path / "rec" / "1.wav"
    writer = AsteriskLikeWav(wav)
    writer.write_audio(1.0)
    assert not header_final(wav)  # sizes still zero
    writer.write_riff_size()
    _age(wav, 10)
    # Before: the RIFF size alone matched the length and this file was sealed, half-written
    # (its data size still 0); `audit verify` then saw a different file and reported tampering.
    assert not header_final(wav)
    assert seal_now(str(tmp_path / "rec" / "1")) is None
    writer.write_data_size_and_close()
    assert header_final(wav)


def test_a_final_header_must_also_have_been_quiet(tmp_path: Path) -> None:
    wav = tmp_path / "rec" / "2.wav"
    writer = AsteriskLikeWav(wav)
    writer.write_audio(0.5)
    writer.write_riff_size()
    writer.write_data_size_and_close()
    assert header_final(wav) and not closed(wav)  # just written
    assert seal_now(str(tmp_path / "rec" / "2")) is None
    assert closed(wav, now=wav.stat().st_mtime + QUIET_SECONDS)
    _age(wav, QUIET_SECONDS + 0.1)
    found = seal_now(str(tmp_path / "rec" / "2"))
    assert found is not None and found[0].complete
    assert found[0].sha256 == hashlib.sha256(wav.read_bytes()).hexdigest()
    assert (found[0].bytes, found[0].duration_ms) == (44 + 8000, 500)


def test_a_padded_odd_data_chunk_is_closed(tmp_path: Path) -> None:
    wav = tmp_path / "odd.wav"
    fmt = struct.pack("<HHIIHH", 1, 1, RATE, RATE, 1, 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", 3) + b"abc\0"
    wav.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert header_final(wav)


@pytest.mark.parametrize("pause", [0.3])
async def test_seal_waits_for_the_whole_close_and_hashes_the_final_file(tmp_path: Path, pause: float) -> None:
    base = tmp_path / "rec" / "3"
    wav = base.with_suffix(".wav")
    writer = AsteriskLikeWav(wav)
    final: list[bytes] = []

    def asterisk() -> None:  # MixMonitor's thread, finishing after the dialer saw the hangup
        for _ in range(5):
            writer.write_audio(0.1)
            time.sleep(0.05)
        writer.write_riff_size()
        time.sleep(pause)  # a busy machine between the two header writes
        writer.write_data_size_and_close()
        final.append(wav.read_bytes())

    thread = threading.Thread(target=asterisk)
    thread.start()
    try:
        found = await seal(str(base), timeout=10, poll=0.02)
    finally:
        await asyncio.to_thread(thread.join)
    assert found[0].complete
    assert found[0].sha256 == hashlib.sha256(final[0]).hexdigest()


async def test_at_the_deadline_an_open_file_is_hashed_and_marked_incomplete(tmp_path: Path) -> None:
    base = tmp_path / "rec" / "4"
    writer = AsteriskLikeWav(base.with_suffix(".wav"))
    writer.write_audio(0.2)
    writer.write_riff_size()
    found = await seal(str(base), timeout=0.3, poll=0.05)
    assert not found[0].complete
    writer.write_data_size_and_close()

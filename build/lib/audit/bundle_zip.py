"""Reading a bundle ZIP that may be hostile: bounded entries, sizes and memory, no duplicates.

A ZIP's header sizes are the sender's word: a 300 KB file can declare anything and inflate to
gigabytes. So the entry count and the central directory are bounded before `zipfile` parses
them, each declared size is bounded, and every read counts the bytes it actually inflates and
stops at the smaller of the declared size and the cap.
"""

from __future__ import annotations

import hashlib
import posixpath
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from audit.bundle import BundleError

EVIDENCE = "evidence.json"
MAX_ENTRIES = 10_000
MAX_DIRECTORY = 2 << 20  # central directory bytes: 46 and a name per entry; zipfile makes an object each
MAX_EVIDENCE = 32 << 20  # evidence.json: a long call's events are a few hundred KB
MAX_ENTRY = 2 << 30  # one recording: hours of 8 kHz audio
MAX_TOTAL = 8 << 30  # every entry together
CHUNK = 1 << 20

_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"


@dataclass
class BundleZip:
    zf: zipfile.ZipFile
    entries: dict[str, zipfile.ZipInfo]
    inflated: int = 0  # bytes actually read so far, against MAX_TOTAL

    def read(self, name: str, cap: int) -> bytes:
        return b"".join(self._chunks(name, cap))

    def sha256(self, name: str) -> str:
        digest = hashlib.sha256()
        for chunk in self._chunks(name, MAX_ENTRY):
            digest.update(chunk)
        return digest.hexdigest()

    def _chunks(self, name: str, cap: int) -> Iterator[bytes]:
        info = self.entries.get(entry_key(name))
        if info is None:
            raise BundleError(f"{name}: listed in evidence.json but not in the ZIP")
        limit = min(cap, info.file_size)
        seen = 0
        try:
            with self.zf.open(info) as f:
                while chunk := f.read(min(CHUNK, limit - seen + 1)):
                    seen += len(chunk)
                    self.inflated += len(chunk)
                    if seen > limit:
                        raise BundleError(
                            f"{name}: inflates past {limit} bytes (its header says {info.file_size})"
                        )
                    if self.inflated > MAX_TOTAL:
                        raise BundleError(f"the ZIP inflates past {MAX_TOTAL} bytes in all")
                    yield chunk
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise BundleError(f"{name}: cannot be read: {exc}") from exc


@contextmanager
def open_bundle(path: Path) -> Iterator[BundleZip]:
    """The ZIP with its entries checked (count, duplicates, declared sizes), else BundleError."""
    try:
        with path.open("rb") as fp:
            _bound_directory(fp, path)
            with zipfile.ZipFile(fp) as zf:
                yield BundleZip(zf, _entries(zf))
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise BundleError(f"{path}: not a ZIP file: {exc}") from exc
    except OSError as exc:
        raise BundleError(f"{path}: cannot be read: {exc}") from exc


def _bound_directory(fp: BinaryIO, path: Path) -> None:
    """Refuse a ZIP whose end record announces too many entries or too big a directory.

    zipfile reads the whole central directory and makes an object per entry before anything
    else could be checked, so this reads the end record (and its ZIP64 form) first.
    """
    size = fp.seek(0, 2)
    tail_at = max(0, size - (1 << 16) - 22)
    fp.seek(tail_at)
    tail = fp.read()
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) < at + 22:
        raise BundleError(f"{path}: not a ZIP file (no end of central directory)")
    count, directory = struct.unpack("<xxxxxxxxxxHI", tail[at : at + 16])
    locator = tail[at - 20 : at] if at >= 20 else b""
    if locator.startswith(_ZIP64_LOCATOR):
        # zipfile reads the ZIP64 record just before the locator (not where the locator points).
        fp.seek(max(0, tail_at + at - 20 - 56))
        record = fp.read(56)
        if len(record) < 56:
            raise BundleError(f"{path}: not a ZIP file (ZIP64 end record cut short)")
        count, directory = struct.unpack("<QQ", record[32:48])
    if count > MAX_ENTRIES:
        raise BundleError(f"{path}: {count} entries (at most {MAX_ENTRIES})")
    if directory > MAX_DIRECTORY:
        raise BundleError(f"{path}: central directory of {directory} bytes (at most {MAX_DIRECTORY})")


def entry_key(name: str) -> str:
    """One spelling per entry, so `./evidence.json` and `evidence.json` count as the same one."""
    return posixpath.normpath(name.replace("\\", "/").lstrip("/"))


def _entries(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise BundleError(f"{len(infos)} entries (at most {MAX_ENTRIES})")
    found: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        key = entry_key(info.filename)
        if key in found:
            raise BundleError(f"{info.filename}: appears twice in the ZIP (which one is the evidence?)")
        cap = MAX_EVIDENCE if key == EVIDENCE else MAX_ENTRY
        if info.file_size > cap:
            raise BundleError(f"{info.filename}: declares {info.file_size} bytes (at most {cap})")
        total += info.file_size
        found[key] = info
    if total > MAX_TOTAL:
        raise BundleError(f"entries declare {total} bytes in all (at most {MAX_TOTAL})")
    if EVIDENCE not in found:
        raise BundleError(f"no {EVIDENCE} in the ZIP: not an evidence bundle")
    return found

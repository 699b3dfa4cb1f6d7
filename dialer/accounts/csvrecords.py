"""Read a CSV file one record at a time, in bounded memory.

``csv.reader`` is handed whole physical lines, so a file that is one 2 GB line would be read into
memory at once, and one field over ``csv.field_size_limit()`` (128 KiB by default) stopped the whole
file. Here the file is read in pieces and each record (one row; several lines when a quoted field
holds line breaks) may take at most :data:`MAX_RECORD_BYTES`. A longer record is cut: the caller gets
the fields of its first bytes and a ``problem``; the rest of the line it was cut in is skipped and
reading goes on with the next line. Line ends are those of universal newlines (``\\n``, ``\\r\\n``, a
lone ``\\r``), as the csv module expects.

:class:`ImportFileError` is raised for a file that is not UTF-8 text, is UTF-16 or an Excel workbook,
or has a quote that is never closed (it runs to the end of the file).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from dialer.core.errors import ImportFileError

MAX_RECORD_BYTES = 1 << 20
_PIECE = 64 << 10  # read size; a longer line is read in several pieces
# csv's own limit must not cut a field before our record bound does: raised (never lowered), once.
_CSV_FIELD_LIMIT = MAX_RECORD_BYTES + _PIECE
_LINE_ENDS = (b"\n", b"\r")


class Record(NamedTuple):  # a tuple, not a frozen dataclass: one is made per row, twice per import
    """One CSV record: the lines it starts and ends on (the first line is 1), and its fields."""

    line: int
    end: int
    fields: list[str]
    problem: str = ""  # why the record could not be read whole ("" when it was)


class _RecordTooLong(Exception):
    """Raised through csv.reader by the line source when a record passes the bound."""


def read_records(path: Path, handle: io.BufferedReader) -> Iterator[Record]:
    """Every record of the file open in `handle`, in order (blank lines give empty records)."""
    _check_start(path, handle.peek(4)[:4])
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    lines = _Lines(path, handle)
    reader = csv.reader(lines)  # it starts afresh at each record, even after an exception
    while True:
        lines.begin_record()
        try:
            fields = next(reader)
        except StopIteration:
            return
        except _RecordTooLong:
            problem = f"longer than {MAX_RECORD_BYTES} bytes (only its start was read)"
            yield Record(lines.first, lines.last, _fields_of(lines.taken()), problem)
            continue
        except csv.Error as exc:  # not expected with whole lines; never let it stop the file
            yield Record(lines.first, lines.last, _fields_of(lines.taken()), f"not readable as CSV ({exc})")
            continue
        if lines.open_at_end:
            raise ImportFileError(
                path, f'line {lines.first}: a quote (") is left open: this record runs to the end of the file'
            )
        yield Record(lines.first, lines.last, fields)


def _fields_of(text: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(text, newline="")), [])
    except csv.Error:
        return []


def _check_start(path: Path, start: bytes) -> None:
    if start.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportFileError(path, "the file is UTF-16; save it as CSV UTF-8")
    if start.startswith(b"PK\x03\x04"):
        raise ImportFileError(path, "this is an Excel workbook (.xlsx), not CSV; save it as CSV UTF-8")


def _pieces(handle: io.BufferedReader) -> Iterator[bytes]:
    """The file's lines with their ends; a line longer than _PIECE comes in several pieces."""
    rest = b""
    while block := handle.read(_PIECE):
        lines = (rest + block).splitlines(keepends=True)  # bytes: \n, \r\n and \r only, as csv expects
        rest = b"" if lines[-1][-1:] == b"\n" else lines.pop()  # a line, or a \r, to be continued
        yield from lines
        if len(rest) > _PIECE:
            cut = len(rest) - 1 if rest[-1:] == b"\r" else len(rest)  # a \r waits for a \n
            yield rest[:cut]
            rest = rest[cut:]
    if rest:
        yield rest


class _Lines:
    """The file's physical lines for csv.reader, decoded; numbers them and bounds each record."""

    def __init__(self, path: Path, handle: io.BufferedReader) -> None:
        self._path = path
        self._pieces = _pieces(handle)
        self._line = 0  # the number of the last line read
        self._taken: list[str] = []  # the lines of the record being read
        self._budget = MAX_RECORD_BYTES
        self.first = self.last = 0  # the lines of the record being read
        self.open_at_end = False

    def begin_record(self) -> None:
        self._taken, self._budget = [], MAX_RECORD_BYTES
        self.first = self.last = self._line + 1

    def taken(self) -> str:
        return "".join(self._taken)

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        data = next(self._pieces, b"")
        if not data.endswith(_LINE_ENDS) or len(data) > self._budget:  # not the usual whole short line
            if not data:
                # csv asks for more of a record only while inside a quoted field.
                self.open_at_end = bool(self._taken)
                raise StopIteration
            data = self._long_line(data)
        self._line += 1
        self.last = self._line
        self._budget -= len(data)
        try:
            text = data.decode()
        except UnicodeDecodeError:
            raise ImportFileError(self._path, _not_utf8_message(data, self._line)) from None
        if self._line == 1:
            text = text.removeprefix("\ufeff")
        self._taken.append(text)
        return text

    def _long_line(self, first: bytes) -> bytes:
        """The rest of a line read in pieces; past the budget it is only measured, kept no further,
        and the record is given up (_RecordTooLong) once the line is read to its end."""
        parts: list[bytes] = []
        size = 0
        for piece in itertools.chain([first], self._pieces):
            size += len(piece)
            if size <= self._budget:
                parts.append(piece)
            if piece.endswith(_LINE_ENDS):
                break
        if size <= self._budget:
            return b"".join(parts)
        self._line += 1
        self.last = self._line
        self._taken.append(self._start_of(b"".join(parts)))
        raise _RecordTooLong

    def _start_of(self, data: bytes) -> str:
        """The text of a line's first bytes (the last character may be cut)."""
        try:
            text, _ = codecs.utf_8_decode(data, "strict", False)
        except UnicodeDecodeError:
            raise ImportFileError(self._path, _not_utf8_message(data, self._line)) from None
        return text.removeprefix("\ufeff") if self._line == 1 else text


def _not_utf8_message(data: bytes, line: int) -> str:
    message = f"the file is not UTF-8 (first bad byte on line {line})"
    try:
        data.decode("gb18030")
    except UnicodeDecodeError:
        return f"{message}; save it as CSV UTF-8"
    return f"{message}; it looks like GBK/GB18030 (Excel's Chinese default): save it as CSV UTF-8"

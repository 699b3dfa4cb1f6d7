"""The lender's own columns in a borrowers file (`product`, `risk_band` ...), kept per account.

A contact strategy's segments match on them and its arms are stratified by them (docs/strategy.md),
so they are kept as text, never guessed at: a header cell that cannot be a column name, a name the
strategy computes itself, or more columns than :data:`MAX_EXTRA_COLUMNS` refuse the whole file at
the header, before any row is read. A value is checked per row (`fields.parse_column_value`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from dialer.accounts.fields import FieldError, parse_column_value, shown
from dialer.core.errors import ImportFileError

MAX_EXTRA_COLUMNS = 32
# What a strategy computes for each account (`where` on them means these, never the lender's).
COMPUTED = ("arm", "balance", "bucket", "currency", "dpd", "locale")
# The rejects file's own columns: a lender's column of that name would be lost from a rejects file.
REJECTS_FILE = ("row_number", "reason")
# ASCII letters only, checked before lower-casing: "K" (U+212A KELVIN SIGN) lower-cases to "k".
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_LISTED = 5  # bad header cells named in one message


def extra_columns(
    path: Path, cells: Sequence[str], known: Collection[str], from_rejects: bool
) -> dict[str, int]:
    """Name -> position of each named header cell that is not a `known` column.

    A rejects file's `row_number` and `reason` are not the lender's columns: skipped."""
    skip = set(known) | (set(REJECTS_FILE) if from_rejects else set())
    count = sum(1 for cell in cells if _named(cell) and cell.strip().lower() not in skip)
    if count > MAX_EXTRA_COLUMNS:  # counted first: a 10,000-column header costs no more than this
        raise ImportFileError(
            path, f"line 1 (the header): {count} columns besides the known ones; at most {MAX_EXTRA_COLUMNS}"
        )
    extras: dict[str, int] = {}
    bad: list[str] = []
    for position, cell in enumerate(cells):
        name = cell.strip().lower()
        if not name or name in skip:
            continue
        if not _NAME_RE.fullmatch(cell.strip()):
            bad.append(f"column {position + 1} ({shown(cell.strip())})")
        elif name in extras:
            raise ImportFileError(
                path, f"column {name!r} appears twice (columns {extras[name] + 1} and {position + 1})"
            )
        else:
            extras[name] = position
    _refuse_names(path, bad, extras)
    return extras


def _named(cell: str) -> bool:
    return bool(cell.strip())


def _refuse_names(path: Path, bad: list[str], extras: Mapping[str, int]) -> None:
    if bad:
        more = f" and {len(bad) - _LISTED} more" if len(bad) > _LISTED else ""
        raise ImportFileError(
            path,
            f"line 1 (the header): {', '.join(bad[:_LISTED])}{more}: not a column name "
            "(a letter, then letters, digits or _, at most 64; e.g. risk_band)",
        )
    for name, position in extras.items():
        if name in COMPUTED:
            raise ImportFileError(
                path,
                f"line 1 (the header): column {position + 1} ({name!r}) is a name the contact strategy "
                f"computes for each account ({', '.join(COMPUTED)}); rename the column",
            )
        if name in REJECTS_FILE:
            raise ImportFileError(
                path,
                f"line 1 (the header): column {position + 1} ({name!r}) is a column of the rejects file "
                f"({' and '.join(REJECTS_FILE)}); rename the column",
            )


def unnamed_columns(cells: Sequence[str]) -> tuple[int, ...]:
    """Positions of empty header cells (Excel often writes a few after the last column)."""
    return tuple(position for position, cell in enumerate(cells) if not _named(cell))


def row_columns(
    fields: Sequence[str], extras: Mapping[str, int], unnamed: Sequence[int]
) -> tuple[tuple[str, str], ...]:
    """The row's kept values, (name, value) in header order; an empty cell is no value.

    A value under a column with no name cannot be kept under any name, so it is a reject too."""
    problems: list[str] = []
    for position in unnamed:  # in order: a row costs at most its own width, however wide the header
        if position >= len(fields):
            break
        if fields[position].strip():
            problems.append(f"column {position + 1}: a value under no name (name the column in the header)")
    kept: list[tuple[str, str]] = []
    for name, position in extras.items():
        try:
            value = parse_column_value(name, fields[position] if position < len(fields) else "")
        except FieldError as exc:
            problems.append(str(exc))
            continue
        if value:
            kept.append((name, value))
    if problems:
        raise FieldError("; ".join(problems))
    return tuple(kept)

"""Plain SQL on a test database file beside the store: for bulk test data and for tampering.

The code under test never does this (every write goes through the store); tests do, to build
data fast or to break the chain on purpose.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def execute(db: Path, sql: str, params: Sequence[Any] = ()) -> None:
    with sqlite3.connect(db) as conn:  # commits on leaving the block
        conn.execute(sql, params)
    conn.close()


def executemany(db: Path, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    with sqlite3.connect(db) as conn:
        conn.executemany(sql, rows)
    conn.close()

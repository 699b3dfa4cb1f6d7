"""PostgreSQL's copies of SQLite's functions (migrations_pg/0018_report_functions.sql) give SQLite's
results, value for value, on what the reports pass them (and edges around it)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from dialer.store.postgres import PostgresStore
from tests.support.postgres import postgres_db, postgres_server

__all__ = ["postgres_db", "postgres_server"]  # the fixtures

YEARS = [0, 1, 2, 4, 99, 100, 400, 1582, 1600, 1899, 1900, 1970, 2000, 2024, 2025, 2026, 2027, 2100, 9999]
# Every month and day of those years, and the months and days just out of range (00, 13, 32).
DATES = [f"{y:04d}-{m:02d}-{d:02d}" for y in YEARS for m in range(14) for d in range(33)]


@pytest.fixture
async def pg(postgres_db: str) -> AsyncIterator[PostgresStore]:
    store = await PostgresStore.open(postgres_db)
    yield store
    await store.close()


async def _values(pg: PostgresStore, sql: str, rows: Sequence[Sequence[Any]]) -> list[Any]:
    """The one value of `sql` (its column `v`) for each row of parameters."""
    found = []
    for row in rows:
        one = await pg.fetch_one(sql, row)
        assert one is not None
        found.append(one["v"])
    return found


def _sqlite(sql: str, rows: Sequence[Sequence[Any]]) -> list[Any]:
    with sqlite3.connect(":memory:") as conn:
        found = [conn.execute(sql, row).fetchone()[0] for row in rows]
    conn.close()
    return found


async def test_julianday_of_a_date_is_sqlites(pg: PostgresStore) -> None:
    rows = await pg.fetch_all(
        "SELECT julianday(d) AS v FROM unnest(CAST(? AS TEXT[])) WITH ORDINALITY AS t(d, i) ORDER BY i",
        (DATES,),
    )
    found = [r["v"] for r in rows]
    assert found == _sqlite("SELECT julianday(?)", [(d,) for d in DATES])
    assert found.count(None) == len(YEARS) * (14 * 33 - 12 * 31)  # month 00 or 13, day 00 or 32
    assert await _values(pg, "SELECT julianday(CAST(? AS TEXT)) AS v", [(None,)]) == [None]
    # A difference of two days in whole days, as the reports' CAST(... AS INTEGER) takes it.
    pairs = [("2026-03-01", "2026-02-28"), ("2026-12-01", "2025-12-01"), ("2024-03-01", "2024-02-29")]
    diff = "SELECT CAST(julianday(?) - julianday(?) AS INTEGER) AS v"
    assert await _values(pg, diff, pairs) == _sqlite(diff, pairs) == [1, 365, 1]


@pytest.mark.parametrize("text", ["2026-12-01T10:00:00Z", "2026-12-01 ", "now", "2461375.5", "26-12-01"])
async def test_julianday_of_anything_but_a_date_is_an_error_not_another_answer(
    pg: PostgresStore, text: str
) -> None:
    with pytest.raises(asyncpg.RaiseError, match="only a date YYYY-MM-DD"):
        await pg.fetch_all("SELECT julianday(?) AS j", (text,))


INSTR = [
    ("segments[1].steps[2]", "]"),
    ("rules.promise_broken", "."),
    ("rules.promise_broken", "]"),
    ("", "."),
    ("abc", ""),
    ("", ""),
    ("步骤]一", "]"),  # characters, not bytes
    (None, "]"),
    ("a]", None),
]
MINMAX = [(1, 2), (2, 1), (-5, 0), (7, 7), (None, 3), (3, None), (None, None), (2**62, 2**62 + 1)]


async def test_instr_max_and_min_are_sqlites(pg: PostgresStore) -> None:
    instr = "SELECT instr(CAST(? AS TEXT), CAST(? AS TEXT)) AS v"
    assert await _values(pg, instr, INSTR) == _sqlite(instr, INSTR)
    numbers = [[None if v is None else Decimal(v) for v in pair] for pair in MINMAX]
    for f in ("max", "min"):
        # On PostgreSQL a sum of BIGINT is NUMERIC: that is what these take.
        sql = f"SELECT {f}(CAST(? AS NUMERIC), CAST(? AS NUMERIC)) AS v"
        assert await _values(pg, sql, numbers) == _sqlite(f"SELECT {f}(?, ?)", MINMAX)


async def test_max_and_min_of_integers_and_texts_are_sqlites(pg: PostgresStore) -> None:
    """The baseline's two-argument max and min (the store's SQL uses them on both backends):
    NULL when either argument is, as in SQLite."""
    texts = [["a", "b"], ["b", None], [None, "a"], [None, None], ["2026-12-01", "2026-11-30"]]
    for f in ("max", "min"):
        sql = f"SELECT {f}(CAST(? AS BIGINT), CAST(? AS BIGINT)) AS v"
        assert await _values(pg, sql, MINMAX) == _sqlite(f"SELECT {f}(?, ?)", MINMAX)
        sql = f"SELECT {f}(CAST(? AS TEXT), CAST(? AS TEXT)) AS v"
        assert await _values(pg, sql, texts) == _sqlite(f"SELECT {f}(?, ?)", texts)

"""bench/bench_reports.py builds its store by SQL alone; a small one, and the reports agree with it.
SQLite only: the bench writes a SQLite file by SQLite's SQL (the reports' queries are tested on both
backends by the test_report_*.py tests)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite

from bench.bench_reports import CALLS_PER_ACCOUNT, TODAY, build
from dialer.store import SqliteStore
from dialer.store.conn import SqliteConn
from dialer.store.outcomes import PromiseRow
from dialer.store.promise_counts import count_verdicts, read_promises


def _count(path: Path, sql: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute(sql).fetchone()[0])


def _text(path: Path, sql: str) -> str:
    with sqlite3.connect(path) as db:
        return str(db.execute(sql).fetchone()[0])


async def test_the_bench_store_is_built_and_every_funnel_adds_up(tmp_path: Path) -> None:
    path, fresh = tmp_path / "reports-2000.db", tmp_path / "fresh.db"
    await asyncio.to_thread(build, path, 2000)  # it runs a loop of its own to migrate
    await (await SqliteStore.open(fresh)).close()
    triggers = (
        "SELECT group_concat(name) FROM (SELECT name FROM sqlite_master WHERE type='trigger' ORDER BY 1)"
    )
    assert _text(path, triggers) == _text(fresh, triggers)  # dropped while the rows were made, made again
    placed = _count(path, "SELECT count(*) FROM attempts WHERE disposition != 'not_placed'")
    assert _count(path, "SELECT count(*) FROM attempts") == 2000 * CALLS_PER_ACCOUNT
    store = await SqliteStore.open(path)
    try:
        [whole] = await store.funnel(1)
        funnels = {by: await store.funnel(1, by) for by in ("arm", "bucket", "period")}
        hours = await store.contacts_by_hour(1)
        [verdicts] = await store.promise_verdicts(1, TODAY)
    finally:
        await store.close()
    async with aiosqlite.connect(path) as db:
        db.row_factory = sqlite3.Row
        direct = count_verdicts(await read_promises(SqliteConn(db), 1), TODAY, "")
    assert [verdicts] == [PromiseRow(g, *c) for g, c in direct.items()]
    assert 0 < verdicts.kept < verdicts.due < verdicts.promises
    assert _count(path, "SELECT count(*) FROM report_promises WHERE source = 'sms'") > 0  # texts' too
    assert whole.accounts == 2000 and whole.calls == placed
    assert 0 < whole.right_party < whole.contacted < whole.attempted
    assert 0 < whole.promised < whole.right_party
    for by, rows in funnels.items():  # every account in exactly one group
        assert sum(r.accounts for r in rows) == whole.accounts, by
        assert sum(r.calls for r in rows) == whole.calls and sum(r.texts for r in rows) == whole.texts, by
    assert len(funnels["bucket"]) >= 5  # entry buckets from M0 to M5+
    assert sum(h.calls for h in hours) == whole.calls and sum(h.texts for h in hours) == whole.texts
    assert sum(h.right_party for h in hours) == whole.right_party_calls

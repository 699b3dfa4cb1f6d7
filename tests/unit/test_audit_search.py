"""Call search: each filter, paging, CSV chunks, one call's detail (on SQLite and on PostgreSQL), and
speed over 100,000 attempts (SQLite)."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from audit.search import CallFilter, _where, call_detail, export_rows, search
from dialer.core.config import Settings
from dialer.store import SqliteStore, Store, to_db
from dialer.store.opening import open_store
from tests.support import raw_db
from tests.support.audit_seed import Seeded, backend_url, seed
from tests.support.config import make_settings
from tests.support.stores import backend_store

__all__ = ["backend_store", "backend_url"]  # the fixtures, on both backends


@pytest.fixture
async def seeded(backend_url: str, tmp_path: Path) -> tuple[Settings, Seeded]:
    settings = make_settings(tmp_path, store={"url": backend_url})
    return settings, await seed(settings, tmp_path)


async def ids(store: Store, f: CallFilter) -> list[int]:
    page = await search(store, f)
    return [r.id for r in page.rows]


async def test_each_filter(seeded: tuple[Settings, Seeded]) -> None:
    settings, s = seeded
    a1, a2, a3, a4 = (s.ids[k] for k in ("A1", "A2", "A3", "A4"))
    store = await open_store(settings)
    try:
        assert await ids(store, CallFilter()) == [a4, a3, a2, a1]  # newest first
        assert await ids(store, CallFilter(date_from=date(2025, 3, 2))) == [a4, a3, a2]
        assert await ids(store, CallFilter(date_to=date(2025, 3, 2))) == [a2, a1]
        one_day = CallFilter(date_from=date(2025, 3, 3), date_to=date(2025, 3, 3))
        assert await ids(store, one_day) == [a4, a3]
        assert await ids(store, CallFilter(account_id="A2")) == [a2]
        assert await ids(store, CallFilter(account_id="nobody")) == []
        assert await ids(store, CallFilter(campaign="spring")) == [a4, a3, a2, a1]
        assert await ids(store, CallFilter(campaign="autumn")) == []
        assert await ids(store, CallFilter(outcome="opt_out")) == [a2]
        assert await ids(store, CallFilter(disposition="no_answer")) == [a3]
        assert await ids(store, CallFilter(flag="opt-out")) == [a2]
        both = CallFilter(disposition="answered", date_from=date(2025, 3, 2), campaign="spring")
        assert await ids(store, both) == [a4, a2]
        page = await search(store, CallFilter(), page=2, size=3)
        assert (page.total, page.pages, page.page, [r.id for r in page.rows]) == (4, 2, 2, [a1])
        assert (await search(store, CallFilter(), page=99, size=3)).page == 2
        chunks = [[r.id for r in c] async for c in export_rows(store, CallFilter(), chunk=3)]
        assert chunks == [[a4, a3, a2], [a1]]
        detail = await call_detail(store, a2)
        assert detail is not None and detail.account["name"] == "张伟" and detail.outcome is not None
        key = await store.fetch_one("SELECT id FROM accounts WHERE account_id = 'A2'")
        assert key is not None and detail.call.account_pk == key["id"]  # the link to its timeline
        assert detail.flags == ["opt-out"] and [r.kind for r in detail.recordings] == ["call"]
        kinds = [e.kind for e in detail.events]
        assert kinds[0] == "attempt.decided" and "recording.stored" in kinds
        assert [(e.at, e.seq) for e in detail.events] == sorted((e.at, e.seq) for e in detail.events)
        assert [st.kind for st in detail.steps] == ["prompt", "speech", "key", "outcome"]
        assert await call_detail(store, 999999) is None
    finally:
        await store.close()


async def test_the_json_functions_the_searches_use_agree_on_both_backends(backend_store: Store) -> None:
    """json_extract and json_each of a '$.key' path (PostgreSQL's in migrations_pg/0019), as the texts
    search and the refusals' rule filter use them."""
    store = backend_store
    data = {
        "phone": "+1202",
        "to": {"zone": "UTC"},
        "n": None,
        "reasons": [{"rule": "window"}, {"rule": "7-in-7"}],
    }
    doc = json.dumps(data)
    for path, want in [("$.phone", "+1202"), ("$.to.zone", "UTC"), ("$.n", None), ("$.gone", None)]:
        row = await store.fetch_one("SELECT json_extract(?, ?) AS v", (doc, path))
        assert row is not None and row["v"] == want, path
    rules = await store.fetch_all(
        "SELECT json_extract(r.value, '$.rule') AS rule FROM json_each(?, '$.reasons') r", (doc,)
    )
    assert sorted(r["rule"] for r in rules) == ["7-in-7", "window"]
    assert await store.fetch_all("SELECT r.value FROM json_each(?, '$.gone') r", (doc,)) == []


N = 100_000


def _bulk(db: Path) -> None:
    """100,000 attempts over 10,000 accounts and a year, written straight in (test data only)."""
    rng = random.Random(7)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    raw_db.executemany(
        db,
        "INSERT INTO accounts (account_id, debt_id, name, phone_e164, region, time_zones, tz_derived, "
        "amount_minor, currency, due_date, language, created_at, updated_at) "
        "VALUES (?,?,?,?,'US','[\"America/New_York\"]',0,100,'USD','2024-12-31','en-US',?,?)",
        [(f"B{i}", f"D{i}", f"Name {i}", f"+1202{i:07d}", to_db(start), to_db(start)) for i in range(10_000)],
    )
    campaigns = [(f"c{i}", to_db(start)) for i in range(12)]
    raw_db.executemany(db, "INSERT INTO campaigns (name, created_at) VALUES (?,?)", campaigns)
    dispositions = ["answered", "no_answer", "busy", "failed", "machine"]
    outcomes = ["promise_to_pay", "paid", "dispute", "opt_out", "acknowledged"]
    rows = []
    for i in range(N):
        at = to_db(start + timedelta(seconds=i * 315))  # one year
        disp = rng.choice(dispositions)
        outcome = rng.choice(outcomes) if disp == "answered" else None
        rows.append((1 + i % 12, 1 + rng.randrange(10_000), "+1202", 1, "ended", at, disp, outcome))
    raw_db.executemany(
        db,
        "INSERT INTO attempts (campaign_id, account_pk, phone_e164, attempt_no, state, decided_at, "
        "disposition, outcome) VALUES (?,?,?,?,?,?,?,?)",
        rows,
    )
    flags = [(i, rng.choice(["consent", "multi-zone", "cap-reached"])) for i in range(1, N + 1, 7)]
    raw_db.executemany(db, "INSERT INTO attempt_flags (attempt_id, flag) VALUES (?,?)", flags)
    raw_db.execute(db, "ANALYZE")


FILTERS = {
    "none": CallFilter(),
    "one week": CallFilter(date_from=date(2024, 6, 1), date_to=date(2024, 6, 7)),
    "account": CallFilter(account_id="B4242"),
    "campaign": CallFilter(campaign="c3"),
    "outcome": CallFilter(outcome="dispute"),
    "disposition": CallFilter(disposition="busy"),
    "flag": CallFilter(flag="consent"),
    "flag + month": CallFilter(flag="cap-reached", date_from=date(2024, 3, 1), date_to=date(2024, 3, 31)),
    "account + outcome": CallFilter(account_id="B17", outcome="paid"),
}


async def test_search_is_fast_over_100000_attempts(tmp_path: Path) -> None:
    # SQLite only: the data is written straight into the file, and the plans checked are SQLite's.
    store = await SqliteStore.open(tmp_path / "big.db", "NORMAL")
    try:
        _bulk(tmp_path / "big.db")
        timings = {}
        for name, f in FILTERS.items():
            began = time.perf_counter()
            first = await search(store, f)
            deep = await search(store, f, page=max(1, first.pages // 2))  # a page in the middle
            timings[name] = time.perf_counter() - began
            assert first.total >= 0 and len(deep.rows) <= 50
            where, params = _where(f)
            sql = f"EXPLAIN QUERY PLAN SELECT count(*) FROM attempts t{where}"
            plan = [str(r[3]) for r in await store.fetch_all(sql, params)]
            if name != "disposition":  # no index on disposition: it reads the table, by design
                assert "SCAN t" not in plan, (name, plan)  # a bare SCAN reads every row
        began = time.perf_counter()
        n = sum([len(c) async for c in export_rows(store, FILTERS["campaign"])])
        export_s = time.perf_counter() - began
        print("\nsearch (first page + a middle page) over 100,000 attempts:")
        for name, secs in timings.items():
            print(f"  {name:18} {secs * 1000:7.1f} ms")
        print(f"  CSV rows, one campaign ({n}): {export_s * 1000:.0f} ms")
        assert max(timings.values()) < 1.0, timings
    finally:
        await store.close()

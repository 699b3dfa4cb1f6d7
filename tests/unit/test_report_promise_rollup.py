"""The promises' verdicts kept judged (migration 0016) against judging the whole campaign directly
(`promise_counts.count_verdicts`, the balance rules on one day): after random promises, payments and
account changes, on days before, during and after the promises' days, on a day when two zones swap
which ends last, and on a database made before the rollup existed. On both backends (but the last:
PostgreSQL's schema starts with the rollup)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dialer.core.models import Account, AccountRecord
from dialer.store import SqliteStore, Store, db
from dialer.store.conn import Dialect, Row
from dialer.store.outcomes import PROMISES_BY, PromiseRow
from dialer.store.postgres import PostgresStore
from dialer.store.promise_counts import count_verdicts, read_promises
from tests.support.money import NY, account, arms, campaign_of, pay, promise_call, promise_text
from tests.support.stores import backend_store

__all__ = ["backend_store"]  # the fixture, on both backends

# Halifax's day ends last in December, Santiago's in July (southern summer time): the decision
# zone of an account with both depends on the report's day.
HALIFAX_SANTIAGO = ("America/Halifax", "America/Santiago")
ZONES = (NY, ("Asia/Shanghai",), ("America/Los_Angeles", "America/New_York"), HALIFAX_SANTIAGO, ())
STEPS = ("segments[0].steps[0]", "segments[0].steps[1]", "segments[1].steps[0]", "rules.promise_broken")
FIRST = datetime(2026, 11, 20, tzinfo=UTC)
DAYS = [date(2026, 11, 25), date(2026, 12, 3), date(2026, 12, 12), date(2027, 1, 20), date(2027, 7, 1)]


def _record(i: int, rng: random.Random) -> AccountRecord:
    due = date(2026, 11, 1) + timedelta(days=rng.randrange(40))
    zones = ZONES[i % len(ZONES)]
    return account(f"R{i}", due, rng.randrange(1, 5) * 5000, zones, phone=f"+1202555{7000 + i:04d}")


class _StoreReads:
    """What `read_promises` asks of a connection, through the store's read path (a snapshot per
    query: nothing writes meanwhile)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.dialect: Dialect = "postgresql" if isinstance(store, PostgresStore) else "sqlite"

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._store.fetch_all(sql, params)


async def _direct(store: Store, campaign_id: int, today: date, by: str) -> list[PromiseRow]:
    """The campaign judged whole on `today`, as promise_verdicts did before the rollup."""
    rows = await read_promises(_StoreReads(store), campaign_id)
    found = [PromiseRow(g, *c) for g, c in sorted(count_verdicts(rows, today, by).items())]
    return found or ([PromiseRow("", 0, 0, 0, 0, 0, 0)] if by == "" else [])


async def _write(
    store: Store, cid: int, other: int, records: list[AccountRecord], rng: random.Random
) -> None:
    """A promise (on a call of either campaign, or in a text's answer), a payment, or an account's
    amount or due date changed by an import, at a random time over a month."""
    r = rng.choice(records)
    at = FIRST + timedelta(minutes=rng.randrange(30 * 1440))
    what = rng.random()
    if what < 0.35:
        day = rng.choice([None, at.date() + timedelta(days=rng.randrange(-1, 10))])
        amount = rng.choice([None, rng.randrange(1, 4) * 2500])
        campaign = other if r.account_id in {"R0", "R1", "R2"} and rng.random() < 0.5 else cid
        await promise_call(store, campaign, r.account_id, day, amount, rng.choice(STEPS), at)
    elif what < 0.5:
        await promise_text(store, cid, r.account_id, rng.choice(STEPS), at)
    elif what < 0.9:
        when = at if rng.random() < 0.7 else at.date()
        await pay(store, r.account_id, rng.randrange(1, 4) * 2500, when)
    else:
        changed = _record(int(r.account_id[1:]), rng)
        records[records.index(r)] = changed
        await store.upsert_accounts([changed], at)


async def _campaigns(store: Store, rng: random.Random) -> tuple[int, int, list[AccountRecord]]:
    records = [_record(i, rng) for i in range(12)]
    cid = await campaign_of(store, records)
    other = await store.create_campaign("other", FIRST)
    await store.add_targets(other.id, FIRST, ["R0", "R1", "R2"])
    await arms(store, cid, {r.account_id: rng.choice("AB") for r in records[:10]})
    return cid, other.id, records


async def _count(store: Store, sql: str) -> int:
    row = await store.fetch_one(sql)
    assert row is not None
    return int(row[0])


@pytest.fixture
async def store(backend_store: Store) -> AsyncIterator[Store]:
    yield backend_store


@pytest.mark.parametrize("seed", range(5))
async def test_the_kept_verdicts_equal_judging_the_campaign_directly(store: Store, seed: int) -> None:
    rng = random.Random(seed)
    cid, other, records = await _campaigns(store, rng)
    for _ in range(4):  # writes, then reports on several days; more writes, and so on
        for _ in range(rng.randrange(6, 16)):
            await _write(store, cid, other, records, rng)
        for today in rng.sample(DAYS, 3):
            for by in PROMISES_BY:
                assert await store.promise_verdicts(cid, today, by) == await _direct(store, cid, today, by)
        dirty = f"SELECT count(*) FROM report_promise_dirty WHERE campaign_id = {cid}"
        assert await _count(store, dirty) == 0  # the other campaign's marks wait for its own report
    [whole] = await store.promise_verdicts(cid, date(2027, 1, 20))
    assert whole.promises > 0 and whole.due > 0  # the data is not empty


async def test_a_payment_after_a_report_marks_only_its_account_where_it_has_promises(store: Store) -> None:
    cid, other, _ = await _campaigns(store, random.Random(7))
    await promise_call(store, cid, "R0", None, None, STEPS[0], FIRST)
    await promise_call(store, cid, "R3", None, None, STEPS[0], FIRST)
    await store.promise_verdicts(cid, DAYS[1])
    await store.promise_verdicts(other, DAYS[1])  # R0 has no promise in it: no row there
    assert await _count(store, "SELECT count(*) FROM report_promises") == 2
    await pay(store, "R0", 2500, FIRST + timedelta(days=1))
    await pay(store, "R5", 2500, FIRST + timedelta(days=1))  # no promise: nothing to judge again
    marked = await store.fetch_all("SELECT campaign_id, account_pk FROM report_promise_dirty")
    assert [tuple(r) for r in marked] == [(cid, (await store.accounts_named(["R0"]))["R0"].pk)]
    # An import that writes the same amount, due date and zones changes nothing to judge.
    await store.promise_verdicts(cid, DAYS[1])
    same = await store.accounts_named(["R0"])
    await store.upsert_accounts([_same(same["R0"])], FIRST)
    assert await _count(store, "SELECT count(*) FROM report_promise_dirty") == 0


def _same(found: Account) -> AccountRecord:
    """The record an import of the account as stored would carry."""
    return account(
        found.account_id,
        found.due_date,
        found.amount_minor,
        found.time_zones,
        found.currency,
        phone=found.phone_e164,
    )


async def test_a_database_from_before_the_rollup_is_judged_whole_at_its_first_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite's own migrations: PostgreSQL's schema starts at 0016, with the rollup.
    rng, path = random.Random(11), tmp_path / "p.db"
    every = db._migrations()
    monkeypatch.setattr(db, "_migrations", lambda: [m for m in every if m[0] < 16])
    store = await SqliteStore.open(path)
    try:
        cid, other, records = await _campaigns(store, rng)
        for _ in range(30):
            await _write(store, cid, other, records, rng)
    finally:
        await store.close()
    monkeypatch.setattr(db, "_migrations", lambda: every)
    store = await SqliteStore.open(path)
    try:
        assert await _count(store, "SELECT count(*) FROM report_promises_built") == 0
        for by in PROMISES_BY:
            assert await store.promise_verdicts(cid, DAYS[2], by) == await _direct(store, cid, DAYS[2], by)
        assert await _count(store, "SELECT count(*) FROM report_promises") > 0
    finally:
        await store.close()


async def test_a_day_when_the_zones_swap_which_ends_last_judges_the_account_again(store: Store) -> None:
    """Promised for Dec 2 and paid at 03:30 UTC on Dec 3: 23:30 on Dec 2 in Halifax, whose day ends
    last in December (kept), 00:30 on Dec 3 in Santiago, whose day ends last in July (broken)."""
    due = date(2026, 11, 20)
    cid = await campaign_of(store, [account("H", due, 5000, HALIFAX_SANTIAGO)])
    made = datetime(2026, 12, 2, 15, tzinfo=UTC)
    await promise_call(store, cid, "H", date(2026, 12, 2), None, STEPS[0], made)
    await pay(store, "H", 5000, datetime(2026, 12, 3, 3, 30, tzinfo=UTC))
    assert await store.promise_verdicts(cid, date(2026, 12, 10)) == [PromiseRow("", 1, 1, 1, 0, 0, 0)]
    assert await store.promise_verdicts(cid, date(2027, 7, 1)) == [PromiseRow("", 1, 1, 0, 0, 1, 0)]
    assert await store.promise_verdicts(cid, date(2026, 12, 10)) == [PromiseRow("", 1, 1, 1, 0, 0, 0)]

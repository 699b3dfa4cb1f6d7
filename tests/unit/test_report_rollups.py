"""The reports' rollups (migration 0015) against the direct SQL over the base tables: after random
sequences of the dialer's writes, after a write that follows a refresh (only its account and day
recomputed), and on a database made before the rollups existed. On both backends (but the last:
PostgreSQL's schema starts with the rollups)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from dialer.core.messages import InboundText, TextRequest
from dialer.core.models import (
    Account,
    AccountRecord,
    Attempt,
    CallResult,
    Decision,
    Disposition,
    IvrStep,
    IvrSummary,
    TargetState,
    TargetUpdate,
)
from dialer.core.vocab import MessageState, Outcome, ReplyKind
from dialer.store import SqliteStore, Store, db
from dialer.store.conn import Dialect
from dialer.store.postgres import PostgresStore
from dialer.store.reports import GROUPS, direct_by_hour_sql, direct_funnel_sql, funnel_rows, hour_rows
from dialer.strategy.arms import ArmAssignment
from tests.support.stores import backend_store

__all__ = ["backend_store"]  # the fixture, on both backends

START = datetime(2026, 11, 28, 12, tzinfo=UTC)
FAR = datetime(2027, 6, 1, tzinfo=UTC)
ZONES = [("America/New_York",), ("Asia/Kolkata",), ("America/Los_Angeles", "America/New_York"), ("UTC",)]
STEPS = ["", "segments[0].steps[0]", "segments[0].steps[1]", "segments[1].steps[0]", "rules.promise_broken"]
DISPOSITIONS = [
    Disposition.ANSWERED,
    Disposition.ANSWERED,
    Disposition.NO_ANSWER,
    Disposition.BUSY,
    Disposition.MACHINE,
    Disposition.HUNG_UP_EARLY,
    Disposition.NOT_PLACED,
]
OUTCOMES = [
    ("promise_to_pay", True),
    ("promise_to_pay", None),
    ("acknowledged", True),
    ("wrong_number", False),
]


def _borrower(i: int, zones: tuple[str, ...]) -> AccountRecord:
    return AccountRecord(
        f"A{i}",
        f"D-{i}",
        "T",
        f"+1202555{600 + i:04d}",
        "US",
        zones,
        False,
        10_000,
        "USD",
        date(2026, 11, 1),
        "en-US",
    )


def _allow(*_: object) -> Decision:
    return Decision(True)


async def _call(store: Store, campaign_id: int, account: Account, at: datetime, rng: random.Random) -> None:
    [target] = [t for t in await store.due_targets(campaign_id, FAR, 100) if t.account.pk == account.pk]
    step = rng.choice(STEPS)
    attempt = await store.claim(
        target, at, _allow, lambda i, _: f"/rec/{i}", "t", at - timedelta(days=7), step=step
    )
    assert isinstance(attempt, Attempt)
    disposition, ivr = rng.choice(DISPOSITIONS), None
    if disposition is Disposition.ANSWERED and rng.random() < 0.8:
        outcome, right_party = rng.choice(OUTCOMES)
        steps = (IvrStep(at, "menu", "outcome", {"outcome": outcome}),)
        ivr = IvrSummary("reminder-en-US", outcome, None, None, right_party, steps)
    result = CallResult(disposition, at + timedelta(seconds=30), answered_at=at if ivr else None, ivr=ivr)
    await store.finish_attempt(attempt, result, TargetUpdate(TargetState.PENDING, at), "dialer:t")


async def _text(store: Store, campaign_id: int, account: Account, at: datetime, rng: random.Random) -> None:
    step = rng.choice(STEPS)
    request = TextRequest(account, f"b{at}", "r.yaml#due", "Pay", "gsm-7", 1, "test", campaign_id, step=step)
    message = await store.claim_message(request, at, lambda *_: Decision(True), "t", at - timedelta(days=7))
    assert message is not None and not isinstance(message, Decision)
    state = rng.choice([MessageState.DELIVERED, MessageState.DELIVERED, MessageState.FAILED, None])
    if state is not None:
        await store.advance_message(message.id, state, at, "gateway:test", "report")


async def _reply(store: Store, account: Account, at: datetime, rng: random.Random) -> None:
    kind = rng.choice([ReplyKind.ANSWER, ReplyKind.ANSWER, ReplyKind.OPT_OUT])
    outcome = rng.choice([Outcome.PROMISE_TO_PAY, None]) if kind is ReplyKind.ANSWER else None
    inbound = InboundText(account.phone_e164, "DueCall", "1" if outcome else "STOP", at, kind, outcome)
    await store.record_inbound(inbound, ["sms"] if kind is ReplyKind.OPT_OUT else [], at, "gateway:test")


async def _write(
    store: Store, campaign_id: int, accounts: list[Account], texted: set[int], rng: random.Random
) -> None:
    """One of the dialer's writes, on a random account at a random time over four UTC days."""
    account = rng.choice(accounts)
    at = START + timedelta(minutes=rng.randrange(4 * 24 * 60))
    what = rng.random()
    if what < 0.55:
        await _call(store, campaign_id, account, at, rng)
    elif what < 0.8 or not texted:
        await _text(store, campaign_id, account, at, rng)
        texted.add(account.pk)
    else:
        pk = rng.choice(sorted(texted))
        await _reply(store, next(a for a in accounts if a.pk == pk), at, rng)


def _dialect(store: Store) -> Dialect:
    return "postgresql" if isinstance(store, PostgresStore) else "sqlite"


async def _direct(store: Store, campaign_id: int) -> tuple[dict[str, object], object]:
    """Every funnel and the contacts by hour, straight from the base tables."""
    dialect = _dialect(store)
    funnels: dict[str, object] = {
        by: funnel_rows(by, await store.fetch_all(direct_funnel_sql(by, dialect), (campaign_id,)))
        for by in GROUPS
    }
    return funnels, hour_rows(await store.fetch_all(direct_by_hour_sql(dialect), (campaign_id,)))


async def _rolled(store: Store, campaign_id: int) -> tuple[dict[str, object], object]:
    funnels: dict[str, object] = {by: await store.funnel(campaign_id, by) for by in GROUPS}
    return funnels, await store.contacts_by_hour(campaign_id)


async def _count(store: Store, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in await store.fetch_all(sql)]


@pytest.fixture
async def store(backend_store: Store) -> AsyncIterator[Store]:
    yield backend_store


async def _campaign(store: Store, n: int, rng: random.Random) -> tuple[int, list[Account]]:
    await store.upsert_accounts(
        [_borrower(i, rng.choice(ZONES)) for i in range(n)], START - timedelta(days=30)
    )
    campaign = await store.create_campaign("c", START - timedelta(days=1))
    await store.add_targets(campaign.id, START)
    accounts = list((await store.accounts_named([f"A{i}" for i in range(n)])).values())
    arms = [
        ArmAssignment(a.pk, a.account_id, rng.choice("AB"), ("M1",), 7)
        for a in accounts
        if rng.random() < 0.8
    ]
    await store.save_arms(campaign.id, arms, START, "operator:test")
    return campaign.id, accounts


@pytest.mark.parametrize("seed", range(6))
async def test_the_rollups_equal_the_direct_sql_after_random_writes(store: Store, seed: int) -> None:
    rng = random.Random(seed)
    campaign_id, accounts = await _campaign(store, 12, rng)
    texted: set[int] = set()
    dirty = "SELECT count(*) FROM report_dirty UNION ALL SELECT count(*) FROM report_dirty_days"
    for round_ in range(4):  # writes, then a report; more writes on top of the rollup, and so on
        for _ in range(rng.randrange(5, 30)):
            await _write(store, campaign_id, accounts, texted, rng)
        if round_ == 2:  # an account changes zones: its days' hours move
            await store.upsert_accounts([_borrower(0, ZONES[(seed + 1) % len(ZONES)])], START)
        assert await _rolled(store, campaign_id) == await _direct(store, campaign_id)
        assert await _count(store, dirty) == [(0,), (0,)]
    funnels, hours = await _rolled(store, campaign_id)
    [whole] = funnels[""]  # type: ignore[misc]
    assert (
        whole.calls > 0 and whole.texts > 0 and whole.promised <= whole.right_party
    )  # the data is not empty
    assert sum(h.calls for h in hours) == whole.calls  # type: ignore[attr-defined]


async def test_a_write_after_a_refresh_recomputes_only_its_account_and_day(store: Store) -> None:
    rng = random.Random(99)
    campaign_id, accounts = await _campaign(store, 8, rng)
    texted: set[int] = set()
    rows = (
        "SELECT account_pk, kind, k, placed, right_party_calls, call_promised FROM report_accounts "
        "ORDER BY 1, 2, 3"
    )
    for _ in range(30):
        await _write(store, campaign_id, accounts, texted, rng)
    before = await store.funnel(campaign_id)
    kept = await _count(store, rows)
    account = accounts[3]
    at = START + timedelta(days=1, hours=2)
    [target] = [t for t in await store.due_targets(campaign_id, FAR, 100) if t.account.pk == account.pk]
    attempt = await store.claim(target, at, _allow, lambda i, _: f"/rec/{i}", "t", at - timedelta(days=7))
    assert isinstance(attempt, Attempt)
    ivr = IvrSummary(
        "reminder-en-US",
        "promise_to_pay",
        None,
        None,
        True,
        (IvrStep(at, "menu", "outcome", {"outcome": "promise_to_pay"}),),
    )
    result = CallResult(Disposition.ANSWERED, at + timedelta(seconds=30), answered_at=at, ivr=ivr)
    await store.finish_attempt(attempt, result, TargetUpdate(TargetState.PENDING, at), "dialer:t")
    marked = await _count(store, "SELECT campaign_id, account_pk FROM report_dirty")
    assert marked == [(campaign_id, account.pk)]
    assert await _count(store, "SELECT day FROM report_dirty_days") == [(at.date().isoformat(),)]
    [after] = await store.funnel(campaign_id)
    assert await _count(store, "SELECT count(*) FROM report_dirty") == [(0,)]
    changed = await _count(store, rows)
    assert [r for r in changed if r[0] != account.pk] == [r for r in kept if r[0] != account.pk]
    assert after == (await _direct(store, campaign_id))[0][""][0]  # type: ignore[index]
    [whole] = before
    assert (after.calls, after.right_party_calls) == (whole.calls + 1, whole.right_party_calls + 1)
    mine = [r for r in changed if r[0] == account.pk and r[1] == ""]
    was = [r for r in kept if r[0] == account.pk and r[1] == ""]
    assert mine[0][3] == (was[0][3] if was else 0) + 1  # its calls placed, one more
    assert mine[0][4] >= 1 and mine[0][5] == 1  # a right-party call, a promise


async def test_a_database_from_before_the_rollups_gets_them_when_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite's own migrations: PostgreSQL's schema starts at 0016, with the rollups.
    rng, path = random.Random(5), tmp_path / "d.db"
    every = db._migrations()
    monkeypatch.setattr(db, "_migrations", lambda: [m for m in every if m[0] < 15])
    store = await SqliteStore.open(path)
    texted: set[int] = set()
    try:
        campaign_id, accounts = await _campaign(store, 10, rng)
        for _ in range(40):
            await _write(store, campaign_id, accounts, texted, rng)
        tables = "SELECT count(*) FROM sqlite_master WHERE name = 'report_accounts'"
        assert await _count(store, tables) == [(0,)]
    finally:
        await store.close()
    monkeypatch.setattr(db, "_migrations", lambda: every)
    store = await SqliteStore.open(path)  # applies 0015: no rollup yet, the first report builds it
    try:
        assert await _count(store, "SELECT count(*) FROM report_built") == [(0,)]
        assert await _rolled(store, campaign_id) == await _direct(store, campaign_id)
        assert await _count(store, "SELECT campaign_id FROM report_built") == [(campaign_id,)]
        await _write(store, campaign_id, accounts, texted, rng)  # and the triggers keep it fresh
        assert await _rolled(store, campaign_id) == await _direct(store, campaign_id)
    finally:
        await store.close()

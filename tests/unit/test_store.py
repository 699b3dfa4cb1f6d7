"""The store against a real database: a SQLite file and a PostgreSQL database (each test that takes
`store` runs on both)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialer.accounts.parse import RejectedRow
from dialer.core.errors import StoreError
from dialer.core.models import CallResult, Decision, Disposition, Reason, TargetState
from dialer.store import SqliteStore, Store, TargetUpdate, from_db, to_db
from tests.support.records import NOW, record
from tests.support.stores import backend_store

__all__ = ["backend_store"]  # the fixture, on both backends


@pytest.fixture
def store(backend_store: Store) -> Store:
    return backend_store


def allow(account, history, opted_out, prefs):  # type: ignore[no-untyped-def]
    return Decision(True, (Reason("test", f"{len(history)} earlier"),))


def test_times_round_trip_in_utc() -> None:
    local = datetime(2026, 11, 28, 20, 0, tzinfo=UTC).astimezone()
    assert from_db(to_db(local)) == local
    assert to_db(NOW) == "2026-11-28T12:00:00.000000Z"
    with pytest.raises(ValueError, match="naive"):
        to_db(datetime(2026, 1, 1))


async def test_migrations_run_once_and_are_versioned(tmp_path: Path) -> None:
    first = await SqliteStore.open(tmp_path / "t.db")
    version, instance = await first.schema_version(), await first.instance_id()
    await first.close()
    again = await SqliteStore.open(tmp_path / "t.db")
    assert await again.schema_version() == version >= 1
    assert await again.instance_id() == instance
    await again.close()
    with sqlite3.connect(tmp_path / "t.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        raw.execute("PRAGMA user_version=999")
    with pytest.raises(StoreError, match="newer than this DueCall"):
        await SqliteStore.open(tmp_path / "t.db")


async def test_reimport_updates_instead_of_duplicating(store: Store) -> None:
    first = await store.upsert_accounts([record("A1"), record("A2")], NOW)
    assert (first.inserted, first.updated) == (2, 0)
    second = await store.upsert_accounts([record("A1", name="王伟"), record("A3")], NOW)
    assert (second.inserted, second.updated) == (1, 1)
    assert await store.count_accounts() == 3
    found = await store.account("A1")
    assert found is not None and found.name == "王伟"


async def test_rejects_are_kept(store: Store) -> None:
    import_id = await store.start_import("x.csv", NOW)
    await store.add_rejects(import_id, [RejectedRow(3, "phone: bad", "A9,x,123")])
    assert await store.rejects(import_id) == [(3, "phone: bad")]


async def test_claim_counts_the_attempt_before_the_call(store: Store) -> None:
    await store.upsert_accounts([record("A1")], NOW)
    campaign = await store.create_campaign("c", NOW)
    assert await store.add_targets(campaign.id, NOW) == 1
    assert await store.add_targets(campaign.id, NOW) == 0  # idempotent
    [target] = await store.due_targets(campaign.id, NOW, 10)
    attempt = await store.claim(target, NOW, allow, lambda i, at: f"/rec/{i}", "d1", NOW - timedelta(days=2))
    assert not isinstance(attempt, Decision)
    assert attempt.attempt_no == 1 and attempt.recording_path == f"/rec/{attempt.id}"
    assert await store.due_targets(campaign.id, NOW, 10) == []  # in flight now
    again = await store.claim(target, NOW, allow, lambda i, at: "", "d1", NOW)
    assert isinstance(again, Decision) and not again.allowed  # already claimed: no second call
    assert [a.id for a in await store.open_attempts(campaign.id)] == [attempt.id]


async def test_concurrent_claims_place_one_call(store: Store) -> None:
    await store.upsert_accounts([record("A1")], NOW)
    campaign = await store.create_campaign("c", NOW)
    await store.add_targets(campaign.id, NOW)
    [target] = await store.due_targets(campaign.id, NOW, 10)
    results = await asyncio.gather(
        *[store.claim(target, NOW, allow, lambda i, at: "", "d1", NOW) for _ in range(5)]
    )
    assert sum(1 for r in results if not isinstance(r, Decision)) == 1


async def test_blocked_claim_reschedules_with_the_reason(store: Store) -> None:
    await store.upsert_accounts([record("A1")], NOW)
    campaign = await store.create_campaign("c", NOW)
    await store.add_targets(campaign.id, NOW)
    [target] = await store.due_targets(campaign.id, NOW, 10)
    later = NOW + timedelta(hours=9)

    def block(account, history, opted_out, prefs):  # type: ignore[no-untyped-def]
        return Decision(False, (Reason("window", "too late"),), later)

    assert isinstance(await store.claim(target, NOW, block, lambda i, at: "", "d", NOW), Decision)
    status = await store.status(campaign)
    assert status.next_due == [(later, "A1", "+12025550101", "window: too late")]
    assert await store.due_targets(campaign.id, later, 10) != []


async def test_opt_out_moves_the_target_out(store: Store) -> None:
    await store.upsert_accounts([record("A1")], NOW)
    campaign = await store.create_campaign("c", NOW)
    await store.add_targets(campaign.id, NOW)
    await store.opt_out("+12025550101", "voice", NOW, "test")
    [target] = await store.due_targets(campaign.id, NOW, 10)
    seen = []

    def gate(account, history, opted_out, prefs):  # type: ignore[no-untyped-def]
        seen.append(opted_out)
        return Decision(False, (Reason("opt-out", "asked"),))

    await store.claim(target, NOW, gate, lambda i, at: "", "d", NOW)
    assert seen == [True]
    assert await store.count_targets(campaign.id, [TargetState.OPTED_OUT]) == 1


async def test_finish_stores_result_events_and_next_step(store: Store) -> None:
    await store.upsert_accounts([record("A1")], NOW)
    campaign = await store.create_campaign("c", NOW)
    await store.add_targets(campaign.id, NOW)
    [target] = await store.due_targets(campaign.id, NOW, 10)
    attempt = await store.claim(target, NOW, allow, lambda i, at: "", "d", NOW)
    assert not isinstance(attempt, Decision)
    result = CallResult(
        Disposition.BUSY,
        NOW,
        dial_status="BUSY",
        cause="17",
        events=((NOW, "DueCallDial", {"DialStatus": "BUSY", "名": "张"}),),
    )
    await store.finish_attempt(
        attempt, result, TargetUpdate(TargetState.PENDING, NOW + timedelta(minutes=10))
    )
    [row] = await store.attempts_for(campaign.id)
    assert (row["state"], row["disposition"], row["cause"]) == ("ended", "busy", "17")
    assert await store.events_for(attempt.id) == [
        ("2026-11-28T12:00:00.000000Z", "DueCallDial", {"DialStatus": "BUSY", "名": "张"})
    ]
    assert await store.open_attempts(campaign.id) == []
    # the next claim sees the first attempt in the history
    [again] = await store.due_targets(campaign.id, NOW + timedelta(minutes=10), 10)
    second = await store.claim(again, NOW, allow, lambda i, at: "", "d", NOW - timedelta(days=1))
    assert not isinstance(second, Decision) and second.attempt_no == 2


async def test_preferences_reach_the_gate_inside_the_claim(store: Store) -> None:
    from datetime import time

    from dialer.core.models import Preferences

    await store.upsert_accounts([record("A1")], NOW)
    campaign = await store.create_campaign("c", NOW)
    await store.add_targets(campaign.id, NOW)
    # The store notes when each consent was given (now, unless told): 1006.14(b)(3)(i) needs it.
    prefs = Preferences(((time(12), time(13)),), ((NOW, NOW + timedelta(days=1)),), (NOW,))
    await store.set_preferences("+12025550101", prefs, NOW)
    assert await store.preferences("+12025550101") == prefs
    seen = []

    def gate(account, history, opted_out, got):  # type: ignore[no-untyped-def]
        seen.append(got)
        return Decision(False, (Reason("inconvenient", "lunch"),), NOW + timedelta(hours=1))

    [target] = await store.due_targets(campaign.id, NOW, 10)
    await store.claim(target, NOW, gate, lambda i, at: "", "d", NOW)
    assert seen == [prefs]

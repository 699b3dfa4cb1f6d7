"""The typed audit events write exactly what the code before them wrote, and old chains verify.

`tests/data/chain-before-issue10.json` is the whole `audit_events` table written by the store as
it was before its events were typed records (issue 10), running the scenario below: every event
kind there is, with each optional field both present and absent. The same scenario through
today's store must give the same rows, byte for byte, hashes included.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from audit.changes import changed_events
from audit.users import create_user, disable_user, set_password
from audit.verify import verify
from dialer.core.models import (
    Account,
    AccountRecord,
    CallResult,
    Decision,
    Disposition,
    IvrStep,
    IvrSummary,
    PastAttempt,
    Preferences,
    Reason,
    RejectedRow,
    TargetState,
    TargetUpdate,
)
from dialer.store import SqliteStore, Store
from dialer.store.chain import COLUMNS, AuditEvent
from dialer.store.events import web_event
from dialer.store.evidence import RecordingFacts
from tests.support.project import DATA

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
BEFORE = DATA / "chain-before-issue10.json"
WEB: list[tuple[str, dict[str, Any]]] = [
    ("audit.sign_in", {"name": "alice", "role": "admin", "client": "127.0.0.1", "session": "s1"}),
    ("audit.sign_in_failed", {"name": None, "known": False, "locked": False, "client": "127.0.0.1"}),
    ("audit.sign_in_failed", {"name": "alice", "known": True, "locked": True, "client": "10.0.0.1"}),
    ("audit.sign_out", {"session": "s1"}),
    ("audit.reveal", {"on": True, "page": "/calls"}),
    ("audit.view", {"page": "/calls", "filters": {"from": "2026-03-01"}, "n": 1, "revealed": False}),
    ("audit.view", {"page": "/calls/1", "revealed": True}),
    ("audit.view", {"page": "/calls/1/recordings/0", "recording": 0, "range": None, "session": "s1"}),
    ("audit.view", {"page": "/blocked", "filters": {"rule": "window"}, "n": 2, "revealed": False}),
    ("audit.view", {"page": "/trail"}),
    ("audit.export", {"what": "calls.csv", "filters": {}, "revealed": False}),
    ("audit.export", {"what": "evidence.zip", "sha256": "ab" * 32, "bytes": 1234, "revealed": True}),
    (
        "audit.verify",
        {
            "ok": True,
            "events": 10,
            "head_seq": 10,
            "head_hash": "cd" * 32,
            "broken": None,
            "recording_problems": 0,
            "anchor_problems": 0,
        },
    ),
]


def _rec(
    i: int, phone: str, zones: tuple[str, ...] = ("America/New_York",), derived: bool = False
) -> AccountRecord:
    return AccountRecord(
        f"A{i}",
        f"D{i}",
        f"Name {i} 王",
        phone,
        "US",
        zones,
        derived,
        12345,
        "USD",
        date(2026, 3, 20),
        "en-US",
    )


def _allow(account: Account, history: Any, opted_out: bool, prefs: Preferences) -> Decision:
    return Decision(True, (Reason("window", "10:00 local is inside 08:00-21:00"),))


def _block(account: Account, history: Any, opted_out: bool, prefs: Preferences) -> Decision:
    return Decision(False, (Reason("inconvenient", "said 10:00-11:00"),), T0 + timedelta(hours=3))


def _never(account: Account, history: list[PastAttempt], opted_out: bool, prefs: Preferences) -> Decision:
    return Decision(False, (Reason("opt-out", "opted out"),), None)


def _steps(t1: datetime) -> tuple[IvrStep, ...]:
    def at(s: int) -> datetime:
        return t1 + timedelta(seconds=s)

    return (
        IvrStep(at(2), "intro", "prompt", {"text": "Hello Name 1"}),
        IvrStep(at(3), "intro", "key", {"digit": "1", "barge_in": True}),
        IvrStep(at(4), "menu", "speech", {"transcript": "stop calling", "confidence": 0.912, "phrase": None}),
        IvrStep(at(5), "menu", "speech", {"transcript": "yes", "confidence": 0.9}),
        IvrStep(at(6), "menu", "no_input", {"attempt": 1}),
        IvrStep(at(7), "menu", "no_match", {"attempt": 2}),
        IvrStep(at(8), "date", "key", {"digits": "20260310"}),
        IvrStep(at(9), "date", "no_match", {"attempt": 1, "digits": "2026"}),
        IvrStep(at(10), "date", "no_input", {"attempt": 2, "digits": ""}),
        IvrStep(at(11), "menu", "key", {"digit": "9", "barge_in": False}),
        IvrStep(at(12), "menu", "outcome", {"outcome": "opt_out"}),
    )


def _call_events(t1: datetime) -> tuple[tuple[datetime, str, dict[str, str]], ...]:
    late = t1 + timedelta(seconds=13)
    return (
        (t1, "originate", {}),
        (
            t1,
            "OriginateResponse",
            {"Event": "OriginateResponse", "Response": "Success", "Channel": "PJSIP/x-1", "Uniqueid": "1.1"},
        ),
        (
            t1 + timedelta(seconds=1),
            "DueCallAnswer",
            {"Event": "UserEvent", "UserEvent": "DueCallAnswer", "Key": "k1"},
        ),
        (late, "DueCallDial", {"Event": "UserEvent", "UserEvent": "DueCallDial", "DialStatus": "ANSWER"}),
        (late, "DueCallIvr", {"Event": "UserEvent", "UserEvent": "DueCallIvr", "Stage": "done"}),
        (late, "Hangup", {"Event": "Hangup", "Cause": "16"}),
        (t1 + timedelta(seconds=14), "reconciled-dial", {"value": "ANSWER"}),
        (t1 + timedelta(seconds=14), "reconciled-ivr", {"value": "done"}),
    )


async def _scenario(store: Store) -> None:
    imp = await store.start_import("borrowers.csv", T0)
    accounts = [
        _rec(1, "+12025550101"),
        _rec(2, "+12025550102", ("America/New_York", "America/Chicago"), True),
        _rec(3, "+12025550103"),
    ]
    await store.import_batch(
        imp, 1, accounts, [RejectedRow(5, "phone: not a number", "A9,x")], T0, "operator:test"
    )
    await store.finish_import(imp, T0, "operator:test")
    imp2 = await store.start_import("more.csv", T0)
    await store.fail_import(imp2, "row 3: bad", T0, "operator:test")
    prefs = Preferences(((time(12, 0), time(13, 0)),), ((T0, T0 + timedelta(days=2)),))
    await store.set_preferences("+12025550101", prefs, T0, "operator:test")
    camp = await store.create_campaign("spring", T0, "operator:test")
    await store.add_targets(camp.id, T0)
    targets = {t.account.account_id: t for t in await store.due_targets(camp.id, T0, 10)}
    week = T0 - timedelta(days=7)
    a1 = await store.claim(targets["A1"], T0, _allow, lambda i, at: f"/rec/{i}", "d1", week)
    a2 = await store.claim(targets["A2"], T0, _allow, lambda i, at: f"/rec/{i}", "d1", week)
    assert isinstance(await store.claim(targets["A3"], T0, _block, lambda i, at: "", "d1", week), Decision)
    assert not isinstance(a1, Decision) and not isinstance(a2, Decision)
    t1 = T0 + timedelta(seconds=1)
    steps = _steps(t1)
    await store.opt_out(
        "+12025550101", "voice", t1 + timedelta(seconds=12), "ivr", actor="ivr", attempt_id=a1.id
    )
    ivr = IvrSummary("reminder-en-US", "opt_out", date(2026, 3, 10), 5000, True, steps)
    end = t1 + timedelta(seconds=15)
    r1 = CallResult(
        Disposition.ANSWERED,
        end,
        t1 + timedelta(seconds=1),
        "ANSWER",
        "16",
        "done",
        "HUMAN",
        "1",
        "",
        _call_events(t1),
        ivr,
    )
    facts = [
        RecordingFacts("/rec/1.wav", "call", "aa" * 32, 1000, 2000, True),
        RecordingFacts("/rec/1-replies/1.wav", "reply", "bb" * 32, 100, 200, False),
    ]
    await store.finish_attempt(a1, r1, TargetUpdate(TargetState.DONE, end, "answered"), "dialer:d1", facts)
    cut = IvrSummary("reminder-en-US", "", None, None, None, steps[:1])
    own = ((t1, "originate", {}), (t1, "originate-refused", {"message": "shutting down"}))
    own += ((t1, "originate-uncertain", {"error": "timeout"}),)
    r2 = CallResult(
        Disposition.CUT,
        t1 + timedelta(seconds=20),
        t1,
        "ANSWER",
        "",
        "intro",
        "",
        "",
        "cut: dialer",
        own,
        cut,
    )
    retry = TargetUpdate(TargetState.PENDING, t1 + timedelta(hours=2), "retry")
    await store.finish_attempt(a2, r2, retry, "dialer:d1")
    await store.add_recordings(a2, [], t1 + timedelta(seconds=30), "dialer:d1", True)
    t2 = T0 + timedelta(hours=3)
    again = {t.account.account_id: t for t in await store.due_targets(camp.id, t2, 10)}
    a3 = await store.claim(again["A2"], t2, _allow, lambda i, at: f"/rec/{i}", "d1", t2 - timedelta(days=7))
    assert not isinstance(a3, Decision)
    r3 = CallResult(
        Disposition.NOT_PLACED, t1 + timedelta(seconds=40), None, "", "", "", "", "", "refused", own[:2], None
    )
    await store.finish_attempt(
        a3, r3, TargetUpdate(TargetState.PENDING, t2 + timedelta(hours=1), ""), "dialer:d1", []
    )
    await store.claim(again["A3"], t2, _never, lambda i, at: "", "d1", t2)
    await store.mark_purged(a1.id, "/rec/1.wav", "aa" * 32, t2, "operator:test", "retention 3 years")
    await create_user(store, "alice", "admin", "correct horse battery", "operator:test", t2)
    await set_password(store, "alice", "another long password", "operator:test", t2)
    await disable_user(store, "alice", "operator:test", t2)
    texts = {"settings": "{a}", "policy pack cn": "rules: []"}
    for e in changed_events(texts, {"settings": "0" * 64}, t2, "operator:test"):
        await store.audit([e])
    await store.audit([AuditEvent(web_event(k, d), t2, "auditor:alice") for k, d in WEB])
    seen = web_event("audit.view", {"page": "/calls/1", "revealed": False})
    await store.audit([AuditEvent(seen, t2, "auditor:alice", attempt_id=1, account_id="A1")])


def _rows(db: Path) -> list[list[Any]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"SELECT {COLUMNS} FROM audit_events ORDER BY seq").fetchall()
    conn.close()
    return [list(r) for r in rows]


def _before() -> list[list[Any]]:
    rows: list[list[Any]] = json.loads(BEFORE.read_text(encoding="utf-8"))
    return rows


async def test_the_same_writes_give_the_same_chain_as_before_typed_events(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "t.db")
    try:
        await _scenario(store)
    finally:
        await store.close()
    now, before = _rows(tmp_path / "t.db"), _before()
    assert [r[2] for r in now] == [r[2] for r in before]  # the kinds, in order (a readable diff first)
    for mine, theirs in zip(now, before, strict=True):
        assert mine == theirs, mine[2]


async def test_a_chain_written_before_typed_events_still_verifies(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store = await SqliteStore.open(db)  # today's schema; the old rows go in as the old code wrote them
    await store.close()
    before = _before()
    with sqlite3.connect(db) as conn:
        conn.executemany(f"INSERT INTO audit_events ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", before)
    conn.close()
    report = verify(db)
    assert report.broken is None and report.events == len(before) == 63
    assert (report.head_seq, report.head_hash) == (before[-1][0], before[-1][9])
    again = await SqliteStore.open(db)  # and today's store appends after it, still one chain
    try:
        await again.audit([AuditEvent(web_event("audit.view", {"page": "/trail"}), T0, "auditor:alice")])
    finally:
        await again.close()
    later = verify(db)
    assert later.broken is None and later.events == 64

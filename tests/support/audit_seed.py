"""Test data for the audit page, written through the public Store API as the dialer writes it.

Four calls on three days: two answered with a real WAV each (one a Chinese borrower),
one unanswered, and one whose recordings row points outside the recordings folder.
`seed_texts` adds texts around the calls (after `seed`): see its docstring. Both write to the
store the settings name: `backend_url` gives a test one on each backend.
"""

from __future__ import annotations

import csv
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from audit.users import create_user
from dialer.accounts.importer import import_accounts
from dialer.accounts.parse import ImportSettings
from dialer.core.config import Settings
from dialer.core.messages import InboundText, Message, PastMessage, TextRequest
from dialer.core.models import (
    Account,
    Attempt,
    CallResult,
    Decision,
    Disposition,
    IvrStep,
    IvrSummary,
    PastAttempt,
    Preferences,
    Reason,
    TargetState,
)
from dialer.core.vocab import MessageState, ReplyKind
from dialer.store import Store, TargetUpdate
from dialer.store.evidence import RecordingFacts, facts
from dialer.store.opening import open_store
from dialer.store.pg_cluster import PgServer
from tests.support.borrowers import HEADER
from tests.support.config import make_settings
from tests.support.postgres import fresh_database, start_test_server
from tests.support.stores import BACKENDS

ADMIN, AUDITOR = "alice", "bob"
PASSWORD = "correct horse battery staple"
DAY1 = datetime(2025, 3, 1, 14, 0, tzinfo=UTC)
BORROWERS = [
    # account id, name, phone, zone, language
    ("A1", "Wei Zhang", "+12025550101", "America/New_York", "en-US"),
    ("A2", "张伟", "+8613912341234", "Asia/Shanghai", "zh-CN"),
    ("A3", "Ana Souza", "+12025550103", "America/New_York", "en-US"),
    ("A4", "Eve Outside", "+12025550104", "America/New_York", "en-US"),
]


@cache
def _server() -> PgServer:
    return start_test_server()


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """[store] url for a test's settings, on each backend (the test runs twice): "" (the SQLite
    file at [store] path) or a fresh PostgreSQL database of the suite's cluster."""
    if request.param == "sqlite":
        yield ""
        return
    with fresh_database(_server()) as url:
        yield url


def backend_settings(work_dir: Path, url: str) -> Settings:
    """A test's settings on the store `url` names ("": SQLite), with its own state folder: the audit
    page keeps a PostgreSQL store's session key there ([asterisk] state_dir), not in the suite's."""
    return make_settings(work_dir, store={"url": url}, asterisk={"state_dir": str(work_dir / "var")})


# For a test that writes the SQLite file itself (bulk data): `backend_url`'s SQLite only.
SQLITE_SITE = pytest.mark.parametrize("backend_url", ["sqlite"], indirect=True)


@dataclass(frozen=True, slots=True)
class Seeded:
    ids: dict[str, int]  # account id -> attempt id
    wavs: dict[str, Path]  # account id -> its call recording


def sine_wav(path: Path, seconds: float = 2.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", str(seconds), "sine", "440"]
    subprocess.run(cmd, check=True, timeout=30)
    return path


def _allow(account: Account, history: Sequence[PastAttempt], opted_out: bool, prefs: Preferences) -> Decision:
    reasons = (Reason("window", "14:00 local is inside 08:00-21:00"), Reason("cap", "call 1 of 3"))
    return Decision(True, reasons)


def _ivr(at: datetime, name: str, outcome: str) -> IvrSummary:
    steps = (
        IvrStep(at, "confirm", "prompt", {"text": f"Are you {name}? Press 1 for yes."}),
        IvrStep(at + timedelta(seconds=3), "confirm", "speech", {"transcript": "yes", "confidence": 0.91}),
        IvrStep(at + timedelta(seconds=5), "menu", "key", {"digit": "2"}),
        IvrStep(at + timedelta(seconds=9), "menu", "outcome", {"outcome": outcome}),
    )
    return IvrSummary("reminder-en-US", outcome, date(2025, 3, 10), 12345, True, steps)


async def seed(settings: Settings, work_dir: Path) -> Seeded:
    store = await open_store(settings)
    try:
        return await _seed(store, settings, work_dir)
    finally:
        await store.close()


async def _seed(store: Store, settings: Settings, work_dir: Path) -> Seeded:
    rec_dir = settings.path(settings.dialer.recordings_dir)
    csv_path = work_dir / "borrowers.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for acc, name, phone, zone, lang in BORROWERS:
            writer.writerow([acc, f"D-{acc}", name, phone, zone, "123.45", "USD", "2025-03-15", lang])
    parse = ImportSettings("US", "USD", "en-US")
    report = await import_accounts(store, csv_path, parse, DAY1, work_dir / "rej.csv")
    assert not report.rejects
    campaign = await store.create_campaign("spring", DAY1)
    await store.add_targets(campaign.id, DAY1)
    targets = {t.account.account_id: t for t in await store.due_targets(campaign.id, DAY1, 10)}
    ids: dict[str, int] = {}
    wavs: dict[str, Path] = {}
    days = {"A1": 0, "A2": 1, "A3": 2, "A4": 2}
    for acc, name, *_ in BORROWERS:
        now = DAY1 + timedelta(days=days[acc], minutes=len(ids))
        got = await store.claim(
            targets[acc], now, _allow, lambda i, _: str(rec_dir / f"{i}"), "test", now - timedelta(days=7)
        )
        assert isinstance(got, Attempt)
        ids[acc] = got.id
        await _finish(store, got, acc, name, now)
        if acc in ("A1", "A2"):
            wavs[acc] = sine_wav(Path(f"{got.recording_path}.wav"))
            await store.add_recordings(got, [facts(wavs[acc], "call")], now + timedelta(seconds=20), "test")
        if acc == "A4":  # a row whose path leads out of the recordings folder
            outside = sine_wav(work_dir / "outside.wav")
            sneaky = RecordingFacts(str(rec_dir / ".." / "outside.wav"), "call", "0" * 64, 1, 1)
            await store.add_recordings(got, [sneaky], now, "test")
            assert outside.exists()
    await create_user(store, ADMIN, "admin", PASSWORD, "operator:test", DAY1)
    await create_user(store, AUDITOR, "auditor", PASSWORD, "operator:test", DAY1)
    return Seeded(ids, wavs)


async def _finish(store: Store, attempt: Attempt, acc: str, name: str, now: datetime) -> None:
    if acc == "A3":
        result = CallResult(Disposition.NO_ANSWER, now + timedelta(seconds=25), dial_status="NOANSWER")
    else:
        outcome = "opt_out" if acc == "A2" else "promise_to_pay"
        answered = now + timedelta(seconds=5)
        result = CallResult(
            Disposition.ANSWERED,
            now + timedelta(seconds=40),
            answered_at=answered,
            dial_status="ANSWER",
            events=((answered, "answer", {"channel": "Local/x"}),),
            ivr=_ivr(answered + timedelta(seconds=1), name, outcome),
        )
    await store.finish_attempt(attempt, result, TargetUpdate(TargetState.DONE, now), "dialer:test")


# -- texts ----------------------------------------------------------------------------

WEI_TEXT = (
    "Acme Lending: Wei Zhang, your payment of $123.45 is due 2025-03-15. "
    "Questions? Call 800-555-0199. Reply STOP to opt out."
)
ZHANG_TEXT = "【安和贷】张伟您好，您的欠款123.45元将于2025年3月15日到期，详询4008001234。回T退订"
WEI_REPLY = "Wei Zhang here, call me at 202-555-0188 please"
STRANGER = "+12025550199"


@dataclass(frozen=True, slots=True)
class SeededTexts:
    sent: dict[str, int]  # a name for each text -> its message id


def _allow_text(
    account: Account, history: Sequence[PastMessage], opted_out: frozenset[str], prefs: Preferences
) -> Decision:
    return Decision(
        True, (Reason("window", "09:00 local is inside 08:00-21:00"), Reason("sms-cap", "text 1 of 2"))
    )


def _refuse_text(
    account: Account, history: Sequence[PastMessage], opted_out: frozenset[str], prefs: Preferences
) -> Decision:
    return Decision(False, (Reason("sms-daily-cap", "2 of 2 texts today"),), DAY1 + timedelta(days=1))


async def seed_texts(settings: Settings) -> SeededTexts:
    """Texts around `seed`'s calls, written through the store as the sender and receiver write them.

    A1 (Wei Zhang): a reminder delivered at 13:00, a reply for a person at 13:20 (with another
    number in it), the call at 14:00, a reminder that failed at 14:30, one refused at 15:00
    (daily cap), and "Stop. Thank you" at 16:00, which opts the number out of texts.
    A2 (张伟): a Chinese reminder delivered, then 退订 (texts and calls). And a reply from a
    number that is no account's.
    """
    store = await open_store(settings)
    try:
        return await _seed_texts(store)
    finally:
        await store.close()


async def _seed_texts(store: Store) -> SeededTexts:
    a1, a2 = await store.account("A1"), await store.account("A2")
    assert a1 is not None and a2 is not None
    at = DAY1 - timedelta(hours=1)  # 13:00 on the first call's day
    sent: dict[str, int] = {}
    sent["wei-1"] = await _text(store, a1, "b1", WEI_TEXT, "gsm-7", at)
    await _states(
        store,
        sent["wei-1"],
        at,
        ("submitted", "0: Accepted for delivery"),
        ("delivered", "stat:DELIVRD err:000"),
    )
    await _inbound(store, a1.phone_e164, WEI_REPLY, at + timedelta(minutes=20), ReplyKind.FOR_PERSON, ())
    later = DAY1 + timedelta(minutes=30)
    sent["wei-2"] = await _text(store, a1, "b2", WEI_TEXT, "gsm-7", later)
    await _states(
        store,
        sent["wei-2"],
        later,
        ("submitted", "0: Accepted for delivery"),
        ("failed", "stat:UNDELIV err:001"),
    )
    request = TextRequest(a1, "b3", "reminder-en-US#due_today", WEI_TEXT, "gsm-7", 1, "kannel")
    refused = await store.claim_message(
        request, DAY1 + timedelta(hours=1), _refuse_text, "test", DAY1 - timedelta(days=7)
    )
    assert isinstance(refused, Decision) and not refused.allowed
    await _inbound(
        store,
        a1.phone_e164,
        "Stop. Thank you",
        DAY1 + timedelta(hours=2),
        ReplyKind.OPT_OUT,
        ("sms",),
        "STOP",
    )
    day2 = DAY1 + timedelta(hours=12)  # 02:00 UTC is 10:00 in Shanghai
    sent["zhang"] = await _text(store, a2, "b1", ZHANG_TEXT, "ucs-2", day2)
    await _states(
        store,
        sent["zhang"],
        day2,
        ("submitted", "0: Accepted for delivery"),
        ("delivered", "stat:DELIVRD err:000"),
    )
    await _inbound(
        store, a2.phone_e164, "退订", day2 + timedelta(minutes=5), ReplyKind.OPT_OUT, ("sms", "voice"), "退订"
    )
    await _inbound(store, STRANGER, "wrong number", day2 + timedelta(minutes=6), ReplyKind.FOR_PERSON, ())
    return SeededTexts(sent)


async def _text(store: Store, account: Account, batch: str, text: str, coding: str, at: datetime) -> int:
    template = f"reminder-{account.language}#before_due"
    request = TextRequest(account, batch, template, text, coding, 1, "kannel")
    got = await store.claim_message(request, at, _allow_text, "test", at - timedelta(days=7))
    assert isinstance(got, Message)
    return got.id


async def _states(store: Store, message_id: int, at: datetime, *steps: tuple[str, str]) -> None:
    for n, (state, reason) in enumerate(steps, start=1):
        source = "submit" if state == "submitted" else "report"
        moved = await store.advance_message(
            message_id,
            MessageState(state),
            at + timedelta(seconds=10 * n),
            "dialer:test",
            source,
            reason,
            f"gw-{message_id}",
        )
        assert moved


async def _inbound(
    store: Store,
    phone: str,
    text: str,
    at: datetime,
    kind: ReplyKind,
    channels: tuple[str, ...],
    keyword: str = "",
) -> None:
    inbound = InboundText(
        phone, "10690000", text, at, kind, keyword=keyword, gateway_ref=f"ref-{at.timestamp()}"
    )
    result = await store.record_inbound(inbound, channels, at, "sms:test")
    assert result.new

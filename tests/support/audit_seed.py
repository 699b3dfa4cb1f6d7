"""Test data for the audit page, written through the public Store API as the dialer writes it.

Four calls on three days: two answered with a real WAV each (one a Chinese borrower),
one unanswered, and one whose recordings row points outside the recordings folder.
"""

from __future__ import annotations

import csv
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from audit.users import create_user
from dialer.accounts.importer import import_accounts
from dialer.accounts.parse import ImportSettings
from dialer.core.config import Settings
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
from dialer.store import SqliteStore, Store, TargetUpdate
from dialer.store.evidence import RecordingFacts, facts
from tests.support.borrowers import HEADER

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
    store = await SqliteStore.open(settings.path(settings.store.path))
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

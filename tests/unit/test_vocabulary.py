"""One vocabulary (issue 10 item 3): rule ids and flags are enums, and no flag comes from prose.

Flags used to be read from English: `cap-reached` by a regex `call (\\d+) of (\\d+)` over a reason's
detail, `reconciled` by looking for "reconciled" or "adopted" in the attempt's note. A reason or a
note that merely *says* those words must raise nothing; the structured fields (a reason's
`used`/`limit`, a result's `recovered`) decide, and the flags stored stay the words they were.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from dialer.asterisk.ami import AmiEndpoint
from dialer.campaign.engine import Dialer
from dialer.core.clock import FixedClock
from dialer.core.flags import BLOCKING_RULES, FLAGS, decided_flags, ended_flags
from dialer.core.models import (
    Account,
    Attempt,
    CallResult,
    Decision,
    Disposition,
    IvrSummary,
    PastAttempt,
    Reason,
)
from dialer.core.vocab import Flag, Outcome, RuleId
from dialer.policy.gate import PackGate
from dialer.policy.packs import load_pack
from dialer.store import SqliteStore, Store
from tests.support.config import make_settings
from tests.support.fake_ami import FakeAmi
from tests.support.project import PROJECT_ROOT
from tests.support.records import record

NOW = datetime(2026, 11, 30, 15, tzinfo=UTC)  # 10:00 in New York


def account(zones: tuple[str, ...] = ("America/New_York",), derived: bool = False) -> Account:
    return Account(
        1, "A1", "D1", "Test", "+12025550101", zones, derived, 123450, "USD", date(2026, 12, 1), "en-US"
    )


# -- rule ids and flags: one enum each ---------------------------------------------------------------


def test_blocking_rules_are_the_rule_ids_that_can_refuse_in_their_order() -> None:
    assert BLOCKING_RULES == (
        "window",
        "inconvenient",
        "daily-cap",
        "7-in-7",
        "sms-daily-cap",
        "sms-weekly-cap",
        "conversation",
        "min-gap",
        "holiday",
        "quiet-day",
        "opt-out",
        "person",
        "debts",
        "zone-unknown",
        "zone-invalid",
        "prompts",
    )
    assert all(isinstance(rule, RuleId) for rule in BLOCKING_RULES)
    assert set(RuleId) - set(BLOCKING_RULES) == {RuleId.CONSENT, RuleId.PRIOR_CONSENT}


def test_every_flag_has_its_meaning_and_is_documented() -> None:
    assert set(FLAGS) == set(Flag) and all(len(meaning) > 10 for meaning in FLAGS.values())
    audit_doc = (PROJECT_ROOT / "docs" / "audit.md").read_text(encoding="utf-8")
    assert [f for f in Flag if f"`{f}`" not in audit_doc] == []


def test_every_rule_id_is_documented() -> None:
    policy_doc = (PROJECT_ROOT / "docs" / "policy.md").read_text(encoding="utf-8")
    assert [r for r in RuleId if f"`{r}`" not in policy_doc] == []


def test_a_pack_cites_its_rules_by_rule_id() -> None:
    pack = load_pack("us-regf")
    assert {rule for rule, _ in pack.sources} >= {RuleId.WINDOW, RuleId.SEVEN_IN_SEVEN}
    assert all(isinstance(rule, RuleId) for rule, _ in pack.sources)


# -- cap-reached: from the reason's count, not its words ----------------------------------------------


def test_prose_that_says_call_n_of_n_raises_no_cap_flag() -> None:
    """Before: any reason whose detail read "call 3 of 3" (here a window reason) flagged cap-reached."""
    said = Decision(True, (Reason(RuleId.WINDOW, "inside 08:00-21:00; call 3 of 3 voice calls today"),))
    assert decided_flags(account(), said) == []
    counted = Decision(True, (Reason(RuleId.DAILY_CAP, "the last one today", used=3, limit=3),))
    assert decided_flags(account(), counted) == ["cap-reached"]
    room = Decision(True, (Reason(RuleId.DAILY_CAP, "call 2 of 3", used=2, limit=3),))
    assert decided_flags(account(), room) == []


def past(attempt_id: int, at: datetime) -> PastAttempt:
    return PastAttempt(attempt_id, at, 1, Disposition.NO_ANSWER, "D1")


def test_the_engine_counts_the_cap_in_fields_and_the_detail_is_unchanged() -> None:
    """cn allows 3 calls a day: the third is "call 3 of 3", its reason carries used=3, limit=3."""
    gate = PackGate(load_pack("cn"))
    shanghai = account(("Asia/Shanghai",))
    at = datetime(2026, 11, 30, 3, tzinfo=UTC)  # 11:00 in Shanghai
    history = [past(1, at - timedelta(hours=2)), past(2, at - timedelta(hours=1))]
    third = gate.decide(shanghai, at, history, False)
    [cap] = [r for r in third.reasons if r.rule is RuleId.DAILY_CAP]
    assert third.allowed and (cap.used, cap.limit) == (3, 3) and cap.detail.startswith("call 3 of 3 ")
    assert decided_flags(shanghai, third) == ["cap-reached"]
    second = gate.decide(shanghai, at, history[:1], False)
    [cap] = [r for r in second.reasons if r.rule is RuleId.DAILY_CAP]
    assert (cap.used, cap.limit) == (2, 3) and decided_flags(shanghai, second) == []


def test_seven_in_seven_counts_in_fields() -> None:
    gate = PackGate(load_pack("us-regf"))
    history = [past(i, NOW - timedelta(days=i)) for i in range(1, 7)]
    seventh = gate.decide(account(), NOW, history, False)
    [seven] = [r for r in seventh.reasons if r.rule is RuleId.SEVEN_IN_SEVEN]
    assert seventh.allowed and (seven.used, seven.limit) == (7, 7) and "call 7 of 7" in seven.detail
    assert decided_flags(account(), seventh) == ["cap-reached"]


def test_consent_and_zone_flags_come_from_rule_ids_and_the_account() -> None:
    reasons = (Reason(RuleId.CONSENT, "agreed"), Reason(RuleId.PRIOR_CONSENT, "given yesterday"))
    flags = decided_flags(account(("America/New_York", "America/Chicago"), True), Decision(True, reasons))
    assert flags == ["consent", "multi-zone", "prior-consent", "zone-derived"]
    assert all(type(f) is str for f in flags)  # stored and hashed as plain words


# -- reconciled: from the result's `recovered`, not its note -------------------------------------------


def result(note: str = "", recovered: bool = False, outcome: str = "") -> CallResult:
    ivr = IvrSummary("reminder-en-US", outcome, None, None, True, ()) if outcome else None
    return CallResult(Disposition.ANSWERED, NOW, note=note, ivr=ivr, recovered=recovered)


def test_a_note_that_says_reconciled_or_adopted_raises_no_flag() -> None:
    """Before: a note such as "originate refused: not adopted" flagged the call reconciled."""
    assert ended_flags(result("originate refused: channel not adopted")) == []
    assert ended_flags(result("reconciled by hand")) == []
    assert ended_flags(result(recovered=True)) == ["reconciled"]


def test_outcome_flags_compare_the_outcome_enum() -> None:
    assert ended_flags(result(outcome=Outcome.OPT_OUT)) == ["opt-out"]
    assert ended_flags(result(outcome="dispute")) == ["dispute"]
    assert ended_flags(result(outcome=Outcome.WRONG_NUMBER)) == ["wrong-party"]
    assert ended_flags(CallResult(Disposition.UNKNOWN, NOW)) == ["outcome-lost"]


@asynccontextmanager
async def leftovers(tmp_path: Path, accounts: int) -> AsyncIterator[tuple[FakeAmi, Store, Any, Path]]:
    """`accounts` attempts a previous dialer left open, a scripted Asterisk, and this run's store."""
    fake = FakeAmi()
    port = await fake.start()
    settings = make_settings(
        tmp_path,
        asterisk={"reconnect_delay": "0.1s", "action_timeout": "1s"},
        dialer={"ring_timeout": "1s", "max_call": "5s", "poll_interval": "0.05s", "shutdown_grace": "10s"},
    )
    db = settings.path(settings.store.path)
    try:
        store = await SqliteStore.open(db)
    except BaseException:
        await fake.stop()
        raise
    try:
        phones = [f"+1202555{100 + i:04d}" for i in range(accounts)]
        await store.upsert_accounts([record(f"A{i}", p) for i, p in enumerate(phones)], NOW)
        campaign = await store.create_campaign("c", NOW)
        await store.add_targets(campaign.id, NOW)
        for target in await store.due_targets(campaign.id, NOW, 10):
            attempt = await store.claim(
                target,
                NOW,
                lambda *a: Decision(True, (Reason(RuleId.WINDOW, "inside"),)),
                lambda i, at: str(settings.path(Path("recordings")) / str(i)),
                "old-dialer",
                NOW - timedelta(days=7),
            )
            assert isinstance(attempt, Attempt)
        endpoint = AmiEndpoint("127.0.0.1", port, "duecall", "s3cret")
        gate, clock = PackGate(load_pack("us-regf")), FixedClock(NOW)
        dialer = Dialer(settings, store, campaign, gate, clock, endpoint, dialer_id="old-dialer")
        yield fake, store, dialer, db
    finally:
        await store.close()
        await fake.stop()


async def test_recovered_calls_are_flagged_reconciled_and_a_lost_one_is_not(tmp_path: Path) -> None:
    """Three calls left open by a killed dialer: one with its result in AstDB, one still up (adopted),
    one without a trace. The first two are `reconciled`, the third `outcome-lost`, as before."""
    async with leftovers(tmp_path, accounts=3) as (fake, store, dialer, db):
        instance = await store.instance_id()
        fake.astdb[f"duecall/{instance}-1/dial"] = "BUSY,17"
        fake.channels.add(f"dc-{instance}-2")
        task = asyncio.create_task(asyncio.wait_for(dialer.run(timedelta(0)), 20))
        while f"{instance}-2" not in dialer._calls:
            await asyncio.sleep(0.02)
        fake.emit(
            Event="UserEvent",
            UserEvent="DueCallDial",
            Attempt=f"{instance}-2",
            DialStatus="NOANSWER",
            Cause="19",
        )
        await task
    with sqlite3.connect(db) as conn:
        notes = dict(conn.execute("SELECT id, note FROM attempts"))
        flags = list(conn.execute("SELECT attempt_id, flag FROM attempt_flags ORDER BY attempt_id, flag"))
    assert "reconciled from AstDB" in notes[1] and "adopted after restart" in notes[2]
    assert "outcome lost" in notes[3]
    assert [(i, f) for i, f in flags if f in ("reconciled", "outcome-lost")] == [
        (1, "reconciled"),
        (2, "reconciled"),
        (3, "outcome-lost"),
    ]


def test_no_flag_is_read_from_a_note_or_a_detail() -> None:
    """The flags module reads no English: no regex, no substring test on a note or a detail."""
    source = (PROJECT_ROOT / "dialer" / "core" / "flags.py").read_text(encoding="utf-8")
    assert "import re" not in source and not re.search(r"\.(note|detail)\b", source)

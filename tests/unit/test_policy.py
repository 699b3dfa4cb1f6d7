"""The dialer's policy gate: store history mapped into the engine, settings layered on packs."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from dialer.core.config import PolicySettings
from dialer.core.errors import ConfigError
from dialer.core.models import Account, Disposition, PastAttempt
from dialer.policy.engine import decide
from dialer.policy.gate import PackGate, contact_of, outcome_of, pack_from_settings, region_zones
from dialer.policy.jsonl import check_lines
from dialer.policy.packs import load_pack

NY = ZoneInfo("America/New_York")


def account(*zones: str, phone: str = "+12025550101") -> Account:
    return Account(1, "A1", "D1", "Test", phone, tuple(zones), False, 1000, "USD", date(2026, 12, 1), "en-US")


def past(
    n: int,
    at: datetime,
    disposition: Disposition | None = Disposition.NO_ANSWER,
    cause: str = "",
    outcome: str = "",
) -> PastAttempt:
    return PastAttempt(n, at, 1, disposition, "D1", cause, outcome)


@pytest.mark.parametrize(
    ("disposition", "cause", "expected"),
    [
        (Disposition.ANSWERED, "16", "answered"),
        (Disposition.BUSY, "17", "busy"),
        (Disposition.FAILED, "1", "not_in_service"),
        (Disposition.FAILED, "34", "failed"),
        (Disposition.MACHINE, "16", "voicemail"),
        (Disposition.HUNG_UP_EARLY, "16", "dropped"),
        (Disposition.CUT, "16", "dropped"),
        (Disposition.NO_ANSWER, "", "no_answer"),
        (Disposition.UNKNOWN, "", "unknown"),  # lost: counted as connected (cn-as-written) and unanswered
        (None, "", "unknown"),  # still open: counted
    ],
)
def test_outcomes_from_dispositions(disposition: Disposition | None, cause: str, expected: str) -> None:
    assert outcome_of(past(1, datetime(2026, 11, 28, tzinfo=UTC), disposition, cause)) == expected


def test_a_right_party_ivr_outcome_is_a_conversation() -> None:
    at = datetime(2026, 11, 28, 15, tzinfo=UTC)
    assert contact_of(past(1, at, Disposition.ANSWERED, "16", "promise_to_pay")).conversation
    assert not contact_of(past(1, at, Disposition.ANSWERED, "16", "wrong_number")).conversation
    assert contact_of(past(7, at)).debts == ("D1",) and contact_of(past(7, at)).ref == "7"


def test_conversation_bars_calls_for_seven_days_under_reg_f() -> None:
    gate = PackGate(load_pack("us-regf"))
    talked = datetime(2026, 11, 30, 10, 0, tzinfo=NY)  # Monday, day 1
    history = [past(3, talked.astimezone(UTC), Disposition.ANSWERED, "16", "dispute")]
    blocked = gate.decide(account("America/New_York"), datetime(2026, 12, 6, 12, tzinfo=NY), history, False)
    assert not blocked.allowed and blocked.reasons[0].rule == "conversation"
    assert "3" in blocked.reasons[0].detail
    assert blocked.next_allowed_at == datetime(2026, 12, 7, 8, 0, tzinfo=NY)  # day 8, window start


def test_settings_layer_on_the_pack() -> None:
    pack = pack_from_settings(
        PolicySettings(
            pack="cn",
            window_start=time(9),
            max_attempts_per_day=2,
            quiet_weekdays=("sun",),
            holidays_country="CN",
        )
    )
    assert (pack.window_start, pack.window_end) == (time(9), time(21))
    assert pack.max_voice_per_day == 3 and pack.lender.max_voice_per_day == 2
    assert pack.lender.quiet_weekdays == (6,) and pack.lender.holidays_country == "CN"
    with pytest.raises(ConfigError, match="empty"):
        pack_from_settings(PolicySettings(window_start=time(20), window_end=time(9)))


def test_lender_daily_cap_is_stricter_than_the_pack() -> None:
    gate = PackGate(pack_from_settings(PolicySettings(pack="us-regf", max_attempts_per_day=1)))
    at = datetime(2026, 11, 30, 15, tzinfo=NY)
    decision = gate.decide(account("America/New_York"), at, [past(9, at - timedelta(hours=2))], False)
    assert not decision.allowed and decision.reasons[0].rule == "daily-cap"
    assert "9" in decision.reasons[0].detail


def test_unknown_zone_uses_every_zone_of_the_numbers_country_under_reg_f() -> None:
    assert {"America/New_York", "America/Los_Angeles", "Pacific/Honolulu"} <= set(region_zones("US"))
    gate = PackGate(load_pack("us-regf"))
    # 09:00 in New York is 04:00 in Honolulu: too early somewhere in the country
    early = gate.decide(account(), datetime(2026, 11, 30, 9, tzinfo=NY), [], False)
    assert not early.allowed and early.reasons[0].rule == "window"
    late_morning = datetime(2026, 11, 30, 15, tzinfo=NY)  # 10:00 Honolulu, 15:00 New York
    assert gate.decide(account(), late_morning, [], False).allowed


def test_cn_blocks_an_unknown_zone() -> None:
    gate = PackGate(load_pack("cn"))
    decision = gate.decide(account(phone="+8613912345678"), datetime(2026, 11, 30, 4, tzinfo=UTC), [], False)
    assert not decision.allowed and decision.next_allowed_at is None


def test_opt_out_blocks_for_good() -> None:
    decision = PackGate(load_pack("cn")).decide(
        account("Asia/Shanghai"), datetime(2026, 11, 30, 4, tzinfo=UTC), [], True
    )
    assert not decision.allowed and decision.reasons[0].rule == "opt-out"
    assert decision.next_allowed_at is None


def test_stated_inconvenient_times_and_consents_are_honoured() -> None:
    from dialer.core.models import Preferences

    gate = PackGate(load_pack("us-regf"))
    lunch = Preferences(inconvenient=((time(12), time(13)),))
    noon = datetime(2026, 11, 30, 12, 30, tzinfo=NY)
    blocked = gate.decide(account("America/New_York"), noon, [], False, lunch)
    assert not blocked.allowed and blocked.reasons[0].rule == "inconvenient"
    assert blocked.next_allowed_at == datetime(2026, 11, 30, 13, 0, tzinfo=NY)
    late = datetime(2026, 11, 30, 21, 30, tzinfo=NY)
    consent = Preferences(consents=((late - timedelta(hours=1), late + timedelta(hours=1)),))
    assert gate.decide(account("America/New_York"), late, [], False, consent).allowed


def test_a_consent_recorded_in_the_store_exempts_calls_for_7_days() -> None:
    """1006.14(b)(3)(i) in the dialer: a conversation on a call under a consent given the day before
    starts no bar; the decision names the consent and cites its source."""
    from dialer.core.models import Preferences

    gate = PackGate(load_pack("us-regf"))
    talked = datetime(2026, 11, 30, 10, 0, tzinfo=NY)
    history = [past(3, talked.astimezone(UTC), Disposition.ANSWERED, "16", "promise_to_pay")]
    window = (talked - timedelta(hours=1), talked + timedelta(days=3))
    given = Preferences(consents=(window,), consents_given=(talked - timedelta(days=1),))
    later = datetime(2026, 12, 2, 11, tzinfo=NY)
    decision = gate.decide(account("America/New_York"), later, history, False, given)
    assert decision.allowed
    seven, bar = [r.detail for r in decision.reasons if r.rule == "prior-consent"]
    assert seven.startswith("7-in-7 does not apply") and bar.startswith("conversation does not apply")
    assert "consent 0 given 2026-11-29 15:00 UTC" in bar and "[source: 12 CFR 1006.14(b)(2)(ii)" in bar
    # The same window recorded without a given time (an older database): the bar holds.
    undated = Preferences(consents=(window,))
    blocked = gate.decide(account("America/New_York"), later, history, False, undated)
    assert not blocked.allowed and blocked.reasons[0].rule == "conversation"
    assert "[source: 12 CFR 1006.14(b)(2)(ii)" in blocked.reasons[0].detail


async def test_the_store_keeps_when_each_consent_was_given(tmp_path: Path) -> None:
    from dialer.core.models import Preferences
    from dialer.store import SqliteStore

    store = await SqliteStore.open(tmp_path / "t.db")
    try:
        day = datetime(2026, 11, 30, 15, tzinfo=UTC)
        window = (day, day + timedelta(days=2))
        await store.set_preferences("+12025550101", Preferences(consents=(window,)), day)
        assert (await store.preferences("+12025550101")).consents_given == (day,)
        # Recorded again later with a new window: the old one keeps its time, the new one is now.
        other = (day + timedelta(days=3), day + timedelta(days=4))
        later = day + timedelta(days=2)
        await store.set_preferences("+12025550101", Preferences(consents=(window, other)), later)
        assert (await store.preferences("+12025550101")).consents_given == (day, later)
    finally:
        await store.close()


def test_the_lender_may_cap_texts_in_its_settings() -> None:
    assert (PolicySettings().max_sms_per_day, PolicySettings().max_sms_per_week) == (None, None)
    settings = PolicySettings(max_sms_per_day=2, max_sms_per_week=5)
    assert (settings.max_sms_per_day, settings.max_sms_per_week) == (2, 5)
    for bad in ({"max_sms_per_day": 0}, {"max_sms_per_week": 0}, {"max_sms_per_day": "two"}):
        with pytest.raises(ValidationError, match="max_sms_per"):
            PolicySettings.model_validate(bad)


def test_the_history_read_for_a_text_covers_the_sms_week() -> None:
    """The store reads `history_window` back: cn counts no calls over 7 days, its texts do."""
    gate = PackGate(load_pack("cn"))
    assert gate.history_window >= timedelta(days=8)


def test_policy_check_decides_texts_under_the_sms_caps() -> None:
    texts = [
        {"at": f"2026-11-30T{13 + i}:00:00Z", "channel": "sms", "direction": "outbound"} for i in range(3)
    ]
    base = {"at": "2026-11-30T18:00:00Z", "consumer": {"time_zones": ["America/New_York"]}}
    lines = [
        {**base, "id": "third-text", "channel": "sms", "history": texts[:2]},
        {**base, "id": "fourth-text", "channel": "sms", "history": texts},
        {**base, "id": "call", "channel": "voice", "debts": ["D1"], "history": texts},
        {**base, "id": "no-outcome", "channel": "voice", "history": [{**texts[0], "channel": "voice"}]},
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    out = list(check_lines(io.BytesIO(data), load_pack, "us-regf", decide))
    assert [o.get("decision", o.get("error")) for o in out] == [
        "allow",
        "block",
        "allow",
        "line 4: history[0].outcome: a voice call needs its outcome (answered, no_answer, busy, ...)",
    ]
    assert [r["rule"] for r in out[1]["reasons"]] == ["sms-daily-cap"]
    assert "3 of 3 texts today" in out[1]["reasons"][0]["detail"]
    assert out[1]["next_allowed_at"] == "2026-12-01T13:00:00Z"  # 08:00 the next day in New York
    assert "sms-daily-cap" not in {r["rule"] for r in out[2]["reasons"]}

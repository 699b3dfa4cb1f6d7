"""The contact policy engine, rule by rule (table-driven), and the policy pack loader."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dialer.core.errors import ConfigError
from dialer.policy.engine import (
    Consent,
    Consumer,
    Contact,
    LenderSettings,
    Outcome,
    Pack,
    Proposal,
    TimeRange,
    Verdict,
    decide,
    history_window,
)
from dialer.policy.packs import load_pack, load_pack_file

NY = "America/New_York"
LA = "America/Los_Angeles"
CHI = "America/Chicago"
PHX = "America/Phoenix"
HNL = "Pacific/Honolulu"
SH = "Asia/Shanghai"


def loc(text: str, zone: str = NY) -> datetime:
    """A local wall time in `zone`, as UTC (fold 0 for ambiguous times)."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def call(
    ref: str,
    at: datetime,
    outcome: Outcome = "no_answer",
    debts: tuple[str, ...] = ("D1",),
    *,
    direction: str = "outbound",
    channel: str = "voice",
    person: str = "consumer",
    conversation: bool = False,
) -> Contact:
    assert direction in ("outbound", "inbound") and channel in ("voice", "sms")
    return Contact(
        ref=ref,
        at=at,
        channel="voice" if channel == "voice" else "sms",
        direction="outbound" if direction == "outbound" else "inbound",
        person=person,
        debts=debts,
        outcome=outcome,
        conversation=conversation,
    )


@dataclass
class Case:
    name: str
    pack: str
    at: datetime
    allowed: bool
    next_at: datetime | None
    rules: set[str] = field(default_factory=set)  # the blocking rules, exactly
    zones: tuple[str, ...] = (NY,)
    history: tuple[Contact, ...] = ()
    channel: str = "voice"
    person: str = "consumer"
    debts: tuple[str, ...] = ("D1",)
    inconvenient: tuple[TimeRange, ...] = ()
    consents: tuple[Consent, ...] = ()
    opted_out: frozenset[str] = frozenset()
    lender: LenderSettings = field(default_factory=LenderSettings)
    refs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # rule -> history refs it relied on
    detail: dict[str, str] = field(default_factory=dict)  # rule -> substring of its detail

    def run(self) -> Verdict:
        proposal = Proposal(
            id=self.name,
            at=self.at,
            channel="voice" if self.channel == "voice" else "sms",
            person=self.person,
            debts=self.debts,
            consumer=Consumer(self.zones, self.inconvenient, self.consents, self.opted_out),
            history=self.history,
        )
        return decide(load_pack(self.pack, self.lender), proposal)


def check(case: Case) -> None:
    verdict = case.run()
    blocking = {f.rule for f in verdict.reasons if f.blocking}
    assert verdict.allowed == case.allowed, verdict
    assert blocking == case.rules, verdict
    assert verdict.allowed == (not blocking)
    assert verdict.next_allowed_at == case.next_at, (verdict.next_allowed_at, verdict)
    for rule, refs in case.refs.items():
        assert next(f.history for f in verdict.reasons if f.rule == rule) == refs, verdict
    for rule, text in case.detail.items():
        assert text in next(f.detail for f in verdict.reasons if f.rule == rule), verdict
    if case.next_at is not None and not case.allowed:
        again = replace(case, at=case.next_at).run()
        assert again.allowed, again
        before = replace(case, at=case.next_at - timedelta(minutes=1)).run()
        assert not before.allowed, before


# --- window ---------------------------------------------------------------------------------------

WINDOW = [
    Case(
        "ny dst start 07:59", "us-regf", loc("2026-03-08T07:59"), False, loc("2026-03-08T08:00"), {"window"}
    ),
    Case("ny dst start 08:00", "us-regf", loc("2026-03-08T08:00"), True, loc("2026-03-08T08:00")),
    Case("ny dst start 08:00 is 12:00Z", "us-regf", utc("2026-03-08T12:00"), True, utc("2026-03-08T12:00")),
    Case(
        "ny dst start 01:30 EST",
        "us-regf",
        utc("2026-03-08T06:30"),
        False,
        utc("2026-03-08T12:00"),
        {"window"},
    ),
    Case("ny dst start 20:59", "us-regf", loc("2026-03-08T20:59"), True, loc("2026-03-08T20:59")),
    Case(
        "ny dst start 21:00", "us-regf", loc("2026-03-08T21:00"), False, utc("2026-03-09T12:00"), {"window"}
    ),
    Case(
        "ny dst end 07:59 EST", "us-regf", loc("2026-11-01T07:59"), False, utc("2026-11-01T13:00"), {"window"}
    ),
    Case(
        "ny dst end 01:30 second",
        "us-regf",
        utc("2026-11-01T06:30"),
        False,
        utc("2026-11-01T13:00"),
        {"window"},
    ),
    Case(
        "ny dst end eve 21:00 EDT",
        "us-regf",
        utc("2026-11-01T01:00"),
        False,
        utc("2026-11-01T13:00"),
        {"window"},
    ),
    Case("ny dst end 20:59 EST", "us-regf", utc("2026-11-02T01:59"), True, utc("2026-11-02T01:59")),
    Case(
        "ny dst end 21:00 EST", "us-regf", utc("2026-11-02T02:00"), False, utc("2026-11-02T13:00"), {"window"}
    ),
    Case(
        "phoenix no dst 07:59",
        "us-regf",
        utc("2026-03-08T14:59"),
        False,
        utc("2026-03-08T15:00"),
        {"window"},
        (PHX,),
    ),
    Case(
        "phoenix summer 08:00",
        "us-regf",
        utc("2026-07-01T15:00"),
        True,
        utc("2026-07-01T15:00"),
        zones=(PHX,),
    ),
    Case(
        "phoenix summer 21:00",
        "us-regf",
        utc("2026-07-02T04:00"),
        False,
        utc("2026-07-02T15:00"),
        {"window"},
        (PHX,),
    ),
    Case(
        "honolulu 21:00",
        "us-regf",
        loc("2026-07-01T21:00", HNL),
        False,
        utc("2026-07-02T18:00"),
        {"window"},
        (HNL,),
    ),
    Case("honolulu 08:00", "us-regf", utc("2026-11-01T18:00"), True, utc("2026-11-01T18:00"), zones=(HNL,)),
    Case(
        "ny+la: la too early",
        "us-regf",
        utc("2026-03-09T12:00"),
        False,
        utc("2026-03-09T15:00"),
        {"window"},
        (NY, LA),
    ),
    Case(
        "ny+la: both inside",
        "us-regf",
        utc("2026-03-10T00:30"),
        True,
        utc("2026-03-10T00:30"),
        zones=(NY, LA),
    ),
    Case(
        "ny+la: ny too late",
        "us-regf",
        utc("2026-03-10T01:00"),
        False,
        utc("2026-03-10T15:00"),
        {"window"},
        (NY, LA),
    ),
    Case(
        "ny+hnl+phx",
        "us-regf",
        utc("2026-07-01T13:00"),
        False,
        utc("2026-07-01T18:00"),
        {"window"},
        (NY, HNL, PHX),
    ),
    Case(
        "ny+shanghai: an hour in common",
        "us-regf",
        utc("2026-03-09T13:00"),
        False,
        utc("2026-03-10T00:00"),
        {"window"},
        (NY, SH),
    ),
    Case(
        "london+shanghai+la share no window",
        "us-regf",
        utc("2026-03-09T13:00"),
        False,
        None,
        {"window"},
        (SH, "Europe/London", LA),
        detail={"window": "share no calling window"},
    ),
    Case("shanghai 08:00", "cn", loc("2026-03-09T08:00", SH), True, utc("2026-03-09T00:00"), zones=(SH,)),
    Case(
        "shanghai 21:00", "cn", loc("2026-03-09T21:00", SH), False, utc("2026-03-10T00:00"), {"window"}, (SH,)
    ),
    Case(
        "sms window",
        "us-regf",
        loc("2026-03-09T21:00"),
        False,
        loc("2026-03-10T08:00"),
        {"window"},
        channel="sms",
    ),
]


@pytest.mark.parametrize("case", WINDOW, ids=lambda c: c.name)
def test_window(case: Case) -> None:
    check(case)


def test_window_detail_names_zones_and_local_times() -> None:
    verdict = WINDOW[0].run()
    assert (
        verdict.reasons[0].detail == "outside 08:00-21:00 (pack us-regf): America/New_York 2026-03-08 07:59"
    )


# --- never: opt-out, person, zone ----------------------------------------------------------------

NEVER = [
    Case(
        "opt-out voice",
        "us-regf",
        loc("2026-03-09T10:00"),
        False,
        None,
        {"opt-out"},
        opted_out=frozenset({"voice"}),
    ),
    Case(
        "opt-out sms only",
        "us-regf",
        loc("2026-03-09T10:00"),
        True,
        loc("2026-03-09T10:00"),
        opted_out=frozenset({"sms"}),
    ),
    Case(
        "cn third party",
        "cn",
        loc("2026-03-09T10:00", SH),
        False,
        None,
        {"person"},
        (SH,),
        person="emergency_contact",
    ),
    Case(
        "cn third party sms",
        "cn",
        loc("2026-03-09T10:00", SH),
        False,
        None,
        {"person"},
        (SH,),
        channel="sms",
        person="x",
    ),
    Case(
        "us third party", "us-regf", loc("2026-03-09T10:00"), True, loc("2026-03-09T10:00"), person="spouse"
    ),
    Case("cn unknown zone", "cn", utc("2026-03-09T02:00"), False, None, {"zone-unknown"}, ()),
    Case(
        "us unknown zone (region)",
        "us-regf",
        utc("2026-03-09T15:00"),
        False,
        None,
        {"zone-unknown"},
        (),
        detail={"zone-unknown": "resolve"},
    ),
    Case("bad zone", "us-regf", utc("2026-03-09T15:00"), False, None, {"zone-invalid"}, ("Mars/Olympus",)),
    Case("voice without debts", "us-regf", loc("2026-03-09T10:00"), False, None, {"debts"}, debts=()),
    Case(
        "opt-out and third party",
        "cn",
        loc("2026-03-09T10:00", SH),
        False,
        None,
        {"opt-out", "person"},
        (SH,),
        person="x",
        opted_out=frozenset({"voice"}),
    ),
]


@pytest.mark.parametrize("case", NEVER, ids=lambda c: c.name)
def test_never(case: Case) -> None:
    check(case)


# --- daily cap -----------------------------------------------------------------------------------

_SH_DAY = (
    call("0", loc("2026-03-09T08:10", SH)),
    call("1", loc("2026-03-09T08:20", SH), channel="sms"),
    call("2", loc("2026-03-09T09:00", SH), "busy"),
    call("3", loc("2026-03-09T09:30", SH), "answered", direction="inbound"),
    call("4", loc("2026-03-09T09:40", SH), person="emergency_contact"),
    call("5", loc("2026-03-09T10:00", SH), "failed"),
    call("6", loc("2026-03-08T20:00", SH)),  # yesterday
)
DAILY = [
    Case(
        "cn 3 dialled today",
        "cn",
        loc("2026-03-09T11:00", SH),
        False,
        loc("2026-03-10T08:00", SH),
        {"daily-cap"},
        (SH,),
        _SH_DAY,
        refs={"daily-cap": ("0", "2", "5")},
        detail={"daily-cap": "3 of 3 voice calls today (Asia/Shanghai): history 0, 2, 5"},
    ),
    Case(
        "cn 2 dialled today",
        "cn",
        loc("2026-03-09T11:00", SH),
        True,
        loc("2026-03-09T11:00", SH),
        zones=(SH,),
        history=_SH_DAY[:4],
    ),
    Case(
        "cn cap is voice only",
        "cn",
        loc("2026-03-09T11:00", SH),
        True,
        loc("2026-03-09T11:00", SH),
        zones=(SH,),
        history=_SH_DAY,
        channel="sms",
    ),
    Case(
        "cap and window",
        "cn",
        loc("2026-03-09T21:30", SH),
        False,
        loc("2026-03-10T08:00", SH),
        {"daily-cap", "window"},
        (SH,),
        _SH_DAY,
    ),
    Case(
        "lender cap stricter",
        "us-regf",
        loc("2026-03-09T11:00"),
        False,
        loc("2026-03-10T08:00"),
        {"daily-cap"},
        history=(call("a", loc("2026-03-09T08:00")), call("b", loc("2026-03-09T09:00"), "answered")),
        lender=LenderSettings(max_voice_per_day=2),
    ),
    Case(
        "dst start day cap (23h day)",
        "us-regf",
        loc("2026-03-08T20:00"),
        False,
        loc("2026-03-09T08:00"),
        {"daily-cap"},
        history=(call("a", utc("2026-03-08T05:30")),),  # 00:30 EST, same local day
        lender=LenderSettings(max_voice_per_day=1),
    ),
    Case(
        "dst end day: 23:30 EST previous day not counted",
        "us-regf",
        loc("2026-11-01T09:00"),
        True,
        loc("2026-11-01T09:00"),
        history=(call("a", utc("2026-11-01T03:59")),),  # 23:59 EDT Oct 31
        lender=LenderSettings(max_voice_per_day=1),
    ),
    Case(
        "two zones: counted from the earliest midnight",
        "us-regf",
        utc("2026-03-10T16:00"),
        False,
        utc("2026-03-11T15:00"),
        {"daily-cap"},
        (NY, LA),
        history=(call("a", utc("2026-03-10T04:30")),),  # NY 00:30 Mar 10, LA 21:30 Mar 9
        lender=LenderSettings(max_voice_per_day=1),
        refs={"daily-cap": ("a",)},
    ),
]


@pytest.mark.parametrize("case", DAILY, ids=lambda c: c.name)
def test_daily_cap(case: Case) -> None:
    check(case)


# --- 7-in-7 ----------------------------------------------------------------------------------------


def week(
    debts: tuple[str, ...] = ("D1",), outcomes: tuple[Outcome, ...] = ("no_answer",) * 7
) -> tuple[Contact, ...]:
    """Calls on Mar 2 (2), Mar 5 (3), Mar 7 (2), NY; proposal day Mar 8 = day 7 of Mar 2..8."""
    days = ["02", "02", "05", "05", "05", "07", "07"]
    return tuple(
        call(str(i), loc(f"2026-03-{day}T{10 + i}:00"), outcome, debts)
        for i, (day, outcome) in enumerate(zip(days, outcomes, strict=True))
    )


_AT = loc("2026-03-08T10:00")
_MON = loc("2026-03-09T08:00")
SEVEN = [
    Case(
        "7 in 7 blocks until day 1 leaves",
        "us-regf",
        _AT,
        False,
        _MON,
        {"7-in-7"},
        history=week(),
        refs={"7-in-7": tuple(str(i) for i in range(7))},
        detail={"7-in-7": "7 of 7 calls about debt D1"},
    ),
    Case(
        "busy and not in service excluded",
        "us-regf",
        _AT,
        True,
        _AT,
        history=week(
            outcomes=("no_answer", "busy", "voicemail", "not_in_service", "dropped", "no_answer", "answered")
        ),
    ),
    Case("failed counts", "us-regf", _AT, False, _MON, {"7-in-7"}, history=week(outcomes=("failed",) * 7)),
    Case(
        "under prior consent (given the day before) and inbound excluded",
        "us-regf",
        _AT,
        True,
        _AT,
        history=(
            *week()[:5],
            call("c", loc("2026-03-07T09:00")),
            call("i", loc("2026-03-07T09:30"), "answered", direction="inbound"),
            week()[5],
        ),
        consents=(Consent(loc("2026-03-07T08:00"), loc("2026-03-07T12:00"), loc("2026-03-06T15:00"), "k1"),),
        detail={"7-in-7": "not counted, under prior consent (1006.14(b)(3)(i)): history c (consent k1 given"},
    ),
    Case(
        "a consent given 8 days before the call does not exempt it",
        "us-regf",
        _AT,
        False,
        _MON,
        {"7-in-7"},
        history=(*week()[:5], call("c", loc("2026-03-07T09:00")), week()[5]),
        consents=(Consent(loc("2026-03-07T08:00"), loc("2026-03-07T12:00"), loc("2026-02-27T09:00")),),
    ),
    Case(
        "a consent with no recorded given time does not exempt",
        "us-regf",
        _AT,
        False,
        _MON,
        {"7-in-7"},
        history=(*week()[:5], call("c", loc("2026-03-07T09:00")), week()[5]),
        consents=(Consent(loc("2026-03-07T08:00"), loc("2026-03-07T12:00")),),
    ),
    Case(
        "one call, several debts: counts for D2",
        "us-regf",
        _AT,
        False,
        _MON,
        {"7-in-7"},
        history=week(("D1", "D2")),
        debts=("D2",),
    ),
    Case("other debt free", "us-regf", _AT, True, _AT, history=week(("D1", "D2")), debts=("D3",)),
    Case(
        "several debts: the full one blocks",
        "us-regf",
        _AT,
        False,
        _MON,
        {"7-in-7"},
        history=week(("D1",)),
        debts=("D3", "D1"),
        detail={"7-in-7": "debt D1"},
    ),
    Case("other person", "us-regf", _AT, True, _AT, history=week(), person="spouse"),
    Case("sms exempt", "us-regf", _AT, True, _AT, history=week(), channel="sms"),
    Case(
        "day d-7 out of the window",
        "us-regf",
        loc("2026-03-09T10:00"),
        True,
        loc("2026-03-09T10:00"),
        history=tuple(call(str(i), loc(f"2026-03-02T{10 + i}:00")) for i in range(7)),
    ),
    Case(
        "two days to wait",
        "us-regf",
        _AT,
        False,
        loc("2026-03-10T08:00"),
        {"7-in-7"},
        history=tuple(
            replace(c, at=c.at + timedelta(days=1)) if c.at < loc("2026-03-03") else c for c in week()
        ),
    ),
    Case(
        "local day, not utc: 23:30 local Mar 1 is out",
        "us-regf",
        _AT,
        True,
        _AT,
        history=(
            call("x", loc("2026-03-01T23:30")),
            *(call(str(i), loc(f"2026-03-0{2 + i}T10:00")) for i in range(6)),
        ),
    ),
    Case(
        "ma 2 in 7",
        "us-ma",
        _AT,
        False,
        loc("2026-03-12T08:00"),
        {"7-in-7"},
        history=(call("a", loc("2026-03-05T10:00")), call("b", loc("2026-03-06T10:00"))),
    ),
    Case("ma 1 in 7", "us-ma", _AT, True, _AT, history=(call("a", loc("2026-03-05T10:00")),)),
]


@pytest.mark.parametrize("case", SEVEN, ids=lambda c: c.name)
def test_seven_in_seven(case: Case) -> None:
    check(case)


# --- conversation bar ------------------------------------------------------------------------------

_CONV = call("c", loc("2026-03-02T10:00"), "answered", conversation=True)
CONVERSATION = [
    Case(
        "day 7 still barred",
        "us-regf",
        loc("2026-03-08T20:00"),
        False,
        loc("2026-03-09T08:00"),
        {"conversation"},
        history=(_CONV,),
        refs={"conversation": ("c",)},
        detail={"conversation": "America/New_York 2026-03-02 (day 1"},
    ),
    Case(
        "day 1 after the conversation",
        "us-regf",
        loc("2026-03-02T10:30"),
        False,
        loc("2026-03-09T08:00"),
        {"conversation"},
        history=(_CONV,),
    ),
    Case("day 8 free", "us-regf", loc("2026-03-09T08:00"), True, loc("2026-03-09T08:00"), history=(_CONV,)),
    Case(
        "inbound conversation starts it",
        "us-regf",
        loc("2026-03-05T12:00"),
        False,
        loc("2026-03-09T08:00"),
        {"conversation"},
        history=(replace(_CONV, direction="inbound"),),
    ),
    Case(
        "other debt",
        "us-regf",
        loc("2026-03-05T12:00"),
        True,
        loc("2026-03-05T12:00"),
        history=(_CONV,),
        debts=("D2",),
    ),
    Case(
        "conversation on dst end day",
        "us-regf",
        loc("2026-11-03T12:00"),
        False,
        loc("2026-11-08T08:00"),
        {"conversation"},
        history=(replace(_CONV, at=loc("2026-11-01T23:30")),),
    ),
    Case(
        "answered without conversation",
        "us-regf",
        loc("2026-03-05T12:00"),
        True,
        loc("2026-03-05T12:00"),
        history=(replace(_CONV, conversation=False),),
    ),
    Case(
        "sms exempt",
        "us-regf",
        loc("2026-03-05T12:00"),
        True,
        loc("2026-03-05T12:00"),
        history=(_CONV,),
        channel="sms",
    ),
]


@pytest.mark.parametrize("case", CONVERSATION, ids=lambda c: c.name)
def test_conversation_bar(case: Case) -> None:
    check(case)


# --- prior consent: outside the Reg F frequencies (12 CFR 1006.14(b)(3)(i)) -----------------------

# Consent given Mar 1 15:00 NY to be called Mar 2 09:00-12:00: within 7 days when the calls are made.
_GIVEN = Consent(loc("2026-03-02T09:00"), loc("2026-03-02T12:00"), loc("2026-03-01T15:00"), "k1")
_STALE = replace(_GIVEN, given_at=loc("2026-02-22T15:00"))  # given 8 days before the call
_UNDATED = replace(_GIVEN, given_at=None)
PRIOR_CONSENT = [
    Case(
        "a conversation on a call under prior consent starts no bar",
        "us-regf",
        loc("2026-03-05T12:00"),
        True,
        loc("2026-03-05T12:00"),
        history=(_CONV,),
        consents=(_GIVEN,),
    ),
    Case(
        "a consent given 8 days before the conversation's call: the bar holds",
        "us-regf",
        loc("2026-03-05T12:00"),
        False,
        loc("2026-03-09T08:00"),
        {"conversation"},
        history=(_CONV,),
        consents=(_STALE,),
    ),
    Case(
        "a consent with no given time: the bar holds",
        "us-regf",
        loc("2026-03-05T12:00"),
        False,
        loc("2026-03-09T08:00"),
        {"conversation"},
        history=(_CONV,),
        consents=(_UNDATED,),
    ),
    Case(
        "an inbound conversation during the consent still starts the bar",
        "us-regf",
        loc("2026-03-05T12:00"),
        False,
        loc("2026-03-09T08:00"),
        {"conversation"},
        history=(replace(_CONV, direction="inbound"),),
        consents=(_GIVEN,),
    ),
    Case(
        "the proposal under prior consent: neither the bar nor 7-in-7 blocks it",
        "us-regf",
        loc("2026-03-08T10:30"),
        True,
        loc("2026-03-08T10:30"),
        history=(*week(), replace(_CONV, ref="c", at=loc("2026-03-07T18:00"))),
        consents=(Consent(loc("2026-03-08T10:00"), loc("2026-03-08T11:00"), loc("2026-03-07T18:05"), "k2"),),
        detail={"prior-consent": "under consent k2 given 2026-03-07 23:05 UTC"},
    ),
    Case(
        "the same proposal once the consent's 7 days are over",
        "us-regf",
        loc("2026-03-08T10:30"),
        False,
        loc("2026-03-14T08:00"),
        {"7-in-7", "conversation"},
        history=(*week(), replace(_CONV, ref="c", at=loc("2026-03-07T18:00"))),
        consents=(Consent(loc("2026-03-08T10:00"), loc("2026-03-08T11:00"), loc("2026-02-28T18:05"), "k2"),),
    ),
    Case(
        "a consent's 7 days end with local day 7 (day 1 = its day), before 168 hours",
        "us-regf",
        loc("2026-03-08T10:30"),
        False,
        loc("2026-03-09T08:00"),
        {"7-in-7"},
        history=week(),
        consents=(  # given Mar 1 18:00: day 7 is Mar 7, so Mar 8 10:30 is outside
            Consent(loc("2026-03-08T10:00"), loc("2026-03-08T11:00"), loc("2026-03-01T18:00")),
        ),
    ),
    Case(
        "barred, but a prior consent starting tomorrow lets the call through then",
        "us-regf",
        loc("2026-03-05T12:00"),
        False,
        loc("2026-03-06T10:00"),
        {"conversation"},
        history=(_CONV,),
        consents=(Consent(loc("2026-03-06T10:00"), loc("2026-03-06T11:00"), loc("2026-03-05T11:00")),),
    ),
    Case(
        "us-ma: 940 CMR 7.04(1)(f) has no consent exception, consented calls count toward 2",
        "us-ma",
        loc("2026-03-05T12:00"),
        False,
        loc("2026-03-09T08:00"),
        {"7-in-7"},
        history=(call("a", loc("2026-03-02T10:00")), call("b", loc("2026-03-02T11:00"))),
        consents=(_GIVEN,),
    ),
    Case(
        "the lender's daily cap still counts consented calls",
        "us-regf",
        loc("2026-03-02T11:30"),
        False,
        loc("2026-03-03T08:00"),
        {"daily-cap"},
        history=(call("a", loc("2026-03-02T09:30")),),
        consents=(_GIVEN,),
        lender=LenderSettings(max_voice_per_day=1),
    ),
    Case(
        "a consent covers the consumer, not a third party",
        "us-regf",
        loc("2026-03-05T12:00"),
        False,
        loc("2026-03-09T08:00"),
        {"conversation"},
        history=(replace(_CONV, person="spouse"),),
        person="spouse",
        consents=(_GIVEN,),
    ),
]


@pytest.mark.parametrize("case", PRIOR_CONSENT, ids=lambda c: c.name)
def test_prior_consent(case: Case) -> None:
    check(case)


def test_prior_consent_names_the_consent_in_the_7_in_7_count() -> None:
    """Five counted calls and one under consent k1: the proposal is call 6, and the reason says why."""
    history = (*week()[2:], call("c", loc("2026-03-02T10:30")))
    case = Case("named", "us-regf", _AT, True, _AT, history=history, consents=(_GIVEN,))
    (seven,) = [f for f in case.run().reasons if f.rule == "7-in-7"]
    assert seven.detail.startswith("call 6 of 7 about debt D1")
    assert "history c (consent k1 given 2026-03-01 20:00 UTC (to be called 2026-03-02 14:00" in seven.detail
    assert "c" not in seven.history
    assert "1006.14(b)(2)(i)" in seven.source and "(b)(3)(i)" in seven.source


# --- cn: the strict reading (default) and the texts as written --------------------------------------

_SH_ANSWERED = tuple(
    call(str(i), loc(f"2026-03-09T{9 + i:02}:00", SH), outcome)
    for i, outcome in enumerate(("answered", "voicemail", "dropped"))
)
_SH_UNANSWERED = tuple(
    call(str(i), loc(f"2026-03-09T{9 + i:02}:00", SH), outcome)
    for i, outcome in enumerate(("no_answer", "busy", "failed"))
)
CN_READINGS = [
    Case(
        "cn: 21:30 is after the strict window",
        "cn",
        loc("2026-03-09T21:30", SH),
        False,
        loc("2026-03-10T08:00", SH),
        {"window"},
        (SH,),
    ),
    Case(
        "cn-as-written: 21:30 is inside 08:00-22:00",
        "cn-as-written",
        loc("2026-03-09T21:30", SH),
        True,
        loc("2026-03-09T21:30", SH),
        zones=(SH,),
    ),
    Case(
        "cn-as-written: 22:00 is not",
        "cn-as-written",
        loc("2026-03-09T22:00", SH),
        False,
        loc("2026-03-10T08:00", SH),
        {"window"},
        (SH,),
    ),
    Case(
        "cn-as-written: agreed 22:30",
        "cn-as-written",
        loc("2026-03-09T22:30", SH),
        True,
        loc("2026-03-09T22:30", SH),
        zones=(SH,),
        consents=(Consent(loc("2026-03-09T22:00", SH), loc("2026-03-09T23:00", SH)),),
    ),
    Case(
        "cn: 3 unanswered dialled calls reach the cap",
        "cn",
        loc("2026-03-09T15:00", SH),
        False,
        loc("2026-03-10T08:00", SH),
        {"daily-cap"},
        (SH,),
        _SH_UNANSWERED,
        detail={"daily-cap": "3 of 3 voice calls today"},
    ),
    Case(
        "cn-as-written: unanswered, busy, failed calls are not connected",
        "cn-as-written",
        loc("2026-03-09T15:00", SH),
        True,
        loc("2026-03-09T15:00", SH),
        set(),
        (SH,),
        _SH_UNANSWERED,
        detail={"daily-cap": "call 1 of 3 connected voice calls today"},
    ),
    Case(
        "cn-as-written: 3 connected calls reach the cap",
        "cn-as-written",
        loc("2026-03-09T15:00", SH),
        False,
        loc("2026-03-10T08:00", SH),
        {"daily-cap"},
        (SH,),
        _SH_ANSWERED,
        detail={"daily-cap": "3 of 3 connected voice calls today"},
    ),
    Case(
        "cn-as-written: a call still open counts as connected",
        "cn-as-written",
        loc("2026-03-09T15:00", SH),
        False,
        loc("2026-03-10T08:00", SH),
        {"daily-cap"},
        (SH,),
        (*_SH_ANSWERED[:2], call("open", loc("2026-03-09T14:59", SH), "unknown")),
    ),
    Case(
        "cn-as-written: the lender's cap still counts dialled calls",
        "cn-as-written",
        loc("2026-03-09T15:00", SH),
        False,
        loc("2026-03-10T08:00", SH),
        {"daily-cap"},
        (SH,),
        _SH_UNANSWERED,
        lender=LenderSettings(max_voice_per_day=3),
        detail={"daily-cap": "3 of 3 voice calls today"},
    ),
]


@pytest.mark.parametrize("case", CN_READINGS, ids=lambda c: c.name)
def test_cn_strict_and_as_written(case: Case) -> None:
    check(case)


def test_every_reason_cites_its_source() -> None:
    verdict = CN_READINGS[-1].run()
    (cap,) = [f for f in verdict.reasons if f.rule == "daily-cap"]
    assert cap.source == "lender setting policy.max_attempts_per_day"
    strict = CN_READINGS[0].run()
    assert [f.source for f in strict.reasons] == [load_pack("cn").source("window")]
    assert "22:00-08:00" in strict.reasons[0].source


# --- consent and inconvenient times ---------------------------------------------------------------

_NIGHT = (TimeRange(time(20, 0), time(9, 0)),)
_LUNCH = (TimeRange(time(12, 0), time(13, 0)),)
TIMES = [
    Case(
        "consent lifts the window",
        "us-regf",
        loc("2026-03-09T22:00"),
        True,
        loc("2026-03-09T22:00"),
        consents=(Consent(loc("2026-03-09T21:30"), loc("2026-03-09T22:30")),),
    ),
    Case(
        "consent ends",
        "us-regf",
        loc("2026-03-09T22:30"),
        False,
        loc("2026-03-10T08:00"),
        {"window"},
        consents=(Consent(loc("2026-03-09T21:30"), loc("2026-03-09T22:30")),),
    ),
    Case(
        "consent starts later",
        "us-regf",
        loc("2026-03-09T21:10"),
        False,
        loc("2026-03-09T21:30"),
        {"window"},
        consents=(Consent(loc("2026-03-09T21:30"), loc("2026-03-09T22:30")),),
    ),
    Case(
        "wrap: 08:30 inside 20-09",
        "us-regf",
        loc("2026-03-09T08:30"),
        False,
        loc("2026-03-09T09:00"),
        {"inconvenient"},
        inconvenient=_NIGHT,
    ),
    Case(
        "wrap: 19:00 fine",
        "us-regf",
        loc("2026-03-09T19:00"),
        True,
        loc("2026-03-09T19:00"),
        inconvenient=_NIGHT,
    ),
    Case(
        "wrap: 20:30 to next 09:00",
        "us-regf",
        loc("2026-03-09T20:30"),
        False,
        loc("2026-03-10T09:00"),
        {"inconvenient"},
        inconvenient=_NIGHT,
    ),
    Case(
        "wrap: 23:00 both",
        "us-regf",
        loc("2026-03-09T23:00"),
        False,
        loc("2026-03-10T09:00"),
        {"inconvenient", "window"},
        inconvenient=_NIGHT,
    ),
    Case(
        "lunch",
        "us-regf",
        loc("2026-03-09T12:15"),
        False,
        loc("2026-03-09T13:00"),
        {"inconvenient"},
        inconvenient=_LUNCH,
        detail={"inconvenient": "12:00-13:00 in America/New_York (12:15)"},
    ),
    Case(
        "lunch in two zones",
        "us-regf",
        loc("2026-03-09T12:30"),
        False,
        loc("2026-03-09T14:00"),
        {"inconvenient"},
        (NY, CHI),
        inconvenient=_LUNCH,
    ),
    Case(
        "consent lifts inconvenient",
        "us-regf",
        loc("2026-03-09T12:15"),
        True,
        loc("2026-03-09T12:15"),
        inconvenient=_LUNCH,
        consents=(Consent(loc("2026-03-09T12:00"), loc("2026-03-09T12:30")),),
    ),
    Case(
        "inconvenient applies to sms",
        "us-regf",
        loc("2026-03-09T12:15"),
        False,
        loc("2026-03-09T13:00"),
        {"inconvenient"},
        inconvenient=_LUNCH,
        channel="sms",
    ),
    Case(
        "inconvenient on dst start day",
        "us-regf",
        loc("2026-03-08T08:00"),
        False,
        loc("2026-03-08T09:00"),
        {"inconvenient"},
        inconvenient=_NIGHT,
    ),
]


@pytest.mark.parametrize("case", TIMES, ids=lambda c: c.name)
def test_consent_and_inconvenient(case: Case) -> None:
    check(case)


# --- lender settings --------------------------------------------------------------------------------

_US_HOL = LenderSettings(holidays_country="US")
LENDER = [
    Case(
        "christmas",
        "us-regf",
        loc("2026-12-25T10:00"),
        False,
        loc("2026-12-26T08:00"),
        {"holiday"},
        lender=_US_HOL,
        detail={"holiday": "2026-12-25 Christmas Day in America/New_York"},
    ),
    Case(
        "christmas sms",
        "us-regf",
        loc("2026-12-25T10:00"),
        False,
        loc("2026-12-26T08:00"),
        {"holiday"},
        lender=_US_HOL,
        channel="sms",
    ),
    Case(
        "christmas then a quiet weekend",
        "us-regf",
        loc("2026-12-25T10:00"),
        False,
        loc("2026-12-28T08:00"),
        {"holiday"},
        lender=replace(_US_HOL, quiet_weekdays=(5, 6)),
    ),
    Case(
        "christmas in honolulu still, not in ny",
        "us-regf",
        utc("2026-12-26T09:00"),
        False,
        utc("2026-12-26T18:00"),
        {"holiday", "window"},
        (NY, HNL),
        lender=_US_HOL,
    ),
    Case(
        "cn national day",
        "cn",
        loc("2026-10-01T10:00", SH),
        False,
        loc("2026-10-04T08:00", SH),  # national day holidays: Oct 1-3
        {"holiday"},
        (SH,),
        lender=LenderSettings(holidays_country="CN"),
    ),
    Case(
        "day after christmas",
        "us-regf",
        loc("2026-12-26T10:00"),
        True,
        loc("2026-12-26T10:00"),
        lender=_US_HOL,
    ),
    Case(
        "quiet sunday (dst start)",
        "us-regf",
        loc("2026-03-08T10:00"),
        False,
        loc("2026-03-09T08:00"),
        {"quiet-day"},
        lender=LenderSettings(quiet_weekdays=(6,)),
        detail={"quiet-day": "Sunday 2026-03-08"},
    ),
    Case(
        "monday not quiet",
        "us-regf",
        loc("2026-03-09T10:00"),
        True,
        loc("2026-03-09T10:00"),
        lender=LenderSettings(quiet_weekdays=(6,)),
    ),
    Case(
        "min gap after no answer",
        "us-regf",
        loc("2026-03-09T10:03"),
        False,
        loc("2026-03-09T10:05"),
        {"min-gap"},
        history=(call("u", loc("2026-03-09T10:00")),),
        lender=LenderSettings(min_gap_unanswered_minutes=5),
        refs={"min-gap": ("u",)},
    ),
    Case(
        "min gap after busy",
        "us-regf",
        loc("2026-03-09T10:03"),
        False,
        loc("2026-03-09T10:05"),
        {"min-gap"},
        history=(call("u", loc("2026-03-09T10:00"), "busy"),),
        lender=LenderSettings(min_gap_unanswered_minutes=5),
    ),
    Case(
        "min gap passed",
        "us-regf",
        loc("2026-03-09T10:05"),
        True,
        loc("2026-03-09T10:05"),
        history=(call("u", loc("2026-03-09T10:00")),),
        lender=LenderSettings(min_gap_unanswered_minutes=5),
    ),
    Case(
        "answered: no gap",
        "us-regf",
        loc("2026-03-09T10:03"),
        True,
        loc("2026-03-09T10:03"),
        history=(call("u", loc("2026-03-09T10:00"), "answered"),),
        lender=LenderSettings(min_gap_unanswered_minutes=5),
    ),
    Case(
        "min gap runs into 21:00",
        "us-regf",
        loc("2026-03-09T20:58"),
        False,
        loc("2026-03-10T08:00"),
        {"min-gap"},
        history=(call("u", loc("2026-03-09T20:57")),),
        lender=LenderSettings(min_gap_unanswered_minutes=5),
    ),
]


@pytest.mark.parametrize("case", LENDER, ids=lambda c: c.name)
def test_lender_settings(case: Case) -> None:
    check(case)


def test_allowed_verdict_carries_informative_findings() -> None:
    verdict = replace(DAILY[1]).run()
    assert verdict.allowed and verdict.reasons
    assert all(not f.blocking for f in verdict.reasons)
    cap = next(f for f in verdict.reasons if f.rule == "daily-cap")
    assert cap.detail == "call 3 of 3 voice calls today (Asia/Shanghai)"
    assert cap.history == ("0", "2")


def test_naive_datetimes_are_refused() -> None:
    proposal = Proposal("p", datetime(2026, 3, 9, 10), "voice", "consumer", ("D1",), Consumer((NY,)))
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(Pack("x"), proposal)


def test_every_reason_at_once() -> None:
    case = Case(
        "all",
        "us-regf",
        loc("2026-12-25T22:00"),
        False,
        loc("2026-12-28T08:00"),
        {"window", "holiday", "quiet-day", "7-in-7", "conversation", "inconvenient"},
        history=(
            *(replace(c, at=c.at + timedelta(days=294)) for c in week()),
            call("c", loc("2026-12-24T10:00"), "answered", conversation=True),
        ),
        inconvenient=_NIGHT,
        lender=LenderSettings(holidays_country="US", quiet_weekdays=(4, 5)),  # Friday, Saturday
    )
    case.next_at = loc("2026-12-31T09:00")  # conversation bar through Dec 30, then the night range
    check(case)


# --- SMS caps ------------------------------------------------------------------------------------


def text(ref: str, at: datetime, *, direction: str = "outbound", person: str = "consumer") -> Contact:
    """A text in the history: every one passed in counts, whatever its outcome."""
    return call(ref, at, "unknown", (), direction=direction, channel="sms", person=person)


# us-regf: 3 texts a day, 7 in 7 consecutive local days (DueCall defaults); us-ma: 2 a week.
_WEEK_OF_TEXTS = (
    text("a", loc("2026-03-07T10:00")),
    text("b", loc("2026-03-07T11:00")),
    text("c", loc("2026-03-07T12:00")),
    text("d", loc("2026-03-08T10:00")),  # the DST change's 23-hour day
    text("e", loc("2026-03-08T11:00")),
    text("f", loc("2026-03-09T10:00")),
    text("g", loc("2026-03-09T11:00")),
)
SMS = [
    Case(
        "sms 2 today: the third is allowed",
        "us-regf",
        loc("2026-03-10T12:00"),
        True,
        loc("2026-03-10T12:00"),
        history=(text("a", loc("2026-03-10T08:00")), text("b", loc("2026-03-10T09:00"))),
        channel="sms",
        refs={"sms-daily-cap": ("a", "b")},
        detail={"sms-daily-cap": "text 3 of 3 texts today (America/New_York)"},
    ),
    Case(
        "sms 3 today: blocked until tomorrow's window",
        "us-regf",
        loc("2026-03-10T12:00"),
        False,
        loc("2026-03-11T08:00"),
        {"sms-daily-cap"},
        history=tuple(text(r, loc(f"2026-03-10T0{h}:30")) for r, h in (("a", 8), ("b", 9), ("c", 9))),
        channel="sms",
        refs={"sms-daily-cap": ("a", "b", "c")},
        detail={"sms-daily-cap": "3 of 3 texts today (America/New_York): history a, b, c"},
    ),
    Case(
        "sms: yesterday, inbound, another person's texts and calls are not counted",
        "us-regf",
        loc("2026-03-10T12:00"),
        True,
        loc("2026-03-10T12:00"),
        history=(
            *(text(f"y{i}", loc(f"2026-03-09T2{i}:00")) for i in range(3)),  # yesterday
            *(text(f"in{i}", loc(f"2026-03-10T{8 + i:02d}:00"), direction="inbound") for i in range(3)),
            *(text(f"s{i}", loc(f"2026-03-10T{8 + i:02d}:10"), person="spouse") for i in range(3)),
            *(call(f"v{i}", loc(f"2026-03-10T{8 + i:02d}:20")) for i in range(3)),
        ),
        channel="sms",
        refs={"sms-daily-cap": ()},
    ),
    Case(
        "sms: 7 in the 7 days: blocked until the oldest day leaves the week",
        "us-regf",
        loc("2026-03-10T12:00"),
        False,
        loc("2026-03-14T08:00"),  # Mar 7's three texts leave the 7 days on Mar 14
        {"sms-weekly-cap"},
        history=_WEEK_OF_TEXTS,
        channel="sms",
        refs={"sms-weekly-cap": ("a", "b", "c", "d", "e", "f", "g")},
        detail={"sms-weekly-cap": "7 of 7 texts within 7 consecutive days around 2026-03-04..2026-03-10"},
    ),
    Case(
        "sms: 6 in the 7 days: the seventh is allowed",
        "us-regf",
        loc("2026-03-10T12:00"),
        True,
        loc("2026-03-10T12:00"),
        history=_WEEK_OF_TEXTS[1:],
        channel="sms",
        detail={"sms-weekly-cap": "text 7 of 7 texts in the 7 days 2026-03-04..2026-03-10"},
    ),
    Case(
        "sms: texts already decided for later days count toward today's weeks",
        "us-regf",
        loc("2026-03-10T12:00"),
        False,
        loc("2026-03-18T08:00"),  # texts Mar 11-14: every week holding Mar 10..17 holds all 7
        {"sms-weekly-cap"},
        history=tuple(text(f"n{i}", loc(f"2026-03-1{1 + i // 2}T1{i % 2}:00")) for i in range(7)),
        channel="sms",
    ),
    Case(
        "sms: two zones, the day counted from the earliest midnight",
        "us-regf",
        utc("2026-03-10T16:00"),  # NY 12:00, LA 09:00
        False,
        utc("2026-03-11T15:00"),  # LA 08:00 Mar 11 (NY's Mar 11 starts at 04:00Z: LA is past 21:00)
        {"sms-daily-cap"},
        (NY, LA),
        history=(text("a", utc("2026-03-10T04:30")),),  # NY 00:30 Mar 10, LA 21:30 Mar 9
        channel="sms",
        lender=LenderSettings(max_sms_per_day=1),
        refs={"sms-daily-cap": ("a",)},
        detail={"sms-daily-cap": "from the earliest local midnight"},
    ),
    Case(
        "sms: LA alone, that text was yesterday",
        "us-regf",
        utc("2026-03-10T16:00"),
        True,
        utc("2026-03-10T16:00"),
        zones=(LA,),
        history=(text("a", utc("2026-03-10T04:30")),),
        channel="sms",
        lender=LenderSettings(max_sms_per_day=1),
    ),
    Case(
        "sms: two zones, the week counted from the earliest midnight",
        "us-regf",
        utc("2026-03-10T16:00"),
        False,
        utc("2026-03-11T15:00"),  # NY's Mar 11: the week no longer holds NY's Mar 4
        {"sms-weekly-cap"},
        (NY, LA),
        # NY 00:30 Mar 4 (in NY's week Mar 4..10), LA 21:30 Mar 3 (outside LA's)
        history=(text("a", loc("2026-03-04T00:30")), text("b", loc("2026-03-09T10:00"))),
        channel="sms",
        lender=LenderSettings(max_sms_per_week=2),
        refs={"sms-weekly-cap": ("a", "b")},
    ),
    Case(
        "sms: LA alone, the week holds one text",
        "us-regf",
        utc("2026-03-10T16:00"),
        True,
        utc("2026-03-10T16:00"),
        zones=(LA,),
        history=(text("a", loc("2026-03-04T00:30")), text("b", loc("2026-03-09T10:00"))),
        channel="sms",
        lender=LenderSettings(max_sms_per_week=2),
    ),
    Case(
        "sms: lender's daily cap stricter than the pack's",
        "us-regf",
        loc("2026-03-10T12:00"),
        False,
        loc("2026-03-11T08:00"),
        {"sms-daily-cap"},
        history=(text("a", loc("2026-03-10T08:00")),),
        channel="sms",
        lender=LenderSettings(max_sms_per_day=1),
        detail={"sms-daily-cap": "1 of 1 texts today"},
    ),
    Case(
        "sms: lender's looser cap doesn't lift the pack's",
        "us-regf",
        loc("2026-03-10T12:00"),
        False,
        loc("2026-03-11T08:00"),
        {"sms-daily-cap"},
        history=tuple(text(r, loc(f"2026-03-10T0{h}:00")) for r, h in (("a", 8), ("b", 9), ("c", 9))),
        channel="sms",
        lender=LenderSettings(max_sms_per_day=5, max_sms_per_week=50),
        detail={"sms-daily-cap": "3 of 3 texts today"},
    ),
    Case(
        "sms: lender's weekly cap stricter than the pack's",
        "us-regf",
        loc("2026-03-10T12:00"),
        False,
        loc("2026-03-16T08:00"),  # the week Mar 9..15 holds Mar 9's text and Mar 10's
        {"sms-weekly-cap"},
        history=(text("a", loc("2026-03-09T10:00")), text("b", loc("2026-03-10T09:00"))),
        channel="sms",
        lender=LenderSettings(max_sms_per_week=2),
    ),
    Case(
        "sms: cap and window",
        "cn",
        loc("2026-03-10T21:30", SH),
        False,
        loc("2026-03-11T08:00", SH),
        {"sms-daily-cap", "window"},
        (SH,),
        tuple(text(r, loc(f"2026-03-10T1{h}:00", SH)) for r, h in (("a", 0), ("b", 1), ("c", 2))),
        channel="sms",
    ),
    Case(
        "us-ma: 2 texts in 7 days",
        "us-ma",
        loc("2026-03-10T12:00"),
        False,
        loc("2026-03-13T08:00"),  # Mar 6's text leaves the week on Mar 13
        {"sms-weekly-cap", "7-in-7"},  # texts naming no debt count toward D1's 2 as well
        history=(text("a", loc("2026-03-06T10:00")), text("b", loc("2026-03-09T10:00"))),
        channel="sms",
    ),
    Case(
        "us-ma: a call and a text share 940 CMR 7.04(1)(f)'s 2",
        "us-ma",
        loc("2026-03-10T12:00"),
        False,
        loc("2026-03-13T08:00"),
        {"7-in-7"},
        history=(call("a", loc("2026-03-06T10:00")), text("b", loc("2026-03-09T10:00"))),
        channel="sms",
        refs={"7-in-7": ("a", "b")},
        detail={"7-in-7": "2 of 2 calls and texts about debt D1"},
    ),
    Case(
        "us-ma: texts count toward a call's 2",
        "us-ma",
        loc("2026-03-10T12:00"),
        False,
        loc("2026-03-13T08:00"),
        {"7-in-7"},
        history=(text("a", loc("2026-03-06T10:00")), text("b", loc("2026-03-09T10:00"))),
    ),
    Case(
        "us-ma: a text about another debt doesn't count toward D1",
        "us-ma",
        loc("2026-03-10T12:00"),
        True,
        loc("2026-03-10T12:00"),
        history=(
            call("a", loc("2026-03-06T10:00")),
            replace(text("b", loc("2026-03-09T10:00")), debts=("D2",)),
        ),
        channel="sms",
        detail={"7-in-7": "text 2 of 2 calls and texts about debt D1"},
    ),
    Case(
        "us-ma: a text must name its debts",
        "us-ma",
        loc("2026-03-10T12:00"),
        False,
        None,
        {"debts"},
        channel="sms",
        debts=(),
    ),
    Case(
        "sms: no voice rule applies to a text",
        "us-regf",
        loc("2026-03-10T12:00"),
        True,
        loc("2026-03-10T12:00"),
        # 7 calls in 7 days, a conversation yesterday, an unanswered call a minute ago, 3 calls today
        history=(
            *(call(f"v{i}", loc(f"2026-03-0{4 + i}T10:00")) for i in range(5)),
            call("conv", loc("2026-03-09T11:00"), "answered", conversation=True),
            *(call(f"t{i}", loc(f"2026-03-10T{9 + i:02d}:30")) for i in range(3)),
        ),
        channel="sms",
        lender=LenderSettings(max_voice_per_day=3, min_gap_unanswered_minutes=30),
    ),
    Case(
        "voice: no sms cap applies to a call",
        "us-regf",
        loc("2026-03-10T12:00"),
        True,
        loc("2026-03-10T12:00"),
        history=tuple(text(f"s{i}", loc(f"2026-03-10T0{i}:00")) for i in range(10)),
        lender=LenderSettings(max_sms_per_day=1, max_sms_per_week=1),
    ),
]


@pytest.mark.parametrize("case", SMS, ids=lambda c: c.name)
def test_sms_caps(case: Case) -> None:
    check(case)
    verdict = case.run()
    rules = {f.rule for f in verdict.reasons}
    if case.channel == "voice":
        assert not rules & {"sms-daily-cap", "sms-weekly-cap"}, verdict
    else:  # only us-ma's 7-in-7 counts texts (940 CMR 7.04(1)(f))
        voice_only = {"daily-cap", "conversation", "min-gap"} | (
            {"7-in-7"} if case.pack != "us-ma" else set()
        )
        assert not rules & voice_only, verdict


def test_an_allowed_text_carries_its_counts_and_sources() -> None:
    verdict = SMS[0].run()
    day = next(f for f in verdict.reasons if f.rule == "sms-daily-cap")
    week = next(f for f in verdict.reasons if f.rule == "sms-weekly-cap")
    assert (day.used, day.limit, week.used, week.limit) == (3, 3, 3, 7)
    assert not day.blocking and not week.blocking
    assert "DueCall default" in day.source and "1006.14(a)" in day.source
    assert "DueCall default" in week.source


def test_the_stricter_sms_cap_cites_the_lender() -> None:
    lender = next(c for c in SMS if c.name == "sms: lender's daily cap stricter than the pack's").run()
    (cap,) = [f for f in lender.reasons if f.rule == "sms-daily-cap"]
    assert cap.source == "lender setting policy.max_sms_per_day"
    looser = next(c for c in SMS if c.name == "sms: lender's looser cap doesn't lift the pack's").run()
    (cap,) = [f for f in looser.reasons if f.rule == "sms-daily-cap"]
    assert cap.source == load_pack("us-regf").source("sms-daily-cap")
    ma = next(c for c in SMS if c.name.startswith("us-ma")).run()
    assert all("940 CMR 7.04(1)(f)" in f.source for f in ma.reasons), ma


def test_history_window_covers_the_sms_week() -> None:
    # cn counts no calls over 7 days: before, its window was 3 days and missed the texts' week.
    assert history_window(load_pack("cn")) >= timedelta(days=8)
    only_lender = replace(load_pack("cn"), max_sms_per_week=None, lender=LenderSettings(max_sms_per_week=5))
    assert history_window(only_lender) >= timedelta(days=8)
    # The texts the window drops never change a decision: the farthest zones apart, a text
    # just inside the week and one just outside it.
    pack = load_pack("cn", LenderSettings(max_sms_per_week=1))
    zones = ("Pacific/Kiritimati", "Pacific/Pago_Pago")
    at = utc("2026-03-10T20:00")
    for back in range(0, 12 * 24 * 60, 97):
        history = (text("old", at - timedelta(minutes=back)),)
        proposal = Proposal("w", at, "sms", "consumer", (), Consumer(zones), history)
        trimmed = replace(proposal, history=tuple(h for h in history if h.at >= at - history_window(pack)))
        assert decide(pack, proposal) == decide(pack, trimmed), back


# --- packs ------------------------------------------------------------------------------------------


def test_packs_load() -> None:
    cn, regf, ma = (load_pack(n) for n in ("cn", "us-regf", "us-ma"))
    assert (cn.window_start, cn.window_end, cn.max_voice_per_day, cn.daily_cap_counts, cn.consumer_only) == (
        time(8),
        time(21),
        3,
        "dialled",
        True,
    )
    assert (regf.calls_per_7_days, regf.conversation_bar_days, regf.unknown_zone) == (7, 7, "region")
    assert (regf.seven_consent_exempt, regf.bar_consent_exempt) == (True, True)
    assert (ma.calls_per_7_days, ma.seven_consent_exempt, ma.bar_consent_exempt) == (2, False, True)
    lender = LenderSettings(max_voice_per_day=2)
    assert load_pack("cn", lender).lender is lender


def test_cn_as_written_is_the_texts_reading() -> None:
    written = load_pack("cn-as-written")
    assert (written.window_start, written.window_end, written.max_voice_per_day) == (time(8), time(22), 3)
    assert written.daily_cap_counts == "connected" and written.consumer_only


PACKS = ("cn", "cn-as-written", "us-regf", "us-ma")


@pytest.mark.parametrize("name", PACKS)
def test_every_rule_of_every_pack_cites_its_source(name: str) -> None:
    pack = load_pack(name)
    rules = dict(pack.sources)
    on = {"opt-out", "window", "inconvenient", "consent", "zone-unknown"}
    on |= {"daily-cap"} if pack.max_voice_per_day else set()
    on |= {"person"} if pack.consumer_only else set()
    on |= {"7-in-7"} if pack.calls_per_7_days else set()
    on |= {"conversation"} if pack.conversation_bar_days else set()
    on |= {"sms-daily-cap"} if pack.max_sms_per_day else set()
    on |= {"sms-weekly-cap"} if pack.max_sms_per_week else set()
    assert set(rules) == on
    assert all(len(text) > 10 for text in rules.values()), rules


_GOOD_PACK = (Path(__file__).resolve().parents[2] / "dialer" / "policy" / "packs" / "us-regf.yaml").read_text(
    encoding="utf-8"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("daily_cap: {limit: 3, counts: dialled, sorce: x}\n", "daily_cap.sorce: Extra inputs"),
        ("daily_cap: {limit: 3, counts: dialled}\n", "daily_cap.source: Field required"),
        ("daily_cap: {limit: 3, counts: answered, source: somewhere}\n", "daily_cap.counts"),
        ("daily_cap: {limit: 0, counts: dialled, source: somewhere}\n", "daily_cap.limit"),
        ("consumer_only: {source: ''}\n", "consumer_only.source"),
        ("window: {start: 8:00, end: '21:00', source: x y z}\n", "window.start"),  # 480, sexagesimal
        ("window: {start: '21:00', end: '08:00', source: x y z}\n", "must be before end"),
        ("window: {start: '8am', end: '21:00', source: x y z}\n", "window.start"),
        ("window: {start: '08:00', end: '21:00'}\n", "window.source: Field required"),
        ("seven_in_seven: {limit: '7', consent_exempt: true, source: x y z}\n", "seven_in_seven.limit"),
        ("seven_in_seven: {limit: 7, source: x y z}\n", "seven_in_seven.consent_exempt: Field required"),
        ("unknown_zone: {action: guess, source: x y z}\n", "unknown_zone.action"),
        ("unknown_zone: block\n", "unknown_zone"),
        ("opt_out: {source: x y z}\n", "opt_out.sms_stops: Field required"),  # every pack must say
        (
            "seven_in_seven: {limit: 2, consent_exempt: false, counts_texts: 'yes', source: x y z}\n",
            "seven_in_seven.counts_texts",
        ),
        ("opt_out: {sms_stops: [voice], source: x y z}\n", "must include sms"),
        ("opt_out: {sms_stops: [sms, sms], source: x y z}\n", "names a channel twice"),
        ("opt_out: {sms_stops: [sms, fax], source: x y z}\n", "opt_out.sms_stops.1"),
        ("opt_out: {sms_stops: sms, source: x y z}\n", "opt_out.sms_stops"),
        ("sms_daily_cap: {limit: 0, source: x y z}\n", "sms_daily_cap.limit"),
        ("sms_weekly_cap: {limit: 7}\n", "sms_weekly_cap.source: Field required"),
        ("sms_weekly_cap: {limit: 7, counts: dialled, source: x y z}\n", "sms_weekly_cap.counts: Extra"),
    ],
)
def test_pack_errors_name_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    key = text.split(":")[0]
    kept = "".join(
        block for block in _blocks(_GOOD_PACK) if not block.startswith(f"{key}:")
    )  # the good pack without that rule, then the bad rule
    path.write_text(kept + text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml") as err:
        load_pack_file(path)
    assert expected in str(err.value)


def _blocks(text: str) -> list[str]:
    """A YAML mapping's top-level entries, each with its indented lines."""
    blocks: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith((" ", "#")) and blocks:
            blocks[-1] += line
        elif not line.startswith("#"):
            blocks.append(line)
    return blocks


@pytest.mark.parametrize(
    ("text", "expected"),
    [("- a\n- b\n", "mapping"), ("window: {start: [\n", "invalid YAML"), ("", "opt_out: Field required")],
)
def test_pack_file_shape_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml") as err:
        load_pack_file(path)
    assert expected in str(err.value)


@pytest.mark.parametrize("name", ["../etc/passwd", "CN", "nope", "x" * 300, ""])
def test_pack_names(name: str) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown policy pack .* \(known: cn, cn-as-written, us-ma, us-regf\)"
    ):
        load_pack(name)


def test_packs_say_what_an_sms_opt_out_stops() -> None:
    stops = {name: load_pack(name).sms_opt_out_stops for name in PACKS}
    # 12 CFR 1006.6(e): per medium; 个人信息保护法 art. 44: texts and calls (conservative reading)
    assert stops == {
        "cn": ("sms", "voice"),
        "cn-as-written": ("sms", "voice"),
        "us-regf": ("sms",),
        "us-ma": ("sms",),
    }
    assert "1006.6(e)" in load_pack("us-regf").source("opt-out")
    assert "art. 44" in load_pack("cn").source("opt-out")


def test_packs_load_their_sms_caps() -> None:
    caps = {name: (load_pack(name).max_sms_per_day, load_pack(name).max_sms_per_week) for name in PACKS}
    assert caps == {"cn": (3, 7), "cn-as-written": (3, 7), "us-regf": (3, 7), "us-ma": (2, 2)}
    # A number the law doesn't give says so in its source.
    for name in ("cn", "cn-as-written", "us-regf"):
        pack = load_pack(name)
        assert "DueCall default" in pack.source("sms-daily-cap"), name
        assert "DueCall default" in pack.source("sms-weekly-cap"), name
    assert "DueCall default" not in load_pack("us-ma").source("sms-weekly-cap")
    # Only us-ma counts texts with calls (940 CMR 7.04(1)(f): "via text messaging").
    assert {name for name in PACKS if load_pack(name).seven_counts_texts} == {"us-ma"}

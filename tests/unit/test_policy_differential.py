"""The contact-policy engine decides exactly as it did before it was made fast.

tests/support/policy_reference.py is a verbatim copy of the engine's decision path as it was before
the speed-up (issue 15). Here both decide thousands of random proposals (every pack, random lender
settings and windows, zones with DST, half-hour and 45-minute offsets, times around midnight, window
edges, DST changes and holidays, histories of 0-30 contacts) and must give the same verdict: the
same allowed, every reason (rule, text, history, until, source, counts) and the same next allowed
moment, compared by repr (so even a datetime's tzinfo must match), or raise the same error.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from dialer.policy import engine
from dialer.policy.engine import (
    Channel,
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
    next_window,
)
from dialer.policy.packs import load_pack
from tests.support import policy_reference as reference

ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",  # no DST
    "America/Los_Angeles",
    "America/St_Johns",  # -03:30 with DST
    "Pacific/Honolulu",
    "Asia/Shanghai",
    "Asia/Kolkata",  # +05:30
    "Asia/Kathmandu",  # +05:45
    "Australia/Lord_Howe",  # +10:30, a half-hour DST change
    "Europe/London",
    "Europe/Dublin",  # "negative" DST in tzdata
    "Pacific/Kiritimati",  # +14
    "Pacific/Pago_Pago",  # -11
)
OUTCOMES: tuple[Outcome, ...] = (
    "answered",
    "no_answer",
    "voicemail",
    "busy",
    "not_in_service",
    "failed",
    "dropped",
    "unknown",
)
PACKS = ("cn", "cn-as-written", "us-regf", "us-ma")
_PACKS = {name: load_pack(name) for name in PACKS}
DEBTS = ("D1", "D2", "D3")
# 2026's DST changes (US, EU, Lord Howe, St John's shares the US dates), holidays, a year's end.
MOMENTS = (
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # US spring forward (02:00 New York)
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # EU spring forward
    datetime(2026, 4, 4, 15, 0, tzinfo=UTC),  # Lord Howe falls back 30 min
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),  # Lord Howe springs forward 30 min
    datetime(2026, 10, 25, 1, 0, tzinfo=UTC),  # EU fall back
    datetime(2026, 11, 1, 6, 0, tzinfo=UTC),  # US fall back (02:00 New York)
    datetime(2026, 11, 26, 12, 0, tzinfo=UTC),  # Thanksgiving
    datetime(2026, 12, 25, 5, 0, tzinfo=UTC),  # Christmas
    datetime(2026, 12, 31, 23, 30, tzinfo=UTC),  # New Year
    datetime(2026, 7, 3, 12, 0, tzinfo=UTC),  # Independence Day (observed, a Friday)
    datetime(2026, 12, 2, 15, 0, tzinfo=UTC),  # an ordinary Wednesday
)
WINDOWS = (
    None,  # the pack's own
    None,
    None,
    (time(9, 0), time(17, 0)),
    (time(8, 30), time(20, 45)),
    (time(2, 30), time(3, 30)),  # inside a DST gap or fold where there is one
    (time(0, 0), time(23, 59)),
    (time(1, 0), time(2, 0)),
    (time(22, 0), time(6, 0)),  # start after end: never inside
)


def clock(rng: random.Random) -> time:
    return time(rng.randrange(24), rng.choice((0, 15, 30, 45, rng.randrange(60))))


def pack_of(rng: random.Random) -> Pack:
    lender = LenderSettings(
        max_voice_per_day=rng.choice((None, None, 1, 2, 3, 5)),
        max_sms_per_day=rng.choice((None, None, 1, 2, 4)),
        max_sms_per_week=rng.choice((None, None, 1, 3, 8)),
        min_gap_unanswered_minutes=rng.choice((None, None, 5, 30, 240)),
        quiet_weekdays=tuple(sorted(rng.sample(range(7), rng.choice((0, 0, 0, 1, 2))))),
        holidays_country=rng.choice((None, None, "US", "CN")),
        holidays_subdivision=None,
    )
    if lender.holidays_country == "US" and rng.random() < 0.3:
        lender = replace(lender, holidays_subdivision=rng.choice(("MA", "CA", "ZZ")))  # ZZ: no calendar
    pack = replace(_PACKS[rng.choice(PACKS)], lender=lender)  # as load_pack(name, lender), without YAML
    window = rng.choice(WINDOWS)
    return pack if window is None else replace(pack, window_start=window[0], window_end=window[1])


def moment(rng: random.Random, zones: tuple[str, ...]) -> datetime:
    """Near a DST change or holiday, at a window edge or midnight in one of the zones, or anywhere."""
    base = rng.choice(MOMENTS) + timedelta(minutes=rng.randrange(-3 * 1440, 3 * 1440))
    kind = rng.random()
    if zones and kind < 0.4:  # a local edge: 07:59, 08:00, 20:59, 21:00, 21:59, 00:00, 23:59 ...
        zone = ZoneInfo(rng.choice(zones))
        local = base.astimezone(zone)
        edge = rng.choice((time(8), time(21), time(22), time(0), time(9), time(17), time(2, 30), time(3)))
        wall = datetime.combine(local.date(), edge, zone).replace(fold=rng.randrange(2))
        base = wall.astimezone(UTC) + timedelta(minutes=rng.choice((-1, 0, 0, 1)))
    elif kind < 0.5:
        base = base.replace(second=rng.randrange(60), microsecond=rng.randrange(1_000_000))
    return base


def expressed(rng: random.Random, at: datetime) -> datetime:
    """The same instant, mostly in UTC, sometimes in a zone or a fixed offset (the engine takes any)."""
    r = rng.random()
    if r < 0.85:
        return at
    if r < 0.95:
        return at.astimezone(ZoneInfo(rng.choice(ZONES)))
    return at.astimezone(timezone(timedelta(hours=rng.randrange(-12, 14))))


def history_of(rng: random.Random, at: datetime, people: list[str]) -> tuple[Contact, ...]:
    n = rng.choice((0, 0, rng.randrange(0, 8), rng.randrange(0, 31)))
    dense = rng.random() < 0.3  # a few days full of calls: the caps and 7-in-7 block
    out = []
    for i in range(n):
        minutes = rng.randrange(1, (4 if dense else 21) * 1440)
        when = at - timedelta(minutes=minutes) if rng.random() < 0.95 else at + timedelta(minutes=minutes)
        outcome = rng.choice(OUTCOMES)
        debts = tuple(sorted(rng.sample(DEBTS, rng.choice((1, 1, 2, 3)))))
        out.append(
            Contact(
                ref=str(i),
                at=expressed(rng, when),
                channel=rng.choice(("voice", "voice", "sms")),
                direction=rng.choice(("outbound", "outbound", "inbound")),
                person=rng.choice(people),
                debts=() if rng.random() < 0.1 else debts,
                outcome=outcome,
                conversation=outcome == "answered" and rng.random() < 0.4,
            )
        )
    rng.shuffle(out)
    return tuple(out)


def consumer_of(rng: random.Random, at: datetime) -> Consumer:
    r = rng.random()
    if r < 0.02:
        zones: tuple[str, ...] = ()
    elif r < 0.04:
        zones = ("America/New_York", "Mars/Olympus_Mons")
    else:
        zones = tuple(rng.sample(ZONES, rng.choice((1, 1, 1, 2, 2, 3))))
    inconvenient = tuple(TimeRange(clock(rng), clock(rng)) for _ in range(rng.choice((0, 0, 0, 1, 2))))
    consents = []
    for i in range(rng.choice((0, 0, 0, 1, 2))):
        start = at + timedelta(minutes=rng.randrange(-10 * 1440, 8 * 1440))
        given = None if rng.random() < 0.3 else start - timedelta(minutes=rng.randrange(0, 9 * 1440))
        consents.append(Consent(start, start + timedelta(minutes=rng.randrange(15, 900)), given, str(i)))
    opted_out = frozenset(rng.sample(("voice", "sms"), rng.choice((0, 0, 0, 0, 1))))
    return Consumer(zones, inconvenient, tuple(consents), opted_out)


def proposal_of(rng: random.Random, i: int) -> Proposal:
    zones = tuple(rng.sample(ZONES, 2))
    at = moment(rng, zones)
    consumer = consumer_of(rng, at)
    real = tuple(z for z in consumer.time_zones if z in ZONES)
    if real and rng.random() < 0.5:
        at = moment(rng, real)
    if consumer.consents and rng.random() < 0.3:  # under a consent, perhaps a prior consent (7 days)
        consent = rng.choice(consumer.consents)
        at = consent.start + (consent.end - consent.start) * rng.random()
    people = ["consumer", "consumer", "consumer", "spouse"]
    channel: Channel = rng.choice(("voice", "voice", "voice", "sms"))
    debts = tuple(sorted(rng.sample(DEBTS, rng.choice((0, 1, 1, 1, 2)))))
    person = rng.choice(people)
    history = history_of(rng, at, people)
    if rng.random() < 0.005:  # a naive moment: both must raise the same error
        at = at.replace(tzinfo=None)
    return Proposal(f"p{i}", expressed(rng, at), channel, person, debts, consumer, history)


def outcome(engine_decide: object, pack: Pack, proposal: Proposal) -> str:
    assert callable(engine_decide)
    try:
        verdict = engine_decide(pack, proposal)
    except ValueError as e:
        return f"ValueError: {e}"
    assert isinstance(verdict, Verdict)
    return repr(verdict)


@pytest.mark.parametrize("seed", range(8))
def test_the_engine_decides_as_before(seed: int) -> None:
    rng = random.Random(seed)
    for i in range(750):
        pack = pack_of(rng)
        proposal = proposal_of(rng, i)
        before = outcome(reference.decide, pack, proposal)
        assert outcome(decide, pack, proposal) == before, (seed, i, pack, proposal)


@pytest.mark.parametrize("seed", range(4))
def test_a_dialer_following_either_engine_places_the_same_calls(seed: int) -> None:
    """Histories the engine itself builds: call whenever allowed, else at next_allowed_at, so the
    caps, 7-in-7 and the bar fill up and block as they would in a campaign."""
    rng = random.Random(1000 + seed)
    for _ in range(25):
        pack = pack_of(rng)
        start = moment(rng, ())
        consumer = consumer_of(rng, start)
        person = rng.choice(("consumer", "consumer", "spouse"))
        channel: Channel = rng.choice(("voice", "voice", "sms"))
        debts = tuple(sorted(rng.sample(DEBTS, rng.choice((1, 1, 2)))))
        history = list(history_of(rng, start, [person]))
        t = start
        for step in range(20):
            proposal = Proposal(f"s{step}", t, channel, person, debts, consumer, tuple(history))
            verdict = decide(pack, proposal)
            assert repr(verdict) == repr(reference.decide(pack, proposal)), (seed, step, proposal)
            if not verdict.allowed:
                if verdict.next_allowed_at is None:
                    break
                t = verdict.next_allowed_at
                continue
            answered = rng.choice(OUTCOMES)
            history.append(
                Contact(f"c{step}", t, channel, "outbound", person, debts, answered, answered == "answered")
            )
            t += timedelta(minutes=rng.choice((0, 1, 5, 30, 120, 600)))


def test_next_window_is_as_before() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        pack = pack_of(rng)
        zones = tuple(ZoneInfo(z) for z in rng.sample(ZONES, rng.choice((1, 2, 3))))
        at = expressed(rng, moment(rng, tuple(z.key for z in zones)))
        assert repr(next_window(pack, zones, at)) == repr(reference.next_window(pack, zones, at))


def test_the_cases_cover_what_they_claim() -> None:
    """The random proposals reach the rules the comparison is meant to cover (not a vacuous test)."""
    rng = random.Random(0)
    rules: set[str] = set()
    allowed = blocked = 0
    for i in range(750):
        pack, proposal = pack_of(rng), proposal_of(rng, i)
        if proposal.at.tzinfo is None:
            continue
        verdict = decide(pack, proposal)
        rules |= {str(f.rule) for f in verdict.reasons}
        allowed += verdict.allowed
        blocked += not verdict.allowed and verdict.next_allowed_at is not None
    assert allowed > 50 and blocked > 100
    expected = {
        "window",
        "inconvenient",
        "daily-cap",
        "7-in-7",
        "conversation",
        "min-gap",
        "holiday",
        "quiet-day",
        "consent",
        "opt-out",
        "person",
        "zone-unknown",
        "zone-invalid",
        "sms-daily-cap",
        "sms-weekly-cap",
        "prior-consent",
        "debts",
    }
    assert expected <= rules, expected - rules


def test_a_day_in_one_zone_is_the_same_in_any_order() -> None:
    """The engine keeps per-zone, per-day facts between calls: asking in another order changes nothing."""
    rng = random.Random(11)
    cases = [(pack_of(rng), proposal_of(rng, i)) for i in range(300)]
    first = [outcome(decide, p, q) for p, q in cases]
    rng.shuffle(cases)
    again = {q.id: outcome(decide, p, q) for p, q in cases}
    assert [again[f"p{i}"] for i in range(len(first))] == first


def test_a_batch_at_one_moment_is_decided_as_before() -> None:
    """A scheduler's pass decides many accounts at one `now`: the kept per-moment facts and window
    findings are shared between them, also when the same instant comes in another zone."""
    rng = random.Random(21)
    for _ in range(20):
        at = moment(rng, ())
        for i in range(60):
            pack = pack_of(rng)
            proposal = replace(proposal_of(rng, i), at=expressed(rng, at))
            assert outcome(decide, pack, proposal) == outcome(reference.decide, pack, proposal), proposal


# --- the plain path (engine._decide_plain) ----------------------------------------------------------
# Voice calls without consents, inconvenient times or a voice opt-out, under a pack without the lender's
# calendar, daily caps or min gap: the engine decides these without its full path. Their histories sit
# on the edges the plain path must get right: local midnights of the 7-in-7 windows and of the bars'
# ends (just before, on, just after), the proposal's own moment, 7-in-7 counts around the limit.


def plain_pack_of(rng: random.Random) -> Pack:
    base = _PACKS[rng.choice(PACKS)]
    lender = LenderSettings(max_sms_per_day=rng.choice((None, 2)), max_sms_per_week=rng.choice((None, 5)))
    pack = replace(
        base,
        max_voice_per_day=None,
        seven_counts_texts=False,
        calls_per_7_days=rng.choice((None, 1, 2, 3, 7, 7)),
        conversation_bar_days=rng.choice((None, 1, 2, 7, 7)),
        seven_consent_exempt=rng.random() < 0.5,
        bar_consent_exempt=rng.random() < 0.5,
        lender=lender,
    )
    window = rng.choice(WINDOWS)
    return pack if window is None else replace(pack, window_start=window[0], window_end=window[1])


def edges(rng: random.Random, at: datetime, zones: tuple[str, ...]) -> list[datetime]:
    """Moments on and around the local midnights of the days d-8..d+1 (d: at's day) and at itself."""
    zone = ZoneInfo(rng.choice(zones))
    day = at.astimezone(zone).date()
    out = [at, at - timedelta(microseconds=1), at + timedelta(microseconds=1)]
    for k in range(-8, 2):
        midnight = datetime.combine(day + timedelta(days=k), time(0), zone).astimezone(UTC)
        out += [midnight + timedelta(microseconds=d) for d in (-1, 0, 1)] + [midnight - timedelta(minutes=1)]
    return out


def plain_history_of(
    rng: random.Random, at: datetime, zones: tuple[str, ...], person: str
) -> tuple[Contact, ...]:
    n = rng.choice((0, 1, rng.randrange(0, 8), rng.randrange(4, 16)))
    near = edges(rng, at, zones)
    out = []
    for i in range(n):
        if rng.random() < 0.6:
            when = rng.choice(near)
        else:
            when = at - timedelta(minutes=rng.randrange(-600, 9 * 1440))
        outcome = rng.choice(OUTCOMES)
        out.append(
            Contact(
                ref=str(i),
                at=expressed(rng, when) if rng.random() < 0.05 else when,
                channel=rng.choice(("voice",) * 6 + ("sms",)),
                direction=rng.choice(("outbound",) * 4 + ("inbound",)),
                person=person if rng.random() < 0.9 else "spouse",
                debts=tuple(sorted(rng.sample(DEBTS, rng.choice((0, 1, 1, 1, 2))))),
                outcome=outcome,
                conversation=rng.random() < 0.15,
            )
        )
    rng.shuffle(out)
    return tuple(out)


def plain_proposal_of(rng: random.Random, i: int) -> Proposal:
    zones = tuple(rng.sample(ZONES, rng.choice((1, 1, 2, 3))))
    at = moment(rng, zones)
    person = rng.choice(("consumer",) * 5 + ("spouse",))
    debts = tuple(sorted(rng.sample(DEBTS, rng.choice((1, 1, 1, 2)))))
    consumer = Consumer(zones, opted_out=frozenset({"sms"}) if rng.random() < 0.2 else frozenset())
    return Proposal(f"q{i}", at, "voice", person, debts, consumer, plain_history_of(rng, at, zones, person))


@pytest.mark.parametrize("seed", range(6))
def test_the_plain_path_decides_as_before(seed: int) -> None:
    rng = random.Random(500 + seed)
    for i in range(800):
        pack, proposal = plain_pack_of(rng), plain_proposal_of(rng, i)
        assert outcome(decide, pack, proposal) == outcome(reference.decide, pack, proposal), (
            seed,
            i,
            pack,
            proposal,
        )


def test_the_plain_cases_take_the_plain_path_and_reach_its_branches() -> None:
    """Most plain cases are decided by _decide_plain, and they reach every outcome it gives itself:
    allowed, the window alone, 7-in-7 and the bar blocking, each with and without a next moment."""
    rng = random.Random(500)
    plain = 0
    seen: set[tuple[str, ...]] = set()
    for i in range(800):
        pack, proposal = plain_pack_of(rng), plain_proposal_of(rng, i)
        verdict = engine._decide_plain(engine._facts(pack), proposal)
        if verdict is None:
            continue
        plain += 1
        rules = tuple(sorted({str(f.rule) for f in verdict.reasons if f.blocking}))
        seen.add(rules + (("next",) if verdict.next_allowed_at else ("never",)) if rules else ("allowed",))
    assert plain > 600
    expected = {
        ("allowed",),
        ("window", "next"),
        ("window", "never"),
        ("7-in-7", "next"),
        ("conversation", "next"),
        ("7-in-7", "window", "next"),
        ("conversation", "window", "next"),
        ("7-in-7", "conversation", "window", "next"),
    }
    assert expected <= seen, expected - seen

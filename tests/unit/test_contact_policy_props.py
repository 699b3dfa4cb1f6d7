"""Property tests: a dialer that always calls at `next_allowed_at` never breaks a rule.

The checker below is independent of the engine: it recomputes every limit by brute force from the
final history, in each candidate zone's local calendar, without any of the engine's helpers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    decide,
)
from dialer.policy.packs import load_pack

ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    "Asia/Shanghai",
    "Europe/London",
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
# Around the 2026 DST changes and the end-of-year holidays.
STARTS = (
    datetime(2026, 3, 4, tzinfo=UTC),
    datetime(2026, 3, 26, tzinfo=UTC),
    datetime(2026, 10, 28, tzinfo=UTC),
    datetime(2026, 12, 21, tzinfo=UTC),
)
DEBTS = ("D1", "D2", "D3")


@dataclass(frozen=True)
class Step:
    outcome: Outcome
    conversation: bool
    gap_minutes: int


@dataclass(frozen=True)
class Scenario:
    pack: Pack
    channel: Channel
    person: str
    debts: tuple[str, ...]
    consumer: Consumer
    history: tuple[Contact, ...]
    start: datetime
    steps: tuple[Step, ...]
    probes: tuple[float, ...]


clocks = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
debt_sets = st.sets(st.sampled_from(DEBTS), min_size=1, max_size=3).map(lambda s: tuple(sorted(s)))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    name = draw(st.sampled_from(["cn", "cn-as-written", "us-regf", "us-ma"]))
    lender = LenderSettings(
        max_voice_per_day=draw(st.none() | st.integers(1, 4)),
        max_sms_per_day=draw(st.none() | st.integers(1, 4)),
        max_sms_per_week=draw(st.none() | st.integers(1, 8)),
        min_gap_unanswered_minutes=draw(st.sampled_from([None, 5, 30])),
        quiet_weekdays=tuple(sorted(draw(st.sets(st.integers(0, 6), max_size=2)))),
        holidays_country=draw(st.sampled_from([None, "US"])),
    )
    pack = load_pack(name, lender)
    start = draw(st.sampled_from(STARTS)) + timedelta(minutes=draw(st.integers(0, 6 * 1440)))
    zones = tuple(draw(st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True)))
    inconvenient = tuple(draw(st.lists(st.builds(TimeRange, clocks, clocks), max_size=2)))
    # Consents from 10 days before the start to 8 after, given up to 9 days before they begin (or
    # not recorded): some exempt calls from the Reg F frequencies, some are too old to.
    consents = tuple(
        Consent(s, s + timedelta(minutes=length), None if ago is None else s - timedelta(minutes=ago))
        for s, length, ago in draw(
            st.lists(
                st.tuples(
                    st.integers(-10 * 1440, 8 * 1440).map(lambda m: start + timedelta(minutes=m)),
                    st.integers(15, 600),
                    st.none() | st.integers(0, 9 * 1440),
                ),
                max_size=2,
            )
        )
    )
    opted_out = frozenset(draw(st.sets(st.sampled_from(["voice", "sms"]), max_size=1)))
    channel: Channel = draw(st.sampled_from(["voice", "voice", "voice", "sms"]))
    cn = name.startswith("cn")
    person = "consumer" if cn else draw(st.sampled_from(["consumer", "consumer", "spouse"]))
    people = ["consumer"] if cn else ["consumer", "spouse"]
    history = []
    for i in range(draw(st.integers(0, 14))):
        outcome = draw(st.sampled_from(OUTCOMES))
        history.append(
            Contact(
                ref=str(i),
                at=start - timedelta(minutes=draw(st.integers(1, 10 * 1440))),
                channel=draw(st.sampled_from(["voice", "voice", "sms"])),
                direction=draw(st.sampled_from(["outbound", "outbound", "inbound"])),
                person=draw(st.sampled_from(people)),
                debts=draw(debt_sets),
                outcome=outcome,
                conversation=outcome == "answered" and draw(st.booleans()),
            )
        )
    steps = tuple(
        Step(o, o == "answered" and c, g)
        for o, c, g in draw(
            st.lists(
                st.tuples(st.sampled_from(OUTCOMES), st.booleans(), st.sampled_from([0, 1, 3, 10, 60, 240])),
                min_size=1,
                max_size=14,
            )
        )
    )
    return Scenario(
        pack=pack,
        channel=channel,
        person=person,
        debts=draw(debt_sets),
        consumer=Consumer(zones, inconvenient, consents, opted_out),
        history=tuple(history),
        start=start,
        steps=steps,
        probes=tuple(draw(st.lists(st.floats(0, 1), min_size=2, max_size=2))),
    )


def simulate(s: Scenario) -> list[Contact]:
    """A dialer that calls whenever it may, else at `next_allowed_at`; returns the calls it placed."""
    history = list(s.history)
    placed: list[Contact] = []
    t = s.start

    def ask(at: datetime) -> tuple[bool, datetime | None]:
        proposal = Proposal("p", at, s.channel, s.person, s.debts, s.consumer, tuple(history))
        verdict = decide(s.pack, proposal)
        assert verdict.allowed == (not any(f.blocking for f in verdict.reasons))
        assert all(f.source for f in verdict.reasons), verdict  # every reason cites its text
        if verdict.allowed:
            assert verdict.next_allowed_at == at
        else:
            assert verdict.reasons and all(f.blocking for f in verdict.reasons)
            assert verdict.next_allowed_at is None or verdict.next_allowed_at > at
        return verdict.allowed, verdict.next_allowed_at

    for i, step in enumerate(s.steps):
        allowed, nxt = ask(t)
        if not allowed:
            if nxt is None:
                break
            for probe in (*(t + (nxt - t) * f for f in s.probes), nxt - timedelta(minutes=1)):
                if t <= probe < nxt:  # earliest: nothing before it is allowed
                    assert not ask(probe)[0], (probe, nxt)
            t = nxt
            assert ask(t)[0], t
        contact = Contact(
            ref=f"p{i}",
            at=t,
            channel=s.channel,
            direction="outbound",
            person=s.person,
            debts=s.debts,
            outcome=step.outcome,
            conversation=step.conversation,
        )
        history.append(contact)
        placed.append(contact)
        t += timedelta(minutes=step.gap_minutes)
    return placed


# --- the independent checker -------------------------------------------------------------------------


def local_day(at: datetime, zone: str) -> date:
    return at.astimezone(ZoneInfo(zone)).date()


def clock_in(start: time, end: time, clock: time) -> bool:
    if start == end:
        return True
    if start < end:
        return start <= clock < end
    return clock >= start or clock < end


def under_prior_consent(consumer: Consumer, c: Contact) -> bool:
    """An outbound voice call to the consumer inside a consent's period, no more than 7 days after it
    was given: fewer than 168 hours, and within local day 7 (day 1 = its day) in every zone."""
    if c.person != "consumer" or c.direction != "outbound" or c.channel != "voice":
        return False
    return any(
        k.given_at is not None
        and k.start <= c.at < k.end
        and k.given_at <= c.at < k.given_at + timedelta(days=7)
        and all((local_day(c.at, z) - local_day(k.given_at, z)).days < 7 for z in consumer.time_zones)
        for k in consumer.consents
    )


CONNECTED = ("answered", "voicemail", "dropped", "unknown")


def violations(s: Scenario, placed: list[Contact]) -> list[str]:
    pack, lender, consumer = s.pack, s.pack.lender, s.consumer
    everything = list(s.history) + placed
    mine_voice_out = [
        c for c in everything if c.person == s.person and c.channel == "voice" and c.direction == "outbound"
    ]
    cal = holidays.country_holidays(lender.holidays_country) if lender.holidays_country else None
    order = {id(c): i for i, c in enumerate(everything)}  # same-instant calls: list order

    def before(a: Contact, b: Contact) -> bool:
        return (a.at, order[id(a)]) < (b.at, order[id(b)])

    bad: list[str] = sms_violations(s, placed)
    for c in placed:
        if c.channel in consumer.opted_out:
            bad.append(f"{c.ref}: opted out")
        if pack.consumer_only and c.person != "consumer":
            bad.append(f"{c.ref}: third party")
        consented = any(k.start <= c.at < k.end for k in consumer.consents)
        for zone in consumer.time_zones:
            lt = c.at.astimezone(ZoneInfo(zone))
            if not consented and not (pack.window_start <= lt.time() < pack.window_end):
                bad.append(f"{c.ref}: {lt} outside the window in {zone}")
            for r in consumer.inconvenient:
                if not consented and clock_in(r.start, r.end, lt.time()):
                    bad.append(f"{c.ref}: {lt} inconvenient {r} in {zone}")
            if cal is not None and lt.date() in cal:
                bad.append(f"{c.ref}: holiday {lt.date()} in {zone}")
            if lt.weekday() in lender.quiet_weekdays:
                bad.append(f"{c.ref}: quiet weekday {lt.date()} in {zone}")
        if c.channel != "voice":
            bad += texts_in_seven_violations(s, c, everything)
            continue
        for zone in consumer.time_zones:
            day = local_day(c.at, zone)
            same_day = [o for o in mine_voice_out if local_day(o.at, zone) == day]
            connected = [o for o in same_day if o.outcome in CONNECTED]
            if lender.max_voice_per_day and len(same_day) > lender.max_voice_per_day:
                bad.append(f"{c.ref}: {len(same_day)} voice calls on {day} in {zone} (lender cap)")
            pack_counted = same_day if pack.daily_cap_counts == "dialled" else connected
            if pack.max_voice_per_day and len(pack_counted) > pack.max_voice_per_day:
                bad.append(f"{c.ref}: {len(pack_counted)} {pack.daily_cap_counts} calls on {day} in {zone}")
            for debt in c.debts:
                counted = seven_counted(s, everything, debt)
                if pack.calls_per_7_days is not None and not (
                    pack.seven_consent_exempt and under_prior_consent(consumer, c)
                ):
                    for end in (day + timedelta(days=k) for k in range(7)):
                        n = sum(1 for o in counted if end - timedelta(days=6) <= local_day(o.at, zone) <= end)
                        if n > pack.calls_per_7_days:
                            bad.append(f"{c.ref}: {n} calls about {debt} in the 7 days to {end} in {zone}")
                bar_exempt = pack.bar_consent_exempt
                if pack.conversation_bar_days is not None and not (
                    bar_exempt and under_prior_consent(consumer, c)
                ):
                    for conv in everything:
                        if (
                            before(conv, c)
                            and conv.conversation
                            and conv.channel == "voice"
                            and conv.person == s.person
                            and debt in conv.debts
                            and not (bar_exempt and under_prior_consent(consumer, conv))
                            and (day - local_day(conv.at, zone)).days < pack.conversation_bar_days
                        ):
                            bad.append(
                                f"{c.ref}: within {pack.conversation_bar_days} days of {conv.ref} ({zone})"
                            )
        if lender.min_gap_unanswered_minutes:
            gap = timedelta(minutes=lender.min_gap_unanswered_minutes)
            for u in mine_voice_out:
                if before(u, c) and u.outcome != "answered" and c.at - u.at < gap:
                    bad.append(f"{c.ref}: {c.at - u.at} after unanswered {u.ref}")
    return bad


def seven_counted(s: Scenario, everything: list[Contact], debt: str) -> list[Contact]:
    """What 7-in-7 counts about `debt`: connected calls (less prior-consent ones where exempt), and
    where the pack counts texts (us-ma) every text about the debt or naming none."""
    pack = s.pack
    mine = [o for o in everything if o.person == s.person and o.direction == "outbound"]
    calls = [
        o
        for o in mine
        if o.channel == "voice"
        and debt in o.debts
        and o.outcome not in ("busy", "not_in_service")
        and not (pack.seven_consent_exempt and under_prior_consent(s.consumer, o))
    ]
    texts = [o for o in mine if o.channel == "sms" and (debt in o.debts or not o.debts)]
    return calls + (texts if pack.seven_counts_texts else [])


def texts_in_seven_violations(s: Scenario, c: Contact, everything: list[Contact]) -> list[str]:
    """us-ma: a text shares 7-in-7's count with the calls (940 CMR 7.04(1)(f))."""
    limit = s.pack.calls_per_7_days
    if not s.pack.seven_counts_texts or limit is None:
        return []
    bad: list[str] = []
    for zone in s.consumer.time_zones:
        day = local_day(c.at, zone)
        for debt in c.debts:
            counted = seven_counted(s, everything, debt)
            for end in (day + timedelta(days=k) for k in range(7)):
                n = sum(1 for o in counted if end - timedelta(days=6) <= local_day(o.at, zone) <= end)
                if n > limit:
                    bad.append(f"{c.ref}: {n} calls and texts about {debt} in the 7 days to {end} in {zone}")
    return bad


def stricter(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def sms_violations(s: Scenario, placed: list[Contact]) -> list[str]:
    """Texts per person per local day and per 7 consecutive local days, in each zone."""
    pack, lender = s.pack, s.pack.lender
    per_day = stricter(pack.max_sms_per_day, lender.max_sms_per_day)
    per_week = stricter(pack.max_sms_per_week, lender.max_sms_per_week)
    texts = [
        c
        for c in (*s.history, *placed)
        if c.person == s.person and c.channel == "sms" and c.direction == "outbound"
    ]
    bad: list[str] = []
    for c in placed:
        if c.channel != "sms":
            continue
        for zone in s.consumer.time_zones:
            day = local_day(c.at, zone)
            days = [local_day(o.at, zone) for o in texts]
            n = days.count(day)
            if per_day is not None and n > per_day:
                bad.append(f"{c.ref}: {n} texts on {day} in {zone}")
            for end in (day + timedelta(days=k) for k in range(7)):
                n = sum(1 for d in days if end - timedelta(days=6) <= d <= end)
                if per_week is not None and n > per_week:
                    bad.append(f"{c.ref}: {n} texts in the 7 days to {end} in {zone}")
    return bad


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_a_dialer_following_the_engine_breaks_no_rule(s: Scenario) -> None:
    placed = simulate(s)
    assert violations(s, placed) == []
    if s.channel in s.consumer.opted_out or (s.pack.consumer_only and s.person != "consumer"):
        assert placed == []


@settings(max_examples=40, deadline=None)
@given(scenarios())
def test_the_checker_catches_a_rule_breaking_dialer(s: Scenario) -> None:
    """The checker is not vacuous: calling every hour for a day breaks the window (11 h of night, any
    zone, and a consent lasts at most 10 h)."""
    if not s.consumer.time_zones:
        return
    spam = [
        Contact(f"x{i}", s.start + timedelta(hours=i), s.channel, "outbound", s.person, s.debts, "no_answer")
        for i in range(24)
    ]
    assert violations(s, spam)

"""The contact policy engine: may this contact happen now, why (not), and when at the earliest?

Pure (no I/O, no clock): everything it needs arrives in a `Proposal`. Rules come from a policy
pack (data, dialer/policy/packs/*.yaml) with the lender's own stricter settings layered on top.
See docs/policy.md for the rules, their sources and the JSON-lines format of `duecall policy check`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache, partial
from operator import attrgetter
from typing import Literal
from zoneinfo import ZoneInfo, available_timezones

import holidays

from dialer.core.vocab import RuleId

Channel = Literal["voice", "sms"]
Direction = Literal["outbound", "inbound"]
# "unknown": still open, or its result was lost; counted as connected and as unanswered (conservative).
Outcome = Literal[
    "answered", "no_answer", "voicemail", "busy", "not_in_service", "failed", "dropped", "unknown"
]
CountMode = Literal["dialled", "connected"]
CONSUMER = "consumer"


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A daily range in the consumer's local time; end exclusive; may wrap midnight."""

    start: time
    end: time


@dataclass(frozen=True, slots=True)
class Consent:
    """The consumer agreed, directly, to be called from `start` to `end`, at `given_at`.

    It lifts the window and inconvenient-time rules for that period (1006.6(b)(1)); calls in it
    within 7 days of `given_at` are also outside the 7-in-7 count and the conversation bar
    (1006.14(b)(3)(i)). Without `given_at` (not recorded) only the first applies.
    """

    start: datetime
    end: datetime
    given_at: datetime | None = None
    ref: str = ""  # how decisions name it (its index, or the store's id)


@dataclass(frozen=True, slots=True)
class Consumer:
    time_zones: tuple[str, ...] = ()
    inconvenient: tuple[TimeRange, ...] = ()
    consents: tuple[Consent, ...] = ()
    opted_out: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Contact:
    """One entry of the contact history."""

    ref: str  # how reasons point at it (index in the input, or attempt id)
    at: datetime
    channel: Channel
    direction: Direction
    person: str
    debts: tuple[str, ...]
    outcome: Outcome
    conversation: bool = False


@dataclass(frozen=True, slots=True)
class Proposal:
    id: str
    at: datetime  # UTC
    channel: Channel
    person: str
    debts: tuple[str, ...]
    consumer: Consumer
    history: tuple[Contact, ...] = ()


@dataclass(frozen=True, slots=True)
class Finding:
    rule: RuleId
    detail: str
    history: tuple[str, ...] = ()  # refs of the history entries the rule relied on
    until: datetime | None = None  # when this rule stops blocking; None: never (by itself)
    blocking: bool = True  # False: informative only (an allowed verdict's reasons)
    source: str = ""  # the text the rule comes from (the pack's `source`, or the lender's setting)
    # A cap with room ("call N of M"): this call would be number `used` of `limit`.
    used: int | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    id: str
    allowed: bool
    reasons: tuple[Finding, ...] = ()
    next_allowed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LenderSettings:
    """The lender's own, stricter rules, layered on a pack."""

    max_voice_per_day: int | None = None
    max_sms_per_day: int | None = None  # texts per person per local day (min with the pack's)
    max_sms_per_week: int | None = None  # texts per person in 7 consecutive local days
    min_gap_unanswered_minutes: int | None = None
    quiet_weekdays: tuple[int, ...] = ()  # 0 = Monday ... 6 = Sunday, local
    holidays_country: str | None = None  # ISO country for the `holidays` package; None: off
    holidays_subdivision: str | None = None


@dataclass(frozen=True, slots=True)
class Pack:
    """A jurisdiction's rules, loaded from dialer/policy/packs/<name>.yaml."""

    name: str
    window_start: time = time(8, 0)
    window_end: time = time(21, 0)
    max_voice_per_day: int | None = None  # per person per local day (cn: 3)
    daily_cap_counts: CountMode = "dialled"  # which calls count toward it (cn-as-written: connected)
    consumer_only: bool = False  # never contact anyone but the consumer (cn)
    calls_per_7_days: int | None = None  # per person per debt, Reg F counting (us-regf: 7, us-ma: 2)
    seven_consent_exempt: bool = False  # calls under a prior consent (7 days) are not counted
    seven_counts_texts: bool = False  # texts count with calls toward it, and a text is checked (us-ma)
    conversation_bar_days: int | None = None  # no call for N days after a conversation, day 1 included
    bar_consent_exempt: bool = False  # a call under a prior consent is neither barred nor bars
    unknown_zone: Literal["block", "region"] = "block"
    max_sms_per_day: int | None = None  # texts per person per local day (a DueCall default: cited)
    max_sms_per_week: int | None = None  # texts per person in 7 consecutive local days
    # The channels a consumer's SMS opt-out (STOP, 退订) stops: the caller adds them to opted_out.
    sms_opt_out_stops: tuple[Channel, ...] = ("sms",)
    sources: tuple[tuple[RuleId, str], ...] = ()  # rule id -> the text it comes from
    lender: LenderSettings = field(default_factory=LenderSettings)

    def source(self, rule: RuleId) -> str:
        return next((text for r, text in self.sources if r == rule), _LENDER_SOURCES.get(rule, ""))


_LENDER_SOURCES = {
    RuleId.HOLIDAY: "lender setting policy.holidays_country / holidays_subdivision",
    RuleId.QUIET_DAY: "lender setting policy.quiet_weekdays",
    RuleId.MIN_GAP: "lender setting policy.min_gap_unanswered",
    RuleId.DAILY_CAP: "lender setting policy.max_attempts_per_day",
    RuleId.SMS_DAILY_CAP: "lender setting policy.max_sms_per_day",
    RuleId.SMS_WEEKLY_CAP: "lender setting policy.max_sms_per_week",
    RuleId.DEBTS: "per-debt counting needs the debts (12 CFR 1006.14(b)(2))",
    RuleId.ZONE_INVALID: "the window rules need a real tz zone",
}


# ---------------------------------------------------------------------------------------------------
# The engine
#
# Decisions (see also docs/policy.md):
# - Every rule is evaluated in the consumer's local calendar, in EVERY candidate zone, with zoneinfo.
#   Where zones disagree the conservative reading wins: a day's count runs from the earliest local
#   midnight to the latest, a time is convenient only if it is convenient in every zone.
# - `Finding.until` is when that rule alone stops blocking; `Verdict.next_allowed_at` combines them by
#   re-evaluating at the latest `until` until nothing blocks (bounded: _MAX_STEPS, HORIZON). None means
#   never, or not within HORIZON: the caller may ask again later.
# - A consent (Consumer.consents) covering the moment lifts the window and the inconvenient-time rules
#   (Reg F 1006.6(b)(1); cn: "unless agreed").
# - Prior consent (1006.14(b)(3)(i)): an outbound call to the consumer inside a consent's period and
#   within 7 days of when it was given (`given_at`; the earlier of 168 hours and the end of local day 7,
#   day 1 = the day it was given, in any zone) is excluded from the frequencies, where the pack says
#   so (`consent_exempt`): it is not counted toward 7-in-7, a conversation on it starts no bar, and a
#   proposal under it is blocked by neither. A consent without `given_at` exempts nothing. The caps
#   that are not Reg F's (cn's daily cap, the lender's, MA's 2-in-7) still count it.
# - 7-in-7 counts outbound voice calls to the person about the debt, except busy and not_in_service
#   (not connected, 1006.14(b)(3)(ii)), exempt consented calls and inbound calls. `failed`, `dropped` and
#   `unknown` count: we cannot tell whether a failed call reached the network (conservative reading).
#   The 7 days are local calendar days d-6..d; windows ending after d (d+1..d+6) are checked too, so a
#   history that already holds later calls (decided, not yet placed) is respected.
# - The daily cap counts every outbound voice call dialled (busy, failed, consented too), or with
#   `counts: connected` (cn-as-written) those answered by anyone or anything: answered, voicemail,
#   dropped, and unknown (an open call may yet connect). The lender's cap always counts dialled calls.
# - Unanswered (min gap): every outbound voice outcome except `answered` (and any call with a
#   conversation); the proposal waits N minutes after (and before) any unanswered call.
# - Lender holidays and quiet weekdays block the whole local day in any zone, on every channel.
# - SMS: opt-out, person, zone, window, inconvenient times, consent, holidays and quiet weekdays apply;
#   the voice caps, 7-in-7, the conversation bar and the min gap don't, except where the pack's
#   7-in-7 counts texts (`counts_texts`, us-ma: 940 CMR 7.04(1)(f) counts "text messaging" among its
#   2 communications): there the person's outbound texts about the debt (or naming no debt) count with
#   the calls, and a text is checked against it too (never under prior consent: that exempts calls).
# - The SMS caps apply to texts only: per person per local day, and per person in 7 consecutive local
#   days (d-6..d, and the windows holding d that end later, as 7-in-7), each the stricter of the
#   pack's and the lender's. Every outbound sms Contact of the person counts, whatever its outcome or
#   debts: the caller passes only the messages that may have reached the carrier
#   (MessageState.counted). Inbound texts don't count; texts never count toward the voice caps.
# - Which channels an SMS opt-out stops is the pack's (Pack.sms_opt_out_stops): the caller puts them in
#   Consumer.opted_out; the engine blocks a proposal whose channel is there.
# - unknown_zone "region" means the caller resolves the number's region to its zones before asking;
#   an empty `time_zones` still blocks here, whatever the pack says.
# - Speed (issue 15: 100,000 decisions a second on one core). The rules above are evaluated as written,
#   but what depends only on a zone and a local day is computed once and kept: each day's UTC
#   boundaries, the window starts around it, the candidate midnights of a count, the holidays. So is
#   what depends only on the pack (its sources, caps) and on the moment in each zone (local times and
#   days, for a UTC moment). Re-evaluations while looking for `next_allowed_at` only need each rule's
#   `until`: they skip the texts and the informative findings (_UNTIL), and once a rule blocks, the
#   later rules skip their informative findings (_BLOCKING): a refusal shows none. Most decisions need
#   only the window, 7-in-7 and the bar: they take the plain path (_decide_plain, "the plain path"
#   below), the same verdict with less work. A verbatim copy of the engine before this work is the
#   reference of tests/unit/test_policy_differential.py.
# ---------------------------------------------------------------------------------------------------

HORIZON = timedelta(days=60)
_MAX_STEPS = 200
_WINDOW_SEARCH_DAYS = 8
_NOT_CONNECTED: frozenset[str] = frozenset({"busy", "not_in_service"})
_EPSILON = timedelta(minutes=1)
_AT = attrgetter("at")


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def known_zone(name: str) -> bool:
    """A real tz zone: not a tzdata folder (`America`), not a path, not a 300-character string."""
    return name in _zone_names()


def history_window(pack: Pack) -> timedelta:
    """How far back the store must read history for `decide` with this pack (any zone)."""
    weekly = pack.calls_per_7_days or pack.max_sms_per_week or pack.lender.max_sms_per_week
    days = max(1, 7 if weekly else 1, pack.conversation_bar_days or 1)
    minutes = pack.lender.min_gap_unanswered_minutes or 0
    return timedelta(days=days + 2, minutes=minutes)


def decide(pack: Pack, proposal: Proposal) -> Verdict:
    """May `proposal` happen at `proposal.at`? Every reason, and the earliest moment it may."""
    facts = _facts(pack)
    if facts.plain:
        verdict = _decide_plain(facts, proposal)
        if verdict is not None:
            return verdict
    _check_aware(proposal)
    never = _never_findings(pack, proposal)
    if never:
        return Verdict(proposal.id, False, _cited(facts, never), None)
    ctx = _Ctx.build(facts, proposal)
    findings = _evaluate(ctx, proposal.at, _ALL)
    blocking = tuple(f for f in findings if f.blocking)
    if not blocking:
        return Verdict(proposal.id, True, _cited(facts, findings), proposal.at)
    return Verdict(proposal.id, False, _cited(facts, blocking), _next_allowed(ctx, proposal.at, blocking))


def _cited(facts: _PackFacts, findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Every reason names the text its rule comes from."""
    return tuple(f if f.source else _with_source(f, facts.source(f.rule)) for f in findings)


def _with_source(f: Finding, source: str) -> Finding:
    # dataclasses.replace(f, source=...), without its per-call field introspection.
    return Finding(f.rule, f.detail, f.history, f.until, f.blocking, source, f.used, f.limit)


def shorten(value: str, limit: int = 60) -> str:
    """A value for an error message: repr'd, and cut when long (a 300-character zone)."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"


def _check_aware(proposal: Proposal) -> None:
    if not proposal.consumer.consents and _utc_in_range(proposal.at):
        for c in proposal.history:  # a loop, not all(...): this runs for every contact of every decision
            if c.at.tzinfo is not UTC or not EARLIEST <= c.at < LATEST:
                break
        else:
            return  # the common case: every moment in UTC and in range, nothing to report
    moments: list[tuple[str, datetime]] = [("at", proposal.at)]
    moments += [(f"history {c.ref}", c.at) for c in proposal.history]
    moments += [
        (f"consent {i}", m)
        for i, c in enumerate(proposal.consumer.consents)
        for m in (c.start, c.end, c.given_at)
        if m is not None
    ]
    for what, moment in moments:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"proposal {proposal.id}: {what} must be timezone-aware, got {moment}")
        if not in_supported_range(moment):
            raise ValueError(f"proposal {proposal.id}: {what} {moment} is outside {_RANGE_TEXT}")


# Local conversions, 60-day searches and day arithmetic must stay inside datetime's years 1-9999.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
_RANGE_TEXT = "the years 1900-2999"


def in_supported_range(moment: datetime) -> bool:
    return EARLIEST <= moment < LATEST


def _utc_in_range(moment: datetime) -> bool:
    return moment.tzinfo is UTC and EARLIEST <= moment < LATEST


def _never_findings(pack: Pack, proposal: Proposal) -> list[Finding]:
    """The rules that block for good, whatever the time."""
    found: list[Finding] = []
    consumer = proposal.consumer
    if proposal.channel in consumer.opted_out:
        found.append(Finding(RuleId.OPT_OUT, f"the consumer opted out of {proposal.channel}"))
    if pack.consumer_only and proposal.person != CONSUMER:
        found.append(
            Finding(RuleId.PERSON, f"pack {pack.name} contacts the consumer only, not {proposal.person!r}")
        )
    if not consumer.time_zones:
        how = (
            "the caller must resolve the number's region to its zones first"
            if pack.unknown_zone == "region"
            else f"pack {pack.name} blocks unknown zones"
        )
        found.append(Finding(RuleId.ZONE_UNKNOWN, f"no time zone is known for this consumer: {how}"))
    found += [
        Finding(RuleId.ZONE_INVALID, f"unknown time zone {shorten(name)}")
        for name in consumer.time_zones
        if not known_zone(name)
    ]
    if (
        proposal.channel == "voice"
        and not proposal.debts
        and (pack.calls_per_7_days or pack.conversation_bar_days)
    ):
        found.append(Finding(RuleId.DEBTS, "a voice call must name the debts it is about (per-debt limits)"))
    if proposal.channel == "sms" and not proposal.debts and pack.seven_counts_texts and pack.calls_per_7_days:
        found.append(
            Finding(RuleId.DEBTS, f"pack {pack.name} counts texts with calls per debt: name the debts")
        )
    lender = pack.lender
    if lender.holidays_country:
        try:
            _holiday_calendar(lender.holidays_country, lender.holidays_subdivision)
        except NotImplementedError:
            where = lender.holidays_country + (
                f"/{lender.holidays_subdivision}" if lender.holidays_subdivision else ""
            )
            found.append(Finding(RuleId.HOLIDAY, f"no holiday calendar for {where}"))
    return found


# --- what a pack implies, derived once --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Cap:
    limit: int
    counts: CountMode
    source: str


@dataclass(frozen=True, slots=True)
class _PackFacts:
    """What the rules derive from a pack alone: computed once per pack, not per decision."""

    pack: Pack
    sources: dict[RuleId, str]  # rule -> pack.source(rule), for every rule id
    caps: tuple[_Cap, ...]
    sms_day: _Cap | None
    sms_week: _Cap | None
    span: str  # the window as text, "08:00-21:00"
    window_source: str
    seven_source: str
    bar_source: str
    calendar: bool  # the lender keeps holidays or quiet weekdays
    plain: bool  # decisions may take the plain path (_decide_plain): no calendar, daily cap or min gap
    moments: dict[tuple[tuple[ZoneInfo, ...], datetime], _Moment]  # the plain path's window, kept
    windows: dict[tuple[tuple[ZoneInfo, ...], datetime], object]  # _window_at's answers, kept
    days: dict[tuple[tuple[ZoneInfo, ...], tuple[date, ...]], _Days]  # the plain path's days, kept

    @staticmethod
    def of(pack: Pack) -> _PackFacts:
        caps = _caps(pack)
        calendar = bool(pack.lender.holidays_country or pack.lender.quiet_weekdays)
        return _PackFacts(
            pack=pack,
            sources={rule: pack.source(rule) for rule in RuleId},
            caps=caps,
            sms_day=_sms_cap(pack, RuleId.SMS_DAILY_CAP, pack.max_sms_per_day, pack.lender.max_sms_per_day),
            sms_week=_sms_cap(
                pack, RuleId.SMS_WEEKLY_CAP, pack.max_sms_per_week, pack.lender.max_sms_per_week
            ),
            span=f"{_hhmm(pack.window_start)}-{_hhmm(pack.window_end)}",
            window_source=pack.source(RuleId.WINDOW),
            seven_source=pack.source(RuleId.SEVEN_IN_SEVEN),
            bar_source=pack.source(RuleId.CONVERSATION),
            calendar=calendar,
            plain=not (calendar or caps or pack.lender.min_gap_unanswered_minutes or pack.seven_counts_texts),
            moments={},
            windows={},
            days={},
        )

    def source(self, rule: RuleId) -> str:
        text = self.sources.get(rule)
        return self.pack.source(rule) if text is None else text


# Kept by identity: hashing a Pack (every field, its sources) costs more than deciding. The entry holds
# the pack, so its id cannot be reused while it is here; a few packs live in a process.
_FACTS: dict[int, _PackFacts] = {}


def _facts(pack: Pack) -> _PackFacts:
    facts = _FACTS.get(id(pack))
    if facts is None or facts.pack is not pack:
        if len(_FACTS) >= 64:
            _FACTS.clear()
        facts = _FACTS[id(pack)] = _PackFacts.of(pack)
    return facts


def _caps(pack: Pack) -> tuple[_Cap, ...]:
    """The pack's daily cap and the lender's (always dialled); one of them when they count alike."""
    caps = []
    if pack.max_voice_per_day is not None:
        caps.append(_Cap(pack.max_voice_per_day, pack.daily_cap_counts, pack.source(RuleId.DAILY_CAP)))
    lender = pack.lender.max_voice_per_day
    if lender is not None:
        caps.append(_Cap(lender, "dialled", _LENDER_SOURCES[RuleId.DAILY_CAP]))
    if len(caps) == 2 and caps[0].counts == caps[1].counts:
        caps = [min(caps, key=lambda c: c.limit)]
    return tuple(caps)


def _sms_cap(pack: Pack, rule: RuleId, own: int | None, lender: int | None) -> _Cap | None:
    """The stricter of the pack's cap and the lender's (both count every text sent)."""
    if lender is not None and (own is None or lender < own):
        return _Cap(lender, "dialled", _LENDER_SOURCES[rule])
    return None if own is None else _Cap(own, "dialled", pack.source(rule))


# --- the plain path ---------------------------------------------------------------------------------
#
# Most decisions are a voice call at a UTC moment in known zones, without consents, inconvenient times
# or a voice opt-out, under a pack without the lender's calendar, daily caps or min gap (us-regf's).
# Then only the window, 7-in-7 and the conversation bar can block, and none of the never-rules can:
# _decide_plain gives the full path's verdict with less work. The window at a moment in some zones is
# the same for every consumer (kept per pack: a pass decides many accounts at one `now`); the history
# is read once; 7-in-7 looks at its windows only for a debt with `limit` calls or more, the bar only
# for conversations about the debts; the search for next_allowed_at re-evaluates just these three.
# Anything else (a consent, a moment not in UTC, ...) returns None: the full path decides.


@dataclass(frozen=True, slots=True)
class _Moment:
    """The window at one UTC moment in some zones, as the plain path needs it."""

    finding: Finding  # as _window_rules gives it: inside (informative) or outside (blocking)
    inside: bool
    next_at: datetime | None  # outside: the window's next start (next_allowed_at); None: none in HORIZON
    week: tuple[datetime, datetime]  # local days d-6..d over the zones, where 7-in-7 counts the room
    week_text: str
    settled: bool  # next_at is inside the window: the verdict's next_allowed_at if nothing else blocks


_MOMENTS_KEPT = 16384


def _decide_plain(facts: _PackFacts, proposal: Proposal) -> Verdict | None:
    """The verdict of a plain proposal (see above), or None: the full path decides."""
    at, consumer = proposal.at, proposal.consumer
    if (
        proposal.channel != "voice"
        or at.tzinfo is not UTC
        or not EARLIEST <= at < LATEST
        or consumer.consents
        or consumer.inconvenient
        or "voice" in consumer.opted_out
        or not proposal.debts
        or (facts.pack.consumer_only and proposal.person != CONSUMER)
    ):
        return None
    zones = _known_zones(consumer.time_zones)
    if zones is None:
        return None
    person = proposal.person
    calls: list[Contact] = []  # what 7-in-7 may count: outbound voice calls that connected
    talks: list[Contact] = []  # conversations, either direction
    for c in proposal.history:
        when = c.at
        if when.tzinfo is not UTC or not EARLIEST <= when < LATEST:
            return None  # _check_aware's to judge
        if c.person == person and c.channel == "voice":
            if c.direction == "outbound" and c.outcome not in _NOT_CONNECTED:
                calls.append(c)
            if c.conversation:
                talks.append(c)
    pack = facts.pack
    limit = pack.calls_per_7_days
    debts = proposal.debts
    heavy = _heavy(debts, calls, limit) if limit is not None and len(calls) >= limit else []
    moment = facts.moments.get((zones, at))
    if moment is None:
        if len(facts.moments) >= _MOMENTS_KEPT:
            facts.moments.clear()
        moment = facts.moments[(zones, at)] = _moment(facts, zones, at)
    n = pack.conversation_bar_days
    starts = _plain_bar_ends(zones, talks, debts, n) if talks and n is not None else []
    # Every finding here names its source as it is made (what _cited would give it).
    barring = _plain_sevens(facts, zones, heavy, at, limit, moment.week_text) if heavy and limit else []
    if starts and n is not None:
        barring += _plain_bars(facts, zones, starts, debts, at, n)
    if not barring:
        if moment.inside:
            return Verdict(proposal.id, True, tuple(_plain_allowed(facts, moment, calls, debts)), at)
        if not starts and not heavy and moment.settled:  # the window opens at next_at; nothing else blocks
            return Verdict(proposal.id, False, (moment.finding,), moment.next_at)
    blocking = barring if moment.inside else [moment.finding, *barring]
    nxt = _plain_next(facts, zones, at, [f.until for f in blocking], heavy, starts, debts)
    return Verdict(proposal.id, False, tuple(blocking), nxt)


_Heavy = tuple[str, list[Contact], list[datetime]]  # a debt, its counted calls by time, their moments


def _heavy(debts: tuple[str, ...], calls: list[Contact], limit: int) -> list[_Heavy]:
    """The debts with `limit` calls or more (by time, as 7-in-7 counts them): a window may be full."""
    out = []
    for debt in debts:
        counted = [c for c in calls if debt in c.debts]
        if len(counted) >= limit:
            counted.sort(key=_AT)
            out.append((debt, counted, [c.at for c in counted]))
    return out


def _plain_sevens(
    facts: _PackFacts,
    zones: tuple[ZoneInfo, ...],
    heavy: list[_Heavy],
    t: datetime,
    limit: int,
    week_text: str,
) -> list[Finding]:
    """7-in-7's blocking findings at `t` (as _seven_in_seven without consents)."""
    found = []
    for debt, counted, ats in heavy:
        full = _full_window(zones, counted, ats, t, limit)
        if full is None:
            continue
        until = _first_midnight(zones, t, partial(_window_room, zones, counted, ats, limit))
        refs = _refs(full)
        detail = (
            f"{len(full)} of {limit} calls about debt {debt} within 7 consecutive days around "
            f"{week_text} (busy, not-in-service and inbound calls not counted): history {', '.join(refs)}"
        )
        found.append(Finding(RuleId.SEVEN_IN_SEVEN, detail, refs, until, True, facts.seven_source))
    return found


def _window_room(
    zones: tuple[ZoneInfo, ...], counted: list[Contact], ats: list[datetime], limit: int, t: datetime
) -> bool:
    return _full_window(zones, counted, ats, t, limit) is None


def _plain_allowed(
    facts: _PackFacts, moment: _Moment, calls: list[Contact], debts: tuple[str, ...]
) -> list[Finding]:
    """An allowed plain verdict's findings: the window's, and 7-in-7's "call N of M" for each debt."""
    found = [moment.finding]
    limit = facts.pack.calls_per_7_days
    if limit is None:
        return found
    lo, hi = moment.week
    for debt in debts:
        week = [c for c in calls if debt in c.debts and lo <= c.at < hi]
        week.sort(key=_AT)  # the full path's history order (a stable sort, as there)
        used = len(week) + 1
        detail = f"call {used} of {limit} about debt {debt} in the 7 days {moment.week_text}"
        found.append(
            Finding(RuleId.SEVEN_IN_SEVEN, detail, _refs(week), None, False, facts.seven_source, used, limit)
        )
    return found


def _plain_bar_ends(
    zones: tuple[ZoneInfo, ...], talks: list[Contact], debts: tuple[str, ...], n: int
) -> list[tuple[Contact, datetime]]:
    """The conversations about the debts, by time, each with the end of its bar (as _bar_ends)."""
    talks.sort(key=_AT)
    return [(c, _bar_end(zones, c.at, n)) for c in talks if any(debt in c.debts for debt in debts)]


def _plain_bars(
    facts: _PackFacts,
    zones: tuple[ZoneInfo, ...],
    starts: list[tuple[Contact, datetime]],
    debts: tuple[str, ...],
    t: datetime,
    n: int,
) -> list[Finding]:
    """_conversation_bar's findings without consents: for each debt a conversation bars at `t`."""
    found = []
    for debt in debts:
        bars = [(c, end) for c, end in starts if debt in c.debts and c.at <= t and t < end]
        if bars:
            refs = _refs(c for c, _ in bars)
            detail = _bar_text(zones, debt, bars, refs, n)
            until = max(e for _, e in bars)
            found.append(Finding(RuleId.CONVERSATION, detail, refs, until, True, facts.bar_source))
    return found


def _plain_next(
    facts: _PackFacts,
    zones: tuple[ZoneInfo, ...],
    start: datetime,
    untils: list[datetime | None],
    heavy: list[_Heavy],
    starts: list[tuple[Contact, datetime]],
    debts: tuple[str, ...],
) -> datetime | None:
    """_next_allowed where only the window, 7-in-7 and the bar can block (no consents)."""
    n, limit = facts.pack.conversation_bar_days, facts.pack.calls_per_7_days
    t = start
    for _ in range(_MAX_STEPS):
        known = [u for u in untils if u is not None]
        if len(known) < len(untils):
            return None  # a rule that blocks for good, by itself
        latest = max(known)
        t = latest if latest > t else t + _EPSILON
        if t - start > HORIZON:
            return None
        untils = []
        opens = _window_at(facts, zones, t)
        if opens is not _INSIDE:
            untils.append(opens)  # type: ignore[arg-type]  # a datetime or None
        if heavy and limit:
            _seven_untils(zones, heavy, t, limit, untils)
        if starts and n is not None:
            _bar_untils(starts, debts, t, untils)
        if not untils:
            return t
    return None


def _window_at(facts: _PackFacts, zones: tuple[ZoneInfo, ...], t: datetime) -> object:
    """_INSIDE if `t` is inside the window, else the window's next start (None: none soon).

    Kept per pack: the search's moments (local midnights, window starts, bar ends) recur."""
    key = (zones, t)
    found = facts.windows.get(key, _UNSEEN)
    if found is _UNSEEN:
        if len(facts.windows) >= _MOMENTS_KEPT:
            facts.windows.clear()
        pack = facts.pack
        found = facts.windows[key] = _INSIDE if _in_window(pack, zones, t) else _next_start(pack, zones, t)
    return found


_UNSEEN, _INSIDE = object(), object()


def _seven_untils(
    zones: tuple[ZoneInfo, ...], heavy: list[_Heavy], t: datetime, limit: int, out: list[datetime | None]
) -> None:
    """Add, for each debt whose 7-in-7 blocks at `t`, when it stops blocking (as _plain_sevens)."""
    for _, counted, ats in heavy:
        if _full_window(zones, counted, ats, t, limit) is not None:
            out.append(_first_midnight(zones, t, partial(_window_room, zones, counted, ats, limit)))


def _bar_untils(
    starts: list[tuple[Contact, datetime]], debts: tuple[str, ...], t: datetime, out: list[datetime | None]
) -> None:
    """Add, for each debt a conversation bars at `t`, when its bar ends (as _plain_bars)."""
    for debt in debts:
        ends = [end for c, end in starts if t < end and c.at <= t and debt in c.debts]
        if ends:
            out.append(max(ends))


@lru_cache(maxsize=1024)
def _known_zones(names: tuple[str, ...]) -> tuple[ZoneInfo, ...] | None:
    """The zones, if there are some and every one is real (else the full path explains)."""
    if not names or not all(known_zone(name) for name in names):
        return None
    return _zones(names)


def _moment(facts: _PackFacts, zones: tuple[ZoneInfo, ...], t: datetime) -> _Moment:
    """The window at `t` (as _window_rules finds it), from the zones' local times (kept per zone and
    moment, shared by every set of zones holding one) and what their local days hold (_Days)."""
    pack = facts.pack
    parts = [_zone_here(z, t) for z in zones]
    days = tuple([p[1] for p in parts])
    plan = facts.days.get((zones, days))
    if plan is None:
        if len(facts.days) >= _MOMENTS_KEPT:
            facts.days.clear()
        plan = facts.days[(zones, days)] = _Days.of(pack, zones, days)
    week, week_text = plan.week, plan.week_text
    text = parts[0][2] if len(parts) == 1 else ", ".join([p[2] for p in parts])
    start, end = pack.window_start, pack.window_end
    if all(start <= p[0].time() < end for p in parts):
        return _Moment(_inside(facts.span, text, facts.window_source), True, None, week, week_text, True)
    nxt = _first_fit(plan.starts, t)
    finding = _outside(facts.span, pack.name, text, nxt is None, nxt, facts.window_source)
    if nxt is None:
        return _Moment(finding, False, None, week, week_text, True)
    # _next_allowed's first step: the window's start, re-evaluated (inside it, by _next_start's choice).
    again = nxt if nxt > t else t + _EPSILON
    if again - t > HORIZON:
        return _Moment(finding, False, None, week, week_text, True)
    return _Moment(finding, False, again, week, week_text, _in_window(pack, zones, again))


@dataclass(frozen=True, slots=True)
class _Days:
    """What some zones' local days (one each) hold for the plain path's window, the same at every
    moment of those days: the 7 days d-6..d (span and text) and the window's fitting starts."""

    week: tuple[datetime, datetime]
    week_text: str
    starts: tuple[tuple[datetime, ...], ...]  # _fitting_starts of these days

    @staticmethod
    def of(pack: Pack, zones: tuple[ZoneInfo, ...], days: tuple[date, ...]) -> _Days:
        return _Days(
            _days_span(zones, days, -6, 0),
            _week_text(days[0], ", ".join(z.key for z in zones)),
            _fitting_starts(pack.window_start, pack.window_end, zones, days),
        )


# --- one decision's context ------------------------------------------------------------------------


@dataclass(slots=True)
class _Ctx:
    """One decision's working state (not a record: it fills its memos as the rules ask)."""

    facts: _PackFacts
    pack: Pack
    proposal: Proposal
    zones: tuple[ZoneInfo, ...]
    zone_names: str  # "America/New_York, America/Chicago"
    outbound_voice: list[Contact]  # this person's outbound voice history, by time
    outbound_sms: list[Contact]  # this person's outbound texts, by time
    voice: list[Contact]  # this person's voice history, both directions, by time
    prior_consents: tuple[tuple[Consent, datetime, datetime], ...]  # consent, exempt from, until
    # Filled on first use, the same at every moment of the decision: what each daily cap and 7-in-7
    # (per debt) count, and the conversations that start a bar with the end of each bar.
    counted: dict[str, list[Contact]] = field(default_factory=dict)
    bars: dict[int, list[tuple[Contact, datetime]]] = field(default_factory=dict)

    @staticmethod
    def build(facts: _PackFacts, proposal: Proposal) -> _Ctx:
        person = proposal.person
        voice: list[Contact] = []
        sms: list[Contact] = []
        for c in proposal.history:  # one pass; list.sort is stable, as sorted() was
            if c.person == person:
                if c.channel == "voice":
                    voice.append(c)
                elif c.channel == "sms" and c.direction == "outbound":
                    sms.append(c)
        voice.sort(key=_AT)
        sms.sort(key=_AT)
        names = proposal.consumer.time_zones
        zones = _zones(names)
        consents = _prior_consents(proposal, zones) if proposal.consumer.consents else ()
        return _Ctx(
            facts,
            facts.pack,
            proposal,
            zones,
            ", ".join(names),  # a ZoneInfo's key is the name it was made from
            [c for c in voice if c.direction == "outbound"],
            sms,
            voice,
            consents,
        )

    def prior_consent(self, t: datetime) -> Consent | None:
        """The consent that takes an outbound call at `t` out of the Reg F frequencies, if any."""
        if not self.prior_consents:
            return None
        return next((c for c, lo, hi in self.prior_consents if lo <= t < hi), None)

    def next_prior_consent(self, t: datetime) -> datetime | None:
        """When the next prior-consent period starts after `t`: a rule it lifts may end there."""
        return min((lo for _, lo, _ in self.prior_consents if lo > t), default=None)


@lru_cache(maxsize=1024)
def _zones(names: tuple[str, ...]) -> tuple[ZoneInfo, ...]:
    return tuple(ZoneInfo(name) for name in names)


PRIOR_CONSENT_DAYS = 7


def _prior_consents(
    proposal: Proposal, zones: Sequence[ZoneInfo]
) -> tuple[tuple[Consent, datetime, datetime], ...]:
    """Each recorded-when consent with the period in which it exempts calls (1006.14(b)(3)(i)).

    The consumer's consent covers calls to the consumer only. The 7 days end at the earlier of 168
    hours after it was given and the end of local day 7 (day 1 = its day) in any zone."""
    if proposal.person != CONSUMER or not zones:
        return ()
    out = []
    for c in proposal.consumer.consents:
        if c.given_at is None:
            continue
        days = [_day_start(_local_date(c.given_at, z) + timedelta(days=PRIOR_CONSENT_DAYS), z) for z in zones]
        until = min(c.end, c.given_at + timedelta(days=PRIOR_CONSENT_DAYS), *days)
        start = max(c.start, c.given_at)
        if start < until:
            out.append((c, start, until))
    return tuple(out)


def _utc_text(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M}"


def _consent_name(c: Consent) -> str:
    name = f"consent {c.ref}" if c.ref else "a consent"
    given = f" given {_utc_text(c.given_at)} UTC" if c.given_at else ""
    return f"{name}{given} (to be called {_utc_text(c.start)} to {_utc_text(c.end)} UTC)"


# How much an evaluation says (see "Speed" above): only each blocking rule's `until`; the blocking
# findings with their texts; or also the informative findings of the rules that pass.
_UNTIL, _BLOCKING, _ALL = 0, 1, 2


def _evaluate(ctx: _Ctx, t: datetime, say: int) -> list[Finding]:
    """Every time-dependent rule at `t`: the blocking findings, and as much of the rest as `say` asks."""
    found: list[Finding] = []
    found += _window_rules(ctx, t, say)
    if ctx.facts.calendar:
        found += _calendar_rules(ctx, t)
    if say == _ALL and any(f.blocking for f in found):
        say = _BLOCKING  # refused already: the informative findings below would be dropped
    if ctx.proposal.channel == "voice":
        if ctx.facts.caps:
            found += _daily_cap(ctx, t, say)
        found += _seven_in_seven(ctx, t, say)
        found += _conversation_bar(ctx, t, say)
        if ctx.pack.lender.min_gap_unanswered_minutes:
            found += _min_gap(ctx, t, say)
    else:
        found += _sms_caps(ctx, t, say)
        if ctx.pack.seven_counts_texts:  # us-ma: texts and calls share 940 CMR 7.04(1)(f)'s 2 in 7
            found += _seven_in_seven(ctx, t, say)
    return found


def _next_allowed(ctx: _Ctx, start: datetime, blocking: Sequence[Finding]) -> datetime | None:
    t = start
    for _ in range(_MAX_STEPS):
        untils = [f.until for f in blocking if f.until is not None]
        if len(untils) < len(blocking):
            return None  # a rule that blocks for good, by itself
        latest = max(untils)
        t = latest if latest > t else t + _EPSILON
        if t - start > HORIZON:
            return None
        blocking = [f for f in _evaluate(ctx, t, _UNTIL) if f.blocking]
        if not blocking:
            return t
    return None


# --- local calendar helpers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Here:
    """One moment in each of the zones (in their order): its local times and local days, and how
    the window findings name it ("America/New_York 2026-12-02 10:00, ...")."""

    local: tuple[datetime, ...]
    days: tuple[date, ...]
    text: str


def _here(zones: tuple[ZoneInfo, ...], t: datetime) -> _Here:
    # The rules of one evaluation ask about the same moment many times: the last answer is kept by
    # identity (one tuple, read and written whole: safe across threads), then by value for UTC moments
    # only (two aware datetimes with the same tzinfo compare by wall time: a fold's two instants would
    # share a key).
    last = _last_here
    if last[1] is t and last[0] is zones:
        return last[2]
    here = _here_utc(zones, t) if t.tzinfo is UTC else _local(zones, t)
    _remember(zones, t, here)
    return here


def _remember(zones: tuple[ZoneInfo, ...], t: datetime, here: _Here) -> None:
    global _last_here
    _last_here = (zones, t, here)


# The caches are bounded: a few zones and days are in use at a time; the largest entries (61 midnights
# per zone) are a few KiB, so each cache stays within some MiB.
@lru_cache(maxsize=16384)
def _here_utc(zones: tuple[ZoneInfo, ...], t: datetime) -> _Here:
    if len(zones) == 1:
        local, day, text = _zone_here(zones[0], t)
        return _Here((local,), (day,), text)
    parts = [_zone_here(z, t) for z in zones]  # zone by zone: shared by every set of zones holding one
    return _Here(tuple([p[0] for p in parts]), tuple([p[1] for p in parts]), ", ".join([p[2] for p in parts]))


@lru_cache(maxsize=16384)
def _zone_here(zone: ZoneInfo, t: datetime) -> tuple[datetime, date, str]:
    """A UTC moment in one zone: its local time, local day, and "America/New_York 2026-12-02 10:00"."""
    local = t.astimezone(zone)
    return local, local.date(), f"{zone.key} {str(local)[:16]}"


def _local(zones: tuple[ZoneInfo, ...], t: datetime) -> _Here:
    local = tuple(t.astimezone(z) for z in zones)
    # str(datetime)[:16] is f"{lt:%Y-%m-%d %H:%M}" (years 1000-9999), without strftime's cost.
    text = ", ".join(f"{z.key} {str(lt)[:16]}" for z, lt in zip(zones, local, strict=True))
    return _Here(local, tuple(lt.date() for lt in local), text)


_last_here: tuple[tuple[ZoneInfo, ...], datetime, _Here] = ((), EARLIEST, _Here((), (), ""))


def _local_date(t: datetime, zone: ZoneInfo) -> date:
    return t.astimezone(zone).date()


@lru_cache(maxsize=65536)
def _day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first moment of a local day, in UTC (a midnight inside a DST gap maps to the transition)."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def _span(zones: tuple[ZoneInfo, ...], t: datetime, first: int, last: int) -> tuple[datetime, datetime]:
    """[earliest start of local day d+first, latest end of local day d+last) over the zones; d: t's day."""
    return _days_span(zones, _here(zones, t).days, first, last)


@lru_cache(maxsize=8192)
def _days_span(
    zones: tuple[ZoneInfo, ...], days: tuple[date, ...], first: int, last: int
) -> tuple[datetime, datetime]:
    pairs = tuple(zip(zones, days, strict=True))
    lo = min(_day_start(d + timedelta(days=first), z) for z, d in pairs)
    hi = max(_day_start(d + timedelta(days=last + 1), z) for z, d in pairs)
    return lo, hi


def _first_midnight(
    zones: tuple[ZoneInfo, ...], t: datetime, ok: Callable[[datetime], bool], days: int = 61
) -> datetime | None:
    """The first local midnight (any zone) after `t` at which `ok` holds; the counts change only there."""
    return next((c for c in _midnights(zones, _here(zones, t).days, days) if c > t and ok(c)), None)


@lru_cache(maxsize=1024)
def _midnights(zones: tuple[ZoneInfo, ...], days: tuple[date, ...], n: int) -> tuple[datetime, ...]:
    """The local midnights of days d+1..d+n in each zone, in UTC, sorted (d: each zone's day)."""
    pairs = tuple(zip(zones, days, strict=True))
    return tuple(sorted({_day_start(d + timedelta(days=k), z) for z, d in pairs for k in range(1, n + 1)}))


def _after(day: date, clock: time, zone: ZoneInfo, t: datetime) -> datetime:
    """The first moment after `t` at which local `day clock` happens (either fold), else t + 1 min."""
    moments = [datetime.combine(day, clock.replace(fold=fold), zone).astimezone(UTC) for fold in (0, 1)]
    return min((m for m in moments if m > t), default=t + _EPSILON)


def _hhmm(clock: time) -> str:
    return f"{clock:%H:%M}"


def _refs(contacts: Iterable[Contact]) -> tuple[str, ...]:
    return tuple([c.ref for c in contacts])  # a list first: faster than a generator into tuple()


def _earliest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return min(known) if known else None


# --- window, inconvenient times, consent -----------------------------------------------------------


def _consent_covering(consumer: Consumer, t: datetime) -> Consent | None:
    return next((c for c in consumer.consents if c.start <= t < c.end), None)


def _next_consent_start(consumer: Consumer, t: datetime) -> datetime | None:
    return min((c.start for c in consumer.consents if c.start > t and c.end > c.start), default=None)


def _in_window(pack: Pack, zones: tuple[ZoneInfo, ...], t: datetime) -> bool:
    start, end = pack.window_start, pack.window_end
    return all(start <= lt.time() < end for lt in _here(zones, t).local)


def next_window(pack: Pack, zones: Sequence[ZoneInfo], t: datetime) -> datetime | None:
    """The earliest moment at or after `t` inside the pack's window in every zone (None: none soon)."""
    zones = tuple(zones)
    return t if _in_window(pack, zones, t) else _next_start(pack, zones, t)


def _next_start(pack: Pack, zones: tuple[ZoneInfo, ...], t: datetime) -> datetime | None:
    """next_window for a `t` outside the window."""
    return _first_fit(_fitting_starts(pack.window_start, pack.window_end, zones, _here(zones, t).days), t)


def _first_fit(starts: tuple[tuple[datetime, ...], ...], t: datetime) -> datetime | None:
    """_next_start's answer from the fitting starts of `t`'s local days."""
    # The answer is a window start in some zone. Walk the days in order; zones' local days differ
    # by at most 26 hours, so once day k has a fit, days k+1 and k+2 may still hold an earlier one.
    # starts[i]: the fitting starts of day k = i - 1 (k from -1), the same for every t of these days.
    for i in range(_WINDOW_SEARCH_DAYS + 2):
        fits = [c for c in starts[i] if c > t]
        if fits:
            fits += [c for c in starts[i + 1] + starts[i + 2] if c > t]
            return min(fits)
    return None


@lru_cache(maxsize=1024)
def _fitting_starts(
    start: time, end: time, zones: tuple[ZoneInfo, ...], days: tuple[date, ...]
) -> tuple[tuple[datetime, ...], ...]:
    """For each day k = -1 .. _WINDOW_SEARCH_DAYS + 2 after `days`: the window's start on local day
    d+k in each zone, both folds, in UTC, that is inside the window in every zone."""
    out = []
    for k in range(-1, _WINDOW_SEARCH_DAYS + 3):
        candidates = [
            datetime.combine(d + timedelta(days=k), start.replace(fold=fold), z).astimezone(UTC)
            for z, d in zip(zones, days, strict=True)
            for fold in (0, 1)
        ]
        out.append(tuple(c for c in candidates if all(start <= c.astimezone(z).time() < end for z in zones)))
    return tuple(out)


def _in_range(r: TimeRange, clock: time) -> bool:
    if r.start < r.end:
        return r.start <= clock < r.end
    if r.start > r.end:  # wraps midnight
        return clock >= r.start or clock < r.end
    return True  # start == end: the whole day


def _range_end(r: TimeRange, local: datetime, zone: ZoneInfo, t: datetime) -> datetime | None:
    if r.start == r.end:
        return None
    day = local.date()
    if r.start > r.end and local.time() >= r.start:
        day += timedelta(days=1)
    return _after(day, r.end, zone, t)


def _window_rules(ctx: _Ctx, t: datetime, say: int) -> list[Finding]:
    pack, consumer = ctx.pack, ctx.proposal.consumer
    here = _here(ctx.zones, t)
    consent = _consent_covering(consumer, t) if consumer.consents else None
    if consent is not None:
        if say < _ALL:
            return []
        return [
            Finding(
                RuleId.CONSENT,
                f"the consumer agreed to contact from {_utc_text(consent.start)} to "
                f"{_utc_text(consent.end)} UTC: the window and inconvenient times don't apply "
                f"({here.text})",
                blocking=False,
            )
        ]
    consent_next = _next_consent_start(consumer, t) if consumer.consents else None
    found: list[Finding] = []
    span = ctx.facts.span
    start, end = pack.window_start, pack.window_end
    if all(start <= lt.time() < end for lt in here.local):  # _in_window, with `here` at hand
        if say == _ALL:
            found.append(_inside(span, here.text, ctx.facts.window_source))
    else:
        nxt = _next_start(pack, ctx.zones, t)
        until = _earliest(nxt, consent_next)
        if say == _UNTIL:
            found.append(Finding(RuleId.WINDOW, "", until=until))
        else:
            found.append(_outside(span, pack.name, here.text, nxt is None, until, ctx.facts.window_source))
    if consumer.inconvenient:
        found += _inconvenient(ctx, t, here, consent_next)
    return found


# The window's findings are the same for every consumer in the same zones at the same moment (a batch
# of decisions at one `now`): kept, as findings are immutable.
@lru_cache(maxsize=4096)
def _inside(span: str, local: str, source: str) -> Finding:
    return Finding(RuleId.WINDOW, f"inside {span} in every zone: {local}", blocking=False, source=source)


def _outside(span: str, pack: str, local: str, none: bool, until: datetime | None, source: str) -> Finding:
    if until is None or (until.tzinfo is UTC and not until.fold):
        return _outside_kept(span, pack, local, none, until, source)
    # Not kept: an equal instant in another zone (or fold) would share the key, and show differently.
    return _outside_kept.__wrapped__(span, pack, local, none, until, source)


@lru_cache(maxsize=4096)
def _outside_kept(
    span: str, pack: str, local: str, none: bool, until: datetime | None, source: str
) -> Finding:
    detail = f"outside {span} (pack {pack}): {local}"
    if none:
        detail += f"; the zones share no calling window in the next {_WINDOW_SEARCH_DAYS} days"
    return Finding(RuleId.WINDOW, detail, until=until, source=source)


def _inconvenient(ctx: _Ctx, t: datetime, here: _Here, consent_next: datetime | None) -> list[Finding]:
    hits: list[tuple[str, datetime | None]] = []
    for zone, lt in zip(ctx.zones, here.local, strict=True):
        for r in ctx.proposal.consumer.inconvenient:
            if _in_range(r, lt.time()):
                hits.append(
                    (
                        f"{_hhmm(r.start)}-{_hhmm(r.end)} in {zone.key} ({lt:%H:%M})",
                        _range_end(r, lt, zone, t),
                    )
                )
    if not hits:
        return []
    ends = [end for _, end in hits]
    until = None if any(e is None for e in ends) else max(e for e in ends if e is not None)
    return [
        Finding(
            RuleId.INCONVENIENT,
            "the consumer said these times are inconvenient: " + "; ".join(d for d, _ in hits),
            until=_earliest(until, consent_next),
        )
    ]


# --- lender calendar: holidays and quiet weekdays --------------------------------------------------

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@lru_cache(maxsize=32)
def _holiday_calendar(country: str, subdivision: str | None) -> Mapping[date, str]:
    # A Mapping, not the HolidayBase (a dict) it is: compiled code would read a dict's own items,
    # bypassing HolidayBase's `in` and `get`, which fill in each year on first use.
    return holidays.country_holidays(country, subdiv=subdivision)


@lru_cache(maxsize=4096)
def _holiday_name(country: str, subdivision: str | None, day: date) -> str | None:
    """ "2026-12-25 Christmas Day", or None: the calendar's answer for a day does not change."""
    cal = _holiday_calendar(country, subdivision)
    return f"{day} {cal.get(day)}" if day in cal else None


def _whole_day(
    ctx: _Ctx, t: datetime, rule: RuleId, title: str, label: Callable[[date], str | None]
) -> list[Finding]:
    """Block the whole local day, in any zone, where `label` names the day (else it's not blocked)."""
    hits = []
    for zone, day in zip(ctx.zones, _here(ctx.zones, t).days, strict=True):
        name = label(day)
        if name is not None:
            hits.append((f"{name} in {zone.key}", _day_start(day + timedelta(days=1), zone)))
    if not hits:
        return []
    return [Finding(rule, f"{title}: " + "; ".join(d for d, _ in hits), until=max(u for _, u in hits))]


def _calendar_rules(ctx: _Ctx, t: datetime) -> list[Finding]:
    lender = ctx.pack.lender
    found: list[Finding] = []
    if lender.holidays_country:
        country, subdivision = lender.holidays_country, lender.holidays_subdivision
        found += _whole_day(
            ctx, t, RuleId.HOLIDAY, "lender holiday", lambda day: _holiday_name(country, subdivision, day)
        )
    if lender.quiet_weekdays:
        quiet = lender.quiet_weekdays
        found += _whole_day(
            ctx,
            t,
            RuleId.QUIET_DAY,
            "lender quiet weekday",
            lambda day: f"{_WEEKDAYS[day.weekday()]} {day}" if day.weekday() in quiet else None,
        )
    return found


# --- voice limits --------------------------------------------------------------------------------


def _in(contacts: Iterable[Contact], lo: datetime, hi: datetime) -> list[Contact]:
    return [c for c in contacts if lo <= c.at < hi]


_CONNECTED: frozenset[str] = frozenset({"answered", "voicemail", "dropped", "unknown"})


def _daily_cap(ctx: _Ctx, t: datetime, say: int) -> list[Finding]:
    return [f for cap in ctx.facts.caps for f in _one_cap(ctx, cap, t, say)]


def _one_cap(ctx: _Ctx, cap: _Cap, t: datetime, say: int) -> list[Finding]:
    counted = ctx.counted.get(cap.counts)
    if counted is None:
        counted = ctx.counted[cap.counts] = [
            c for c in ctx.outbound_voice if cap.counts == "dialled" or c.outcome in _CONNECTED
        ]
    what = "voice calls" if cap.counts == "dialled" else "connected voice calls"
    return _per_day(ctx, t, RuleId.DAILY_CAP, counted, cap, "call", what, say)


def _per_day(
    ctx: _Ctx,
    t: datetime,
    rule: RuleId,
    counted: Sequence[Contact],
    cap: _Cap,
    unit: str,
    what: str,
    say: int,
) -> list[Finding]:
    """A cap per local day (from the earliest local midnight to the latest): "call N of M" or blocked."""

    def today(moment: datetime) -> list[Contact]:
        return _in(counted, *_span(ctx.zones, moment, 0, 0))

    calls = today(t)
    if len(calls) < cap.limit and say < _ALL:
        return []  # room: only an informative finding
    where = ctx.zone_names + ("; from the earliest local midnight" if len(ctx.zones) > 1 else "")
    if len(calls) < cap.limit:
        used = len(calls) + 1
        detail = f"{unit} {used} of {cap.limit} {what} today ({where})"
        return [
            Finding(rule, detail, _refs(calls), blocking=False, source=cap.source, used=used, limit=cap.limit)
        ]
    until = _first_midnight(ctx.zones, t, lambda m: len(today(m)) < cap.limit)
    refs = _refs(calls)
    detail = (
        f"{len(calls)} of {cap.limit} {what} today ({where}): history {', '.join(refs)}"
        if say > _UNTIL
        else ""
    )
    return [Finding(rule, detail, refs, until=until, source=cap.source)]


def _seven_counted(ctx: _Ctx, debt: str) -> list[Contact]:
    """What 7-in-7 counts about `debt` (the same at every moment of the decision: kept in ctx)."""
    key = "seven " + debt
    counted = ctx.counted.get(key)
    if counted is None:
        counted = ctx.counted[key] = _seven_counted_now(ctx, debt)
    return counted


def _seven_counted_now(ctx: _Ctx, debt: str) -> list[Contact]:
    exempt = ctx.pack.seven_consent_exempt and bool(ctx.prior_consents)
    calls = [
        c
        for c in ctx.outbound_voice
        if debt in c.debts
        and c.outcome not in _NOT_CONNECTED
        and not (exempt and ctx.prior_consent(c.at) is not None)
    ]
    if not ctx.pack.seven_counts_texts:
        return calls
    # A text that names no debt may be about any: it counts toward each (conservative reading).
    texts = [c for c in ctx.outbound_sms if debt in c.debts or not c.debts]
    return sorted(calls + texts, key=_AT)


def _exempt_calls(ctx: _Ctx, debt: str, lo: datetime, hi: datetime) -> str:
    """ "; not counted under prior consent: history 3 (consent 0 given ...)", or ""."""
    if not ctx.prior_consents:
        return ""
    named = [
        f"{c.ref} ({_consent_name(k)})"
        for c in _in(ctx.outbound_voice, lo, hi)
        if debt in c.debts and (k := ctx.prior_consent(c.at)) is not None
    ]
    return (
        f"; not counted, under prior consent (1006.14(b)(3)(i)): history {', '.join(named)}" if named else ""
    )


def _prior_consent_finding(ctx: _Ctx, t: datetime, rule: RuleId) -> Finding | None:
    """The proposal itself is under a prior consent: the rule doesn't apply to it."""
    consent = ctx.prior_consent(t)
    if consent is None:
        return None
    detail = f"{rule} does not apply: the call is under {_consent_name(consent)}, given within 7 days"
    return Finding(RuleId.PRIOR_CONSENT, detail, blocking=False, source=ctx.facts.source(rule))


@lru_cache(maxsize=4096)
def _week_text(day: date, zone_names: str) -> str:
    """ "2026-11-26..2026-12-02 (America/New_York)": the 7 days d-6..d in the first zone."""
    return f"{day - timedelta(days=6)}..{day} ({zone_names})"


def _seven_worst(
    zones: tuple[ZoneInfo, ...], counted: Sequence[Contact], t: datetime, limit: int
) -> list[Contact] | None:
    """The calls of the first 7-day window holding t's local day that is full; None: room in all.

    `counted` is in time order (as every caller keeps it): a window's calls are a slice of it."""
    if len(counted) < limit:
        return None  # no window can be full: the common case, and cheap
    return _full_window(zones, counted, [c.at for c in counted], t, limit)


def _full_window(
    zones: tuple[ZoneInfo, ...], counted: Sequence[Contact], ats: list[datetime], t: datetime, limit: int
) -> list[Contact] | None:
    """_seven_worst, with the moments of `counted` at hand (`ats`, in the same order)."""
    for lo, hi in _seven_spans(zones, _here(zones, t).days):
        first = bisect_left(ats, lo)
        end = bisect_left(ats, hi, first)
        if end - first >= limit:
            return list(counted[first:end])
    return None


@lru_cache(maxsize=8192)
def _seven_spans(
    zones: tuple[ZoneInfo, ...], days: tuple[date, ...]
) -> tuple[tuple[datetime, datetime], ...]:
    """The 7 windows of 7 local days that hold the day (d-6..d, ..., d..d+6), as _span gives them."""
    return tuple(_days_span(zones, days, k - 6, k) for k in range(7))


def _seven_room(zones: tuple[ZoneInfo, ...], counted: Sequence[Contact], limit: int, t: datetime) -> bool:
    return _seven_worst(zones, counted, t, limit) is None


def _seven_in_seven(ctx: _Ctx, t: datetime, say: int) -> list[Finding]:
    limit = ctx.pack.calls_per_7_days
    if limit is None:
        return []
    # Prior consent (1006.14(b)(3)(i)) takes calls out of the count; a text is never exempt.
    consent_exempt = ctx.pack.seven_consent_exempt and ctx.proposal.channel == "voice"
    if (
        consent_exempt
        and ctx.prior_consents
        and (exempt := _prior_consent_finding(ctx, t, RuleId.SEVEN_IN_SEVEN))
    ):
        return [exempt] if say == _ALL else []
    found: list[Finding] = []
    for debt in ctx.proposal.debts:
        counted = _seven_counted(ctx, debt)
        full = _seven_worst(ctx.zones, counted, t, limit)
        if full is None and say < _ALL:
            continue  # room: only an informative finding
        until = None
        if full is not None:
            until = _first_midnight(ctx.zones, t, partial(_seven_room, ctx.zones, counted, limit))
            if consent_exempt:
                until = _earliest(until, ctx.next_prior_consent(t))
        if say == _UNTIL:
            found.append(Finding(RuleId.SEVEN_IN_SEVEN, "", _refs(full or ()), until=until))
            continue
        found.append(_seven_explained(ctx, t, limit, debt, counted, full, until))
    return found


def _seven_explained(
    ctx: _Ctx,
    t: datetime,
    limit: int,
    debt: str,
    counted: list[Contact],
    full: list[Contact] | None,
    until: datetime | None,
) -> Finding:
    """7-in-7's finding for one debt with its text: "call N of M" (room) or the full window's calls."""
    unit = "call" if ctx.proposal.channel == "voice" else "text"
    what = "calls and texts" if ctx.pack.seven_counts_texts else "calls"
    here = _here(ctx.zones, t)
    days = _week_text(here.days[0], ctx.zone_names)
    week = _days_span(ctx.zones, here.days, -6, 0)
    spared = _exempt_calls(ctx, debt, *week) if ctx.pack.seven_consent_exempt and ctx.prior_consents else ""
    if full is None:
        calls = _in(counted, *week)
        used = len(calls) + 1
        shared = " calls and texts" if ctx.pack.seven_counts_texts else ""
        detail = f"{unit} {used} of {limit}{shared} about debt {debt} in the 7 days {days}{spared}"
        source = ctx.facts.seven_source
        return Finding(RuleId.SEVEN_IN_SEVEN, detail, _refs(calls), None, False, source, used, limit)
    refs = _refs(full)
    detail = (
        f"{len(full)} of {limit} {what} about debt {debt} within 7 consecutive days around {days} "
        f"(busy, not-in-service and inbound calls not counted): history {', '.join(refs)}{spared}"
    )
    return Finding(RuleId.SEVEN_IN_SEVEN, detail, refs, until=until)


def _conversation_bar(ctx: _Ctx, t: datetime, say: int) -> list[Finding]:
    n = ctx.pack.conversation_bar_days
    if n is None:
        return []
    starts = _bar_ends(ctx, n)
    if not ctx.prior_consents and not starts:
        return []  # no conversation to bar anything: the common case
    exempt = ctx.pack.bar_consent_exempt
    if exempt and (spared := _prior_consent_finding(ctx, t, RuleId.CONVERSATION)):
        return [spared] if say == _ALL else []
    found: list[Finding] = []
    for debt in ctx.proposal.debts:
        bars = [(c, end) for c, end in starts if debt in c.debts and c.at <= t and t < end]
        if not bars:
            continue
        refs = _refs(c for c, _ in bars)
        until = max(e for _, e in bars)
        if exempt:
            until = min(until, ctx.next_prior_consent(t) or until)
        detail = _bar_text(ctx.zones, debt, bars, refs, n) if say > _UNTIL else ""
        found.append(Finding(RuleId.CONVERSATION, detail, refs, until=until))
    return found


def _bar_text(
    zones: tuple[ZoneInfo, ...],
    debt: str,
    bars: list[tuple[Contact, datetime]],
    refs: tuple[str, ...],
    n: int,
) -> str:
    last = max(bars, key=lambda b: b[0].at)[0]
    days = ", ".join(f"{z.key} {_local_date(last.at, z)}" for z in zones)
    return (
        f"a conversation about debt {debt} on {days} (day 1; {last.direction}, history {last.ref}) "
        f"bars calls about it for {n} days: history {', '.join(refs)}"
    )


def _bar_ends(ctx: _Ctx, n: int) -> list[tuple[Contact, datetime]]:
    """The conversations that start a bar, in history order, each with the end of its n days (the
    latest over the zones)."""
    bars = ctx.bars.get(n)
    if bars is None:
        bars = ctx.bars[n] = [
            (c, _bar_end(ctx.zones, c.at, n)) for c in ctx.voice if c.conversation and not _bar_exempt(ctx, c)
        ]
    return bars


def _bar_exempt(ctx: _Ctx, c: Contact) -> bool:
    """A call under prior consent is outside the frequencies: it starts no bar."""
    return ctx.pack.bar_consent_exempt and c.direction == "outbound" and ctx.prior_consent(c.at) is not None


def _bar_end(zones: tuple[ZoneInfo, ...], at: datetime, n: int) -> datetime:
    return max(_day_start(_local_date(at, z) + timedelta(days=n), z) for z in zones)


def _min_gap(ctx: _Ctx, t: datetime, say: int) -> list[Finding]:
    minutes = ctx.pack.lender.min_gap_unanswered_minutes
    if not minutes:
        return []
    gap = timedelta(minutes=minutes)
    recent = [
        c
        for c in ctx.outbound_voice
        if c.outcome != "answered" and not c.conversation and abs(t - c.at) < gap
    ]
    if not recent:
        return []
    refs = _refs(recent)
    detail = (
        (
            f"unanswered call(s) less than {minutes} min apart from this one "
            f"({', '.join(f'{c.ref} {c.outcome} at {c.at.astimezone(UTC):%H:%M} UTC' for c in recent)}): "
            f"history {', '.join(refs)}"
        )
        if say > _UNTIL
        else ""
    )
    return [Finding(RuleId.MIN_GAP, detail, refs, until=max(c.at for c in recent) + gap)]


# --- SMS caps ------------------------------------------------------------------------------------


def _sms_caps(ctx: _Ctx, t: datetime, say: int) -> list[Finding]:
    found: list[Finding] = []
    day, week = ctx.facts.sms_day, ctx.facts.sms_week
    if day is not None:
        found += _per_day(ctx, t, RuleId.SMS_DAILY_CAP, ctx.outbound_sms, day, "text", "texts", say)
    if week is not None:
        found += _sms_week(ctx, t, week, say)
    return found


def _sms_week(ctx: _Ctx, t: datetime, cap: _Cap, say: int) -> list[Finding]:
    """Texts in 7 consecutive local days: every 7-day window holding t's day (as 7-in-7, per person)."""
    counted = ctx.outbound_sms
    full = _seven_worst(ctx.zones, counted, t, cap.limit)
    if full is None and say < _ALL:
        return []  # room: only an informative finding
    days = _week_text(_here(ctx.zones, t).days[0], ctx.zone_names)
    if full is None:
        sent = _in(counted, *_span(ctx.zones, t, -6, 0))
        used = len(sent) + 1
        detail = f"text {used} of {cap.limit} texts in the 7 days {days}"
        return [
            Finding(
                RuleId.SMS_WEEKLY_CAP,
                detail,
                _refs(sent),
                blocking=False,
                source=cap.source,
                used=used,
                limit=cap.limit,
            )
        ]
    until = _first_midnight(ctx.zones, t, partial(_seven_room, ctx.zones, counted, cap.limit))
    refs = _refs(full)
    detail = (
        f"{len(full)} of {cap.limit} texts within 7 consecutive days around {days}: history {', '.join(refs)}"
    )
    return [Finding(RuleId.SMS_WEEKLY_CAP, detail, refs, until=until, source=cap.source)]

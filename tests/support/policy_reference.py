"""The contact-policy engine as it was before the speed-up (2026-12-02): the differential test's reference.

A verbatim copy of dialer/policy/engine.py's decision path (everything after the record types, which
it imports from the engine so both take the same inputs). Only tests/unit/test_policy_differential.py
uses it: do not change it, and do not import it from the product.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache, partial
from zoneinfo import ZoneInfo, available_timezones

import holidays

from dialer.core.vocab import RuleId
from dialer.policy.engine import (
    CONSUMER,
    Consent,
    Consumer,
    Contact,
    CountMode,
    Finding,
    Pack,
    Proposal,
    TimeRange,
    Verdict,
)

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
# ---------------------------------------------------------------------------------------------------

HORIZON = timedelta(days=60)
_MAX_STEPS = 200
_WINDOW_SEARCH_DAYS = 8
_NOT_CONNECTED: frozenset[str] = frozenset({"busy", "not_in_service"})
_EPSILON = timedelta(minutes=1)


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
    _check_aware(proposal)
    never = _never_findings(pack, proposal)
    if never:
        return Verdict(proposal.id, False, _cited(pack, never), None)
    ctx = _Ctx.build(pack, proposal)
    findings = _evaluate(ctx, proposal.at)
    blocking = tuple(f for f in findings if f.blocking)
    if not blocking:
        return Verdict(proposal.id, True, _cited(pack, findings), proposal.at)
    return Verdict(proposal.id, False, _cited(pack, blocking), _next_allowed(ctx, proposal.at, blocking))


def _cited(pack: Pack, findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Every reason names the text its rule comes from."""
    return tuple(f if f.source else replace(f, source=pack.source(f.rule)) for f in findings)


def shorten(value: str, limit: int = 60) -> str:
    """A value for an error message: repr'd, and cut when long (a 300-character zone)."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"


def _check_aware(proposal: Proposal) -> None:
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


@dataclass(frozen=True, slots=True)
class _Ctx:
    pack: Pack
    proposal: Proposal
    zones: tuple[ZoneInfo, ...]
    caps: tuple[_Cap, ...]
    outbound_voice: tuple[Contact, ...]  # this person's outbound voice history, by time
    outbound_sms: tuple[Contact, ...]  # this person's outbound texts, by time
    voice: tuple[Contact, ...]  # this person's voice history, both directions, by time
    prior_consents: tuple[tuple[Consent, datetime, datetime], ...]  # consent, exempt from, until

    @staticmethod
    def build(pack: Pack, proposal: Proposal) -> _Ctx:
        voice = tuple(
            sorted(
                (c for c in proposal.history if c.person == proposal.person and c.channel == "voice"),
                key=lambda c: c.at,
            )
        )
        zones = tuple(ZoneInfo(name) for name in proposal.consumer.time_zones)
        sms = sorted(
            (
                c
                for c in proposal.history
                if c.person == proposal.person and c.channel == "sms" and c.direction == "outbound"
            ),
            key=lambda c: c.at,
        )
        return _Ctx(
            pack=pack,
            proposal=proposal,
            zones=zones,
            caps=_caps(pack),
            outbound_voice=tuple(c for c in voice if c.direction == "outbound"),
            outbound_sms=tuple(sms),
            voice=voice,
            prior_consents=_prior_consents(proposal, zones),
        )

    def prior_consent(self, t: datetime) -> Consent | None:
        """The consent that takes an outbound call at `t` out of the Reg F frequencies, if any."""
        return next((c for c, lo, hi in self.prior_consents if lo <= t < hi), None)

    def next_prior_consent(self, t: datetime) -> datetime | None:
        """When the next prior-consent period starts after `t`: a rule it lifts may end there."""
        return min((lo for _, lo, _ in self.prior_consents if lo > t), default=None)

    @property
    def zone_names(self) -> str:
        return ", ".join(z.key for z in self.zones)


@dataclass(frozen=True, slots=True)
class _Cap:
    limit: int
    counts: CountMode
    source: str


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


def _evaluate(ctx: _Ctx, t: datetime) -> list[Finding]:
    """Every time-dependent rule at `t` (blocking findings, and informative ones when they pass)."""
    found: list[Finding] = []
    found += _window_rules(ctx, t)
    found += _calendar_rules(ctx, t)
    if ctx.proposal.channel == "voice":
        found += _daily_cap(ctx, t)
        found += _seven_in_seven(ctx, t)
        found += _conversation_bar(ctx, t)
        found += _min_gap(ctx, t)
    else:
        found += _sms_caps(ctx, t)
        if ctx.pack.seven_counts_texts:  # us-ma: texts and calls share 940 CMR 7.04(1)(f)'s 2 in 7
            found += _seven_in_seven(ctx, t)
    return found


def _next_allowed(ctx: _Ctx, start: datetime, blocking: Sequence[Finding]) -> datetime | None:
    t = start
    for _ in range(_MAX_STEPS):
        untils = [f.until for f in blocking]
        if any(u is None for u in untils):
            return None
        latest = max(u for u in untils if u is not None)
        t = latest if latest > t else t + _EPSILON
        if t - start > HORIZON:
            return None
        blocking = [f for f in _evaluate(ctx, t) if f.blocking]
        if not blocking:
            return t
    return None


# --- local calendar helpers ------------------------------------------------------------------------


def _local_date(t: datetime, zone: ZoneInfo) -> date:
    return t.astimezone(zone).date()


@lru_cache(maxsize=65536)
def _day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first moment of a local day, in UTC (a midnight inside a DST gap maps to the transition)."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def _span(zones: Sequence[ZoneInfo], t: datetime, first: int, last: int) -> tuple[datetime, datetime]:
    """[earliest start of local day d+first, latest end of local day d+last) over the zones; d: t's day."""
    lo = min(_day_start(_local_date(t, z) + timedelta(days=first), z) for z in zones)
    hi = max(_day_start(_local_date(t, z) + timedelta(days=last + 1), z) for z in zones)
    return lo, hi


def _first_midnight(
    zones: Sequence[ZoneInfo], t: datetime, ok: Callable[[datetime], bool], days: int = 61
) -> datetime | None:
    """The first local midnight (any zone) after `t` at which `ok` holds; the counts change only there."""
    candidates = sorted(
        {_day_start(_local_date(t, z) + timedelta(days=k), z) for z in zones for k in range(1, days + 1)}
    )
    return next((c for c in candidates if c > t and ok(c)), None)


def _after(day: date, clock: time, zone: ZoneInfo, t: datetime) -> datetime:
    """The first moment after `t` at which local `day clock` happens (either fold), else t + 1 min."""
    moments = [datetime.combine(day, clock.replace(fold=fold), zone).astimezone(UTC) for fold in (0, 1)]
    return min((m for m in moments if m > t), default=t + _EPSILON)


def _hhmm(clock: time) -> str:
    return f"{clock:%H:%M}"


def _refs(contacts: Iterable[Contact]) -> tuple[str, ...]:
    return tuple(c.ref for c in contacts)


def _earliest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return min(known) if known else None


# --- window, inconvenient times, consent -----------------------------------------------------------


def _consent_covering(consumer: Consumer, t: datetime) -> Consent | None:
    return next((c for c in consumer.consents if c.start <= t < c.end), None)


def _next_consent_start(consumer: Consumer, t: datetime) -> datetime | None:
    return min((c.start for c in consumer.consents if c.start > t and c.end > c.start), default=None)


def _in_window(pack: Pack, zones: Sequence[ZoneInfo], t: datetime) -> bool:
    return all(pack.window_start <= t.astimezone(z).time() < pack.window_end for z in zones)


def _window_starts(pack: Pack, zones: Sequence[ZoneInfo], t: datetime, k: int) -> list[datetime]:
    """The window's start on local day d+k (d: t's local day) in each zone, both folds, in UTC."""
    return [
        datetime.combine(
            _local_date(t, z) + timedelta(days=k), pack.window_start.replace(fold=fold), z
        ).astimezone(UTC)
        for z in zones
        for fold in (0, 1)
    ]


def next_window(pack: Pack, zones: Sequence[ZoneInfo], t: datetime) -> datetime | None:
    """The earliest moment at or after `t` inside the pack's window in every zone (None: none soon)."""
    if _in_window(pack, zones, t):
        return t
    # The answer is a window start in some zone. Walk the days in order; zones' local days differ
    # by at most 26 hours, so once day k has a fit, days k+1 and k+2 may still hold an earlier one.
    for k in range(-1, _WINDOW_SEARCH_DAYS + 1):
        fits = [c for c in _window_starts(pack, zones, t, k) if c > t and _in_window(pack, zones, c)]
        if fits:
            later = [c for j in (1, 2) for c in _window_starts(pack, zones, t, k + j)]
            fits += [c for c in later if c > t and _in_window(pack, zones, c)]
            return min(fits)
    return None


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


def _window_rules(ctx: _Ctx, t: datetime) -> list[Finding]:
    pack, consumer = ctx.pack, ctx.proposal.consumer
    local = ", ".join(f"{z.key} {t.astimezone(z):%Y-%m-%d %H:%M}" for z in ctx.zones)
    consent = _consent_covering(consumer, t)
    if consent is not None:
        return [
            Finding(
                RuleId.CONSENT,
                f"the consumer agreed to contact from {_utc_text(consent.start)} to "
                f"{_utc_text(consent.end)} UTC: the window and inconvenient times don't apply ({local})",
                blocking=False,
            )
        ]
    consent_next = _next_consent_start(consumer, t)
    found: list[Finding] = []
    span = f"{_hhmm(pack.window_start)}-{_hhmm(pack.window_end)}"
    if _in_window(pack, ctx.zones, t):
        found.append(Finding(RuleId.WINDOW, f"inside {span} in every zone: {local}", blocking=False))
    else:
        nxt = next_window(pack, ctx.zones, t)
        detail = f"outside {span} (pack {pack.name}): {local}"
        if nxt is None:
            detail += f"; the zones share no calling window in the next {_WINDOW_SEARCH_DAYS} days"
        found.append(Finding(RuleId.WINDOW, detail, until=_earliest(nxt, consent_next)))
    hits: list[tuple[str, datetime | None]] = []
    for zone in ctx.zones:
        lt = t.astimezone(zone)
        for r in consumer.inconvenient:
            if _in_range(r, lt.time()):
                hits.append(
                    (
                        f"{_hhmm(r.start)}-{_hhmm(r.end)} in {zone.key} ({lt:%H:%M})",
                        _range_end(r, lt, zone, t),
                    )
                )
    if hits:
        ends = [end for _, end in hits]
        until = None if any(e is None for e in ends) else max(e for e in ends if e is not None)
        found.append(
            Finding(
                RuleId.INCONVENIENT,
                "the consumer said these times are inconvenient: " + "; ".join(d for d, _ in hits),
                until=_earliest(until, consent_next),
            )
        )
    return found


# --- lender calendar: holidays and quiet weekdays --------------------------------------------------

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@lru_cache(maxsize=32)
def _holiday_calendar(country: str, subdivision: str | None) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdivision)


def _whole_day(
    ctx: _Ctx, t: datetime, rule: RuleId, title: str, label: Callable[[date], str | None]
) -> list[Finding]:
    """Block the whole local day, in any zone, where `label` names the day (else it's not blocked)."""
    hits = []
    for zone in ctx.zones:
        day = _local_date(t, zone)
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
        cal = _holiday_calendar(lender.holidays_country, lender.holidays_subdivision)
        found += _whole_day(
            ctx,
            t,
            RuleId.HOLIDAY,
            "lender holiday",
            lambda day: f"{day} {cal.get(day)}" if day in cal else None,
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


def _daily_cap(ctx: _Ctx, t: datetime) -> list[Finding]:
    return [f for cap in ctx.caps for f in _one_cap(ctx, cap, t)]


def _one_cap(ctx: _Ctx, cap: _Cap, t: datetime) -> list[Finding]:
    counted = tuple(c for c in ctx.outbound_voice if cap.counts == "dialled" or c.outcome in _CONNECTED)
    what = "voice calls" if cap.counts == "dialled" else "connected voice calls"
    return _per_day(ctx, t, RuleId.DAILY_CAP, counted, cap, "call", what)


def _per_day(
    ctx: _Ctx, t: datetime, rule: RuleId, counted: Sequence[Contact], cap: _Cap, unit: str, what: str
) -> list[Finding]:
    """A cap per local day (from the earliest local midnight to the latest): "call N of M" or blocked."""

    def today(moment: datetime) -> list[Contact]:
        return _in(counted, *_span(ctx.zones, moment, 0, 0))

    calls = today(t)
    where = ctx.zone_names + ("; from the earliest local midnight" if len(ctx.zones) > 1 else "")
    if len(calls) < cap.limit:
        used = len(calls) + 1
        detail = f"{unit} {used} of {cap.limit} {what} today ({where})"
        return [
            Finding(rule, detail, _refs(calls), blocking=False, source=cap.source, used=used, limit=cap.limit)
        ]
    until = _first_midnight(ctx.zones, t, lambda m: len(today(m)) < cap.limit)
    refs = _refs(calls)
    detail = f"{len(calls)} of {cap.limit} {what} today ({where}): history {', '.join(refs)}"
    return [Finding(rule, detail, refs, until=until, source=cap.source)]


def _seven_counted(ctx: _Ctx, debt: str) -> list[Contact]:
    exempt = ctx.pack.seven_consent_exempt
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
    return sorted(calls + texts, key=lambda c: c.at)


def _exempt_calls(ctx: _Ctx, debt: str, lo: datetime, hi: datetime) -> str:
    """ "; not counted under prior consent: history 3 (consent 0 given ...)", or ""."""
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
    return Finding(RuleId.PRIOR_CONSENT, detail, blocking=False, source=ctx.pack.source(rule))


def _seven_worst(
    zones: Sequence[ZoneInfo], counted: Sequence[Contact], t: datetime, limit: int
) -> list[Contact] | None:
    """The calls of the first 7-day window holding t's local day that is full; None: room in all."""
    if len(counted) < limit:
        return None  # no window can be full: the common case, and cheap
    for k in range(7):
        calls = _in(counted, *_span(zones, t, k - 6, k))
        if len(calls) >= limit:
            return calls
    return None


def _seven_room(zones: Sequence[ZoneInfo], counted: Sequence[Contact], limit: int, t: datetime) -> bool:
    return _seven_worst(zones, counted, t, limit) is None


def _seven_in_seven(ctx: _Ctx, t: datetime) -> list[Finding]:
    limit = ctx.pack.calls_per_7_days
    if limit is None:
        return []
    # Prior consent (1006.14(b)(3)(i)) takes calls out of the count; a text is never exempt.
    consent_exempt = ctx.pack.seven_consent_exempt and ctx.proposal.channel == "voice"
    if consent_exempt and (exempt := _prior_consent_finding(ctx, t, RuleId.SEVEN_IN_SEVEN)):
        return [exempt]
    unit = "call" if ctx.proposal.channel == "voice" else "text"
    what = "calls and texts" if ctx.pack.seven_counts_texts else "calls"
    found: list[Finding] = []
    first = ctx.zones[0]
    day = _local_date(t, first)
    days = f"{day - timedelta(days=6)}..{day} ({ctx.zone_names})"
    for debt in ctx.proposal.debts:
        counted = _seven_counted(ctx, debt)
        full = _seven_worst(ctx.zones, counted, t, limit)
        week = _span(ctx.zones, t, -6, 0)
        spared = _exempt_calls(ctx, debt, *week) if ctx.pack.seven_consent_exempt else ""
        if full is None:
            calls = _in(counted, *week)
            used = len(calls) + 1
            shared = " calls and texts" if ctx.pack.seven_counts_texts else ""
            detail = f"{unit} {used} of {limit}{shared} about debt {debt} in the 7 days {days}{spared}"
            found.append(
                Finding(RuleId.SEVEN_IN_SEVEN, detail, _refs(calls), blocking=False, used=used, limit=limit)
            )
            continue
        until = _first_midnight(ctx.zones, t, partial(_seven_room, ctx.zones, counted, limit))
        if consent_exempt:
            until = _earliest(until, ctx.next_prior_consent(t))
        refs = _refs(full)
        detail = (
            f"{len(full)} of {limit} {what} about debt {debt} within 7 consecutive days around {days} "
            f"(busy, not-in-service and inbound calls not counted): history {', '.join(refs)}{spared}"
        )
        found.append(Finding(RuleId.SEVEN_IN_SEVEN, detail, refs, until=until))
    return found


def _conversation_bar(ctx: _Ctx, t: datetime) -> list[Finding]:
    n = ctx.pack.conversation_bar_days
    if n is None:
        return []
    exempt = ctx.pack.bar_consent_exempt
    if exempt and (spared := _prior_consent_finding(ctx, t, RuleId.CONVERSATION)):
        return [spared]
    found: list[Finding] = []
    for debt in ctx.proposal.debts:
        bars: list[tuple[Contact, datetime]] = []
        for c in ctx.voice:
            if not c.conversation or debt not in c.debts or c.at > t:
                continue
            if exempt and c.direction == "outbound" and ctx.prior_consent(c.at) is not None:
                continue  # a call under prior consent is outside the frequencies: it starts no bar
            end = max(_day_start(_local_date(c.at, z) + timedelta(days=n), z) for z in ctx.zones)
            if t < end:
                bars.append((c, end))
        if not bars:
            continue
        refs = _refs(c for c, _ in bars)
        last = max(bars, key=lambda b: b[0].at)[0]
        days = ", ".join(f"{z.key} {_local_date(last.at, z)}" for z in ctx.zones)
        detail = (
            f"a conversation about debt {debt} on {days} (day 1; {last.direction}, history {last.ref}) "
            f"bars calls about it for {n} days: history {', '.join(refs)}"
        )
        until = max(e for _, e in bars)
        if exempt:
            until = min(until, ctx.next_prior_consent(t) or until)
        found.append(Finding(RuleId.CONVERSATION, detail, refs, until=until))
    return found


def _min_gap(ctx: _Ctx, t: datetime) -> list[Finding]:
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
        f"unanswered call(s) less than {minutes} min apart from this one "
        f"({', '.join(f'{c.ref} {c.outcome} at {c.at.astimezone(UTC):%H:%M} UTC' for c in recent)}): "
        f"history {', '.join(refs)}"
    )
    return [Finding(RuleId.MIN_GAP, detail, refs, until=max(c.at for c in recent) + gap)]


# --- SMS caps ------------------------------------------------------------------------------------


def _sms_cap(pack: Pack, rule: RuleId, own: int | None, lender: int | None) -> _Cap | None:
    """The stricter of the pack's cap and the lender's (both count every text sent)."""
    if lender is not None and (own is None or lender < own):
        return _Cap(lender, "dialled", _LENDER_SOURCES[rule])
    return None if own is None else _Cap(own, "dialled", pack.source(rule))


def _sms_caps(ctx: _Ctx, t: datetime) -> list[Finding]:
    pack, lender = ctx.pack, ctx.pack.lender
    found: list[Finding] = []
    day = _sms_cap(pack, RuleId.SMS_DAILY_CAP, pack.max_sms_per_day, lender.max_sms_per_day)
    if day is not None:
        found += _per_day(ctx, t, RuleId.SMS_DAILY_CAP, ctx.outbound_sms, day, "text", "texts")
    week = _sms_cap(pack, RuleId.SMS_WEEKLY_CAP, pack.max_sms_per_week, lender.max_sms_per_week)
    if week is not None:
        found += _sms_week(ctx, t, week)
    return found


def _sms_week(ctx: _Ctx, t: datetime, cap: _Cap) -> list[Finding]:
    """Texts in 7 consecutive local days: every 7-day window holding t's day (as 7-in-7, per person)."""
    counted = ctx.outbound_sms
    day = _local_date(t, ctx.zones[0])
    days = f"{day - timedelta(days=6)}..{day} ({ctx.zone_names})"
    full = _seven_worst(ctx.zones, counted, t, cap.limit)
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

"""Read a strategy file and refuse, with the reason, one that cannot work.

Bounded like the IVR scripts and SMS templates (dialer/core/bounded_yaml.py): at most
MAX_STRATEGY_BYTES, no anchors or aliases, nesting bounded. Refused at load, each problem naming
the file, the line and the field: a step or rule naming a script or message that does not exist
(the caller gives the known names: this package imports neither the IVR nor the SMS channel), more
contacts a day than the pack allows, two steps of one segment on the same day, a step or segment
that can never apply, and a strategy that can never contact anyone. The policy still enforces the
pack at run time: the strategy asks, the policy decides.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from dialer.core import bounded_yaml
from dialer.core.balance import BUCKETS, OVER
from dialer.core.bounded_yaml import Lines, Loc, YamlProblem
from dialer.core.config import PACKS_DIR
from dialer.core.errors import ConfigError, StrategyError
from dialer.policy.engine import Pack
from dialer.policy.packs import load_pack
from dialer.strategy.model import MAX_DAY, MIN_DAY, Contact, Days, Segment, Strategy

MAX_STRATEGY_BYTES = 256 * 1024  # the shipped files are about 3 KB
BUCKET_DAYS: dict[str, Days] = {
    name: Days(MIN_DAY if low == 0 else low, upper)
    for (upper, name), low in zip(BUCKETS, [0, *(u + 1 for u, _ in BUCKETS)], strict=False)
}
BUCKET_DAYS[OVER] = Days(BUCKETS[-1][0] + 1, MAX_DAY)
KNOWN_COLUMNS = ("bucket", "locale", "currency")  # what an account has today; others: imported columns


@dataclass(frozen=True, slots=True)
class Known:
    """What a strategy may name: the scripts' names and the message keys every template file has."""

    scripts: Collection[str]
    messages: Collection[str]


def load_strategy(path: Path, known: Known, packs_dir: Path = PACKS_DIR) -> Strategy:
    try:
        text = bounded_yaml.read_text(path, MAX_STRATEGY_BYTES, "a contact strategy")
        data, where = bounded_yaml.parse(text, path, "a contact strategy")
    except YamlProblem as exc:
        raise StrategyError([str(exc)]) from exc
    if not isinstance(data, dict):
        raise StrategyError([f"{path}:1: a strategy maps name, pack, rules and segments"])
    try:
        strategy = Strategy.model_validate({**data, "file": str(path)})
    except ValidationError as exc:
        raise StrategyError(_schema_problems(path, where, exc)) from exc
    problems = [where.problem(path, loc, message) for loc, message in refusals(strategy, known, packs_dir)]
    if problems:
        raise StrategyError(problems)
    return strategy


def _schema_problems(path: Path, where: Lines, error: ValidationError) -> list[str]:
    return [
        where.problem(path, tuple(item["loc"]), item["msg"] + bounded_yaml.yes_no_hint(item.get("input")))
        for item in error.errors()
    ]


def refusals(strategy: Strategy, known: Known, packs_dir: Path = PACKS_DIR) -> Iterator[tuple[Loc, str]]:
    try:
        pack: Pack | None = load_pack(strategy.pack, directory=packs_dir)
    except ConfigError as exc:
        yield ("pack",), str(exc)
        pack = None
    for loc, contact in _contacts(strategy):
        yield from _contact_problems(loc, contact, known, pack)
    reachable = 0
    everyone: Segment | None = None  # the first segment that matches every account
    for i, segment in enumerate(strategy.segments):
        yield from _overlaps(i, segment)
        problems = list(_segment_problems(everyone, i, segment))
        everyone = everyone or (segment if not segment.where else None)
        yield from problems
        reachable += 0 if problems else len(_live_steps(segment))
    if reachable == 0:
        yield ("segments",), "can never contact anyone: no step of any segment can ever apply"


def _contacts(strategy: Strategy) -> Iterator[tuple[Loc, Contact]]:
    """Every contact the file names, with its place: steps and the rules' own contacts."""
    places: list[tuple[Loc, Segment | Strategy]] = [((), strategy)]
    places += [(("segments", i), s) for i, s in enumerate(strategy.segments)]
    for base, owner in places:
        rules = owner.rules
        for name in ("promise_broken", "partially_paid"):
            if (rule := getattr(rules, name)) is not None:
                yield (*base, "rules", name), rule
        if rules.no_answer and rules.no_answer.switch:
            yield (*base, "rules", "no_answer", "switch"), rules.no_answer.switch
    for i, segment in enumerate(strategy.segments):
        for j, step in enumerate(segment.steps):
            yield ("segments", i, "steps", j), step


def _contact_problems(
    loc: Loc, contact: Contact, known: Known, pack: Pack | None
) -> Iterator[tuple[Loc, str]]:
    if contact.channel == "voice":
        if contact.message is not None:
            yield (*loc, "message"), "a call runs a script: write script, not message"
        if contact.script is None:
            yield (*loc, "channel"), "a call needs the script it runs (script: ...)"
        elif contact.script not in known.scripts:
            yield (*loc, "script"), f"no IVR script named {contact.script!r}; known: {_list(known.scripts)}"
    else:
        if contact.script is not None:
            yield (*loc, "script"), "a text sends a message: write message, not script"
        if contact.message is None:
            yield (*loc, "channel"), "a text needs the template message it sends (message: ...)"
        elif contact.message not in known.messages:
            yield (
                (*loc, "message"),
                f"no template message {contact.message!r}; known: {_list(known.messages)}",
            )
    if pack is not None and (cap := _daily_cap(pack, contact)) is not None and contact.per_day > cap:
        yield (*loc, "per_day"), f"{contact.per_day} a day is more than pack {pack.name} allows ({cap})"


def _daily_cap(pack: Pack, contact: Contact) -> int | None:
    """The most contacts of the channel one local day can hold under the pack (7 in 7 days: 7)."""
    if contact.channel == "sms":
        return pack.max_sms_per_day
    caps = [c for c in (pack.max_voice_per_day, pack.calls_per_7_days) if c is not None]
    return min(caps) if caps else None


def _list(names: Collection[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def _overlaps(i: int, segment: Segment) -> Iterator[tuple[Loc, str]]:
    """Two steps of one segment on the same day: which one would run is not written anywhere."""
    ordered = sorted(enumerate(segment.steps), key=lambda item: item[1].days.first)
    for (j, before), (k, after) in itertools.pairwise(ordered):
        if after.days.first <= before.days.last:
            yield (
                ("segments", i, "steps", k, "days"),
                f"days {after.days} overlap steps[{j}] (days {before.days}): one step a day per segment",
            )


def _segment_problems(everyone: Segment | None, i: int, segment: Segment) -> Iterator[tuple[Loc, str]]:
    for column, values in segment.where.items():
        if not values:
            yield ("segments", i, "where", column), "an empty list matches no account"
        if column == "bucket":
            for bad in [v for v in values if v not in BUCKET_DAYS]:
                yield (
                    ("segments", i, "where", column),
                    f"no bucket {bad!r}; buckets: {', '.join(BUCKET_DAYS)}",
                )
    if everyone is not None:
        yield ("segments", i), f"never matches: segment {everyone.name!r} before it matches every account"
        return
    live = _live_steps(segment)
    if not live:
        yield ("segments", i, "steps"), "no step can ever apply: their days are outside the segment's buckets"
        return
    for j, step in enumerate(segment.steps):
        if j not in live:
            yield ("segments", i, "steps", j, "days"), f"days {step.days} are outside the segment's buckets"


def _live_steps(segment: Segment) -> set[int]:
    """The steps (by index) whose days meet the days of the buckets the segment matches."""
    names = segment.where.get("bucket")
    if names is None:
        return set(range(len(segment.steps)))
    spans = [BUCKET_DAYS[n] for n in names if n in BUCKET_DAYS]
    return {
        j
        for j, s in enumerate(segment.steps)
        if any(s.days.first <= b.last and b.first <= s.days.last for b in spans)
    }

"""Read a strategy file and refuse, with the reason, one that cannot work.

Bounded like the IVR scripts and SMS templates (dialer/core/bounded_yaml.py): at most
MAX_STRATEGY_BYTES, no anchors or aliases, nesting bounded. Refused at load, each problem naming
the file, the line and the field: a step or rule naming a script or message that does not exist
(the caller gives the known names: this package imports neither the IVR nor the SMS channel), more
contacts a day than the pack allows, two steps of one segment on the same day, a step or segment
that can never apply, and a strategy that can never contact anyone. The policy still enforces the
pack at run time: the strategy asks, the policy decides.

Champion/challenger arms (`arms:`) are refused at load too: two arms of one name, a champion
(the first arm) that is not the file as it is, a rename of a script or message the file does not
use or to one that does not exist, an arm's strategy file that is missing, has its own problems
(named with its own file), has arms of its own or is written for another pack.
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
from dialer.strategy.arms import resolve
from dialer.strategy.model import MAX_DAY, MIN_DAY, Contact, Days, Segment, Strategy, Variant

SHIPPED_STRATEGIES = Path(__file__).parent / "strategies"  # us-regf.yaml, cn.yaml
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
    """The strategy with its arms resolved (dialer/strategy/arms.py), or StrategyError with every problem."""
    strategy, where = _parse(path)
    problems = [where.problem(path, loc, message) for loc, message in refusals(strategy, known, packs_dir)]
    files: dict[str, Strategy] = {}
    if strategy.arms is not None:
        problems += [where.problem(path, loc, message) for loc, message in arm_refusals(strategy, known)]
        for loc, message in _arm_files(path, strategy, known, packs_dir, files):
            problems.append(message if loc is None else where.problem(path, loc, message))
    if problems:
        raise StrategyError(problems)
    return resolve(strategy, files)


def _parse(path: Path) -> tuple[Strategy, Lines]:
    try:
        text = bounded_yaml.read_text(path, MAX_STRATEGY_BYTES, "a contact strategy")
        data, where = bounded_yaml.parse(text, path, "a contact strategy")
    except YamlProblem as exc:
        raise StrategyError([str(exc)]) from exc
    if not isinstance(data, dict):
        raise StrategyError([f"{path}:1: a strategy maps name, pack, rules and segments"])
    try:
        return Strategy.model_validate({**data, "file": str(path)}), where
    except ValidationError as exc:
        raise StrategyError(_schema_problems(path, where, exc)) from exc


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


# ------------------------------------------------------------------ champion/challenger arms


def arm_refusals(strategy: Strategy, known: Known) -> Iterator[tuple[Loc, str]]:
    """The arms' own problems: names, the champion, renames of what the file does not name."""
    assert strategy.arms is not None
    yield from _twice(("arms", "stratify"), strategy.arms.stratify, "column")
    yield from _twice(("arms", "variants"), [v.name for v in strategy.arms.variants], "arm", "name")
    champion = strategy.arms.variants[0]
    if champion.scripts or champion.messages or champion.strategy is not None:
        yield (
            ("arms", "variants", 0),
            "the first arm is the champion, this file as it is: no renames or strategy",
        )
    used = list(_contacts(strategy))
    scripts = {c.script for _, c in used if c.script is not None}
    messages = {c.message for _, c in used if c.message is not None}
    for i, arm in enumerate(strategy.arms.variants[1:], start=1):
        loc = ("arms", "variants", i)
        if arm.strategy is not None and (arm.scripts or arm.messages):
            yield (*loc, "strategy"), "an arm is another strategy file or renames of this one, not both"
        yield from _renames((*loc, "scripts"), arm.scripts, scripts, known.scripts, "IVR script")
        yield from _renames((*loc, "messages"), arm.messages, messages, known.messages, "template message")


def _twice(loc: Loc, names: list[str], what: str, field: str | None = None) -> Iterator[tuple[Loc, str]]:
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first:
            where = (*loc, i, field) if field else (*loc, i)
            yield where, f"{what} {name!r} is named twice (also [{first[name]}])"
        first.setdefault(name, i)


def _renames(
    loc: Loc, renames: dict[str, str], used: set[str], known: Collection[str], what: str
) -> Iterator[tuple[Loc, str]]:
    for old, new in renames.items():
        if old not in used:
            yield (*loc, old), f"this strategy never uses {what} {old!r}; it uses: {_list(used)}"
        if new not in known:
            yield (*loc, old), f"no {what} named {new!r}; known: {_list(known)}"


def _arm_files(
    path: Path, strategy: Strategy, known: Known, packs_dir: Path, files: dict[str, Strategy]
) -> Iterator[tuple[Loc | None, str]]:
    """Load each arm's strategy file into `files`. A problem of that file names that file (loc None)."""
    assert strategy.arms is not None
    for i, arm in enumerate(strategy.arms.variants[1:], start=1):
        if arm.strategy is not None:
            loc = ("arms", "variants", i, "strategy")
            loaded, problems = _arm_file(path.parent / arm.strategy, known, packs_dir)
            yield from ((None, problem) for problem in problems)
            if loaded is None and not problems:
                yield loc, f"no strategy file {path.parent / arm.strategy}"
            elif loaded is not None:
                yield from ((loc, why) for why in _arm_strategy_problems(strategy, arm, loaded))
                files[arm.name] = loaded


def _arm_file(path: Path, known: Known, packs_dir: Path) -> tuple[Strategy | None, list[str]]:
    """An arm's strategy with its own problems (never its arms: an arm is one strategy)."""
    if not path.is_file():
        return None, []
    try:
        loaded, where = _parse(path)
    except StrategyError as exc:
        return None, exc.problems
    problems = [where.problem(path, loc, message) for loc, message in refusals(loaded, known, packs_dir)]
    return (None, problems) if problems else (loaded, [])


def _arm_strategy_problems(strategy: Strategy, arm: Variant, loaded: Strategy) -> Iterator[str]:
    if loaded.arms is not None:
        yield f"{arm.strategy} has arms of its own: an arm runs one strategy"
    if loaded.pack != strategy.pack:
        yield f"{arm.strategy} is written for pack {loaded.pack}, this strategy for {strategy.pack}: one pack"

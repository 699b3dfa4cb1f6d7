"""Champion/challenger arms (issue 13, item 5): each arm's strategy, and which arm each account gets.

A strategy's `arms:` names two to eight variants: the first is the champion (the file as it is),
the others rename scripts or messages or name another strategy file. `resolve` builds every arm's
strategy once, when the file is loaded; `variant` then only looks one up, cheap enough for every
decision. Pure: the loader reads the files, the store keeps the assignments.

Why stratified permuted blocks, not a coin per account: a coin leaves arms unequal by about the
square root of the count (50 accounts in M2 can easily split 31/19), and unequal in each bucket,
so an arm that happened to get more late accounts looks worse for it. Within each stratum (the
account's values of the `stratify` columns) the accounts are dealt in blocks holding each arm
`weight` times, in an order shuffled per block, so at every moment each stratum is within one
block of the weights, also for accounts added to the campaign later. The usual objection to
blocks, that someone who knows the order can predict the next assignment, does not apply: no
person chooses which account comes next, and the seed is recorded so an auditor can replay the
draw (`assign` with the same seed, accounts and earlier assignments gives the same arms).
"""

from __future__ import annotations

import json
import random
import secrets
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from dialer.core.errors import StrategyError
from dialer.strategy.model import MAX_SEED, Arms, Contact, Rules, Strategy, Variant

Stratum = tuple[str, ...]  # an account's values of the arms' `stratify` columns, in that order
K = TypeVar("K", bound=Hashable)
C = TypeVar("C", bound=Contact)


@dataclass(frozen=True, slots=True)
class ArmAssignment:
    """One account's arm in one campaign: stored once, never changed (`Store.save_arms`)."""

    account_pk: int
    account_id: str
    arm: str
    stratum: Stratum
    seed: int


# ------------------------------------------------------------------ each arm's strategy


def resolve(strategy: Strategy, files: Mapping[str, Strategy]) -> Strategy:
    """The strategy holding every challenger's strategy: another file's (`files`, by arm name, as
    the loader read them) or this one with the arm's renames. The champion is the strategy itself."""
    if strategy.arms is None:
        return strategy
    built = {
        v.name: files[v.name] if v.strategy is not None else _renamed(strategy, v)
        for v in strategy.arms.variants[1:]
    }
    return strategy.resolved(built)


def variant(strategy: Strategy, arm: str | None) -> Strategy:
    """The strategy an account of arm `arm` runs: the strategy itself for None or the champion."""
    if arm is None or (strategy.arms is not None and arm == strategy.arms.variants[0].name):
        return strategy
    found = strategy.variants.get(arm)
    if found is not None:
        return found
    named = {v.name: v for v in strategy.arms.variants} if strategy.arms else {}
    if arm in named and named[arm].strategy is None:  # a strategy not from `load_strategy`: built now
        return _renamed(strategy, named[arm])
    why = f"runs {named[arm].strategy}, not loaded" if arm in named else "no such arm"
    raise StrategyError(
        [f"{strategy.file or strategy.name}: arm {arm!r}: {why} (arms: {', '.join(named) or 'none'})"]
    )


def _renamed(strategy: Strategy, arm: Variant) -> Strategy:
    segments = [
        s.model_copy(update={"rules": _rules(s.rules, arm), "steps": [_contact(c, arm) for c in s.steps]})
        for s in strategy.segments
    ]
    update = {"rules": _rules(strategy.rules, arm), "segments": segments, "arms": None}
    return strategy.model_copy(update=update).resolved({})


def _rules(rules: Rules, arm: Variant) -> Rules:
    """The rules' own contacts renamed (only those set: a segment's rules replace by name)."""
    update: dict[str, object] = {
        name: _contact(contact, arm)
        for name in ("promise_broken", "partially_paid")
        if (contact := getattr(rules, name)) is not None
    }
    if rules.no_answer is not None and rules.no_answer.switch is not None:
        update["no_answer"] = rules.no_answer.model_copy(
            update={"switch": _contact(rules.no_answer.switch, arm)}
        )
    return rules.model_copy(update=update) if update else rules


def _contact(contact: C, arm: Variant) -> C:
    if contact.script is not None and contact.script in arm.scripts:
        return contact.model_copy(update={"script": arm.scripts[contact.script]})
    if contact.message is not None and contact.message in arm.messages:
        return contact.model_copy(update={"message": arm.messages[contact.message]})
    return contact


# ------------------------------------------------------------------ which arm each account gets


def stratum(arms: Arms, values: Mapping[str, object]) -> Stratum:
    """An account's stratum: its value of each `stratify` column, in order ("" when it has none)."""
    return tuple("" if values.get(column) is None else str(values[column]) for column in arms.stratify)


def new_seed() -> int:
    """A seed for a campaign whose strategy names none: drawn once, then recorded with the campaign."""
    return secrets.randbelow(MAX_SEED + 1)


def assign(
    arms: Arms,
    seed: int,
    accounts: Iterable[tuple[K, Stratum]],
    taken: Mapping[Stratum, Mapping[str, int]] | None = None,
) -> dict[K, str]:
    """The arm of each account (key, stratum), in the order given (the caller sorts by account id).

    `taken` is what earlier calls assigned in each stratum (`Store.arm_counts`): the blocks carry on
    from there, so accounts added later keep each stratum balanced. Give only accounts that have no
    arm yet; an assignment once stored is never changed."""
    keys: dict[Stratum, list[K]] = {}
    for key, where in accounts:
        keys.setdefault(where, []).append(key)
    chosen: dict[K, str] = {}
    for where, members in keys.items():
        drawn = _draw(arms, seed, where, (taken or {}).get(where, {}))
        chosen.update(zip(members, drawn, strict=False))  # the draw is endless: as many as members
    return chosen


def _draw(arms: Arms, seed: int, where: Stratum, taken: Mapping[str, int]) -> Iterator[str]:
    """A stratum's arms, block after block, after the `taken` ones.

    Block n is the block every arm has not yet filled. What an arm already has of it is skipped at
    its first places in the block: when `taken` came from this draw, that is exactly where the
    earlier call stopped (the same arms as one call for all); when it did not (another seed), an arm
    behind the others catches up first."""
    weights = {v.name: v.weight for v in arms.variants}
    counts = Counter({name: taken.get(name, 0) for name in weights})
    while True:
        number = min(counts[name] // weight for name, weight in weights.items())
        skip = {name: counts[name] - weight * number for name, weight in weights.items()}
        for name in _block(weights, seed, where, number):
            if skip[name] > 0:
                skip[name] -= 1
                continue
            counts[name] += 1
            yield name


def _block(weights: Mapping[str, int], seed: int, where: Stratum, number: int) -> list[str]:
    """Block `number` of a stratum: each arm `weight` times, shuffled by (seed, stratum, number).

    Seeded from text (random.Random hashes it with SHA-512): the same in every process, whatever
    PYTHONHASHSEED is."""
    block = [name for name, weight in weights.items() for _ in range(weight)]
    random.Random(json.dumps([seed, list(where), number], ensure_ascii=False)).shuffle(block)
    return block

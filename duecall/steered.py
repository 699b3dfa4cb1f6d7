"""Campaigns that follow a contact strategy: attach one, run it on both channels, plan it.

The campaign row keeps the strategy's file and its SHA-256; a run (or a plan) reads the file
again, and a changed file is recorded in the audit chain (`campaign.strategy`) before it is used.
The strategy's pack must be the pack in the settings: the strategy was checked against its caps,
and the policy enforces the settings' pack.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dialer.campaign.steering import Steering, assign_arms
from dialer.core.clock import Clock
from dialer.core.config import Settings
from dialer.core.errors import DueCallError, StrategyError
from dialer.core.models import Campaign
from dialer.policy.gate import PackGate, pack_from_settings
from dialer.store import Store
from dialer.strategy.arms import new_seed, variant
from dialer.strategy.loader import Known, load_strategy
from dialer.strategy.model import Strategy
from dialer.strategy.snapshot import Snapshot
from duecall import texts
from duecall.storage import campaign_named, open_store

log = logging.getLogger(__name__)


def known_names(s: Settings) -> Known:
    """The scripts in use (by name) and the messages every template file in use has."""
    from sms.templates import load_templates

    files = [load_templates(s.path(p)) for p in s.sms.templates]
    messages = set.intersection(*(set(t.messages) for t in files)) if files else set()
    return Known(scripts={s.path(p).stem for p in s.ivr.scripts}, messages=messages)


@dataclass(frozen=True)
class StrategyFile:
    strategy: Strategy
    path: str  # resolved
    sha256: str


def read_strategy(s: Settings, file: Path) -> StrategyFile:
    """The strategy in `file`, checked against the settings' scripts, templates and pack."""
    if not file.is_file():
        raise DueCallError(f"strategy file {file} not found")
    strategy = load_strategy(file, known_names(s))
    if strategy.pack != s.policy.pack:
        raise StrategyError(
            [f"{file}: written for pack {strategy.pack}, but the settings' policy pack is {s.policy.pack}"]
        )
    return StrategyFile(strategy, str(file.resolve()), _digest(file, strategy))


def _digest(file: Path, strategy: Strategy) -> str:
    """The SHA-256 of the file and of the strategy files its arms name: a change to any is seen."""
    digest = hashlib.sha256(file.read_bytes())
    for path in sorted({v.file for v in strategy.variants.values() if v.file and v.file != strategy.file}):
        digest.update(b"\0" + Path(path).read_bytes())
    return digest.hexdigest()


async def attach(
    store: Store, s: Settings, campaign: Campaign, file: Path, now: datetime, actor: str
) -> Campaign:
    """Give a campaign its strategy (refused with the reasons if the file cannot work)."""
    found = await asyncio.to_thread(read_strategy, s, file)
    if campaign.steered and campaign.strategy_file != found.path:
        raise DueCallError(f"campaign {campaign.name} already follows {campaign.strategy_file}")
    if campaign.steered and campaign.strategy_sha256 == found.sha256:
        return campaign
    seed = campaign.seed
    if seed is None:  # the file's own seed (to repeat a draw), else a new one: recorded either way
        given = found.strategy.arms.seed if found.strategy.arms else None
        seed = given if given is not None else new_seed()
    return await store.set_strategy(campaign, found.path, found.sha256, seed, now, actor)


async def add_accounts(
    store: Store,
    s: Settings,
    campaign: Campaign,
    account_ids: Sequence[str] | None,
    now: datetime,
    actor: str,
) -> tuple[int, int]:
    """Put accounts into the campaign; with a strategy that has arms, draw theirs now (before any
    contact). Returns (accounts added, arms drawn)."""
    added = await store.add_targets(campaign.id, now, account_ids)
    if not campaign.steered:
        return added, 0
    found = await asyncio.to_thread(read_strategy, s, Path(campaign.strategy_file))
    accounts = await store.campaign_accounts(campaign.id)
    return added, await assign_arms(store, campaign, found.strategy, accounts, now, actor)


async def current_strategy(
    store: Store, s: Settings, campaign: Campaign, now: datetime, actor: str
) -> Strategy:
    """The campaign's strategy as its file is now; a changed file goes into the audit chain first."""
    found = await asyncio.to_thread(read_strategy, s, Path(campaign.strategy_file))
    if found.sha256 != campaign.strategy_sha256:
        log.warning("campaign %s: %s changed since it was last read; recorded", campaign.name, found.path)
        await store.set_strategy(campaign, found.path, found.sha256, campaign.seed, now, actor)
    return found.strategy


def strategy_of(strategy: Strategy) -> Callable[[Snapshot], Strategy]:
    """The strategy each account follows: its arm's."""
    return lambda snapshot: variant(strategy, snapshot.arm)


@contextlib.asynccontextmanager
async def lanes(
    s: Settings, store: Store, campaign: Campaign, clock: Clock, dialer_id: str
) -> AsyncIterator[tuple[Steering | None, texts.StrategyTexts | None]]:
    """For a campaign with a strategy: its steering and its SMS channel, the receiver running for
    the delivery reports and replies. Other campaigns: neither."""
    if not campaign.steered:
        yield None, None
        return
    strategy = await current_strategy(store, s, campaign, clock.now(), f"dialer:{dialer_id}")
    channel = texts.build(s, store, clock, dialer_id)
    steering = Steering(store, campaign, strategy, channel.policy, f"dialer:{dialer_id}")
    try:
        async with texts.receiving(s, channel, clock):
            stale = await channel.sender.reconcile()
            if stale:
                log.warning("texts whose gateway answer was lost, marked unknown: %s", stale)
            yield steering, texts.StrategyTexts(channel)
    finally:
        await channel.gateway.aclose()


@dataclass(frozen=True)
class PlanInputs:
    campaign: Campaign
    snapshots: list[Snapshot]
    strategy_of: Callable[[Snapshot], Strategy]
    gate: PackGate


async def plan_inputs(s: Settings, campaign_name: str, now: datetime) -> PlanInputs:
    """What the dry run starts from: every account of the campaign as the store has it now."""
    store = await open_store(s)
    try:
        campaign = await campaign_named(store, campaign_name)
        if not campaign.steered:
            raise DueCallError(
                f"campaign {campaign_name} has no strategy (`duecall campaign create --strategy`)"
            )
        # A dry run records nothing, not even a changed file.
        found = await asyncio.to_thread(read_strategy, s, Path(campaign.strategy_file))
        if found.sha256 != campaign.strategy_sha256:
            log.warning("campaign %s: its strategy file changed since the last run", campaign_name)
        gate = PackGate(pack_from_settings(s.policy))
        accounts = await store.campaign_accounts(campaign.id)
        arms = await store.arms(campaign.id)
        columns = await store.account_columns([a.pk for a in accounts])
        snapshots = await store.snapshots(accounts, now - gate.history_window, arms, columns)
    finally:
        await store.close()
    return PlanInputs(campaign, snapshots, strategy_of(found.strategy), gate)

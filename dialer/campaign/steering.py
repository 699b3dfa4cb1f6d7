"""A campaign driven by a contact strategy: for each due account, what the strategy asks for now.

`choose` is pure: from a snapshot (dialer/strategy/snapshot.py) and the time, a contact to make now
(its channel, script or message, and the balance it gives), a later time to ask again, or a stop.
`Steering` reads the snapshot from the store first. The engine routes each account into a lane
(`targets.channel`): calls and texts each have their own lane and pacing, and each lane asks again
right before it contacts anyone, so a payment that arrived meanwhile stops the contact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from dialer.core import balance
from dialer.core.balance import decision_zone
from dialer.core.models import Account, Campaign, Target
from dialer.store import Store
from dialer.strategy.arms import ArmAssignment, assign, stratum, variant
from dialer.strategy.decide import Hold, Proposal, next_contact
from dialer.strategy.model import Strategy
from dialer.strategy.plan import Gate
from dialer.strategy.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class ContactNow:
    proposal: Proposal
    account: Account  # amount_minor is the balance now: what the borrower hears or reads

    @property
    def channel(self) -> str:
        return self.proposal.channel


@dataclass(frozen=True, slots=True)
class Later:
    """Nothing now: at `at`, the account is due in lane `channel` (None: ask the strategy again)."""

    channel: str | None
    at: datetime
    note: str


@dataclass(frozen=True, slots=True)
class Stop:
    reason: str
    to_person: bool


Choice = ContactNow | Later | Stop


def choose(strategy: Strategy, snapshot: Snapshot, now: datetime) -> Choice:
    found = next_contact(strategy, snapshot.account, snapshot.history, now)
    if isinstance(found, Hold):
        if found.until is None:
            return Stop(found.reason, found.to_person)
        return Later(None, found.until, found.reason)
    if found.earliest > now:
        return Later(found.channel, found.earliest, f"{found.why}: from {found.earliest:%Y-%m-%d %H:%M} UTC")
    account = replace(snapshot.account.account, amount_minor=found.balance_minor)
    return ContactNow(found, account)


def with_policy(choice: Choice, snapshot: Snapshot, gate: Gate, now: datetime) -> Choice:
    """A contact the policy would refuse now but allow later waits for that time in its lane.

    Scheduling, not a decision: nothing is written for it. The contact's lane asks the policy
    again when it is due, inside the transaction that writes the attempt or the text, and that
    decision is the one recorded. A refusal with no time it would be allowed goes to that lane now,
    so the refusal itself is decided and recorded there."""
    if not isinstance(choice, ContactNow):
        return choice
    account = snapshot.account.account
    if choice.channel == "voice":
        verdict = gate.decide(account, now, snapshot.calls, "voice" in snapshot.opted_out, snapshot.prefs)
    else:
        verdict = gate.decide_text(account, now, snapshot.texts, snapshot.opted_out, snapshot.prefs)
    if verdict.allowed or verdict.next_allowed_at is None:
        return choice
    reasons = "; ".join(f"{r.rule}: {r.detail}" for r in verdict.reasons)
    return Later(
        choice.channel, verdict.next_allowed_at, f"{choice.proposal.why}; waits for the policy: {reasons}"
    )


def text_batch(campaign: str, snapshot: Snapshot, proposal: Proposal, now: datetime) -> str:
    """The text's batch: one per account, message, local day and count that day, so that two
    dialers (or a run after a crash) that ask for the same text send it once."""
    day = now.astimezone(decision_zone(snapshot.account.account.time_zones, now)).date()
    return f"{campaign}/{proposal.message}/{day:%Y-%m-%d}/{proposal.today + 1}"


class Steering:
    """The strategy of a campaign, asked with what the store knows now."""

    def __init__(self, store: Store, campaign: Campaign, strategy: Strategy, gate: Gate, actor: str) -> None:
        self._store = store
        self._campaign = campaign
        self._strategy = strategy
        self._gate = gate
        self._window = gate.history_window
        self._actor = actor
        self._arms: dict[int, str] = {}

    async def snapshots(self, targets: Sequence[Target], now: datetime) -> list[Snapshot]:
        accounts = [t.account for t in targets]
        columns = await self._store.account_columns([a.pk for a in accounts])
        arms = await self._arms_of(accounts, now) if self._strategy.arms else {}
        return await self._store.snapshots(accounts, now - self._window, arms, columns)

    async def _arms_of(self, accounts: Sequence[Account], now: datetime) -> dict[int, str]:
        """The accounts' arms: as stored; given now to those without one (before a first contact)."""
        if any(a.pk not in self._arms for a in accounts):
            self._arms = await self._store.arms(self._campaign.id)
        if any(a.pk not in self._arms for a in accounts):
            await assign_arms(self._store, self._campaign, self._strategy, accounts, now, self._actor)
            self._arms = await self._store.arms(self._campaign.id)
        return {a.pk: self._arms[a.pk] for a in accounts}

    async def choose(self, target: Target, now: datetime) -> tuple[Choice, Snapshot]:
        [found] = await self.choose_all([target], now)
        return found

    async def choose_all(self, targets: Sequence[Target], now: datetime) -> list[tuple[Choice, Snapshot]]:
        """Each target's choice, from one read of all their snapshots."""
        snapshots = await self.snapshots(targets, now)
        return [
            (with_policy(choose(variant(self._strategy, s.arm), s, now), s, self._gate, now), s)
            for s in snapshots
        ]


async def assign_arms(
    store: Store,
    campaign: Campaign,
    strategy: Strategy,
    accounts: Sequence[Account],
    now: datetime,
    actor: str,
) -> int:
    """Give the accounts without an arm theirs (stratified, with the campaign's seed), stored and
    in the audit chain; an arm once given never changes. Returns how many were given one."""
    arms = strategy.arms
    if arms is None or campaign.seed is None:
        return 0
    given = await store.arms(campaign.id)
    new = sorted((a for a in accounts if a.pk not in given), key=lambda a: a.account_id)
    if not new:
        return 0
    columns = await store.account_columns([a.pk for a in new])
    strata = {}
    for snapshot in await store.snapshots(new, now, columns=columns):
        a = snapshot.account
        standing = balance.standing(a.account, a.payments, a.promises, now)
        values = {
            **a.columns,
            "bucket": standing.bucket,
            "locale": a.account.language,
            "currency": a.account.currency,
        }
        strata[a.account.pk] = stratum(arms, values)
    drawn = assign(
        arms, campaign.seed, [(a.pk, strata[a.pk]) for a in new], await store.arm_counts(campaign.id)
    )
    chosen = [ArmAssignment(a.pk, a.account_id, drawn[a.pk], strata[a.pk], campaign.seed) for a in new]
    return await store.save_arms(campaign.id, chosen, now, actor)

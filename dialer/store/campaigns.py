"""Campaigns and their targets (the accounts a campaign calls), and a campaign's status."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from dialer.core.models import Account, Campaign, Target, TargetState
from dialer.core.vocab import CampaignState
from dialer.store.accounts import ACCOUNT_COLUMNS, account_from
from dialer.store.chain import AuditEvent
from dialer.store.chain import append as append_audit
from dialer.store.conn import Conn
from dialer.store.db import Database, Row, fetch_all, fetch_one
from dialer.store.events import CampaignCreated, CampaignStrategy, TargetStopped
from dialer.store.times import from_db, to_db

CREATE_CAMPAIGN = (
    "INSERT INTO campaigns (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING RETURNING id"
)
CAMPAIGN_COLUMNS = "id, name, created_at, strategy_file, strategy_sha256, seed, state"
CAMPAIGN = f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE name=?"
SET_STRATEGY = "UPDATE campaigns SET strategy_file=?, strategy_sha256=?, seed=? WHERE id=?"
# "WHERE true" lets SQLite parse INSERT ... SELECT ... ON CONFLICT.
# A campaign with a strategy: the strategy decides each new target's lane (channel NULL).
ADD_TARGETS = (
    "INSERT INTO targets (campaign_id, account_pk, state, attempts, next_at, channel, added_at) "
    "SELECT ?1, id, ?2, 0, ?3, "
    "(SELECT CASE strategy_file WHEN '' THEN 'voice' END FROM campaigns WHERE id=?1), ?3 "
    "FROM accounts WHERE true{only} ON CONFLICT DO NOTHING"
)
DUE_TARGETS = (
    f"SELECT {ACCOUNT_COLUMNS}, t.attempts, t.next_at FROM targets t JOIN accounts a ON a.id = t.account_pk "
    "WHERE t.campaign_id=? AND t.state='pending' AND t.channel IS NOT DISTINCT FROM ? AND t.next_at<=? "
    "ORDER BY t.next_at LIMIT ?"
)
ROUTE_TARGET = (
    "UPDATE targets SET channel=?, next_at=?, note=? WHERE campaign_id=? AND account_pk=? AND state='pending'"
)
STOP_TARGET = (
    "UPDATE targets SET state=?, channel=NULL, next_at=?, note=? "
    "WHERE campaign_id=? AND account_pk=? AND state='pending'"
)
CAMPAIGN_ACCOUNTS = (
    f"SELECT {ACCOUNT_COLUMNS} FROM targets t JOIN accounts a ON a.id = t.account_pk "
    "WHERE t.campaign_id=? ORDER BY a.id"
)
NEXT_DUE = "SELECT min(next_at) AS at FROM targets WHERE campaign_id=? AND state='pending'"
COUNT_TARGETS = "SELECT count(*) AS n FROM targets WHERE campaign_id=? AND state IN ({marks})"
TARGETS_BY_STATE = "SELECT state AS k, count(*) AS n FROM targets WHERE campaign_id=? GROUP BY state"
ATTEMPTS_BY_DISPOSITION = (
    "SELECT coalesce(disposition, 'open') AS k, count(*) AS n FROM attempts WHERE campaign_id=? GROUP BY 1"
)
OUTCOMES = (
    "SELECT outcome AS k, count(*) AS n FROM attempts WHERE campaign_id=? AND outcome IS NOT NULL GROUP BY 1"
)
UPCOMING = (
    "SELECT t.next_at, a.account_id, a.phone_e164, t.note FROM targets t "
    "JOIN accounts a ON a.id=t.account_pk WHERE t.campaign_id=? AND t.state='pending' "
    "ORDER BY t.next_at LIMIT ?"
)


@dataclass(frozen=True, slots=True)
class CampaignStatus:
    campaign: Campaign
    targets_by_state: dict[str, int]
    attempts_by_disposition: dict[str, int]
    open_attempts: int
    next_due: list[tuple[datetime, str, str, str]]  # (at, account id, phone, note)
    outcomes: dict[str, int] = field(default_factory=dict)  # what answered borrowers chose


class Campaigns:
    """The store's campaigns and targets (a part of `SqliteStore`)."""

    _db: Database

    async def create_campaign(self, name: str, now: datetime, actor: str = "operator") -> Campaign:
        async with self._db.write() as db:
            made = await fetch_one(db, CREATE_CAMPAIGN, (name, to_db(now)))
            if made is not None:  # a new name (ON CONFLICT DO NOTHING returns no row)
                event = AuditEvent(CampaignCreated(name), now, actor, int(made["id"]))
                await append_audit(db, [event])
        found = await self.campaign(name)
        assert found is not None
        return found

    async def campaign(self, name: str) -> Campaign | None:
        row = await self._db.fetch_one(CAMPAIGN, (name,))
        return None if row is None else campaign_from(row)

    async def set_strategy(
        self, campaign: Campaign, file: str, sha256: str, seed: int | None, now: datetime, actor: str
    ) -> Campaign:
        """The strategy the campaign runs (its file's digest as read now), into the audit chain."""
        async with self._db.write() as db:
            await db.execute(SET_STRATEGY, (file, sha256, seed, campaign.id))
            event = AuditEvent(CampaignStrategy(campaign.name, file, sha256, seed), now, actor, campaign.id)
            await append_audit(db, [event])
        return replace(campaign, strategy_file=file, strategy_sha256=sha256, seed=seed)

    async def add_targets(
        self, campaign_id: int, now: datetime, account_ids: Sequence[str] | None = None
    ) -> int:
        """Put accounts into the campaign (all of them when no ids are given); returns how many were new."""
        only, params = "", [campaign_id, TargetState.PENDING.value, to_db(now)]
        if account_ids is not None:
            only = f" AND account_id IN ({','.join('?' * len(account_ids))})"
            params += list(account_ids)
        async with self._db.write() as db:
            return await db.execute(ADD_TARGETS.format(only=only), params)

    async def due_targets(
        self, campaign_id: int, now: datetime, limit: int, channel: str | None = "voice"
    ) -> list[Target]:
        """Pending targets due by `now` in one lane: "voice", "sms", or None (the strategy decides)."""
        rows = await self._db.fetch_all(DUE_TARGETS, (campaign_id, channel, to_db(now), limit))
        return [Target(campaign_id, account_from(r), r["attempts"], from_db(r["next_at"])) for r in rows]

    async def route_target(self, target: Target, channel: str | None, next_at: datetime, note: str) -> None:
        """Put a pending target in a lane ("voice", "sms"; None: the strategy decides) from `next_at`."""
        async with self._db.write() as db:
            await db.execute(
                ROUTE_TARGET, (channel, to_db(next_at), note, target.campaign_id, target.account.pk)
            )

    async def stop_target(
        self, target: Target, reason: str, to_person: bool, now: datetime, actor: str
    ) -> None:
        """The strategy contacts the account no more: done, with the reason, into the audit chain."""
        async with self._db.write() as db:
            stopped = await db.execute(
                STOP_TARGET,
                (TargetState.DONE.value, to_db(now), reason, target.campaign_id, target.account.pk),
            )
            if stopped == 1:
                record = TargetStopped(reason, to_person)
                event = AuditEvent(record, now, actor, target.campaign_id, None, target.account.account_id)
                await append_audit(db, [event])

    async def campaign_accounts(self, campaign_id: int) -> list[Account]:
        """Every account of a campaign, whatever its calls' state (a text batch goes to them all)."""
        return [account_from(r) for r in await self._db.fetch_all(CAMPAIGN_ACCOUNTS, (campaign_id,))]

    async def next_due_at(self, campaign_id: int) -> datetime | None:
        row = await self._db.fetch_one(NEXT_DUE, (campaign_id,))
        return from_db(row["at"]) if row and row["at"] else None

    async def count_targets(self, campaign_id: int, states: Iterable[TargetState]) -> int:
        names = [s.value for s in states]
        row = await self._db.fetch_one(
            COUNT_TARGETS.format(marks=",".join("?" * len(names))), (campaign_id, *names)
        )
        return int(row["n"]) if row else 0

    async def status(self, campaign: Campaign, upcoming: int = 10) -> CampaignStatus:
        async with self._db.read() as db:  # one snapshot: the counts agree with each other
            by_state = await _counts(db, TARGETS_BY_STATE, campaign.id)
            by_disp = await _counts(db, ATTEMPTS_BY_DISPOSITION, campaign.id)
            rows = await fetch_all(db, UPCOMING, (campaign.id, upcoming))
            outcomes = await _counts(db, OUTCOMES, campaign.id)
        nxt = [(from_db(r["next_at"]), r["account_id"], r["phone_e164"], r["note"]) for r in rows]
        return CampaignStatus(campaign, by_state, by_disp, by_disp.get("open", 0), nxt, outcomes)


def campaign_from(row: Row) -> Campaign:
    """A campaign from a row of CAMPAIGN_COLUMNS."""
    return Campaign(
        row["id"],
        row["name"],
        from_db(row["created_at"]),
        row["strategy_file"],
        row["strategy_sha256"],
        row["seed"],
        CampaignState(row["state"]),
    )


async def _counts(db: Conn, sql: str, campaign_id: int) -> dict[str, int]:
    return {r["k"]: r["n"] for r in await fetch_all(db, sql, (campaign_id,))}

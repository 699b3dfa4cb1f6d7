"""Champion/challenger arm assignments: each account's arm in a campaign, stored once with its
`arm.assigned` event and never changed (dialer/strategy/arms.py draws them)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from dialer.store.chain import AuditEvent
from dialer.store.chain import append as append_audit
from dialer.store.db import Database, fetch_all
from dialer.store.events import ArmAssigned
from dialer.store.times import to_db
from dialer.strategy.arms import ArmAssignment, Stratum

ASSIGNED = "SELECT account_pk FROM arm_assignments WHERE campaign_id=?"
INSERT = (
    "INSERT INTO arm_assignments (campaign_id, account_pk, arm, stratum, seed, assigned_at) "
    "VALUES (?,?,?,?,?,?)"
)
ARMS = "SELECT account_pk, arm FROM arm_assignments WHERE campaign_id=?"
COUNTS = "SELECT stratum, arm, COUNT(*) AS n FROM arm_assignments WHERE campaign_id=? GROUP BY stratum, arm"


class ArmAssignments:
    """The store's arm assignments (a part of `SqliteStore`)."""

    _db: Database

    async def save_arms(
        self, campaign_id: int, assignments: Sequence[ArmAssignment], now: datetime, actor: str = "operator"
    ) -> int:
        """Store the assignments of accounts that have no arm in the campaign yet, each with its
        `arm.assigned` event, in one transaction; an account that has one keeps it (as does the
        first of two for one account here). Returns how many were stored."""
        async with self._db.write() as db:
            have = {row["account_pk"] for row in await fetch_all(db, ASSIGNED, (campaign_id,))}
            fresh: list[ArmAssignment] = []
            for a in assignments:
                if a.account_pk not in have:
                    have.add(a.account_pk)
                    fresh.append(a)
            at = to_db(now)
            await db.executemany(
                INSERT,
                [(campaign_id, a.account_pk, a.arm, _json(a.stratum), a.seed, at) for a in fresh],
            )
            await append_audit(db, [_event(campaign_id, a, now, actor) for a in fresh])
        return len(fresh)

    async def arms(self, campaign_id: int) -> dict[int, str]:
        """Each assigned account's arm: account_pk -> arm."""
        return {row["account_pk"]: row["arm"] for row in await self._db.fetch_all(ARMS, (campaign_id,))}

    async def arm_counts(self, campaign_id: int) -> dict[Stratum, Counter[str]]:
        """How many accounts each arm has in each stratum (what `arms.assign` carries on from)."""
        counts: dict[Stratum, Counter[str]] = {}
        for row in await self._db.fetch_all(COUNTS, (campaign_id,)):
            counts.setdefault(tuple(json.loads(row["stratum"])), Counter())[row["arm"]] += row["n"]
        return counts


def _json(stratum: Stratum) -> str:
    return json.dumps(list(stratum), ensure_ascii=False, separators=(",", ":"))


def _event(campaign_id: int, a: ArmAssignment, now: datetime, actor: str) -> AuditEvent:
    record = ArmAssigned(a.arm, list(a.stratum), a.seed)
    return AuditEvent(record, now, actor, campaign_id=campaign_id, account_id=a.account_id)

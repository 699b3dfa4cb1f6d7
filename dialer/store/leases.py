"""Dialer leases, and the open attempts of other dialers (a part of the store).

Each dialer running a campaign renews its lease every quarter of `[dialer] lease`; a renewal
bumps its `beat`. Whether a dialer is dead is the observer's call (dialer/campaign/engine.py): its
beat has not moved for a whole lease on the observer's own clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dialer.core.models import Attempt, AttemptState
from dialer.store.attempts import ATTEMPT_COLUMNS, attempt_from
from dialer.store.conn import Database
from dialer.store.times import to_db

HOLDER = "SELECT holder FROM dialer_leases WHERE dialer_id = ?"
RENEW = (
    "INSERT INTO dialer_leases (dialer_id, holder, beat, renewed_at, lease_seconds) VALUES (?, ?, 1, ?, ?) "
    "ON CONFLICT (dialer_id) DO UPDATE SET holder = excluded.holder, beat = dialer_leases.beat + 1, "
    "renewed_at = excluded.renewed_at, lease_seconds = excluded.lease_seconds"
)
FOREIGN_OPEN = (
    f"SELECT {ATTEMPT_COLUMNS}, t.dialer_id AS owner, coalesce(l.beat, 0) AS beat "
    "FROM attempts t JOIN accounts a ON a.id = t.account_pk "
    "LEFT JOIN dialer_leases l ON l.dialer_id = t.dialer_id "
    "WHERE t.campaign_id = ? AND t.state = ? AND t.dialer_id != ? ORDER BY t.id"
)


@dataclass(frozen=True, slots=True)
class OwnedAttempt:
    """An open attempt, the dialer that placed it, and that dialer's lease beat (0: none)."""

    attempt: Attempt
    owner: str
    beat: int


class Leases:
    """The store's dialer leases (a part of `StoreParts`)."""

    _db: Database

    async def renew_lease(self, dialer_id: str, holder: str, now: datetime, lease_seconds: float) -> str:
        """Renew this dialer's lease for `holder` (the running process's token); the holder it had
        ("" if none)."""
        async with self._db.write() as db:
            rows = await db.fetch_all(HOLDER, (dialer_id,))
            await db.execute(RENEW, (dialer_id, holder, to_db(now), lease_seconds))
        return str(rows[0]["holder"]) if rows else ""

    async def foreign_open_attempts(self, campaign_id: int, dialer_id: str) -> list[OwnedAttempt]:
        """A campaign's open attempts placed by dialers other than `dialer_id`, with their beats."""
        params = (campaign_id, AttemptState.DECIDED.value, dialer_id)
        rows = await self._db.fetch_all(FOREIGN_OPEN, params)
        return [OwnedAttempt(attempt_from(r), r["owner"], int(r["beat"])) for r in rows]

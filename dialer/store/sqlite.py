"""The SQLite store (aiosqlite, WAL): the `Store` interface, one part per aggregate."""

from __future__ import annotations

from pathlib import Path

from dialer.core.errors import StoreError
from dialer.store.accounts import Accounts
from dialer.store.arms import ArmAssignments
from dialer.store.attempts import Attempts
from dialer.store.auditors import Auditors
from dialer.store.calls import Calls
from dialer.store.campaign_state import CampaignStates
from dialer.store.campaigns import Campaigns
from dialer.store.contacts import Contacts
from dialer.store.db import SCHEMA_VERSION, Database
from dialer.store.interface import Store
from dialer.store.ivr import IvrSteps
from dialer.store.live import Live
from dialer.store.messages import Messages
from dialer.store.outcomes import Outcomes
from dialer.store.payments import Payments
from dialer.store.recordings import Recordings
from dialer.store.reports import Reports
from dialer.store.snapshots import Snapshots
from dialer.store.trail import INSTANCE, Trail


class SqliteStore(
    Accounts,
    Payments,
    Contacts,
    Campaigns,
    CampaignStates,
    Live,
    Snapshots,
    ArmAssignments,
    Attempts,
    Calls,
    IvrSteps,
    Messages,
    Recordings,
    Reports,
    Outcomes,
    Auditors,
    Trail,
):
    """SQLite implementation of `Store`. Open with `await SqliteStore.open(path)`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path, synchronous: str = "FULL") -> SqliteStore:
        store = cls(await Database.open(path, synchronous))
        await store.fill_payment_days()  # payments stored before their day was kept (migration 0014)
        return store

    async def close(self) -> None:
        await self._db.close()

    async def instance_id(self) -> str:
        row = await self._db.fetch_one(INSTANCE)
        if row is None:
            raise StoreError("the database has no instance id (meta table)")
        return str(row["value"])

    async def schema_version(self) -> int:
        row = await self._db.fetch_one(SCHEMA_VERSION)
        return int(row["user_version"]) if row else 0


def _implements(store: SqliteStore) -> Store:
    return store  # mypy checks here that SqliteStore has every method of the interface

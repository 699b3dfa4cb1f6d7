"""The store's parts, one per aggregate, over either backend's `Database`: what `SqliteStore` and
`PostgresStore` share (all but opening and the schema version)."""

from __future__ import annotations

from dialer.core.errors import StoreError
from dialer.store.accounts import Accounts
from dialer.store.arms import ArmAssignments
from dialer.store.attempts import Attempts
from dialer.store.audit_reads import AuditReads
from dialer.store.auditors import Auditors
from dialer.store.calls import Calls
from dialer.store.campaign_state import CampaignStates
from dialer.store.campaigns import Campaigns
from dialer.store.conn import Database
from dialer.store.contacts import Contacts
from dialer.store.ivr import IvrSteps
from dialer.store.leases import Leases
from dialer.store.live import Live
from dialer.store.messages import Messages
from dialer.store.outcomes import Outcomes
from dialer.store.payments import Payments
from dialer.store.recordings import Recordings
from dialer.store.reports import Reports
from dialer.store.snapshots import Snapshots
from dialer.store.trail import INSTANCE, Trail


class StoreParts(
    Accounts,
    Payments,
    Contacts,
    Campaigns,
    CampaignStates,
    Live,
    Snapshots,
    ArmAssignments,
    Attempts,
    Leases,
    Calls,
    IvrSteps,
    Messages,
    Recordings,
    Reports,
    Outcomes,
    Auditors,
    Trail,
    AuditReads,
):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def close(self) -> None:
        await self._db.close()

    async def instance_id(self) -> str:
        row = await self._db.fetch_one(INSTANCE)
        if row is None:
            raise StoreError("the database has no instance id (meta table)")
        return str(row["value"])

"""The store: DueCall's one door to its database.

`Store` is the interface the rest of the code depends on; `SqliteStore` implements it over
SQLite (`await SqliteStore.open(path)`). The SQL lives in the per-aggregate modules beside this
one, as named constants; every write goes through `db.Database.write()` and appends the audit
events it records (typed records, `events` and `call_events`) in the same transaction.
"""

from __future__ import annotations

from dialer.core.models import TargetUpdate
from dialer.store.accounts import ImportCounts
from dialer.store.auditors import StoredAuditor
from dialer.store.campaigns import CampaignStatus
from dialer.store.interface import Reads, Store
from dialer.store.ivr import IvrProgress
from dialer.store.leases import OwnedAttempt
from dialer.store.sqlite import SqliteStore
from dialer.store.times import from_db, to_db

__all__ = [
    "CampaignStatus",
    "ImportCounts",
    "IvrProgress",
    "OwnedAttempt",
    "Reads",
    "SqliteStore",
    "Store",
    "StoredAuditor",
    "TargetUpdate",
    "from_db",
    "to_db",
]

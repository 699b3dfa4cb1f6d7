"""The audit trail as the store writes and reads it: facts appended on their own, the chain's
record of configuration, and read-only queries for the audit page (`audit.search`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from dialer.store.chain import AuditEvent
from dialer.store.chain import append as append_audit
from dialer.store.db import Database, Row

CONFIG_CHANGES = "SELECT data FROM audit_events WHERE kind='config.changed' ORDER BY seq"
INSTANCE = "SELECT value FROM meta WHERE key='instance'"


class Trail:
    """The store's audit-trail writes and the audit page's reads (a part of `SqliteStore`)."""

    _db: Database

    async def audit(self, events: Sequence[AuditEvent]) -> None:
        """Append facts to the audit chain in their own transaction."""
        async with self._db.write() as db:
            await append_audit(db, events)

    async def config_hashes(self) -> dict[str, str]:
        """The latest recorded SHA-256 of every configuration file and script the chain knows."""
        latest: dict[str, str] = {}
        for row in await self._db.fetch_all(CONFIG_CHANGES):
            loaded = json.loads(row["data"])
            latest[loaded["path"]] = loaded["sha256"]
        return latest

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """A read-only query (the audit page's searches, which compose their filters): committed
        rows only, read by column name. A statement that writes fails."""
        return await self._db.fetch_all(sql, params)

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return await self._db.fetch_one(sql, params)

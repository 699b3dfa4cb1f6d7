"""The people who sign in to the audit page, as stored: every change goes into the chain with it.

Hashing and checking passwords is `audit.users`'s business; the store keeps the hash it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dialer.store.chain import AuditEvent
from dialer.store.chain import append as append_audit
from dialer.store.db import Database, Row
from dialer.store.events import AuditorCreated, AuditorDisabled, AuditorPasswordChanged, Record
from dialer.store.times import from_db, to_db

COLUMNS = "name, role, created_at, disabled_at, password_hash"
AUDITOR = f"SELECT {COLUMNS} FROM auditors WHERE name = ?"
AUDITORS = f"SELECT {COLUMNS} FROM auditors ORDER BY name"
ADD_AUDITOR = (
    "INSERT INTO auditors (name, role, password_hash, created_at) VALUES (?,?,?,?) "
    "ON CONFLICT (name) DO NOTHING"
)
DISABLE_AUDITOR = "UPDATE auditors SET disabled_at = ? WHERE name = ? AND disabled_at IS NULL"
SET_PASSWORD = "UPDATE auditors SET password_hash = ? WHERE name = ?"


@dataclass(frozen=True, slots=True)
class StoredAuditor:
    name: str
    role: str
    created_at: datetime
    disabled_at: datetime | None
    password_hash: str = field(repr=False)


def _auditor(row: Row) -> StoredAuditor:
    disabled = row["disabled_at"]
    return StoredAuditor(
        row["name"],
        row["role"],
        from_db(row["created_at"]),
        from_db(disabled) if disabled else None,
        row["password_hash"],
    )


class Auditors:
    """The store's auditors (a part of `SqliteStore`)."""

    _db: Database

    async def auditor(self, name: str) -> StoredAuditor | None:
        row = await self._db.fetch_one(AUDITOR, (name,))
        return _auditor(row) if row else None

    async def auditors(self) -> list[StoredAuditor]:
        return [_auditor(r) for r in await self._db.fetch_all(AUDITORS)]

    async def add_auditor(self, name: str, role: str, password_hash: str, now: datetime, actor: str) -> bool:
        """False when a user of this name exists (nothing is written then)."""
        params = (name, role, password_hash, to_db(now))
        return await self._changed(ADD_AUDITOR, params, AuditorCreated(name, role), now, actor)

    async def disable_auditor(self, name: str, now: datetime, actor: str) -> bool:
        """False when there is no such enabled user."""
        return await self._changed(DISABLE_AUDITOR, (to_db(now), name), AuditorDisabled(name), now, actor)

    async def set_auditor_password(self, name: str, password_hash: str, now: datetime, actor: str) -> bool:
        """False when there is no such user."""
        record = AuditorPasswordChanged(name)
        return await self._changed(SET_PASSWORD, (password_hash, name), record, now, actor)

    async def rehash_auditor_password(self, name: str, password_hash: str) -> None:
        """The same password hashed with stronger parameters: no fact for the chain."""
        async with self._db.write() as db:
            await db.execute(SET_PASSWORD, (password_hash, name))

    async def _changed(
        self, sql: str, params: tuple[str, ...], record: Record, now: datetime, actor: str
    ) -> bool:
        """One write and, if it changed a row, its event: one transaction."""
        async with self._db.write() as db:
            changed = await db.execute(sql, params) > 0
            if changed:
                await append_audit(db, [AuditEvent(record, now, actor)])
            return changed

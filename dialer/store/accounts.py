"""Accounts and their imports: batches of borrowers upserted with their rejects and audit events."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from dialer.core.models import Account, AccountRecord, RejectedRow
from dialer.store.chain import AuditEvent
from dialer.store.chain import append as append_audit
from dialer.store.conn import Conn
from dialer.store.db import Database, Row, fetch_all, fetch_one, insert_id
from dialer.store.events import ImportBatch, Imported, ImportFailed
from dialer.store.times import to_db

START_IMPORT = "INSERT INTO imports (file, started_at) VALUES (?, ?)"
ADD_REJECT = "INSERT INTO import_rejects (import_id, row_number, reason, raw) VALUES (?,?,?,?)"
ADD_TO_IMPORT = (
    "UPDATE imports SET rows=rows+?, inserted=inserted+?, updated=updated+?, rejected=rejected+? WHERE id=?"
)
IMPORT_TOTALS = "SELECT file, rows, inserted, updated, rejected FROM imports WHERE id=?"
REJECTS = "SELECT row_number, reason FROM import_rejects WHERE import_id=? ORDER BY row_number"
ACCOUNT_COLUMNS = (
    "a.id, a.account_id, a.debt_id, a.name, a.phone_e164, a.time_zones, a.tz_derived, "
    "a.amount_minor, a.currency, a.due_date, a.language"
)
ACCOUNT = f"SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.account_id=?"
COUNT_ACCOUNTS = "SELECT count(*) AS n FROM accounts"
KNOWN_IDS = "SELECT account_id FROM accounts WHERE account_id IN ({marks})"
KEPT_COLUMNS = "SELECT id, columns FROM accounts WHERE id IN ({marks}) AND columns != '{{}}'"
UPSERT_ACCOUNT = """
INSERT INTO accounts (account_id, debt_id, name, phone_e164, region, time_zones, tz_derived,
                      amount_minor, currency, due_date, language, columns, created_at, updated_at)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (account_id) DO UPDATE SET
    debt_id=excluded.debt_id, name=excluded.name, phone_e164=excluded.phone_e164,
    region=excluded.region, time_zones=excluded.time_zones, tz_derived=excluded.tz_derived,
    amount_minor=excluded.amount_minor, currency=excluded.currency, due_date=excluded.due_date,
    language=excluded.language, columns=excluded.columns, updated_at=excluded.updated_at
"""
_CHUNK = 900  # ids per IN (...): under SQLite's bound-parameter limit (999 before 3.32)


@dataclass(frozen=True, slots=True)
class ImportCounts:
    inserted: int
    updated: int


def account_from(row: Row) -> Account:
    """An account from a row holding ACCOUNT_COLUMNS."""
    return Account(
        pk=row["id"],
        account_id=row["account_id"],
        debt_id=row["debt_id"],
        name=row["name"],
        phone_e164=row["phone_e164"],
        time_zones=tuple(json.loads(row["time_zones"])),
        tz_derived=bool(row["tz_derived"]),
        amount_minor=row["amount_minor"],
        currency=row["currency"],
        due_date=date.fromisoformat(row["due_date"]),
        language=row["language"],
    )


class Accounts:
    """The store's accounts and imports (a part of `SqliteStore`)."""

    _db: Database

    async def start_import(self, file: str, now: datetime) -> int:
        async with self._db.write() as db:
            return await insert_id(db, START_IMPORT, (file, to_db(now)))

    async def upsert_accounts(self, records: Sequence[AccountRecord], now: datetime) -> ImportCounts:
        """Insert new accounts, update known ones (keyed by account_id), in one transaction."""
        async with self._db.write() as db:
            return await _upsert_accounts(db, records, to_db(now))

    async def add_rejects(self, import_id: int, rejects: Sequence[RejectedRow]) -> None:
        async with self._db.write() as db:
            await _add_rejects(db, import_id, rejects)

    async def import_batch(
        self,
        import_id: int,
        batch: int,
        records: Sequence[AccountRecord],
        rejects: Sequence[RejectedRow],
        now: datetime,
        actor: str = "operator",
    ) -> ImportCounts:
        """One batch of an import, all or nothing: its accounts (inserted or updated), its rejects,
        the import's running totals and its `accounts.import_batch` event, in one transaction."""
        async with self._db.write() as db:
            counts = await _upsert_accounts(db, records, to_db(now))
            await _add_rejects(db, import_id, rejects)
            rows, rejected = len(records) + len(rejects), len(rejects)
            await db.execute(ADD_TO_IMPORT, (rows, counts.inserted, counts.updated, rejected, import_id))
            record = ImportBatch(import_id, batch, rows, counts.inserted, counts.updated, rejected)
            await append_audit(db, [AuditEvent(record, now, actor)])
        return counts

    async def finish_import(self, import_id: int, now: datetime, actor: str = "operator") -> None:
        """Every batch is in: `accounts.imported` with the import's totals."""
        async with self._db.write() as db:
            totals = await _import_totals(db, import_id)
            await append_audit(db, [AuditEvent(Imported(import_id, **totals), now, actor)])

    async def fail_import(self, import_id: int, reason: str, now: datetime, actor: str = "operator") -> None:
        """The import stopped: `accounts.import_failed` with what its committed batches hold."""
        async with self._db.write() as db:
            totals = await _import_totals(db, import_id)
            await append_audit(db, [AuditEvent(ImportFailed(import_id, **totals, reason=reason), now, actor)])

    async def rejects(self, import_id: int) -> list[tuple[int, str]]:
        rows = await self._db.fetch_all(REJECTS, (import_id,))
        return [(r["row_number"], r["reason"]) for r in rows]

    async def account(self, account_id: str) -> Account | None:
        row = await self._db.fetch_one(ACCOUNT, (account_id,))
        return account_from(row) if row else None

    async def count_accounts(self) -> int:
        row = await self._db.fetch_one(COUNT_ACCOUNTS)
        return int(row["n"]) if row else 0

    async def account_columns(self, account_pks: Sequence[int]) -> dict[int, dict[str, str]]:
        """The lender's own columns of each account (docs/import.md), by account pk, read in one
        snapshot. An account without any, or a pk that is no account, is not a key."""
        pks = list(dict.fromkeys(account_pks))
        found: dict[int, dict[str, str]] = {}
        async with self._db.read() as db:
            for start in range(0, len(pks), _CHUNK):
                chunk = pks[start : start + _CHUNK]
                rows = await fetch_all(db, KEPT_COLUMNS.format(marks=",".join("?" * len(chunk))), chunk)
                found.update((r["id"], json.loads(r["columns"])) for r in rows)
        return found


async def _upsert_accounts(db: Conn, records: Sequence[AccountRecord], stamp: str) -> ImportCounts:
    if not records:
        return ImportCounts(0, 0)
    ids = [r.account_id for r in records]
    known = await _existing_ids(db, ids)
    await db.executemany(UPSERT_ACCOUNT, [_account_params(r, stamp) for r in records])
    updated = sum(1 for i in ids if i in known)
    return ImportCounts(inserted=len(ids) - updated, updated=updated)


async def _add_rejects(db: Conn, import_id: int, rejects: Sequence[RejectedRow]) -> None:
    await db.executemany(ADD_REJECT, [(import_id, r.row_number, r.reason, r.raw) for r in rejects])


async def _import_totals(db: Conn, import_id: int) -> dict[str, Any]:
    row = await fetch_one(db, IMPORT_TOTALS, (import_id,))
    assert row is not None, f"import {import_id} has no row"
    return {k: row[k] for k in ("file", "rows", "inserted", "updated", "rejected")}


async def _existing_ids(db: Conn, ids: Sequence[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = await fetch_all(db, KNOWN_IDS.format(marks=",".join("?" * len(chunk))), chunk)
        known.update(r["account_id"] for r in rows)
    return known


def _account_params(r: AccountRecord, stamp: str) -> tuple[Any, ...]:
    return (
        r.account_id,
        r.debt_id,
        r.name,
        r.phone_e164,
        r.region,
        json.dumps(list(r.time_zones)),
        int(r.tz_derived),
        r.amount_minor,
        r.currency,
        r.due_date.isoformat(),
        r.language,
        columns_json(r.columns),
        stamp,
        stamp,
    )


def columns_json(columns: Sequence[tuple[str, str]]) -> str:
    """The stored form: one JSON object, keys sorted, so the same values are always the same text."""
    return json.dumps(dict(columns), ensure_ascii=False, sort_keys=True, separators=(",", ":"))

"""Payments and their imports: batches written with their rejects and audit events; an account's
payments and promises read back for its balance (`dialer.core.balance` computes it)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from dialer.core.balance import Payment, PromiseMade, decision_zone, payment_day
from dialer.core.models import Account, RejectedRow
from dialer.core.vocab import Outcome
from dialer.store.accounts import ACCOUNT, ACCOUNT_COLUMNS, account_from
from dialer.store.chain import AuditEvent
from dialer.store.chain import append as append_audit
from dialer.store.conn import Conn
from dialer.store.db import Database, Row, fetch_all, fetch_one, insert_id
from dialer.store.events import PaymentImportBatch, PaymentImportFailed, PaymentsImported
from dialer.store.times import from_db, to_db

START = "INSERT INTO payment_imports (file, started_at) VALUES (?, ?)"
ADD_REJECT = "INSERT INTO payment_rejects (import_id, row_number, reason, raw) VALUES (?,?,?,?)"
ADD_TO_IMPORT = (
    "UPDATE payment_imports SET rows=rows+?, inserted=inserted+?, duplicates=duplicates+?, "
    "rejected=rejected+? WHERE id=?"
)
TOTALS = "SELECT file, rows, inserted, duplicates, rejected FROM payment_imports WHERE id=?"
REJECTS = (
    "SELECT id, row_number, reason, raw FROM payment_rejects WHERE import_id=? AND id>? ORDER BY id LIMIT ?"
)
KNOWN = (
    "SELECT p.payment_id, p.account_pk, p.amount_minor, p.currency, p.paid_at, p.paid_on, p.import_id, "
    "p.row_number, a.account_id FROM payments p JOIN accounts a ON a.id=p.account_pk "
    "WHERE p.payment_id IN ({marks})"
)
INSERT = (
    "INSERT INTO payments (payment_id, account_pk, amount_minor, currency, paid_at, paid_on, import_id, "
    "row_number, imported_at, paid_day) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
ZONES_OF = "SELECT id, time_zones FROM accounts WHERE id IN ({marks})"
ACCOUNTS_NAMED = f"SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.account_id IN ({{marks}})"
PAYMENTS_OF = (
    "SELECT payment_id, amount_minor, currency, paid_at, paid_on FROM payments "
    "WHERE account_pk=? ORDER BY paid_at, id"
)
CALL_PROMISES = (
    "SELECT o.attempt_id, o.at, o.promised_date, o.promised_amount_minor FROM outcomes o "
    "JOIN attempts t ON t.id=o.attempt_id WHERE t.account_pk=? AND o.outcome=? ORDER BY o.at"
)
TEXT_PROMISES = (
    "SELECT id, received_at FROM inbound_messages WHERE account_pk=? AND outcome=? ORDER BY received_at"
)
_CHUNK = 900  # SQLite's bound-parameter limit


@dataclass(frozen=True, slots=True)
class NewPayment:
    """A payment checked against its account, ready to store: the row it came from, for rejects."""

    row_number: int
    raw: str
    account_pk: int
    payment: Payment


@dataclass(frozen=True, slots=True)
class PaymentCounts:
    inserted: int
    duplicates: int
    conflicts: tuple[RejectedRow, ...]  # a known payment_id with other values: rejected


@dataclass(frozen=True, slots=True)
class AccountPayments:
    """What `dialer.core.balance.standing` needs about one account."""

    account: Account
    payments: tuple[Payment, ...]
    promises: tuple[PromiseMade, ...]


class Payments:
    """The store's payments and payment imports (a part of `SqliteStore`)."""

    _db: Database

    async def start_payment_import(self, file: str, now: datetime) -> int:
        async with self._db.write() as db:
            return await insert_id(db, START, (file, to_db(now)))

    async def accounts_named(self, account_ids: Sequence[str]) -> dict[str, Account]:
        """The accounts among `account_ids` that exist, by id."""
        found: dict[str, Account] = {}
        ids = list(dict.fromkeys(account_ids))
        async with self._db.read() as db:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                rows = await fetch_all(db, ACCOUNTS_NAMED.format(marks=",".join("?" * len(chunk))), chunk)
                found.update((row["account_id"], account_from(row)) for row in rows)
        return found

    async def payment_import_batch(
        self,
        import_id: int,
        batch: int,
        payments: Sequence[NewPayment],
        rejects: Sequence[RejectedRow],
        now: datetime,
        actor: str = "operator",
    ) -> PaymentCounts:
        """One batch, all or nothing: its new payments, its rejects (with those found here: a known
        payment_id with other values), the import's totals and its `payments.import_batch` event.
        A payment_id already stored with the same values is a duplicate: counted once, not again."""
        async with self._db.write() as db:
            known = await _known(db, [p.payment.payment_id for p in payments])
            fresh, duplicates, conflicts = _split(payments, known)
            zones = await _zones(db, [p.account_pk for p in fresh])
            await db.executemany(INSERT, [_params(p, import_id, now, zones[p.account_pk]) for p in fresh])
            every_reject = sorted([*rejects, *conflicts], key=lambda r: r.row_number)  # file order
            await db.executemany(
                ADD_REJECT, [(import_id, r.row_number, r.reason, r.raw) for r in every_reject]
            )
            rows, rejected = len(payments) + len(rejects), len(every_reject)
            await db.execute(ADD_TO_IMPORT, (rows, len(fresh), duplicates, rejected, import_id))
            record = PaymentImportBatch(
                import_id, batch, rows, len(fresh), duplicates, rejected, _amounts(fresh)
            )
            await append_audit(db, [AuditEvent(record, now, actor)])
        return PaymentCounts(len(fresh), duplicates, tuple(conflicts))

    async def finish_payment_import(self, import_id: int, now: datetime, actor: str = "operator") -> None:
        async with self._db.write() as db:
            totals = await _totals(db, import_id)
            await append_audit(db, [AuditEvent(PaymentsImported(import_id, **totals), now, actor)])

    async def fail_payment_import(
        self, import_id: int, reason: str, now: datetime, actor: str = "operator"
    ) -> None:
        async with self._db.write() as db:
            totals = await _totals(db, import_id)
            failed = PaymentImportFailed(import_id, **totals, reason=reason)
            await append_audit(db, [AuditEvent(failed, now, actor)])

    async def payment_rejects(
        self, import_id: int, after: int = 0, limit: int = 500
    ) -> list[tuple[int, RejectedRow]]:
        """A page of an import's rejects, in the order written: (its id, the row); page on with the
        last id as `after` (a rejects file of any size is written a page at a time)."""
        rows = await self._db.fetch_all(REJECTS, (import_id, after, limit))
        return [(r["id"], RejectedRow(r["row_number"], r["reason"], r["raw"])) for r in rows]

    async def account_payments(self, account_id: str) -> AccountPayments | None:
        """An account with its payments and the promises it made (on calls and by text), one snapshot."""
        async with self._db.read() as db:
            row = await fetch_one(db, ACCOUNT, (account_id,))
            if row is None:
                return None
            account = account_from(row)
            paid = await fetch_all(db, PAYMENTS_OF, (account.pk,))
            calls = await fetch_all(db, CALL_PROMISES, (account.pk, Outcome.PROMISE_TO_PAY.value))
            texts = await fetch_all(db, TEXT_PROMISES, (account.pk, Outcome.PROMISE_TO_PAY.value))
        promises = [*map(call_promise, calls), *map(text_promise, texts)]
        return AccountPayments(account, tuple(map(payment, paid)), tuple(promises))


async def _known(db: Conn, payment_ids: Sequence[str]) -> dict[str, Row]:
    ids = list(dict.fromkeys(payment_ids))
    known: dict[str, Row] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = await fetch_all(db, KNOWN.format(marks=",".join("?" * len(chunk))), chunk)
        known.update((row["payment_id"], row) for row in rows)
    return known


def _split(
    payments: Sequence[NewPayment], known: dict[str, Row]
) -> tuple[list[NewPayment], int, list[RejectedRow]]:
    """New payments, the number already stored as they are, and rejects for those stored otherwise.
    Two rows of one batch with one payment_id are compared the same way (the first one wins)."""
    fresh: list[NewPayment] = []
    seen: dict[str, tuple[Any, ...]] = {pid: _stored_key(row) for pid, row in known.items()}
    where: dict[str, str] = {pid: _stored_place(row) for pid, row in known.items()}
    duplicates = 0
    conflicts: list[RejectedRow] = []
    for p in payments:
        pid = p.payment.payment_id
        if pid not in seen:
            seen[pid], where[pid] = _key(p), f"row {p.row_number} of this file"
            fresh.append(p)
        elif seen[pid] == _key(p):
            duplicates += 1
        else:
            reason = f"payment_id: {pid[:40]!r} was imported with other values ({where[pid]}); not changed"
            conflicts.append(RejectedRow(p.row_number, reason, p.raw))
    return fresh, duplicates, conflicts


def _key(p: NewPayment) -> tuple[Any, ...]:
    pay = p.payment
    return (p.account_pk, pay.amount_minor, pay.currency, to_db(pay.paid_at), _day(pay.paid_on))


def _stored_key(row: Row) -> tuple[Any, ...]:
    return (row["account_pk"], row["amount_minor"], row["currency"], row["paid_at"], row["paid_on"])


def _stored_place(row: Row) -> str:
    return f"account {row['account_id'][:40]!r}, payment import {row['import_id']} row {row['row_number']}"


def _day(day: date | None) -> str | None:
    return day.isoformat() if day else None


def local_day(payment: Payment, zones: Sequence[str]) -> date:
    """A payment's day for the reports (payments.paid_day): the date the file gave, else its local
    date in the account's decision zone at the moment it was paid."""
    return payment_day(payment, decision_zone(zones, payment.paid_at))


async def _zones(db: Conn, account_pks: Sequence[int]) -> dict[int, tuple[str, ...]]:
    pks = list(dict.fromkeys(account_pks))
    zones: dict[int, tuple[str, ...]] = {}
    for start in range(0, len(pks), _CHUNK):
        chunk = pks[start : start + _CHUNK]
        rows = await fetch_all(db, ZONES_OF.format(marks=",".join("?" * len(chunk))), chunk)
        zones.update((row["id"], tuple(json.loads(row["time_zones"]))) for row in rows)
    return zones


def _params(p: NewPayment, import_id: int, now: datetime, zones: Sequence[str]) -> tuple[Any, ...]:
    pay = p.payment
    return (
        pay.payment_id,
        p.account_pk,
        pay.amount_minor,
        pay.currency,
        to_db(pay.paid_at),
        _day(pay.paid_on),
        import_id,
        p.row_number,
        to_db(now),
        local_day(pay, zones).isoformat(),
    )


def _amounts(payments: Sequence[NewPayment]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for p in payments:
        totals[p.payment.currency] += p.payment.amount_minor
    return dict(sorted(totals.items()))


async def _totals(db: Conn, import_id: int) -> dict[str, Any]:
    row = await fetch_one(db, TOTALS, (import_id,))
    assert row is not None, f"payment import {import_id} has no row"
    return {k: row[k] for k in ("file", "rows", "inserted", "duplicates", "rejected")}


def payment(row: Row) -> Payment:
    paid_on = date.fromisoformat(row["paid_on"]) if row["paid_on"] else None
    return Payment(row["payment_id"], row["amount_minor"], row["currency"], from_db(row["paid_at"]), paid_on)


def call_promise(row: Row) -> PromiseMade:
    day = date.fromisoformat(row["promised_date"]) if row["promised_date"] else None
    return PromiseMade("call", row["attempt_id"], from_db(row["at"]), day, row["promised_amount_minor"])


def text_promise(row: Row) -> PromiseMade:
    return PromiseMade("sms", row["id"], from_db(row["received_at"]), None, None)

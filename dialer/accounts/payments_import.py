"""`duecall payments import`: parse a payments file off the event loop, write it in batches.

Every data row ends up a payment, a duplicate of one already stored (counted once, never twice)
or a reject in `payment_rejects` (and in a rejects CSV that can be fixed and imported again):
nothing is dropped. A row is checked against its account here: an unknown account, another
currency, or a payment after `now` is a reject naming the field. Memory stays bounded whatever
the file's size: a batch at a time, the rejects file written from the store a page at a time.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from dialer.accounts.fields import shown
from dialer.accounts.importer import import_failure
from dialer.accounts.parse import read_header, write_rejects
from dialer.accounts.payments_parse import PaymentRecord, read_payments
from dialer.core.balance import day_start, decision_zone
from dialer.core.models import Account, RejectedRow
from dialer.store import Store
from dialer.store.payments import NewPayment

BATCH_ROWS = 5000
SHOWN_REJECTS = 20  # kept in memory for the command to print; all of them are in the store
_PAGE_TIMEOUT = 60.0  # seconds for one page of rejects from the database


@dataclass(frozen=True, slots=True)
class PaymentReport:
    import_id: int
    rows: int
    inserted: int
    duplicates: int
    rejected: int
    first_rejects: tuple[RejectedRow, ...]  # the first SHOWN_REJECTS, in file order
    rejects_file: Path | None


def _next_batch(rows: Iterator[PaymentRecord | RejectedRow]) -> list[PaymentRecord | RejectedRow]:
    return list(itertools.islice(rows, BATCH_ROWS))


def check_against_accounts(
    records: Sequence[PaymentRecord], accounts: dict[str, Account], now: datetime
) -> tuple[list[NewPayment], list[RejectedRow]]:
    """Payments whose account exists, in its currency, not after `now`; the others as rejects.
    A date-only payment is placed at the start of its day in the account's decision zone."""
    good: list[NewPayment] = []
    bad: list[RejectedRow] = []
    for r in records:
        account = accounts.get(r.account_id)
        problem = _problem(r, account)
        if problem or account is None:
            bad.append(RejectedRow(r.row_number, problem, r.raw))
            continue
        payment = r.payment
        if payment.paid_on is not None:
            zone = decision_zone(account.time_zones, payment.paid_at)
            payment = replace(payment, paid_at=day_start(payment.paid_on, zone))
        if payment.paid_at > now:
            bad.append(RejectedRow(r.row_number, f"paid_at: {_when(r)} is in the future", r.raw))
            continue
        good.append(NewPayment(r.row_number, r.raw, account.pk, payment))
    return good, bad


def _problem(r: PaymentRecord, account: Account | None) -> str:
    if account is None:
        return f"account_id: {shown(r.account_id)} is not an imported account (import it first)"
    if r.payment.currency != account.currency:
        return f"currency: {r.payment.currency} differs from the account's {account.currency}"
    return ""


def _when(r: PaymentRecord) -> str:
    p = r.payment
    return p.paid_on.isoformat() if p.paid_on else p.paid_at.isoformat()


async def import_payments(
    store: Store,
    path: Path,
    default_currency: str | None,
    now: datetime,
    rejects_file: Path,
    progress: Callable[[int], None] | None = None,
) -> PaymentReport:
    rows = await asyncio.to_thread(read_payments, path, default_currency)  # whole-file errors first
    import_id = await store.start_payment_import(str(path), now)
    inserted = duplicates = rejected = total = 0
    shown_rejects: list[RejectedRow] = []
    try:
        for number in itertools.count(1):
            batch = await asyncio.to_thread(_next_batch, rows)
            if not batch:
                break
            records = [r for r in batch if isinstance(r, PaymentRecord)]
            accounts = await store.accounts_named([r.account_id for r in records])
            good, unmatched = check_against_accounts(records, accounts, now)
            bad = [r for r in batch if isinstance(r, RejectedRow)] + unmatched
            counts = await store.payment_import_batch(import_id, number, good, bad, now)
            inserted, duplicates = inserted + counts.inserted, duplicates + counts.duplicates
            rejected += len(bad) + len(counts.conflicts)
            shown_rejects = _first(shown_rejects, [*bad, *counts.conflicts])
            total += len(batch)
            if progress:
                progress(len(batch))
        await store.finish_payment_import(import_id, now)
    except Exception as exc:  # whatever stopped it, the import is recorded as failed, not as done
        rows.close()
        raise await import_failure(
            "payment import", store.fail_payment_import, import_id, total, exc, now
        ) from exc
    written = await _write_rejects(store, import_id, path, rejects_file) if rejected else None
    return PaymentReport(import_id, total, inserted, duplicates, rejected, tuple(shown_rejects), written)


def _first(kept: list[RejectedRow], more: list[RejectedRow]) -> list[RejectedRow]:
    return sorted([*kept, *more], key=lambda r: r.row_number)[:SHOWN_REJECTS]


async def _write_rejects(store: Store, import_id: int, source: Path, target: Path) -> Path:
    """The rejects CSV (`write_rejects`: formula guards, a BOM), fed from the store a page at a
    time by the event loop while a thread writes it: no list of every reject is ever held."""
    target.parent.mkdir(parents=True, exist_ok=True)
    header = await asyncio.to_thread(read_header, source)
    loop = asyncio.get_running_loop()

    def rejects() -> Iterator[RejectedRow]:
        after = 0
        while page := asyncio.run_coroutine_threadsafe(store.payment_rejects(import_id, after), loop).result(
            timeout=_PAGE_TIMEOUT
        ):
            after = page[-1][0]
            yield from (row for _, row in page)

    await asyncio.to_thread(write_rejects, target, header, rejects())
    return target

"""`duecall payments import|show`: payments received, and where an account stands (docs/payments.md)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import click
import iso4217
from rich.table import Table

from dialer.accounts.importer import count_data_lines
from dialer.accounts.payments_import import PaymentReport, import_payments
from dialer.core.balance import Standing, promises, standing
from dialer.core.clock import SystemClock
from dialer.core.config import Settings
from dialer.core.errors import DueCallError
from dialer.store.payments import AccountPayments
from duecall.cli._shared import console, rejects_option, settings_of
from duecall.storage import open_store


@click.group()
def payments() -> None:
    """Payments received: import them, see an account's balance, lateness and promises."""


@payments.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@rejects_option("var/rejects/<file>-rejects.csv")
@click.pass_context
def payments_import(ctx: click.Context, file: Path, rejects_file: Path | None) -> None:
    """Import payments from a CSV file (importing it again counts nothing twice)."""
    s = settings_of(ctx)
    target = rejects_file or s.path(s.asterisk.state_dir) / "rejects" / f"{file.stem}-rejects.csv"
    report = asyncio.run(_import(s, file, target))
    console.print(
        f"{file}: {report.rows} rows: {report.inserted} new, {report.duplicates} already imported, "
        f"{report.rejected} rejected (payment import {report.import_id}).",
        highlight=False,
    )
    for reject in report.first_rejects:
        console.print(f"  {file}: row {reject.row_number}: {reject.reason}", highlight=False)
    if report.rejected > len(report.first_rejects):
        console.print(f"  ... and {report.rejected - len(report.first_rejects)} more")
    if report.rejects_file:
        console.print(
            f"Rejected rows kept in {report.rejects_file} (fix and import it again).", highlight=False
        )


async def _import(s: Settings, file: Path, target: Path) -> PaymentReport:
    store = await open_store(s)
    try:
        total = count_data_lines(file)
        with console.status(f"importing {file.name} ({total} lines)"):
            return await import_payments(
                store, file, s.accounts.default_currency, SystemClock().now(), target
            )
    finally:
        await store.close()


@payments.command("show")
@click.argument("account_id")
@click.pass_context
def payments_show(ctx: click.Context, account_id: str) -> None:
    """An account's balance, days past due, bucket, payments and promises, as of now."""
    found = asyncio.run(_account(settings_of(ctx), account_id))
    if found is None:
        raise DueCallError(f"account {account_id!r}: no such account")
    a = found.account
    now = SystemClock().now()
    st = standing(a, found.payments, promises(found.promises, a.time_zones, a.due_date), now)
    _print(found, st)


async def _account(s: Settings, account_id: str) -> AccountPayments | None:
    store = await open_store(s)
    try:
        return await store.account_payments(account_id)
    finally:
        await store.close()


def money(minor: int, currency: str) -> str:
    """Exact, never rounded: 123450 CNY is 1234.50 CNY."""
    exponent = iso4217.Currency(currency).exponent or 0
    return f"{Decimal(minor).scaleb(-exponent):f} {currency}"


def _print(found: AccountPayments, st: Standing) -> None:
    a = found.account
    console.print(
        f"{a.account_id}: due {money(a.amount_minor, a.currency)} on {a.due_date}; "
        f"on {st.day} ({st.zone}): balance {money(st.balance_minor, a.currency)}, "
        f"{st.days_past_due} days past due, bucket {st.bucket}",
        highlight=False,
    )
    paid = Table("payment", "amount", "paid at (UTC)", "day", title="payments")
    for p in found.payments:
        day = f"{p.paid_on} (date only)" if p.paid_on else ""
        paid.add_row(p.payment_id, money(p.amount_minor, p.currency), p.paid_at.isoformat(), day)
    console.print(paid if found.payments else "no payments", highlight=False)
    made = Table(
        "from", "made at (UTC)", "to pay by", "amount", "paid toward", "state", "decided on", title="promises"
    )
    for v in st.promises:
        made.add_row(
            f"{v.promise.source} {v.promise.ref}",
            v.promise.made_at.isoformat(),
            str(v.promise.due_on),
            money(v.amount_minor, a.currency),
            money(v.paid_minor, a.currency),
            v.state.value,
            str(v.decided_on or ""),
        )
    console.print(made if st.promises else "no promises", highlight=False)

"""`duecall accounts import|opt-out|preferences`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dialer.accounts.importer import count_data_lines, import_accounts
from dialer.accounts.parse import ImportSettings
from dialer.core.clock import SystemClock
from dialer.core.config import Settings
from dialer.core.errors import DueCallError
from duecall.cli._shared import console, operator, rejects_option, settings_of
from duecall.storage import open_store


@click.group()
def accounts() -> None:
    """Borrowers: import, opt-outs."""


@accounts.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@rejects_option("var/rejects/<file>-<import id>.csv")
@click.pass_context
def accounts_import(ctx: click.Context, file: Path, rejects_file: Path | None) -> None:
    """Import (or update) borrowers from a CSV file."""
    s = settings_of(ctx)
    asyncio.run(_import(s, file, rejects_file))


async def _import(s: Settings, file: Path, rejects_file: Path | None) -> None:
    a = s.accounts
    parse = ImportSettings(a.default_region, a.default_currency, a.default_language)
    target = rejects_file or s.path(s.asterisk.state_dir) / "rejects" / f"{file.stem}-rejects.csv"
    store = await open_store(s)
    try:
        with _progress() as progress:
            task = progress.add_task(f"importing {file.name}", total=count_data_lines(file))
            report = await import_accounts(
                store, file, parse, SystemClock().now(), target, lambda n: progress.advance(task, n)
            )
    finally:
        await store.close()
    console.print(
        f"{file}: {report.rows} rows: {report.inserted} new, {report.updated} updated, "
        f"{len(report.rejects)} rejected (import {report.import_id})."
    )
    console.print(f"kept columns: {', '.join(report.columns) or 'none'}", highlight=False)
    for reject in report.rejects[:20]:
        console.print(f"  row {reject.row_number}: {reject.reason}", highlight=False)
    if len(report.rejects) > 20:
        console.print(f"  ... and {len(report.rejects) - 20} more")
    if report.rejects_file:
        console.print(f"Rejected rows kept in {report.rejects_file} (fix and import it again).")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


@accounts.command("opt-out")
@click.argument("phone")
@click.option("--channel", type=click.Choice(["voice", "sms", "all"]), default="all")
@click.pass_context
def accounts_opt_out(ctx: click.Context, phone: str, channel: str) -> None:
    """Record that a number must not be contacted (E.164, e.g. +8613912345678)."""
    s = settings_of(ctx)

    async def go() -> None:
        store = await open_store(s)
        try:
            for name in ["voice", "sms"] if channel == "all" else [channel]:
                await store.opt_out(phone, name, SystemClock().now(), "operator", actor=operator())
        finally:
            await store.close()

    asyncio.run(go())
    console.print(f"{phone}: opted out of {channel}.")


@accounts.command("preferences")
@click.argument("phone")
@click.option(
    "--inconvenient",
    multiple=True,
    metavar="HH:MM-HH:MM",
    help="A daily time, local to the borrower, they said is inconvenient (repeatable).",
)
@click.option(
    "--consent",
    multiple=True,
    metavar="FROM/TO",
    help="A window (RFC 3339 times) in which they consented to be called (repeatable).",
)
@click.pass_context
def accounts_preferences(
    ctx: click.Context, phone: str, inconvenient: tuple[str, ...], consent: tuple[str, ...]
) -> None:
    """Record when a borrower may not (or may) be called; replaces what was recorded before."""
    from datetime import datetime, time

    from dialer.core.models import Preferences

    try:
        ranges = tuple(tuple(time.fromisoformat(x) for x in r.split("-")) for r in inconvenient)
        windows = tuple(tuple(datetime.fromisoformat(x) for x in c.split("/")) for c in consent)
        if any(len(r) != 2 for r in ranges) or any(len(w) != 2 or w[0].tzinfo is None for w in windows):
            raise ValueError("expected HH:MM-HH:MM and FROM/TO with UTC offsets")
    except ValueError as exc:  # a bad option value: the user's mistake, said in one line
        raise DueCallError(f"preferences: {exc}") from exc
    prefs = Preferences(ranges, windows)  # type: ignore[arg-type]
    s = settings_of(ctx)

    async def go() -> None:
        store = await open_store(s)
        try:
            await store.set_preferences(phone, prefs, SystemClock().now(), operator())
        finally:
            await store.close()

    asyncio.run(go())
    console.print(f"{phone}: {len(ranges)} inconvenient time(s), {len(windows)} consent window(s) recorded.")

"""`duecall campaign create`, `duecall run` and `duecall status`."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import click
from rich.table import Table

from dialer.campaign.engine import RunSummary
from dialer.core.clock import SystemClock
from dialer.core.errors import DueCallError
from duecall.cli._shared import console, operator, settings_of
from duecall.runtime import dial, ivr_figures, open_store


@click.group()
def campaign() -> None:
    """Campaigns: which accounts to call."""


@campaign.command("create")
@click.argument("name")
@click.option("--account", "account_ids", multiple=True, help="Only these account ids (repeatable).")
@click.pass_context
def campaign_create(ctx: click.Context, name: str, account_ids: tuple[str, ...]) -> None:
    """Create a campaign (or add accounts to it): every imported account unless --account is given."""
    s = settings_of(ctx)

    async def go() -> int:
        store = await open_store(s)
        try:
            found = await store.create_campaign(name, SystemClock().now(), operator())
            return await store.add_targets(found.id, SystemClock().now(), list(account_ids) or None)
        finally:
            await store.close()

    added = asyncio.run(go())
    console.print(f"campaign {name}: {added} accounts added.")


@click.command("run")
@click.argument("campaign_name", metavar="CAMPAIGN")
@click.option("--exit-when-idle", is_flag=True, help="Exit when nothing is due now (for cron).")
@click.pass_context
def run_campaign(ctx: click.Context, campaign_name: str, exit_when_idle: bool) -> None:
    """Place the campaign's calls until every account is settled (Ctrl-C stops gracefully)."""
    s = settings_of(ctx)
    summary = asyncio.run(dial(s, campaign_name, SystemClock(), timedelta(0) if exit_when_idle else None))
    _print_summary(summary)


def _print_summary(summary: RunSummary) -> None:
    console.print(
        f"placed {summary.placed} calls, {summary.finished} finished, "
        f"{summary.blocked} deferred by policy, {summary.reconciled} reconciled from an earlier run."
    )
    if summary.left_open:
        console.print(f"left open (reconciled next run): attempts {summary.left_open}")
    if summary.answer_to_audio:
        console.print(ivr_figures(summary))


@click.command("status")
@click.argument("campaign_name", metavar="CAMPAIGN")
@click.pass_context
def status(ctx: click.Context, campaign_name: str) -> None:
    """Counts by disposition and what is scheduled next."""
    s = settings_of(ctx)

    async def go() -> None:
        store = await open_store(s)
        try:
            found = await store.campaign(campaign_name)
            if found is None:
                raise DueCallError(f"no campaign named {campaign_name!r}")
            st = await store.status(found)
        finally:
            await store.close()
        console.print(_counts_table("Accounts by state", st.targets_by_state))
        console.print(_counts_table("Attempts by disposition", st.attempts_by_disposition))
        if st.outcomes:
            console.print(_counts_table("What answered borrowers chose", st.outcomes))
        upcoming = Table("next call (UTC)", "account", "phone", "why waiting", title="Scheduled next")
        for at, account_id, phone, note in st.next_due:
            upcoming.add_row(f"{at:%Y-%m-%d %H:%M:%S}", account_id, phone, note)
        console.print(upcoming)

    asyncio.run(go())


def _counts_table(title: str, counts: dict[str, int]) -> Table:
    table = Table("", "count", title=title)
    for key, value in sorted(counts.items()):
        table.add_row(key, str(value))
    table.add_row("[b]total[/b]", str(sum(counts.values())))
    return table

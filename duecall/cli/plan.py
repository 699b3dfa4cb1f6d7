"""`duecall campaign plan`: the dry run of a campaign's strategy and policy (nothing is sent)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import click

from dialer.core.clock import SystemClock
from dialer.core.errors import DueCallError
from duecall import steered
from duecall.cli._shared import console, settings_of
from duecall.planning import Work, plan_on_every_core, render

MAX_DAYS = 92  # a quarter: further ahead the plan's assumptions (nobody answers, no payment) mean little


@click.command("plan")
@click.argument("campaign_name", metavar="CAMPAIGN")
@click.option("--days", type=click.IntRange(1, MAX_DAYS), default=14, show_default=True, help="Days ahead.")
@click.option("--account", "account_id", help="Also print this account's full schedule with reasons.")
@click.option(
    "--start", "start_at", help="Start at this UTC time (ISO 8601, e.g. 2026-12-01T00:00Z); default now."
)
@click.pass_context
def plan_command(
    ctx: click.Context, campaign_name: str, days: int, account_id: str | None, start_at: str | None
) -> None:
    """What the campaign's strategy and the policy would do over the coming days, from the history
    as it stands: per day and channel the contacts made and refused (by rule), the accounts held
    and stopped, and one account's schedule. Simulated: nothing is sent or recorded."""
    s = settings_of(ctx)
    start = parse_start(start_at) if start_at else SystemClock().now()
    inputs = asyncio.run(steered.plan_inputs(s, campaign_name, start))
    if account_id and not any(x.account.account.account_id == account_id for x in inputs.snapshots):
        raise DueCallError(f"account {account_id} is not in campaign {campaign_name}")
    work = Work(
        inputs.snapshots, inputs.strategy_of, inputs.gate, start, days, inputs.campaign.id, account_id
    )
    render(console, campaign_name, plan_on_every_core(work))


def parse_start(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise DueCallError(f"--start {text!r}: not an ISO 8601 time like 2026-12-01T00:00Z") from exc
    if at.tzinfo is None or at.utcoffset() is None:
        raise DueCallError(f"--start {text!r}: give the time in UTC (end it with Z or +00:00)")
    return at.astimezone(UTC)

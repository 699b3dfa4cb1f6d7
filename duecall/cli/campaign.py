"""`duecall campaign create|start|pause|resume`, `duecall run` and `duecall status`."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import click
from rich.table import Table

from dialer.campaign.engine import RunSummary
from dialer.core.clock import SystemClock
from dialer.core.errors import ConfigError
from dialer.core.models import Campaign
from dialer.core.vocab import CampaignState
from duecall import steered
from duecall.cli._shared import console, operator, settings_of
from duecall.cli.plan import plan_command
from duecall.runtime import dial, ivr_figures
from duecall.storage import campaign_named, open_store


@click.group()
def campaign() -> None:
    """Campaigns: which accounts to call."""


@campaign.command("create")
@click.argument("name")
@click.option("--account", "account_ids", multiple=True, help="Only these account ids (repeatable).")
@click.option(
    "--strategy",
    "strategy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A contact strategy (YAML) that decides each account's calls and texts (docs/strategy.md).",
)
@click.pass_context
def campaign_create(
    ctx: click.Context, name: str, account_ids: tuple[str, ...], strategy_file: Path | None
) -> None:
    """Create a campaign (or add accounts to it): every imported account unless --account is given."""
    s = settings_of(ctx)

    async def go() -> tuple[tuple[int, int], Campaign]:
        store = await open_store(s)
        try:
            now = SystemClock().now()
            found = await store.create_campaign(name, now, operator())
            if strategy_file is not None:
                found = await steered.attach(store, s, found, strategy_file, now, operator())
            added = await steered.add_accounts(store, s, found, list(account_ids) or None, now, operator())
            return added, found
        finally:
            await store.close()

    (added, drawn), found = asyncio.run(go())
    follows = f" (strategy {found.strategy_file}, seed {found.seed})" if found.steered else ""
    arms = f"; {drawn} given their champion/challenger arm" if drawn else ""
    console.print(f"campaign {name}{follows}: {added} accounts added{arms}.")


# command -> (the state it acts from, the state it leaves the campaign in)
_STATE_COMMANDS = {
    "start": (CampaignState.NEW, CampaignState.RUNNING),
    "pause": (CampaignState.RUNNING, CampaignState.PAUSED),
    "resume": (CampaignState.PAUSED, CampaignState.RUNNING),
}


def _state_command(name: str, help_text: str) -> click.Command:
    expected, wanted = _STATE_COMMANDS[name]

    @click.argument("campaign_name", metavar="CAMPAIGN")
    @click.pass_context
    def command(ctx: click.Context, campaign_name: str) -> None:
        s = settings_of(ctx)

        async def go() -> None:
            store = await open_store(s)
            try:
                found = await campaign_named(store, campaign_name)
                now = SystemClock().now()
                await store.set_campaign_state(found.id, wanted, now, operator(), expected=expected)
            finally:
                await store.close()

        asyncio.run(go())
        console.print(f"campaign {campaign_name}: {wanted}.")

    command.__doc__ = help_text
    return campaign.command(name)(command)


_state_command("start", "Start a new campaign (`duecall run` makes its calls and texts).")
_state_command(
    "pause",
    "Pause a running campaign: no new call or text (those under way finish) until it is resumed.",
)
_state_command("resume", "Resume a paused campaign: a `duecall run` of it goes on where it stopped.")


@click.command("run")
@click.argument("campaign_name", metavar="CAMPAIGN")
@click.option("--exit-when-idle", is_flag=True, help="Exit when nothing is due now (for cron).")
@click.pass_context
def run_campaign(ctx: click.Context, campaign_name: str, exit_when_idle: bool) -> None:
    """Place the campaign's calls until every account is settled (Ctrl-C stops gracefully).

    A new campaign is started first; while it is paused the run waits (`duecall campaign resume`).

    A campaign with a strategy makes the calls and sends the texts its strategy asks for, each
    through the policy, until every account is stopped (paid, disputed ...) or, with
    --exit-when-idle, until nothing is due now."""
    s = settings_of(ctx)
    horizon = timedelta(0) if exit_when_idle else None
    summary = asyncio.run(dial(s, campaign_name, SystemClock(), horizon, started_by=operator()))
    _print_summary(summary)
    if summary.duplicate_id:
        raise ConfigError(
            "stopped: another dialer runs with this one's id; set a unique [dialer] id on each machine"
        )


def _print_summary(summary: RunSummary) -> None:
    console.print(
        f"placed {summary.placed} calls, {summary.finished} finished, "
        f"{summary.blocked} deferred by policy, {summary.reconciled} reconciled "
        "(from an earlier run, or another dialer's whose lease ran out)."
    )
    if summary.left_open:
        console.print(f"left open (reconciled next run): attempts {summary.left_open}")
    if summary.texts or summary.texts_refused or summary.stopped:
        console.print(
            f"texts: {summary.texts} sent, {summary.texts_refused} refused by policy; "
            f"{summary.stopped} accounts stopped by the strategy."
        )
    if summary.answer_to_audio:
        console.print(ivr_figures(summary))


@click.command("status")
@click.argument("campaign_name", metavar="CAMPAIGN")
@click.pass_context
def status(ctx: click.Context, campaign_name: str) -> None:
    """Its state (new, running, paused), counts by disposition and what is scheduled next."""
    s = settings_of(ctx)

    async def go() -> None:
        store = await open_store(s)
        try:
            found = await campaign_named(store, campaign_name)
            st = await store.status(found)
        finally:
            await store.close()
        console.print(f"campaign {found.name}: {found.state}")
        console.print(_counts_table("Accounts by state", st.targets_by_state))
        console.print(_counts_table("Attempts by disposition", st.attempts_by_disposition))
        if st.outcomes:
            console.print(_counts_table("What answered borrowers chose", st.outcomes))
        upcoming = Table("next contact (UTC)", "account", "phone", "why waiting", title="Scheduled next")
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


campaign.add_command(plan_command, "plan")
campaign.add_command(status, "status")  # `duecall campaign status` is `duecall status`

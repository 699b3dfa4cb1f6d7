"""`duecall report`: a campaign's effectiveness report in the terminal, as CSV and as PNG plots.

The reports (statistics, plots: scipy, statsmodels, matplotlib, over a second to import) load only
when this command runs, not for every `duecall` command.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dialer.core.config import Settings
from dialer.core.errors import DueCallError
from duecall.cli._shared import console, settings_of
from duecall.storage import campaign_named, open_store

if TYPE_CHECKING:
    from reports.report import Report

GROUPINGS = ("arm", "step", "segment", "bucket", "period")  # reports.build.BYS but "" (a test checks)


@click.command("report")
@click.argument("campaign_name", metavar="CAMPAIGN")
@click.option("--by", type=click.Choice(GROUPINGS), help="Split by arm, step, segment, bucket or period.")
@click.option("--since", "since_text", metavar="YYYY-MM-DD", help="The money's period starts this day (UTC).")
@click.option(
    "--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path), help="Also write it as CSV."
)
@click.option(
    "--png", "png_dir", type=click.Path(file_okay=False, path_type=Path), help="Also draw the plots here."
)
@click.pass_context
def report(
    ctx: click.Context,
    campaign_name: str,
    by: str | None,
    since_text: str | None,
    csv_file: Path | None,
    png_dir: Path | None,
) -> None:
    """Did the reminders work: reached, right party, promised, kept, cured, recovered, rolled;
    per arm with 95 % intervals (docs/reports.md). Contacts count over the whole campaign,
    money from --since (default: the campaign's first day) to today."""
    today = datetime.now(UTC).date()
    since = parse_since(since_text, today) if since_text else None
    result = asyncio.run(_build(settings_of(ctx), campaign_name, by or "", since, today))
    _show(result, csv_file, png_dir)


def _show(result: Report, csv_file: Path | None, png_dir: Path | None) -> None:
    from reports.csvout import write_csv
    from reports.plots import write_plots
    from reports.tables import render

    render(console, result)
    if csv_file is not None:
        console.print(f"CSV: {write_csv(result, csv_file)}", highlight=False)
    if png_dir is not None:
        paths = write_plots(result, png_dir)  # no event loop runs here: drawing blocks nothing
        console.print("plots: " + ", ".join(str(p) for p in paths), highlight=False)


async def _build(s: Settings, name: str, by: str, since: date | None, today: date) -> Report:
    from reports.build import build_report

    store = await open_store(s)
    try:
        campaign = await campaign_named(store, name)
        return await build_report(store, campaign, by=by, since=since, today=today)
    finally:
        await store.close()


def parse_since(text: str, today: date) -> date:
    try:
        since = date.fromisoformat(text)
    except ValueError as exc:
        raise DueCallError(f"--since {text!r}: not a date like 2026-11-01") from exc
    if since > today:
        raise DueCallError(f"--since {since}: after today ({today}), so the period is empty")
    return since

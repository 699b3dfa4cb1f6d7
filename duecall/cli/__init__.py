"""The `duecall` command: one main group; each area's commands live in their own module.

The main group is the one error boundary (`errors.DueCallGroup`): commands raise, it prints.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from dialer.core.config import Settings, load_settings
from dialer.core.private_files import set_private_umask, tighten
from duecall import logs
from duecall.cli import (
    accounts,
    asterisk,
    audit,
    campaign,
    ivr,
    payments,
    policy,
    postgres,
    report,
    sms,
    strategy,
)
from duecall.cli._shared import console, settings_of
from duecall.cli.errors import DueCallGroup


@click.group(cls=DueCallGroup)  # the one place where errors become one line (duecall/cli/errors.py)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Settings file (default: $DUECALL_CONFIG or ./duecall.toml).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, verbose: int) -> None:
    """DueCall: compliant payment-reminder calls through Asterisk."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format=logs.TEXT_FORMAT)
    # Borrowers' data and secrets: all this process, its workers and its Asterisk create is private.
    caller_umask = set_private_umask()
    ctx.call_on_close(lambda: os.umask(caller_umask))  # for in-process callers (tests)
    ctx.obj = {"settings": load_settings(config_path)}
    if ctx.obj["settings"].logging.format == "json":  # [logging] format (docs/monitoring.md)
        logs.use_format("json")
    _tighten_folders(ctx.obj["settings"])


def _tighten_folders(s: Settings) -> None:
    """Folders an older version made readable by everyone; closing them hides the files inside."""
    state = s.path(s.asterisk.state_dir)
    for folder in (s.path(s.dialer.recordings_dir), s.path(s.ivr.prompts_dir), state / "rejects"):
        tighten(folder)


@main.command("demo")
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Start Asterisk, import ~20 simulated borrowers, call them all and print the outcomes."""
    from duecall.demo import run_demo  # the demo loads only for this command

    run_demo(settings_of(ctx), console)


for command in (
    accounts.accounts,
    asterisk.asterisk,
    audit.audit,
    audit.recordings,
    campaign.campaign,
    campaign.run_campaign,
    campaign.status,
    ivr.ivr,
    payments.payments,
    policy.policy,
    postgres.postgres,
    report.report,
    sms.sms,
    strategy.strategy,
):
    main.add_command(command)

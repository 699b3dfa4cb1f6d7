"""`duecall asterisk up|down|status`."""

from __future__ import annotations

import click

from dialer.asterisk import host as asterisk_host
from duecall.cli._shared import console, settings_of
from duecall.runtime import start_asterisk


@click.group()
def asterisk() -> None:
    """Provision, start and stop the Asterisk that DueCall drives."""


@asterisk.command("up")
@click.pass_context
def asterisk_up(ctx: click.Context) -> None:
    """Install Asterisk if needed (system one, else a Debian sid chroot) and start it."""
    s = settings_of(ctx)
    creds = start_asterisk(s)
    console.print(f"Asterisk is up; AMI on {creds.host}:{creds.port} (user {creds.username}).")


@asterisk.command("down")
@click.pass_context
def asterisk_down(ctx: click.Context) -> None:
    """Stop DueCall's Asterisk."""
    s = settings_of(ctx)
    asterisk_host.stop(s.path(s.asterisk.state_dir))
    console.print("Asterisk is stopped.")


@asterisk.command("status")
@click.pass_context
def asterisk_status(ctx: click.Context) -> None:
    """Say whether DueCall's Asterisk runs, which one and where."""
    s = settings_of(ctx)
    console.print(asterisk_host.status(s.path(s.asterisk.state_dir)))

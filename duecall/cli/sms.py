"""`duecall sms ...`: templates (validate, lint, render) and the embedded gateway (up, down, status)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from duecall.cli._shared import console, settings_of, validate_each
from sms import kannel
from sms.lint import lint, sample_fields
from sms.templates import load_located, load_templates, render

FILES = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def sms() -> None:
    """Text templates (validate, lint, render) and the SMS gateway, Kannel (up, down, status)."""


@sms.command("validate")
@click.argument("files", nargs=-1, required=True, type=FILES)
def sms_validate(files: tuple[Path, ...]) -> None:
    """Check template files; errors name the file, line and field."""
    validate_each(files, load_templates, lambda t: f"{t.locale}, {len(t.messages)} messages")


@sms.command("lint")
@click.argument("files", nargs=-1, required=True, type=FILES)
@click.option("--policy", required=True, help="Contact policy: us-regf, us-ma, cn, cn-as-written.")
def sms_lint(files: tuple[Path, ...], policy: str) -> None:
    """Check template files against what a contact policy requires of a text."""
    problems: list[str] = []
    for path in files:
        problems += lint(*load_located(path), policy)
    for problem in problems:
        console.print(problem, highlight=False)
    if problems:
        sys.exit(1)
    console.print(f"{len(files)} template file(s) meet the {policy} requirements.")


@sms.command("render")
@click.argument("file", type=FILES)
@click.option("--message", "only", default=None, help="One message by name (default: all).")
def sms_render(file: Path, only: str | None) -> None:
    """Show each message with long sample values, its coding (GSM-7 or UCS-2) and segments."""
    templates = load_templates(file)
    fields = sample_fields(templates)
    for name in [only] if only else list(templates.messages):
        done = render(templates, name, fields)
        console.print(f"{name} ({done.encoding.describe()}):\n  {done.text}", highlight=False)


@sms.command("up")
@click.pass_context
def sms_up(ctx: click.Context) -> None:
    """Render Kannel's configuration under the state folder and (re)start bearerbox and smsbox."""
    s = settings_of(ctx)
    endpoint = kannel.start(s.sms, s.path(s.sms.state_dir))
    console.print(f"Kannel is up; sendsms on {endpoint.host}:{endpoint.port} (user {endpoint.username}).")


@sms.command("down")
@click.pass_context
def sms_down(ctx: click.Context) -> None:
    """Stop DueCall's Kannel."""
    s = settings_of(ctx)
    kannel.stop(s.sms, s.path(s.sms.state_dir))
    console.print("Kannel is stopped.")


@sms.command("status")
@click.pass_context
def sms_status(ctx: click.Context) -> None:
    """Say whether DueCall's Kannel runs and where it listens."""
    s = settings_of(ctx)
    console.print(kannel.status(s.sms, s.path(s.sms.state_dir)))

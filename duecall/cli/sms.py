"""`duecall sms ...`: templates (validate, lint, render) and the embedded gateway (up, down, status)."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from dialer.core.clock import SystemClock
from dialer.core.config import Settings
from dialer.store import Store
from duecall import texts
from duecall.cli._shared import console, settings_of, validate_each
from duecall.storage import open_store
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


@sms.command("send")
@click.argument("campaign_name", metavar="CAMPAIGN")
@click.option("--message", required=True, help="The template message to send, e.g. due_today.")
@click.option(
    "--batch", default=None, help="Batch name (default CAMPAIGN/MESSAGE/UTC-date): one text per account."
)
@click.option(
    "--wait-reports", default=0.0, type=click.FloatRange(0, 3600), help="Seconds to keep receiving reports."
)
@click.pass_context
def sms_send(
    ctx: click.Context, campaign_name: str, message: str, batch: str | None, wait_reports: float
) -> None:
    """Text every account of a campaign, through the contact policy and the gateway."""
    s = settings_of(ctx)
    name, summary, rows = asyncio.run(
        texts.send_batch(s, campaign_name, message, SystemClock(), socket.gethostname(), batch, wait_reports)
    )
    counts = ", ".join(f"{n} {state}" for state, n in sorted(summary.counts().items()))
    console.print(f"batch {name}: {counts or 'no accounts'}", highlight=False)
    for result in summary.results:
        if result.state == "refused":
            console.print(f"  refused {result.request.account.account_id}: {result.reason}", highlight=False)
    console.print(_messages_table(rows))


@sms.command("serve")
@click.pass_context
def sms_serve(ctx: click.Context) -> None:
    """Receive delivery reports and replies (on 127.0.0.1, [sms] receiver_port) until stopped."""
    s = settings_of(ctx)

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await texts.serve(s, SystemClock(), socket.gethostname(), stop)

    console.print(f"receiving on 127.0.0.1:{s.sms.receiver_port}; Ctrl-C stops")
    asyncio.run(go())


@sms.command("messages")
@click.option("--batch", default=None, help="Only this batch.")
@click.pass_context
def sms_messages(ctx: click.Context, batch: str | None) -> None:
    """Every text and its state."""
    s = settings_of(ctx)
    console.print(_messages_table(asyncio.run(_read(s, lambda store: store.messages_in(batch)))))


@sms.command("inbox")
@click.option("--all", "everything", is_flag=True, help="Every inbound text, not only those for a person.")
@click.pass_context
def sms_inbox(ctx: click.Context, everything: bool) -> None:
    """Inbound texts that wait for a person (or all, with --all)."""
    s = settings_of(ctx)
    rows = asyncio.run(_read(s, lambda store: store.inbox(everything)))
    table = Table("id", "received (UTC)", "from", "account", "kind", "outcome", "text")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["received_at"],
            r["phone_e164"],
            r["account_id"],
            r["kind"],
            r["outcome"] or "",
            r["text"],
        )
    console.print(table)


async def _read(
    s: Settings, query: Callable[[Store], Awaitable[list[dict[str, Any]]]]
) -> list[dict[str, Any]]:
    store = await open_store(s)
    try:
        return await query(store)
    finally:
        await store.close()


def _messages_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("id", "account", "to", "template", "coding", "segments", "state", "reason")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["account_id"],
            r["phone_e164"],
            r["template"],
            r["coding"],
            str(r["segments"]),
            r["state"],
            r["reason"][:60],
        )
    return table

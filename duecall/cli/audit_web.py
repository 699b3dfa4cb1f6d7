"""`duecall audit serve` (the web app: the auditors' pages and the operations pages) and
`duecall audit user add|list|disable|password`."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime

import click

from audit.users import ROLES, create_user, disable_user, list_users, set_password
from duecall.cli._shared import console, operator, settings_of
from duecall.storage import open_store


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8470, show_default=True, type=click.IntRange(1, 65535))
@click.option("--secure-cookie", is_flag=True, help="Send the session cookie over HTTPS only (behind TLS).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, secure_cookie: bool) -> None:
    """Serve the web app: the auditors' pages and the operations pages (/ops); sign in with a user
    from `duecall audit user add`."""
    import uvicorn

    from audit.web.app import create_app  # the web stack loads only for this command
    from duecall.console import console_pages

    s = settings_of(ctx)
    app = create_app(s, secure_cookie=secure_cookie, bound=host, extensions=[console_pages(s)])
    console.print(f"Audit and operations pages on http://{host}:{port}/ (Ctrl-C stops it).")
    uvicorn.run(app, host=host, port=port, server_header=False, proxy_headers=False, log_level="info")


@click.group()
def user() -> None:
    """People who may sign in to the web page (auditors, operators, admins)."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="auditor", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.pass_context
def user_add(ctx: click.Context, name: str, role: str, password_stdin: bool) -> None:
    """Create a user: `auditor` opens the audit pages (read-only), `operator` the operations pages
    (campaigns, start/pause/resume, reports); both see masked names and numbers. `admin` has both
    and may reveal names and numbers."""
    s = settings_of(ctx)
    password = _password(password_stdin)

    async def go() -> None:
        store = await open_store(s)
        try:
            await create_user(store, name, role, password, operator(), datetime.now(UTC))
        finally:
            await store.close()

    asyncio.run(go())
    console.print(f"{name} ({role}) can now sign in.")


@user.command("list")
@click.pass_context
def user_list(ctx: click.Context) -> None:
    """List the users, with their roles and whether they are disabled."""
    s = settings_of(ctx)

    async def go() -> None:
        store = await open_store(s)
        try:
            for u in await list_users(store):
                disabled = f"  disabled {u.disabled_at:%Y-%m-%d %H:%M}Z" if u.disabled_at else ""
                click.echo(f"{u.name}\t{u.role}\tcreated {u.created_at:%Y-%m-%d %H:%M}Z{disabled}")
        finally:
            await store.close()

    asyncio.run(go())


@user.command("disable")
@click.argument("name")
@click.pass_context
def user_disable(ctx: click.Context, name: str) -> None:
    """Stop a user from signing in (their current session ends at its next request)."""
    s = settings_of(ctx)

    async def go() -> None:
        store = await open_store(s)
        try:
            await disable_user(store, name, operator(), datetime.now(UTC))
        finally:
            await store.close()

    asyncio.run(go())
    console.print(f"{name} can no longer sign in.")


@user.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.pass_context
def user_password(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Give a user a new password; their open sessions end at their next request."""
    s = settings_of(ctx)
    password = _password(password_stdin)

    async def go() -> None:
        store = await open_store(s)
        try:
            await set_password(store, name, password, operator(), datetime.now(UTC))
        finally:
            await store.close()

    asyncio.run(go())
    console.print(f"{name} has a new password; their open sessions have ended.")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))

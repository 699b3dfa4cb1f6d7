"""`duecall postgres up|down|status|url`: the project's own PostgreSQL cluster (docs/postgres.md)."""

from __future__ import annotations

import click

from dialer.store import pg_cluster
from duecall.cli._shared import console, settings_of


@click.group()
def postgres() -> None:
    """Start and stop DueCall's own PostgreSQL (Debian's `postgresql` package, [postgres] settings)."""


@postgres.command("up")
@click.pass_context
def postgres_up(ctx: click.Context) -> None:
    """Make the cluster on first use and start it (already running: nothing to do)."""
    s = settings_of(ctx)
    p = s.postgres
    state_dir = s.path(p.state_dir)
    server = pg_cluster.start(state_dir, host=p.host, port=p.port, fsync=p.fsync, clients=p.clients or None)
    console.print(
        f"PostgreSQL {server.version} is up on {server.host}:{server.port} "
        f"(user {server.user}, password in {pg_cluster.password_file(state_dir)}).",
        highlight=False,
    )


@postgres.command("down")
@click.pass_context
def postgres_down(ctx: click.Context) -> None:
    """Stop DueCall's PostgreSQL (open sessions are ended)."""
    s = settings_of(ctx)
    pg_cluster.stop(s.path(s.postgres.state_dir))
    console.print("PostgreSQL is stopped.")


@postgres.command("status")
@click.pass_context
def postgres_status(ctx: click.Context) -> None:
    """Say whether DueCall's PostgreSQL runs, which version, where it listens and keeps its files."""
    s = settings_of(ctx)
    console.print(pg_cluster.status(s.path(s.postgres.state_dir)))


@postgres.command("url")
@click.option("--database", default=pg_cluster.DEFAULT_DATABASE, show_default=True, help="Database name.")
@click.pass_context
def postgres_url(ctx: click.Context, database: str) -> None:
    """Print the connection URL (it holds the password: treat the output as a secret)."""
    s = settings_of(ctx)
    click.echo(pg_cluster.url(s.path(s.postgres.state_dir), database))

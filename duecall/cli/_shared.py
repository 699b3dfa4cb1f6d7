"""What every command module shares: the console, the settings, failing in one line."""

from __future__ import annotations

import asyncio
import getpass
import logging
import sys
from collections.abc import Awaitable
from typing import TypeVar

import click
from rich.console import Console

from dialer.core.config import Settings
from dialer.core.errors import DueCallError

# Not a terminal (CI logs, pipes): wide enough that tables stay readable, and messages never wrapped,
# so a long file name in an error stays one line that tools can read.
log = logging.getLogger(__name__)
_TTY = sys.stdout.isatty()
console = Console(width=None if _TTY else 140, soft_wrap=not _TTY)
T = TypeVar("T")


def settings_of(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]  # type: ignore[no-any-return]


def fail(error: Exception) -> None:
    console.print(f"[red]duecall: error:[/red] {error}", highlight=False, soft_wrap=True)
    sys.exit(1)


def run_async(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except DueCallError as error:
        fail(error)
        raise AssertionError("unreachable") from None


def operator() -> str:
    """Who the audit trail names for commands run by hand."""
    return f"operator:{getpass.getuser()}"

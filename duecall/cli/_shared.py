"""What every command module shares: the console, the settings, the operator's name.

Errors are not handled here: commands raise, and `duecall.cli.errors` prints them.
"""

from __future__ import annotations

import getpass
import logging
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
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


def settings_of(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]  # type: ignore[no-any-return]


def operator() -> str:
    """Who the audit trail names for commands run by hand."""
    return f"operator:{getpass.getuser()}"


_Loaded = TypeVar("_Loaded")
F = TypeVar("F", bound=Callable[..., object])


def validate_each(
    files: Iterable[Path], load: Callable[[Path], _Loaded], ok: Callable[[_Loaded], str]
) -> None:
    """`validate` for scripts and templates: every file is checked, each error printed; exit 1 if any."""
    failed = False
    for path in files:
        try:
            loaded = load(path)
        except DueCallError as error:
            console.print(str(error), highlight=False)
            failed = True
            continue
        console.print(f"{path}: ok ({ok(loaded)})", highlight=False)
    if failed:
        sys.exit(1)


def rejects_option(default: str) -> Callable[[F], F]:
    """`--rejects FILE`: where an import writes its rejected rows (`default` says where otherwise)."""
    return click.option(
        "--rejects",
        "rejects_file",
        type=click.Path(path_type=Path),
        default=None,
        help=f"Where to write rejected rows (default: {default}).",
    )

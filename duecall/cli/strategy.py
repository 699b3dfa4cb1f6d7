"""`duecall strategy validate`: strategies checked against the scripts, templates and packs in use."""

from __future__ import annotations

from pathlib import Path

import click

from dialer.strategy.loader import load_strategy
from duecall.cli._shared import settings_of, validate_each
from duecall.steered import known_names

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def strategy() -> None:
    """Contact strategies: validate."""


@strategy.command("validate")
@click.argument("files", nargs=-1, required=True, type=_FILE)
@click.pass_context
def strategy_validate(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Check strategies; errors name the file, line and field."""
    known = known_names(settings_of(ctx))
    validate_each(
        files,
        lambda path: load_strategy(path, known),
        lambda s: f"pack {s.pack}, {len(s.segments)} segments, {sum(len(g.steps) for g in s.segments)} steps",
    )

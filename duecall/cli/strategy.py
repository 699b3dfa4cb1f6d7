"""`duecall strategy validate`: strategies checked against the scripts, templates and packs in use."""

from __future__ import annotations

from pathlib import Path

import click

from dialer.core.config import Settings
from dialer.strategy.loader import Known, load_strategy
from duecall.cli._shared import settings_of, validate_each

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


def known_names(s: Settings) -> Known:
    """The scripts in use (by name) and the messages every template file in use has."""
    from sms.templates import load_templates  # loaded only for this command

    files = [load_templates(s.path(p)) for p in s.sms.templates]
    messages = set.intersection(*(set(t.messages) for t in files)) if files else set()
    return Known(scripts={s.path(p).stem for p in s.ivr.scripts}, messages=messages)

"""`duecall ivr validate|lint|render|try`: reminder scripts."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from duecall.cli._shared import console, settings_of, validate_each
from duecall.samples import sample_account, script_lines

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def ivr() -> None:
    """Reminder scripts: validate, lint, render, try."""


@ivr.command("validate")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def ivr_validate(files: tuple[Path, ...]) -> None:
    """Check scripts; errors name the file, line and field."""
    from ivr.script import load_script

    validate_each(files, load_script, lambda script: f"{script.locale}, {len(script.nodes)} nodes")


@ivr.command("lint")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--policy", required=True, help="Contact policy: us-regf, us-ma, cn, cn-as-written.")
def ivr_lint(files: tuple[Path, ...], policy: str) -> None:
    """Check scripts against what a contact policy requires."""
    from ivr.lint import lint_file

    problems: list[str] = []
    for path in files:
        problems += lint_file(path, policy)
    for problem in problems:
        console.print(problem, highlight=False)
    if problems:
        sys.exit(1)
    console.print(f"{len(files)} script(s) meet the {policy} requirements.")


@ivr.command("render")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the WAV files (default: var/render/<script>).",
)
@click.pass_context
def ivr_render(ctx: click.Context, file: Path, out: Path | None) -> None:
    """Render every prompt of a script (with a sample borrower) to 8 kHz WAV files for a listen."""
    from duecall.runtime import prompt_cache
    from ivr.script import load_script

    s = settings_of(ctx)
    script = load_script(file)
    folder = out or s.path(s.asterisk.state_dir) / "render" / script.name
    texts = script_lines(script)

    async def go() -> list[tuple[str, Path]]:
        cache = prompt_cache(s)  # the voices a call would hear: piper where configured
        voice = cache.voice(script.locale, script.voice, script.rate)
        try:
            return [(where, await cache.render(text, voice)) for where, text in texts]
        finally:
            await cache.close()

    folder.mkdir(parents=True, exist_ok=True)
    for where, path in asyncio.run(go()):
        target = folder / f"{where.replace('nodes.', '').replace('.', '-')}.wav"
        target.write_bytes(path.read_bytes())
        console.print(f"{target}", highlight=False)


@ivr.command("try")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def ivr_try(file: Path) -> None:
    """Play a script in the terminal: type keys, words or dates as the borrower would."""
    from datetime import UTC, datetime

    from ivr.console import ConsoleIo
    from ivr.flow import IvrRun
    from ivr.script import load_script
    from ivr.service import account_fields
    from ivr.spoken import spoken_date

    script = load_script(file)
    fields = account_fields(script, sample_account(script.locale))

    async def opt_out() -> None:
        console.print("  (opt-out recorded)")

    flow = IvrRun(
        script,
        fields,
        ConsoleIo(),
        lambda: datetime.now(UTC),
        opt_out,
        lambda d: spoken_date(d, script.locale),
    )
    result = asyncio.run(flow.run())
    console.print(
        f"outcome: {result.outcome}  promised date: {result.promised_date}  "
        f"right party: {result.right_party}  nodes: {' > '.join(result.nodes)}"
    )

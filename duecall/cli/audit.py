"""`duecall audit ...` and `duecall recordings ...`: verify the trail, anchor its head, purge by retention."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from audit.bundle_chain import check_bundle_against_store
from audit.bundle_check import BundleReport, Verdict, check_bundle
from audit.verify import VerifyReport, last_anchor, read_anchors, reading, store_head, verify_store
from dialer.core.clock import SystemClock
from dialer.core.config import Settings
from dialer.core.errors import ConfigError, DueCallError
from duecall.cli._shared import console, operator, settings_of
from duecall.cli.audit_web import serve, user
from duecall.storage import open_store


@click.group()
def audit() -> None:
    """The tamper-evident audit trail and the auditors' web page."""


@audit.command("verify")
@click.option(
    "--anchors",
    type=click.Path(path_type=Path),
    help="Heads recorded earlier (default: [audit] anchor_file).",
)
@click.option(
    "--since-last-anchor",
    is_flag=True,
    help="Check only what came after the newest anchor (fast, for daily runs; a full check weekly).",
)
@click.pass_context
def verify_command(ctx: click.Context, anchors: Path | None, since_last_anchor: bool) -> None:
    """Check every link of the chain and every recording's hash; name the first broken link."""
    s = settings_of(ctx)
    anchor_file = anchors or s.anchor_path()
    with _bad_anchors():
        since = None
        if since_last_anchor:
            since = last_anchor(anchor_file) if anchor_file and anchor_file.exists() else None
            if since is None:
                raise DueCallError(f"{anchor_file}: no anchor yet (run `duecall audit anchor`)")
        report = asyncio.run(_verify(s, anchor_file, since))
    _print_report(report)
    sys.exit(0 if report.ok else 1)


async def _verify(s: Settings, anchors: Path | None, since: tuple[int, str] | None) -> VerifyReport:
    async with reading(s) as reads:
        return await verify_store(reads, anchors, since)


@contextmanager
def _bad_anchors() -> Iterator[None]:
    """audit.verify says what is wrong with an anchor file (a bad line, not UTF-8) with ValueError:
    the user's file, so a DueCallError (one line), not a bug's traceback."""
    try:
        yield
    except ValueError as error:
        raise DueCallError(str(error)) from error


def _print_report(r: VerifyReport) -> None:
    after = f" after the anchor at event {r.from_seq}" if r.from_seq else ""
    console.print(
        f"chain: {r.events} events checked{after} in {r.chain_seconds:.2f} s; head {r.head_seq} {r.head_hash}"
    )
    if r.broken is not None:
        console.print(f"[red]BROKEN[/red] at {r.broken}", highlight=False)
    console.print(
        f"recordings: {r.recordings_checked} checked in {r.recordings_seconds:.2f} s, "
        f"{r.recordings_purged} purged by retention"
    )
    for problem in r.recording_problems:
        console.print(f"[red]RECORDING[/red] {problem}", highlight=False)
    if r.messages_checked:
        console.print(f"texts: {r.messages_checked} checked against the chain")
    for problem in r.message_problems:
        console.print(f"[red]TEXT[/red] {problem}", highlight=False)
    if r.anchors_checked:
        console.print(f"anchors: {r.anchors_checked} checked")
    for problem in r.anchor_problems:
        console.print(f"[red]ANCHOR[/red] {problem}", highlight=False)
    console.print("[green]verified[/green]" if r.ok else "[red]verification FAILED[/red]")


@audit.command("anchor")
@click.pass_context
def anchor_command(ctx: click.Context) -> None:
    """Append the chain's head to the anchor file; keep a copy of that file off this machine."""
    s = settings_of(ctx)
    target = s.anchor_path()
    if target is None:
        raise ConfigError("no [audit] anchor_file is set")
    seq, digest = asyncio.run(_head(s))
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as f:
        f.write(f"{seq} {digest} {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}\n")
    console.print(f"{target}: head {seq} {digest}")


async def _head(s: Settings) -> tuple[int, str]:
    async with reading(s) as reads:
        return await store_head(reads)


@audit.command("check-bundle")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--anchors",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Heads you recorded (`duecall audit anchor` lines) that the bundle must lead to.",
)
@click.option(
    "--against-chain",
    is_flag=True,
    help="Compare the bundle with this server's chain (where the database is; what a masked bundle needs).",
)
@click.pass_context
def check_bundle_command(ctx: click.Context, bundle: Path, anchors: Path | None, against_chain: bool) -> None:
    """Re-check an exported evidence bundle (ZIP) and say what it proves.

    Exit 0: verified (every event and recording tied to your anchors); 1: something is wrong or the
    bundle was refused; 2: nothing wrong found, but not everything could be tied (e.g. a masked bundle
    offline, or no --anchors).
    """
    with _bad_anchors():
        held = read_anchors(anchors) if anchors else {}
        if against_chain:
            s = settings_of(ctx)
            report = asyncio.run(_check_bundle(s, bundle, held))
        else:
            report = check_bundle(bundle, held)
    _print_bundle_report(bundle, report)
    sys.exit(int(report.verdict))


async def _check_bundle(s: Settings, bundle: Path, anchors: dict[int, str]) -> BundleReport:
    async with reading(s) as reads:
        return await check_bundle_against_store(bundle, reads, anchors)


def _print_bundle_report(bundle: Path, r: BundleReport) -> None:
    kind = "masked (names and numbers hidden)" if r.masked else "unmasked"
    console.print(f"{bundle}: {kind}, {r.events} events, {r.recordings} recordings", highlight=False)
    for line in r.proves:
        console.print(f"  proves: {line}", highlight=False)
    for line in r.cannot:
        console.print(f"  cannot prove: {line}", highlight=False)
    for problem in r.problems:
        console.print(f"[red]PROBLEM[/red] {problem}", highlight=False)
    verdicts = {
        Verdict.VERIFIED: "[green]verified[/green]: every event and recording is tied to your anchors",
        Verdict.FAILED: "[red]verification FAILED[/red]",
        Verdict.NOT_VERIFIED: "[yellow]NOT VERIFIED[/yellow]: nothing wrong found, but not everything is "
        "tied to an anchor you hold (see 'cannot prove')",
    }
    console.print(verdicts[r.verdict], highlight=False)


@click.group()
def recordings() -> None:
    """Call recordings: retention."""


@recordings.command("purge")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.pass_context
def purge_command(ctx: click.Context, dry_run: bool) -> None:
    """Remove recordings older than [audit] recordings_retention; each removal goes into the chain."""
    s = settings_of(ctx)
    removed = asyncio.run(purge(s, SystemClock().now(), dry_run, operator()))
    verb = "would remove" if dry_run else "removed"
    console.print(f"{verb} {removed} recordings (retention {s.audit.recordings_retention.days} days)")


async def purge(s: Settings, now: datetime, dry_run: bool, actor: str) -> int:
    retention: timedelta = s.audit.recordings_retention
    store = await open_store(s)
    try:
        due = await store.purgeable(now - retention)
        for attempt_id, path, sha256 in due:
            console.print(f"{'would remove' if dry_run else 'removing'} {path} (attempt {attempt_id})")
            if dry_run:
                continue
            await asyncio.to_thread(_remove, Path(path))
            reason = f"retention {retention.days} days"
            await store.mark_purged(attempt_id, path, sha256, now, actor, reason)
    finally:
        await store.close()
    return len(due)


def _remove(file: Path) -> None:
    file.unlink(missing_ok=True)
    folder = file.parent
    if folder.name.endswith("-replies") and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


# The web page's own commands live beside it.
audit.add_command(serve)
audit.add_command(user)

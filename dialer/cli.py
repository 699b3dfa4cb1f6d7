"""The `duecall` command."""

from __future__ import annotations

import asyncio
import getpass
import importlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from audit.changes import record_config
from dialer import asterisk_host
from dialer.accounts import ImportSettings
from dialer.ami import AmiEndpoint
from dialer.clock import Clock, SystemClock
from dialer.config import Settings, load_settings
from dialer.engine import Dialer, RunSummary
from dialer.errors import DueCallError
from dialer.importing import count_data_lines, import_accounts
from dialer.models import Account
from dialer.policy import PackGate, pack_from_settings
from dialer.private_files import set_private_umask, tighten
from dialer.store import Store

if TYPE_CHECKING:
    from ivr.service import IvrService

# Not a terminal (CI logs, pipes): wide enough that tables stay readable, and messages never wrapped,
# so a long file name in an error stays one line that tools can read.
log = logging.getLogger(__name__)
_TTY = sys.stdout.isatty()
console = Console(width=None if _TTY else 140, soft_wrap=not _TTY)
T = TypeVar("T")


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]  # type: ignore[no-any-return]


def _fail(error: Exception) -> None:
    console.print(f"[red]duecall: error:[/red] {error}", highlight=False, soft_wrap=True)
    sys.exit(1)


def run_async(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except DueCallError as error:
        _fail(error)
        raise AssertionError("unreachable") from None


class _Commands(click.Group):
    """Adds the command groups that live in other packages (audit/), imported only when used."""

    elsewhere: ClassVar[dict[str, str]] = {"audit": "audit.cli:audit", "recordings": "audit.cli:recordings"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.elsewhere])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.elsewhere:
            module, name = self.elsewhere[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module), name)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Settings file (default: $DUECALL_CONFIG or ./duecall.toml).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, verbose: int) -> None:
    """DueCall: compliant payment-reminder calls through Asterisk."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Borrowers' data and secrets: all this process, its workers and its Asterisk create is private.
    caller_umask = set_private_umask()
    ctx.call_on_close(lambda: os.umask(caller_umask))  # for in-process callers (tests)
    try:
        ctx.obj = {"settings": load_settings(config_path)}
    except DueCallError as error:
        _fail(error)
    _tighten_folders(ctx.obj["settings"])


def _tighten_folders(s: Settings) -> None:
    """Folders an older version made readable by everyone; closing them hides the files inside."""
    state = s.path(s.asterisk.state_dir)
    for folder in (s.path(s.dialer.recordings_dir), s.path(s.ivr.prompts_dir), state / "rejects"):
        tighten(folder)


# -- asterisk ---------------------------------------------------------------


@main.group()
def asterisk() -> None:
    """Provision, start and stop the Asterisk that DueCall drives."""


@asterisk.command("up")
@click.pass_context
def asterisk_up(ctx: click.Context) -> None:
    """Install Asterisk if needed (system one, else a Debian sid chroot) and start it."""
    s = _settings(ctx)
    try:
        creds = start_asterisk(s)
    except DueCallError as error:
        _fail(error)
    console.print(f"Asterisk is up; AMI on {creds.host}:{creds.port} (user {creds.username}).")


def start_asterisk(s: Settings) -> asterisk_host.AmiCredentials:
    a = s.asterisk
    install = asterisk_host.provision(s.root, s.path(a.state_dir), s.path(a.cache_dir), a.ami_port)
    return asterisk_host.start(install, s.root, s.path(a.state_dir), a.ami_port)


@asterisk.command("down")
@click.pass_context
def asterisk_down(ctx: click.Context) -> None:
    """Stop DueCall's Asterisk."""
    s = _settings(ctx)
    asterisk_host.stop(s.path(s.asterisk.state_dir))
    console.print("Asterisk is stopped.")


@asterisk.command("status")
@click.pass_context
def asterisk_status(ctx: click.Context) -> None:
    """Say whether DueCall's Asterisk runs, which one and where."""
    s = _settings(ctx)
    console.print(asterisk_host.status(s.path(s.asterisk.state_dir)))


def endpoint(s: Settings) -> AmiEndpoint:
    creds = asterisk_host.load_credentials(s.path(s.asterisk.state_dir), s.asterisk.ami_port)
    return AmiEndpoint(s.asterisk.ami_host, creds.port, creds.username, creds.secret)


# -- accounts ---------------------------------------------------------------


@main.group()
def accounts() -> None:
    """Borrowers: import, opt-outs."""


@accounts.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--rejects",
    "rejects_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write rejected rows (default: var/rejects/<file>-<import id>.csv).",
)
@click.pass_context
def accounts_import(ctx: click.Context, file: Path, rejects_file: Path | None) -> None:
    """Import (or update) borrowers from a CSV file."""
    s = _settings(ctx)
    run_async(_import(s, file, rejects_file))


async def _import(s: Settings, file: Path, rejects_file: Path | None) -> None:
    a = s.accounts
    parse = ImportSettings(a.default_region, a.default_currency, a.default_language)
    target = rejects_file or s.path(s.asterisk.state_dir) / "rejects" / f"{file.stem}-rejects.csv"
    store = await open_store(s)
    try:
        with _progress() as progress:
            task = progress.add_task(f"importing {file.name}", total=count_data_lines(file))
            report = await import_accounts(
                store, file, parse, SystemClock().now(), target, lambda n: progress.advance(task, n)
            )
    finally:
        await store.close()
    console.print(
        f"{file}: {report.rows} rows: {report.inserted} new, {report.updated} updated, "
        f"{len(report.rejects)} rejected (import {report.import_id})."
    )
    for reject in report.rejects[:20]:
        console.print(f"  row {reject.row_number}: {reject.reason}", highlight=False)
    if len(report.rejects) > 20:
        console.print(f"  ... and {len(report.rejects) - 20} more")
    if report.rejects_file:
        console.print(f"Rejected rows kept in {report.rejects_file} (fix and import it again).")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


@accounts.command("opt-out")
@click.argument("phone")
@click.option("--channel", type=click.Choice(["voice", "sms", "all"]), default="all")
@click.pass_context
def accounts_opt_out(ctx: click.Context, phone: str, channel: str) -> None:
    """Record that a number must not be contacted (E.164, e.g. +8613912345678)."""
    s = _settings(ctx)

    async def go() -> None:
        store = await open_store(s)
        try:
            for name in ["voice", "sms"] if channel == "all" else [channel]:
                await store.opt_out(phone, name, SystemClock().now(), "operator", actor=operator())
        finally:
            await store.close()

    run_async(go())
    console.print(f"{phone}: opted out of {channel}.")


@accounts.command("preferences")
@click.argument("phone")
@click.option(
    "--inconvenient",
    multiple=True,
    metavar="HH:MM-HH:MM",
    help="A daily time, local to the borrower, they said is inconvenient (repeatable).",
)
@click.option(
    "--consent",
    multiple=True,
    metavar="FROM/TO",
    help="A window (RFC 3339 times) in which they consented to be called (repeatable).",
)
@click.pass_context
def accounts_preferences(
    ctx: click.Context, phone: str, inconvenient: tuple[str, ...], consent: tuple[str, ...]
) -> None:
    """Record when a borrower may not (or may) be called; replaces what was recorded before."""
    from datetime import datetime, time

    from dialer.models import Preferences

    try:
        ranges = tuple(tuple(time.fromisoformat(x) for x in r.split("-")) for r in inconvenient)
        windows = tuple(tuple(datetime.fromisoformat(x) for x in c.split("/")) for c in consent)
        if any(len(r) != 2 for r in ranges) or any(len(w) != 2 or w[0].tzinfo is None for w in windows):
            raise ValueError("expected HH:MM-HH:MM and FROM/TO with UTC offsets")
    except ValueError as exc:
        _fail(DueCallError(f"preferences: {exc}"))
    prefs = Preferences(ranges, windows)  # type: ignore[arg-type]
    s = _settings(ctx)

    async def go() -> None:
        store = await open_store(s)
        try:
            await store.set_preferences(phone, prefs, SystemClock().now(), operator())
        finally:
            await store.close()

    run_async(go())
    console.print(f"{phone}: {len(ranges)} inconvenient time(s), {len(windows)} consent window(s) recorded.")


def operator() -> str:
    """Who the audit trail names for commands run by hand."""
    return f"operator:{getpass.getuser()}"


async def open_store(s: Settings) -> Store:
    return await Store.open(s.path(s.store.path), s.store.synchronous)


# -- campaigns --------------------------------------------------------------


@main.group()
def campaign() -> None:
    """Campaigns: which accounts to call."""


@campaign.command("create")
@click.argument("name")
@click.option("--account", "account_ids", multiple=True, help="Only these account ids (repeatable).")
@click.pass_context
def campaign_create(ctx: click.Context, name: str, account_ids: tuple[str, ...]) -> None:
    """Create a campaign (or add accounts to it): every imported account unless --account is given."""
    s = _settings(ctx)

    async def go() -> int:
        store = await open_store(s)
        try:
            found = await store.create_campaign(name, SystemClock().now(), operator())
            return await store.add_targets(found.id, SystemClock().now(), list(account_ids) or None)
        finally:
            await store.close()

    added = run_async(go())
    console.print(f"campaign {name}: {added} accounts added.")


@main.command("run")
@click.argument("campaign_name", metavar="CAMPAIGN")
@click.option("--exit-when-idle", is_flag=True, help="Exit when nothing is due now (for cron).")
@click.pass_context
def run_campaign(ctx: click.Context, campaign_name: str, exit_when_idle: bool) -> None:
    """Place the campaign's calls until every account is settled (Ctrl-C stops gracefully)."""
    s = _settings(ctx)
    summary = run_async(dial(s, campaign_name, SystemClock(), timedelta(0) if exit_when_idle else None))
    _print_summary(summary)


async def dial(
    s: Settings, campaign_name: str, clock: Clock, idle_horizon: timedelta | None, **dialer_args: Any
) -> RunSummary:
    store = await open_store(s)
    try:
        found = await store.campaign(campaign_name)
        if found is None:
            raise DueCallError(
                f"no campaign named {campaign_name!r} (create it with `duecall campaign create`)"
            )
        policy = PackGate(pack_from_settings(s.policy))
        ivr = build_ivr(s, store, clock) if s.ivr.enabled else None
        dialer = Dialer(s, store, found, policy, clock, endpoint(s), ivr=ivr, **dialer_args)
        changed = await record_config(store, s, clock.now(), f"dialer:{dialer.dialer_id}")
        if changed:
            log.info("configuration changes recorded in the audit trail: %s", ", ".join(changed))
        try:
            with _signals(dialer.stop):
                return await dialer.run(idle_horizon)
        finally:
            if ivr is not None:
                await ivr.close()
    finally:
        await store.close()


def build_ivr(s: Settings, store: Store, clock: Clock) -> IvrService:
    """The IVR the dialer runs answered calls through (scripts, prompts, speech, FastAGI)."""
    from ivr.service import IvrService
    from ivr.speech import Recognizer, find_model
    from ivr.tts import PromptCache

    i = s.ivr
    recognizer = None
    if i.speech_model:
        model = find_model(None if i.speech_model == "package" else str(s.path(Path(i.speech_model))))
        recognizer = Recognizer(model, i.speech_workers)

    async def opt_out(account: Account, attempt_id: int) -> None:
        for channel in ("voice", "sms"):  # recorded at once: no further calls or SMS
            await store.opt_out(account.phone_e164, channel, clock.now(), "ivr", attempt_id=attempt_id)

    prompts = PromptCache(s.path(i.prompts_dir), i.tts_workers)
    paths = [s.path(p) for p in i.scripts]
    return IvrService.load(paths, i.default_locale, prompts, recognizer, opt_out, i.agi_port, clock.now)


class _signals:
    """SIGINT/SIGTERM ask the dialer to stop; the previous handlers come back afterwards."""

    def __init__(self, handler: Callable[[], None]) -> None:
        self.handler = handler

    def __enter__(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handler)

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _print_summary(summary: RunSummary) -> None:
    console.print(
        f"placed {summary.placed} calls, {summary.finished} finished, "
        f"{summary.blocked} deferred by policy, {summary.reconciled} reconciled from an earlier run."
    )
    if summary.left_open:
        console.print(f"left open (reconciled next run): attempts {summary.left_open}")
    if summary.answer_to_audio:
        console.print(ivr_figures(summary))


def ivr_figures(summary: RunSummary) -> str:
    delays = sorted(summary.answer_to_audio)
    p50 = delays[len(delays) // 2]
    p95 = delays[min(len(delays) - 1, int(len(delays) * 0.95))]
    total = summary.prompt_hits + summary.prompt_renders
    rate = summary.prompt_hits / total if total else 0.0
    return (
        # From the dialplan's answer to the IVR starting the first prompt (docs/benchmarks.md).
        f"answer to first prompt start: p50 {1000 * p50:.1f} ms, p95 {1000 * p95:.1f} ms "
        f"({len(delays)} calls); prompt cache: {summary.prompt_hits} hits, "
        f"{summary.prompt_renders} rendered ({100 * rate:.0f}% hit rate)"
    )


@main.command("status")
@click.argument("campaign_name", metavar="CAMPAIGN")
@click.pass_context
def status(ctx: click.Context, campaign_name: str) -> None:
    """Counts by disposition and what is scheduled next."""
    s = _settings(ctx)

    async def go() -> None:
        store = await open_store(s)
        try:
            found = await store.campaign(campaign_name)
            if found is None:
                raise DueCallError(f"no campaign named {campaign_name!r}")
            st = await store.status(found)
        finally:
            await store.close()
        console.print(_counts_table("Accounts by state", st.targets_by_state))
        console.print(_counts_table("Attempts by disposition", st.attempts_by_disposition))
        if st.outcomes:
            console.print(_counts_table("What answered borrowers chose", st.outcomes))
        upcoming = Table("next call (UTC)", "account", "phone", "why waiting", title="Scheduled next")
        for at, account_id, phone, note in st.next_due:
            upcoming.add_row(f"{at:%Y-%m-%d %H:%M:%S}", account_id, phone, note)
        console.print(upcoming)

    run_async(go())


def _counts_table(title: str, counts: dict[str, int]) -> Table:
    table = Table("", "count", title=title)
    for key, value in sorted(counts.items()):
        table.add_row(key, str(value))
    table.add_row("[b]total[/b]", str(sum(counts.values())))
    return table


@main.command("demo")
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Start Asterisk, import ~20 simulated borrowers, call them all and print the outcomes."""
    from dialer.demo import run_demo

    try:
        run_demo(_settings(ctx), console)
    except DueCallError as error:
        _fail(error)


# -- IVR scripts ------------------------------------------------------------

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@main.group()
def ivr() -> None:
    """Reminder scripts: validate, lint, render, try."""


@ivr.command("validate")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def ivr_validate(files: tuple[Path, ...]) -> None:
    """Check scripts; errors name the file, line and field."""
    from ivr.script import load_script

    failed = False
    for path in files:
        try:
            script = load_script(path)
        except DueCallError as error:
            console.print(str(error), highlight=False)
            failed = True
            continue
        console.print(f"{path}: ok ({script.locale}, {len(script.nodes)} nodes)", highlight=False)
    if failed:
        sys.exit(1)


@ivr.command("lint")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--policy", required=True, help="Contact policy: us-regf, us-ma, cn, cn-as-written.")
def ivr_lint(files: tuple[Path, ...], policy: str) -> None:
    """Check scripts against what a contact policy requires."""
    from ivr.lint import lint_file

    problems: list[str] = []
    try:
        for path in files:
            problems += lint_file(path, policy)
    except DueCallError as error:
        _fail(error)
    for problem in problems:
        console.print(problem, highlight=False)
    if problems:
        sys.exit(1)
    console.print(f"{len(files)} script(s) meet the {policy} requirements.")


def _sample_account(locale: str) -> Account:
    from datetime import date

    names = {"zh-CN": "王伟", "ko-KR": "김민준"}
    currency = {"zh-CN": "CNY", "ko-KR": "KRW"}.get(locale, "USD")
    amount = 1234000 if currency == "KRW" else 123450
    return Account(
        0,
        "SAMPLE",
        "SAMPLE",
        names.get(locale, "Olivia Smith"),
        "+10000000000",
        (),
        False,
        amount,
        currency,
        date.today() + timedelta(days=3),
        locale,
    )


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
    from ivr.script import load_script
    from ivr.service import account_fields
    from ivr.spoken import spoken_date
    from ivr.tts import PromptCache, Voice, voice_for

    s = _settings(ctx)
    try:
        script = load_script(file)
    except DueCallError as error:
        _fail(error)
    folder = out or s.path(s.asterisk.state_dir) / "render" / script.name
    sample = _sample_account(script.locale)
    fields = {**account_fields(script, sample), "promised_date": spoken_date(sample.due_date, script.locale)}
    voice = Voice(script.voice or voice_for(script.locale).name, script.rate)

    async def go() -> list[tuple[str, Path]]:
        cache = PromptCache(s.path(s.ivr.prompts_dir), s.ivr.tts_workers)
        done = []
        for where, template in script.templates():
            text = template.format(**fields)
            done.append((where, await cache.render(text, voice)))
        return done

    folder.mkdir(parents=True, exist_ok=True)
    for where, path in run_async(go()):
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

    try:
        script = load_script(file)
    except DueCallError as error:
        _fail(error)
    fields = account_fields(script, _sample_account(script.locale))

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
    result = run_async(flow.run())
    console.print(
        f"outcome: {result.outcome}  promised date: {result.promised_date}  "
        f"right party: {result.right_party}  nodes: {' > '.join(result.nodes)}"
    )


# -- contact policy ---------------------------------------------------------


@main.group()
def policy() -> None:
    """The contact-policy engine."""


@policy.command("check")
@click.argument("file", type=click.File("rb"), default="-")
@click.option("--policy", "policy_name", default=None, help="Pack for lines without one (dialer/policies/).")
def policy_check(file: Any, policy_name: str | None) -> None:
    """Decide JSON-lines proposals (FILE or stdin); one JSON verdict line each (docs/policy.md)."""
    import json
    from functools import cache

    from dialer.contact_policy import decide
    from dialer.policy_io import check_lines
    from dialer.policy_packs import load_pack

    packs = cache(load_pack)
    if policy_name is not None:
        try:
            packs(policy_name)
        except DueCallError as exc:
            raise click.BadParameter(str(exc), param_hint="--policy") from None  # exit 2
    for out in check_lines(file, packs, policy_name, decide):
        click.echo(json.dumps(out, ensure_ascii=False))

"""`duecall demo`: a whole campaign against the local Asterisk with simulated borrowers.

The borrowers live where it is daytime now (their numbers come from countries
whose local time is inside the calling window), except two who live where it
is night: the policy defers them, which is the point. Their behaviour is
chosen by the last four digits of the number (docs/number-plan.md).
"""

from __future__ import annotations

import asyncio
import csv
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from dialer.accounts.importer import import_accounts
from dialer.accounts.parse import ImportSettings
from dialer.core.clock import SystemClock
from dialer.core.config import Settings
from dialer.core.dialplan import SIM_AUDIO, SIM_DELAY, SIM_KEYS, Context, sim_family
from dialer.core.models import Account, Disposition
from dialer.strategy.loader import SHIPPED_STRATEGIES
from dialer.strategy.plan import Plan
from duecall import steered
from duecall.demo.journeys import HELLO, IVR_START, Journey, plan_keys, say_seconds
from duecall.demo.texting import run_texts, texts_settings
from duecall.planning import Work, plan_on_every_core, render
from duecall.storage import open_store, sqlite_file
from ivr.service import IvrService
from ivr.tts import playback_target


@dataclass(frozen=True)
class Country:
    prefix: str  # E.164 digits before the last four (the behaviour code 01NN)
    zone: str
    currency: str
    language: str


COUNTRIES = (
    Country("+861391234", "Asia/Shanghai", "CNY", "zh-CN"),
    Country("+82101234", "Asia/Seoul", "KRW", "ko-KR"),
    Country("+44791123", "Europe/London", "GBP", "en-GB"),
    Country("+6141234", "Australia/Sydney", "AUD", "en-AU"),
    Country("+91981234", "Asia/Kolkata", "INR", "en-IN"),
    Country("+551198765", "America/Sao_Paulo", "BRL", "pt-BR"),
    Country("+1202555", "America/New_York", "USD", "en-US"),
    Country("+1312555", "America/Chicago", "USD", "en-US"),
    Country("+1602555", "America/Phoenix", "USD", "en-US"),
    Country("+1415555", "America/Los_Angeles", "USD", "en-US"),
    Country("+1808555", "Pacific/Honolulu", "USD", "en-US"),
)

STRATEGY_CAMPAIGN = "demo-strategy"
FOLLOWED = "DEMO-001"  # promises a date on today's call: silence until then, then a call

# (last four digits, what the simulated borrower does, its walk through the reminder script)
PROMISE = "PROMISE"  # replaced by a date five days ahead
BEHAVIOURS: tuple[tuple[str, str, Journey | None], ...] = (
    (
        "0101",
        "confirms, promises a date",
        Journey("promise", (("confirm", "1"), ("menu", "2"), ("promise_date", PROMISE))),
    ),
    ("0102", "is the wrong person", Journey("wrong", (("confirm", "2"),))),
    ("0103", "confirms, disputes", Journey("dispute", (("confirm", "1"), ("menu", "3")))),
    ("0104", "confirms, asks for help", Journey("hardship", (("confirm", "1"), ("menu", "4")))),
    ("0105", "asks to stop calls", Journey("opt-out", (("confirm", "9"),))),
    ("0106", "confirms, will pay today", Journey("pay", (("confirm", "1"), ("menu", "1")))),
    ("0107", "confirms, then chooses nothing", Journey("silent menu", (("confirm", "1"),))),
    (
        "0108",
        "confirms, promises a date",
        Journey("promise", (("confirm", "1"), ("menu", "2"), ("promise_date", PROMISE))),
    ),
    ("0111", "answers in Korean by voice", None),
    ("0112", "answers in Korean by voice", None),
    ("0113", "answers in English by voice (Whisper)", None),
    ("0114", "answers in Mandarin by voice (Whisper)", None),
    ("0120", "never answers", None),
    ("0130", "busy", None),
    ("0140", "congestion", None),
    ("0141", "number not in service", None),
    ("0150", "answering machine", None),
    ("0151", "answering machine", None),
    ("0160", "hangs up during the first prompt", None),
    ("0170", "answers, stays silent", None),
)
# Borrowers who answer the right-party question by voice, wherever they live: their language and
# their spoken "yes", said in the voice the demo's prompts use for that language (ivr.tts).
VOICE_BORROWERS = {
    "0111": ("ko-KR", "네"),
    "0112": ("ko-KR", "네"),
    "0113": ("en-US", "yes"),  # piper joe; recognised by Whisper
    "0114": ("zh-CN", "是"),  # espeak-ng Mandarin, which Whisper mostly mishears: then keys
}
# After speaking: 2 s of silence ends the recording, then the confirmation question plays (about
# 5 s) and waits 5 s more: a key 6 s after the words falls in that question (`W` = one second).
CONFIRM_AFTER_SPEAKING = "WWWWWW1"
NAMES = (
    "王伟",
    "김민준",
    "Olivia Smith",
    "James Johnson",
    "Maria Garcia",
    "李娜",
    "이서연",
    "Noah Brown",
    "Emma Davis",
    "张敏",
    "Liam Wilson",
    "Ava Martinez",
    "刘洋",
    "박지훈",
    "Sophia Lee",
    "Mason Clark",
    "陈静",
    "Isabella Lopez",
    "Ethan Hall",
    "Mia Young",
)


def _local_hour(zone: str, now: datetime) -> float:
    local = now.astimezone(ZoneInfo(zone))
    return local.hour + local.minute / 60


def split_countries(now: datetime) -> tuple[list[Country], list[Country]]:
    """Countries where it is daytime now (comfortably inside 08-21), and where it is night."""
    day = [c for c in COUNTRIES if 9 <= _local_hour(c.zone, now) < 19.5]
    night = [c for c in COUNTRIES if not 8 <= _local_hour(c.zone, now) < 21]
    return day, night


def _number(country: Country, last_four: str) -> str:
    return country.prefix + last_four


def write_demo_csv(path: Path, now: datetime) -> list[tuple[str, str, str]]:
    """Write the borrowers file; returns (account id, behaviour, where) for the outcome table."""
    day, night = split_countries(now)
    if not day:
        raise RuntimeError("no demo country is in daytime now")  # cannot happen with 8 zones
    rows, plan = [], []
    due = (now + timedelta(days=3)).date()
    for i, (last_four, behaviour, _) in enumerate(BEHAVIOURS):
        country = day[i % len(day)]
        rows.append(_row(i, country, last_four, due))
        if last_four in VOICE_BORROWERS:
            rows[-1][-1] = VOICE_BORROWERS[last_four][0]
        plan.append((rows[-1][0], behaviour, country.zone))
    for country in night[:2]:
        rows.append(_row(len(rows), country, "0101", due))
        plan.append((rows[-1][0], "confirms, promises a date (but it is night there)", country.zone))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "account_id",
                "debt_id",
                "name",
                "phone",
                "time_zone",
                "amount",
                "currency",
                "due_date",
                "language",
            ]
        )
        writer.writerows(rows)
        # Two bad rows, to show that they are reported and kept, not dropped.
        writer.writerow(["DEMO-BAD-1", "", "No Phone", "12345", "", "10.00", "USD", due.isoformat(), ""])
        writer.writerow(
            ["DEMO-BAD-2", "", "Bad Amount", "+12025550101", "", "ten", "USD", due.isoformat(), ""]
        )
    return plan


def _row(i: int, country: Country, last_four: str, due: date) -> list[str]:
    amount = "123400" if country.currency == "KRW" else f"{1200 + 37 * i}.50"
    zone = country.zone if i % 3 else ""  # every third row leaves the zone to the number
    return [
        f"DEMO-{i + 1:03d}",
        f"LOAN-{i + 1:03d}",
        NAMES[i % len(NAMES)],
        _number(country, last_four),
        zone,
        amount,
        country.currency,
        due.isoformat(),
        country.language,
    ]


def demo_settings(s: Settings) -> Settings:
    """Short delays and rings so the whole demo takes a couple of minutes."""
    retry = {
        d: {"delay": "5s", "max_attempts": 2}
        for d in (
            Disposition.NO_ANSWER,
            Disposition.BUSY,
            Disposition.FAILED,
            Disposition.MACHINE,
            Disposition.HUNG_UP_EARLY,
            Disposition.UNKNOWN,
        )
    }
    return s.model_validate(
        {
            **s.model_dump(),
            # The demo has its own SQLite file, whatever store the settings name.
            "store": {
                **s.store.model_dump(),
                "url": "",
                "path": s.path(s.asterisk.state_dir) / "demo" / "demo.db",
            },
            "dialer": {
                **s.dialer.model_dump(),
                "amd": True,
                "ring_timeout": timedelta(seconds=8),
                "max_concurrent": 10,
                "calls_per_second": 5,
                "trunk": f"Local/{{number}}@{Context.SIM}",
            },
            "retry": retry,
            # A STOP text also stops the IVR's calls (the shipped duecall.toml says so too).
            "policy": {**s.policy.model_dump(), "sms_opt_out_stops": ["voice"]},
        }
    )


def run_demo(settings: Settings, console: Console) -> None:
    from audit.verify import verify
    from duecall.runtime import dial, ivr_figures, start_asterisk

    started = time.monotonic()
    console.print("[b]1. Asterisk[/b]: provisioning and starting (the first time takes about a minute)")
    start_asterisk(settings)
    s = demo_settings(settings)
    db_path = sqlite_file(s)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)  # each demo starts afresh
    now = datetime.now(UTC)
    csv_path = db_path.parent / "borrowers.csv"
    plan = write_demo_csv(csv_path, now)
    console.print(f"[b]2. Import[/b]: {csv_path}")
    asyncio.run(_import_and_create(s, csv_path, console))
    console.print(
        "[b]3. Texts[/b]: reminders through the local Kannel and a simulated SMPP carrier "
        "(0141 undeliverable, 0120 expires; 0170 replies STOP, 0160 replies 退订)"
    )
    asyncio.run(run_texts(texts_settings(s, db_path.parent / "sms"), console))
    console.print("[b]4. Simulated borrowers[/b]: timing their key presses to the prompts they will hear")
    asyncio.run(program_borrowers(s, now, [account_id for account_id, _, _ in plan]))
    console.print("[b]5. Campaign[/b]: calling (retries after 5 s, at most 2 attempts)")
    calls_started = time.monotonic()
    summary = asyncio.run(dial(s, "demo", SystemClock(), timedelta(seconds=30)))
    minutes = (time.monotonic() - calls_started) / 60
    asyncio.run(_print_outcomes(s, plan, console))
    if summary.answer_to_audio:
        console.print(ivr_figures(summary) + " (AMD listens first: about 1.7 s of it)")
    console.print(
        f"placed {summary.placed} calls, {summary.finished} finished in {minutes:.1f} min "
        f"({summary.finished / max(minutes, 1e-9):.1f} calls/min); "
        f"whole demo {time.monotonic() - started:.0f} s."
    )
    demo_config = db_path.parent / "duecall.toml"
    demo_config.write_text(
        f"# Written by `duecall demo`: the demo database with the main settings.\n"
        f'[store]\npath = "{db_path}"\n[asterisk]\nstate_dir = "{s.path(s.asterisk.state_dir)}"\n'
        f'[dialer]\nrecordings_dir = "{s.path(s.dialer.recordings_dir)}"\n',
        encoding="utf-8",
    )
    report = verify(db_path)
    console.print(
        f"[b]6. Audit trail[/b]: {report.events} events, {report.recordings_checked} recordings "
        f"and {report.messages_checked} texts "
        f"checked in {report.chain_seconds + report.recordings_seconds:.2f} s: "
        + ("[green]verified[/green]" if report.ok else "[red]FAILED[/red]")
    )
    strategy = SHIPPED_STRATEGIES / f"{s.policy.pack}.yaml"  # us-regf and cn are shipped
    if strategy.is_file():
        console.print(
            f"[b]7. Contact strategy[/b]: the dry run of {strategy.name} over the next 14 days "
            "for the same borrowers, with what they did today (nothing is sent)"
        )
        render(console, STRATEGY_CAMPAIGN, asyncio.run(_plan_strategy(s, strategy, SystemClock().now())))
    plots = db_path.parent / "report"
    console.print(f"[b]8. Report[/b]: did today's reminders work (`duecall report demo --png {plots}`)")
    asyncio.run(_report(s, plots, console))
    console.print(
        f"Recordings are under {s.path(s.dialer.recordings_dir)}. See it again:\n"
        f"  duecall --config {demo_config} status demo\n"
        f"  duecall --config {demo_config} campaign plan {STRATEGY_CAMPAIGN} --account {FOLLOWED}\n"
        f"  duecall --config {demo_config} report demo --csv demo.csv --png {plots}\n"
        f"  duecall --config {demo_config} audit verify\n"
        f"  duecall --config {demo_config} audit user add admin --role admin\n"
        f"  duecall --config {demo_config} audit serve    (then open http://127.0.0.1:8470)",
        soft_wrap=True,
        highlight=False,
    )


async def _report(s: Settings, plots: Path, console: Console) -> None:
    """The demo campaign's report in the terminal, and its plots as PNG files in `plots`."""
    # Imported here: matplotlib and scipy take seconds to load, which no other command should pay.
    from reports.build import build_report
    from reports.plots import write_plots
    from reports.tables import render as render_report

    store = await open_store(s)
    try:
        campaign = await store.campaign("demo")
        assert campaign is not None
        report = await build_report(store, campaign, by="", since=None, today=datetime.now(UTC).date())
    finally:
        await store.close()
    render_report(console, report)
    paths = await asyncio.to_thread(write_plots, report, plots)
    console.print("plots: " + ", ".join(str(p) for p in paths), soft_wrap=True, highlight=False)


async def _plan_strategy(s: Settings, strategy: Path, now: datetime) -> Plan:
    """A campaign of every demo borrower following the shipped strategy, then its dry run."""
    store = await open_store(s)
    try:
        campaign = await store.create_campaign(STRATEGY_CAMPAIGN, now, "operator:demo")
        campaign = await steered.attach(store, s, campaign, strategy, now, "operator:demo")
        await steered.add_accounts(store, s, campaign, None, now, "operator:demo")
    finally:
        await store.close()
    inputs = await steered.plan_inputs(s, STRATEGY_CAMPAIGN, now)
    work = Work(inputs.snapshots, inputs.strategy_of, inputs.gate, now, 14, inputs.campaign.id, FOLLOWED)
    return plan_on_every_core(work)


async def program_borrowers(s: Settings, now: datetime, account_ids: list[str]) -> None:
    """Tell each simulated borrower (AstDB) which keys to press when, or what to say."""
    from dialer.asterisk.ami import AmiClient, AmiTimeouts
    from duecall.runtime import build_ivr, endpoint

    store = await open_store(s)
    ivr = build_ivr(
        s.model_copy(update={"ivr": s.ivr.model_copy(update={"speech_model": "", "speech": {}})}),
        store,
        SystemClock(),
    )
    client = AmiClient(endpoint(s), AmiTimeouts(), lambda m: None)
    task = asyncio.create_task(client.run())
    try:
        await client.wait_connected(10)
        for account_id in account_ids:
            account = await store.account(account_id)
            assert account is not None  # imported just before
            values = await _sim_values(ivr, account, now)
            for key, value in values.items():
                await client.send(
                    "DBPut", {"Family": sim_family(account.phone_e164.lstrip("+")), "Key": key, "Val": value}
                )
    finally:
        client.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()


async def _sim_values(ivr: IvrService, account: Account, now: datetime) -> dict[str, str]:
    last_four = account.phone_e164[-4:]  # the simulated behaviour (docs/number-plan.md)
    journeys = {code: journey for code, _, journey in BEHAVIOURS if journey is not None}
    if last_four in journeys:
        journey = journeys[last_four]
        promise = f"{(now + timedelta(days=5)).date():%Y%m%d}"
        presses = tuple((node, promise if keys == PROMISE else keys) for node, keys in journey.presses)
        keys, delay = await plan_keys(ivr, account, Journey(journey.label, presses))
        return {SIM_KEYS: keys, SIM_DELAY: f"{delay:.1f}"}
    if last_four in VOICE_BORROWERS:
        script = ivr.script_for(account)
        yes = await ivr.prompts.render(VOICE_BORROWERS[last_four][1], ivr.voice(script))  # spoken "yes"
        spoken = await say_seconds(ivr, script, account, ["intro", "confirm"])
        speaks_at = f"{IVR_START + spoken - HELLO + 0.5:.1f}"
        # A spoken "yes" is asked back ("... 맞으시면 1번"): the borrower presses 1 during that question.
        return {SIM_AUDIO: playback_target(yes), SIM_DELAY: speaks_at, SIM_KEYS: CONFIRM_AFTER_SPEAKING}
    return {}


async def _import_and_create(s: Settings, csv_path: Path, console: Console) -> None:
    store = await open_store(s)
    try:
        a = s.accounts
        report = await import_accounts(
            store,
            csv_path,
            ImportSettings(a.default_region, None, a.default_language),
            datetime.now(UTC),
            csv_path.with_name("borrowers-rejects.csv"),
        )
        console.print(
            f"   {report.inserted} borrowers imported, {len(report.rejects)} rows rejected "
            f"and kept in {report.rejects_file}:"
        )
        for reject in report.rejects:
            console.print(f"   row {reject.row_number}: {reject.reason}", highlight=False)
        campaign = await store.create_campaign("demo", datetime.now(UTC))
        await store.add_targets(campaign.id, datetime.now(UTC))
    finally:
        await store.close()


def _outcome(row: dict[str, object]) -> str:
    promised = f" {row['promised_date']}" if row.get("promised_date") else ""
    return f"{row['outcome']}{promised}"


async def _print_outcomes(s: Settings, plan: list[tuple[str, str, str]], console: Console) -> None:
    store = await open_store(s)
    try:
        campaign = await store.campaign("demo")
        assert campaign is not None
        attempts = await store.attempts_for(campaign.id)
        status = await store.status(campaign, upcoming=50)
        held = await store.fetch_all(
            "SELECT a.account_id, t.note FROM targets t JOIN accounts a ON a.id=t.account_pk "
            "WHERE t.campaign_id=? AND t.state!='pending' AND t.note!=''",
            (campaign.id,),
        )
    finally:
        await store.close()
    by_account: dict[str, list[dict[str, object]]] = {}
    for row in attempts:
        by_account.setdefault(str(row["account_id"]), []).append(row)
    waiting = {account_id: note for _, account_id, _, note in status.next_due}
    waiting |= {str(r["account_id"]): str(r["note"]) for r in held}
    table = Table(
        "account",
        "zone",
        "simulated borrower",
        "attempts",
        "dispositions",
        "keys",
        "outcome",
        title="Demo outcomes",
    )
    for account_id, behaviour, zone in plan:
        rows = by_account.get(account_id, [])
        dispositions = (
            ", ".join(str(r["disposition"]) for r in rows) or f"not called: {waiting.get(account_id, '')}"
        )
        keys = ",".join(str(r["digits"]) for r in rows if r["digits"])
        outcome = ", ".join(_outcome(r) for r in rows if r["outcome"])
        table.add_row(account_id, zone, behaviour, str(len(rows)), dispositions, keys, outcome)
    console.print(table)

"""Across hosts (issue 15 item 4): three dialers, each with its own Asterisk, on one PostgreSQL on a
host of its own, all network namespaces on this machine (tests/support/netns.py). One campaign of
simulated borrowers, two accounts per number and one call per number a day; one dialer is killed
with SIGKILL while its calls are up, another dialer's Asterisk is restarted under its calls. The
killed dialer's open attempts are closed by itself restarted, or by the others once its lease ran
out (CLOSED_BY: one run each).

Afterwards, counted on Asterisk's side (each simulated number counts the calls it receives in its
Asterisk's AstDB): no number received a call without an attempt, nor more calls than the cap;
every attempt names its dialer and ended; every dialer placed calls; the audit chain verifies.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from dialer.asterisk import host as asterisk_host
from dialer.core.config import Settings
from dialer.store import pg_cluster
from dialer.store.chain import COLUMNS, StoredEvent, first_break
from dialer.store.conn import Row
from dialer.store.postgres import PostgresStore
from tests.support import netns
from tests.support.borrowers import borrowers_csv
from tests.support.config import make_settings
from tests.support.netns import Host
from tests.support.project import STATE_DIR, daytime_zone

pytestmark = pytest.mark.asterisk

# How the killed dialer's open attempts get closed, one run of the test each, with the dialers'
# [dialer] lease. "restart": it is restarted mid-campaign and reconciles them itself (the lease is
# long: nobody takes them over meanwhile). "lease": it stays dead; the others take its attempts
# over once its lease has gone unrenewed for a whole lease.
CLOSED_BY = {"restart": "60s", "lease": "5s"}

XHOST = STATE_DIR / "test" / "xhost"
PG_DIR = XHOST / "pg"
PG_PORT = 55440
AMI_PORT = 5141  # each Asterisk's, on its own host's loopback (not the suite's 5038)
DIALERS = ("d1", "d2", "d3")
KILLED = "d1"
RESTARTED = "d2"  # the dialer whose Asterisk is restarted under its calls
CAP = 1  # calls per number a day ([policy] max_attempts_per_day)
AREAS = ("312", "415", "617", "713")
BEHAVIOURS = ("0101", "0102", "0103", "0104", "0120", "0130")  # answered (the first 4), no answer, busy
ACCOUNTS_PER_NUMBER = 2
SETTLE_SECONDS = 150.0


@dataclass(frozen=True)
class Tally:
    """One dialer's attempts (or one number's): counted ones and those whose outcome was lost."""

    counted: int  # every attempt but `not_placed` (Asterisk refused it: no call): what the cap counts
    lost: int  # `unknown`: counted, yet whether the call reached Asterisk is not known

    @property
    def known(self) -> int:
        return self.counted - self.lost


def asterisk_dir(dialer: str) -> Path:
    return XHOST / f"a{dialer.removeprefix('d')}"


@pytest.fixture
def hosts() -> Iterator[dict[str, Host]]:
    """A PostgreSQL host and three dialer hosts; their servers stopped, the hosts removed after."""
    reason = netns.impossible()
    if reason is not None:
        pytest.skip(reason)
    with netns.network(["pg", *DIALERS]) as made:
        try:
            yield made
        finally:
            for dialer in DIALERS:
                asterisk_host.stop(asterisk_dir(dialer))
            pg_cluster.stop(PG_DIR)


@pytest.mark.parametrize("closed_by", list(CLOSED_BY))
async def test_three_dialers_on_one_database_across_hosts(
    hosts: dict[str, Host], work_dir: Path, closed_by: str
) -> None:
    server = netns.start_postgres(hosts["pg"], PG_DIR, PG_PORT)
    local = replace(server, host=str(PG_DIR.resolve() / "run"))  # psql from here, over the socket
    database = f"xhost_{uuid.uuid4().hex[:12]}"
    pg_cluster.create_database(local, database)
    try:
        for dialer in DIALERS:
            asterisk_host.stop(asterisk_dir(dialer))
            shutil.rmtree(asterisk_dir(dialer), ignore_errors=True)  # a fresh AstDB: counts from zero
            netns.start_asterisk(hosts[dialer], asterisk_dir(dialer), AMI_PORT)
        configs = {
            d: dialer_settings(work_dir, d, server.url(database), CLOSED_BY[closed_by]) for d in DIALERS
        }
        store = await PostgresStore.open(netns.socket_url(server, PG_DIR, database))
        try:
            await run_campaign(hosts, configs, store, work_dir, closed_by)
        finally:
            await store.close()
    finally:
        pg_cluster.drop_database(local, database)


def dialer_settings(work_dir: Path, dialer: str, url: str, lease: str) -> Settings:
    folder = work_dir / dialer
    folder.mkdir()
    return make_settings(
        folder,
        store={"url": url},
        asterisk={
            "state_dir": str(asterisk_dir(dialer)),
            "ami_port": AMI_PORT,
        },
        dialer={
            "id": dialer,
            "lease": lease,
            "max_concurrent": 3,
            "calls_per_second": 2,
            "recordings_dir": str(folder / "recordings"),
        },
        policy={"max_attempts_per_day": CAP},
    )


def phones() -> list[str]:
    return [f"+1{area}555{behaviour}" for area in AREAS for behaviour in BEHAVIOURS]


async def run_campaign(
    hosts: dict[str, Host], configs: dict[str, Settings], store: PostgresStore, work_dir: Path, closed_by: str
) -> None:
    numbers = phones()
    zone = daytime_zone()
    rows = [(f"X{n}-{k}", phone, zone) for n, phone in enumerate(numbers) for k in range(ACCOUNTS_PER_NUMBER)]
    csv_file = borrowers_csv(work_dir / "borrowers.csv", rows)
    first = DIALERS[0]  # the campaign is imported once, from one host
    imported = cli(hosts[first], configs[first], "accounts", "import", str(csv_file))
    assert f"{len(rows)} new, 0 updated, 0 rejected" in imported, imported
    cli(hosts[first], configs[first], "campaign", "create", "test")
    campaign = await store.campaign("test")
    assert campaign is not None

    logs = {d: work_dir / d / "run-1.log" for d in DIALERS}
    runs = {d: start_dialer(hosts[d], configs[d], logs[d]) for d in DIALERS}
    try:
        await until(lambda: calls_up(store, campaign.id, KILLED), "the dialer to be killed to have calls up")
        runs[KILLED].send_signal(signal.SIGKILL)
        runs[KILLED].wait(10)
        left_open = await open_count(store, campaign.id, KILLED)
        pending_at_kill = await pending_targets(store, campaign.id)
        await until(lambda: calls_up(store, campaign.id, RESTARTED), "calls up on the Asterisk to restart")
        began = time.monotonic()
        netns.start_asterisk(hosts[RESTARTED], asterisk_dir(RESTARTED), AMI_PORT)  # stops it, calls and all
        print(f"\ncross-host: {RESTARTED}'s Asterisk restarted in {time.monotonic() - began:.1f} s")
        if closed_by == "restart":
            logs[KILLED] = work_dir / KILLED / "run-2.log"
            runs[KILLED] = start_dialer(hosts[KILLED], configs[KILLED], logs[KILLED])
        await until(lambda: exited(list(runs.values())), "the dialers to finish", SETTLE_SECONDS)
        outputs = {d: read_run(runs[d], logs[d]) for d in runs if d != KILLED or closed_by == "restart"}
    except BaseException:
        show_logs(work_dir)
        raise
    finally:
        for run in runs.values():
            if run.poll() is None:
                run.kill()
                run.wait(10)
    reconciled = {d: int(m.group(1)) for d, o in outputs.items() if (m := SUMMARY.search(o))}
    if closed_by == "restart":
        assert reconciled[KILLED] == left_open  # its own open attempts, by itself
    else:
        assert sum(reconciled.values()) == left_open  # the others took them over
    await check_settled(hosts, configs, store, campaign.id, numbers, left_open, pending_at_kill, reconciled)


async def check_settled(
    hosts: dict[str, Host],
    configs: dict[str, Settings],
    store: PostgresStore,
    campaign_id: int,
    numbers: list[str],
    left_open: int,
    pending_at_kill: int,
    reconciled: dict[str, int],
) -> None:
    attempts = await store.fetch_all(
        "SELECT id, phone_e164, dialer_id, state, disposition, note FROM attempts WHERE campaign_id=? "
        "ORDER BY id",
        (campaign_id,),
    )
    received = {d: netns.sim_calls(asterisk_dir(d)) for d in DIALERS}
    assert all(r["state"] == "ended" and r["disposition"] for r in attempts), attempts
    assert {r["dialer_id"] for r in attempts} <= set(DIALERS), attempts
    by_number = {n: tally([r for r in attempts if r["phone_e164"] == n]) for n in numbers}
    by_dialer = {d: tally([r for r in attempts if r["dialer_id"] == d]) for d in DIALERS}
    got = {n: sum(received[d].get(n, 0) for d in DIALERS) for n in numbers}
    assert set().union(*received.values()) <= set(numbers)  # no other number was called
    for number, t in by_number.items():
        # Each call a number received has its own attempt (lost outcomes may or may not have rung),
        # and no number got more calls than the cap: across all three dialers.
        assert t.known <= got[number] <= t.counted <= CAP, (number, t, got[number])
    for dialer, t in by_dialer.items():
        on_its_asterisk = sum(received[dialer].values())
        assert t.known <= on_its_asterisk <= t.counted, (dialer, t, on_its_asterisk)
        assert t.counted >= 1 and on_its_asterisk >= 1, dialer  # every dialer placed calls
    assert left_open >= 1 and pending_at_kill >= 1  # killed mid-campaign, with calls open
    chain = await check_chain(hosts[DIALERS[0]], configs[DIALERS[0]], store, len(attempts))
    notes = {k: sum(1 for r in attempts if k in str(r["note"])) for k in NOTES}
    calls = {d: sum(received[d].values()) for d in DIALERS}
    print(
        f"\ncross-host: calls per dialer (on its Asterisk) {calls}; attempts {len(attempts)} "
        f"({dict(Counter(str(r['dialer_id']) for r in attempts))}), "
        f"dispositions {dict(Counter(str(r['disposition']) for r in attempts))}; "
        f"numbers called {sum(1 for n in numbers if got[n])}/{len(numbers)}; "
        f"{KILLED} killed with {left_open} open and {pending_at_kill} targets pending; "
        f"reconciled {reconciled}; outcome lost {sum(t.lost for t in by_dialer.values())}; "
        f"notes {notes}; chain: {chain}"
    )


SUMMARY = re.compile(r"(\d+) reconciled\b")  # the run's summary line
NOTES = ("adopted after restart", "reconciled from AstDB", "stopped renewing its lease")


def tally(rows: Sequence[Row]) -> Tally:
    dispositions = [str(r["disposition"]) for r in rows]
    counted = [d for d in dispositions if d != "not_placed"]
    return Tally(len(counted), counted.count("unknown"))


async def check_chain(host: Host, settings: Settings, store: PostgresStore, attempts: int) -> str:
    """`duecall audit verify`, or, while it reads only SQLite, the chain's links read through the
    store; how the chain was checked."""
    done = subprocess.run(
        host.argv(*duecall_argv(settings, "audit", "verify")), capture_output=True, text=True, timeout=120
    )
    if "not yet PostgreSQL" in done.stdout + done.stderr:
        rows = await store.fetch_all(f"SELECT {COLUMNS} FROM audit_events ORDER BY seq")
        last, _, broken = first_break(StoredEvent.from_row(r) for r in rows)
        assert broken is None and last == len(rows) > 0, broken
        how = f"links of {last} events checked through the store (audit verify reads SQLite only)"
    else:
        assert done.returncode == 0, done.stdout + done.stderr
        how = "duecall audit verify passed"
    decided = await store.fetch_all("SELECT count(*) AS n FROM audit_events WHERE kind='attempt.decided'")
    ended = await store.fetch_all(
        "SELECT count(DISTINCT attempt_id) AS d, count(*) AS n FROM audit_events WHERE kind='call.ended'"
    )
    assert decided[0]["n"] == attempts  # one decision and one end per attempt: none lost, none doubled
    assert (ended[0]["d"], ended[0]["n"]) == (attempts, attempts)
    return how


# ---------------------------------------------------------------- the dialers


def duecall_argv(settings: Settings, *args: str) -> list[str]:
    return [sys.executable, "-m", "duecall", "--config", str(settings.root / "duecall.toml"), *args]


def cli(host: Host, settings: Settings, *args: str) -> str:
    return host.run(*duecall_argv(settings, *args), timeout=120)


def start_dialer(host: Host, settings: Settings, log: Path) -> subprocess.Popen[str]:
    # Exits once nothing is due now: the second account of every number waits for tomorrow (the cap).
    with log.open("w", encoding="utf-8") as output:
        return host.popen(*duecall_argv(settings, "-v", "run", "test", "--exit-when-idle"), output=output)


def show_logs(work_dir: Path) -> None:
    """The dialers' last lines, for a failure (the work folder goes with the test)."""
    for log in sorted(work_dir.glob("d*/run-*.log")):
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:])
        print(f"\n--- {log.relative_to(work_dir)}\n{tail}")


def read_run(run: subprocess.Popen[str], log: Path) -> str:
    output = log.read_text(encoding="utf-8")
    assert run.returncode == 0, output[-4000:]
    return output


async def exited(runs: list[subprocess.Popen[str]]) -> bool:
    return all(run.poll() is not None for run in runs)


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        await asyncio.sleep(0.1)


# ---------------------------------------------------------------- what the store and Asterisk say


async def open_count(store: PostgresStore, campaign_id: int, dialer: str) -> int:
    return len(await store.open_attempts(campaign_id, dialer))


async def pending_targets(store: PostgresStore, campaign_id: int) -> int:
    rows = await store.fetch_all(
        "SELECT count(*) AS n FROM targets WHERE campaign_id=? AND state='pending'", (campaign_id,)
    )
    return int(rows[0]["n"])


async def calls_up(store: PostgresStore, campaign_id: int, dialer: str) -> bool:
    """An open attempt of this dialer rings a borrower who answers (a call of several seconds) and
    has reached its Asterisk."""
    ringing = {a.phone_e164 for a in await store.open_attempts(campaign_id, dialer)}
    answering = {p for p in ringing if p[-4:] in BEHAVIOURS[:4]}
    return bool(answering & set(netns.sim_calls(asterisk_dir(dialer))))

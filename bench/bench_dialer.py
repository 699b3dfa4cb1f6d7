"""How much the dialer costs per call, against the real Asterisk.

Run (Asterisk up): .venv/bin/python bench/bench_dialer.py [--calls 600] [--concurrent 200] [--cps 50]

Every borrower is the simulated 0101 person (answers, says hello, presses 1, ~5.5 s call with
recording). Prints calls completed per second, the dialer's CPU per call, the event loop's
worst lag, peak memory, and Asterisk's CPU over the same interval, so one can see which side
is the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer.accounts.parse import AccountRecord
from dialer.asterisk.ami import AmiEndpoint
from dialer.asterisk.host import load_credentials, status
from dialer.campaign.engine import Dialer
from dialer.core.clock import ShiftedClock
from dialer.core.config import load_settings
from dialer.policy.engine import LenderSettings
from dialer.policy.gate import PackGate
from dialer.policy.packs import load_pack
from dialer.store import SqliteStore

ROOT = Path(__file__).resolve().parent.parent


def records(n: int) -> list[AccountRecord]:
    return [
        AccountRecord(
            f"B{i:06d}",
            f"B{i:06d}",
            "Bench",
            f"+1{200 + i // 1000:03d}{i % 1000:03d}0101",
            "US",
            ("America/New_York",),
            False,
            10000,
            "USD",
            date(2026, 12, 1),
            "en-US",
        )
        for i in range(n)
    ]


def asterisk_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


async def watch_loop(lags: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        start = loop.time()
        await asyncio.sleep(0.05)
        lags.append(loop.time() - start - 0.05)


async def main(args: argparse.Namespace) -> None:
    work = ROOT / "var" / "bench" / uuid.uuid4().hex[:8]
    work.mkdir(parents=True)
    base = load_settings(ROOT / "duecall.toml")
    settings = base.model_validate(
        {
            **base.model_dump(),
            "store": {"path": work / "bench.db", "synchronous": args.synchronous},
            "dialer": {
                **base.dialer.model_dump(),
                "max_concurrent": args.concurrent,
                "calls_per_second": args.cps,
                "ring_timeout": timedelta(seconds=10),
                "amd": False,
                "prompt": "demo-thanks",
                "recordings_dir": work / "recordings",
            },
            "retry": {
                d: {"delay": "1h", "max_attempts": 1}
                for d in ("no_answer", "busy", "failed", "machine", "hung_up_early", "unknown")
            },
        }
    )
    state_dir = settings.path(settings.asterisk.state_dir)
    creds = load_credentials(state_dir, settings.asterisk.ami_port)
    pid = int(str(status(state_dir)["pid"]))
    store = await SqliteStore.open(settings.path(settings.store.path), settings.store.synchronous)
    now = datetime(2026, 12, 2, 10, 0, tzinfo=ZoneInfo("America/New_York")).astimezone(UTC)
    await store.upsert_accounts(records(args.calls), now)
    campaign = await store.create_campaign("bench", now)
    await store.add_targets(campaign.id, now)
    dialer = Dialer(
        settings,
        store,
        campaign,
        PackGate(load_pack("us-regf", LenderSettings(max_voice_per_day=10))),
        ShiftedClock(now),
        AmiEndpoint(creds.host, creds.port, creds.username, creds.secret),
    )
    lags: list[float] = []
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_loop(lags, stop))
    cpu0, ast0, wall0 = time.process_time(), asterisk_cpu_seconds(pid), time.monotonic()
    loop_cpu0 = time.thread_time()
    peak_in_flight = 0

    async def sample() -> None:
        nonlocal peak_in_flight
        while not stop.is_set():
            peak_in_flight = max(peak_in_flight, dialer.pacer.in_flight)
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    summary = await dialer.run(timedelta(0))
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    loop_cpu = time.thread_time() - loop_cpu0
    ast = asterisk_cpu_seconds(pid) - ast0
    stop.set()
    await asyncio.gather(watcher, sampler)
    counts = (await store.status(campaign)).attempts_by_disposition
    await store.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lags.sort()
    print(
        f"calls offered {args.calls} at {args.cps}/s, at most {args.concurrent} at once; "
        f"store synchronous={args.synchronous}"
    )
    print(
        f"finished {summary.finished} in {wall:.1f} s: {summary.finished / wall:.1f} calls/s; "
        f"peak concurrent {peak_in_flight}; dispositions {counts}"
    )
    print(
        f"dialer CPU {cpu:.2f} s = {1000 * cpu / max(summary.finished, 1):.2f} ms per call "
        f"({cpu / wall:.2f} cores), event-loop thread {1000 * loop_cpu / max(summary.finished, 1):.2f} ms "
        f"per call; peak RSS {rss_mb:.0f} MB"
    )
    print(
        f"event loop lag p50 {1000 * statistics.median(lags):.1f} ms, "
        f"p99 {1000 * lags[int(len(lags) * 0.99)]:.1f} ms, max {1000 * lags[-1]:.1f} ms"
    )
    print(
        f"AMI messages received {dialer.ami.messages_received} "
        f"({dialer.ami.messages_received / max(summary.finished, 1):.1f} per call)"
    )
    print(f"Asterisk CPU over the run {ast:.1f} s ({ast / wall:.2f} cores)")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--cps", type=float, default=50)
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--keep", action="store_true", help="keep the database and recordings")
    asyncio.run(main(parser.parse_args()))

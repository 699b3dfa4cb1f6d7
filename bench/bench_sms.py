"""Texts per second end to end through the real Kannel, with delivery reports, and DueCall's CPU per text.

    .venv/bin/python bench/bench_sms.py [--texts 2000] [--concurrency 16]

Starts a Kannel of its own (ports 13600+) with the fake SMSC, a handset thread reading every
outbound text, and DueCall's sender and receiver in this process over a fresh SQLite store. One
batch of N accounts (US numbers, a daytime zone) goes through the whole path: policy decision and
row in one transaction, sendsms, Kannel, the handset, and two delivery reports per text (SMSC
accepted, delivered) back through the receiver into the store. Prints: texts/s until every text
was submitted, texts/s until every report was stored, and this process's CPU (user+sys) per text.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialer.core.clock import SystemClock  # noqa: E402
from dialer.core.config import Settings, load_settings  # noqa: E402
from dialer.store import SqliteStore  # noqa: E402
from duecall import texts  # noqa: E402
from sms import kannel  # noqa: E402
from tests.support.config import write_config  # noqa: E402
from tests.support.project import daytime_zone  # noqa: E402
from tests.support.records import borrower  # noqa: E402

PORTS = {
    "admin_port": 13600,
    "smsbox_port": 13601,
    "sendsms_port": 13613,
    "fake_port": 13620,
    "receiver_port": 13630,
}


def handset(port: int, got: list[int], stop: threading.Event) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        got[0] += data.count(b"\n")
    sock.close()


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(s: Settings, count: int) -> None:
    store = await SqliteStore.open(s.path(s.store.path), "NORMAL")
    clock = SystemClock()
    now = clock.now()
    zone = daytime_zone(now)
    records = [borrower(f"B{i:05d}", f"+1202{i:07d}", zone) for i in range(count)]
    await store.upsert_accounts(records, now)
    campaign = await store.create_campaign("bench", now)
    await store.add_targets(campaign.id, now)
    channel = texts.build(s, store, clock, "bench")
    accounts = await store.campaign_accounts(campaign.id)
    requests = texts.requests_for(channel, accounts, "due_today", "bench", campaign.id)
    async with texts.receiving(s, channel, clock):
        cpu0, t0 = cpu(), time.perf_counter()
        summary = await channel.sender.send_batch(requests)
        submitted = time.perf_counter() - t0
        while True:
            row = await store.fetch_one("SELECT count(*) AS n FROM messages WHERE state='delivered'")
            if row is not None and row["n"] >= count:
                break
            if time.perf_counter() - t0 > 600:
                raise SystemExit(f"only {row['n'] if row else 0} of {count} delivered after 600 s")
            await asyncio.sleep(0.05)
        done, used = time.perf_counter() - t0, cpu() - cpu0
    await channel.gateway.aclose()
    await store.close()
    print(f"texts: {count}, concurrency {s.sms.concurrency}: {dict(summary.counts())}")
    print(f"submitted: {count / submitted:,.0f} texts/s ({submitted:.2f} s)")
    print(f"delivered, both reports stored: {count / done:,.0f} texts/s ({done:.2f} s)")
    print(f"DueCall CPU (this process, user+sys): {used / count * 1000:.2f} ms per text ({used:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = {
            "store": {"path": str(work / "bench.db")},
            "sms": {"state_dir": str(work / "state"), "concurrency": args.concurrency, **PORTS},
            # A bench sends more than the shipped caps allow one number; each account has its own.
            "policy": {"max_sms_per_day": 100},
        }
        s = load_settings(write_config(work / "duecall.toml", config))
        kannel.start(s.sms, s.path(s.sms.state_dir))
        got, stop = [0], threading.Event()
        reader = threading.Thread(target=handset, args=(s.sms.fake_port, got, stop), daemon=True)
        reader.start()
        time.sleep(0.3)
        try:
            asyncio.run(run(s, args.texts))
        finally:
            stop.set()
            reader.join(2)
            kannel.stop(s.sms, s.path(s.sms.state_dir))
        print(f"handsets received: {got[0]} texts")


if __name__ == "__main__":
    main()

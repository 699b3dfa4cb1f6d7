"""The dry run (`duecall campaign plan`) over many accounts: time and memory of `plan()`.

    .venv/bin/python bench/bench_plan.py [--accounts 100000] [--days 14] [--pack cn us-regf]
                                         [--with-history 0.3] [--seed 1] [--workers N]

For each pack, N synthetic snapshots with the pack's shipped strategy (dialer/strategy/strategies)
and the real PackGate, planned as `duecall campaign plan` plans them (one process per core): mixed
zones (a share with two), locales, due dates from 90 days late to 10 days ahead (buckets M0-M3),
amounts; some partial payments, some paid in full, some promises (pending and broken), disputes,
hardship calls, voice opt-outs, stated inconvenient times; and a share of the late accounts
(--with-history) with one to three earlier calls at random minutes of the last two days, each such
account in a situation of its own. Prints accounts, days, contacts, refusals, the accounts
simulated from the start, wall and CPU seconds (workers included), µs of CPU per account-day, and
memory (RSS once the snapshots are built; the peak of the largest process).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialer.core.balance import Payment, Promise  # noqa: E402
from dialer.core.config import load_settings  # noqa: E402
from dialer.core.models import Account, Disposition, PastAttempt, Preferences  # noqa: E402
from dialer.core.vocab import Outcome  # noqa: E402
from dialer.policy.gate import PackGate  # noqa: E402
from dialer.policy.packs import load_pack  # noqa: E402
from dialer.strategy.decide import AccountView, HistoryView, PastContact, Said  # noqa: E402
from dialer.strategy.loader import load_strategy  # noqa: E402
from dialer.strategy.model import Channel  # noqa: E402
from dialer.strategy.snapshot import Snapshot  # noqa: E402
from duecall.planning import Work, plan_on_every_core  # noqa: E402
from duecall.steered import known_names  # noqa: E402

START = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
US_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
)
SHIPPED = ROOT / "dialer" / "strategy" / "strategies"


def snapshot(i: int, pack: str, rng: random.Random) -> Snapshot:
    account = _account(i, pack, rng)
    payments, promises = _money(account, rng)
    calls, contacts = _earlier_calls(account, rng)
    said = _said(account, rng)
    opted: frozenset[Channel] = frozenset({"voice"}) if rng.random() < 0.02 else frozenset()
    prefs = Preferences(((clock_time(12), clock_time(13)),)) if rng.random() < 0.05 else Preferences()
    view = AccountView(account, payments, promises)
    history = HistoryView(contacts, said, opted)
    return Snapshot(view, history, calls, (), opted, prefs)


def _account(i: int, pack: str, rng: random.Random) -> Account:
    due = START.date() + timedelta(days=rng.randint(-90, 10))
    amount = rng.randint(5_000, 500_000)
    zones: tuple[str, ...]
    if pack == "cn":
        zones = ("Asia/Shanghai", "Asia/Urumqi") if rng.random() < 0.1 else ("Asia/Shanghai",)
        phone, currency, language = f"+86139{i:08d}", "CNY", "zh-CN"
    else:
        zones = tuple(rng.sample(US_ZONES, 2 if rng.random() < 0.1 else 1))
        phone, currency = f"+1202{i:07d}", "USD"
        language = "ko-KR" if rng.random() < 0.15 else "en-US"
    return Account(
        i + 1, f"A{i:06d}", f"D{i:06d}", "Bench", phone, zones, False, amount, currency, due, language
    )


def _money(account: Account, rng: random.Random) -> tuple[tuple[Payment, ...], tuple[Promise, ...]]:
    payments: tuple[Payment, ...] = ()
    roll = rng.random()
    if roll < 0.02:
        payments = (
            Payment(f"P{account.pk}", account.amount_minor, account.currency, START - timedelta(days=1)),
        )
    elif roll < 0.12:
        paid = rng.randint(1, account.amount_minor - 1)
        payments = (
            Payment(f"P{account.pk}", paid, account.currency, START - timedelta(days=rng.randint(1, 20))),
        )
    promises: tuple[Promise, ...] = ()
    if rng.random() < 0.05:
        made = START - timedelta(days=rng.randint(1, 3), minutes=rng.randint(0, 600))
        due_on = START.date() + timedelta(days=rng.randint(-2, 6))
        promises = (Promise("call", account.pk, made, due_on, None),)
    return payments, promises


def _earlier_calls(
    account: Account, rng: random.Random
) -> tuple[tuple[PastAttempt, ...], tuple[PastContact, ...]]:
    if account.due_date >= START.date() or rng.random() >= ARGS.with_history:
        return (), ()
    times = sorted(START - timedelta(minutes=rng.randint(60, 2 * 24 * 60)) for _ in range(rng.randint(1, 3)))
    calls = tuple(
        PastAttempt(account.pk * 10 + n, at, 1, Disposition.NO_ANSWER, account.debt_id)
        for n, at in enumerate(times)
    )
    return calls, tuple(PastContact(at, "voice") for at in times)


def _said(account: Account, rng: random.Random) -> tuple[Said, ...]:
    roll = rng.random()
    if roll < 0.01:
        return (Said(START - timedelta(days=2), Outcome.DISPUTE, account.phone_e164),)
    if roll < 0.015:
        return (Said(START - timedelta(days=2), Outcome.HARDSHIP_CALLBACK, account.phone_e164),)
    return ()


def bench(pack: str, count: int, days: int, rng: random.Random) -> None:
    known = known_names(load_settings(ROOT / "duecall.toml"))
    strategy = load_strategy(SHIPPED / f"{pack}.yaml", known)
    gate = PackGate(load_pack(pack))
    snapshots = [snapshot(i, pack, rng) for i in range(count)]
    before = _rss_mib()
    t0, w0 = _cpu(), time.perf_counter()
    result = plan_on_every_core(
        Work(snapshots, lambda _s: strategy, gate, START, days, 1, None), ARGS.workers
    )
    used, wall = _cpu() - t0, time.perf_counter() - w0
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    made = {c: result.made(c) for c in ("voice", "sms")}
    refused = {c: result.refused(c) for c in ("voice", "sms")}
    print(f"{pack}: {result.accounts:,} accounts x {days} days, strategy {strategy.name}")
    print(f"  contacts: {made['voice']:,} calls, {made['sms']:,} texts")
    print(f"  refused: {refused['voice']:,} call and {refused['sms']:,} text decisions")
    print(f"  stopped: {dict(result.stopped)}; loop guard: {len(result.errors)}")
    print(
        f"  simulated from the start: {result.simulated:,} ({result.simulated / count:.0%} of the accounts)"
    )
    per = used / (count * days) * 1e6
    workers = ARGS.workers or "one per core"
    print(f"  {wall:.1f} s wall ({workers} workers); {used:.1f} s CPU, {per:.1f} µs per account-day")
    print(f"  RSS with the snapshots built {before:.0f} MiB, peak of one process {peak / 1024:.0f} MiB")


def _cpu() -> float:
    both = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in both)


def _rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


ARGS = argparse.Namespace(with_history=0.3, workers=None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--pack", nargs="+", default=["cn", "us-regf"])
    parser.add_argument("--with-history", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    args = parser.parse_args()
    ARGS.with_history, ARGS.workers = args.with_history, args.workers
    rng = random.Random(args.seed)
    for pack in args.pack:
        bench(pack, args.accounts, args.days, rng)


if __name__ == "__main__":
    main()

"""Asterisk's work per call: a bare baseline against DueCall doing the same job on the same Asterisk.

Run (as root; it starts its own Asterisk, AMI port 5152, and stops it at the end):
  .venv/bin/python bench/bench_asterisk.py                       # both loads, both jobs, 2 rounds
  .venv/bin/python bench/bench_asterisk.py --load small --job broadcast --rounds 1
  ... --state-dir var/bench-asterisk --asterisk-root /var/tmp/bench-sid  # on a shared machine

For each job and load it runs, interleaved, baseline, DueCall, baseline, DueCall, ...:
- the baseline: a bare AMI Originate loop (this process) into [duecall-baseline]
  (asterisk/conf/extensions_baseline.conf: answer, MixMonitor, the prompt with barge-in, a Read,
  goodbye, one UserEvent; one Local pair);
- DueCall: the real `Dialer` in a child process, built as bench/bench_dialer.py builds it, with
  `ivr.enabled = false` (job broadcast: [duecall-ivr] `broadcast`, AMD off) or the shipped en-US
  script over FastAGI (job ivr; the baseline then plays the script's first prompt).
Both dial the same simulated borrower, [duecall-sim-bench] (answers, says hello, presses 1), which
stamps its answer and the first audio it hears (WaitForNoise), so answer-to-first-audio is
measured the same way for both. Printed per round: Asterisk's CPU per completed call
(utime+stime from /proc) and DueCall's over the baseline's, DueCall's own CPU per call (its
process and its children: speech and TTS workers), completion, calls per second, peak channels
(`core show channels count` every 0.5 s), first audio p50/p95, the load average as the round
started, and the cores the rest of the machine used meanwhile (/proc/stat busy time less
Asterisk, DueCall and the bench).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer.accounts.parse import AccountRecord
from dialer.asterisk import host
from dialer.asterisk.ami import AmiClient, AmiEndpoint, AmiTimeouts
from dialer.asterisk.ami_protocol import Message
from dialer.campaign.engine import Dialer
from dialer.core.clock import ShiftedClock
from dialer.core.config import Settings, load_settings
from dialer.policy.engine import LenderSettings
from dialer.policy.gate import PackGate
from dialer.policy.packs import load_pack
from dialer.store import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
BORROWER = "Local/{number}@duecall-sim-bench"
BASELINE_CONTEXT = "duecall-baseline"
SILENT_CONTEXT = "duecall-baseline-silent"
BROADCAST_PROMPT = "demo-thanks"  # dialer.prompt for DueCall's broadcast path, and the baseline's
RING_SECONDS = 10
CALL_LIMIT_SECONDS = 180  # a baseline call not ended by then counts as not completed
POLL_SECONDS = 0.5  # how often the peak channel count is read
WARMUP_CALLS = 3  # per job, before the measured rounds: prompts rendered, files in the page cache
NOISE_MS = 40  # WaitForNoise(40, ...) in [duecall-sim-bench]: part of every first-audio figure
TICKS = os.sysconf("SC_CLK_TCK")
NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True, slots=True)
class Load:
    name: str
    calls: int
    cps: float
    concurrent: int

    def describe(self) -> str:
        return f"{self.calls} calls at {self.cps:g}/s, at most {self.concurrent} at once"


@dataclass(frozen=True, slots=True)
class Heard:
    """One BenchHeard event: when the borrower answered and first heard us (its own clock)."""

    number: str
    delay: float  # seconds from its answer to the end of the first NOISE_MS of sound
    status: str  # NOISE, or TIMEOUT (nothing heard within 10 s), or HANGUP
    talk: float  # seconds from its answer to its hangup


@dataclass(frozen=True, slots=True)
class RoundResult:
    side: str  # baseline | duecall
    round: int
    placed: int
    completed: int
    wall: float
    asterisk_cpu: float  # seconds
    own_cpu: float  # seconds: DueCall's process tree, or the bench driver's for the baseline
    peak_channels: int
    heard: tuple[Heard, ...]
    loadavg: float  # 1-minute load average as the round started (Asterisk's own threads count)
    others: float  # cores the rest of the box used meanwhile (not Asterisk, DueCall, the bench)
    detail: str = ""  # DueCall: its dispositions

    def per_call(self, seconds: float) -> float:
        """Milliseconds per completed call (nan when none completed: nothing to divide by)."""
        return 1000 * seconds / self.completed if self.completed else float("nan")

    def delays(self) -> list[float]:
        return sorted(h.delay for h in self.heard if h.status == "NOISE")

    def talk(self) -> float:
        """Mean seconds from the borrower's answer to its hangup."""
        return statistics.fmean(h.talk for h in self.heard) if self.heard else float("nan")


@dataclass
class Monitor:
    """What the bench's own AMI connection hears: the borrowers' stamps, the baseline's ends."""

    heard: list[Heard] = field(default_factory=list)
    ends: dict[str, asyncio.Future[Message | None]] = field(default_factory=dict)
    originates: dict[str, str] = field(default_factory=dict)  # ActionID -> call key

    def on_event(self, message: Message) -> None:
        kind = message.get("Event")
        if kind == "UserEvent":
            self._user_event(message)
        elif kind == "OriginateResponse" and message.get("Response") == "Failure":
            self._end(self.originates.get(message.get("ActionID", ""), ""), None)

    def _user_event(self, message: Message) -> None:
        name = message.get("UserEvent")
        if name == "BenchHeard" and message.get("AnsweredAt"):  # answered calls only
            answered = float(message["AnsweredAt"])
            heard = float(message.get("HeardAt") or "nan")
            talk = float(message["EndedAt"]) - answered
            self.heard.append(
                Heard(message.get("Number", ""), heard - answered, message.get("Status", ""), talk)
            )
        elif name == "BenchBaseline":
            self._end(message.get("Call", ""), message)

    def _end(self, key: str, message: Message | None) -> None:
        future = self.ends.get(key)
        if future is not None and not future.done():
            future.set_result(message)


# ---------------------------------------------------------------- measuring


def cpu_of(pid: int) -> float:
    """utime + stime of one process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def busy_cpu() -> float:
    """CPU seconds the whole machine spent busy (all but idle and iowait), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICKS


def tree_cpu() -> float:
    """This process, its children reaped so far, and its live descendants (speech, TTS workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    gone = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = me.ru_utime + me.ru_stime + gone.ru_utime + gone.ru_stime
    for pid in descendants(os.getpid()):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile: counted in RUSAGE_CHILDREN once reaped
        total += sum(int(f) for f in fields[11:15]) / TICKS  # utime stime cutime cstime
    return total


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


async def peak_channels(ami: AmiClient, stop: asyncio.Event) -> int:
    """The most channels `core show channels count` showed while the round ran."""
    peak = 0
    while not stop.is_set():
        try:
            reply = await ami.send("Command", {"Command": "core show channels count"}, timeout=5)
            line = next(x for x in reply.get("Output", "").splitlines() if "active channel" in x)
            peak = max(peak, int(line.split()[0]))
        except Exception as exc:  # a missed sample must not end the round
            logging.warning("channel count: %s", exc)
        try:
            async with asyncio.timeout(POLL_SECONDS):
                await stop.wait()
        except TimeoutError:
            pass
    return peak


def numbers(calls: int) -> list[str]:
    """The borrowers' numbers (E.164 without '+'): distinct, the same for both sides."""
    return [f"1{200 + i // 1000:03d}{i % 1000:03d}0101" for i in range(calls)]


# ---------------------------------------------------------------- the baseline


@dataclass(frozen=True, slots=True)
class Baseline:
    ami: AmiClient
    monitor: Monitor
    work: Path

    async def round(self, load: Load, prompt: str, number: int) -> tuple[int, int, float]:
        """Place load.calls calls; (placed, completed, wall seconds)."""
        lines = asyncio.Semaphore(load.concurrent)
        loop = asyncio.get_running_loop()
        started = loop.time()
        tasks = []
        for i, borrower in enumerate(numbers(load.calls)):
            await lines.acquire()
            await asyncio.sleep(max(0.0, started + i / load.cps - loop.time()))
            key = f"r{number}-{i}"
            tasks.append(asyncio.create_task(self._call(key, borrower, prompt, lines)))
        outcomes = await asyncio.gather(*tasks)
        return len(tasks), sum(outcomes), loop.time() - started

    async def _call(self, key: str, borrower: str, prompt: str, lines: asyncio.Semaphore) -> bool:
        end: asyncio.Future[Message | None] = asyncio.get_running_loop().create_future()
        self.monitor.ends[key] = end
        action_id = f"bench-{key}-{uuid.uuid4().hex[:6]}"
        self.monitor.originates[action_id] = key
        try:
            await self.ami.send("Originate", self.originate_headers(action_id, key, borrower, prompt))
            async with asyncio.timeout(CALL_LIMIT_SECONDS):
                message = await end
        except Exception as exc:  # refused, lost or too long: not completed
            logging.warning("baseline call %s: %s", key, exc or type(exc).__name__)
            return False
        finally:
            self.monitor.ends.pop(key, None)
            self.monitor.originates.pop(action_id, None)
            lines.release()
        return message is not None and message.get("Stage") == "done" and message.get("Digits") == "1"

    def originate_headers(self, action_id: str, key: str, borrower: str, prompt: str) -> dict[str, Any]:
        return {
            "ActionID": action_id,
            "Channel": BORROWER.format(number=borrower),
            "Context": BASELINE_CONTEXT,
            "Exten": "s",
            "Priority": "1",
            "Async": "true",
            "ChannelId": action_id,
            "Timeout": str((RING_SECONDS + 10) * 1000),
            "CallerID": '"Bench" <18005550100>',
            "Variable": [f"BENCH_CALL={key}", f"BENCH_RECORDING={self.work / key}", f"BENCH_PROMPT={prompt}"],
        }


# ---------------------------------------------------------------- DueCall, in a child process


def bench_settings(spec: dict[str, Any]) -> Settings:
    base = load_settings(ROOT / "duecall.toml")
    work = Path(spec["work"])
    return base.model_validate(
        {
            **base.model_dump(),
            "store": {"path": work / "bench.db", "synchronous": "FULL"},
            "asterisk": {
                **base.asterisk.model_dump(),
                "state_dir": spec["state_dir"],
                "ami_port": spec["ami_port"],
            },
            "dialer": {
                **base.dialer.model_dump(),
                "trunk": BORROWER,
                "max_concurrent": spec["concurrent"],
                "calls_per_second": spec["cps"],
                "ring_timeout": timedelta(seconds=RING_SECONDS),
                "amd": False,
                "prompt": BROADCAST_PROMPT,
                "recordings_dir": work / "recordings",
            },
            "ivr": {
                **base.ivr.model_dump(),
                "enabled": spec["job"] == "ivr",
                "agi_port": spec["agi_port"],
                "prompts_dir": spec["prompts"],
            },
            "retry": {
                d: {"delay": "1h", "max_attempts": 1}
                for d in ("no_answer", "busy", "failed", "machine", "hung_up_early", "cut", "unknown")
            },
        }
    )


def account_records(phones: Sequence[str]) -> list[AccountRecord]:
    return [
        AccountRecord(
            f"B{i:06d}",
            f"B{i:06d}",
            "Bench",
            f"+{phone}",
            "US",
            ("America/New_York",),
            False,
            10000,
            "USD",
            date(2026, 12, 1),
            "en-US",
        )
        for i, phone in enumerate(phones)
    ]


async def first_prompt(ivr: Any) -> str:
    """The playback target of the shipped script's first prompt (rendered by ivr.start())."""
    from ivr.spoken import spoken_digits
    from ivr.tts import playback_target

    script = ivr.scripts["en-US"]
    text = script.nodes[script.start].say.format(
        lender=script.lender, callback=spoken_digits(script.callback, script.locale)
    )
    return playback_target(await ivr.prompts.render(text, ivr.voice(script)))


async def duecall_child(spec: dict[str, Any]) -> None:
    """One DueCall round: set up, say ready, wait for go, run, print the result as JSON."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = bench_settings(spec)
    state_dir = Path(spec["state_dir"])
    creds = host.load_credentials(state_dir, int(spec["ami_port"]))
    store = await SqliteStore.open(settings.path(settings.store.path), settings.store.synchronous)
    now = datetime(2026, 12, 2, 10, 0, tzinfo=NEW_YORK).astimezone(UTC)
    clock = ShiftedClock(now)
    await store.upsert_accounts(account_records(numbers(int(spec["calls"]))), now)
    campaign = await store.create_campaign("bench", now)
    await store.add_targets(campaign.id, now)
    ivr = None
    prompt = BROADCAST_PROMPT
    if settings.ivr.enabled:
        from duecall.runtime import build_ivr

        ivr = build_ivr(settings, store, clock)
        await ivr.start()  # speech workers loaded, the script's prompts rendered: not measured
        prompt = await first_prompt(ivr)
    dialer = Dialer(
        settings,
        store,
        campaign,
        PackGate(load_pack("us-regf", LenderSettings(max_voice_per_day=10))),
        clock,
        AmiEndpoint(creds.host, creds.port, creds.username, creds.secret),
        ivr=ivr,
    )
    print(json.dumps({"ready": True, "prompt": prompt}), flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    cpu0, wall0 = tree_cpu(), time.monotonic()
    summary = await dialer.run(timedelta(0))
    wall, cpu = time.monotonic() - wall0, tree_cpu() - cpu0
    counts = (await store.status(campaign)).attempts_by_disposition
    result = {"placed": summary.placed, "wall": wall, "cpu": cpu, "dispositions": counts}
    print(json.dumps(result), flush=True)
    if ivr is not None:
        await ivr.close()
    await store.close()


@dataclass
class Child:
    """The DueCall round's process, driven over its stdin/stdout lines."""

    process: asyncio.subprocess.Process

    @classmethod
    async def start(cls, spec: dict[str, Any]) -> Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--child",
            json.dumps(spec),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        return cls(process)

    async def line(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            raw = await self.process.stdout.readline()
        if not raw:
            await self.process.wait()
            raise RuntimeError(f"the DueCall child ended (status {self.process.returncode})")
        found: dict[str, Any] = json.loads(raw)
        return found

    async def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        await self.process.stdin.drain()

    async def finish(self) -> None:
        async with asyncio.timeout(120):
            await self.process.wait()


# ---------------------------------------------------------------- the rounds


@dataclass
class Bench:
    args: argparse.Namespace
    state_dir: Path
    asterisk_pid: int
    ami: AmiClient
    monitor: Monitor
    rounds_done: int = 0

    def spec(self, job: str, load: Load, work: Path) -> dict[str, Any]:
        return {
            "job": job,
            "calls": load.calls,
            "cps": load.cps,
            "concurrent": load.concurrent,
            "work": str(work),
            "state_dir": str(self.state_dir),
            "ami_port": self.args.ami_port,
            "agi_port": self.args.agi_port,
            "prompts": str(self.state_dir / "prompts"),
        }

    def work_dir(self) -> Path:
        self.rounds_done += 1
        work = self.state_dir / "rounds" / f"{self.rounds_done:03d}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        return work

    async def measured(self, side: str, number: int, body: Callable[[], Any]) -> RoundResult:
        """Run `body` (returning placed, completed, wall, own_cpu, detail) with Asterisk measured."""
        self.monitor.heard = []
        stop = asyncio.Event()
        poller = asyncio.create_task(peak_channels(self.ami, stop))
        loadavg, bench0, busy0, wall0 = os.getloadavg()[0], time.process_time(), busy_cpu(), time.monotonic()
        ast0 = cpu_of(self.asterisk_pid)
        placed, completed, wall, own, detail = await body()
        await self.borrowers_done(completed)  # their hangup events trail our side's end
        ast = cpu_of(self.asterisk_pid) - ast0
        stop.set()
        peak = await poller
        ours = ast + time.process_time() - bench0 + (own if side == "duecall" else 0.0)
        others = (busy_cpu() - busy0 - ours) / (time.monotonic() - wall0)
        heard = tuple(self.monitor.heard)
        return RoundResult(
            side, number, placed, completed, wall, ast, own, peak, heard, loadavg, others, detail
        )

    async def borrowers_done(self, answered: int) -> None:
        try:
            async with asyncio.timeout(5):
                while len(self.monitor.heard) < answered:
                    await asyncio.sleep(0.05)
        except TimeoutError:
            logging.warning("%d of %d borrowers reported", len(self.monitor.heard), answered)

    async def baseline(self, load: Load, prompt: str, number: int) -> RoundResult:
        work = self.work_dir()
        driver = Baseline(self.ami, self.monitor, work)

        async def body() -> tuple[int, int, float, float, str]:
            cpu0 = time.process_time()
            placed, completed, wall = await driver.round(load, prompt, number)
            return placed, completed, wall, time.process_time() - cpu0, ""

        result = await self.measured("baseline", number, body)
        self.clean(work)
        return result

    async def duecall(self, job: str, load: Load, number: int) -> tuple[RoundResult, str]:
        """A DueCall round; also the prompt its first audio plays (the baseline plays the same)."""
        work = self.work_dir()
        child = await Child.start(self.spec(job, load, work))
        ready = await child.line(timeout=600)
        prompt = str(ready["prompt"])

        async def body() -> tuple[int, int, float, float, str]:
            await child.go()
            done = await child.line(timeout=load.calls / load.cps + 3 * CALL_LIMIT_SECONDS)
            counts: dict[str, int] = done["dispositions"]
            answered = counts.get("answered", 0)
            detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            return int(done["placed"]), answered, float(done["wall"]), float(done["cpu"]), detail

        result = await self.measured("duecall", number, body)
        await child.finish()
        self.clean(work)
        return result, prompt

    def clean(self, work: Path) -> None:
        if not self.args.keep:
            shutil.rmtree(work, ignore_errors=True)

    async def job(self, job: str, load: Load) -> list[RoundResult]:
        print(f"\n== job {job}, load {load.name}: {load.describe()}", flush=True)
        warm = Load("warm-up", WARMUP_CALLS, load.cps, load.concurrent)
        _, prompt = await self.duecall(job, warm, 0)
        await self.baseline(warm, prompt, 0)
        print(f"   prompt heard first: {prompt}; warm-up done ({WARMUP_CALLS} calls each side)", flush=True)
        print(HEADER, flush=True)
        results = []
        for number in range(1, self.args.rounds + 1):
            base = await self.baseline(load, prompt, number)
            print(row(base, None), flush=True)
            ours, _ = await self.duecall(job, load, number)
            print(row(ours, base), flush=True)
            results += [base, ours]
        print(summary(results), flush=True)
        return results


HEADER = (
    "side      rnd  completed   calls/s  talk s  peak ch  Asterisk ms/call  ratio  own ms/call  "
    "first audio p50/p95 ms  heard               load avg  others"
)


def percentile(values: Sequence[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def row(r: RoundResult, base: RoundResult | None) -> str:
    ratio = f"{r.per_call(r.asterisk_cpu) / base.per_call(base.asterisk_cpu):.2f}" if base else "-"
    delays = r.delays()
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(Counter(h.status for h in r.heard).items()))
    text = (
        f"{r.side:<9} {r.round:>3}  {r.completed:>4}/{r.placed:<5} {r.completed / r.wall:>7.1f}  "
        f"{r.talk():>6.1f}  {r.peak_channels:>7}  {r.per_call(r.asterisk_cpu):>16.1f}  {ratio:>5}  "
        f"{r.per_call(r.own_cpu):>11.1f}  "
        f"{1000 * percentile(delays, 0.5):>10.0f} / {1000 * percentile(delays, 0.95):<9.0f}  "
        f"{statuses:<18}  {r.loadavg:>6.2f}  {r.others:>6.2f}"
    )
    return text + (f"\n{'':<15}{r.detail}" if r.detail else "")


def summary(results: Sequence[RoundResult]) -> str:
    base = [r for r in results if r.side == "baseline"]
    ours = [r for r in results if r.side == "duecall"]
    b = statistics.median(r.per_call(r.asterisk_cpu) for r in base)
    d = statistics.median(r.per_call(r.asterisk_cpu) for r in ours)
    own = statistics.median(r.per_call(r.own_cpu) for r in ours)
    b_talk = statistics.median(r.per_call(r.asterisk_cpu) / r.talk() for r in base)
    d_talk = statistics.median(r.per_call(r.asterisk_cpu) / r.talk() for r in ours)
    return (
        f"   median over {len(ours)} round(s): Asterisk {b:.1f} ms/call (baseline) vs {d:.1f} "
        f"(DueCall) = {d / b:.2f}x; per second of call {b_talk:.1f} vs {d_talk:.1f} ms = "
        f"{d_talk / b_talk:.2f}x; DueCall's own CPU {own:.1f} ms/call "
        f"(first audio includes the detector's {NOISE_MS} ms)"
    )


# ---------------------------------------------------------------- setup


async def detector_check(ami: AmiClient, monitor: Monitor, work: Path) -> None:
    """The first-audio detector must fire on a prompt and never on silence frames alone."""
    monitor.heard = []
    driver = Baseline(ami, monitor, work)
    calls = [
        ("silent", SILENT_CONTEXT, "19990000101"),
        ("prompt", BASELINE_CONTEXT, "19990010101"),
    ]

    async def one(key: str, context: str, number: str) -> None:
        headers = driver.originate_headers(
            f"check-{key}-{uuid.uuid4().hex[:6]}", f"check-{key}", number, BROADCAST_PROMPT
        )
        await ami.send("Originate", {**headers, "Context": context})

    await asyncio.gather(*(one(*c) for c in calls))
    async with asyncio.timeout(30):
        while len(monitor.heard) < len(calls):
            await asyncio.sleep(0.2)
    got = {h.number: h for h in monitor.heard}
    silent, prompt = got["19990000101"], got["19990010101"]
    print(
        f"detector check: silence frames only -> {silent.status} after {silent.delay:.2f} s; "
        f"prompt {BROADCAST_PROMPT} -> {prompt.status} after {1000 * prompt.delay:.0f} ms",
        flush=True,
    )
    if silent.status != "TIMEOUT" or prompt.status != "NOISE":
        raise SystemExit("the first-audio detector is wrong (see the line above): no figures")


def start_asterisk(args: argparse.Namespace, state_dir: Path) -> int:
    settings = load_settings(ROOT / "duecall.toml")
    install = host.provision(ROOT, state_dir, settings.path(settings.asterisk.cache_dir), args.ami_port)
    if args.asterisk_root and install.kind == "chroot":
        install = chroot_alias(install, Path(args.asterisk_root))
    # kill_strays=False: other Asterisks in the same chroot (other clones, tests) keep running.
    host.start(install, ROOT, state_dir, args.ami_port, kill_strays=False)
    return int(str(host.status(state_dir)["pid"]))


def chroot_alias(install: host.AsteriskInstall, alias: Path) -> host.AsteriskInstall:
    """The same chroot bind-mounted (private) at `alias`: a `duecall asterisk up` elsewhere stops
    every Asterisk whose root is the cache's chroot, and so would stop the bench's mid-round."""
    alias.mkdir(parents=True, exist_ok=True)
    if not any(
        line.split()[4] == str(alias) for line in Path("/proc/self/mountinfo").read_text().splitlines()
    ):
        subprocess.run(["mount", "--bind", str(install.root), str(alias)], check=True)
        subprocess.run(["mount", "--make-private", str(alias)], check=True)
    return replace(install, root=alias)


def release_alias(alias: Path) -> None:
    """Undo the alias and what host.start mounted inside it (proc, the project)."""
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for point in sorted((m for m in mounts if m == str(alias) or m.startswith(f"{alias}/")), reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    state_dir = (ROOT / args.state_dir).resolve()
    pid = start_asterisk(args, state_dir)
    creds = host.load_credentials(state_dir, args.ami_port)
    monitor = Monitor()
    ami = AmiClient(
        AmiEndpoint(creds.host, creds.port, creds.username, creds.secret),
        AmiTimeouts(),
        on_event=monitor.on_event,
    )
    runner = asyncio.create_task(ami.run())
    try:
        await ami.wait_connected(10)
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        print(
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, git {head.stdout.strip()}, "
            f"Asterisk pid {pid} on AMI port {args.ami_port}, {os.cpu_count()} CPUs, "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
            flush=True,
        )
        bench = Bench(args, state_dir, pid, ami, monitor)
        if not args.skip_check:
            work = bench.work_dir()
            await detector_check(ami, monitor, work)
            bench.clean(work)
        loads = {
            "small": Load("small", args.small_calls, args.small_cps, args.small_concurrent),
            "large": Load("large", args.large_calls, args.large_cps, args.large_concurrent),
        }
        for job in ("broadcast", "ivr") if args.job == "both" else (args.job,):
            for name in ("small", "large") if args.load == "both" else (args.load,):
                await bench.job(job, loads[name])
    finally:
        ami.close()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        if not args.keep_asterisk:
            host.stop(state_dir)
            if args.asterisk_root:
                release_alias(Path(args.asterisk_root))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--load", choices=["small", "large", "both"], default="both")
    p.add_argument("--job", choices=["broadcast", "ivr", "both"], default="both")
    p.add_argument("--rounds", type=int, default=2, help="baseline/DueCall pairs per job and load")
    p.add_argument("--small-calls", type=int, default=300)
    p.add_argument("--small-cps", type=float, default=25)
    p.add_argument("--small-concurrent", type=int, default=100)
    p.add_argument("--large-calls", type=int, default=1000)
    p.add_argument("--large-cps", type=float, default=75)
    p.add_argument("--large-concurrent", type=int, default=500)
    p.add_argument(
        "--state-dir", default="var/bench-asterisk", help="the bench's own Asterisk (relative to the project)"
    )
    p.add_argument("--ami-port", type=int, default=5152)
    p.add_argument(
        "--asterisk-root",
        default="",
        help="bind-mount the Asterisk chroot here and run from it (safe from other clones' restarts)",
    )
    p.add_argument("--agi-port", type=int, default=4600, help="DueCall's FastAGI port (job ivr)")
    p.add_argument("--skip-check", action="store_true", help="skip the first-audio detector check")
    p.add_argument("--keep", action="store_true", help="keep each round's database and recordings")
    p.add_argument("--keep-asterisk", action="store_true", help="leave the bench's Asterisk running")
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: one DueCall round (JSON spec)
    return p.parse_args(argv)


if __name__ == "__main__":
    parsed = parse_args()
    if parsed.child:
        asyncio.run(duecall_child(json.loads(parsed.child)))
    else:
        asyncio.run(main(parsed))

"""The dialer's Prometheus endpoint (issue 14 item 5) and JSON log lines.

The figures from a real store written through the Store API (calls, a refusal, IVR steps,
texts), the refresher's one read per interval whatever the scrapes, the real uvicorn server on
loopback scraped over HTTP, hostile requests (bad path, huge header, slow client, a crowd) with the
server still answering, and the event-loop lag under a deliberately blocked loop."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from click.testing import CliRunner
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dialer.asterisk.ami import AmiClient, AmiEndpoint, AmiTimeouts
from dialer.campaign.pacing import Pacer
from dialer.core.clock import FixedClock
from dialer.core.config import Settings, load_settings
from dialer.core.errors import ConfigError
from dialer.core.messages import TextRequest
from dialer.core.models import (
    Account,
    Attempt,
    CallResult,
    Decision,
    Disposition,
    IvrStep,
    IvrSummary,
    PastAttempt,
    Preferences,
    Reason,
    TargetState,
)
from dialer.policy.gate import PackGate
from dialer.policy.packs import load_pack
from dialer.store import Store, TargetUpdate
from dialer.store.db import Row
from duecall import monitoring
from duecall.cli import main
from duecall.logs import JsonFormatter
from sms.sender import Sender
from tests.support.gateway import ScriptedGateway
from tests.support.records import borrower
from tests.support.stores import backend_store

__all__ = ["backend_store"]  # the fixture: each test that takes `store` runs on both backends

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # 10:00 in New York: inside every window


@dataclass
class FakeDialer:
    """The running dialer's public state, with the real pacer and AMI client (never connected)."""

    pacer: Pacer
    text_pacer: Pacer
    ami: AmiClient


@dataclass
class CountedDialer(FakeDialer):
    calls_in_flight: int  # as `Dialer.calls_in_flight` gives it


def _dialer() -> FakeDialer:
    ami = AmiClient(AmiEndpoint("127.0.0.1", 9, "u"), AmiTimeouts(), on_event=lambda m: None)
    ami.sessions = 3  # two reconnects
    ami.connected.set()
    d = FakeDialer(Pacer(20, 5.0), Pacer(16, 20.0), ami)
    d.pacer.in_flight, d.text_pacer.in_flight = 4, 2
    return d


def _blocked(account: Account, h: Sequence[PastAttempt], o: bool, p: Preferences) -> Decision:
    reasons = (Reason("window", "07:00 local is before 08:00"), Reason("consent", "informative only"))
    return Decision(False, reasons, NOW + timedelta(hours=1))


def _allowed(account: Account, h: Sequence[PastAttempt], o: bool, p: Preferences) -> Decision:
    return Decision(True, (Reason("window", "inside"),))


def _steps(at: datetime) -> tuple[IvrStep, ...]:
    """Heard words that match no phrase, then a spoken answer not confirmed, then keys."""
    kinds = [
        ("prompt", {"text": "Press 1 to pay today."}),
        ("speech", {"transcript": "the weather", "confidence": 0.9, "phrase": None}),
        ("no_match", {"attempt": 1}),
        ("speech", {"transcript": "pay today", "confidence": 0.9, "phrase": "pay today"}),
        ("confirm", {"option": "pay", "heard": "pay today", "answer": "no", "by": "voice"}),
        ("no_match", {"attempt": 2, "reason": "not confirmed"}),
        ("key", {"digit": "9", "barge_in": False}),
        ("no_match", {"attempt": 3}),  # a wrong key: not a speech reject
        ("key", {"digit": "1", "barge_in": False}),
        ("outcome", {"outcome": "pay_today"}),
    ]
    return tuple(IvrStep(at + timedelta(seconds=i), "menu", k, d) for i, (k, d) in enumerate(kinds))


async def _call(store: Store, campaign_id: int, account_id: str, result: CallResult | None) -> None:
    targets = {t.account.account_id: t for t in await store.due_targets(campaign_id, NOW, 10)}
    decide = _allowed if result is not None else _blocked
    got = await store.claim(targets[account_id], NOW, decide, lambda i, _: f"/tmp/r{i}", "t", NOW)
    if result is not None:
        assert isinstance(got, Attempt)
        await store.finish_attempt(got, result, TargetUpdate(TargetState.DONE, NOW), "dialer:t")


async def _text(store: Store, sender: Sender, account_id: str) -> None:
    account = await store.account(account_id)
    assert account is not None
    request = TextRequest(account, "b1", "reminder-en-US#before_due", "Acme: a reminder.", "gsm-7", 1, "x")
    await sender.send(request)


@pytest.fixture
async def store(backend_store: Store) -> Store:
    phones = {"A1": "+12025550101", "A2": "+12025550102", "A3": "+12025550103", "A4": "+12025550104"}
    await backend_store.upsert_accounts([borrower(a, p) for a, p in phones.items()], NOW)
    return backend_store


async def _seed(store: Store) -> None:
    """A1: refused (window); A2: answered with two speech rejects; A3: no answer; texts to A3, A4
    (accepted) and to A1 after its STOP (refused: opt-out)."""
    campaign = await store.create_campaign("c", NOW)
    await store.add_targets(campaign.id, NOW)
    await _call(store, campaign.id, "A1", None)
    answered = NOW + timedelta(seconds=5)
    ivr = IvrSummary("reminder-en-US", "pay_today", None, 100, True, _steps(answered))
    await _call(
        store,
        campaign.id,
        "A2",
        CallResult(Disposition.ANSWERED, NOW + timedelta(minutes=1), answered, ivr=ivr),
    )
    await _call(store, campaign.id, "A3", CallResult(Disposition.NO_ANSWER, NOW + timedelta(seconds=25)))
    sender = Sender(store, PackGate(load_pack("us-regf")), ScriptedGateway(), FixedClock(NOW), "t")
    await store.opt_out("+12025550101", "sms", NOW, "test")
    for account_id in ("A3", "A4", "A1"):
        await _text(store, sender, account_id)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[s.name, tuple(sorted(s.labels.items()))] = s.value
    return found


def _scrape(collector: monitoring.DueCallCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return _samples(generate_latest(monitoring.registry_for(collector)).decode())


async def test_figures_from_the_store_and_the_dialer(store: Store) -> None:
    campaign = await store.create_campaign("before", NOW)  # before the dialer started: not counted
    await store.add_targets(campaign.id, NOW)
    await _call(store, campaign.id, "A4", CallResult(Disposition.BUSY, NOW + timedelta(seconds=5)))
    refresher = monitoring.Refresher(store, 10.0)
    await refresher.trail.start(store)
    await _seed(store)
    await refresher.once()
    d = _dialer()
    got = _scrape(monitoring.DueCallCollector(refresher, monitoring.LagProbe(), d))

    assert got["duecall_attempts_total", (("disposition", "answered"),)] == 1
    assert got["duecall_attempts_total", (("disposition", "no_answer"),)] == 1
    assert ("duecall_attempts_total", (("disposition", "busy"),)) not in got  # before the start
    assert got["duecall_policy_refusals_total", (("channel", "voice"), ("rule", "window"))] == 1
    assert got["duecall_policy_refusals_total", (("channel", "sms"), ("rule", "opt-out"))] == 1
    refused_rules = {dict(k[1]).get("rule") for k in got if k[0] == "duecall_policy_refusals_total"}
    assert refused_rules == {"window", "opt-out"}  # consent only informed: not a refusal
    assert got["duecall_texts_total", (("state", "queued"),)] == 2
    assert got["duecall_texts_total", (("state", "submitted"),)] == 2  # the gateway took them
    assert got["duecall_ivr_speech_rejects_total", (("why", "unmatched"),)] == 1
    assert got["duecall_ivr_speech_rejects_total", (("why", "not_confirmed"),)] == 1
    assert got["duecall_calls_in_flight", ()] == 4
    assert got["duecall_texts_in_flight", ()] == 2
    assert got["duecall_call_lines_allowed", ()] == 20
    assert got["duecall_ami_connected", ()] == 1
    assert got["duecall_ami_reconnects_total", ()] == 2
    assert got["duecall_metrics_refresh_errors_total", ()] == 0
    assert got["duecall_metrics_refreshed_timestamp_seconds", ()] > 0

    counted = CountedDialer(d.pacer, d.text_pacer, d.ami, 7)  # the dialer's own count, where it has one
    assert _scrape(monitoring.DueCallCollector(refresher, monitoring.LagProbe(), counted))[
        "duecall_calls_in_flight", ()
    ] == 7  # fmt: skip

    await refresher.once()  # nothing new: the same counts, never counted twice
    assert _scrape(monitoring.DueCallCollector(refresher, monitoring.LagProbe(), None))[
        "duecall_attempts_total", (("disposition", "answered"),)
    ] == 1  # fmt: skip


async def test_a_long_trail_is_read_in_bounded_chunks(store: Store, monkeypatch: Any) -> None:
    monkeypatch.setattr(monitoring.trail, "CHUNK", 3)
    monkeypatch.setattr(monitoring.trail, "MAX_CHUNKS", 2)
    refresher = monitoring.Refresher(store, 10.0)
    await refresher.trail.start(store)
    await _seed(store)
    for _ in range(40):  # 6 events a refresh at most; the counts arrive, none twice
        await refresher.once()
    trail = refresher.trail
    assert trail.attempts == {"answered": 1, "no_answer": 1}
    assert sum(trail.speech_rejects.values()) == 2 and sum(trail.texts.values()) == 4


def test_labels_stay_in_the_vocabulary() -> None:
    trail = monitoring.TrailCounts()
    trail.take("call.ended", 1, {"disposition": "x" * 10_000})
    trail.take("contact.blocked", None, {"reasons": [{"rule": "made-up"}, "junk", {"no": "rule"}]})
    trail.take("message.state", None, {"state": ["not", "a", "state"]})
    assert trail.attempts == {"other": 1} and trail.texts == {"other": 1}
    assert trail.refusals == {("voice", "other"): 2}


class CountingReads:
    """The store as the refresher sees it, counting the queries."""

    def __init__(self, store: Store) -> None:
        self.store, self.queries = store, 0

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.queries += 1
        return await self.store.fetch_all(sql, params)

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self.queries += 1
        return await self.store.fetch_one(sql, params)


async def test_scrapes_never_query_the_store_only_the_refresher_does(store: Store) -> None:
    reads = CountingReads(store)
    settings = Settings(metrics={"port": 0, "refresh": "0.3s"})
    with monitoring.listen("127.0.0.1", 0) as sock:
        port = sock.getsockname()[1]
        async with (
            monitoring.serving(settings, reads, _dialer(), sock) as refresher,
            httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client,
        ):
            assert refresher is not None
            started = time.monotonic()
            scrapes = 0
            while time.monotonic() - started < 1.0:
                assert (await client.get("/metrics")).status_code == 200
                scrapes += 1
            reads_seen = refresher.reads
    assert scrapes > 20
    assert 2 <= reads_seen <= 4  # once per 0.3 s, whatever the scrapes
    # the start (1 query) and each refresh: the head and one chunk
    assert reads.queries == 1 + 2 * reads_seen


class FailingOnce(CountingReads):
    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self.queries += 1
        if self.queries == 2:
            raise sqlite3.OperationalError("database is locked")
        return await self.store.fetch_one(sql, params)


async def test_a_failed_read_is_counted_and_the_next_one_catches_up(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    reads = FailingOnce(store)
    refresher = monitoring.Refresher(reads, 10.0)
    await refresher.trail.start(reads)
    await _seed(store)
    await refresher.once()
    assert (refresher.errors, refresher.refreshed_at) == (1, 0.0)
    assert "database is locked" in caplog.text
    await refresher.once()
    assert refresher.errors == 1 and refresher.trail.attempts == {"answered": 1, "no_answer": 1}


@pytest.fixture
async def endpoint(store: Store, monkeypatch: Any) -> AsyncIterator[int]:
    monkeypatch.setattr(monitoring.http, "REQUEST_SECONDS", 1.0)
    with monitoring.listen("127.0.0.1", 0) as sock:
        async with monitoring.serving(Settings(), store, _dialer(), sock) as refresher:
            assert refresher is not None
            await _seed(store)
            await refresher.once()
            yield sock.getsockname()[1]


async def _get(port: int, path: str = "/metrics") -> httpx2.Response:
    async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        return await client.get(path)


async def test_a_real_scrape_over_http(endpoint: int) -> None:
    reply = await _get(endpoint)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=")
    got = _samples(reply.text)
    assert got["duecall_attempts_total", (("disposition", "answered"),)] == 1
    assert got["duecall_calls_in_flight", ()] == 4
    assert "server" not in reply.headers


async def test_a_bad_path_or_method_is_refused(endpoint: int) -> None:
    assert (await _get(endpoint, "/")).status_code == 404
    assert (await _get(endpoint, "/metrics/../../etc/passwd")).status_code == 404
    async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{endpoint}", timeout=5) as client:
        assert (await client.post("/metrics", content=b"x" * 1000)).status_code == 405
    assert (await _get(endpoint)).status_code == 200


async def _raw(port: int, data: bytes, wait: float = 5.0) -> bytes:
    """Send raw bytes; what the server answered before it closed (or `wait` ran out)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(wait):
            return await reader.read(65536)
    finally:
        writer.close()


async def test_a_huge_header_is_refused_and_the_server_still_answers(endpoint: int) -> None:
    huge = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"
    started = time.monotonic()
    try:
        answer = await _raw(endpoint, huge)
    except ConnectionResetError:
        answer = b""  # closed while we were still writing: refused as well
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:100]
    assert time.monotonic() - started < 3
    assert (await _get(endpoint)).status_code == 200


async def test_a_slow_client_is_cut_off_and_the_server_still_answers(endpoint: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", endpoint)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # ... and never the end of the headers
    await writer.drain()
    started = time.monotonic()
    assert (await _get(endpoint)).status_code == 200  # others are served meanwhile
    async with asyncio.timeout(5):
        assert await reader.read(100) == b""  # closed by the server at REQUEST_SECONDS (1 s here)
    assert 0.5 < time.monotonic() - started < 3
    writer.close()


async def test_a_crowd_of_idle_connections_gets_503_not_a_stall(endpoint: int) -> None:
    idle = [
        await asyncio.open_connection("127.0.0.1", endpoint) for _ in range(monitoring.http.MAX_CONNECTIONS)
    ]
    extra = await _raw(endpoint, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert extra.startswith(b"HTTP/1.1 503"), extra[:60]
    for _, writer in idle:
        writer.close()
    await asyncio.sleep(0.1)
    assert (await _get(endpoint)).status_code == 200


async def test_the_endpoint_is_off_by_default(store: Store) -> None:
    async with monitoring.serving(Settings(), store, _dialer()) as refresher:
        assert refresher is None


async def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"127.0.0.1:{port} \(\[metrics\] port\)"):
            monitoring.listen("127.0.0.1", port)


async def test_the_lag_probe_sees_a_blocked_loop() -> None:
    probe = monitoring.LagProbe(interval=0.05)
    task = asyncio.create_task(probe.run())
    try:
        await asyncio.sleep(0.2)
        assert probe.largest() < 0.1
        time.sleep(0.3)  # the loop blocked on purpose
        await asyncio.sleep(0.2)
        assert probe.largest() >= 0.25
        assert probe.last < 0.1  # and it recovered
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_metric_settings_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "duecall.toml"
    path.write_text('[metrics]\nport = 70000\n[logging]\nformat = "xml"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "metrics.port" in str(caught.value) and "logging.format" in str(caught.value)
    path.write_text('[metrics]\nport = 9473\n[logging]\nformat = "json"\n', encoding="utf-8")
    s = load_settings(path)
    assert (s.metrics.host, s.metrics.port, s.logging.format) == ("127.0.0.1", 9473, "json")


def _record(message: str, **extra: Any) -> logging.LogRecord:
    record = logging.getLogger("dialer.campaign.engine").makeRecord(
        "dialer.campaign.engine", logging.WARNING, __file__, 1, message, (), None, extra=extra
    )
    record.created = datetime(2026, 12, 1, 18, 0, 0, 123000, tzinfo=UTC).timestamp()
    return record


def test_a_log_record_is_one_json_line() -> None:
    text = "attempt 7:\nanswered 张伟\r\x85\u2028\u2029 ok"  # every line break Python knows
    line = JsonFormatter().format(_record(text, attempt=7, at=NOW))
    assert len(line.splitlines()) == 1
    found = json.loads(line)
    assert found == {
        "time": "2026-12-01T18:00:00.123+00:00",
        "level": "WARNING",
        "logger": "dialer.campaign.engine",
        "message": text,
        "attempt": 7,
        "at": str(NOW),  # not JSON: its str()
    }
    assert "张伟" in line  # UTF-8, not \\u escapes


def test_a_traceback_stays_in_the_one_line() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        record = _record("failed")
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert len(line.splitlines()) == 1
    assert "ValueError: bad\nvalue" in json.loads(line)["exception"]


def test_the_cli_takes_the_json_format(tmp_path: Path, monkeypatch: Any) -> None:
    """`[logging] format = "json"` gives the root logger's handlers the JSON formatter."""
    mine = logging.StreamHandler(io.StringIO())
    monkeypatch.setattr(logging.getLogger(), "handlers", [mine])  # pytest's own stay as they are
    cfg = tmp_path / "duecall.toml"
    cfg.write_text('[logging]\nformat = "json"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(cfg), "strategy", "--help"])
    assert result.exit_code == 0, result.output
    assert isinstance(mine.formatter, JsonFormatter)
    logging.getLogger("duecall.test").warning("hello\nworld")
    [line] = mine.stream.getvalue().splitlines()
    assert json.loads(line)["message"] == "hello\nworld"

"""The dialer's Prometheus endpoint (`[metrics]`, docs/monitoring.md): figures for a monitoring system.

Two sources, and a scrape awaits neither:
- the running dialer's own state (lines in use, the pacer's allowance, the AMI session count),
  read as it is at the scrape: plain attributes, no I/O;
- the store's audit trail, read by a refresher task at most once per `[metrics] refresh`: only the
  events appended since its last read (a range on the chain's `seq`, in bounded chunks), so a
  scrape never queries the store and the cost of a refresh does not grow with the database.
  Counters start at zero when the dialer starts (Prometheus's `rate()` expects that).

The HTTP server (`http`) is uvicorn on its own loopback socket, in the dialer's event loop; the
trail's counters are `trail`. This module holds the collector, the refresher, the lag probe and
`serving`, which runs them for a block.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from dialer.core.config import Settings
from dialer.store import Reads
from duecall.monitoring import http
from duecall.monitoring.http import listen
from duecall.monitoring.trail import TrailCounts

__all__ = ["DueCallCollector", "LagProbe", "Refresher", "TrailCounts", "listen", "registry_for", "serving"]
log = logging.getLogger(__name__)

LAG_INTERVAL = 0.5  # the lag probe sleeps this long and measures how late it wakes
LAG_WINDOW = 60.0  # seconds: the largest lag over this window is reported too


class Lines(Protocol):
    """What the metrics read of a pacer (dialer.campaign.pacing.Pacer)."""

    in_flight: int

    def allowed(self) -> int: ...


class AmiView(Protocol):
    sessions: int
    connected: asyncio.Event


class DialerView(Protocol):
    """What the metrics read of the running dialer (dialer.campaign.engine.Dialer): no I/O."""

    @property
    def pacer(self) -> Lines: ...

    @property
    def text_pacer(self) -> Lines: ...

    @property
    def ami(self) -> AmiView: ...


# -- event-loop lag -------------------------------------------------------------------


class LagProbe:
    """How late the event loop runs a timer: a blocked loop delays every call's events."""

    def __init__(self, interval: float = LAG_INTERVAL, window: float = LAG_WINDOW) -> None:
        self.interval = interval
        self.last = 0.0
        self._recent: deque[tuple[float, float]] = deque()  # (when, lag)
        self._window = window

    def largest(self) -> float:
        return max((lag for _, lag in self._recent), default=0.0)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval)
            now = loop.time()
            self.note(now, max(0.0, now - started - self.interval))

    def note(self, now: float, lag: float) -> None:
        self.last = lag
        self._recent.append((now, lag))
        while self._recent and self._recent[0][0] < now - self._window:
            self._recent.popleft()


# -- the collector ------------------------------------------------------------------


@dataclass
class Refresher:
    """Reads the trail at most once per `interval`; a failed read is counted and tried again."""

    store: Reads
    interval: float
    trail: TrailCounts = field(default_factory=TrailCounts)
    reads: int = 0
    errors: int = 0
    refreshed_at: float = 0.0  # time.time() of the last good read

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.once()

    async def once(self) -> None:
        self.reads += 1
        try:
            await self.trail.refresh(self.store)
        except Exception:  # the store's (sqlite3's) errors or a bug: the figures must never stop the run
            self.errors += 1
            log.exception("metrics: reading the audit trail failed; the figures keep their last values")
        else:
            self.refreshed_at = time.time()


class DueCallCollector(Collector):
    """Every figure, built at the scrape from what is in memory."""

    def __init__(self, refresher: Refresher, lag: LagProbe, dialer: DialerView | None) -> None:
        self.refresher, self.lag, self.dialer = refresher, lag, dialer

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        yield from self._dialer()
        yield from self._trail(self.refresher.trail)
        lag = self.lag
        yield GaugeMetricFamily(
            "duecall_event_loop_lag_seconds", "How late the event loop last ran a timer", value=lag.last
        )
        yield GaugeMetricFamily(
            "duecall_event_loop_lag_max_seconds", "Largest event-loop lag in the last minute", lag.largest()
        )
        r = self.refresher
        yield CounterMetricFamily(
            "duecall_metrics_refresh_errors", "Failed reads of the audit trail for these figures", r.errors
        )
        yield GaugeMetricFamily(
            "duecall_metrics_refreshed_timestamp_seconds", "When the trail was last read", r.refreshed_at
        )

    def _dialer(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        d = self.dialer
        if d is None:
            return
        yield GaugeMetricFamily("duecall_calls_in_flight", "Calls in flight", value=_calls_in_flight(d))
        yield GaugeMetricFamily(
            "duecall_call_lines_allowed", "Lines the pacer allows now (fewer while Asterisk lags)",
            value=d.pacer.allowed(),
        )  # fmt: skip
        yield GaugeMetricFamily("duecall_texts_in_flight", "Texts being sent", value=d.text_pacer.in_flight)
        connected = 1 if d.ami.connected.is_set() else 0
        yield GaugeMetricFamily("duecall_ami_connected", "1 while logged in to AMI", value=connected)
        reachable = 1 if getattr(d, "database_available", True) else 0
        yield GaugeMetricFamily(
            "duecall_database_available", "0 while the database cannot be reached", value=reachable
        )
        yield CounterMetricFamily(
            "duecall_ami_reconnects", "AMI logins after the first", value=max(0, d.ami.sessions - 1)
        )

    def _trail(self, t: TrailCounts) -> Iterable[CounterMetricFamily]:
        yield _counter("duecall_attempts", "Calls ended, by disposition", ["disposition"], t.attempts)
        yield _counter("duecall_texts", "Texts that reached each state", ["state"], t.texts)
        yield _counter(
            "duecall_policy_refusals", "Contacts the policy refused, by rule", ["channel", "rule"], t.refusals
        )
        yield _counter(
            "duecall_ivr_speech_rejects", "Spoken replies the IVR did not take", ["why"], t.speech_rejects
        )


def _calls_in_flight(d: DialerView) -> int:
    """The dialer's own count where it has one (`Dialer.calls_in_flight`: calls placed or adopted
    and not yet stored), else the pacer's lines in use (those calls but the adopted ones, plus the
    line the scheduler holds while it prepares the next call)."""
    own = getattr(d, "calls_in_flight", None)
    return own if isinstance(own, int) else d.pacer.in_flight


def _counter(name: str, doc: str, labels: Sequence[str], counts: Counter[Any]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, n in sorted(counts.items()):
        family.add_metric(list(key) if isinstance(key, tuple) else [key], n)
    return family


def registry_for(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


@contextlib.asynccontextmanager
async def serving(
    s: Settings, store: Reads, dialer: DialerView | None, sock: socket.socket | None = None
) -> AsyncIterator[Refresher | None]:
    """The endpoint, the trail's refresher and the lag probe run for the block (none if port = 0).

    Their tasks never end the block: the refresher counts its failures, the server answers errors."""
    if s.metrics.port == 0 and sock is None:
        yield None
        return
    sock = sock or listen(s.metrics.host, s.metrics.port)
    refresher = Refresher(store, s.metrics.refresh.total_seconds())
    lag = LagProbe()
    web = http.server(http.metrics_app(registry_for(DueCallCollector(refresher, lag, dialer))))
    try:
        await refresher.trail.start(store)
        tasks = [
            asyncio.create_task(web.serve(sockets=[sock]), name="metrics-http"),
            asyncio.create_task(refresher.run(), name="metrics-refresh"),
            asyncio.create_task(lag.run(), name="metrics-lag"),
        ]
        try:
            host, port = sock.getsockname()[:2]
            log.info("metrics on http://%s:%d/metrics", host, port)
            yield refresher
        finally:
            web.should_exit = True
            for task in tasks[1:]:
                task.cancel()
            await asyncio.wait(tasks[:1], timeout=http.REQUEST_SECONDS + 1)
            tasks[0].cancel()
            for ended in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(ended, Exception):  # a bug: say so, but never fail the run for it
                    log.error("metrics: a task failed: %r", ended)
    finally:
        sock.close()

"""Pacing: at most N calls at once and at most R new calls per second, fewer while Asterisk lags.

`max_concurrent` and `calls_per_second` are ceilings. `Backoff` lowers both when Asterisk falls
behind: at 500 concurrent IVR calls on a small machine it answered AMI actions late, borrowers
who answered were recorded `no_answer` and journeys failed. Counting calls in flight does not
see that, so the AMI client reports each action's round-trip time and the pacer runs an AIMD
controller on it (as TCP does with its window): a reply slower than `slow` cuts the allowed
share multiplicatively (at most once per `cooldown`, since one stall delays many replies at
once); every second without a slow reply gives back `recover_per_second` of it, additively.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BackoffRule:
    slow: float = 0.5  # seconds: an AMI reply slower than this means Asterisk is falling behind
    cut: float = 0.5  # the allowed share is multiplied by this on a slow reply
    cooldown: float = 2.0  # seconds: at most one cut per cooldown
    recover_per_second: float = 0.02  # share regained per second without a slow reply
    floor: float = 0.05  # never below this share of the ceilings (and never below one line)


class Backoff:
    """The AIMD controller, pure: fed (time, latency) samples, it says what share of the ceilings
    is allowed now, between `rule.floor` and 1."""

    def __init__(self, rule: BackoffRule = BackoffRule()) -> None:
        self.rule = rule
        self._share = 1.0
        self._at: float | None = None  # time of the last sample (or cut)
        self._last_cut = float("-inf")
        self.cuts = 0

    def share(self, now: float) -> float:
        """The allowed share at `now`, counting the recovery since the last sample."""
        if self._at is None or now < self._last_cut + self.rule.cooldown:
            return self._share
        since = now - max(self._at, self._last_cut + self.rule.cooldown)
        return min(1.0, self._share + max(0.0, since) * self.rule.recover_per_second)

    def observe(self, now: float, latency: float) -> float:
        """Take one round-trip time; returns the new share."""
        share = self.share(now)
        if latency > self.rule.slow and now >= self._last_cut + self.rule.cooldown:
            share = max(self.rule.floor, share * self.rule.cut)
            self._last_cut = now
            self.cuts += 1
        self._share, self._at = share, now
        return share


class Pacer:
    def __init__(
        self,
        max_concurrent: int,
        calls_per_second: float,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_concurrent = max_concurrent
        self.calls_per_second = calls_per_second
        self.backoff = backoff or Backoff()
        self.in_flight = 0
        self._now = clock
        self._next_start = 0.0
        self._changed = asyncio.Event()

    def allowed(self) -> int:
        """Lines that may be in use now: the ceiling scaled by the backoff, at least one."""
        return max(1, int(self.max_concurrent * self.backoff.share(self._now())))

    def observe(self, latency: float) -> None:
        """An AMI round-trip time (seconds): slow ones lower the pace, see `Backoff`."""
        before = self.allowed()
        self.backoff.observe(self._now(), latency)
        after = self.allowed()
        if after < before:
            log.warning(
                "Asterisk is falling behind (AMI reply in %.2f s): pacing down to %d lines, %.1f calls/s",
                latency,
                after,
                self._rate(),
            )
        self._changed.set()

    async def acquire(self) -> None:
        """Wait for a free line, then for the next start permitted by the rate."""
        while self.in_flight >= self.allowed():
            self._changed.clear()
            await self._wait_change()
        self.in_flight += 1
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self._next_start)
        self._next_start = start + 1.0 / self._rate()
        if start > now:
            try:
                await asyncio.sleep(start - now)
            except BaseException:
                self.release()
                raise

    def release(self) -> None:
        self.in_flight -= 1
        self._changed.set()

    def _rate(self) -> float:
        return self.calls_per_second * self.allowed() / self.max_concurrent

    async def _wait_change(self) -> None:
        """Until a line is released or the pace changes; recovery happens with time, so re-check
        every second even if nothing is released."""
        try:
            async with asyncio.timeout(1.0):
                await self._changed.wait()
        except TimeoutError:
            pass

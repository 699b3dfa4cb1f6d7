"""Pacing: at most N calls at once and at most R new calls per second."""

from __future__ import annotations

import asyncio


class Pacer:
    def __init__(self, max_concurrent: int, calls_per_second: float) -> None:
        self._slots = asyncio.Semaphore(max_concurrent)
        self._interval = 1.0 / calls_per_second
        self._next_start = 0.0
        self.max_concurrent = max_concurrent
        self.in_flight = 0

    async def acquire(self) -> None:
        """Wait for a free line, then for the next start permitted by the rate."""
        await self._slots.acquire()
        self.in_flight += 1
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self._next_start)
        self._next_start = start + self._interval
        if start > now:
            try:
                await asyncio.sleep(start - now)
            except BaseException:
                self.release()
                raise

    def release(self) -> None:
        self.in_flight -= 1
        self._slots.release()

"""Pacing: the AIMD backoff (pure) and the pacer that applies it, alone and fed by a slow AMI peer."""

from __future__ import annotations

import asyncio
import time

import pytest

from dialer.asterisk.ami import AmiClient, AmiEndpoint, AmiTimeouts
from dialer.asterisk.ami_protocol import Message
from dialer.campaign.pacing import Backoff, BackoffRule, Pacer
from tests.support.fake_ami import FakeAmi, block

RULE = BackoffRule(slow=0.5, cut=0.5, cooldown=2.0, recover_per_second=0.1, floor=0.05)


# --- the controller, pure ------------------------------------------------------------------------


def test_fast_replies_keep_the_full_pace() -> None:
    backoff = Backoff(RULE)
    assert [backoff.observe(t, 0.01) for t in range(10)] == [1.0] * 10
    assert backoff.cuts == 0


def test_a_slow_reply_halves_the_pace_and_one_stall_counts_once() -> None:
    backoff = Backoff(RULE)
    assert backoff.observe(10.0, 0.9) == 0.5
    # The same stall delays every reply in flight: no further cut within the cooldown.
    assert backoff.observe(10.1, 1.2) == 0.5
    assert backoff.observe(11.9, 0.8) == 0.5
    assert backoff.observe(12.0, 0.8) == 0.25  # still slow after the cooldown: cut again
    assert backoff.cuts == 2


def test_recovery_is_gradual_and_starts_after_the_cooldown() -> None:
    backoff = Backoff(RULE)
    backoff.observe(0.0, 1.0)  # 0.5
    assert backoff.share(1.0) == 0.5  # cooldown: no recovery yet
    assert backoff.share(4.0) == pytest.approx(0.7)  # 2 s after the cooldown, +0.1/s
    assert backoff.observe(4.0, 0.01) == pytest.approx(0.7)
    assert backoff.share(6.0) == pytest.approx(0.9)
    assert backoff.share(60.0) == 1.0  # capped


def test_sustained_slowness_goes_down_to_the_floor_and_no_lower() -> None:
    backoff = Backoff(RULE)
    shares = [backoff.observe(2.0 * i, 3.0) for i in range(12)]
    assert shares[:4] == [0.5, 0.25, 0.125, 0.0625]
    assert min(shares) == 0.05 and shares[-1] == 0.05


# --- the pacer -----------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_pacer_lowers_lines_and_rate_with_the_backoff() -> None:
    clock = FakeClock()
    pacer = Pacer(500, 20.0, Backoff(RULE), clock)
    assert (pacer.allowed(), pacer._rate()) == (500, 20.0)
    pacer.observe(2.0)
    assert (pacer.allowed(), pacer._rate()) == (250, 10.0)
    clock.now += 2.0 + 5.0  # cooldown, then 5 s of recovery at 0.1/s
    assert pacer.allowed() == 500
    small = Pacer(2, 1.0, Backoff(RULE), clock)
    for _ in range(5):
        small.observe(9.0)
        clock.now += 2.0
    assert small.allowed() == 1  # never zero: the campaign keeps moving


async def test_no_new_line_while_in_flight_exceeds_the_lowered_limit() -> None:
    clock = FakeClock()
    pacer = Pacer(4, 1000.0, Backoff(RULE), clock)
    for _ in range(4):
        await pacer.acquire()
    pacer.observe(1.0)  # 4 in flight, 2 allowed now
    waiter = asyncio.create_task(pacer.acquire())
    pacer.release()  # 3 in flight: still above 2
    await asyncio.sleep(0.05)
    assert not waiter.done()
    pacer.release()
    pacer.release()  # 1 in flight
    await asyncio.wait_for(waiter, 1)
    assert pacer.in_flight == 2


async def test_a_waiting_acquire_is_woken_by_recovery_alone() -> None:
    clock = FakeClock()
    pacer = Pacer(2, 1000.0, Backoff(BackoffRule(cooldown=0.0, recover_per_second=1.0)), clock)
    await pacer.acquire()
    pacer.observe(5.0)  # allowed 1, 1 in flight
    waiter = asyncio.create_task(pacer.acquire())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    clock.now += 1.0  # recovered; nothing released
    await asyncio.wait_for(waiter, 2)


# --- fed by the AMI client: slow replies reduce the pace ----------------------------------------


async def test_slow_ami_replies_reduce_the_pace_and_fast_ones_restore_it() -> None:
    fake = FakeAmi()
    port = await fake.start()
    delay = {"seconds": 0.0}

    async def slow_reply(writer_index: int, message: Message) -> None:
        await asyncio.sleep(delay["seconds"])
        fake.writers[writer_index].write(block(Response="Success", ActionID=message["ActionID"]))

    tasks: set[asyncio.Task[None]] = set()

    def reply_later(message: Message) -> None:
        task = asyncio.create_task(slow_reply(len(fake.writers) - 1, message))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    fake.on_action["DBGet"] = lambda m: reply_later(m)  # type: ignore[func-returns-value]
    rule = BackoffRule(slow=0.2, cut=0.5, cooldown=0.3, recover_per_second=0.5)
    pacer = Pacer(100, 50.0, Backoff(rule))
    timeouts = AmiTimeouts(connect=2, action=2, ping_interval=30, reconnect_delay=0.05)
    client = AmiClient(
        AmiEndpoint("127.0.0.1", port, "duecall", "s3cret"),
        timeouts,
        lambda m: None,
        on_round_trip=pacer.observe,
    )
    run = asyncio.create_task(client.run())
    try:
        await client.wait_connected(2)
        await client.send("DBGet", {})
        assert pacer.allowed() == 100
        delay["seconds"] = 0.4  # Asterisk falls behind
        started = time.monotonic()
        await asyncio.gather(*(client.send("DBGet", {}) for _ in range(10)))
        assert pacer.allowed() == 50  # ten slow replies of one stall: one cut
        await asyncio.sleep(0.35)
        await client.send("DBGet", {})
        # Still slow after the cooldown: cut again (from what it had recovered meanwhile).
        assert pacer.allowed() < 50 and pacer.backoff.cuts == 2
        assert pacer._rate() == pytest.approx(50.0 * pacer.allowed() / 100)
        delay["seconds"] = 0.0  # it catches up
        await client.send("DBGet", {})
        await asyncio.sleep(0.3 + 1.5)  # cooldown, then +0.5/s: full again within 1.5 s
        await client.send("DBGet", {})
        assert pacer.allowed() == 100, time.monotonic() - started
        assert pacer.backoff.cuts == 2
    finally:
        client.close()
        run.cancel()
        await asyncio.gather(run, *tasks, return_exceptions=True)
        await fake.stop()

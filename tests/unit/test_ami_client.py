"""The AMI client's promises, against a scripted peer at the project's own boundary."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections.abc import AsyncIterator

import pytest

from dialer.asterisk.ami import AmiClient, AmiEndpoint, AmiTimeouts
from dialer.asterisk.ami_protocol import Message
from dialer.core.errors import AmiActionFailed, AmiAuthFailed, AmiDisconnected, AmiTimeout
from tests.support.fake_ami import FakeAmi, block

FAST = AmiTimeouts(connect=2, action=0.5, ping_interval=0.2, reconnect_delay=0.05)


@contextlib.asynccontextmanager
async def client_for(fake: FakeAmi, secret: str = "s3cret") -> AsyncIterator[tuple[AmiClient, list[Message]]]:
    port = await fake.start()
    events: list[Message] = []
    client = AmiClient(AmiEndpoint("127.0.0.1", port, "duecall", secret), FAST, events.append)
    task = asyncio.create_task(client.run())
    try:
        yield client, events
    finally:
        client.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await fake.stop()


async def test_login_and_events_reach_the_handler() -> None:
    fake = FakeAmi()
    async with client_for(fake) as (client, events):
        await client.wait_connected(2)
        fake.writers[0].write(block(Event="UserEvent", UserEvent="DueCallDial", Attempt="x-1"))
        await asyncio.sleep(0.1)
        assert events == [{"Event": "UserEvent", "UserEvent": "DueCallDial", "Attempt": "x-1"}]


async def test_wrong_secret_stops_with_a_clear_error() -> None:
    fake = FakeAmi()
    port = await fake.start()
    client = AmiClient(AmiEndpoint("127.0.0.1", port, "duecall", "wrong"), FAST, lambda m: None)
    with pytest.raises(AmiAuthFailed, match="Authentication failed"):
        await asyncio.wait_for(client.run(), 3)
    await fake.stop()


async def test_a_login_refused_while_asterisk_stops_is_tried_again() -> None:
    """Asterisk restarting under the dialer answers every Login "Asterisk is shutting down": not a
    wrong secret (which stops the client), so the client logs in again once it is back."""
    fake = FakeAmi()
    refusals = 2

    def login(message: Message) -> list[bytes]:
        nonlocal refusals
        if refusals:
            refusals -= 1
            stopping = "Asterisk is shutting down"
            return [block(Response="Error", ActionID=message["ActionID"], Message=stopping)]
        return [block(Response="Success", ActionID=message["ActionID"], Message="Authentication accepted")]

    fake.on_action["Login"] = login
    async with client_for(fake) as (client, _):
        await client.wait_connected(3)
        assert refusals == 0 and client.sessions == 1 and fake.connections == 3


async def test_wait_connected_times_out_naming_the_address() -> None:
    client = AmiClient(AmiEndpoint("127.0.0.1", 9, "duecall", "x"), FAST, lambda m: None)
    task = asyncio.create_task(client.run())
    with pytest.raises(AmiTimeout, match=r"127\.0\.0\.1:9 within 0\.3 s"):
        await client.wait_connected(0.3)
    client.close()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_originate_is_never_sent_twice_across_a_reconnect() -> None:
    fake = FakeAmi()
    fake.on_action["Originate"] = lambda m: (fake.drop_all(), None)[1]  # cut before replying
    async with client_for(fake) as (client, _):
        await client.wait_connected(2)
        with pytest.raises(AmiDisconnected):
            await client.send("Originate", {"Channel": "Local/1@x", "Async": "true"})
        await asyncio.sleep(0.3)
        await client.wait_connected(2)
        assert client.sessions >= 2
        await client.send("Ping", {})
        assert len(fake.actions("Originate")) == 1


async def test_unanswered_pings_cause_a_reconnect() -> None:
    fake = FakeAmi()
    async with client_for(fake) as (client, _):
        await client.wait_connected(2)
        fake.answer_pings = False
        await asyncio.sleep(1.2)  # ping interval 0.2 s + reply timeout 0.5 s
        fake.answer_pings = True
        await client.wait_connected(2)
        assert fake.connections >= 2


async def test_error_response_raises_with_the_message() -> None:
    fake = FakeAmi()
    fake.on_action["Originate"] = lambda m: [
        block(Response="Error", ActionID=m["ActionID"], Message="Extension does not exist.")
    ]
    async with client_for(fake) as (client, _):
        await client.wait_connected(2)
        with pytest.raises(AmiActionFailed, match="Extension does not exist"):
            await client.send("Originate", {"Async": "true"})


async def test_list_action_collects_events_until_complete() -> None:
    fake = FakeAmi()
    fake.on_action["CoreShowChannels"] = lambda m: [
        block(Response="Success", ActionID=m["ActionID"], EventList="start"),
        block(Event="CoreShowChannel", ActionID=m["ActionID"], Uniqueid="dc-1"),
        block(Event="CoreShowChannelsComplete", ActionID=m["ActionID"], EventList="Complete"),
    ]
    async with client_for(fake) as (client, events):
        await client.wait_connected(2)
        found = await client.send_list("CoreShowChannels", {})
        assert [e["Uniqueid"] for e in found] == ["dc-1"]
        assert events == []


async def test_a_raising_event_handler_keeps_the_connection() -> None:
    fake = FakeAmi()
    port = await fake.start()

    def explode(message: Message) -> None:
        raise RuntimeError("bug in a handler")

    client = AmiClient(AmiEndpoint("127.0.0.1", port, "duecall", "s3cret"), FAST, explode)
    task = asyncio.create_task(client.run())
    await client.wait_connected(2)
    fake.writers[0].write(block(Event="Newchannel"))
    await asyncio.sleep(0.1)
    await client.send("Ping", {})
    assert client.sessions == 1
    client.close()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await fake.stop()


# --- a hostile peer (issue 9 item 6) and an Asterisk that is down (item 20) ----------------------


async def _ticker(lags: list[float], interval: float = 0.01) -> None:
    """Measures how late the event loop wakes it: the lag every other task suffers."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval
        await asyncio.sleep(interval)
        lags.append(loop.time() - due)


async def _flood(writer: asyncio.StreamWriter, total: int, piece: int) -> int:
    """Write `total` bytes of one endless message in `piece`-byte writes; bytes written."""
    writer.write(b"Event: UserEvent\r\nData: ")
    sent = 0
    try:
        while sent < total and not writer.is_closing():
            writer.write(b"x" * (piece - 2) + b"\r\n")
            sent += piece
            await writer.drain()
            await asyncio.sleep(0)  # small reads on the client side, as from a slow link
    except ConnectionError:
        pass
    return sent


async def test_a_2mb_unterminated_message_drops_the_peer_in_ms(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeAmi()
    lags: list[float] = []
    async with client_for(fake) as (client, _):
        await client.wait_connected(2)
        ticker = asyncio.create_task(_ticker(lags, 0.002))
        await asyncio.sleep(0.01)
        started = time.perf_counter()
        sent = await asyncio.wait_for(_flood(fake.writers[0], 2 * 1024 * 1024, 100), 10)
        dropped_after = time.perf_counter() - started
        await asyncio.sleep(0.01)
        ticker.cancel()
        await client.wait_connected(2)  # and it reconnects as after any drop
        assert client.sessions == 2
    # Before: the client took in all 2 MB (1.2 s here; 10.9 s of parsing in 100-byte reads, see
    # test_ami_protocol) and never dropped the peer. After: dropped at 66 KB, in 7 ms.
    assert sent < 1024 * 1024, f"the client kept reading {sent} bytes"
    assert dropped_after < 1.0, dropped_after  # measured: ~0.03 s
    assert lags and max(lags) < 0.1, max(lags)
    assert "dropped the peer: more than 65536 bytes without the blank line" in caplog.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_outage_is_warned_once_then_sparsely_and_its_end_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = _free_port()
    timeouts = AmiTimeouts(
        connect=1, action=0.5, ping_interval=5, reconnect_delay=0.02, outage_log_first=0.3, outage_log_max=0.6
    )
    client = AmiClient(AmiEndpoint("127.0.0.1", port, "duecall", "s3cret"), timeouts, lambda m: None)
    caplog.set_level(logging.DEBUG, logger="dialer.asterisk.ami")
    task = asyncio.create_task(client.run())
    await asyncio.sleep(1.5)  # nobody listens: ~70 attempts
    fake = FakeAmi()
    fake.server = await asyncio.start_server(fake._serve, "127.0.0.1", port)
    await client.wait_connected(2)
    client.close()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await fake.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    attempts = [r for r in caplog.records if "still down (attempt" in r.getMessage()]
    # Before: one warning per attempt (every second with the default delay), ~70 here.
    assert len(attempts) > 30
    assert 2 <= len(warnings) <= 5, warnings  # at 0, 0.3, 0.9, 1.5 s
    assert "retrying every 0.02 s" in warnings[0]
    assert all("still down after" in w for w in warnings[1:])
    back = [r.getMessage() for r in caplog.records if "logged in" in r.getMessage()]
    assert back and re.search(r"back after [12] s down and \d{2,} failed attempts", back[0]), back


async def test_round_trip_times_reach_the_observer() -> None:
    fake = FakeAmi()
    port = await fake.start()
    samples: list[float] = []
    slow: dict[str, float] = {"Ping": 0.0}

    def ping_reply(message: Message) -> list[bytes]:
        time.sleep(slow["Ping"])  # the fake's loop is the test's loop: blocking delays the reply
        return [block(Response="Success", ActionID=message["ActionID"], Ping="Pong")]

    fake.on_action["Ping"] = ping_reply
    endpoint = AmiEndpoint("127.0.0.1", port, "duecall", "s3cret")
    client = AmiClient(endpoint, FAST, lambda m: None, on_round_trip=samples.append)
    task = asyncio.create_task(client.run())
    await client.wait_connected(2)
    await client.send("Ping", {})
    slow["Ping"] = 0.2
    await client.send("Ping", {})
    client.close()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await fake.stop()
    assert samples[0] < 0.1  # the login
    assert samples[-1] >= 0.2

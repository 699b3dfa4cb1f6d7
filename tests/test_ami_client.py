"""The AMI client's promises, against a scripted peer at the project's own boundary."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from dialer.ami import AmiAuthFailed, AmiClient, AmiEndpoint, AmiTimeouts
from dialer.ami_protocol import Message
from dialer.errors import AmiActionFailed, AmiDisconnected, AmiTimeout
from tests.fake_ami import FakeAmi, block

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

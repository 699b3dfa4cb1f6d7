"""The FastAGI server against the real Asterisk 22.

Each test starts its own `AgiServer` on a free port and originates calls to simulated borrowers
(docs/number-plan.md) into the test-only `[duecall-agi-test]` context, which runs
`AGI(agi://127.0.0.1:${AGI_PORT}/${AGI_SCRIPT},${AGI_KEY})`. Only the last four digits of a
simulated number choose its behaviour, so each call gets its own number (and AstDB overrides).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dialer.asterisk.ami import AmiClient, AmiEndpoint, AmiTimeouts
from dialer.asterisk.ami_protocol import Message
from dialer.asterisk.host import AmiCredentials
from dialer.core.errors import AmiActionFailed
from ivr.agi import AgiError, AgiHangup, AgiPeerError, AgiServer, AgiSession
from ivr.agi_protocol import AgiReply
from tests.support.agi_peer import agi_problems

pytestmark = pytest.mark.asterisk

Handler = Callable[[AgiSession], Awaitable[None]]
CALL_TIMEOUT = 20.0


@dataclass
class Harness:
    ami: AmiClient
    server: AgiServer
    routes: dict[str, Handler]
    events: list[Message]
    sessions: dict[str, AgiSession] = field(default_factory=dict)
    numbers: list[str] = field(default_factory=list)

    async def route(self, session: AgiSession) -> None:
        self.sessions[session.call_key] = session
        await self.routes[session.script](session)

    async def sim(self, number: str, **overrides: str) -> None:
        """Use a simulated number, with AstDB overrides (keys, delay, audio); cleaned up after the test."""
        self.numbers.append(number)
        await self._forget(number)
        for key, value in overrides.items():
            await self.ami.send("DBPut", {"Family": f"sim/{number}", "Key": key, "Val": value})

    async def call(self, number: str, script: str, key: str, *, sighup: bool = False) -> None:
        variables = [
            f"AGI_PORT={self.server.port}",
            f"AGI_SCRIPT={script}",
            f"AGI_KEY={key}",
            f"AGI_SIGHUP={'yes' if sighup else 'no'}",
        ]
        await self.ami.send(
            "Originate",
            {
                "Channel": f"Local/{number}@duecall-sim",
                "Context": "duecall-agi-test",
                "Exten": "s",
                "Priority": "1",
                "Async": "true",
                "Timeout": "15000",
                "Variable": variables,
            },
        )

    async def wait_idle(self, sessions: int, timeout: float = CALL_TIMEOUT) -> None:
        """Until `sessions` sessions have started and all of them have ended (fallbacks included)."""
        async with asyncio.timeout(timeout):
            while self.server.sessions_total < sessions or self.server.sessions_active:
                await asyncio.sleep(0.05)

    async def wait_gone(self, channel: str, timeout: float = 10) -> None:
        """Until Asterisk no longer lists the channel."""
        async with asyncio.timeout(timeout):
            while any(c.get("Channel") == channel for c in await self.ami.send_list("CoreShowChannels", {})):
                await asyncio.sleep(0.1)

    async def cleanup(self) -> None:
        for number in self.numbers:
            await self._forget(number)

    async def _forget(self, number: str) -> None:
        with contextlib.suppress(AmiActionFailed):
            await self.ami.send("DBDelTree", {"Family": f"sim/{number}"})


@pytest.fixture
async def harness(asterisk: AmiCredentials) -> AsyncIterator[Harness]:
    events: list[Message] = []
    endpoint = AmiEndpoint(asterisk.host, asterisk.port, asterisk.username, asterisk.secret)
    ami = AmiClient(endpoint, AmiTimeouts(), events.append)
    ami_task = asyncio.create_task(ami.run())
    await ami.wait_connected(10)
    routes: dict[str, Handler] = {}
    box: list[Harness] = []

    async def route(session: AgiSession) -> None:
        await box[0].route(session)

    server = AgiServer("127.0.0.1", 0, route, header_timeout=1)
    box.append(Harness(ami, server, routes, events))
    server_task = asyncio.create_task(server.serve())
    await asyncio.wait_for(server.ready.wait(), 5)
    try:
        yield box[0]
    finally:
        await box[0].cleanup()
        server_task.cancel()
        ami.close()
        ami_task.cancel()
        await asyncio.gather(server_task, ami_task, return_exceptions=True)


# ---------------------------------------------------------------- one call, many commands


async def test_prompt_barge_in_then_menu(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """0101 says hello and presses 1 after 1 s: it interrupts a 30 s prompt; then a menu times out."""
    seen: dict[str, object] = {}

    async def ivr(session: AgiSession) -> None:
        seen["env"] = (session.script, session.args, session.channel, session.uniqueid)
        await session.set_variable("DUECALL_NOTE", 'said "yes" (maybe) \\ later')
        seen["note"] = await session.get_variable("DUECALL_NOTE")
        seen["unset"] = await session.get_variable("DUECALL_NO_SUCH_VARIABLE")
        with pytest.raises(AgiError, match="510 Invalid or unknown command"):
            await session.command("FOO BAR", 5)
        with pytest.raises(AgiError, match="missing or unreadable"):  # -1, but the call is alive
            await session.stream_file("duecall-no-such-sound")
        seen["gosub"] = await session.command("GOSUB duecall-agi-test-sub s 1", 5)  # after 100 Trying...
        started = time.monotonic()
        seen["digit"] = await session.stream_file("demo-congrats", "0123456789#*")
        seen["prompt_s"] = time.monotonic() - started
        started = time.monotonic()
        seen["menu"] = await session.get_data("beep", 1000, 3)
        seen["menu_s"] = time.monotonic() - started
        seen["wait"] = await session.wait_for_digit(200)
        seen["exec"] = (await session.exec("Wait", "0.1")).result
        with pytest.raises(AgiError, match="no application"):
            await session.exec("NoSuchApp", "")
        await session.hangup()
        seen["transcript"] = list(session.transcript)

    harness.routes["ivr"] = ivr
    await harness.sim("12025551010101", delay="1")
    await harness.call("12025551010101", "ivr", "call-1")
    await harness.wait_idle(1)

    script, args, channel, uniqueid = seen["env"]  # type: ignore[misc]
    assert (script, args) == ("ivr", ["call-1"])
    assert str(channel).startswith("Local/12025551010101@duecall-sim-") and uniqueid
    assert seen["note"] == 'said "yes" (maybe) \\ later'
    assert seen["unset"] is None
    assert seen["gosub"].message == "Gosub complete"  # type: ignore[attr-defined]
    assert seen["digit"] == "1"
    assert seen["prompt_s"] < 5  # the prompt is 30 s long: the key cut it short
    assert seen["menu"] == ("", True)
    assert 0.9 < seen["menu_s"] < 4  # type: ignore[operator]  # beep + 1 s
    assert seen["wait"] is None
    assert seen["exec"] == "0"
    assert harness.server.handler_errors == 0
    assert agi_problems(caplog) == []
    for command, lines in seen["transcript"]:  # type: ignore[attr-defined]
        print(f"{command!r} -> {lines!r}")  # the reply formats, for tests/unit/test_agi_protocol.py


async def test_record_file(harness: Harness, work_dir: Path) -> None:
    """0102 says hello, then presses #: the recording holds the hello and ends on the key."""
    results = {}

    async def record(session: AgiSession) -> None:
        results["rec"] = await session.record_file(str(work_dir / "reply"), "wav", "#", 5000, 2)
        await session.hangup()

    harness.routes["record"] = record
    await harness.sim("12025551020102", keys="#", delay="0.5")
    await harness.call("12025551020102", "record", "call-rec")
    await harness.wait_idle(1)

    rec = results["rec"]
    assert (rec.reason, rec.digit) == ("dtmf", "#")
    with wave.open(str(work_dir / "reply.wav")) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert wav.getnframes() == rec.endpos
    assert 0.3 * 8000 < rec.endpos < 2 * 8000  # "hello" is 0.8 s
    print("transcript:", list(harness.sessions["call-rec"].transcript))


# ---------------------------------------------------------------- hangups and failures


def _no_endpos(reply: str) -> str:
    return re.sub(r" endpos=\d+", "", reply)


async def test_far_end_hangs_up_mid_prompt(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """0160 hangs up ~3 s after answering. With AGISIGHUP=no and =yes (the HANGUP line is skipped)."""
    caplog.set_level(logging.INFO, logger="ivr.agi")
    outcome: dict[str, str] = {}

    async def prompt(session: AgiSession) -> None:
        try:
            await session.stream_file("demo-congrats")
            outcome[session.call_key] = "prompt finished"
        except AgiHangup:
            outcome[session.call_key] = "hung up"
            await asyncio.sleep(0.3)  # Asterisk writes HANGUP now (when AGISIGHUP=yes)
            await session.command("NOOP", 5)  # NOOP is allowed on a dead channel: 200, not 511
            raise

    harness.routes["prompt"] = prompt
    await harness.sim("12025551600160")
    await harness.sim("12025551610160")
    await harness.call("12025551600160", "prompt", "quiet")
    await harness.call("12025551610160", "prompt", "sighup", sighup=True)
    await harness.wait_idle(2)

    print("transcripts:", {k: list(s.transcript) for k, s in harness.sessions.items()})
    assert outcome == {"quiet": "hung up", "sighup": "hung up"}
    assert harness.server.handler_errors == 0
    assert agi_problems(caplog) == []
    quiet, sighup = (list(harness.sessions[k].transcript) for k in ("quiet", "sighup"))
    assert [cmd for cmd, _ in quiet] == ['STREAM FILE "demo-congrats" ""', "CHANNEL STATUS", "NOOP"]
    # The HANGUP line (seen before the 511) was skipped: both calls got the same replies, in step.
    assert any("HANGUP" in lines for _, lines in sighup)
    assert not any("HANGUP" in lines for _, lines in quiet)
    # (endpos, where playback stopped, differs by a frame or two between the calls: timing)
    assert [_no_endpos(lines[-1]) for _, lines in sighup] == [_no_endpos(lines[-1]) for _, lines in quiet]
    assert quiet[-1] == ("NOOP", ["200 result=0"])  # allowed on a dead channel


async def test_handler_error_plays_the_apology(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """A handler that raises: logged with the uniqueid and call key, the call marked cut by us (not the
    borrower's hangup: the dialer stores `cut` and retries it), apology played, call hung up."""

    async def broken(session: AgiSession) -> None:
        await session.get_variable("AGI_KEY")
        raise RuntimeError("bug in the IVR")

    harness.routes["broken"] = broken
    await harness.sim("12025551700170")
    await harness.call("12025551700170", "broken", "call-bug")
    await harness.wait_idle(1)

    session = harness.sessions["call-bug"]
    transcript = list(session.transcript)
    commands = [command for command, _ in transcript]
    assert commands == [
        'GET VARIABLE "AGI_KEY"',
        'SET VARIABLE "DUECALL_STAGE" "cut"',
        'STREAM FILE "im-sorry" ""',
        'STREAM FILE "vm-goodbye" ""',
        "HANGUP",
    ]
    assert transcript[1][1] == ["200 result=1"]
    assert all(lines[-1].startswith("200 result=0 endpos=") for _, lines in transcript[2:4])  # played in full
    assert transcript[4][1] == ["200 result=1"]
    await harness.wait_gone(session.channel)
    errors = [r for r in caplog.records if r.name == "ivr.agi" and r.levelno == logging.ERROR]
    assert len(errors) == 1 and harness.server.handler_errors == 1
    message = errors[0].getMessage()
    assert session.uniqueid in message and "call-bug" in message
    assert errors[0].exc_info is not None and "bug in the IVR" in str(errors[0].exc_info[1])


# ---------------------------------------------------------------- robustness and concurrency


async def test_bare_connections_do_not_block_a_call(harness: Harness) -> None:
    """Port probes (connect-and-close, a half-open client, garbage) while a real call is in its menu."""
    result: dict[str, object] = {}

    async def menu(session: AgiSession) -> None:
        result["digits"] = await session.get_data("beep", 4000, 1)

    harness.routes["menu"] = menu
    await harness.sim("12025551030103", delay="1.5")
    await harness.call("12025551030103", "menu", "call-busy")
    async with asyncio.timeout(10):
        while harness.server.sessions_active == 0:
            await asyncio.sleep(0.02)

    def probe(payload: bytes, hold: float) -> None:
        with socket.create_connection(("127.0.0.1", harness.server.port)) as sock:
            sock.sendall(payload)
            time.sleep(hold)

    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(
        *(asyncio.to_thread(probe, b"", 0) for _ in range(5)),
        asyncio.to_thread(probe, b"agi_network: yes\nagi_arg_1: half", 1.5),  # silent until the 1 s timeout
        asyncio.to_thread(probe, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0.2),
    )
    probe_s = loop.time() - started
    await harness.wait_idle(1)
    print("transcript:", list(harness.sessions["call-busy"].transcript))
    assert result["digits"] == ("3", False)
    assert harness.server.sessions_total == 1 and harness.server.rejected == 7
    assert probe_s < 3
    # The loop never spun: a 10 ms sleep still wakes on time right after the probes.
    before = loop.time()
    await asyncio.sleep(0.01)
    assert loop.time() - before < 0.1


async def test_twenty_concurrent_calls_get_their_own_digits(harness: Harness) -> None:
    digits: dict[str, tuple[str, bool]] = {}

    async def collect(session: AgiSession) -> None:
        digits[session.call_key] = await session.get_data("beep", 3000, 3)
        await session.stream_file("vm-goodbye")

    harness.routes["collect"] = collect
    calls = {f"1202555{200 + i}0104": f"{i:03d}" for i in range(20)}
    for number, keys in calls.items():
        await harness.sim(number, keys=keys, delay="0.5")
    started = time.monotonic()
    for number in calls:
        await harness.call(number, "collect", f"key-{number}")
    await harness.wait_idle(len(calls), timeout=30)
    elapsed = time.monotonic() - started
    assert digits == {f"key-{number}": (keys, False) for number, keys in calls.items()}
    assert harness.server.handler_errors == 0
    print(f"20 concurrent calls: {elapsed:.1f} s")
    print("transcript:", list(harness.sessions["key-12025552070104"].transcript))
    assert elapsed < 12


# ---------------------------------------------------------------- against a scripted fake Asterisk


@contextlib.asynccontextmanager
async def fake_asterisk(
    handler: Handler,
) -> AsyncIterator[tuple[AgiServer, asyncio.StreamReader, asyncio.StreamWriter]]:
    """An AgiServer and one connection to it that plays Asterisk's part, line by line."""
    server = AgiServer("127.0.0.1", 0, handler)
    task = asyncio.create_task(server.serve())
    await asyncio.wait_for(server.ready.wait(), 5)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network: yes\nagi_network_script: fake\nagi_uniqueid: 1.1\nagi_arg_1: k\n\n")
    try:
        yield server, reader, writer
    finally:
        writer.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_late_reply_is_dropped_after_a_timeout() -> None:
    got: dict[str, object] = {}

    async def handler(session: AgiSession) -> None:
        with pytest.raises(AgiError, match="no reply within"):
            await session.command("WAIT FOR DIGIT 500", 0.1)
        got["next"] = await session.command("NOOP", 2)

    async with fake_asterisk(handler) as (server, reader, writer):
        assert await asyncio.wait_for(reader.readline(), 2) == b"WAIT FOR DIGIT 500\n"
        assert await asyncio.wait_for(reader.readline(), 2) == b"NOOP\n"  # sent after the timeout
        writer.write(b"200 result=0\nHANGUP\n200 result=0 (for NOOP)\n")  # the late reply, then NOOP's
        assert await asyncio.wait_for(reader.read(), 2) == b""  # handler done: socket closed
        assert got["next"] == AgiReply(200, "0", "for NOOP")
        assert server.handler_errors == 0


async def test_eof_mid_command_is_a_quiet_hangup(caplog: pytest.LogCaptureFixture) -> None:
    ended: list[str] = []

    async def handler(session: AgiSession) -> None:
        try:
            await session.stream_file("demo-congrats")
        except AgiHangup:
            ended.append("hangup")
            raise

    async with fake_asterisk(handler) as (server, reader, writer):
        assert await asyncio.wait_for(reader.readline(), 2) == b'STREAM FILE "demo-congrats" ""\n'
        writer.write(b"200 res")  # Asterisk goes away in the middle of a line
        writer.close()
        async with asyncio.timeout(2):
            while server.sessions_total == 0 or server.sessions_active:
                await asyncio.sleep(0.01)
        assert ended == ["hangup"]
        assert server.handler_errors == 0 and agi_problems(caplog) == []


# ---------------------------------------------------------------- hostile peers (issue 9, item 6)

# 64 KiB that the old reply regex backtracked over for 11.8 s (at every `)`, re-scanning the rest).
BACKTRACKING_REPLY = b"200 result=0 (" + b") a=b" * 13100 + b" !\n"
TEN_MB = 10 * 1024 * 1024


@contextlib.asynccontextmanager
async def loop_lag() -> AsyncIterator[list[float]]:
    """The worst lateness of a 5 ms ticker while the block runs: how long the loop was blocked."""
    loop = asyncio.get_running_loop()
    worst = [0.0]

    async def tick() -> None:
        while True:
            before = loop.time()
            await asyncio.sleep(0.005)
            worst[0] = max(worst[0], loop.time() - before - 0.005)

    task = asyncio.create_task(tick())
    try:
        yield worst
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def send_and_read_rest(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> bytes:
    """Send `data`, then all the server sends until it closes (b"": it hung up without a word)."""
    writer.write(data)
    try:
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 3)
    except ConnectionError:  # the server closed while we were still sending: also dropped
        return b""


@pytest.mark.parametrize(
    "reply",
    [BACKTRACKING_REPLY, b"200 result=0 (" + b"x" * TEN_MB + b")\n", b"100 result=0 Trying...\n" * 1000],
    ids=["64KiB-backtracking", "10MB-line", "1000-line-reply"],
)
async def test_a_peer_past_a_reply_bound_is_dropped_fast(
    reply: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Was: the 64 KiB line blocked the loop 11.8 s, then the apology asked for two more (~34 s)."""
    errors: list[AgiError] = []

    async def handler(session: AgiSession) -> None:
        try:
            await session.stream_file("demo-congrats")
        except AgiError as exc:
            errors.append(exc)
            raise

    loop = asyncio.get_running_loop()
    async with loop_lag() as lag, fake_asterisk(handler) as (server, reader, writer):
        assert await asyncio.wait_for(reader.readline(), 2) == b'STREAM FILE "demo-congrats" ""\n'
        started = loop.time()
        rest = await send_and_read_rest(reader, writer, reply)
        elapsed = loop.time() - started
        while server.sessions_active:
            await asyncio.sleep(0.01)
    print(f"dropped after {elapsed * 1000:.1f} ms; worst loop lag {lag[0] * 1000:.1f} ms")
    assert rest == b""  # dropped: no apology, no further command
    assert elapsed < 1 and lag[0] < 0.1
    assert len(errors) == 1 and isinstance(errors[0], AgiPeerError)
    assert (server.dropped, server.handler_errors) == (1, 0)
    [warning] = agi_problems(caplog)
    assert "call k (uniqueid 1.1): dropped the connection: a " in warning
    assert "longer than 8192 bytes" in warning or "reply of more than 200 lines" in warning


@pytest.mark.parametrize(
    "header",
    [
        b"agi_network: " + b"x" * 65536 + b"\n\n",
        b"agi_network: " + b"x" * TEN_MB,
        b"".join(b"agi_arg_%d: %s\n" % (i, b"x" * 1000) for i in range(1, 100)) + b"\n",  # 99 KB in all
    ],
    ids=["64KiB-line", "10MB-line", "99KB-environment"],
)
async def test_an_oversized_environment_is_dropped_fast(
    header: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    sessions: list[AgiSession] = []

    async def handler(session: AgiSession) -> None:
        sessions.append(session)

    server = AgiServer("127.0.0.1", 0, handler, header_timeout=5)
    task = asyncio.create_task(server.serve())
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(server.ready.wait(), 5)
        async with loop_lag() as lag:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            started = loop.time()
            rest = await send_and_read_rest(reader, writer, header)
            elapsed = loop.time() - started
            writer.close()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    print(f"dropped after {elapsed * 1000:.1f} ms; worst loop lag {lag[0] * 1000:.1f} ms")
    assert rest == b"" and sessions == [] and server.rejected == 1
    assert elapsed < 1 and lag[0] < 0.1  # not the 5 s header timeout
    [warning] = agi_problems(caplog)
    assert "dropped the connection: a" in warning
    assert "longer than 8192 bytes" in warning or "environment of more than 65536 bytes" in warning

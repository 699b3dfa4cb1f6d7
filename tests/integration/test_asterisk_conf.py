"""The project's Asterisk config against a real Asterisk 22.

Every simulated borrower (docs/number-plan.md) is called the way the dialer calls, all at once,
and the AMI events / AstDB results are checked. Needs root (chroot, mounts) the first time.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import shutil
import socket
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dialer.asterisk.host import AmiCredentials, run_cli
from tests.support.project import PROJECT_ROOT, STATE_DIR

pytestmark = pytest.mark.asterisk

PROMPT = "demo-thanks"  # 5.5 s: long enough for 0160 to hang up during it
CALL_TIMEOUT = 40.0
Message = dict[str, str]


def header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name, value.strip()


class Ami:
    """Just enough AMI for the tests: send actions, keep every message received."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.messages: list[Message] = []
        self.changed = asyncio.Condition()
        self.ids = itertools.count(1)
        self.task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, creds: AmiCredentials) -> Ami:
        reader, writer = await asyncio.open_connection(creds.host, creds.port)
        await reader.readline()  # "Asterisk Call Manager/..." banner
        ami = cls(reader, writer)
        reply = await ami.action("Login", Username=creds.username, Secret=creds.secret, Events="on")
        assert reply["Response"] == "Success", reply
        return ami

    async def _read(self) -> None:
        while True:
            block = await self.reader.readuntil(b"\r\n\r\n")
            lines = block.decode().strip().split("\r\n")
            message = dict(header(line) for line in lines)
            message["_at"] = str(time.monotonic())
            async with self.changed:
                self.messages.append(message)
                self.changed.notify_all()

    async def send(self, action: str, extra: list[tuple[str, str]] | None = None, **headers: str) -> str:
        action_id = f"t{next(self.ids)}"
        pairs = [("Action", action), ("ActionID", action_id), *headers.items(), *(extra or [])]
        self.writer.write("".join(f"{k}: {v}\r\n" for k, v in pairs).encode() + b"\r\n")
        await self.writer.drain()
        return action_id

    async def action(
        self, action: str, extra: list[tuple[str, str]] | None = None, **headers: str
    ) -> Message:
        action_id = await self.send(action, extra, **headers)
        return await self.wait(lambda m: "Response" in m and m.get("ActionID") == action_id)

    async def wait(self, match: Callable[[Message], bool], timeout: float = CALL_TIMEOUT) -> Message:
        async with asyncio.timeout(timeout), self.changed:
            while True:
                found = next((m for m in self.messages if match(m)), None)
                if found is not None:
                    return found
                await self.changed.wait()

    async def close(self) -> None:
        self.task.cancel()
        self.writer.close()
        await self.writer.wait_closed()


@dataclass
class Call:
    """One simulated borrower call and what Asterisk reported about it."""

    attempt: int
    number: str
    ring_timeout: int = 20
    amd: bool = False
    never_created: bool = False  # the target names no endpoint: Asterisk cannot create the channel
    target: str | None = None  # the originated channel; default Local/<number>@duecall-sim
    started: float = 0.0
    originate: Message = field(default_factory=dict)
    dial: Message = field(default_factory=dict)
    ivr: Message = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def recording(self) -> Path:
        return RECORDINGS / f"attempt-{self.attempt}"


RUN = int(time.time())
RECORDINGS = PROJECT_ROOT / "recordings" / f"test-{RUN}"  # does not exist yet: MixMonitor must create it
FIRST_ATTEMPT = (RUN % 1_000_000) * 100


def originate_headers(call: Call) -> list[tuple[str, str]]:
    """Exactly what the dialer sends (docs/number-plan.md)."""
    variables = {
        "CHANNEL(hangup_handler_push)": '"duecall-dial-hangup,s,1"',
        "DUECALL_ATTEMPT": str(call.attempt),
        "DUECALL_AMD": "yes" if call.amd else "no",
        "DUECALL_RECORDING": str(call.recording),
        "DUECALL_PROMPT": PROMPT,
    }
    return [
        ("Channel", f"Local/{call.number}@duecall-sim" if call.target is None else call.target),
        ("Context", "duecall-ivr"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("Async", "true"),
        ("ChannelId", f"duecall-{call.attempt}"),
        ("Timeout", str(call.ring_timeout * 1000)),
        ("CallerID", '"DueCall" <12025550000>'),
        *(("Variable", f"{k}={v}") for k, v in variables.items()),
    ]


def event(message: Message, name: str) -> bool:
    return message.get("Event") == name


def user_event(message: Message, name: str) -> bool:
    return message.get("Event") == "UserEvent" and message.get("UserEvent") == name


async def place(ami: Ami, call: Call) -> Call:
    call.started = time.monotonic()
    action_id = await ami.send("Originate", originate_headers(call))
    attempt = str(call.attempt)
    call.originate = await ami.wait(lambda m: event(m, "OriginateResponse") and m["ActionID"] == action_id)
    # No channel, no hangup handler: a channel Asterisk could not even create reports nothing more.
    dial_timeout = 3.0 if call.never_created else CALL_TIMEOUT
    try:
        call.dial = await ami.wait(
            lambda m: user_event(m, "DueCallDial") and m["Attempt"] == attempt, dial_timeout
        )
    except TimeoutError:
        assert call.never_created, f"no DueCallDial for {call}"
    if call.originate["Response"] == "Success":
        call.ivr = await ami.wait(lambda m: user_event(m, "DueCallIvr") and m["Attempt"] == attempt)
    call.seconds = max(float(m["_at"]) for m in (call.originate, call.dial, call.ivr) if m) - call.started
    return call


CALLS: dict[str, dict[str, Any]] = {
    "human": dict(number="12025550101"),
    "human_amd": dict(number="12025550103", amd=True),
    "keys_from_astdb": dict(number="12025550102"),
    "speech": dict(number="12025550111"),
    "no_answer": dict(number="12025550120", ring_timeout=4),
    "busy": dict(number="12025550130"),
    "congestion": dict(number="12025550140"),
    "failed": dict(number="12025550141"),
    "machine": dict(number="12025550150", amd=True),
    "early_hangup": dict(number="12025550160", amd=True),
    "early_hangup_no_amd": dict(number="12025550160"),
    "no_input": dict(number="12025550170"),
    "unknown_number": dict(number="12025550199"),
    "no_such_endpoint": dict(
        number="12025550101", target="PJSIP/12025550101@duecall-nowhere", never_created=True
    ),
}


async def place_all(creds: AmiCredentials) -> tuple[dict[str, Call], list[Message]]:
    ami = await Ami.connect(creds)
    try:
        # What an earlier run (the demo programs its borrowers there) left for these numbers.
        for number in {spec["number"] for spec in CALLS.values()}:
            await ami.action("DBDelTree", Family=f"sim/{number}")  # an error reply when none: fine
        await ami.action("DBPut", Family="sim/12025550102", Key="keys", Val="w9")
        calls = {name: Call(FIRST_ATTEMPT + i, **spec) for i, (name, spec) in enumerate(CALLS.items())}
        await asyncio.gather(*(place(ami, call) for call in calls.values()))
        await ami.action("DBDel", Family="sim/12025550102", Key="keys")
        return calls, ami.messages
    finally:
        await ami.close()


@pytest.fixture(scope="module")
def placed(asterisk: AmiCredentials) -> Iterator[tuple[dict[str, Call], list[Message]]]:
    yield asyncio.run(place_all(asterisk))
    shutil.rmtree(RECORDINGS, ignore_errors=True)


@pytest.fixture(scope="module")
def calls(placed: tuple[dict[str, Call], list[Message]]) -> dict[str, Call]:
    return placed[0]


def outcome(call: Call) -> tuple[str, str, str, str]:
    return (call.originate["Response"], call.originate["Reason"], call.dial["DialStatus"], call.dial["Cause"])


def ivr(call: Call) -> tuple[str, str, str]:
    return (call.ivr["Stage"], call.ivr["Amd"], call.ivr["Digits"])


# ---------------------------------------------------------------- the config itself


def configured_modules() -> list[str]:
    text = (PROJECT_ROOT / "asterisk" / "conf" / "modules.conf").read_text()
    return re.findall(r"^(?:load|require)\s*=\s*(\S+\.so)", text, flags=re.MULTILINE)


def test_every_configured_module_is_running(asterisk: AmiCredentials) -> None:
    shown = run_cli(STATE_DIR, "module show")
    running = set(re.findall(r"^(\S+\.so)\s.*\sRunning\s", shown, flags=re.MULTILINE))
    assert set(configured_modules()) - running == set()


def test_ami_listens_on_loopback_only(asterisk: AmiCredentials) -> None:
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == asterisk.port:
                listening.append(local.rsplit(":", 1)[0])
    assert listening == ["0100007F"]  # 127.0.0.1, and nothing on IPv6
    with pytest.raises(OSError):
        socket.create_connection((outside_address(), asterisk.port), timeout=2).close()


def outside_address() -> str:
    """This machine's address on its default route (connecting a UDP socket sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("192.0.2.1", 9))  # TEST-NET-1, never reached
        address: str = sock.getsockname()[0]
        return address


@pytest.mark.asyncio
async def test_astdb_over_ami(asterisk: AmiCredentials) -> None:
    ami = await Ami.connect(asterisk)
    try:
        put = await ami.action("DBPut", Family="duecall-test", Key="k", Val="v1,v2")
        assert put["Response"] == "Success"
        action_id = await ami.send("DBGet", Family="duecall-test", Key="k")
        got = await ami.wait(lambda m: event(m, "DBGetResponse") and m["ActionID"] == action_id, 5)
        assert got["Val"] == "v1,v2"
        await ami.action("DBDel", Family="duecall-test", Key="k")
    finally:
        await ami.close()


def test_only_the_filtered_events_reach_the_dialer(placed: tuple[dict[str, Call], list[Message]]) -> None:
    names = {m["Event"] for m in placed[1] if "Event" in m and "ActionID" not in m}
    assert names <= {"OriginateResponse", "UserEvent", "FullyBooted"}
    assert {"OriginateResponse", "UserEvent"} <= {m.get("Event") for m in placed[1]}


def test_the_originate_timeout_is_the_ring_timeout(calls: dict[str, Call]) -> None:
    # "no_answer" rings for ever: the Originate's Timeout (4 s) ends it.
    assert calls["human"].dial["DialStatus"] == "ANSWER"
    assert 4 <= calls["no_answer"].seconds < 7


def test_the_borrowers_channel_is_originated_directly(calls: dict[str, Call]) -> None:
    # No Local pair of ours: the events come from the borrower's channel itself (the sim's ;1).
    for name in ("human", "busy"):
        call = calls[name]
        assert call.dial["Channel"].startswith(f"Local/{call.number}@duecall-sim-")
        assert call.dial["Uniqueid"] == f"duecall-{call.attempt}"  # the ChannelId the Originate preset


# ---------------------------------------------------------------- the simulated borrowers


def test_human_presses_the_digit(calls: dict[str, Call]) -> None:
    assert outcome(calls["human"]) == ("Success", "4", "ANSWER", "16")
    assert ivr(calls["human"]) == ("done", "", "1")


def test_human_with_amd(calls: dict[str, Call]) -> None:
    assert outcome(calls["human_amd"]) == ("Success", "4", "ANSWER", "16")
    assert ivr(calls["human_amd"]) == ("done", "HUMAN", "3")
    assert calls["human_amd"].ivr["AmdCause"].startswith("HUMAN-")


def test_keys_come_from_astdb(calls: dict[str, Call]) -> None:
    assert ivr(calls["keys_from_astdb"]) == ("done", "", "9")


def test_speech_reply_without_keys(calls: dict[str, Call]) -> None:
    assert outcome(calls["speech"])[:3] == ("Success", "4", "ANSWER")
    assert ivr(calls["speech"]) == ("done", "", "")


def test_no_answer(calls: dict[str, Call]) -> None:
    # Reason 3: the Originate timed out; the channel it hung up has cause 19 (no answer).
    assert outcome(calls["no_answer"]) == ("Failure", "3", "NOANSWER", "19")
    assert calls["no_answer"].ivr == {}


def test_busy(calls: dict[str, Call]) -> None:
    # Reason 0 (a plain hangup, as from a SIP carrier's 486): the hangup handler reads the cause.
    assert outcome(calls["busy"]) == ("Failure", "0", "BUSY", "17")


def test_congestion(calls: dict[str, Call]) -> None:
    assert outcome(calls["congestion"]) == ("Failure", "0", "CONGESTION", "34")
    assert outcome(calls["unknown_number"]) == ("Failure", "0", "CONGESTION", "34")


def test_failed_number(calls: dict[str, Call]) -> None:
    assert outcome(calls["failed"]) == ("Failure", "0", "CHANUNAVAIL", "1")


def test_a_channel_never_created_has_only_the_originate_response(calls: dict[str, Call]) -> None:
    call = calls["no_such_endpoint"]
    assert (call.originate["Response"], call.originate["Reason"]) == ("Failure", "0")
    assert call.dial == {}
    found = run_cli(STATE_DIR, f"database get duecall/{call.attempt} dial").strip()
    assert found == "Database entry not found."


def test_answering_machine(calls: dict[str, Call]) -> None:
    assert outcome(calls["machine"]) == ("Success", "4", "ANSWER", "16")
    assert ivr(calls["machine"]) == ("machine", "MACHINE", "")


def test_early_hangup_during_prompt(calls: dict[str, Call]) -> None:
    for name in ("early_hangup", "early_hangup_no_amd"):
        assert outcome(calls[name]) == ("Success", "4", "ANSWER", "16")
        assert ivr(calls[name])[0::2] == ("prompt", "")
    assert calls["early_hangup"].ivr["Amd"] == "HUMAN"


def test_no_input(calls: dict[str, Call]) -> None:
    assert outcome(calls["no_input"]) == ("Success", "4", "ANSWER", "16")
    assert ivr(calls["no_input"]) == ("done", "", "")


def test_results_are_in_astdb(calls: dict[str, Call]) -> None:
    call = calls["human"]
    assert run_cli(STATE_DIR, f"database get duecall/{call.attempt} dial").strip() == "Value: ANSWER,16"
    assert run_cli(STATE_DIR, f"database get duecall/{call.attempt} ivr").strip() == "Value: done,,1,"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("busy", "BUSY,17"),
        ("congestion", "CONGESTION,34"),
        ("failed", "CHANUNAVAIL,1"),
        ("no_answer", "NOANSWER,19"),
    ],
)
def test_a_call_never_answered_leaves_its_result_in_astdb(
    calls: dict[str, Call], name: str, value: str
) -> None:
    # The channel never entered the dialplan: the hangup handler the Originate pushed still ran.
    found = run_cli(STATE_DIR, f"database get duecall/{calls[name].attempt} dial").strip()
    assert found == f"Value: {value}"


def test_answered_calls_are_recorded(calls: dict[str, Call]) -> None:
    for name in ("human", "machine", "no_input"):
        path = calls[name].recording.with_suffix(".wav")
        deadline = time.monotonic() + 5  # MixMonitor closes the file just after the hangup
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        with wave.open(str(path)) as recording:
            assert recording.getframerate() == 8000
            assert recording.getnframes() > 8000  # more than a second of audio
    assert not calls["busy"].recording.with_suffix(".wav").exists()

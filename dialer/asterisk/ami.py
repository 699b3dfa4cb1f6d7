"""The AMI boundary: one connection to Asterisk's manager interface.

Why not panoramisk: its 1.4 release (the last) re-sends unanswered actions after
a reconnect (a duplicate Originate is a duplicate call), cannot cancel its own
reconnect timer, never checks its pings and drops UTF-8 characters split
across reads. Those are exactly the properties a dialer must get right, so the
connection is this small module instead (see docs/architecture.md).

What it guarantees:
- every wait has a timeout (connect, login, each action, each ping);
- an action is written at most once: after a disconnect its waiter gets
  `AmiDisconnected` and nothing is re-sent, ever;
- a watchdog pings Asterisk; a missed reply closes the connection so `run`
  reconnects, then calls `on_connect` so the owner can re-sync calls in flight;
- an event callback that raises is logged, never kills the connection;
- a peer that breaks the wire format's bounds (a line or message too long) is dropped,
  with the reason logged, and `run` reconnects as after any drop;
- while Asterisk is down, the first failure is a warning, then the warnings thin out
  (`outage_log_first`, doubling up to `outage_log_max`) while it retries every
  `reconnect_delay`; the recovery is logged with how long it was down;
- each action's round-trip time goes to `on_round_trip` (the pacer slows down on slow replies).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dialer.asterisk.ami_protocol import AmiParser, AmiProtocolError, Message, encode_action
from dialer.core.errors import AmiActionFailed, AmiAuthFailed, AmiDisconnected, AmiError, AmiTimeout

SHUTTING_DOWN = "shutting down"  # in Asterisk's reply to any action, a Login too, while it stops

log = logging.getLogger(__name__)
EventHandler = Callable[[Message], None]
ConnectHook = Callable[[], Coroutine[Any, Any, None]]
RoundTripHook = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class AmiEndpoint:
    host: str
    port: int
    username: str
    secret: str = ""

    def __repr__(self) -> str:  # never print the secret
        return f"AmiEndpoint({self.username}@{self.host}:{self.port})"


@dataclass(frozen=True, slots=True)
class AmiTimeouts:
    connect: float = 10.0
    action: float = 5.0
    ping_interval: float = 5.0
    reconnect_delay: float = 1.0
    outage_log_first: float = 10.0  # while down: the second warning this long after the first
    outage_log_max: float = 300.0  # ... then doubling intervals, up to this


class _Outage:
    """While the connection is down: warn at once, then less and less often, always counting."""

    def __init__(self, first: float, most: float) -> None:
        self.first, self.most = first, most
        self.since: float | None = None
        self.attempts = 0
        self._quiet = first
        self._next_warning = 0.0

    def failed(self, now: float) -> bool:
        """Count a failed attempt; True when this one deserves a warning."""
        self.attempts += 1
        if self.since is None:
            self.since, self._quiet = now, self.first
        elif now < self._next_warning:
            return False
        else:
            self._quiet = min(2 * self._quiet, self.most)
        self._next_warning = now + self._quiet
        return True

    def recovered(self, now: float) -> str | None:
        """How long it was down (None if it was not); resets the count."""
        if self.since is None:
            return None
        text = f"after {now - self.since:.0f} s down and {self.attempts} failed attempts"
        self.since, self.attempts = None, 0
        return text


class _ListReply:
    """Collects the events of a list action (CoreShowChannels, DBGet) until it completes."""

    def __init__(self, future: asyncio.Future[list[Message]]) -> None:
        self.future = future
        self.events: list[Message] = []

    def add(self, message: Message) -> None:
        if self.future.done():
            return
        if message.get("Response") == "Error":
            self.future.set_exception(AmiActionFailed("list", message.get("Message", "")))
        elif "Event" in message:
            if message.get("EventList") == "Complete":
                self.future.set_result(self.events)
            else:
                self.events.append(message)


class AmiClient:
    def __init__(
        self,
        endpoint: AmiEndpoint,
        timeouts: AmiTimeouts,
        on_event: EventHandler,
        on_connect: ConnectHook | None = None,
        on_round_trip: RoundTripHook | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeouts = timeouts
        self.connected = asyncio.Event()
        self.sessions = 0  # how many logins so far; >1 means we reconnected
        self.messages_received = 0
        self.last_error: BaseException | None = None
        self._on_event = on_event
        self._on_connect = on_connect
        self._on_round_trip = on_round_trip
        self._outage = _Outage(timeouts.outage_log_first, timeouts.outage_log_max)
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._lists: dict[str, _ListReply] = {}
        self._ids = itertools.count(1)
        self._prefix = f"dc-{secrets.token_hex(3)}"
        self._closing = False

    def new_action_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    # -- lifecycle ---------------------------------------------------------

    async def run(self) -> None:
        """Stay connected until `close()`; reconnect after any failure but a rejected login."""
        while not self._closing:
            try:
                await self._session()
            except AmiAuthFailed:
                raise
            except (OSError, AmiError, TimeoutError, asyncio.IncompleteReadError) as exc:
                self.last_error = exc
                self._log_failure(exc)
            finally:
                self._teardown()
            if not self._closing:
                await asyncio.sleep(self.timeouts.reconnect_delay)

    def _log_failure(self, exc: BaseException) -> None:
        outage = self._outage
        if not outage.failed(time.monotonic()):
            log.debug("AMI %s: still down (attempt %d): %s", self.endpoint, outage.attempts, exc)
        elif outage.attempts == 1:
            log.warning(
                "AMI %s: connection ended: %s; retrying every %g s",
                self.endpoint,
                exc,
                self.timeouts.reconnect_delay,
            )
        else:
            down = time.monotonic() - (outage.since or 0.0)
            log.warning(
                "AMI %s: still down after %.0f s (%d attempts): %s",
                self.endpoint,
                down,
                outage.attempts,
                exc,
            )

    async def wait_connected(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self.connected.wait()
        except TimeoutError:
            detail = f": {self.last_error}" if self.last_error else ""
            raise AmiTimeout(
                f"no AMI login at {self.endpoint.host}:{self.endpoint.port} within {timeout:g} s{detail}"
            ) from None

    def close(self) -> None:
        self._closing = True
        if self._writer is not None:
            self._writer.close()

    async def _session(self) -> None:
        try:
            async with asyncio.timeout(self.timeouts.connect):
                reader, writer = await asyncio.open_connection(self.endpoint.host, self.endpoint.port)
        except TimeoutError:
            raise AmiTimeout(f"connect: no answer within {self.timeouts.connect:g} s") from None
        self._writer = writer
        reader_task = asyncio.create_task(self._read_loop(reader), name="ami-reader")
        tasks = [reader_task]
        try:
            await self._login()
            self.sessions += 1
            self.connected.set()
            back = self._outage.recovered(time.monotonic())
            log.info(
                "AMI %s: logged in (session %d)%s",
                self.endpoint,
                self.sessions,
                f", back {back}" if back else "",
            )
            tasks.append(asyncio.create_task(self._watchdog(), name="ami-watchdog"))
            if self._on_connect is not None:
                tasks.append(asyncio.create_task(self._on_connect(), name="ami-on-connect"))
            await _first_failure(tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _teardown(self) -> None:
        self.connected.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        gone = AmiDisconnected("the AMI connection dropped before the reply")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(gone)
        for reply in self._lists.values():
            if not reply.future.done():
                reply.future.set_exception(gone)
        self._pending.clear()
        self._lists.clear()

    async def _login(self) -> None:
        headers = {"Username": self.endpoint.username, "Secret": self.endpoint.secret, "Events": "on"}
        try:
            await self._request("Login", headers, self.timeouts.action)
        except AmiAuthFailed:
            raise
        except AmiActionFailed as exc:
            if SHUTTING_DOWN in exc.message.lower():
                # Asterisk stopping (a restart under our calls) refuses every login: try again later.
                raise AmiDisconnected(f"Login: {exc.message}") from exc
            raise AmiAuthFailed("Login", f"{exc.message} (user {self.endpoint.username!r})") from exc

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(self.timeouts.ping_interval)
            try:
                await self.send("Ping", {})
            except AmiTimeout as exc:
                raise AmiDisconnected(f"Asterisk stopped answering: {exc}") from exc

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        parser = AmiParser()
        while True:
            data = await reader.read(65536)
            if not data:
                raise AmiDisconnected("Asterisk closed the AMI connection")
            try:
                messages = parser.feed(data)
            except AmiProtocolError as exc:  # e.g. 2 MB without a blank line: not Asterisk
                raise AmiDisconnected(f"dropped the peer: {exc}") from exc
            for message in messages:
                self._route(message)

    def _route(self, message: Message) -> None:
        self.messages_received += 1
        action_id = message.get("ActionID", "")
        if action_id in self._lists:
            self._lists[action_id].add(message)
        elif "Response" in message and action_id in self._pending:
            future = self._pending[action_id]
            if not future.done():
                future.set_result(message)
        elif "Event" in message:
            try:
                self._on_event(message)
            except Exception:  # a faulty handler must not cost us the connection
                log.exception("AMI event handler failed on %s", message.get("Event"))

    # -- actions -------------------------------------------------------------

    async def send(
        self, action: str, headers: Mapping[str, str | Sequence[str]], timeout: float | None = None
    ) -> Message:
        """Send one action and wait for its reply. Raises AmiActionFailed on `Response: Error`."""
        if not self.connected.is_set():
            raise AmiDisconnected(f"{action}: not connected to AMI")
        return await self._request(action, headers, timeout or self.timeouts.action)

    async def _request(
        self, action: str, headers: Mapping[str, str | Sequence[str]], timeout: float
    ) -> Message:
        action_id = str(headers.get("ActionID") or self.new_action_id())
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Message] = loop.create_future()
        self._pending[action_id] = future
        started = loop.time()
        try:
            await self._write(action, {**headers, "ActionID": action_id}, timeout)
            async with asyncio.timeout(timeout):
                reply = await future
        except TimeoutError:
            self._round_trip(timeout)  # at least that slow
            raise AmiTimeout(f"{action}: no reply within {timeout:g} s") from None
        finally:
            self._pending.pop(action_id, None)
        self._round_trip(loop.time() - started)
        if reply.get("Response") not in ("Success", "Goodbye"):
            raise AmiActionFailed(action, reply.get("Message", reply.get("Response", "")))
        return reply

    def _round_trip(self, seconds: float) -> None:
        if self._on_round_trip is not None:
            try:
                self._on_round_trip(seconds)
            except Exception:  # a faulty observer must not fail the action
                log.exception("AMI round-trip observer failed")

    async def send_list(
        self, action: str, headers: Mapping[str, str | Sequence[str]], timeout: float | None = None
    ) -> list[Message]:
        """Send a list action and return its events (without the closing *Complete event)."""
        if not self.connected.is_set():
            raise AmiDisconnected(f"{action}: not connected to AMI")
        timeout = timeout or self.timeouts.action
        action_id = self.new_action_id()
        reply = _ListReply(asyncio.get_running_loop().create_future())
        self._lists[action_id] = reply
        try:
            await self._write(action, {**headers, "ActionID": action_id}, timeout)
            async with asyncio.timeout(timeout):
                return await reply.future
        except TimeoutError:
            raise AmiTimeout(f"{action}: no complete reply within {timeout:g} s") from None
        except AmiActionFailed as exc:
            raise AmiActionFailed(action, exc.message) from None
        finally:
            self._lists.pop(action_id, None)

    async def _write(self, action: str, headers: Mapping[str, str | Sequence[str]], timeout: float) -> None:
        writer = self._writer
        if writer is None:
            raise AmiDisconnected(f"{action}: not connected to AMI")
        writer.write(encode_action(action, headers))
        try:
            async with asyncio.timeout(timeout):
                await writer.drain()
        except TimeoutError:
            raise AmiTimeout(f"{action}: could not write within {timeout:g} s") from None
        except ConnectionError as exc:
            raise AmiDisconnected(f"{action}: {exc}") from exc


async def _first_failure(tasks: list[asyncio.Task[None]]) -> None:
    """Wait until any task ends; re-raise what ended it (they only end by failing)."""
    pending = set(tasks)
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
            if task.get_name() != "ami-on-connect":
                raise AmiDisconnected(f"{task.get_name()} stopped")

"""The FastAGI boundary: a small asyncio server, one `AgiSession` per answered call.

Why not panoramisk's FastAGI `Application`: a bare
connect-and-close spins its loop at 100% CPU, Asterisk's unsolicited `HANGUP` line shifts every
later reply by one, EOF raises `ValueError`, and nothing has a timeout.

What this module guarantees:
- the environment is read with a timeout and an EOF check: a port probe or a half-open client
  costs one task for at most `header_timeout` seconds and never blocks another call;
- every line, the environment and every reply are bounded (ivr/agi_protocol.py: MAX_LINE_BYTES ...)
  and read with the StreamReader's own limit, never by re-scanning a growing buffer; a peer
  that exceeds a bound is dropped at once (`AgiPeerError`, a logged reason, no apology);
- a handler may refuse a connection (`AgiRefused`, e.g. a wrong per-call secret): it is closed
  at once, with a warning, and nothing is sent to it;
- every command has a timeout; after one expires the late reply is recognised and dropped,
  so the next command still gets its own reply;
- `HANGUP` lines are skipped; a hung-up call (EOF, `511`, `result=-1` on a dead channel)
  raises `AgiHangup`, which ends the session quietly: it is normal flow, not an error;
- a handler that raises anything else is logged with the call's uniqueid and call key
  (`agi_arg_1`), and the fallback plays an apology and hangs up: no dead air;
- the socket is always closed, which ends `AGI()` in the dialplan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dialer.core.dialplan import Stage, Var
from dialer.core.errors import AgiError, AgiPeerError
from ivr.agi_protocol import (
    MAX_ENV_BYTES,
    MAX_LINE_BYTES,
    AgiLimitError,
    AgiParseError,
    AgiReply,
    ReplyAssembler,
    add_env_line,
    build_command,
    digit_of,
    env_args,
)

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 5.0
FALLBACK_SOUNDS = ("im-sorry", "vm-goodbye")  # asterisk-core-sounds-en: "I'm sorry" (1.0 s), "goodbye"
TRANSCRIPT_LEN = 100


class AgiHangup(Exception):
    """The call is gone. Not a DueCallError: borrowers hang up, that is normal flow."""


class AgiRefused(Exception):
    """Raised by a handler that will not serve this connection (e.g. a wrong per-call secret).

    The server closes the socket without a word and without the apology: whoever connected
    learns nothing and the call's state is untouched.
    """


async def read_line(reader: asyncio.StreamReader) -> bytes | None:
    """One line with its newline; None at EOF (even in the middle of a line).

    `readuntil` stops at the reader's limit (MAX_LINE_BYTES, set by the server): a longer line
    raises AgiLimitError without the line ever being held, scanned or parsed as a whole.
    """
    try:
        return await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        raise AgiLimitError(f"a line longer than {MAX_LINE_BYTES} bytes") from None


@dataclass(frozen=True, slots=True)
class RecordResult:
    reason: str  # "dtmf" (a key ended it), "timeout" (max time or silence), "hangup"
    digit: str | None
    endpos: int  # samples written (8000 a second for wav)


class AgiSession:
    """One FastAGI connection, i.e. one call. Commands run one at a time."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, env: dict[str, str]
    ) -> None:
        self.env = env
        self.script = env.get("agi_network_script", "")
        self.args = env_args(env)
        self.channel = env.get("agi_channel", "")
        self.uniqueid = env.get("agi_uniqueid", "")
        self.peer = writer.get_extra_info("peername")  # (host, port): for logs
        self.hung_up = False  # seen EOF or 511 (information only: see `command`)
        # (command, reply lines as received): the last TRANSCRIPT_LEN exchanges, for logs and tests
        self.transcript: deque[tuple[str, list[str]]] = deque(maxlen=TRANSCRIPT_LEN)
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()
        self._assembler = ReplyAssembler()
        self._stale = 0  # replies still owed to commands that timed out
        self.dropped = ""  # why the connection was dropped (a bound broken), if it was

    @property
    def call_key(self) -> str:
        """agi_arg_1: the dialer's call key."""
        return self.args[0] if self.args else ""

    def __repr__(self) -> str:
        return f"AgiSession({self.script!r}, call {self.call_key!r}, uniqueid {self.uniqueid!r})"

    # -- one command, one reply ----------------------------------------------

    async def command(self, line: str, timeout: float) -> AgiReply:
        """Send one command line, return its `200` reply.

        EOF and `511` raise AgiHangup; `510`/`520`/others and no reply within `timeout` raise AgiError.
        After a hangup Asterisk still answers a few commands (NOOP, GET/SET VARIABLE, DATABASE ...),
        so they are sent; the others get `511` again.
        """
        if "\r" in line or "\n" in line:
            raise ValueError(f"AGI command contains a line break: {line[:80]!r}")
        async with self._lock:
            lines: list[str] = []
            self.transcript.append((line, lines))
            try:
                async with asyncio.timeout(timeout):
                    await self._send(line)
                    while self._stale:
                        await self._read_reply([])
                        self._stale -= 1
                    reply = await self._read_reply(lines)
            except TimeoutError:
                self._stale += 1
                raise AgiError(line, f"no reply within {timeout:g} s") from None
        return self._check(line, reply)

    def _check(self, line: str, reply: AgiReply) -> AgiReply:
        if reply.code == 511:
            self.hung_up = True
            raise AgiHangup(f"{line}: {reply.message}")
        if reply.code != 200:
            raise AgiError(line, f"{reply.code} {reply.message}")
        return reply

    async def _send(self, line: str) -> None:
        if self.dropped:
            raise AgiPeerError(line, f"connection dropped: {self.dropped}")
        if self._reader.at_eof() or self._writer.is_closing():
            self.hung_up = True
            raise AgiHangup(f"{line}: the connection is closed")
        log.debug("AGI %s >> %s", self.uniqueid, line)
        self._writer.write(line.encode("utf-8") + b"\n")
        try:
            await self._writer.drain()
        except ConnectionError as exc:
            self.hung_up = True
            raise AgiHangup(f"{line}: {exc}") from exc

    async def _read_reply(self, lines: list[str]) -> AgiReply:
        while True:
            text = await self._read_line()
            lines.append(text)
            log.debug("AGI %s << %s", self.uniqueid, text)
            try:
                reply = self._assembler.feed(text)
            except AgiLimitError as exc:
                raise self._drop(str(exc)) from None
            except AgiParseError as exc:
                raise AgiError("(reply)", str(exc)) from exc
            if reply is not None:
                return reply

    async def _read_line(self) -> str:
        try:
            raw = await read_line(self._reader)
        except ConnectionError as exc:
            self.hung_up = True
            raise AgiHangup(f"connection lost: {exc}") from exc
        except AgiLimitError as exc:
            raise self._drop(str(exc)) from None
        if raw is None:
            self.hung_up = True
            raise AgiHangup("Asterisk closed the AGI connection")
        return raw.decode("utf-8", errors="replace").rstrip("\r\n")

    def _drop(self, reason: str) -> AgiPeerError:
        """Close the connection for good: a peer past a bound is not read any further."""
        self.dropped = reason
        self._writer.close()
        log.warning(
            "AGI %s call %s (uniqueid %s): dropped the connection: %s",
            self.script,
            self.call_key,
            self.uniqueid,
            reason,
        )
        return AgiPeerError("(reply)", f"connection dropped: {reason}")

    async def _failed(self, line: str, what: str) -> AgiError:
        """`result=-1`: the call hung up, or the command failed. Ask Asterisk which one."""
        await self.command("CHANNEL STATUS", PROBE_TIMEOUT)  # 511 (-> AgiHangup) on a dead channel
        return AgiError(line, what)

    # -- commands ------------------------------------------------------------------

    async def stream_file(self, path: str, escape_digits: str = "", timeout: float = 60) -> str | None:
        """Play a sound (core name or absolute path, no extension); the key that cut it short, or None."""
        line = build_command("STREAM FILE", path, escape_digits)
        reply = await self.command(line, timeout)
        if reply.result == "-1":
            raise await self._failed(line, "playback failed (missing or unreadable file?)")
        return _key(line, reply)

    async def get_data(
        self, path: str, timeout_ms: int, max_digits: int, *, timeout: float | None = None
    ) -> tuple[str, bool]:
        """Play `path`, collect up to `max_digits` keys (`#` ends early). (digits, timed_out)."""
        line = build_command("GET DATA", path, str(timeout_ms), str(max_digits))
        limit = timeout if timeout is not None else 60 + max_digits * timeout_ms / 1000
        reply = await self.command(line, limit)
        if reply.result == "-1":
            raise await self._failed(line, "failed (missing prompt file?)")
        return reply.result, reply.data == "timeout"

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        line = build_command("WAIT FOR DIGIT", str(timeout_ms))
        reply = await self.command(line, timeout_ms / 1000 + 10)
        if reply.result == "-1":
            raise await self._failed(line, "failed")
        return _key(line, reply)

    async def record_file(
        self,
        path: str,
        fmt: str = "wav",
        escape_digits: str = "#",
        timeout_ms: int = 5000,
        silence_s: int = 2,
        beep: bool = False,
    ) -> RecordResult:
        """Record to `path`.`fmt` until a key in `escape_digits`, `timeout_ms` or `silence_s` of silence.

        A hangup while recording returns reason "hangup" (the file keeps what was said);
        the next command then raises AgiHangup.
        """
        words = [path, fmt, escape_digits, str(timeout_ms), "0"]
        words += ["BEEP"] if beep else []
        words += [f"s={silence_s}"] if silence_s > 0 else []
        line = build_command("RECORD FILE", *words)
        limit = (timeout_ms / 1000 if timeout_ms > 0 else 3600) + 10
        reply = await self.command(line, limit)
        if reply.data in ("dtmf", "timeout", "hangup") and reply.endpos is not None:
            digit = _key(line, reply) if reply.data == "dtmf" else None
            return RecordResult(reply.data, digit, reply.endpos)
        if reply.data == "randomerror":  # the beep (or wait before recording) was cut short
            raise await self._failed(line, "interrupted before recording")
        raise AgiError(line, f"recording failed: result={reply.result} ({reply.data})")

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(build_command("SET VARIABLE", name, value), 10)

    async def get_variable(self, name: str) -> str | None:
        reply = await self.command(build_command("GET VARIABLE", name), 10)
        return reply.data if reply.result == "1" else None

    async def exec(self, app: str, args: str, timeout: float = 60) -> AgiReply:
        """Run a dialplan application; the result is its return value (-1: hangup or failure)."""
        line = build_command("EXEC", app, args)
        reply = await self.command(line, timeout)
        if reply.result == "-2":
            raise AgiError(line, f"no application {app!r} in this Asterisk")
        return reply

    async def hangup(self) -> None:
        """Hang up the call. A call already gone is fine."""
        with contextlib.suppress(AgiHangup):
            await self.command("HANGUP", 10)
        self.hung_up = True


def _key(line: str, reply: AgiReply) -> str | None:
    try:
        return digit_of(reply.result)
    except ValueError:
        raise AgiError(line, f"result {reply.result!r} is not a key") from None


Handler = Callable[[AgiSession], Awaitable[None]]


async def apologise(session: AgiSession) -> None:
    """Default fallback: mark the call cut by us (never the borrower's hangup), apologise, hang up."""
    with contextlib.suppress(AgiError):
        await session.set_variable(Var.STAGE, Stage.CUT)
    for sound in FALLBACK_SOUNDS:
        try:
            await session.stream_file(sound, timeout=10)
        except AgiError as exc:
            log.warning("AGI %s: apology %s not played: %s", session.uniqueid, sound, exc)
    await session.hangup()


class AgiServer:
    """FastAGI server. `serve()` runs until cancelled; each connection is its own task."""

    def __init__(
        self,
        host: str,
        port: int,
        handler: Handler,
        *,
        header_timeout: float = 5,
        fallback: Handler | None = None,
    ) -> None:
        self.host = host
        self.sessions_active = 0
        self.sessions_total = 0
        self.handler_errors = 0  # handlers that raised something other than AgiHangup
        self.rejected = 0  # connections closed without a session (no or bad environment)
        self.refused = 0  # sessions the handler refused (AgiRefused: e.g. a wrong secret)
        self.dropped = 0  # sessions dropped for breaking a bound (AgiPeerError)
        self.ready = asyncio.Event()  # set once bound; `port` is then the real port
        self._requested_port = port
        self._port: int | None = None
        self._handler = handler
        self._fallback = fallback or apologise
        self._header_timeout = header_timeout
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("AgiServer.port: not bound yet (await server.ready.wait())")
        return self._port

    async def serve(self) -> None:
        server = await asyncio.start_server(
            self._connection, self.host, self._requested_port, limit=MAX_LINE_BYTES
        )
        self._port = int(server.sockets[0].getsockname()[1])
        log.info("FastAGI listening on %s:%d", self.host, self._port)
        self.ready.set()
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self.ready.clear()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            env = await self._read_env(reader, writer)
            if env is None:
                self.rejected += 1
                return
            await self._session(AgiSession(reader, writer, env))
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _read_env(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> dict[str, str] | None:
        peer = writer.get_extra_info("peername")
        env: dict[str, str] = {}
        size = 0
        try:
            async with asyncio.timeout(self._header_timeout):
                while True:
                    raw = await read_line(reader)
                    if raw is None:
                        log.info("FastAGI %s: closed before the end of the AGI environment", peer)
                        return None
                    size += len(raw)
                    if size > MAX_ENV_BYTES:
                        raise AgiLimitError(f"an AGI environment of more than {MAX_ENV_BYTES} bytes")
                    line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                    if not line:
                        break
                    add_env_line(env, line)
        except TimeoutError:
            log.warning("FastAGI %s: no complete AGI environment within %g s", peer, self._header_timeout)
            return None
        except AgiLimitError as exc:
            log.warning("FastAGI %s: dropped the connection: %s", peer, exc)
            return None
        except (AgiParseError, ConnectionError) as exc:  # not `agi_*: value` lines, a reset
            log.warning("FastAGI %s: not an AGI client: %s", peer, exc)
            return None
        if not env:
            log.warning("FastAGI %s: empty AGI environment", peer)
            return None
        return env

    async def _session(self, session: AgiSession) -> None:
        self.sessions_active += 1
        self.sessions_total += 1
        try:
            await self._handler(session)
        except AgiHangup as exc:
            log.info(
                "AGI %s call %s (uniqueid %s): hung up: %s",
                session.script,
                session.call_key,
                session.uniqueid,
                exc,
            )
        except AgiRefused as exc:
            self.refused += 1
            log.warning("AGI %s (peer %s): refused: %s", session.script, session.peer, exc)
        except AgiPeerError:
            pass  # logged when dropped; no apology to a peer that breaks the protocol
        except Exception:
            self.handler_errors += 1
            log.exception(
                "AGI %s call %s (uniqueid %s, channel %s): the handler failed; playing the apology",
                session.script,
                session.call_key,
                session.uniqueid,
                session.channel,
            )
            await self._run_fallback(session)
        finally:
            self.sessions_active -= 1
            if session.dropped:  # counted here: a handler may have caught the AgiPeerError
                self.dropped += 1

    async def _run_fallback(self, session: AgiSession) -> None:
        try:
            await self._fallback(session)
        except (AgiHangup, AgiPeerError):
            pass
        except Exception:
            log.exception(
                "AGI call %s (uniqueid %s): the fallback failed too", session.call_key, session.uniqueid
            )

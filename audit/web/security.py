"""The page's protections: the session key, server-side sessions, sign-in lockouts, host names,
headers and CSRF."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import socket
import stat
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dialer.core.errors import ConfigError

SECRET_NAME = "audit-secret.key"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def session_secret(path: Path) -> str:
    """The key that signs session cookies: made once (mode 0600), then read.

    A key readable by others would let them forge a session, so such a file is refused.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(f"{path}: readable by others (mode {mode:o}); run chmod 600 on it") from None
        return _read_secret(path)
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key


def _read_secret(path: Path) -> str:
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise ConfigError(f"{path}: too short to be a session key; delete it to make a new one")
    return key


class SecurityHeaders:
    """Adds the security headers to every response; nothing but static files may be cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope["path"]).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                protect(MutableHeaders(scope=message), static)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def protect(headers: MutableHeaders, static: bool = False) -> None:
    """The security headers, also for the error pages answered outside this middleware."""
    for name, value in _HEADERS.items():
        headers[name] = value
    if not static:
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"


def csrf_token(request: Request) -> str:
    """This session's CSRF token, made on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def csrf_ok(request: Request) -> bool:
    expected = request.session.get("csrf")
    given = (await request.form()).get("csrf")
    if not isinstance(expected, str) or not expected or not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


# -- sessions ---------------------------------------------------------------


@dataclass
class LiveSession:
    """A signed-in session as the server holds it: the cookie carries only its random id."""

    name: str
    credential: str  # the user's password-hash fingerprint at sign-in: a new password ends the session
    started: float  # time.time()
    tag: str  # names the session in the chain without giving away its id
    listened: set[tuple[int, int]] = field(default_factory=set)  # (attempt id, recording) logged


class Sessions:
    """Who is signed in, kept in this process only.

    Signing out forgets the id, so a copied cookie stops working at once; restarting the page
    signs everyone out, which is the safe way to fail.
    """

    def __init__(self, hours: float, clock: Callable[[], float] = time.time) -> None:
        self.seconds, self.clock = hours * 3600, clock
        self._live: dict[str, LiveSession] = {}

    def start(self, name: str, credential: str) -> tuple[str, LiveSession]:
        """A new session: its id (for the cookie) and what the server keeps."""
        now = self.clock()
        self._live = {k: v for k, v in self._live.items() if now - v.started <= self.seconds}
        sid = secrets.token_urlsafe(32)
        live = self._live[sid] = LiveSession(
            name, credential, now, hashlib.sha256(sid.encode()).hexdigest()[:16]
        )
        return sid, live

    def get(self, sid: object) -> LiveSession | None:
        live = self._live.get(sid) if isinstance(sid, str) else None
        if live is not None and self.clock() - live.started > self.seconds:
            self.end(sid)
            return None
        return live

    def end(self, sid: object) -> None:
        if isinstance(sid, str):
            self._live.pop(sid, None)


# -- sign-in lockouts ---------------------------------------------------------


@dataclass
class _Tally:
    failures: int
    since: float
    locked_until: float = 0.0


class Lockouts:
    """Failed sign-ins per key, with a fixed lock that further failures do not extend.

    `limit` failures within `window` seconds lock the key for `window` seconds from the failure
    that reached the limit; attempts while locked are refused unchecked and not counted, so
    nobody can keep a lock going by trying again. The app keys unknown browsers by the name
    typed, and a browser the user signed in from before by its device cookie, so an attacker
    can lock out only browsers that never signed in as that user (OWASP's "device cookies").
    At most `keys` tallies are kept (ended ones go first, then the oldest).
    """

    def __init__(
        self, limit: int, window: float, keys: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self.keys, self.clock = limit, window, keys, clock
        self._tallies: dict[tuple[str, str], _Tally] = {}

    def locked(self, key: tuple[str, str]) -> bool:
        tally = self._tallies.get(key)
        return tally is not None and self.clock() < tally.locked_until

    def failed(self, key: tuple[str, str]) -> None:
        now = self.clock()
        tally = self._tallies.get(key)
        if tally is None or self._ended(tally, now):
            tally = self._tallies[key] = _Tally(0, now)
            self._bound(now)
        tally.failures += 1
        if tally.failures >= self.limit:
            tally.locked_until = now + self.window

    def succeeded(self, key: tuple[str, str]) -> None:
        self._tallies.pop(key, None)

    def _ended(self, tally: _Tally, now: float) -> bool:
        if tally.locked_until:
            return now >= tally.locked_until
        return now - tally.since >= self.window

    def _bound(self, now: float) -> None:
        if len(self._tallies) <= self.keys:
            return
        self._tallies = {k: t for k, t in self._tallies.items() if not self._ended(t, now)}
        while len(self._tallies) > self.keys:
            del self._tallies[next(iter(self._tallies))]


class DeviceCookies:
    """A signed note, kept by a browser that signed in as a user, of which user that was.

    It proves nothing by itself (the password is still needed); it only puts that browser's failed
    sign-ins in a tally of their own, away from the one that strangers can fill.
    """

    NAME = "duecall_device"
    DAYS = 90

    def __init__(self, secret: str) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt="duecall-device")

    def make(self, name: str) -> str:
        return self._signer.dumps([name, secrets.token_urlsafe(16)])

    def lockout_key(self, cookie: str | None, name: str) -> tuple[str, str]:
        """This browser's own tally when its cookie is for `name`, else the tally of `name`."""
        try:
            found = self._signer.loads(cookie or "", max_age=self.DAYS * 86400)
        except BadData:
            found = None
        if isinstance(found, list) and len(found) == 2 and found[0] == name and isinstance(found[1], str):
            return ("device", found[1])
        return ("name", name)


# -- host names (DNS rebinding) --------------------------------------------------

LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_ANY_ADDRESS = ("0.0.0.0", "::", "")


def allowed_hosts(configured: Iterable[str], bound: str) -> list[str]:
    """The Host header values the page answers to: `[audit] allowed_hosts`, or else the address it
    listens on and this machine's local names (all of its names when it listens on every address)."""
    hosts = list(configured)
    if not hosts:
        hosts = [*LOCAL_HOSTS, bound]
        if bound in _ANY_ADDRESS:
            hosts += [socket.gethostname(), socket.getfqdn()]
    return sorted({_bracketed(h.strip().lower()) for h in hosts if h.strip() and h not in _ANY_ADDRESS})


ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]
_TRUSTED = "duecall.trusted_host"


class HostCheck:
    """Starlette's Host check (TrustedHostMiddleware: DNS rebinding), with its refusal answered by
    the page's one error handler instead of a plain "Invalid host header"."""

    def __init__(self, app: ASGIApp, allowed: list[str], refuse: ErrorHandler) -> None:
        self.app, self.refuse = app, refuse
        self._check = TrustedHostMiddleware(_mark_trusted, allowed, www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self._check(scope, receive, _discard)  # marks the scope when the host is one of ours
        if scope.pop(_TRUSTED, False):
            await self.app(scope, receive, send)
            return
        why = "Invalid host header: this page answers only to its own host names ([audit] allowed_hosts)."
        response = await self.refuse(Request(scope, receive), HTTPException(400, why))
        await response(scope, receive, send)


async def _mark_trusted(scope: Scope, receive: Receive, send: Send) -> None:
    scope[_TRUSTED] = True


async def _discard(message: Message) -> None:
    """Starlette's own plain-text refusal goes nowhere: HostCheck sends the page's."""


def _bracketed(host: str) -> str:
    """IPv6 literals as they appear in a Host header: in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host

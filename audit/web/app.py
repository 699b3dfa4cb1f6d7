"""The auditors' web page: find calls and texts, replay a call, see an account's calls and texts
in time order, check hashes, export evidence.

Server-rendered (Jinja2), no scripts. Every page view, reveal and export is
appended to the audit chain with the user's name. `auditor` users are
read-only and always see masked names and numbers; `admin` users may reveal
them (each reveal is logged) and manage users. `operator` users open only the
pages an `Extension` adds (the operations console, duecall.console), masked too.

The same app serves those pages: `create_app(..., extensions=[...])` adds an extension's routes,
templates (which extend base.html) and lifespan. Its handlers use the public helpers here
(`guarded`, `user_of`, `store_of`, `unmasked`, `render`, `actor_of`, `log_action`, `PlainError`)
for sign-in, roles, CSRF, masking and the audit chain: one session and one error page for both.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from audit.masking import Masker, Plain
from audit.search import (
    CallFilter,
    CallRow,
    blocked,
    call_detail,
    call_row,
    choices,
    export_rows,
    recordings,
    search,
)
from audit.texts import DIRECTIONS, TIMELINE_LIMIT, TextFilter, account_by_pk, account_texts, search_texts
from audit.users import Auditor, authenticate, create_user, get_user, list_users
from audit.verify import verify_store
from audit.web.evidence import VERIFIED, build_bundle, call_view, inside, link_status
from audit.web.security import (
    SECRET_NAME,
    DeviceCookies,
    HostCheck,
    LiveSession,
    Lockouts,
    SecurityHeaders,
    Sessions,
    allowed_hosts,
    csrf_ok,
    csrf_token,
    protect,
    session_secret,
)
from audit.web.timeline import account_timeline, text_rows
from dialer.core import csvsafe
from dialer.core.config import Settings
from dialer.core.errors import AuditorError
from dialer.core.flags import BLOCKING_RULES
from dialer.core.models import Disposition
from dialer.core.vocab import MessageState, Outcome, ReplyKind
from dialer.store import Store
from dialer.store.chain import AuditEvent
from dialer.store.events import web_event
from dialer.store.opening import open_store

HERE = Path(__file__).resolve().parent
SESSION_HOURS = 8
FAILED_LIMIT = 5  # failed sign-ins per name (or per device cookie) ...
FAILED_WINDOW = 15 * 60.0  # ... within this many seconds lock it for as long, from the last of them
MAX_ID = 2**63 - 1  # SQLite's largest integer: a larger call id names no call
_ID = re.compile(r"[0-9]{1,19}")
Handler = Callable[[Request], Awaitable[Response]]
# Who may open a page: any signed-in user, the audit pages' roles, the operations pages' roles, admins.
Needs = Literal["signed-in", "audit", "operate", "admin"]
_REFUSED = {
    "audit": "This page is for auditors and admins.",
    "operate": "This page is for operators and admins.",
    "admin": "This page is for admins only.",
}


@dataclass(frozen=True)
class Extension:
    """Pages another package adds to this app (the operations console, duecall.console).

    `routes` are guarded with `guarded(needs=...)`; `templates` is a folder searched after this
    app's own (its pages extend base.html); `nav` are (href, label) menu links shown to users who
    operate; `lifespan`, if given, runs inside the app's (the store is open by then)."""

    routes: Sequence[BaseRoute]
    templates: Path
    nav: tuple[tuple[str, str], ...] = ()
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None


@dataclass
class State:
    store: Store
    recordings_dir: Path
    anchors: Path | None
    sessions: Sessions
    lockouts: Lockouts
    devices: DeviceCookies
    secure_cookie: bool
    templates: Jinja2Templates
    nav: tuple[tuple[str, str], ...] = field(default=())


def create_app(
    settings: Settings,
    *,
    secure_cookie: bool = False,
    bound: str = "127.0.0.1",
    extensions: Sequence[Extension] = (),
) -> Starlette:
    """The page for the database and recordings that `settings` name.

    `secure_cookie`: send the session cookie over HTTPS only (when served behind TLS).
    `bound`: the address it listens on, one of the host names it answers to unless
    `[audit] allowed_hosts` names them.
    `extensions`: more pages in the same app, sessions and error page (see `Extension`).
    """
    secret_dir = _secret_dir(settings)
    secret_dir.mkdir(parents=True, exist_ok=True)
    secret = session_secret(secret_dir / SECRET_NAME)
    sessions, lockouts = Sessions(SESSION_HOURS), Lockouts(FAILED_LIMIT, FAILED_WINDOW)
    pages = _templates(tuple(e.templates for e in extensions))
    nav = tuple(link for e in extensions for link in e.nav)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await open_store(settings)
        recordings = settings.path(settings.dialer.recordings_dir).resolve()
        app.state.audit = State(
            store,
            recordings,
            settings.anchor_path(),
            sessions,
            lockouts,
            DeviceCookies(secret),
            secure_cookie,
            pages,
            nav,
        )
        try:
            async with AsyncExitStack() as stack:
                for extension in extensions:
                    if extension.lifespan is not None:
                        await stack.enter_async_context(extension.lifespan(app))
                yield
        finally:
            await store.close()

    routes = [
        Route("/", home),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/calls", calls_page),
        Route("/calls.csv", calls_csv),
        # Ids are parsed by the handlers, so "abc" or 5,000 digits get "No such call", not a 500.
        Route("/calls/{attempt_id}", call_page),
        Route("/calls/{attempt_id}/recording", recording),
        Route("/calls/{attempt_id}/recording/{n}", recording),
        Route("/calls/{attempt_id}/export", export, methods=["POST"]),
        Route("/reveal", reveal, methods=["POST"]),
        Route("/blocked", blocked_page),
        Route("/texts", texts_page),
        Route("/accounts/{account_pk}", account_page),  # by key: an account id may be the number
        Route("/trail", trail_page, methods=["GET"]),
        Route("/trail", trail_verify, methods=["POST"]),
        Route("/admin/auditors", auditors_page, methods=["GET"]),
        Route("/admin/auditors", auditors_create, methods=["POST"]),
        *(route for e in extensions for route in e.routes),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        # Outermost: a page reached through another name (DNS rebinding) gets 400 before anything runs.
        Middleware(HostCheck, allowed=allowed_hosts(settings.audit.allowed_hosts, bound), refuse=error_page),
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=secret,
            session_cookie="duecall_audit",
            max_age=SESSION_HOURS * 3600,
            same_site="strict",
            https_only=secure_cookie,
        ),
    ]
    # One handler for every error status: any HTTPException, and a bug's exception as a 500.
    handlers = {HTTPException: error_page, Exception: error_page}
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan, exception_handlers=handlers)


def _secret_dir(settings: Settings) -> Path:
    """Where the session key is kept: beside a SQLite store's file; for PostgreSQL, whose database is
    on another machine maybe, in this machine's state folder ([asterisk] state_dir)."""
    if settings.store.postgres_url() is not None:
        return settings.path(settings.asterisk.state_dir)
    return settings.path(settings.store.sqlite_file()).parent


@functools.cache
def _templates(more: tuple[Path, ...] = ()) -> Jinja2Templates:
    """This app's templates, then each extension's folder (one environment per set of folders)."""
    folders = [HERE / "templates", *more]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["utc"] = lambda text: f"{text[:19].replace('T', ' ')} UTC" if text else ""
    return Jinja2Templates(env=env)


def _pages(request: Request) -> Jinja2Templates:
    """The app's templates; the bare set when the app has not started (a refused host)."""
    state = getattr(request.app.state, "audit", None) if "app" in request.scope else None
    return state.templates if state is not None else _templates()


# -- plumbing ---------------------------------------------------------------


def _state(request: Request) -> State:
    found: State = request.app.state.audit
    return found


def store_of(request: Request) -> Store:
    """The app's store (open while the app runs)."""
    return _state(request).store


def _now() -> datetime:
    return datetime.now(UTC)


async def _signed_in(request: Request) -> Auditor | None:
    """The session's user: its id must be one this server holds (signing out forgets it), and the
    user is re-read each time so that disabling, demoting or a new password takes effect at once."""
    sessions = _state(request).sessions
    sid = request.session.get("sid")
    live = sessions.get(sid)
    if live is None:
        return None
    user = await get_user(_state(request).store, live.name)
    if user is None or user.disabled_at is not None or user.credential != live.credential:
        sessions.end(sid)
        request.session.clear()
        return None
    request.state.session = live
    return user


def guarded(*, needs: Needs = "audit", page: bool = True) -> Callable[[Handler], Handler]:
    """Sign-in (pages redirect, other endpoints get 401), then role, then CSRF on every POST.

    `needs`: "audit" (auditor, admin), "operate" (operator, admin), "admin", or "signed-in" (any)."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def inner(request: Request) -> Response:
            user = await _signed_in(request)
            if user is None:
                if page and request.method in ("GET", "HEAD"):
                    target = urlencode(
                        {"next": request.url.path + (f"?{request.url.query}" if request.url.query else "")}
                    )
                    return RedirectResponse(f"/login?{target}", status_code=303)
                raise PlainError(401, "Sign in first.")
            request.state.user = user  # before the refusals too: their page shows who is signed in
            if not _may(user, needs):
                raise HTTPException(403, _REFUSED[needs])
            if request.method == "POST" and not await csrf_ok(request):
                raise HTTPException(403, "The form was stale or not ours (CSRF check failed). Reload it.")
            return await handler(request)

        return inner

    return wrap


def _may(user: Auditor, needs: Needs) -> bool:
    if needs == "audit":
        return user.audits
    if needs == "operate":
        return user.operates
    return needs == "signed-in" or user.is_admin


def user_of(request: Request) -> Auditor:
    """The signed-in user of a `guarded` handler."""
    user: Auditor = request.state.user
    return user


def _live(request: Request) -> LiveSession:
    live: LiveSession = request.state.session
    return live


def unmasked(request: Request) -> bool:
    """Whether this page shows names and numbers in full: only an admin who asked (`/reveal`)."""
    return user_of(request).is_admin and request.session.get("reveal") is True


def actor_of(request: Request) -> str:
    """Who acts in the audit chain: `auditor:<name>` for every user of the page, whatever the role
    (audit.sign_in names the role), `web:anonymous` before sign-in."""
    user = getattr(request.state, "user", None)
    return f"auditor:{user.name}" if user else "web:anonymous"


async def log_action(
    request: Request,
    kind: str,
    data: dict[str, Any],
    attempt: CallRow | None = None,
    account_id: str | None = None,
) -> None:
    """Append what this user did to the chain (about one call, or one account)."""
    actor = actor_of(request)
    ids: dict[str, Any] = {"account_id": account_id} if account_id is not None else {}
    if attempt is not None:
        ids = {"attempt_id": attempt.id, "account_id": attempt.account_id}
    await _state(request).store.audit([AuditEvent(web_event(kind, data), _now(), actor, **ids)])


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    """A page: the template with the signed-in user, the CSRF token, reveal and the menu."""
    user = getattr(request.state, "user", None)
    base = {
        "user": user,
        "csrf": csrf_token(request),
        "revealed": bool(user) and unmasked(request),
        "nav": _state(request).nav,
    }
    return _pages(request).TemplateResponse(request, name, {**base, **context}, status_code=status)


class PlainError(HTTPException):
    """An error of an endpoint that serves data (a recording, the CSV, a sign-in check), not a page:
    the one handler answers it in plain text."""


_BUG = "Something went wrong on our side; the server's log says what."


async def error_page(request: Request, exc: Exception) -> Response:
    """The one answer to every error status. A bug (any other exception) is a 500 whose traceback
    goes to the server's log (Starlette re-raises it there), never to the page."""
    error = exc if isinstance(exc, HTTPException) else HTTPException(500, _BUG)
    response: Response
    if isinstance(error, PlainError):
        response = PlainTextResponse(error.detail, error.status_code)
    elif error.status_code < 500 and getattr(request.state, "user", None) is not None:
        response = render(request, "error.html", {"status": error.status_code, "message": error.detail})
    else:  # signed out, or a bug: the page alone (no menu, no session touched that could fail again)
        context = {"user": None, "csrf": "", "revealed": False, "nav": (), "status": error.status_code}
        response = _pages(request).TemplateResponse(
            request, "error.html", {**context, "message": error.detail}
        )
    response.status_code = error.status_code
    response.headers.update(error.headers or {})  # 405's Allow
    protect(response.headers)  # also outside the SecurityHeaders middleware (500, bad host)
    return response


def _safe_next(value: object, default: str = "/calls") -> str:
    """Only a path on this site (no scheme, no '//host'), so the login cannot redirect elsewhere."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


# -- signing in -------------------------------------------------------------


@guarded(needs="signed-in")
async def home(request: Request) -> Response:
    return RedirectResponse(_first_page(request, user_of(request)), status_code=303)


def _first_page(request: Request, user: Auditor) -> str:
    """Each role's first page: the calls for auditors and admins, the operations for operators."""
    nav = _state(request).nav
    return "/calls" if user.audits or not nav else nav[0][0]


async def login_form(request: Request) -> Response:
    nxt = _safe_next(request.query_params.get("next"), "")  # none: the user's first page
    return render(request, "login.html", {"next": nxt, "error": ""})


async def login(request: Request) -> Response:
    form = await request.form()
    name, password = str(form.get("name", ""))[:64], str(form.get("password", ""))
    nxt = _safe_next(form.get("next"), "")
    if not await csrf_ok(request):
        raise HTTPException(403, "The form was stale (CSRF check failed). Reload the sign-in page.")
    state = _state(request)
    key = state.devices.lockout_key(request.cookies.get(DeviceCookies.NAME), name)
    locked = state.lockouts.locked(key)
    user = None if locked else await authenticate(state.store, name, password)
    if user is None:
        return await _sign_in_failed(request, name, key, locked, nxt)
    state.lockouts.succeeded(key)
    state.sessions.end(request.session.get("sid"))  # signing in again ends the session before
    request.session.clear()  # a fresh session (and CSRF token) for the signed-in user
    sid, live = state.sessions.start(user.name, user.credential)
    request.session["sid"] = sid
    request.state.user = user
    data = {"name": user.name, "role": user.role, "client": _client(request), "session": live.tag}
    await log_action(request, "audit.sign_in", data)
    response = RedirectResponse(nxt or _first_page(request, user), status_code=303)
    if key[0] == "name":  # this browser has no device cookie for this user yet
        _set_device_cookie(request, response, state.devices.make(user.name))
    return response


async def _sign_in_failed(
    request: Request, name: str, key: tuple[str, str], locked: bool, nxt: str
) -> Response:
    """Count and log the failure. A name that is no user's is not kept: it may be a password
    typed in the wrong field, and the chain keeps everything for good."""
    state = _state(request)
    if not locked:
        state.lockouts.failed(key)
    known = await get_user(state.store, name) is not None
    data = {"name": name if known else None, "known": known, "locked": locked, "client": _client(request)}
    await log_action(request, "audit.sign_in_failed", data)
    message = "Wrong name or password, or the user is disabled."
    if locked:
        message = "Too many failed attempts for this name; try again in 15 minutes."
    return render(request, "login.html", {"next": nxt, "error": message}, 401)


def _set_device_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        DeviceCookies.NAME,
        value,
        max_age=DeviceCookies.DAYS * 86400,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=_state(request).secure_cookie,
    )


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


@guarded(needs="signed-in", page=False)
async def logout(request: Request) -> Response:
    await log_action(request, "audit.sign_out", {"session": _live(request).tag})
    _state(request).sessions.end(request.session.get("sid"))  # a copy of the cookie dies with it
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@guarded(needs="admin", page=False)
async def reveal(request: Request) -> Response:
    form = await request.form()
    on = form.get("on") == "1"
    request.session["reveal"] = on
    await log_action(request, "audit.reveal", {"on": on, "page": _safe_next(form.get("back"))})
    return RedirectResponse(_safe_next(form.get("back")), status_code=303)


# -- calls ------------------------------------------------------------------


def _day(request: Request, key: str, errors: list[str]) -> date | None:
    text = request.query_params.get(key, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append(f"{key}: {text[:40]!r} is not a date like 2025-01-31")
        return None


def _filters(request: Request) -> tuple[CallFilter, list[str]]:
    q = request.query_params
    errors: list[str] = []
    text = {k: q.get(k, "").strip() for k in ("account", "campaign", "outcome", "disposition", "flag")}
    _no_nul(text, errors)
    f = CallFilter(
        date_from=_day(request, "from", errors),
        date_to=_day(request, "to", errors),
        account_id=text["account"],
        campaign=text["campaign"],
        outcome=text["outcome"],
        disposition=text["disposition"],
        flag=text["flag"],
    )
    return f, errors


def _no_nul(text: dict[str, str], errors: list[str]) -> None:
    """A filter with a NUL character is dropped and named: no stored text holds one, and PostgreSQL
    refuses one in a query's parameter (a 500, not an answer)."""
    for key, value in text.items():
        if "\0" in value:
            errors.append(f"{key}: holds a NUL character")
            text[key] = ""


def _page_no(request: Request) -> int:
    try:
        return int(request.query_params.get("page", "1"))
    except ValueError:
        return 1


def _person(account_id: str, name: str, phone: str, revealed: bool) -> tuple[Masker, dict[str, str]]:
    """Who a row is about, as this user may see it, and the masker for the rest of the row."""
    m = Plain() if revealed else Masker(name, phone)
    # An account id can be the phone number itself: mask it like any other text.
    return m, {"account": m.text(account_id), "name": m.text(name), "phone": m.text(phone)}


def _masked_row(row: CallRow, revealed: bool) -> dict[str, Any]:
    _, shown = _person(row.account_id, row.name, row.phone_e164, revealed)
    return {"call": row, **shown}


@guarded()
async def calls_page(request: Request) -> Response:
    f, errors = _filters(request)
    reads = _state(request).store
    found = await search(reads, f, _page_no(request))
    await log_action(
        request,
        "audit.view",
        {"page": "/calls", "filters": f.as_dict(), "n": found.page, "revealed": unmasked(request)},
    )
    query = f.as_dict()
    return render(
        request,
        "calls.html",
        {
            "filters": query,
            "errors": errors,
            "found": found,
            "rows": [_masked_row(r, unmasked(request)) for r in found.rows],
            "options": {
                **await choices(reads),
                "outcome": [o.value for o in Outcome],
                "disposition": [d.value for d in Disposition],
            },
            "query": urlencode(query),
            "page_link": lambda n: "/calls?" + urlencode({**query, "page": n}),
        },
    )


_CSV_HEADER = [
    "attempt_id", "decided_at", "answered_at", "ended_at", "attempt_no", "disposition", "outcome",
    "account_id", "name", "phone", "campaign",
]  # fmt: skip


@guarded(page=False)
async def calls_csv(request: Request) -> Response:
    f, errors = _filters(request)
    if errors:
        raise PlainError(400, "\n".join(errors))
    revealed = unmasked(request)
    await log_action(
        request, "audit.export", {"what": "calls.csv", "filters": f.as_dict(), "revealed": revealed}
    )
    reads = _state(request).store

    async def body() -> AsyncIterator[str]:
        yield _csv_line(_CSV_HEADER)
        async for chunk in export_rows(reads, f):
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerows(_csv_values(row, revealed) for row in chunk)
            yield out.getvalue()

    stamp = _now().strftime("%Y%m%dT%H%M%SZ")
    headers = {"Content-Disposition": f'attachment; filename="duecall-calls-{stamp}.csv"'}
    return StreamingResponse(body(), media_type="text/csv; charset=utf-8", headers=headers)


def _csv_values(row: CallRow, revealed: bool) -> list[str]:
    m = _masked_row(row, revealed)
    values = (row.id, row.decided_at, row.answered_at, row.ended_at, row.attempt_no, row.disposition)
    rest = (row.outcome, m["account"], m["name"], m["phone"], row.campaign)
    return [csvsafe.cell(v) for v in (*values, *rest)]


def _csv_line(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue()


def _path_id(request: Request, key: str, default: str | None = None) -> int | None:
    """A whole number from the path, or None when it is not one (or too large for SQLite)."""
    text = request.path_params.get(key, default)
    if not isinstance(text, str) or not _ID.fullmatch(text) or int(text) > MAX_ID:
        return None
    return int(text)


async def _call_or_404(request: Request) -> Any:
    attempt_id = _path_id(request, "attempt_id")
    if attempt_id is None:
        raise HTTPException(404, "No such call: a call id is a whole number, like 1234.")
    detail = await call_detail(_state(request).store, attempt_id)
    if detail is None:
        raise HTTPException(404, "No such call.")
    return detail


@guarded()
async def call_page(request: Request) -> Response:
    detail = await _call_or_404(request)
    revealed = unmasked(request)
    view = await call_view(_state(request).store, detail, _state(request).recordings_dir, revealed)
    await log_action(
        request, "audit.view", {"page": f"/calls/{detail.call.id}", "revealed": revealed}, detail.call
    )
    return render(request, "call.html", {"v": view})


@guarded(page=False)
async def recording(request: Request) -> Response:
    """A recording of the call, found by attempt id in the recordings table, never by a given path."""
    attempt_id, n = _path_id(request, "attempt_id"), _path_id(request, "n", "0")
    if attempt_id is None or n is None:
        raise PlainError(404, "No such recording.")
    found = await recordings(_state(request).store, attempt_id)
    if n >= len(found):
        raise PlainError(404, "No such recording.")
    rec = found[n]
    if rec.purged_at:
        raise PlainError(410, "This recording was purged (retention).")
    path = inside(Path(rec.path), _state(request).recordings_dir)
    if path is None:
        raise PlainError(404, "No such recording.")
    await _log_listen(request, attempt_id, n)
    return FileResponse(path, media_type="audio/wav", content_disposition_type="inline")


async def _log_listen(request: Request, attempt_id: int, n: int) -> None:
    """Log this session's first GET of a recording, whatever Range it asks for, before any byte
    goes out: every byte served then belongs to a logged listen (the player's later ranges come
    in the same session). HEAD serves no audio, so it is not a listen."""
    live = _live(request)
    if request.method != "GET" or (attempt_id, n) in live.listened:
        return
    call = await call_row(_state(request).store, attempt_id)
    data = {
        "page": request.url.path,
        "recording": n,
        "range": request.headers.get("range", "")[:200] or None,  # as asked, cut: the chain keeps it
        "session": live.tag,
    }
    await log_action(request, "audit.view", data, call)
    live.listened.add((attempt_id, n))


@guarded(page=False)
async def export(request: Request) -> Response:
    detail = await _call_or_404(request)
    revealed = unmasked(request)
    state = _state(request)
    bundle = await build_bundle(state.store, detail, state.recordings_dir, revealed, user_of(request).name)
    await log_action(
        request,
        "audit.export",
        {"what": "evidence.zip", "sha256": bundle.sha256, "bytes": len(bundle.data), "revealed": revealed},
        detail.call,
    )
    name = f"duecall-call-{detail.call.id}-evidence.zip"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(bundle.data, media_type="application/zip", headers=headers)


# -- contacts the policy refused -----------------------------------------------


@guarded()
async def blocked_page(request: Request) -> Response:
    """Who was *not* called, when and why: the evidence that the contact rules held."""
    f, errors = _filters(request)
    picked = {"rule": request.query_params.get("rule", "").strip()}
    _no_nul(picked, errors)
    rule = picked["rule"]
    found = await blocked(_state(request).store, f, rule, _page_no(request))
    query = {**f.as_dict(), **({"rule": rule} if rule else {})}
    revealed = unmasked(request)
    view = {"page": "/blocked", "filters": query, "n": found.page, "revealed": revealed}
    await log_action(request, "audit.view", view)
    shown = []
    for r in found.rows:
        m, person = _person(r.account_id, r.name, r.phone, revealed)
        shown.append({"row": r, **person, "reasons": m.data(r.reasons)})
    return render(
        request,
        "blocked.html",
        {
            "filters": query,
            "errors": errors,
            "rows": shown,
            "found": found,
            "rules": BLOCKING_RULES,
            "campaigns": (await choices(_state(request).store))["campaign"],
            "page_link": lambda n: "/blocked?" + urlencode({**query, "page": n}),
        },
    )


# -- texts and accounts ---------------------------------------------------------

_MAX_FILTER = 100  # characters of a text filter: more names no account, number or state
_NUMBER = re.compile(r"\+?[0-9]{5,15}")
_NUMBER_JUNK = re.compile(r"[ ().\-]")
_CHOICES = {
    "direction": DIRECTIONS,
    "state": tuple(s.value for s in MessageState),
    "kind": tuple(k.value for k in ReplyKind),
}


def _text_filters(request: Request) -> tuple[TextFilter, list[str]]:
    """The texts search's filters and what is wrong with them (each named)."""
    q = request.query_params
    errors: list[str] = []
    text = {k: q.get(k, "").strip() for k in ("account", "number", *_CHOICES)}
    _no_nul(text, errors)
    for key, value in text.items():
        if len(value) > _MAX_FILTER:
            errors.append(f"{key}: longer than {_MAX_FILTER} characters")
            text[key] = ""
    for key, allowed in _CHOICES.items():
        if text[key] and text[key] not in allowed:
            errors.append(f"{key}: {text[key][:40]!r} is not one of {', '.join(allowed)}")
            text[key] = ""
    number = _NUMBER_JUNK.sub("", text["number"])
    if number and not _NUMBER.fullmatch(number):
        errors.append(f"number: {text['number'][:40]!r} is not a phone number like +442079460000")
        number = ""
    f = TextFilter(
        date_from=_day(request, "from", errors),
        date_to=_day(request, "to", errors),
        account_id=text["account"],
        number=number if not number or number.startswith("+") else f"+{number}",
        direction=text["direction"],
        state=text["state"],
        kind=text["kind"],
    )
    return f, errors


@guarded()
async def texts_page(request: Request) -> Response:
    """Texts sent, refused and received; a bad filter is named and answered 400, nothing searched."""
    f, errors = _text_filters(request)
    reads, revealed = _state(request).store, unmasked(request)
    found = await search_texts(reads, f, _page_no(request)) if not errors else None
    n = found.page if found else 1
    await log_action(
        request, "audit.view", {"page": "/texts", "filters": f.as_dict(), "n": n, "revealed": revealed}
    )
    query = f.as_dict()
    return render(
        request,
        "texts.html",
        {
            "filters": query,
            "errors": errors,
            "found": found,
            "rows": text_rows(found.rows, revealed) if found else [],
            "options": _CHOICES,
            "page_link": lambda n: "/texts?" + urlencode({**query, "page": n}),
        },
        400 if errors else 200,
    )


@guarded()
async def account_page(request: Request) -> Response:
    """One account's calls and texts in time order, each text with its states and reasons."""
    pk = _path_id(request, "account_pk")
    account = await account_by_pk(_state(request).store, pk) if pk is not None else None
    if account is None:
        raise HTTPException(404, "No such account: open it from a call or a text.")
    reads, revealed = _state(request).store, unmasked(request)
    calls = await search(reads, CallFilter(account_id=account["account_id"]), 1, TIMELINE_LIMIT)
    texts = await account_texts(reads, account["id"], account["account_id"])
    links = await link_status(reads, texts.events)
    data = {"page": f"/accounts/{account['id']}", "revealed": revealed}
    await log_action(request, "audit.view", data, account_id=account["account_id"])
    _, person = _person(account["account_id"], account["name"], account["phone_e164"], revealed)
    return render(
        request,
        "account.html",
        {
            "account": account,
            "person": person,
            "entries": account_timeline(account, list(reversed(calls.rows)), texts, revealed),
            "cut": texts.cut or calls.total > len(calls.rows),
            "limit": TIMELINE_LIMIT,
            "links_ok": all(v == VERIFIED for v in links.values()),
            "events": len(links),
        },
    )


# -- the whole trail ----------------------------------------------------------


@guarded()
async def trail_page(request: Request) -> Response:
    await log_action(request, "audit.view", {"page": "/trail"})
    return render(request, "trail.html", {"report": None})


@guarded()
async def trail_verify(request: Request) -> Response:
    """`duecall audit verify` for auditors without a shell: every link, every recording, the anchors."""
    state = _state(request)
    report = await verify_store(state.store, state.anchors)
    await log_action(
        request,
        "audit.verify",
        {
            "ok": report.ok,
            "events": report.events,
            "head_seq": report.head_seq,
            "head_hash": report.head_hash,
            "broken": str(report.broken) if report.broken else None,
            "recording_problems": len(report.recording_problems),
            "anchor_problems": len(report.anchor_problems),
        },
    )
    return render(request, "trail.html", {"report": report})


# -- admin ------------------------------------------------------------------


@guarded(needs="admin")
async def auditors_page(request: Request) -> Response:
    await log_action(request, "audit.view", {"page": "/admin/auditors"})
    return await _auditors(request, "", "")


async def _auditors(request: Request, error: str, done: str, status: int = 200) -> Response:
    users = await list_users(_state(request).store)
    return render(request, "auditors.html", {"users": users, "error": error, "done": done}, status)


@guarded(needs="admin")
async def auditors_create(request: Request) -> Response:
    form = await request.form()
    name, role = str(form.get("name", "")).strip(), str(form.get("role", ""))
    password, again = str(form.get("password", "")), str(form.get("password2", ""))
    if password != again:
        return await _auditors(request, "The two passwords differ.", "", 400)
    try:
        await create_user(
            _state(request).store, name, role, password, f"auditor:{user_of(request).name}", _now()
        )
    except AuditorError as error:
        return await _auditors(request, str(error), "", 400)
    return await _auditors(request, "", f"{name} ({role}) can now sign in.")

"""The operations pages: campaigns and their live state, start/pause/resume, the report with its
plots, the dry-run plan, and script and template previews (docs/operations.md).

Every handler is `guarded(needs="operate")`: operators and admins; names and numbers masked unless
an admin revealed them. Each page opened is an `audit.view` in the chain with the user's name; a
start, pause or resume is the store's `campaign.started|paused|resumed`, with the same actor. The
live part's refresh (`.../live`, every few seconds) is part of the page already logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from audit.masking import Masker, Plain
from audit.search import choices
from audit.web.app import (
    PlainError,
    actor_of,
    guarded,
    log_action,
    render,
    store_of,
    unmasked,
)
from dialer.core.config import Settings
from dialer.core.errors import CampaignStateError, DueCallError
from dialer.core.models import Campaign
from dialer.core.vocab import CampaignState
from dialer.store.live import LiveState
from duecall.console import views
from duecall.console.previews import ScriptPreview, Voices, scripts, texts
from duecall.console.work import MAX_PLAN_DAYS, PLAN_DAYS, Busy, Planner, Plots
from reports.build import BYS, build_report

HERE = Path(__file__).resolve().parent
MAX_NAME = 200  # characters of a campaign or script name in a URL: longer names none
MAX_DATE = 40
# action -> (the state it goes to, the state it must come from)
ACTIONS = {
    "start": (CampaignState.RUNNING, CampaignState.NEW),
    "pause": (CampaignState.PAUSED, CampaignState.RUNNING),
    "resume": (CampaignState.RUNNING, CampaignState.PAUSED),
}


class Console:
    """The pages' own state: the settings, the planner, the plot folders, the voices."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.planner = Planner(settings)
        self.plots = Plots(settings.path(settings.asterisk.state_dir) / "web" / "plots")
        self.voices = Voices(settings)
        self.scripts: list[ScriptPreview] = []  # as the previews page last showed them

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        app.state.ops = self
        try:
            yield
        finally:
            await self.voices.close()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/ops", campaigns),
            Route("/ops/campaigns/{name}", campaign),
            Route("/ops/campaigns/{name}/live", live),
            Route("/ops/campaigns/{name}/report", report),
            Route("/ops/campaigns/{name}/plan", plan),
            Route("/ops/campaigns/{name}/{action}", act, methods=["POST"]),
            Route("/ops/plots/{token}/{file}", plot),
            Route("/ops/previews", previews),
            Route("/ops/previews/scripts/{script}/{line}", listen),
            Mount("/ops/static", StaticFiles(directory=HERE / "static"), name="ops-static"),
        ]


# -- campaigns and their live state ------------------------------------------


@guarded(needs="operate")
async def campaigns(request: Request) -> Response:
    store, now = store_of(request), _now()
    rows = []
    for name in (await choices(store))["campaign"]:
        found = await store.campaign(name)
        if found is not None:
            rows.append((found, await store.live_state(found.id, now, 0)))
    await _viewed(request, "/ops")
    return render(request, "ops.html", {"rows": rows})


@guarded(needs="operate")
async def campaign(request: Request) -> Response:
    found = await _campaign_or_404(request)
    await _viewed(request, f"/ops/campaigns/{found.name}")
    return render(request, "ops_campaign.html", await _live_context(request, found))


@guarded(needs="operate", page=False)
async def live(request: Request) -> Response:
    """The live part alone, for the page's refresh (no menu; not logged: the page was)."""
    found = await _campaign_or_404(request, plain=True)
    return render(request, "ops_live.html", await _live_context(request, found))


async def _live_context(request: Request, found: Campaign) -> dict[str, Any]:
    state = await store_of(request).live_state(found.id, _now())
    return {
        "campaign": found,
        "live": views.live(state, await _masker(request, found, state)),
        "actions": [a for a, (_, source) in ACTIONS.items() if source is state.state],
        "message": "",
    }


@guarded(needs="operate")
async def act(request: Request) -> Response:
    """Start, pause or resume (POST, CSRF checked by `guarded`); the store audits the change."""
    found = await _campaign_or_404(request)
    action = request.path_params.get("action", "")
    if action not in ACTIONS:
        raise HTTPException(404, "No such action: start, pause or resume.")
    state, source = ACTIONS[action]
    try:
        await store_of(request).set_campaign_state(
            found.id, state, _now(), actor_of(request), expected=source
        )
    except CampaignStateError as error:
        context = {**await _live_context(request, found), "message": str(error)}
        return render(request, "ops_campaign.html", context, 409)
    return RedirectResponse(f"/ops/campaigns/{_quoted(found.name)}", status_code=303)


# -- the report ----------------------------------------------------------------


@guarded(needs="operate")
async def report(request: Request) -> Response:
    found = await _campaign_or_404(request)
    by, since, errors = _report_filters(request)
    filters = {"by": by, "since": since.isoformat() if since else ""}
    await _viewed(request, f"/ops/campaigns/{found.name}/report", filters)
    context: dict[str, Any] = {"campaign": found, "filters": filters, "errors": errors, "bys": BYS}
    if errors:
        return render(request, "ops_report.html", {**context, "report": None}, 400)
    report = await build_report(store_of(request), found, by=by, since=since, today=_today())
    token, files = await _ops(request).plots.draw(report)
    context |= {
        "report": report,
        "rows": views.metric_rows(report),
        "rolls": views.cell_rows(report.roll_rates),
        "arms": views.arms(report),
        "plots": [f"/ops/plots/{token}/{p.name}" for p in files],
    }
    return render(request, "ops_report.html", context)


@guarded(needs="operate", page=False)
async def plot(request: Request) -> Response:
    path = _ops(request).plots.path(request.path_params["token"], request.path_params["file"])
    if path is None:
        raise PlainError(404, "No such plot (they are kept for an hour: open the report again).")
    return FileResponse(path, media_type="image/png")


# -- the dry run -----------------------------------------------------------------


@guarded(needs="operate")
async def plan(request: Request) -> Response:
    found = await _campaign_or_404(request)
    days, error = _days(request)
    await _viewed(request, f"/ops/campaigns/{found.name}/plan", {"days": str(days)})
    context: dict[str, Any] = {"campaign": found, "days": days, "max_days": MAX_PLAN_DAYS, "text": ""}
    if error or not found.steered:
        why = error or f"campaign {found.name} has no strategy: there is nothing to plan."
        return render(request, "ops_plan.html", {**context, "error": why}, 400 if error else 200)
    try:
        text = await _ops(request).planner.plan(found.name, _now(), days, not unmasked(request))
    except Busy as busy:
        return render(request, "ops_plan.html", {**context, "error": str(busy)}, 503)
    except DueCallError as failed:  # the strategy file is gone or refused, as the CLI says
        return render(request, "ops_plan.html", {**context, "error": str(failed)}, 409)
    return render(request, "ops_plan.html", {**context, "text": text, "error": ""})


# -- previews ------------------------------------------------------------------


@guarded(needs="operate")
async def previews(request: Request) -> Response:
    await _viewed(request, "/ops/previews")
    try:
        settings = _ops(request).settings
        found, sms = await asyncio.to_thread(lambda: (scripts(settings), texts(settings)))
    except DueCallError as failed:
        return render(request, "ops_previews.html", {"scripts": [], "texts": [], "error": str(failed)}, 409)
    _ops(request).scripts = found
    return render(request, "ops_previews.html", {"scripts": found, "texts": sms, "error": ""})


@guarded(needs="operate", page=False)
async def listen(request: Request) -> Response:
    """One prompt of a script, spoken by the configured voice for the sample borrower."""
    name, line = request.path_params["script"], _small_int(request.path_params["line"].removesuffix(".wav"))
    ops = _ops(request)
    known = ops.scripts or await asyncio.to_thread(scripts, ops.settings)
    preview = next((s for s in known if s.name == name), None)
    if preview is None or line is None or line >= len(preview.lines):
        raise PlainError(404, "No such script line.")
    try:
        path = await ops.voices.wav(preview, line)
    except DueCallError as failed:  # a voice file missing, the synthesiser failing
        raise PlainError(503, f"Could not speak it: {failed}") from None
    await _viewed(request, request.url.path)
    return FileResponse(path, media_type="audio/wav", content_disposition_type="inline")


# -- plumbing -------------------------------------------------------------------


def _ops(request: Request) -> Console:
    found: Console = request.app.state.ops
    return found


def _now() -> datetime:
    return datetime.now(UTC)


def _today() -> date:
    return _now().date()


def _quoted(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


async def _viewed(request: Request, page: str, filters: dict[str, str] | None = None) -> None:
    data: dict[str, Any] = {"page": page, "revealed": unmasked(request)}
    if filters is not None:
        data["filters"] = filters
    await log_action(request, "audit.view", data)


async def _campaign_or_404(request: Request, plain: bool = False) -> Campaign:
    name = request.path_params.get("name", "")
    found = await store_of(request).campaign(name) if 0 < len(name) <= MAX_NAME else None
    if found is None:
        raise (PlainError if plain else HTTPException)(404, "No such campaign.")
    return found


async def _masker(request: Request, found: Campaign, state: LiveState) -> Callable[[str], str]:
    """Masks the due accounts' ids and notes (an id may be the number itself), unless revealed."""
    if unmasked(request):
        return Plain().text
    store = store_of(request)
    maskers: dict[str, Masker] = {}
    for due in state.next_due:
        account = await store.account(due.account_id)
        if account is not None:
            maskers[due.account_id] = Masker(account.name, account.phone_e164)

    def mask(text: str) -> str:
        for m in maskers.values():
            text = m.text(text)
        return Masker("", "").body(text)  # any other long run of digits

    return mask


def _report_filters(request: Request) -> tuple[str, date | None, list[str]]:
    q, errors = request.query_params, []
    by = q.get("by", "")
    if by not in BYS:
        errors.append(f"by: {by[:MAX_DATE]!r} is not one of {', '.join(b for b in BYS if b)}")
        by = ""
    text, since = q.get("since", "").strip(), None
    if text:
        try:
            since = date.fromisoformat(text[:MAX_DATE])
        except ValueError:
            errors.append(f"since: {text[:MAX_DATE]!r} is not a date like 2025-01-31")
        else:
            if since > _today():
                errors.append(f"since: {since} is in the future")
                since = None
    return by, since, errors


def _days(request: Request) -> tuple[int, str]:
    text = request.query_params.get("days", str(PLAN_DAYS))
    days = _small_int(text)
    if days is None or not 1 <= days <= MAX_PLAN_DAYS:
        return PLAN_DAYS, f"days: {text[:MAX_DATE]!r} is not a whole number from 1 to {MAX_PLAN_DAYS}"
    return days, ""


def _small_int(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 6 else None

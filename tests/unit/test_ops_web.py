"""The operations pages (duecall.console) in the audit web app, over HTTP (Starlette's TestClient):
roles, start/pause/resume in the audit chain with the user's name, masking, the report's hover
texts and plots, the dry run, previews, and bad input answered without a 500."""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from audit.users import create_user
from audit.web.app import create_app
from dialer.core.config import Settings
from dialer.core.errors import DueCallError
from dialer.core.vocab import CampaignState
from dialer.store import SqliteStore
from dialer.strategy.arms import ArmAssignment
from duecall import steered
from duecall.console import console_pages
from duecall.console.work import Planner
from reports.metrics import BY_KEY, hover
from tests.support.audit_seed import ADMIN, AUDITOR, PASSWORD, seed
from tests.support.config import make_settings
from tests.support.records import record
from tests.support.web import csrf

OPERATOR = "carol"
STRATEGY = Path(__file__).parents[2] / "dialer/strategy/strategies/us-regf.yaml"
PHONE_ID = "+12025550188"  # an account whose id is its phone number: the page must mask it
NOW = datetime.now(UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    found = make_settings(tmp_path, asterisk={"state_dir": str(tmp_path / "state")})
    asyncio.run(seed(found, tmp_path))
    asyncio.run(_more(found))
    return found


async def _more(settings: Settings) -> None:
    """An operator, a campaign with a strategy whose one account's id is its number, and one with arms."""
    store = await SqliteStore.open(settings.path(settings.store.path))
    try:
        await create_user(store, OPERATOR, "operator", PASSWORD, "operator:test", NOW)
        await store.upsert_accounts([record(PHONE_ID, PHONE_ID), record("B2", "+12025550189")], NOW)
        campaign = await store.create_campaign("steady", NOW)
        campaign = await steered.attach(store, settings, campaign, STRATEGY, NOW, "operator:test")
        await steered.add_accounts(store, settings, campaign, [PHONE_ID, "B2"], NOW, "operator:test")
        split = await store.create_campaign("split", NOW)  # arms: the report's A/B section
        await store.add_targets(split.id, NOW, [PHONE_ID, "B2"])
        accounts = await store.accounts_named([PHONE_ID, "B2"])
        arms = {PHONE_ID: "champion", "B2": "bold"}
        drawn = [ArmAssignment(a.pk, a.account_id, arms[a.account_id], ("M1",), 7) for a in accounts.values()]
        await store.save_arms(split.id, drawn, NOW, "operator:test")
    finally:
        await store.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, extensions=[console_pages(settings)])
    with TestClient(app, base_url="http://localhost", follow_redirects=False) as c:
        yield c


def sign_in(c: TestClient, name: str) -> str:
    token = csrf(c.get("/login").text)
    r = c.post("/login", data={"name": name, "password": PASSWORD, "csrf": token})
    assert r.status_code == 303, r.text
    return csrf(c.get(r.headers["location"], follow_redirects=True).text)


def chain(settings: Settings, kinds: tuple[str, ...]) -> list[tuple[str, str, dict[str, object]]]:
    async def go() -> list[tuple[str, str, dict[str, object]]]:
        store = await SqliteStore.open(settings.path(settings.store.path))
        try:
            marks = ",".join("?" * len(kinds))
            sql = f"SELECT kind, actor, data FROM audit_events WHERE kind IN ({marks}) ORDER BY seq"
            return [(r[0], r[1], json.loads(r[2])) for r in await store.fetch_all(sql, kinds)]
        finally:
            await store.close()

    return asyncio.run(go())


def state_of(settings: Settings, name: str) -> CampaignState:
    async def go() -> CampaignState:
        store = await SqliteStore.open(settings.path(settings.store.path))
        try:
            found = await store.campaign(name)
            assert found is not None
            return await store.campaign_state(found.id)
        finally:
            await store.close()

    return asyncio.run(go())


def test_an_operator_lands_on_the_operations_and_may_not_audit_or_admin(client: TestClient) -> None:
    token = sign_in(client, OPERATOR)
    r = client.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/ops"
    page = client.get("/ops").text
    assert 'data-campaign="spring"' in page and 'data-campaign="steady"' in page
    assert 'href="/calls"' not in page and 'href="/admin/auditors"' not in page  # not in its menu
    for audit_page in ("/calls", "/texts", "/blocked", "/trail", "/admin/auditors"):
        assert client.get(audit_page).status_code == 403, audit_page
    assert client.post("/reveal", data={"csrf": token, "on": "1"}).status_code == 403
    assert client.post("/admin/auditors", data={"csrf": token, "name": "x"}).status_code == 403
    assert client.post("/logout", data={"csrf": token}).status_code == 303


def test_an_auditor_cannot_open_the_operations_or_pause(client: TestClient, settings: Settings) -> None:
    token = sign_in(client, AUDITOR)
    assert client.get("/").headers["location"] == "/calls"
    assert 'href="/ops"' not in client.get("/calls").text
    for page in ("/ops", "/ops/campaigns/spring", "/ops/campaigns/spring/report", "/ops/previews"):
        assert client.get(page).status_code == 403, page
    assert client.post("/ops/campaigns/spring/start", data={"csrf": token}).status_code == 403
    assert state_of(settings, "spring") is CampaignState.NEW
    assert client.get("/ops/campaigns/spring/live").status_code == 403


def test_signed_out_the_pages_redirect_and_the_rest_is_401(client: TestClient) -> None:
    r = client.get("/ops/campaigns/spring")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert client.get("/ops/campaigns/spring/live").status_code == 401
    assert client.post("/ops/campaigns/spring/pause", data={"csrf": "x"}).status_code == 401


def test_start_pause_resume_are_audited_with_the_users_name(client: TestClient, settings: Settings) -> None:
    token = sign_in(client, OPERATOR)
    page = client.get("/ops/campaigns/spring").text
    assert 'id="start"' in page and 'id="pause"' not in page and 'id="state"' in page
    assert client.post("/ops/campaigns/spring/start", data={}).status_code == 403  # no CSRF token
    assert client.post("/ops/campaigns/spring/start", data={"csrf": token + "x"}).status_code == 403
    assert state_of(settings, "spring") is CampaignState.NEW
    for action, state in (("start", "running"), ("pause", "paused"), ("resume", "running")):
        r = client.post(f"/ops/campaigns/spring/{action}", data={"csrf": token})
        assert r.status_code == 303 and r.headers["location"] == "/ops/campaigns/spring", action
        assert state_of(settings, "spring").value == state
        assert f'class="state state-{state}">{state}<' in client.get("/ops/campaigns/spring/live").text
    refused = client.post("/ops/campaigns/spring/resume", data={"csrf": token})  # it runs already
    assert refused.status_code == 409 and "spring" in refused.text and "running" in refused.text
    events = chain(settings, ("campaign.started", "campaign.paused", "campaign.resumed"))
    assert [(k, a, d["name"]) for k, a, d in events] == [
        ("campaign.started", f"auditor:{OPERATOR}", "spring"),
        ("campaign.paused", f"auditor:{OPERATOR}", "spring"),
        ("campaign.resumed", f"auditor:{OPERATOR}", "spring"),
    ]


def test_every_page_opened_is_in_the_chain(client: TestClient, settings: Settings) -> None:
    sign_in(client, OPERATOR)  # lands on /ops
    client.get("/ops/campaigns/steady")
    client.get("/ops/campaigns/steady/live")  # the refresh: part of the page already logged
    client.get("/ops/campaigns/steady/plan?days=2")
    client.get("/ops/previews")
    views = [(a, d["page"]) for k, a, d in chain(settings, ("audit.view",)) if a == f"auditor:{OPERATOR}"]
    assert views == [
        (f"auditor:{OPERATOR}", "/ops"),
        (f"auditor:{OPERATOR}", "/ops/campaigns/steady"),
        (f"auditor:{OPERATOR}", "/ops/campaigns/steady/plan"),
        (f"auditor:{OPERATOR}", "/ops/previews"),
    ]


def test_numbers_are_masked_for_operators_and_shown_to_an_admin_who_reveals(client: TestClient) -> None:
    sign_in(client, OPERATOR)
    live = client.get("/ops/campaigns/steady/live").text
    assert "+1 ••••••0188" in live and "2025550188" not in live
    client.post("/logout", data={"csrf": csrf(client.get("/ops").text)})
    token = sign_in(client, ADMIN)
    assert "2025550188" not in client.get("/ops/campaigns/steady").text  # masked until asked
    client.post("/reveal", data={"csrf": token, "on": "1", "back": "/ops/campaigns/steady"})
    assert PHONE_ID in client.get("/ops/campaigns/steady/live").text


def test_the_report_has_hover_texts_and_plots(client: TestClient) -> None:
    sign_in(client, OPERATOR)
    r = client.get("/ops/campaigns/steady/report")
    assert r.status_code == 200, r.text[-800:]
    for key in ("contact_rate", "promise_kept_rate", "calls_per_right_party"):
        assert f'title="{html.escape(hover(BY_KEY[key]))}"' in r.text, key
    plots = [part.split('"', 1)[0] for part in r.text.split('<img src="')[1:]]
    assert {p.rsplit("/", 1)[-1] for p in plots} >= {"funnel.png", "curves.png", "hours.png"}
    image = client.get(plots[0])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    split = client.get("/ops/campaigns/split/report?by=arm").text
    assert 'id="arm-rates"' in split and "champion (champion)" in split and "<th>bold" in split
    assert f'title="{html.escape(hover(BY_KEY["right_party_rate"]))}"' in split.split('id="arm-rates"')[1]


def test_the_dry_run_plan(client: TestClient) -> None:
    sign_in(client, OPERATOR)
    r = client.get("/ops/campaigns/steady/plan?days=3")
    assert r.status_code == 200, r.text[-800:]
    assert "campaign steady: dry run of 2 accounts" in r.text and "Nothing was sent" in r.text
    assert "has no strategy" in client.get("/ops/campaigns/spring/plan").text


async def test_a_plan_that_cannot_be_made_says_why(settings: Settings) -> None:
    with pytest.raises(DueCallError, match=r"no campaign named 'no such'"):  # from its own process
        await Planner(settings).plan("no such", NOW, 1, True)


def test_template_previews_with_coding_and_segments(client: TestClient) -> None:
    sign_in(client, OPERATOR)
    page = client.get("/ops/previews").text
    assert "reminder-en-US" in page and "Olivia Smith" in page  # the sample borrower, no real one
    assert "gsm-7, " in page and "ucs-2, " in page and " segment" in page


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/ops/campaigns/nope", 404, "No such campaign"),
        ("/ops/campaigns/" + "x" * 5000, 404, "No such campaign"),
        ("/ops/campaigns/%00%ff", 404, "No such campaign"),
        ("/ops/campaigns/spring/report?by=evil", 400, "is not one of"),
        ("/ops/campaigns/spring/report?since=yesterday", 400, "is not a date"),
        ("/ops/campaigns/spring/report?since=9999-01-01", 400, "in the future"),
        ("/ops/campaigns/steady/plan?days=abc", 400, "not a whole number"),
        ("/ops/campaigns/steady/plan?days=99999999999999999999", 400, "not a whole number"),
        ("/ops/campaigns/steady/plan?days=0", 400, "not a whole number"),
        ("/ops/plots/..%2F..%2Fetc/passwd", 404, ""),
        ("/ops/plots/abc/..png", 404, "No such plot"),
        ("/ops/previews/scripts/nope/0.wav", 404, "No such script line"),
        ("/ops/previews/scripts/reminder-en-US/99999.wav", 404, "No such script line"),
        ("/ops/previews/scripts/reminder-en-US/-1.wav", 404, "No such script line"),
    ],
)
def test_bad_input_is_named_never_a_500(client: TestClient, path: str, status: int, says: str) -> None:
    sign_in(client, OPERATOR)
    r = client.get(path)
    assert r.status_code == status, (path, r.status_code, r.text[-400:])
    assert says in r.text and "Traceback" not in r.text


def test_an_unknown_action_or_campaign_on_post(client: TestClient) -> None:
    token = sign_in(client, OPERATOR)
    assert client.post("/ops/campaigns/spring/explode", data={"csrf": token}).status_code == 404
    assert client.post(f"/ops/campaigns/{quote('no such')}/pause", data={"csrf": token}).status_code == 404

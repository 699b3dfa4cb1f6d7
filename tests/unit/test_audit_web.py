"""The audit web page over HTTP (Starlette's TestClient): sign-in, roles, CSRF, masking, recordings,
exports, and that every view and export lands in the audit chain."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from hypothesis import strategies as st
from starlette.testclient import TestClient

from audit.search import events_for
from audit.verify import verify
from audit.web.app import create_app
from audit.web.security import Lockouts, Sessions, allowed_hosts
from dialer.core.config import Settings, load_settings
from dialer.core.errors import ConfigError
from dialer.core.models import Decision, Reason
from dialer.store import SqliteStore
from dialer.store.chain import expected_hash
from tests.support import raw_db
from tests.support.audit_seed import ADMIN, AUDITOR, PASSWORD, Seeded, seed
from tests.support.config import make_settings
from tests.support.web import client_for, csrf, sign_in


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Settings, Seeded]]:
    settings = make_settings(tmp_path)
    yield settings, asyncio.run(seed(settings, tmp_path))


def chain_kinds(settings: Settings) -> list[tuple[str, str, str]]:
    async def go() -> list[tuple[str, str, str]]:
        store = await SqliteStore.open(settings.path(settings.store.path))
        try:
            sql = "SELECT kind, actor, data FROM audit_events ORDER BY seq"
            rows = await store.fetch_all(sql)
            return [(r[0], r[1], r[2]) for r in rows]
        finally:
            await store.close()

    return asyncio.run(go())


def test_everything_needs_sign_in(site: tuple[Settings, Seeded]) -> None:
    settings, seeded = site
    call = seeded.ids["A1"]
    with client_for(settings) as c:
        for page in ["/calls", f"/calls/{call}", "/admin/auditors", "/calls?outcome=opt_out"]:
            r = c.get(page)
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), page
        for endpoint in [f"/calls/{call}/recording", f"/calls/{call}/recording/0", "/calls.csv"]:
            assert c.get(endpoint).status_code == 401, endpoint
        for endpoint in [f"/calls/{call}/export", "/logout", "/reveal", "/admin/auditors"]:
            assert c.post(endpoint, data={"csrf": "x"}).status_code == 401, endpoint


def test_sign_in_wrong_password_and_disabled_user_refused(site: tuple[Settings, Seeded]) -> None:
    settings, _ = site
    with client_for(settings) as c:
        token = csrf(c.get("/login").text)
        r = c.post("/login", data={"name": AUDITOR, "password": "nope nope nope", "csrf": token})
        assert r.status_code == 401 and "Wrong name or password" in r.text
        r = c.post("/login", data={"name": AUDITOR, "password": PASSWORD, "csrf": "forged"})
        assert r.status_code == 403
        r = c.post("/login", data={"name": AUDITOR, "password": PASSWORD})
        assert r.status_code == 403
    kinds = [k for k, _, _ in chain_kinds(settings)]
    assert kinds.count("audit.sign_in_failed") == 1


def test_auditor_is_masked_and_may_not_reveal_or_admin(site: tuple[Settings, Seeded]) -> None:
    settings, seeded = site
    with client_for(settings) as c:
        token = sign_in(c, AUDITOR)
        page = c.get("/calls").text
        assert "+86 •••••••1234" in page and "张•" in page and "W•• Z••••" in page
        assert "13912341234" not in page and "张伟" not in page and "Wei Zhang" not in page
        detail = c.get(f"/calls/{seeded.ids['A1']}").text
        assert "Wei Zhang" not in detail and "2025550101" not in detail and "W•• Z••••" in detail
        assert c.get("/admin/auditors").status_code == 403
        assert c.post("/reveal", data={"csrf": token, "on": "1"}).status_code == 403
        assert "Wei Zhang" not in c.get(f"/calls/{seeded.ids['A1']}").text
        csv_text = c.get("/calls.csv").text
        assert "Wei Zhang" not in csv_text and "+1 ••••••0101" in csv_text


def test_admin_reveals_and_each_reveal_is_logged(site: tuple[Settings, Seeded]) -> None:
    settings, _ = site
    with client_for(settings) as c:
        token = sign_in(c, ADMIN)
        assert "Wei Zhang" not in c.get("/calls").text  # masked until asked
        assert c.post("/reveal", data={"on": "1"}).status_code == 403  # no CSRF token
        assert c.post("/reveal", data={"on": "1", "csrf": token + "x"}).status_code == 403
        r = c.post("/reveal", data={"on": "1", "csrf": token, "back": "https://evil.example/"})
        assert r.status_code == 303 and r.headers["location"] == "/calls"
        page = c.get("/calls").text
        assert "Wei Zhang" in page and "+8613912341234" in page and "张伟" in page
        assert "+8613912341234" in c.get("/calls.csv").text
    chain = chain_kinds(settings)
    reveals = [json.loads(d) for k, a, d in chain if k == "audit.reveal"]
    assert reveals == [{"on": True, "page": "/calls"}]
    assert ("audit.reveal", f"auditor:{ADMIN}") in [(k, a) for k, a, _ in chain]


def test_views_and_exports_are_appended_to_the_chain(site: tuple[Settings, Seeded]) -> None:
    settings, seeded = site
    call = seeded.ids["A1"]
    with client_for(settings) as c:
        token = sign_in(c, AUDITOR)
        c.get("/calls?from=2025-03-01&to=2025-03-01&outcome=promise_to_pay")
        c.get(f"/calls/{call}")
        r = c.post(f"/calls/{call}/export", data={"csrf": token})
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        bundle = r.content
        c.get("/calls.csv?flag=opt-out")
    mine = [(k, json.loads(d)) for k, a, d in chain_kinds(settings) if a == f"auditor:{AUDITOR}"]
    kinds = [k for k, _ in mine]
    assert kinds[0] == "audit.sign_in"
    views = [d for k, d in mine if k == "audit.view"]
    searched = {"from": "2025-03-01", "to": "2025-03-01", "outcome": "promise_to_pay"}
    assert {"page": "/calls", "filters": searched, "n": 1, "revealed": False} in views
    assert {"page": f"/calls/{call}", "revealed": False} in views
    exports = [d for k, d in mine if k == "audit.export"]
    assert exports[0]["what"] == "evidence.zip" and exports[0]["sha256"] == hashlib.sha256(bundle).hexdigest()
    assert exports[1] == {"what": "calls.csv", "filters": {"flag": "opt-out"}, "revealed": False}


def test_post_without_or_with_wrong_csrf_is_refused(site: tuple[Settings, Seeded]) -> None:
    settings, seeded = site
    with client_for(settings) as c:
        token = sign_in(c, ADMIN)
        call = seeded.ids["A1"]
        assert c.post(f"/calls/{call}/export").status_code == 403
        assert c.post(f"/calls/{call}/export", data={"csrf": "0" * len(token)}).status_code == 403
        new_user = {"name": "carol", "role": "auditor", "password": PASSWORD, "password2": PASSWORD}
        assert c.post("/admin/auditors", data=new_user).status_code == 403
        assert c.post("/logout", data={}).status_code == 403
        r = c.post("/admin/auditors", data={**new_user, "csrf": token})
        assert r.status_code == 200 and "carol (auditor) can now sign in" in r.text
        assert c.post("/logout", data={"csrf": token}).status_code == 303
        assert c.get("/calls").status_code == 303  # signed out
    created = [(a, json.loads(d)) for k, a, d in chain_kinds(settings) if k == "auditor.created"]
    assert created[-1] == (f"auditor:{ADMIN}", {"name": "carol", "role": "auditor"})


def test_recording_is_served_with_ranges_and_cannot_escape(site: tuple[Settings, Seeded]) -> None:
    settings, seeded = site
    with client_for(settings) as c:
        sign_in(c, AUDITOR)
        a1 = seeded.ids["A1"]
        r = c.get(f"/calls/{a1}/recording")
        assert r.status_code == 200 and r.content == seeded.wavs["A1"].read_bytes()
        assert r.headers["content-type"] == "audio/wav"
        part = c.get(f"/calls/{a1}/recording", headers={"Range": "bytes=0-43"})
        assert part.status_code == 206 and part.content[:4] == b"RIFF" and len(part.content) == 44
        # the row of A4 points at ../outside.wav, a real file outside the recordings folder
        assert c.get(f"/calls/{seeded.ids['A4']}/recording").status_code == 404
        assert c.get(f"/calls/{a1}/recording/1").status_code == 404
        for attack in [
            f"/calls/{a1}/recording/../../../../etc/passwd",
            f"/calls/{a1}/recording/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
            "/calls/../../etc/passwd",
            "/static/../app.py",
            "/static/%2e%2e/app.py",
        ]:
            r = c.get(attack)
            assert r.status_code == 404, attack
            assert b"root:" not in r.content and b"create_app" not in r.content, attack
        detail = c.get(f"/calls/{seeded.ids['A4']}").text
        assert "MISSING" in detail
    listens = [json.loads(d) for k, _, d in chain_kinds(settings) if k == "audit.view" and "recording" in d]
    assert [(v["page"], v["recording"], v["range"]) for v in listens] == [
        (f"/calls/{a1}/recording", 0, None)
    ]  # once per session, not per range


def test_call_page_checks_hashes_and_shows_mismatch(site: tuple[Settings, Seeded]) -> None:
    settings, seeded = site
    a1 = seeded.ids["A1"]
    with client_for(settings) as c:
        sign_in(c, AUDITOR)
        page = c.get(f"/calls/{a1}").text
        assert 'id="recording-status-0">verified<' in page and 'id="links">verified<' in page
        for kind in ["attempt.decided", "call.answer", "ivr.speech", "call.outcome", "call.ended"]:
            assert kind in page, kind
        assert "yes" in page and "0.91" in page and "pressed 2" in page
        assert "window" in page and "inside 08:00-21:00" in page  # the decision
        seeded.wavs["A1"].write_bytes(seeded.wavs["A1"].read_bytes()[:-10] + b"\0" * 10)  # tamper
        assert 'id="recording-status-0">MISMATCH<' in c.get(f"/calls/{a1}").text

    async def tamper() -> None:
        store = await SqliteStore.open(settings.path(settings.store.path))
        try:
            events = await events_for(store, a1)
            assert all(expected_hash(e) == e.hash for e in events)
            raw_db.execute(
                settings.path(settings.store.path),
                "UPDATE audit_events SET data = replace(data, 'promise_to_pay', 'paid') "
                "WHERE attempt_id = ? AND kind = 'call.outcome'",
                (a1,),
            )
        finally:
            await store.close()

    asyncio.run(tamper())
    with client_for(settings) as c:
        sign_in(c, AUDITOR)
        assert 'id="links">MISMATCH<' in c.get(f"/calls/{a1}").text


def test_security_headers_and_session_cookie(site: tuple[Settings, Seeded]) -> None:
    settings, _ = site
    with client_for(settings) as c:
        r = c.get("/login")
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
        token = csrf(r.text)
        r = c.post("/login", data={"name": ADMIN, "password": PASSWORD, "csrf": token})
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=28800" in cookie
        assert c.get("/calls").headers["cache-control"] == "no-store"
    key = settings.path(settings.store.path).parent / "audit-secret.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_login_redirect_stays_on_this_site(site: tuple[Settings, Seeded]) -> None:
    settings, _ = site
    with client_for(settings) as c:
        for evil in ["https://evil.example/", "//evil.example/", "/\\evil.example"]:
            token = csrf(c.get("/login").text)
            r = c.post("/login", data={"name": ADMIN, "password": PASSWORD, "csrf": token, "next": evil})
            assert r.headers["location"] == "/calls", evil


def test_the_trail_page_verifies_everything_and_names_a_tampered_recording(
    site: tuple[Settings, Seeded],
) -> None:
    settings, seeded = site
    # The seed's row pointing outside the folder (fake hash) is itself a problem verify must name.
    before = verify(settings.path(settings.store.path))
    assert before.broken is None and len(before.recording_problems) == 1
    assert "outside.wav: content changed" in before.recording_problems[0]
    with client_for(settings) as c:
        assert c.post("/trail").status_code == 401  # signed out
        token = sign_in(c, AUDITOR)  # read-only auditors may verify
        assert c.post("/trail", data={"csrf": "x" * len(token)}).status_code == 403
        page = c.post("/trail", data={"csrf": token}).text
        # every event so far, the sign-in and page views since included
        shown = int(re.search(r'id="trail-events">(\d+)<', page).group(1))  # type: ignore[union-attr]
        assert shown > before.events and "outside.wav: content changed" in page
        wav = seeded.wavs["A1"]
        data = bytearray(wav.read_bytes())
        data[100] ^= 1
        wav.write_bytes(bytes(data))
        page = c.post("/trail", data={"csrf": token}).text
    assert ">FAILED<" in page and f"{wav}: content changed since event" in page
    checks = [json.loads(d) for k, _, d in chain_kinds(settings) if k == "audit.verify"]
    assert [(c["ok"], c["recording_problems"]) for c in checks] == [(False, 1), (False, 2)]


def test_not_called_lists_the_policys_refusals_masked_and_filtered(
    site: tuple[Settings, Seeded], tmp_path: Path
) -> None:
    settings, _ = site
    night = datetime(2025, 3, 9, 3, 0, tzinfo=UTC)

    async def refuse() -> None:
        store = await SqliteStore.open(settings.path(settings.store.path))
        try:
            campaign = await store.create_campaign("night", night)
            await store.add_targets(campaign.id, night, ["A1", "A2"])
            for target in await store.due_targets(campaign.id, night, 10):
                rule = "window" if target.account.account_id == "A1" else "7-in-7"
                why = Decision(False, (Reason(rule, f"{rule} said no"),), night + timedelta(hours=9))
                await store.claim(target, night, lambda *a, d=why: d, lambda i, at: "", "d1", night)
        finally:
            await store.close()

    asyncio.run(refuse())
    with client_for(settings) as c:
        assert c.get("/blocked").status_code == 303  # signed out: to the sign-in page
        sign_in(c, AUDITOR)
        page = c.get("/blocked?campaign=night").text
        assert '<span id="total">2</span>' in page
        assert "+1 ••••••0101" in page and "+12025550101" not in page and "Wei Zhang" not in page
        only = c.get("/blocked?rule=7-in-7&from=2025-03-09&to=2025-03-09").text
        assert '<span id="total">1</span>' in only and "7-in-7</b>: 7-in-7 said no" in only
        assert "2025-03-09 12:00:00 UTC" in only  # allowed again 9 hours later
        assert '<span id="total">0</span>' in c.get("/blocked?rule=holiday").text
        bad = c.get("/blocked?from=2025-13-01").text
        assert "from: &#39;2025-13-01&#39; is not a date" in bad
    views = [json.loads(d) for k, _, d in chain_kinds(settings) if k == "audit.view"]
    assert {
        "page": "/blocked",
        "filters": {"rule": "7-in-7", "from": "2025-03-09", "to": "2025-03-09"},
        "n": 1,
        "revealed": False,
    } in views


# -- hostile requests (issue 9: items 8, 9 and 11) ------------------------------------------


def _listens(settings: Settings) -> list[dict[str, object]]:
    views = [json.loads(d) for k, _, d in chain_kinds(settings) if k == "audit.view"]
    return [v for v in views if "recording" in v]


@pytest.mark.parametrize(
    "crafted",
    ["bytes=0-99999999", "bytes=1-", "bytes=-100", "bytes=44-", "bytes=0-10,20-30,40-", "bytes=0-0"],
)
def test_every_range_of_a_recording_is_a_logged_listen(site: tuple[Settings, Seeded], crafted: str) -> None:
    """No prior page view, no `bytes=0-` first: whatever Range is asked, the listen is logged
    before a byte is served, and only once for this session."""
    settings, seeded = site
    a1 = seeded.ids["A1"]
    wav = seeded.wavs["A1"].read_bytes()
    with client_for(settings) as c:
        sign_in(c, AUDITOR)
        r = c.get(f"/calls/{a1}/recording", headers={"Range": crafted})
        assert r.status_code == 206 and len(r.content) > 0
        first = _listens(settings)
        assert len(first) == 1 and first[0]["recording"] == 0 and first[0]["range"] == crafted
        assert c.get(f"/calls/{a1}/recording").content == wav  # the same listen: not logged again
        assert len(_listens(settings)) == 1
    with client_for(settings) as other:  # another session is another listen
        sign_in(other, AUDITOR)
        other.get(f"/calls/{a1}/recording", headers={"Range": crafted})
    assert len(_listens(settings)) == 2 and first[0]["session"] != _listens(settings)[1]["session"]


def test_head_of_a_recording_serves_no_bytes_and_marks_no_listen(site: tuple[Settings, Seeded]) -> None:
    settings, seeded = site
    a1 = seeded.ids["A1"]
    with client_for(settings) as c:
        sign_in(c, AUDITOR)
        assert c.head(f"/calls/{a1}/recording").content == b""
        assert _listens(settings) == []
        c.get(f"/calls/{a1}/recording", headers={"Range": "bytes=100-"})
    assert len(_listens(settings)) == 1


def _copied_cookie(c: TestClient) -> dict[str, str]:
    return {"duecall_audit": c.cookies["duecall_audit"]}


def another_browser(c: TestClient) -> TestClient:
    """A second client of the same running page (its lifespan is `c`'s)."""
    return TestClient(c.app, base_url="http://localhost", follow_redirects=False)


def test_sign_out_ends_the_session_for_a_copied_cookie(site: tuple[Settings, Seeded]) -> None:
    settings, _ = site
    with client_for(settings) as c:
        token = sign_in(c, AUDITOR)
        thief = another_browser(c)
        thief.cookies.update(_copied_cookie(c))
        assert thief.get("/calls").status_code == 200  # before sign-out the copy works, as any cookie would
        assert c.post("/logout", data={"csrf": token}).status_code == 303
        assert thief.get("/calls").status_code == 303
        assert thief.get("/calls.csv").status_code == 401
        assert thief.get("/calls.csv").text == "Sign in first."


def test_password_change_and_disabling_end_open_sessions(site: tuple[Settings, Seeded]) -> None:
    from audit.users import disable_user, set_password

    settings, _ = site

    async def change(what: str) -> None:
        store = await SqliteStore.open(settings.path(settings.store.path))
        try:
            if what == "password":
                await set_password(store, AUDITOR, "a brand new password", "operator:test", datetime.now(UTC))
            else:
                await disable_user(store, ADMIN, "operator:test", datetime.now(UTC))
        finally:
            await store.close()

    with client_for(settings) as c, client_for(settings) as admin:
        sign_in(c, AUDITOR)
        sign_in(admin, ADMIN)
        asyncio.run(change("password"))  # by another process: `duecall audit user password`
        assert c.get("/calls").status_code == 303 and c.get("/calls.csv").status_code == 401
        assert admin.get("/calls").status_code == 200  # others' sessions go on
        sign_in(c, AUDITOR, "a brand new password")
        asyncio.run(change("disable"))
        assert admin.get("/calls").status_code == 303 and c.get("/calls").status_code == 200
    changed = [json.loads(d) for k, _, d in chain_kinds(settings) if k == "auditor.password_changed"]
    assert changed == [{"name": AUDITOR}]


def _fail_sign_in(c: TestClient, name: str, password: str = "wrong wrong wrong") -> str:
    token = csrf(c.get("/login").text)
    r = c.post("/login", data={"name": name, "password": password, "csrf": token})
    assert r.status_code == 401, r.text
    return r.text


def test_failed_sign_in_keeps_no_unknown_name_in_the_chain(site: tuple[Settings, Seeded]) -> None:
    settings, _ = site
    typed_in_the_wrong_field = "Tr0ub4dor&3-my-real-password"
    with client_for(settings) as c:
        _fail_sign_in(c, typed_in_the_wrong_field)
        _fail_sign_in(c, AUDITOR)
    failed = [json.loads(d) for k, _, d in chain_kinds(settings) if k == "audit.sign_in_failed"]
    everything = json.dumps(chain_kinds(settings))
    assert typed_in_the_wrong_field not in everything and "Tr0ub4dor" not in everything
    assert [(f["name"], f["known"]) for f in failed] == [(None, False), (AUDITOR, True)]


def test_lockout_spares_the_users_own_browser_and_is_not_extended(site: tuple[Settings, Seeded]) -> None:
    settings, _ = site
    now = [1000.0]
    with client_for(settings) as user:
        attacker = another_browser(user)
        sign_in(user, AUDITOR)  # an earlier sign-in: this browser now holds a device cookie
        user.post("/logout", data={"csrf": csrf(user.get("/calls").text)})
        attacker.app.state.audit.lockouts.clock = lambda: now[0]  # type: ignore[attr-defined]
        for _ in range(5):
            _fail_sign_in(attacker, AUDITOR)
        assert "Too many failed attempts" in _fail_sign_in(attacker, AUDITOR, PASSWORD)  # locked
        sign_in(user, AUDITOR)  # the real user's browser is not locked out
        for minutes in range(1, 15):  # the attacker keeps trying while locked ...
            now[0] = 1000.0 + minutes * 60
            assert "Too many failed attempts" in _fail_sign_in(attacker, AUDITOR)
        now[0] = 1000.0 + 15 * 60 + 1  # ... but the lock ends 15 minutes after it began
        sign_in(attacker, AUDITOR)
    failed = [json.loads(d) for k, _, d in chain_kinds(settings) if k == "audit.sign_in_failed"]
    assert [f["locked"] for f in failed] == [False] * 5 + [True] * 15


def test_requests_for_another_host_name_are_refused(site: tuple[Settings, Seeded]) -> None:
    """DNS rebinding: evil.example resolving to 127.0.0.1 must not reach the page."""
    settings, _ = site
    with client_for(settings) as c:
        for host in ["evil.example", "evil.example:8470", "127.0.0.1.evil.example", "localhost.", ""]:
            r = c.get("/login", headers={"Host": host})
            assert r.status_code == 400 and "host" in r.text.lower(), host
        for host in ["localhost:8470", "127.0.0.1:8470", "[::1]:8470", "LOCALHOST"]:
            assert c.get("/login", headers={"Host": host}).status_code == 200, host
    config = settings.root / "duecall.toml"
    config.write_text(config.read_text() + '\n[audit]\nallowed_hosts = ["audit.example.com"]\n')
    allowed = load_settings(config)
    with client_for(allowed) as c:
        assert c.get("/login", headers={"Host": "audit.example.com"}).status_code == 200
        assert c.get("/login", headers={"Host": "localhost"}).status_code == 400


def _no_500_client(settings: Settings) -> TestClient:
    return TestClient(
        create_app(settings),
        base_url="http://localhost",
        follow_redirects=False,
        raise_server_exceptions=False,
    )


def test_extreme_dates_and_huge_ids_are_refused_or_found_never_a_500(site: tuple[Settings, Seeded]) -> None:
    settings, seeded = site
    huge = "9" * 5000
    with _no_500_client(settings) as c:
        sign_in(c, AUDITOR)
        for query in ["to=9999-12-31", "from=0001-01-01", "from=0001-01-01&to=9999-12-31", f"page={huge}"]:
            for page in ["/calls", "/blocked", "/calls.csv"]:
                r = c.get(f"{page}?{query}")
                assert r.status_code == 200, (page, query, r.text[-300:])
        assert str(seeded.ids["A1"]) in c.get("/calls?to=9999-12-31").text
        r = c.get("/calls.csv?to=99999-12-31")
        assert r.status_code == 400 and "to: '99999-12-31' is not a date" in r.text
        for path in [
            f"/calls/{huge}",
            f"/calls/{huge}/recording",
            f"/calls/{seeded.ids['A1']}/recording/{huge}",
            "/calls/99999999999999999999",
            "/calls/9223372036854775808/recording",
            "/calls/abc",
            "/calls/-1",
        ]:
            r = c.get(path)
            assert r.status_code == 404, (path[:60], r.status_code, r.text[-300:])
            assert "No such call" in r.text or "No such recording" in r.text, path[:60]
        token = csrf(c.get("/calls").text)
        assert c.post(f"/calls/{huge}/export", data={"csrf": token}).status_code == 404


_PARAMS = ["from", "to", "account", "campaign", "outcome", "disposition", "flag", "page", "rule", "next"]
_HOSTILE = st.one_of(
    st.text(max_size=40),
    st.dates().map(date.isoformat),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["9999-12-31", "0001-01-01", "9" * 5000, "2025-02-30", "+10000-01-01", "\0", "%"]),
)
_GET_ROUTES = ["/", "/login", "/calls", "/calls.csv", "/blocked", "/trail", "/admin/auditors", "/calls/{id}"]
_GET_ROUTES += ["/calls/{id}/recording", "/calls/{id}/recording/{n}"]
_GET_ROUTES += ["/texts", "/accounts/{id}"]  # texts (issue 12): tests/unit/test_audit_texts.py has more
_PARAMS += ["number", "direction", "state", "kind"]
_ID = st.one_of(st.integers(min_value=0, max_value=10**25).map(str), st.sampled_from(["9" * 5000]), _HOSTILE)


def test_no_query_or_path_on_any_get_route_gives_a_500(site: tuple[Settings, Seeded]) -> None:
    """Property: whatever the query string and ids, every GET route answers below 500."""
    settings, _ = site
    with _no_500_client(settings) as c:
        sign_in(c, ADMIN)

        @settings_(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            route=st.sampled_from(_GET_ROUTES),
            params=st.dictionaries(st.sampled_from(_PARAMS), _HOSTILE, max_size=4),
            ids=st.tuples(_ID, _ID),
        )
        def check(route: str, params: dict[str, str], ids: tuple[str, str]) -> None:
            path = route.format(id=quote(ids[0], safe=""), n=quote(ids[1], safe=""))
            r = c.get(path, params=params)
            assert r.status_code < 500, (path[:80], {k: v[:80] for k, v in params.items()}, r.text[-500:])

        check()


def test_lockout_is_fixed_not_extended_and_bounded() -> None:
    now = [0.0]
    locks = Lockouts(limit=3, window=100.0, keys=50, clock=lambda: now[0])
    key = ("name", AUDITOR)
    for t in (0.0, 10.0, 20.0):
        now[0] = t
        assert not locks.locked(key)
        locks.failed(key)
    assert locks.locked(key)  # locked from t=20 until t=120
    now[0] = 119.9
    assert locks.locked(key) and not locks.locked(("device", "mine"))
    now[0] = 120.0
    assert not locks.locked(key)
    locks.failed(key)  # a fresh tally: one failure is not a lock
    assert not locks.locked(key)
    for n in range(10_000):  # a flood of made-up names keeps at most `keys` tallies
        locks.failed(("name", f"x{n}"))
    assert len(locks._tallies) <= 50


def test_sessions_expire_and_end() -> None:
    now = [0.0]
    sessions = Sessions(hours=1, clock=lambda: now[0])
    sid, live = sessions.start(AUDITOR, "c1")
    assert sessions.get(sid) is live and sessions.get("forged") is None and sessions.get(["x"]) is None
    now[0] = 3601.0
    assert sessions.get(sid) is None
    sid, _ = sessions.start(AUDITOR, "c1")
    sessions.end(sid)
    assert sessions.get(sid) is None


def test_default_host_names_follow_the_bound_address(tmp_path: Path) -> None:
    assert allowed_hosts([], "127.0.0.1") == ["127.0.0.1", "[::1]", "localhost"]
    assert "[fd00::5]" in allowed_hosts([], "fd00::5")
    every = allowed_hosts([], "0.0.0.0")
    assert socket.gethostname().lower() in every and "0.0.0.0" not in every
    assert allowed_hosts(["Audit.Example.com", "::1"], "0.0.0.0") == ["[::1]", "audit.example.com"]
    config = tmp_path / "duecall.toml"
    config.write_text('[audit]\nallowed_hosts = ["*"]\n')  # "every host" would undo the check
    with pytest.raises(ConfigError, match=r"audit\.allowed_hosts"):
        load_settings(config)

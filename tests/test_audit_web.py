"""The audit web page over HTTP (Starlette's TestClient): sign-in, roles, CSRF, masking, recordings,
exports, and that every view and export lands in the audit chain."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from audit.chain import expected_hash, link_hash
from audit.search import events_for
from audit.verify import verify
from audit.web.app import create_app
from dialer.cli import main
from dialer.config import Settings
from dialer.models import Decision, Reason
from dialer.store import Store
from tests.audit_seed import ADMIN, AUDITOR, PASSWORD, Seeded, seed
from tests.conftest import make_settings


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Settings, Seeded]]:
    settings = make_settings(tmp_path)
    yield settings, asyncio.run(seed(settings, tmp_path))


def client_for(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), follow_redirects=False)


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    token = csrf(client.get("/login").text)
    r = client.post("/login", data={"name": name, "password": password, "csrf": token, "next": "/calls"})
    assert r.status_code == 303, r.text
    return csrf(client.get("/calls").text)


def chain_kinds(settings: Settings) -> list[tuple[str, str, str]]:
    async def go() -> list[tuple[str, str, str]]:
        store = await Store.open(settings.path(settings.store.path))
        try:
            sql = "SELECT kind, actor, data FROM audit_events ORDER BY seq"
            rows = await store.conn.execute_fetchall(sql)
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
    assert listens == [{"page": f"/calls/{a1}/recording", "recording": 0}]  # once, not per range


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
        store = await Store.open(settings.path(settings.store.path))
        try:
            events = await events_for(store.conn, a1)
            assert all(expected_hash(e) == e.hash for e in events)
            await store.conn.execute(
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


LINK_FIELDS = ["prev_hash", "seq", "at", "kind", "actor", "campaign_id", "attempt_id", "account_id", "data"]


def test_evidence_bundle_can_be_rechecked(site: tuple[Settings, Seeded]) -> None:
    settings, seeded = site
    a2 = seeded.ids["A2"]

    for who, masked in [(AUDITOR, True), (ADMIN, False)]:
        with client_for(settings) as c:
            token = sign_in(c, who)
            if not masked:
                c.post("/reveal", data={"on": "1", "csrf": token})
            zf = zipfile.ZipFile(io.BytesIO(c.post(f"/calls/{a2}/export", data={"csrf": token}).content))
        evidence = json.loads(zf.read("evidence.json"))
        wav_name = evidence["recordings"][0]["file"]
        assert zf.read(wav_name) == seeded.wavs["A2"].read_bytes()
        assert evidence["masked"] is masked and evidence["recordings"][0]["status"] == "verified"
        text = json.dumps(evidence, ensure_ascii=False)
        assert ("13912341234" in text) is not masked and ("张伟" in text) is not masked
        checked = 0
        for e in evidence["events"]:
            if e["data_masked"]:
                continue
            args = [e[k] for k in LINK_FIELDS]
            assert link_hash(*args) == e["hash"]
            if e["seq"] > 1:
                assert evidence["previous_hashes"][str(e["seq"])] == e["prev_hash"]
            checked += 1
        assert checked >= 5
        assert any(e["data_masked"] for e in evidence["events"]) is masked


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


def test_check_bundle_command_rechecks_an_export_and_names_a_tampered_part(
    site: tuple[Settings, Seeded], tmp_path: Path
) -> None:
    settings, seeded = site
    with client_for(settings) as c:
        token = sign_in(c, ADMIN)
        c.post("/reveal", data={"on": "1", "csrf": token})
        bundle = tmp_path / "evidence.zip"
        bundle.write_bytes(c.post(f"/calls/{seeded.ids['A2']}/export", data={"csrf": token}).content)
    runner = CliRunner()
    ok = runner.invoke(main, ["audit", "check-bundle", str(bundle)])
    assert ok.exit_code == 0 and "verified" in ok.output and "(0 masked" in ok.output, ok.output

    def rewrite(change: Callable[[str, bytes], bytes]) -> Path:
        out = tmp_path / f"tampered-{len(list(tmp_path.glob('tampered-*')))}.zip"
        with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(out, "w") as dst:
            for name in src.namelist():
                dst.writestr(name, change(name, src.read(name)))
        return out

    def flip_wav(name: str, data: bytes) -> bytes:
        return data[:-10] + bytes([data[-10] ^ 1]) + data[-9:] if name.endswith(".wav") else data

    def edit_outcome(name: str, data: bytes) -> bytes:
        if name != "evidence.json":
            return data
        evidence = json.loads(data)
        for e in evidence["events"]:
            if e["kind"] == "call.outcome":
                e["data"] = e["data"].replace("opt_out", "promise_to_pay")
        return json.dumps(evidence, ensure_ascii=False).encode()

    bad_wav = runner.invoke(main, ["audit", "check-bundle", str(rewrite(flip_wav))])
    assert bad_wav.exit_code == 1 and "SHA-256 differs from the chain's" in bad_wav.output
    bad_event = runner.invoke(main, ["audit", "check-bundle", str(rewrite(edit_outcome))])
    assert bad_event.exit_code == 1 and "differs from what was hashed (call.outcome)" in bad_event.output


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
        store = await Store.open(settings.path(settings.store.path))
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

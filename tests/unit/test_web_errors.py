"""The audit page's one error handler (audit/web/app.py error_page): every error status is the one
template, error.html, with its status, the security headers, and never a traceback or a path."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import audit.web.app as web
from audit.web.app import create_app
from audit.web.security import CSP
from dialer.core.config import Settings
from tests.support.audit_seed import ADMIN, AUDITOR, PASSWORD, seed
from tests.support.config import make_settings
from tests.support.web import csrf, sign_in

MARKER = '<section id="error" data-status="{}">'


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    found = make_settings(tmp_path)
    asyncio.run(seed(found, tmp_path))
    return found


def client(settings: Settings) -> TestClient:
    # A bug's exception reaches the server's log; the test reads the page that was sent.
    app = create_app(settings)
    return TestClient(app, base_url="http://localhost", follow_redirects=False, raise_server_exceptions=False)


def assert_error_page(r: Any, status: int, *texts: str) -> None:
    assert r.status_code == status, (r.status_code, r.text[-500:])
    assert r.headers["content-type"].startswith("text/html")
    assert MARKER.format(status) in r.text, r.text[-500:]
    assert r.headers["content-security-policy"] == CSP and r.headers["cache-control"] == "no-store"
    assert "Traceback" not in r.text and 'File "' not in r.text
    for text in texts:
        assert text in r.text, (text, r.text[-500:])


def test_every_error_status_is_the_one_page(settings: Settings) -> None:
    with client(settings) as c:
        assert_error_page(c.get("/login", headers={"Host": "evil.example"}), 400, "Invalid host header")
        assert_error_page(c.get("/nope"), 404, "Not Found")  # was Starlette's plain "Not Found"
        assert_error_page(c.get("/static/nope.css"), 404)
        put = c.put("/login")
        assert_error_page(put, 405, "Method Not Allowed")  # was plain text
        assert "GET" in put.headers["allow"]  # the exception's headers are kept
        assert_error_page(c.post("/login", data={"name": AUDITOR, "password": "x"}), 403, "CSRF check failed")
        sign_in(c, AUDITOR)
        assert_error_page(c.get("/admin/auditors"), 403, "for admins only", AUDITOR)  # the menu, signed in
        assert_error_page(c.get("/calls/12345"), 404, "No such call.")
        assert_error_page(c.get("/calls/abc"), 404, "a call id is a whole number")


def test_a_bug_is_a_500_page_without_its_traceback(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = str(tmp_path / "secret" / "duecall.db")

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"a bug near {secret}")

    monkeypatch.setattr(web, "search", broken)
    with client(settings) as c:
        # Signed in by hand: sign_in() opens /calls, the page this test breaks.
        form = {"name": ADMIN, "password": PASSWORD, "csrf": csrf(c.get("/login").text)}
        assert c.post("/login", data=form).status_code == 303
        page = c.get("/calls")
        assert_error_page(page, 500, "Something went wrong on our side")
        assert secret not in page.text and "RuntimeError" not in page.text and "a bug near" not in page.text
        assert ADMIN not in page.text  # a bug's page has no menu: nothing that could fail again
        assert c.get("/trail").status_code == 200  # the server goes on


def test_data_endpoints_answer_errors_in_plain_text(settings: Settings) -> None:
    """The recording and CSV endpoints: plain text, through the same handler (and its headers)."""
    with client(settings) as c:
        r = c.get("/calls.csv")
        assert (
            r.status_code == 401
            and r.text == "Sign in first."
            and r.headers["content-security-policy"] == CSP
        )
        sign_in(c, AUDITOR)
        r = c.get("/calls/12345/recording")
        assert r.status_code == 404 and r.text == "No such recording."
        assert r.headers["content-type"].startswith("text/plain")
        r = c.get("/calls.csv", params={"from": "soon"})
        assert r.status_code == 400 and r.text == "from: 'soon' is not a date like 2025-01-31"

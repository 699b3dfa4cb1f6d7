"""The audit page in-process: a TestClient on the page's own host name, signed in."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from audit.web.app import create_app
from dialer.core.config import Settings
from tests.support.audit_seed import PASSWORD


def client_for(settings: Settings) -> TestClient:
    # The page answers only to its own host names (DNS rebinding); TestClient's "testserver" is not one.
    return TestClient(create_app(settings), base_url="http://localhost", follow_redirects=False)


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    token = csrf(client.get("/login").text)
    r = client.post("/login", data={"name": name, "password": password, "csrf": token, "next": "/calls"})
    assert r.status_code == 303, r.text
    return csrf(client.get("/calls").text)

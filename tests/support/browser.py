"""Helpers for the browser tests: the audit page on a real uvicorn, and Debian's headless chromium.

Playwright's own browser downloads cannot work here, so it drives /usr/bin/chromium
(bootstrap.sh installs it in test mode). A missing chromium fails the test loudly.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from audit.web.app import Extension, create_app
from dialer.core.config import Settings

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(settings: Settings, timeout: float = 15.0, extensions: Sequence[Extension] = ()) -> Iterator[str]:
    """The audit page (with `extensions`: the operations pages) on 127.0.0.1 in a thread; yields
    its base URL."""
    port = _free_port()
    app = create_app(settings, extensions=extensions)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none", http="h11")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            pytest.fail(f"the audit page did not start on port {port} within {timeout:.0f} s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)


@contextmanager
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (./bootstrap.sh test does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=30_000)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: Page, base: str, name: str, password: str) -> None:
    page.goto(f"{base}/calls")
    assert "/login" in page.url
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/calls")


def audio_duration(page: Page, selector: str = "#audio-0", timeout_ms: int = 15_000) -> float:
    """Wait until the player has loaded the recording's metadata; its duration in seconds."""
    page.wait_for_function(
        f"() => {{ const a = document.querySelector('{selector}');"
        " return a !== null && a.readyState >= 1 && a.duration > 0; }",
        timeout=timeout_ms,
    )
    return float(page.eval_on_selector(selector, "a => a.duration"))

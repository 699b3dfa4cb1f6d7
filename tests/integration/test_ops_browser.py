"""The operations pages in real headless Chromium (Playwright) against a real uvicorn server, while
a real `duecall run` calls simulated borrowers through the real Asterisk: sign in as an operator,
open the running campaign, pause it (no new call starts), resume it, open the report and see its
plots, and listen to a script's line. Screenshots go to var/test/screenshots/ops-*.png."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page

from audit.users import create_user
from dialer.asterisk.host import AmiCredentials
from dialer.core.config import Settings
from dialer.core.errors import AmiActionFailed
from dialer.store import SqliteStore
from duecall.console import console_pages
from tests.support.browser import chromium, serving
from tests.support.config import make_settings
from tests.support.project import PROJECT_ROOT, daytime_zone
from tests.support.sim import ami, prepare, put, reset_counts, start_run

pytestmark = pytest.mark.asterisk
OPERATOR, PASSWORD = "olga", "a long enough password"
# 0100-0109 answer, say hello, wait `delay` seconds and press a key: slow calls, one line at a time.
PHONES = [f"+1202555010{i}" for i in range(2, 8)]
DELAY = "8"
SHOTS = PROJECT_ROOT / "var" / "test" / "screenshots"


@pytest.fixture
def slow_borrowers(asterisk: AmiCredentials) -> Iterator[None]:
    asyncio.run(_slow(asterisk, DELAY))
    try:
        yield
    finally:
        asyncio.run(_slow(asterisk, None))


async def _slow(creds: AmiCredentials, delay: str | None) -> None:
    await reset_counts(creds, PHONES)
    for phone in PHONES:
        if delay is not None:
            await put(creds, phone, "delay", delay)
            continue
        async with ami(creds) as client:
            with contextlib.suppress(AmiActionFailed):
                await client.send("DBDel", {"Family": f"sim/{phone.lstrip('+')}", "Key": "delay"})


def test_operator_pauses_and_resumes_a_running_campaign(slow_borrowers: None, work_dir: Path) -> None:
    settings = make_settings(
        work_dir,
        dialer={"max_concurrent": 1, "calls_per_second": 1, "amd": False, "ring_timeout": "8s"},
    )
    zone = daytime_zone()
    asyncio.run(prepare(settings, work_dir, [(f"P{i}", p, zone) for i, p in enumerate(PHONES)]))
    asyncio.run(_operator(settings))
    SHOTS.mkdir(parents=True, exist_ok=True)
    run = start_run(settings)
    try:
        with serving(settings, extensions=[console_pages(settings)]) as base, chromium() as browser:
            page = browser.new_page()
            _sign_in(page, base)
            _pause_and_resume(page, base, settings)
            _report(page, base)
            _listen(page, base)
    finally:
        output = _stop(run)
    assert "Traceback" not in output, output[-3000:]


async def _operator(settings: Settings) -> None:
    store = await SqliteStore.open(settings.path(settings.store.path))
    try:
        await create_user(store, OPERATOR, "operator", PASSWORD, "operator:test", datetime.now(UTC))
    finally:
        await store.close()


def _sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/")
    assert "/login" in page.url
    page.fill("input[name=name]", OPERATOR)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/ops")
    assert page.locator("header nav >> text=Calls").count() == 0  # an operator has no audit pages


def _pause_and_resume(page: Page, base: str, settings: Settings) -> None:
    row = page.locator("tr[data-campaign=test]")
    _wait(lambda: _reload_text(page, "tr[data-campaign=test] td.state") == "running", 60, "the run to start")
    row.locator("a").click()
    page.wait_for_url(f"{base}/ops/campaigns/test")
    # the live part refreshes itself (ops.js): a call goes into flight without a reload
    page.wait_for_function(
        "() => Number(document.querySelector('#calls-in-flight').textContent) > 0", timeout=60_000
    )
    page.screenshot(path=str(SHOTS / "ops-running.png"), full_page=True)
    page.click("#pause")
    page.wait_for_selector("#resume")
    assert page.inner_text("#state") == "paused"
    # the call under way finishes; then nothing new starts while paused
    page.wait_for_function(
        "() => Number(document.querySelector('#calls-in-flight').textContent) === 0", timeout=60_000
    )
    placed = _attempts(settings)
    time.sleep(6)  # the dialer reads the state every second: well past that
    page.reload()
    assert _attempts(settings) == placed and page.inner_text("#calls-in-flight") == "0"
    assert page.inner_text("#state") == "paused"
    page.screenshot(path=str(SHOTS / "ops-paused.png"), full_page=True)
    page.click("#resume")
    page.wait_for_selector("#pause")
    assert page.inner_text("#state") == "running"
    _wait(lambda: _attempts(settings) > placed, 60, "a new call after the resume")
    page.wait_for_function(
        "() => Number(document.querySelector('#calls-in-flight').textContent) > 0", timeout=30_000
    )
    page.screenshot(path=str(SHOTS / "ops-resumed.png"), full_page=True)


def _report(page: Page, base: str) -> None:
    page.click("#tab-report")
    page.wait_for_url(f"{base}/ops/campaigns/test/report")
    title = page.get_attribute("tr[data-metric=contact_rate] abbr", "title") or ""
    assert "accounts attempted" in title and "/" in title  # numerator / denominator on hover
    images = page.locator("#plots img")
    assert images.count() == 5
    page.wait_for_function(
        "() => [...document.querySelectorAll('#plots img')].every(i => i.complete && i.naturalWidth > 0)",
        timeout=30_000,
    )
    widths = page.eval_on_selector_all("#plots img", "imgs => imgs.map(i => i.naturalWidth)")
    assert all(w > 0 for w in widths), widths
    page.screenshot(path=str(SHOTS / "ops-report.png"), full_page=True)


def _listen(page: Page, base: str) -> None:
    page.goto(f"{base}/ops/previews")
    audio = "#script-reminder-en-US audio"
    page.eval_on_selector(audio, "a => { a.preload = 'auto'; a.load(); }")
    loaded = f"() => {{ const a = document.querySelector('{audio}'); return a.duration > 0.5; }}"
    page.wait_for_function(loaded, timeout=60_000)
    page.screenshot(path=str(SHOTS / "ops-previews.png"), full_page=True)
    for name in ("running", "paused", "resumed", "report", "previews"):
        print(f"screenshot: {SHOTS / f'ops-{name}.png'}")


def _reload_text(page: Page, selector: str) -> str:
    page.reload()
    found = page.locator(selector)
    return found.inner_text() if found.count() else ""


def _wait(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds:.0f} s for {what}")
        time.sleep(0.5)


def _attempts(settings: Settings) -> int:
    """Calls claimed so far (read-only: Playwright's loop is this thread's)."""
    db = settings.path(settings.store.path)
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        return int(conn.execute("SELECT count(*) FROM attempts").fetchone()[0])


def _stop(run: subprocess.Popen[str]) -> str:
    """Ctrl-C the run (it drains the call under way) and return what it printed."""
    if run.poll() is None:
        run.send_signal(signal.SIGINT)
    try:
        output, _ = run.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        run.kill()
        output, _ = run.communicate()
    return output

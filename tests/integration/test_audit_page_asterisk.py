"""End to end: a real call through the real Asterisk and the IVR, then opened on the audit page in
headless Chromium: its events, its transcript, its recording playing, and every hash verified."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from audit.users import create_user
from dialer.asterisk.host import AmiCredentials
from dialer.core.clock import SystemClock
from dialer.core.config import Settings
from dialer.store import SqliteStore
from duecall.runtime import dial
from tests.support.browser import audio_duration, chromium, serving, sign_in
from tests.support.project import daytime_zone
from tests.support.sim import attempts, ivr_settings, opts_out_by_key, prepare, reset_counts

pytestmark = pytest.mark.asterisk
PASSWORD = "a long enough password"


async def test_a_real_call_on_the_audit_page(asterisk: AmiCredentials, work_dir: Path) -> None:
    settings = ivr_settings(work_dir)
    phone = "+12185550107"
    await opts_out_by_key(asterisk, settings, phone, "W1")
    await reset_counts(asterisk, [phone])
    await prepare(settings, work_dir, [("W1", phone, daytime_zone())])
    summary = await dial(settings, "test", SystemClock(), timedelta(0))
    assert summary.finished == 1
    [row] = await attempts(settings)
    assert (row["disposition"], row["outcome"]) == ("answered", "opt_out")
    store = await SqliteStore.open(settings.path(settings.store.path))
    try:
        await create_user(store, "ann", "auditor", PASSWORD, "operator:test", SystemClock().now())
    finally:
        await store.close()
    await asyncio.to_thread(_browse, settings, int(row["id"]))  # type: ignore[call-overload]


def _browse(settings: Settings, attempt_id: int) -> None:
    with serving(settings) as base, chromium() as browser:
        page = browser.new_page()
        sign_in(page, base, "ann", PASSWORD)
        page.goto(f"{base}/calls?outcome=opt_out")
        assert page.inner_text("#total") == "1"
        page.click(f"a[href='/calls/{attempt_id}']")
        page.wait_for_url(f"{base}/calls/{attempt_id}")
        timeline = page.inner_text("#timeline")
        for kind in (
            "attempt.decided",
            "call.answer",
            "ivr.prompt",
            "ivr.key",
            "call.outcome",
            "recording.stored",
        ):
            assert kind in timeline, kind
        assert "pressed 9" in page.inner_text("#transcript")
        assert "Borrower W1" not in page.content() and "2185550107" not in page.content()
        assert page.inner_text("#links") == "verified"
        assert page.inner_text("#recording-status-0") == "verified"
        assert audio_duration(page) > 1.0

"""The audit page in real headless Chromium (Playwright) against a real uvicorn server."""

from __future__ import annotations

import asyncio
import json
import zipfile
from pathlib import Path

from audit.search import CallFilter, search
from dialer.store import SqliteStore
from tests.support.audit_seed import ADMIN, AUDITOR, PASSWORD, seed, seed_texts
from tests.support.browser import audio_duration, chromium, serving, sign_in
from tests.support.config import make_settings


def test_auditor_and_admin_in_the_browser(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    seeded = asyncio.run(seed(settings, tmp_path))
    a2 = seeded.ids["A2"]
    with serving(settings) as base, chromium() as browser:
        page = browser.new_context(accept_downloads=True).new_page()
        sign_in(page, base, AUDITOR, PASSWORD)
        assert page.inner_text("#total") == "4"

        # filter the list
        page.select_option("select[name=outcome]", "opt_out")
        page.click("#filters button[type=submit]")
        page.wait_for_url("**/calls?*outcome=opt_out*")
        assert page.inner_text("#total") == "1"
        row = page.inner_text("table.calls tbody tr")
        assert "张•" in row and "+86 •••••••1234" in row and "13912341234" not in row

        # open the call: facts, timeline, transcript, hash checks, the recording plays
        page.click(f"a[href='/calls/{a2}']")
        page.wait_for_url(f"{base}/calls/{a2}")
        assert page.inner_text("#outcome").startswith("opt_out")
        timeline = page.inner_text("#timeline")
        for kind in ["attempt.decided", "call.answer", "ivr.prompt", "ivr.speech", "call.outcome"]:
            assert kind in timeline, kind
        assert "张伟" not in page.content()
        assert page.inner_text("#links") == "verified"
        assert page.inner_text("#recording-status-0") == "verified"
        assert abs(audio_duration(page) - 2.0) < 0.1

        # export: a ZIP with evidence.json and the WAV
        with page.expect_download(timeout=15_000) as info:
            page.click("#export")
        path = info.value.path()
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            evidence = json.loads(z.read("evidence.json"))
            wav = [n for n in names if n.endswith(".wav")]
            assert wav and z.read(wav[0]) == seeded.wavs["A2"].read_bytes()
        assert evidence["masked"] is True and evidence["attempt"]["id"] == a2

        # an auditor has no reveal button, and a hand-made reveal request is refused
        assert page.locator("#reveal").count() == 0
        token = page.get_attribute("input[name=csrf]", "value")
        refused = page.request.post(f"{base}/reveal", form={"csrf": token or "", "on": "1"}, max_redirects=0)
        assert refused.status == 403
        page.reload()
        assert "张伟" not in page.content() and "13912341234" not in page.content()

        # an admin may reveal, and sees the full name and number
        admin = browser.new_context().new_page()
        sign_in(admin, base, ADMIN, PASSWORD)
        admin.goto(f"{base}/calls/{a2}")
        admin.click("#reveal")
        admin.wait_for_selector("text=Hide names and numbers")
        assert admin.inner_text("#name") == "张伟" and admin.inner_text("#phone") == "+8613912341234"

        # the whole trail, verified from the page (the seed's row pointing outside the folder is
        # a recording problem the check must name)
        page.click("header nav >> text=Trail")
        page.click("#verify")
        page.wait_for_selector("#trail-status")
        assert page.inner_text("#trail-broken") == "none"
        assert "outside.wav: content changed" in page.inner_text("#trail-problems")

    async def logged() -> list[str]:
        store = await SqliteStore.open(settings.path(settings.store.path))
        try:
            sql = "SELECT kind FROM audit_events WHERE actor LIKE 'auditor:%'"
            rows = await store.fetch_all(sql)
            assert (await search(store, CallFilter())).total == 4
            return [r[0] for r in rows]
        finally:
            await store.close()

    kinds = asyncio.run(logged())
    assert {"audit.sign_in", "audit.view", "audit.export", "audit.reveal", "audit.verify"} <= set(kinds)


def test_an_accounts_calls_and_texts_and_the_texts_search_in_the_browser(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    seeded = asyncio.run(seed(settings, tmp_path))
    asyncio.run(seed_texts(settings))
    with serving(settings) as base, chromium() as browser:
        page = browser.new_context().new_page()
        sign_in(page, base, AUDITOR, PASSWORD)
        # from the call list to the account: its texts, replies and the call in time order
        page.click(f"table.calls tr:has(a[href='/calls/{seeded.ids['A1']}']) td:nth-child(3) a")
        page.wait_for_url(f"{base}/accounts/*")
        kinds = page.eval_on_selector_all("#account-timeline tbody tr", "rows => rows.map(r => r.className)")
        assert kinds == [
            "entry-text",
            "entry-reply",
            "entry-call",
            "entry-text",
            "entry-refused",
            "entry-reply",
        ]
        timeline = page.inner_text("#account-timeline")
        assert "delivered (report): stat:DELIVRD err:000" in timeline and "Opted out of sms" in timeline
        assert "W•• Z••••" in timeline and "Wei Zhang" not in page.content()
        assert page.inner_text("#links") == "verified"
        # the texts search: failed texts only
        page.click("header nav >> text=Texts")
        page.select_option("select[name=state]", "failed")
        page.click("#filters button[type=submit]")
        page.wait_for_url("**/texts?*state=failed*")
        assert page.inner_text("#total") == "1"
        assert "stat:UNDELIV err:001" in page.inner_text("#texts")

"""Texts on the audit page (issue 12, item 6): an account's calls and texts in time order with
each text's states and reasons, the texts search, masking of numbers, names and the text's
words unless revealed, every view logged, and hostile queries answered 400 or 404, never 500 (on
SQLite and on PostgreSQL; the speed test on SQLite)."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from hypothesis import strategies as st
from starlette.testclient import TestClient

from audit.masking import Masker
from audit.texts import IN, OUT, REFUSED, SentText, TextFilter, group, search_texts
from audit.web.app import create_app
from dialer.core.config import Settings
from dialer.store import SqliteStore
from dialer.store.chain import StoredEvent
from dialer.store.opening import open_store
from tests.support import raw_db
from tests.support.audit_seed import (
    ADMIN,
    AUDITOR,
    SQLITE_SITE,
    STRANGER,
    WEI_REPLY,
    Seeded,
    SeededTexts,
    backend_settings,
    backend_url,
    seed,
    seed_texts,
)
from tests.support.web import client_for, csrf, sign_in

Site = tuple[Settings, Seeded, SeededTexts]
__all__ = ["backend_url"]  # the fixture, on both backends


@pytest.fixture
def site(backend_url: str, tmp_path: Path) -> Iterator[Site]:
    settings = backend_settings(tmp_path, backend_url)
    seeded = asyncio.run(seed(settings, tmp_path))
    yield settings, seeded, asyncio.run(seed_texts(settings))


def _pk(settings: Settings, account_id: str) -> int:
    async def go() -> int:
        store = await open_store(settings)
        try:
            row = await store.fetch_one("SELECT id FROM accounts WHERE account_id = ?", (account_id,))
            assert row is not None
            return int(row["id"])
        finally:
            await store.close()

    return asyncio.run(go())


def _chain(settings: Settings) -> list[tuple[str, str, str | None, dict[str, object]]]:
    async def go() -> list[tuple[str, str, str | None, dict[str, object]]]:
        store = await open_store(settings)
        try:
            rows = await store.fetch_all(
                "SELECT kind, actor, account_id, data FROM audit_events ORDER BY seq"
            )
            return [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]
        finally:
            await store.close()

    return asyncio.run(go())


def _rows(html: str, table: str) -> list[str]:
    body = html[html.index(f'id="{table}"') :]
    return re.findall(r'<tr class="([a-z-]+)"', body[: body.index("</table>")])


def test_an_accounts_timeline_has_its_texts_and_replies_beside_its_calls_in_time_order(site: Site) -> None:
    settings, seeded, texts = site
    a1 = _pk(settings, "A1")
    with client_for(settings) as c:
        sign_in(c, AUDITOR)
        call = c.get(f"/calls/{seeded.ids['A1']}").text
        assert f'href="/accounts/{a1}"' in call  # from the call to its account
        r = c.get(f"/accounts/{a1}")
    assert r.status_code == 200
    page = r.text
    order = ["entry-text", "entry-reply", "entry-call", "entry-text", "entry-refused", "entry-reply"]
    assert _rows(page, "account-timeline") == order
    first = page[page.index(f'id="text-{texts.sent["wei-1"]}"') :]
    first = first[: first.index("</tr>")]
    assert "gsm-7, 1 segment" in first and "reminder-en-US#before_due" in first
    assert "submitted (submit): 0: Accepted for delivery" in first
    assert "delivered (report): stat:DELIVRD err:000" in first  # the gateway's words
    assert "<b>window</b>: 09:00 local is inside 08:00-21:00" in first  # why it was allowed
    assert "$123.45 is due 2025-03-15" in first  # what it said (masked: see below)
    second = page[page.index(f'id="text-{texts.sent["wei-2"]}"') :]
    assert "failed (report): stat:UNDELIV err:001" in second[: second.index("</tr>")]
    refused = page[page.index('class="entry-refused"') :]
    assert "<b>sms-daily-cap</b>: 2 of 2 texts today" in refused[: refused.index("</tr>")]
    replies = re.findall(r'<tr class="entry-reply".*?</tr>', page, re.S)
    assert 'Taken for <b class="taken">for_person</b>' in replies[0] and "Opted out" not in replies[0]
    assert "opt_out</b> (keyword STOP)" in replies[1] and "Opted out of sms" in replies[1]
    assert 'id="links">verified' in page  # the texts' chain events and their links
    # 张伟's 退订 opted out of texts and calls; her page has only her own.
    with client_for(settings) as c:
        sign_in(c, AUDITOR)
        other = c.get(f"/accounts/{_pk(settings, 'A2')}").text
    assert _rows(other, "account-timeline") == ["entry-text", "entry-reply", "entry-call"]
    assert "Opted out of sms, voice" in other and "wrong number" not in other


def test_the_search_finds_texts_by_state_number_kind_direction_account_and_date(site: Site) -> None:
    settings, _, texts = site

    async def go() -> None:
        store = await open_store(settings)
        try:

            async def found(f: TextFilter) -> list[tuple[str, int]]:
                return [(r.direction, r.id) for r in (await search_texts(store, f)).rows]

            everything = await search_texts(store, TextFilter())
            assert everything.total == 8 and len(everything.rows) == 8  # 3 sent, 1 refused, 4 replies
            assert [r.at for r in everything.rows] == sorted((r.at for r in everything.rows), reverse=True)
            assert await found(TextFilter(state="failed")) == [(OUT, texts.sent["wei-2"])]
            delivered = await found(TextFilter(state="delivered"))
            assert delivered == [(OUT, texts.sent["zhang"]), (OUT, texts.sent["wei-1"])]
            stranger = (await search_texts(store, TextFilter(number=STRANGER))).rows
            assert [(r.direction, r.text, r.account_pk) for r in stranger] == [(IN, "wrong number", None)]
            a1 = await found(TextFilter(number="+12025550101"))
            assert [d for d, _ in a1] == [IN, REFUSED, OUT, IN, OUT]
            assert await found(TextFilter(account_id="A1")) == a1
            assert [d for d, _ in await found(TextFilter(kind="opt_out"))] == [IN, IN]
            assert [d for d, _ in await found(TextFilter(direction=REFUSED, account_id="A1"))] == [REFUSED]
            day2 = await found(TextFilter(date_from=date(2025, 3, 2), date_to=date(2025, 3, 2)))
            assert len(day2) == 3  # 张伟's text and reply, the stranger's reply
            assert await found(TextFilter(state="failed", kind="opt_out")) == []  # no text is both
            assert await found(TextFilter(account_id="' OR 1=1 --")) == []
            assert (await search_texts(store, TextFilter(), page=10**6, size=2)).page == 4  # the last page
        finally:
            await store.close()

    asyncio.run(go())
    with client_for(settings) as c:
        sign_in(c, AUDITOR)
        r = c.get("/texts", params={"state": "failed"})
        assert r.status_code == 200 and _rows(r.text, "texts") == ["text-out"]
        r = c.get("/texts", params={"number": "+1 (202) 555-0199"})  # written as people write it
        assert r.status_code == 200 and _rows(r.text, "texts") == ["text-in"] and "wrong number" in r.text


def test_texts_are_masked_like_calls_unless_an_admin_reveals(site: Site) -> None:
    settings, _, _ = site
    a1, a2 = _pk(settings, "A1"), _pk(settings, "A2")
    secrets = ["Wei Zhang", "Zhang here", "2025550101", "202-555-0188", "张伟", "13912341234", "1234567"]
    with client_for(settings) as c:
        token = sign_in(c, ADMIN)
        pages = [c.get("/texts").text, c.get(f"/accounts/{a1}").text, c.get(f"/accounts/{a2}").text]
        for page in pages:
            for secret in secrets:
                assert secret not in page, secret
        assert "W•• Z•••• here, call me at ••••••0188 please" in pages[0]  # the reply's words
        assert "Acme Lending: W•• Z••••, your payment of $123.45 is due 2025-03-15" in pages[1]
        assert "+1 ••••••0101" in pages[1] and "张•您好" in pages[2] and "+86 •••••••1234" in pages[0]
        assert "+1 ••••••0199" in pages[0]  # a number that is no account's
        r = c.post("/reveal", data={"on": "1", "csrf": token, "back": f"/accounts/{a1}"})
        assert r.status_code == 303 and r.headers["location"] == f"/accounts/{a1}"
        shown = c.get(f"/accounts/{a1}").text
        assert WEI_REPLY in shown and "Acme Lending: Wei Zhang, your payment" in shown
        assert "+12025550101" in shown and "800-555-0199" in shown
        assert "张伟您好" in c.get("/texts").text
    with client_for(settings) as c:
        sign_in(c, AUDITOR)  # an auditor never sees them, whatever an admin chose
        assert "Wei Zhang" not in c.get(f"/accounts/{a1}").text
    reveals = [d for k, _, _, d in _chain(settings) if k == "audit.reveal"]
    assert reveals == [{"on": True, "page": f"/accounts/{a1}"}]


def test_every_texts_view_is_logged_with_its_filters_and_account(site: Site) -> None:
    settings, _, _ = site
    a1 = _pk(settings, "A1")
    with client_for(settings) as c:
        sign_in(c, AUDITOR)
        c.get("/texts", params={"state": "delivered", "from": "2025-03-01"})
        c.get(f"/accounts/{a1}")
        c.get("/texts", params={"to": "2025-13-01"})  # refused: logged too
    views = [(acc, d) for k, a, acc, d in _chain(settings) if k == "audit.view" and a == f"auditor:{AUDITOR}"]
    searched = {"page": "/texts", "filters": {"from": "2025-03-01", "state": "delivered"}, "n": 1}
    assert (None, {**searched, "revealed": False}) in views
    assert ("A1", {"page": f"/accounts/{a1}", "revealed": False}) in views
    assert (None, {"page": "/texts", "filters": {}, "n": 1, "revealed": False}) in views


HUGE = "9" * 5000


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"from": "2025-02-30"}, "from: '2025-02-30' is not a date"),
        ({"to": "99999-12-31"}, "to: '99999-12-31' is not a date"),
        ({"number": "' OR 1=1 --"}, 'number: "\' OR 1=1 --" is not a phone number'),
        ({"number": "+1" + "2" * 20}, "is not a phone number"),
        ({"state": "delivered' --"}, 'state: "delivered\' --" is not one of queued'),
        ({"kind": "stop"}, "kind: 'stop' is not one of opt_out, answer, for_person"),
        ({"direction": "sideways"}, "direction: 'sideways' is not one of out, in, refused"),
        ({"account": "A" * 5000}, "account: longer than 100 characters"),
        ({"number": HUGE}, "number: longer than 100 characters"),
    ],
)
def test_a_bad_texts_filter_is_named_and_answered_400_with_nothing_searched(
    site: Site, params: dict[str, str], named: str
) -> None:
    settings, _, _ = site
    with client_for(settings) as c:
        sign_in(c, AUDITOR)
        began = time.perf_counter()
        r = c.get("/texts", params=params)
        elapsed = time.perf_counter() - began
    assert r.status_code == 400, r.text[-300:]
    assert named in r.text.replace("&#39;", "'").replace("&#34;", '"'), r.text[-800:]
    assert 'id="texts"' not in r.text and elapsed < 2.0


def test_odd_but_harmless_queries_find_or_find_nothing(site: Site) -> None:
    settings, _, _ = site
    with client_for(settings) as c:
        sign_in(c, AUDITOR)
        for params in [
            {"account": "' OR 1=1 --"},
            {"account": "%"},
            {"to": "9999-12-31", "from": "0001-01-01"},
            {"page": HUGE},
            {"page": "-5"},
            {"state": "failed", "kind": "opt_out"},
        ]:
            r = c.get("/texts", params=params)
            assert r.status_code == 200, (params, r.text[-300:])
        assert "No texts match" in c.get("/texts", params={"account": "' OR 1=1 --"}).text
        for path in ["/accounts/abc", f"/accounts/{HUGE}", "/accounts/-1", "/accounts/9223372036854775808"]:
            r = c.get(path)
            assert r.status_code == 404 and "No such account" in r.text, path[:40]
        assert c.get("/accounts/424242").status_code == 404


def test_the_trail_page_names_a_text_changed_in_the_table(site: Site) -> None:
    """Verifying from the page checks the texts as `duecall audit verify` does, and says which."""
    settings, _, texts = site
    mid = next(iter(texts.sent.values()))
    raw_db.tamper_in(settings, "UPDATE messages SET text = ? WHERE id = ?", ("Pay now or else.", mid))
    with client_for(settings) as c:
        token = sign_in(c, AUDITOR)
        page = c.post("/trail", data={"csrf": token}).text
    assert ">FAILED<" in page and f"text {mid}: its number or text differs from the chain&#39;s" in page


def test_texts_and_accounts_need_sign_in(site: Site) -> None:
    settings, _, _ = site
    with client_for(settings) as c:
        for page in ["/texts", "/texts?state=failed", f"/accounts/{_pk(settings, 'A1')}"]:
            r = c.get(page)
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), page


_PARAMS = ["from", "to", "account", "number", "direction", "state", "kind", "page"]
_HOSTILE = st.one_of(
    st.text(max_size=40),
    st.dates().map(date.isoformat),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["9999-12-31", "0001-01-01", HUGE, "+10000-01-01", "\0", "%", "delivered", "opt_out"]),
)


def test_no_query_on_the_texts_or_account_pages_gives_a_500(site: Site) -> None:
    """Property: whatever the query string and account key, the answer is below 500."""
    settings, _, _ = site
    app = create_app(settings)
    with TestClient(
        app, base_url="http://localhost", follow_redirects=False, raise_server_exceptions=False
    ) as c:
        sign_in(c, ADMIN)
        token = csrf(c.get("/texts").text)
        c.post("/reveal", data={"on": "1", "csrf": token})  # revealed pages take other paths

        @settings_(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(params=st.dictionaries(st.sampled_from(_PARAMS), _HOSTILE, max_size=4), key=_HOSTILE)
        def check(params: dict[str, str], key: str) -> None:
            r = c.get("/texts", params=params)
            assert r.status_code in (200, 400), ({k: v[:80] for k, v in params.items()}, r.text[-500:])
            r = c.get(f"/accounts/{quote(key, safe='')}", params=params)
            assert r.status_code in (200, 404), (key[:80], r.text[-500:])

        check()


# -- pure parts -----------------------------------------------------------------------


def test_a_texts_words_keep_amounts_and_dates_and_lose_names_and_numbers() -> None:
    m = Masker("Wei Zhang", "+12025550101")
    said = "Wei Zhang, $1,234.56 due 2025-03-15 (03/15/2025). Call (800) 555-0199; card 4111 1111 1111 1111"
    assert m.body(said) == (
        "W•• Z••••, $1,234.56 due 2025-03-15 (03/15/2025). Call ••••••0199; card ••••••••••••1111"
    )
    assert m.body("Zhang: ring 2025550101 or +1 202 555 0188") == "Z••••: ring +1 ••••••0101 or •••••••0188"
    assert Masker("张伟", "+8613912341234").body("张伟，请致电13912341234") == "张•，请致电+86 •••••••1234"
    assert m.text("call 202-555-0188") == "call 202-555-0188"  # only a text's words lose other numbers
    assert (
        m.body("this is wei zhang. WEI! weight") == "this is w•• z••••. W••! weight"
    )  # any case, whole words
    began = time.perf_counter()
    assert m.body("1" * 1_000_000).endswith("1111")  # one pass, no backtracking
    assert time.perf_counter() - began < 1.0


def _event(seq: int, kind: str, data: dict[str, object], account: str = "A1") -> StoredEvent:
    at = (datetime(2025, 3, 1, tzinfo=UTC) + timedelta(minutes=seq)).isoformat()
    return StoredEvent(seq, at, kind, "t", None, None, account, json.dumps(data), "", "")


def test_an_opt_out_belongs_to_the_reply_written_just_before_it() -> None:
    sent = SentText(
        7, "2025-03-01T00:00:00Z", "+1", "reminder", "t#k", "hi", "gsm-7", 1, "kannel", "queued", []
    )
    inbound = {"inbound_id": 1, "phone": "+1", "text": "STOP", "kind": "opt_out", "answers": 7}
    events = [
        _event(
            1, "message.state", {"message_id": 7, "state": "submitted", "reason": "ok", "source": "submit"}
        ),
        _event(2, "message.state", {"message_id": 8, "state": "failed", "reason": "not ours"}),
        _event(3, "message.inbound", inbound),
        _event(4, "consumer.opted_out", {"channel": "sms", "new": True, "source": "sms reply 'STOP'"}),
        _event(5, "consumer.opted_out", {"channel": "voice", "new": False}),
        _event(9, "consumer.opted_out", {"channel": "voice", "new": True}),  # by hand, later
        _event(10, "message.inbound", {**inbound, "inbound_id": 2, "kind": "for_person"}),
    ]
    texts = group([sent], events)
    assert [(s.state, s.reason) for s in texts.sent[0].states] == [("submitted", "ok")]
    first, second = texts.replies
    assert [(o.channel, o.new) for o in first.opt_outs] == [("sms", True), ("voice", False)]
    assert second.opt_outs == [] and first.answers == 7


# -- speed --------------------------------------------------------------------------


def _bulk_texts(db: Path, n: int = 100_000) -> None:
    rng = random.Random(12)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    states = ["delivered"] * 6 + ["failed", "expired", "submitted", "accepted", "unknown", "not_sent"]
    sent = []
    for i in range(n):
        at = (start + timedelta(seconds=i * 300)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        phone = f"+1202{rng.randrange(10**7):07d}"
        sent.append(
            (rng.choice([1, 2, 3, 4, None]), phone, f"b{i % 50}", "t#k", "hi", rng.choice(states), at)
        )
    raw_db.executemany(
        db,
        "INSERT INTO messages (account_pk, phone_e164, batch, purpose, template, text, coding, segments, "
        "gateway, state, policy_reasons, decided_at, updated_at, dialer_id) "
        "VALUES (?, ?, ?, 'reminder', ?, ?, 'gsm-7', 1, 'kannel', ?, '[]', ?, ?7, 't')",
        sent,
    )
    replies = [(r[6], r[1], rng.choice(["opt_out", "answer", "for_person"]), r[0]) for r in sent[::5]]
    raw_db.executemany(
        db,
        "INSERT INTO inbound_messages (received_at, phone_e164, to_number, text, kind, account_pk) "
        "VALUES (?, ?, '106', 'ok', ?, ?)",
        replies,
    )


@SQLITE_SITE  # the texts are written straight into the SQLite file
def test_the_texts_search_is_quick_over_100000_texts_and_20000_replies(site: Site) -> None:
    settings, _, _ = site
    db = settings.path(settings.store.path)
    _bulk_texts(db)
    filters = {
        "none": TextFilter(),
        "state": TextFilter(state="failed"),
        "kind": TextFilter(kind="opt_out"),
        "number": TextFilter(number="+12025550101"),
        "account": TextFilter(account_id="A2"),
        "month": TextFilter(date_from=date(2024, 6, 1), date_to=date(2024, 6, 30)),
        "replies": TextFilter(direction=IN),
    }

    async def go() -> dict[str, float]:
        store = await SqliteStore.open(db)
        timings = {}
        try:
            for name, f in filters.items():
                began = time.perf_counter()
                first = await search_texts(store, f)
                deep = await search_texts(store, f, page=max(1, first.pages // 2))
                timings[name] = time.perf_counter() - began
                assert len(first.rows) <= 50 and len(deep.rows) <= 50
            assert (await search_texts(store, TextFilter())).total == 100_000 + 20_000 + 8
        finally:
            await store.close()
        return timings

    timings = asyncio.run(go())
    print("\ntexts search (first page + a middle page) over 100,000 texts and 20,000 replies:")
    for name, secs in timings.items():
        print(f"  {name:8} {secs * 1000:7.1f} ms")
    assert max(timings.values()) < 2.0, timings
    with client_for(settings) as c:  # an account with 20,000 texts: its page holds the newest
        sign_in(c, AUDITOR)
        began = time.perf_counter()
        r = c.get(f"/accounts/{_pk(settings, 'A1')}")
        elapsed = time.perf_counter() - began
    assert r.status_code == 200 and 'id="cut"' in r.text and elapsed < 5.0
    assert _rows(r.text, "account-timeline").count("entry-text") == 300
    print(f"  account page with ~20,000 texts: {elapsed * 1000:.0f} ms")

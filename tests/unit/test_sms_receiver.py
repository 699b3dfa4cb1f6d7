"""The callback receiver in-process (ASGI) over the real store and Kannel's callback formats:
reports by DueCall's own id, the secret, inbound replies (opt-out, answer, for a person), one
confirmation, and hostile requests answered 400 or 404 with nothing changed (issue 12, items 4-5).
The real Kannel calling a real server: tests/integration/test_sms_channel.py."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import pytest
from pydantic import ValidationError

from dialer.core.clock import FixedClock
from dialer.core.config import SHIPPED_SMS_TEMPLATES, PolicySettings
from dialer.core.messages import TextRequest
from dialer.core.models import Account
from dialer.policy.gate import PackGate, pack_from_settings
from dialer.policy.packs import load_pack
from dialer.store import SqliteStore
from sms.gateway import Inbound
from sms.inbox import Inbox
from sms.kannel import KannelEndpoint
from sms.kannel_client import KannelGateway
from sms.receiver import receiver_app
from sms.sender import Sender
from sms.templates import TemplateSet
from tests.support.gateway import ScriptedGateway
from tests.support.records import borrower

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
SECRET = "s3cret-path"
PHONE = "+12025550177"


@dataclass
class Rig:
    store: SqliteStore
    client: httpx2.AsyncClient
    gateway: ScriptedGateway
    sender: Sender
    account: Account


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = await SqliteStore.open(tmp_path / "t.db", "NORMAL")
    record = borrower("A1", PHONE)
    await store.upsert_accounts([record], NOW)
    account = await store.account("A1")
    assert account is not None
    clock = FixedClock(NOW)
    pack = load_pack("us-regf")
    scripted = ScriptedGateway()
    sender = Sender(store, PackGate(pack), scripted, clock, "t1")
    templates = TemplateSet.load(sorted(SHIPPED_SMS_TEMPLATES.glob("*.yaml")), "en-US")
    inbox = Inbox(store, sender, templates, pack.sms_opt_out_stops, clock, "kannel")
    parser = KannelGateway(KannelEndpoint("127.0.0.1", 9, "u", "p"), "http://127.0.0.1:1/sms/x")
    app = receiver_app(parser, inbox, SECRET, clock)
    client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1")
    yield Rig(store, client, scripted, sender, account)
    await client.aclose()
    await parser.aclose()
    await store.close()


async def _send(rig: Rig, message: str = "before_due", text: str = "Acme: a reminder.") -> int:
    request = TextRequest(
        rig.account, f"b-{message}", f"reminder-en-US#{message}", text, "gsm-7", 1, "kannel"
    )
    sent = await rig.sender.send(request)
    assert sent.message_id is not None
    return sent.message_id


async def _events(rig: Rig) -> int:
    row = await rig.store.fetch_one("SELECT count(*) AS n FROM audit_events")
    return int(row["n"]) if row else 0


async def test_a_report_moves_its_text_by_duecalls_own_id(rig: Rig) -> None:
    mid = await _send(rig)
    status = "id:7f3a sub:001 dlvrd:001 submit date:2611301500 done date:2611301500 stat:DELIVRD err:000"
    r = await rig.client.get(f"/sms/{SECRET}/dlr/{mid}", params={"type": "1", "status": status})
    assert r.status_code == 200
    [row] = await rig.store.messages_in()
    assert row["state"] == "delivered" and "DELIVRD" in row["reason"]


async def test_an_expired_receipt_is_expired(rig: Rig) -> None:
    mid = await _send(rig)
    r = await rig.client.get(
        f"/sms/{SECRET}/dlr/{mid}", params={"type": "2", "status": "id:1 stat:EXPIRED err:000"}
    )
    assert r.status_code == 200
    [row] = await rig.store.messages_in()
    assert row["state"] == "expired"


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/sms/wrong/dlr/{mid}", {"type": "1"}, 404),  # no secret, no page
        ("/sms/{secret}/dlr/{mid}", {"type": "99"}, 400),
        ("/sms/{secret}/dlr/{mid}", {}, 400),
        ("/sms/{secret}/dlr/{mid}", {"type": "1" * 5000}, 400),
        ("/sms/{secret}/dlr/999999", {"type": "1"}, 404),  # no such text
        ("/sms/{secret}/dlr", {"type": "1"}, 400),  # Kannel's reports always carry the id in the URL
        ("/sms/{secret}/dlr/abc", {"type": "1"}, 404),
        ("/sms/{secret}/mo", {"from": "not a phone", "text": "STOP"}, 400),
        ("/sms/{secret}/mo", {"from": PHONE}, 400),
        ("/sms/{secret}/mo", {"from": PHONE, "text": "x" * 5000}, 400),
        ("/sms/wrong/mo", {"from": PHONE, "text": "STOP"}, 404),
    ],
)
async def test_a_malformed_or_foreign_callback_changes_nothing(
    rig: Rig, path: str, params: dict[str, str], status: int
) -> None:
    mid = await _send(rig)
    before = await _events(rig)
    r = await rig.client.get(path.format(secret=SECRET, mid=mid), params=params)
    assert r.status_code == status, r.text
    assert await _events(rig) == before
    [row] = await rig.store.messages_in()
    assert row["state"] == "submitted"
    assert await rig.store.opted_out(PHONE) == set()


async def test_a_huge_body_is_refused_quickly(rig: Rig) -> None:
    mid = await _send(rig)
    started = time.monotonic()
    r = await rig.client.post(f"/sms/{SECRET}/dlr/{mid}?type=1", content=b"x" * (8 * 1024 * 1024))
    assert r.status_code == 400 and time.monotonic() - started < 5
    [row] = await rig.store.messages_in()
    assert row["state"] == "submitted"


async def test_a_stop_reply_opts_out_at_once_and_is_confirmed_once(rig: Rig) -> None:
    await _send(rig)
    for _ in range(2):  # the gateway retried the same callback: one record, one confirmation
        r = await rig.client.get(
            f"/sms/{SECRET}/mo", params={"from": PHONE, "text": "Stop. Thank you", "ref": "k-1"}
        )
        assert r.status_code == 200
    r = await rig.client.get(f"/sms/{SECRET}/mo", params={"from": PHONE, "text": "STOP", "ref": "k-2"})
    assert r.status_code == 200
    assert await rig.store.opted_out(PHONE) == {"sms"}
    kinds = [(i["text"], i["kind"]) for i in await rig.store.inbox(everything=True)]
    assert kinds == [("Stop. Thank you", "opt_out"), ("STOP", "opt_out")]
    confirmations = [g for g in rig.gateway.got if "no more texts" in g.text]
    assert len(confirmations) == 1 and confirmations[0].to == PHONE
    # And nothing more is sent to the number.
    refused = await rig.sender.send(
        TextRequest(
            rig.account, "later", "reminder-en-US#due_today", "Acme: due today.", "gsm-7", 1, "kannel"
        )
    )
    assert refused.state == "refused" and "opt-out" in refused.reason


async def test_a_reply_the_template_asked_for_is_an_outcome(rig: Rig) -> None:
    await _send(rig, "promise_confirm", "Acme: you will pay. Reply 1 to confirm.")
    r = await rig.client.get(
        f"/sms/{SECRET}/mo", params={"from": PHONE.lstrip("+"), "text": " 1 ", "ref": "k-3"}
    )
    assert r.status_code == 200
    [reply] = await rig.store.inbox(everything=True)
    assert (reply["kind"], reply["outcome"], reply["account_id"]) == ("answer", "promise_to_pay", "A1")
    assert await rig.store.inbox() == []  # nothing waits for a person


async def test_anything_else_waits_for_a_person(rig: Rig) -> None:
    await _send(rig)
    r = await rig.client.get(f"/sms/{SECRET}/mo", params={"from": PHONE, "text": "STOP this terrible bill"})
    assert r.status_code == 200
    [reply] = await rig.store.inbox()
    assert reply["kind"] == "for_person" and reply["text"] == "STOP this terrible bill"
    assert await rig.store.opted_out(PHONE) == set()


async def test_the_lender_may_have_a_stop_text_stop_calls_too(tmp_path: Path) -> None:
    settings = PolicySettings(pack="us-regf", sms_opt_out_stops=("voice",))
    assert pack_from_settings(settings).sms_opt_out_stops == ("sms", "voice")
    assert pack_from_settings(PolicySettings(pack="us-regf")).sms_opt_out_stops == ("sms",)
    assert pack_from_settings(PolicySettings(pack="cn")).sms_opt_out_stops == ("sms", "voice")
    with pytest.raises(ValidationError, match="sms_opt_out_stops"):
        PolicySettings(pack="us-regf", sms_opt_out_stops=("fax",))  # type: ignore[arg-type]


async def test_under_the_cn_pack_a_stop_text_stops_calls_too(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "cn.db", "NORMAL")
    try:
        record = borrower("C1", "+8613912345678", "Asia/Shanghai", "zh-CN", "王伟", "CNY", 123450)
        await store.upsert_accounts([record], NOW)
        account = await store.account("C1")
        assert account is not None
        clock = FixedClock(datetime(2026, 11, 30, 3, 0, tzinfo=UTC))  # 11:00 in Shanghai
        gate = PackGate(load_pack("cn"))
        scripted = ScriptedGateway()
        sender = Sender(store, gate, scripted, clock, "t1")
        templates = TemplateSet.load(sorted(SHIPPED_SMS_TEMPLATES.glob("*.yaml")), "en-US")
        inbox = Inbox(store, sender, templates, gate.pack.sms_opt_out_stops, clock, "kannel")
        await inbox.inbound(Inbound("+8613912345678", "10690000", "退订", clock.now(), "r1"))
        assert await store.opted_out("+8613912345678") == {"sms", "voice"}
        [confirmation] = scripted.got
        assert confirmation.ucs2 and confirmation.text.startswith("【")  # the zh-CN confirmation
        call = gate.decide(account, clock.now(), [], opted_out=True)  # the dialer reads the voice opt-out
        assert not call.allowed and call.reasons[0].rule == "opt-out"
    finally:
        await store.close()

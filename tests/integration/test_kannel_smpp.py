"""The real Kannel over its SMPP path, with the simulated carrier (duecall.demo.carrier) behind it:
every delivery state, a long Chinese text in UCS-2 segments, inbound replies (issue 12, items 7/8)."""

from __future__ import annotations

import asyncio
import http.server
import re
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import smpp34

from dialer.core.config import SmppLink, SmsSettings
from dialer.core.errors import SmsGatewayError
from duecall.demo.carrier import Behaviour, FakeCarrier
from sms import kannel

# Ports of their own (13300-13399), so this runs beside the other Kannel tests and the demo.
PORTS = {"admin_port": 13300, "smsbox_port": 13301, "sendsms_port": 13313, "receiver_port": 13330}
CARRIER_PORT = 13340
SYSTEM_ID, PASSWORD = "duecall", "sim-pass"  # SMPP 3.4: at most 15 and 8 characters
WAIT = 10.0

NUMBERS = {
    "+15550100001": Behaviour.DELIVER,
    "+15550100002": Behaviour.UNDELIVERABLE,
    "+15550100003": Behaviour.EXPIRE,
    "+15550100004": Behaviour.REJECT_RECEIPT,
    "+15550100005": Behaviour.REFUSE_SUBMIT,
}


class _Callbacks(http.server.ThreadingHTTPServer):
    """The test's receiver: every delivery report and inbound message Kannel calls back with."""

    request_queue_size = 512
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.seen: list[tuple[str, dict[str, str]]] = []  # (path, query decoded as UTF-8)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Callbacks

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        fields = dict(urllib.parse.parse_qsl(query, keep_blank_values=True, errors="strict"))
        self.server.seen.append((path, fields))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@dataclass(frozen=True)
class Gateway:
    settings: SmsSettings
    endpoint: kannel.KannelEndpoint
    carrier: FakeCarrier
    callbacks: _Callbacks
    state: Path

    def reports(self, our_id: str) -> dict[int, str]:
        """Delivery report type -> %A text, for our own message id (each type at most once)."""
        found = [
            (int(q["type"]), q["status"]) for p, q in self.callbacks.seen if p == "/dlr" and q["id"] == our_id
        ]
        assert len({t for t, _ in found}) == len(found), found
        return dict(found)


def smpp_settings(tmp_path: Path) -> SmsSettings:
    password_file = tmp_path / "carrier_password"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")
    link = SmppLink(host="127.0.0.1", port=CARRIER_PORT, system_id=SYSTEM_ID, password_file=password_file)
    return SmsSettings(**PORTS, smsc="smpp", smpp=link)  # type: ignore[arg-type]


@pytest.fixture
def callbacks() -> Iterator[_Callbacks]:
    server = _Callbacks(PORTS["receiver_port"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def gateway(tmp_path: Path, callbacks: _Callbacks) -> AsyncIterator[Gateway]:
    settings = smpp_settings(tmp_path)
    carrier = FakeCarrier(CARRIER_PORT, SYSTEM_ID, PASSWORD, behaviours=NUMBERS)
    await carrier.start()
    try:
        endpoint = await asyncio.to_thread(kannel.start, settings, tmp_path)
        await carrier.wait_bound()
        yield Gateway(settings, endpoint, carrier, callbacks, tmp_path)
    finally:
        # The carrier goes first: Kannel then stops at once. With the link still up, bearerbox
        # does not exit on SIGTERM within the grace period and `kannel.stop` kills it.
        await carrier.close()
        await asyncio.to_thread(kannel.stop, settings, tmp_path)
    assert carrier.errors == []


async def sendsms(gw: Gateway, to: str, text: str, our_id: str, ucs2: bool | None = None) -> str:
    """Kannel's sendsms, off the loop: the carrier on this loop keeps answering meanwhile."""
    return await asyncio.to_thread(_sendsms, gw, to, text, our_id, ucs2)


def _sendsms(gw: Gateway, to: str, text: str, our_id: str, ucs2: bool | None) -> str:
    endpoint = gw.endpoint
    dlr = f"http://127.0.0.1:{gw.settings.receiver_port}/dlr?id={our_id}&type=%d&status=%A"
    query = {"user": endpoint.username, "pass": endpoint.password, "from": "Acme", "to": to, "text": text}
    query |= {"dlr-mask": "31", "dlr-url": dlr}
    query |= {"charset": "UTF-8"} if not text.isascii() else {}
    query |= {"coding": "2"} if (not text.isascii() if ucs2 is None else ucs2) else {}
    url = f"http://{endpoint.host}:{endpoint.port}/cgi-bin/sendsms?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=5) as reply:
        return str(reply.read().decode())


async def until(check: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


# What Kannel 1.4.5 reports per carrier behaviour: the final report's type and the receipt's stat/err.
# 34 = 2 (failed) + 32 (expired): Kannel adds 32 for stat:EXPIRED though dlr-mask 31 lacks it.
FINAL = {
    Behaviour.DELIVER: (1, "DELIVRD", "000", "001"),
    Behaviour.UNDELIVERABLE: (2, "UNDELIV", "001", "000"),
    Behaviour.EXPIRE: (34, "EXPIRED", "000", "000"),
    Behaviour.REJECT_RECEIPT: (2, "REJECTD", "002", "000"),
}


async def test_each_carrier_behaviour_gives_its_delivery_reports(gateway: Gateway) -> None:
    ours = {number: f"m-{i}" for i, number in enumerate(NUMBERS)}
    for number, our_id in ours.items():
        assert await sendsms(gateway, number, f"Hello {number}", our_id) == "0: Accepted for delivery"
    wanted = {our_id: 1 if NUMBERS[n] is Behaviour.REFUSE_SUBMIT else 2 for n, our_id in ours.items()}
    await until(lambda: all(len(gateway.reports(i)) >= count for i, count in wanted.items()))
    await asyncio.sleep(0.5)  # and nothing more comes
    assert sorted(m.to for m in gateway.carrier.messages) == sorted(NUMBERS)  # each submitted once
    for message in gateway.carrier.messages:
        reports = gateway.reports(ours[message.to])
        if message.behaviour is Behaviour.REFUSE_SUBMIT:
            # Refused in the submit_sm_resp: one report, 16 (SMSC rejected), never submitted again.
            assert message.message_ids == ()
            assert reports == {16: "NACK/0x00000045/Submit failed"}
            continue
        final, stat, err, delivered = FINAL[message.behaviour]
        [message_id] = message.message_ids
        assert reports.keys() == {8, final} and reports[8] == "ACK/", reports
        receipt = (
            rf"id:{message_id} sub:001 dlvrd:{delivered} submit date:\d{{10}} done date:\d{{10}}"
            rf" stat:{stat} err:{err} text:Hello \{message.to}"
        )
        assert re.fullmatch(receipt, reports[final]), (reports[final], receipt)
    assert gateway.carrier.errors == []


async def test_a_long_chinese_text_arrives_as_three_ucs2_segments_joined_back(gateway: Gateway) -> None:
    text = ("【安心贷】尊敬的李先生，您的借款1234.50元将于2026年12月1日到期，请按时还款。回T退订" * 4)[:150]
    assert len(text) == 150  # 3 segments of at most 67 UCS-2 units
    assert await sendsms(gateway, "+8613800000001", text, "zh") == "0: Accepted for delivery"
    await until(lambda: len(gateway.reports("zh")) >= 2)
    await asyncio.sleep(0.5)
    [message] = gateway.carrier.messages
    assert (message.to, message.sender, message.data_coding, message.segments) == (
        "+8613800000001",
        "Acme",
        8,
        3,
    )
    assert message.text == text
    assert len(set(message.message_ids)) == 3
    # Kannel asks a receipt for the first segment only: one report for the whole message.
    reports = gateway.reports("zh")
    assert reports.keys() == {8, 1} and reports[8] == "ACK/", reports
    assert reports[1].startswith(f"id:{message.message_ids[0]} ") and " stat:DELIVRD err:000 " in reports[1]


async def test_a_gsm_text_with_escaped_characters_arrives_whole(gateway: Gateway) -> None:
    text = "Pay €20 {ref 7} [Acme] ~ ^ \\ |"
    assert await sendsms(gateway, "+15550100001", text, "gsm", ucs2=False) == "0: Accepted for delivery"
    await until(lambda: len(gateway.carrier.messages) >= 1)
    [message] = gateway.carrier.messages
    assert (message.text, message.data_coding, message.segments) == (text, 0, 1)


async def test_replies_from_handsets_reach_the_receiver_as_utf8(gateway: Gateway) -> None:
    await gateway.carrier.send_mo("+8613800000001", "10690000", "退订")
    await gateway.carrier.send_mo("+15550100001", "10690000", "Stop. Thank you")
    long_reply = "我已经还款了，" * 20  # 280 UCS-2 octets: past short_message, in message_payload
    await gateway.carrier.send_mo("+8613800000002", "10690000", long_reply)
    await gateway.carrier.send_mo("+15550100002", "10690000", "Paid €20 {ref 7}")  # GSM-7 escapes
    await until(lambda: len(gateway.callbacks.seen) >= 4)
    await asyncio.sleep(0.3)  # and nothing more comes
    inbound = sorted((q for p, q in gateway.callbacks.seen if p.endswith("/mo")), key=lambda q: q["from"])
    assert [(q["from"], q["to"], q["text"], q["smsc"]) for q in inbound] == [
        ("+15550100001", "10690000", "Stop. Thank you", "carrier"),
        ("+15550100002", "10690000", "Paid €20 {ref 7}", "carrier"),
        ("+8613800000001", "10690000", "退订", "carrier"),
        ("+8613800000002", "10690000", long_reply, "carrier"),
    ]
    # Kannel's get-url (sms.kannel) carries the receiver's secret path segment.
    secret = kannel.receiver_secret(gateway.settings, gateway.state)
    assert [p for p, _ in gateway.callbacks.seen] == [f"/sms/{secret}/mo"] * 4


async def test_a_stranger_bind_is_refused_and_nothing_is_taken(tmp_path: Path, callbacks: _Callbacks) -> None:
    settings = smpp_settings(tmp_path)
    async with FakeCarrier(CARRIER_PORT, "someone-else", PASSWORD) as carrier:
        endpoint = await asyncio.to_thread(kannel.start, settings, tmp_path)
        try:
            started = time.monotonic()
            with pytest.raises(SmsGatewayError, match=r"no bind on 127\.0\.0\.1:13340 in 2 s"):
                await carrier.wait_bound(timeout=2)
            assert time.monotonic() - started < 3
            gw = Gateway(settings, endpoint, carrier, callbacks, tmp_path)
            # No SMSC bound: Kannel keeps the message for later.
            assert await sendsms(gw, "+15550100001", "queued", "q1") == "3: Queued for later delivery"
            await asyncio.sleep(0.5)
            assert carrier.messages == []
            with pytest.raises(SmsGatewayError, match="no receiving session bound"):
                await carrier.send_mo("+15550100001", "10690000", "STOP")
        finally:
            await asyncio.to_thread(kannel.stop, settings, tmp_path)


async def test_the_carrier_listens_on_loopback_only_and_stops_in_bounded_time() -> None:
    carrier = FakeCarrier(CARRIER_PORT, SYSTEM_ID, PASSWORD)
    await carrier.start()
    try:
        socket.create_connection(("127.0.0.1", CARRIER_PORT), timeout=2).close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.2", CARRIER_PORT), timeout=2)
    finally:
        started = time.monotonic()
        await carrier.close()
    assert time.monotonic() - started < 2
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", CARRIER_PORT), timeout=2)


async def test_a_receipt_delay_holds_the_final_report_back(gateway: Gateway) -> None:
    gateway.carrier.receipt_delay = 1.5
    assert await sendsms(gateway, "+15550100001", "Hello later", "late") == "0: Accepted for delivery"
    await until(lambda: 8 in gateway.reports("late"))
    accepted_at = time.monotonic()
    await asyncio.sleep(0.7)
    assert gateway.reports("late").keys() == {8}  # the carrier has not reported yet
    await until(lambda: 1 in gateway.reports("late"))
    assert 1 in gateway.reports("late") and time.monotonic() - accepted_at < 3


async def test_kannel_stops_at_once_when_the_carrier_has_closed_first(gateway: Gateway) -> None:
    await gateway.carrier.close()
    started = time.monotonic()
    await asyncio.to_thread(kannel.stop, gateway.settings, gateway.state)
    assert time.monotonic() - started < 2  # under kannel.STOP_GRACE: no SIGKILL needed
    assert kannel.status(gateway.settings, gateway.state) == "Kannel is stopped."


async def test_a_malformed_submit_is_kept_readably_and_the_carrier_carries_on() -> None:
    """A hostile ESME (smpp34's client): a truncated UDH, odd-length UCS-2, split segments."""
    async with FakeCarrier(CARRIER_PORT, SYSTEM_ID, PASSWORD) as carrier:
        client = smpp34.Client("127.0.0.1", CARRIER_PORT, SYSTEM_ID, PASSWORD, connect_timeout_ms=2000)
        smsc = await asyncio.wait_for(client.connect(), 5)
        try:
            await carrier.wait_bound(timeout=2)
            sent = [
                # UDHI set, a header of 5 bytes of which 2 follow: one message, empty
                await smsc.submit_sm("15550100001", b"\x05\x00\x03", source_addr="Acme", esm_class=0x40),
                # odd-length UCS-2: the last byte shows as U+FFFD
                await smsc.submit_sm("15550100002", "退订".encode("utf-16-be") + b"\x00", data_coding=8),
                # two halves of one UCS-2 character, in two concatenated segments (ref 7)
                await smsc.submit_sm(
                    "15550100003", b"\x05\x00\x03\x07\x02\x01\x90", esm_class=0x40, data_coding=8
                ),
                await smsc.submit_sm(
                    "15550100003", b"\x05\x00\x03\x07\x02\x02\x00", esm_class=0x40, data_coding=8
                ),
            ]
            assert all(r.is_success and r.message_id for r in sent), sent
        finally:
            await asyncio.wait_for(smsc.unbind(), 5)
            await client.stop()
    texts = {m.to: (m.text, m.segments) for m in carrier.messages}
    assert texts == {
        "+15550100001": ("", 1),  # the header swallowed the rest
        "+15550100002": ("退订\ufffd", 1),
        "+15550100003": ("\u9000", 2),
    }
    assert carrier.errors == []


def test_credentials_past_smpp_limits_are_one_clear_error() -> None:
    with pytest.raises(SmsGatewayError, match="password of 8"):
        FakeCarrier(CARRIER_PORT, SYSTEM_ID, "carrier-secret")
    with pytest.raises(SmsGatewayError, match="system_id of 15"):
        FakeCarrier(CARRIER_PORT, "a-very-long-system-id", PASSWORD)

"""The HTTP provider adapter for a lender's own SMS vendor (issue 12, item 2): the definition file,
the signature as a worked example, each SubmitStatus, the answer's size bound, and callbacks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import shutil
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import pytest

from dialer.core.errors import ConfigError
from dialer.core.vocab import MessageState
from sms.gateway import CallbackError, Gateway, Outgoing, SubmitStatus
from sms.http_provider import HttpProvider, Signature, load_definition, sign
from tests.support.project import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "docs" / "examples" / "sms-provider.example.toml"
SECRET = "s3cret"
NOW = datetime(2026, 12, 1, 8, 0, 0, tzinfo=UTC)  # 16:00 in Beijing; unix 1796112000
NONCE = "a1b2c3d4e5f60718"
MESSAGE = Outgoing(
    message_id=42, to="+8613800138000", sender="", text="【Acme】您的账单已到期。回T退订", ucs2=True
)
Handler = Callable[[httpx2.Request], httpx2.Response]

JSON_VENDOR = """\
name = "acme-106"
url = "https://sms.vendor.example.cn/send"
format = "json"
secret_file = "vendor.secret"
[headers]
X-Timestamp = "{timestamp}"
X-Nonce = "{nonce}"
X-Signature = "{signature}"
[fields]
mobile = "{to_national}"
content = "{text}"
ext_id = "{message_id}"
notify_url = "{callback_url}"
[signature]
algorithm = "hmac-sha256"
over = "{timestamp}\\n{nonce}\\n{body}"
[response]
accepted_statuses = [200]
accepted_field = "code"
accepted_values = ["0"]
id_field = "data.msg_id"
error_field = "msg"
max_bytes = 4096
"""


def write(tmp_path: Path, text: str, secret: str = SECRET, mode: int = 0o600) -> Path:
    secret_path = tmp_path / "vendor.secret"
    secret_path.write_text(secret + "\n", encoding="utf-8")
    secret_path.chmod(mode)
    path = tmp_path / "vendor.toml"
    path.write_text(text, encoding="utf-8")
    return path


def provider(tmp_path: Path, text: str, handler: Handler, **kwargs: object) -> HttpProvider:
    return HttpProvider.from_file(
        write(tmp_path, text),
        lambda message_id: f"http://127.0.0.1:8472/sms/k3y/dlr/{message_id}",
        transport=httpx2.MockTransport(handler),
        now=lambda: NOW,
        nonce=lambda: NONCE,
        **kwargs,
    )


def recording(seen: list[httpx2.Request], response: Callable[[], httpx2.Response]) -> Handler:
    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return response()

    return handler


def answer(status: int, doc: object) -> Handler:
    return lambda request: httpx2.Response(status, json=doc)


def problems(tmp_path: Path, text: str, mode: int = 0o600) -> str:
    with pytest.raises(ConfigError) as caught:
        load_definition(write(tmp_path, text, mode=mode))
    return str(caught.value)


# The signature, as a worked example


def test_the_shipped_example_loads_and_is_a_gateway(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / "vendor.toml")
    (tmp_path / "vendor.secret").write_text(SECRET, encoding="utf-8")
    (tmp_path / "vendor.secret").chmod(0o600)
    definition, secret = load_definition(tmp_path / "vendor.toml")
    gateway: Gateway = HttpProvider(definition, secret, str)
    assert gateway.name == "acme-106" and secret == SECRET
    assert definition.report is not None and definition.report.states["DELIVRD"] == "delivered"


def test_hmac_sha256_over_timestamp_nonce_and_body_is_the_worked_example() -> None:
    # The vector docs/sms.md shows: key "s3cret", timestamp, nonce and body joined by line ends.
    message = '1796112000\na1b2c3d4e5f60718\n{"mobile": "13800138000"}'
    vector = "4b6ad2de5316453a7c54d1d33e04a0c248a569136648a96c4ac943fbbcc2b3f4"
    assert hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest() == vector
    spec = Signature(algorithm="hmac-sha256", over="{timestamp}\n{nonce}\n{body}")
    assert sign(spec, SECRET, message) == vector
    upper = Signature(algorithm="md5", over="{secret}", uppercase=True)
    assert sign(upper, SECRET, "lender01s3cret20261201160000") == "A4103DD361A20A13B5CC8CC55B46ACC3"


async def test_json_request_is_signed_over_the_exact_body(tmp_path: Path) -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"code": 0, "msg": "ok", "data": {"msg_id": "V-77"}})

    gateway = provider(tmp_path, JSON_VENDOR, handler)
    result = await gateway.submit(MESSAGE)
    await gateway.aclose()
    assert (result.status, result.gateway_id) == (SubmitStatus.ACCEPTED, "V-77")
    (request,) = seen
    body = request.content
    assert json.loads(body) == {
        "mobile": "13800138000",
        "content": MESSAGE.text,
        "ext_id": "42",
        "notify_url": "http://127.0.0.1:8472/sms/k3y/dlr/42",
    }
    signed = b"1796112000\n" + NONCE.encode() + b"\n" + body
    assert request.headers["X-Signature"] == hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert request.headers["X-Timestamp"] == "1796112000"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"


async def test_md5_upper_hex_in_a_form_field_with_beijing_time(tmp_path: Path) -> None:
    text = """\
name = "old-106"
url = "http://sms.example.cn/sms.aspx"
secret_file = "vendor.secret"
timestamp_format = "%Y%m%d%H%M%S"
timestamp_zone = "Asia/Shanghai"
[fields]
account = "lender01"
mobile = "{to_national}"
content = "{text}"
ts = "{timestamp}"
sign = "{signature}"
[signature]
algorithm = "md5"
over = "lender01{secret}{timestamp}"
uppercase = true
"""
    seen: list[httpx2.Request] = []
    gateway = provider(tmp_path, text, recording(seen, lambda: httpx2.Response(200, text="ok")))
    result = await gateway.submit(MESSAGE)
    assert result.status == SubmitStatus.ACCEPTED
    form = dict(httpx2.QueryParams(seen[0].content.decode()))
    assert form["ts"] == "20261201160000"
    assert form["sign"] == hashlib.md5(b"lender01s3cret20261201160000").hexdigest().upper()
    assert form["content"] == MESSAGE.text


async def test_base64_signature_in_the_query_of_a_get(tmp_path: Path) -> None:
    text = """\
name = "us-api"
method = "GET"
url = "https://api.example.com/v1/send?v=2"
secret_file = "vendor.secret"
timestamp_format = "unix_ms"
[query]
to = "{to}"
body = "{text}"
sig = "{signature}"
[signature]
algorithm = "hmac-sha1"
over = "{to}:{timestamp}"
encoding = "base64"
"""
    seen: list[httpx2.Request] = []
    gateway = provider(tmp_path, text, recording(seen, lambda: httpx2.Response(202)))
    assert (await gateway.submit(MESSAGE)).status == SubmitStatus.ACCEPTED
    params = seen[0].url.params
    digest = hmac.new(SECRET.encode(), b"+8613800138000:1796112000000", hashlib.sha1).digest()
    assert params["sig"] == base64.b64encode(digest).decode()
    assert (params["v"], params["body"], seen[0].content) == ("2", MESSAGE.text, b"")


async def test_basic_auth_uses_the_secret_as_password(tmp_path: Path) -> None:
    text = (
        'name = "twilio-like"\nurl = "https://api.example.com/Messages.json"\nsecret_file = "vendor.secret"\n'
    )
    text += 'basic_auth_user = "AC123"\n[fields]\nTo = "{to}"\nBody = "{text}"\n'
    seen: list[httpx2.Request] = []
    gateway = provider(tmp_path, text, recording(seen, lambda: httpx2.Response(201, json={"sid": "SM1"})))
    assert (await gateway.submit(MESSAGE)).status == SubmitStatus.ACCEPTED
    assert seen[0].headers["Authorization"] == "Basic " + base64.b64encode(b"AC123:s3cret").decode()


# Each SubmitStatus


@pytest.mark.parametrize(
    ("status", "doc", "expected", "words"),
    [
        (200, {"code": "0", "data": {"msg_id": "V1"}}, SubmitStatus.ACCEPTED, ""),
        (200, {"code": 1003, "msg": "余额不足"}, SubmitStatus.REFUSED, "code = 1003: 余额不足"),
        (403, {"code": 401, "msg": "bad signature"}, SubmitStatus.REFUSED, "HTTP 403: bad signature"),
        (400, {"msg": "mobile invalid"}, SubmitStatus.REFUSED, "HTTP 400: mobile invalid"),
        (503, {"msg": "maintenance"}, SubmitStatus.UNREACHABLE, "HTTP 503: maintenance"),
        (500, {"msg": "internal"}, SubmitStatus.REFUSED, "HTTP 500: internal"),
        (504, {"msg": "upstream timeout"}, SubmitStatus.UNKNOWN, "HTTP 504: upstream timeout"),
        (200, {"result": "?"}, SubmitStatus.UNKNOWN, "HTTP 200, but the answer has no code"),
    ],
)
async def test_each_answer_maps_to_a_status_with_the_vendors_words(
    tmp_path: Path, status: int, doc: object, expected: SubmitStatus, words: str
) -> None:
    gateway = provider(tmp_path, JSON_VENDOR, answer(status, doc))
    result = await gateway.submit(MESSAGE)
    assert (result.status, result.reason) == (expected, words)


async def test_an_accepted_status_with_an_unreadable_answer_is_unknown(tmp_path: Path) -> None:
    gateway = provider(tmp_path, JSON_VENDOR, lambda r: httpx2.Response(200, text="<html>OK</html>"))
    assert (await gateway.submit(MESSAGE)).status == SubmitStatus.UNKNOWN


def raising(exc: type[httpx2.HTTPError]) -> Handler:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise exc("boom", request=request)  # type: ignore[call-arg]

    return handler


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx2.ConnectError, SubmitStatus.UNREACHABLE),
        (httpx2.ConnectTimeout, SubmitStatus.UNREACHABLE),
        (httpx2.PoolTimeout, SubmitStatus.UNREACHABLE),
        (httpx2.ReadTimeout, SubmitStatus.UNKNOWN),
        (httpx2.WriteTimeout, SubmitStatus.UNKNOWN),
        (httpx2.ReadError, SubmitStatus.UNKNOWN),
        (httpx2.RemoteProtocolError, SubmitStatus.UNKNOWN),
    ],
)
async def test_transport_trouble_never_raises(
    tmp_path: Path, exc: type[httpx2.HTTPError], expected: SubmitStatus
) -> None:
    result = await provider(tmp_path, JSON_VENDOR, raising(exc)).submit(MESSAGE)
    assert result.status == expected
    assert result.reason == f"{exc.__name__}: boom"


async def test_a_vendor_that_drips_bytes_is_cut_at_the_total_deadline(tmp_path: Path) -> None:
    async def drip() -> AsyncIterator[bytes]:
        while True:  # a byte every 50 ms: each read is within the read timeout, forever
            await asyncio.sleep(0.05)
            yield b" "

    text = JSON_VENDOR.replace('format = "json"', 'format = "json"\ntotal_timeout = 0.3')
    gateway = provider(tmp_path, text, lambda r: httpx2.Response(200, content=drip()))
    started = time.monotonic()
    result = await gateway.submit(MESSAGE)
    assert (result.status, result.reason) == (SubmitStatus.UNKNOWN, "no full answer within 0.3 s")
    assert time.monotonic() - started < 2


async def test_a_line_break_for_a_header_is_refused_before_sending(tmp_path: Path) -> None:
    text = JSON_VENDOR.replace('X-Nonce = "{nonce}"', 'X-Sender = "{sender}"')
    seen: list[httpx2.Request] = []
    gateway = provider(tmp_path, text, recording(seen, lambda: httpx2.Response(200)))
    hostile = Outgoing(1, "+15555550100", "Acme\r\nX-Injected: 1", "hi", ucs2=False)
    result = await gateway.submit(hostile)
    assert result.status == SubmitStatus.REFUSED and "line break" in result.reason
    assert seen == []


async def test_a_text_the_charset_lacks_is_refused_not_mangled(tmp_path: Path) -> None:
    text = JSON_VENDOR.replace('format = "json"', 'format = "json"\ncharset = "gbk"')
    seen: list[httpx2.Request] = []
    gateway = provider(tmp_path, text, recording(seen, lambda: httpx2.Response(200)))
    result = await gateway.submit(Outgoing(1, "+8613800138000", "", "还款 😀", ucs2=True))
    assert result.status == SubmitStatus.REFUSED and "gbk" in result.reason
    assert seen == []


# A hostile vendor's answer is read within bounds


def endless(chunk: bytes, count: int, sent: list[int]) -> AsyncIterator[bytes]:
    async def stream() -> AsyncIterator[bytes]:
        for _ in range(count):
            sent.append(len(chunk))
            yield chunk

    return stream()


def endless_from(chunks: list[bytes], sent: list[int]) -> AsyncIterator[bytes]:
    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks:
            sent.append(len(chunk))
            yield chunk

    return stream()


@pytest.mark.parametrize(("status", "expected"), [(200, SubmitStatus.UNKNOWN), (500, SubmitStatus.REFUSED)])
async def test_a_1_gb_answer_is_read_only_to_the_limit(
    tmp_path: Path, status: int, expected: SubmitStatus
) -> None:
    sent: list[int] = []
    body = endless(b"x" * 65536, 16384, sent)  # 1 GiB, made lazily
    gateway = provider(tmp_path, JSON_VENDOR, lambda r: httpx2.Response(status, content=body))
    tracemalloc.start()
    started = time.monotonic()
    result = await gateway.submit(MESSAGE)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.status == expected
    assert sum(sent) <= 2 * 65536 and peak < 2 * 1024 * 1024
    assert time.monotonic() - started < 2
    assert len(result.reason) <= 300


async def test_a_gzip_bomb_is_inflated_only_to_the_limit(tmp_path: Path) -> None:
    squeeze = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = b"\0" * (1 << 20)
    bomb = b"".join(squeeze.compress(zeros) for _ in range(256)) + squeeze.flush()  # 256 MiB inflated
    assert len(bomb) < 1 << 20
    headers = {"Content-Encoding": "gzip"}
    sent: list[int] = []
    chunks = [bomb[i : i + 65536] for i in range(0, len(bomb), 65536)]
    stream = endless_from(chunks, sent)  # streamed: a bytes body would be inflated by the mock itself
    gateway = provider(tmp_path, JSON_VENDOR, lambda r: httpx2.Response(200, content=stream, headers=headers))
    tracemalloc.start()
    result = await gateway.submit(MESSAGE)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.status == SubmitStatus.UNKNOWN and "over 4096 bytes" in result.reason
    assert peak < 8 * 1024 * 1024


# The definition file: errors name the file and the field


def test_an_unknown_template_field_names_file_and_field(tmp_path: Path) -> None:
    message = problems(tmp_path, JSON_VENDOR.replace('"{text}"', '"{txet}"'))
    assert str(tmp_path / "vendor.toml") in message
    assert "fields.content: unknown field {txet}" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('X-Signature = "{signature}"', ""), "signature: no template says {signature}"),
        (('X-Signature = "{signature}"', 'X-S = "{text!r}"'), "headers.X-S: {text}: no format specs"),
        (('url = "https://sms.vendor.example.cn/send"', 'url = "ftp://x"'), "url: String should match"),
        (('accepted_values = ["0"]', ""), "response: Value error, accepted_field and accepted_values"),
        (('algorithm = "hmac-sha256"', 'algorithm = "crc32"'), "signature.algorithm: Input should be"),
        (('format = "json"', 'format = "json"\ntimestamp_zone = "Mars/Olympus"'), "timestamp_zone: unknown"),
        (('format = "json"', 'format = "json"\ncolour = "red"'), "colour: Extra inputs are not permitted"),
    ],
)
def test_definition_problems_name_the_field(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    assert expected.replace("Value error, ", "") in problems(tmp_path, JSON_VENDOR.replace(*change))


def test_a_report_state_outside_the_four_is_refused(tmp_path: Path) -> None:
    text = JSON_VENDOR + CALLBACKS.replace('EXPIRED = "expired"', 'EXPIRED = "queued"')
    message = problems(tmp_path, text)
    assert "report.states.EXPIRED: Input should be 'accepted', 'delivered', 'failed' or 'expired'" in message


def test_a_get_with_a_body_and_a_form_with_a_list_are_refused(tmp_path: Path) -> None:
    get = JSON_VENDOR.replace('format = "json"', 'method = "GET"')
    assert "fields: a GET has no body: put the parameters in [query]" in problems(tmp_path, get)
    form = JSON_VENDOR.replace('format = "json"', 'format = "form"').replace("[fields]", "[fields]\nl = [1]")
    assert "fields.l: a form field is a text" in problems(tmp_path, form)


def test_signed_body_cannot_carry_its_own_signature(tmp_path: Path) -> None:
    text = JSON_VENDOR.replace("[fields]", '[fields]\nsign = "{signature}"')
    assert "signature.over: {body} is signed, so {signature} goes in a header" in problems(tmp_path, text)


def test_a_world_readable_secret_file_is_refused(tmp_path: Path) -> None:
    message = problems(tmp_path, JSON_VENDOR, mode=0o644)
    assert f"{tmp_path / 'vendor.secret'}: the vendor secret is readable by others (mode 0o644)" in message
    assert "chmod 600" in message


def test_a_missing_secret_file_and_a_signature_without_one(tmp_path: Path) -> None:
    path = write(tmp_path, JSON_VENDOR)
    (tmp_path / "vendor.secret").unlink()
    with pytest.raises(ConfigError, match="cannot read the vendor secret"):
        load_definition(path)
    without = JSON_VENDOR.replace('secret_file = "vendor.secret"\n', "")
    assert "secret_file: a signature, {secret} or basic_auth_user needs a secret_file" in problems(
        tmp_path, without
    )


def test_a_huge_or_deeply_nested_definition_is_refused_quickly(tmp_path: Path) -> None:
    huge = JSON_VENDOR + "# " + "x" * (1 << 20) + "\n"
    started = time.monotonic()
    assert "larger than 64 KiB" in problems(tmp_path, huge)
    nested = JSON_VENDOR.replace("[fields]", "[fields]\nn = " + "[" * 20000 + "]" * 20000)
    assert "vendor.toml" in problems(tmp_path, nested)
    assert time.monotonic() - started < 2


# Callbacks: delivery reports and replies

CALLBACKS = """\
[report]
format = "json"
state_field = "status"
reason_field = "err_code"
id_field = "msg_id"
[report.states]
DELIVRD = "delivered"
UNDELIV = "failed"
EXPIRED = "expired"
0 = "accepted"
[inbound]
sender_field = "mobile"
to_field = "sp_code"
text_field = "content"
region = "CN"
"""


def callbacks(tmp_path: Path, extra: str = "") -> HttpProvider:
    return provider(tmp_path, JSON_VENDOR + CALLBACKS + extra, answer(200, {}))


@pytest.mark.parametrize(
    ("body", "state", "reason"),
    [
        ({"status": "DELIVRD", "msg_id": "V-77", "err_code": "000"}, MessageState.DELIVERED, "000"),
        ({"status": "UNDELIV", "msg_id": "V-77", "err_code": "MK:0005"}, MessageState.FAILED, "MK:0005"),
        ({"status": "EXPIRED", "msg_id": "V-77"}, MessageState.EXPIRED, ""),
        ({"status": 0, "msg_id": 77}, MessageState.ACCEPTED, ""),
    ],
)
def test_delivery_reports_map_the_vendors_states(
    tmp_path: Path, body: dict[str, object], state: MessageState, reason: str
) -> None:
    report = callbacks(tmp_path).report(42, {}, json.dumps(body).encode())
    assert (report.message_id, report.state, report.reason) == (42, state, reason)
    assert report.gateway_id == str(body["msg_id"])


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"status": "BOGUS"}', "report.state_field 'status': unknown state 'BOGUS'; known: 0, DELIVRD"),
        (b'{"msg_id": "V-77"}', "report.state_field 'status': missing from the callback"),
        (b'{"status": {"nested": 1}}', "report.state_field 'status': missing from the callback"),
        (b"not json", "callback body is not a JSON object"),
        (b"[" * 100000 + b"]" * 100000, "callback body over 64 KiB"),
        (b"[" * 30000 + b"]" * 30000, "callback body is not a JSON object"),
        (b'{"status": "\xff"}', "callback body is not utf-8"),
    ],
)
def test_a_malformed_report_is_a_callback_error_naming_the_field(
    tmp_path: Path, body: bytes, words: str
) -> None:
    with pytest.raises(CallbackError) as caught:
        callbacks(tmp_path).report(42, {}, body)
    assert words in str(caught.value)


def test_an_inbound_reply_in_a_query_with_a_national_sender(tmp_path: Path) -> None:
    now = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    params = {"mobile": "13800138000", "sp_code": "1069012345", "content": "退订"}
    reply = callbacks(tmp_path).inbound(params, b"", now)
    assert (reply.sender, reply.to, reply.text, reply.received_at) == (
        "+8613800138000",
        "1069012345",
        "退订",
        now,
    )


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"sp_code": "106", "content": "T"}, "inbound.sender_field 'mobile': missing"),
        (
            {"mobile": "not-a-number", "sp_code": "106", "content": "T"},
            "inbound.sender_field 'mobile': not a phone",
        ),
        ({"mobile": "138", "sp_code": "106", "content": "T"}, "inbound.sender_field 'mobile': not a phone"),
        ({"mobile": "13800138000", "sp_code": "106"}, "inbound.text_field 'content': missing"),
    ],
)
def test_a_malformed_reply_is_a_callback_error(tmp_path: Path, params: dict[str, str], words: str) -> None:
    with pytest.raises(CallbackError) as caught:
        callbacks(tmp_path).inbound(params, b"", NOW)
    assert words in str(caught.value)


SIGNED = """\
[callback_signature]
field = "sign"
algorithm = "hmac-sha256"
over = "{timestamp}{nonce}"
"""


def signed_report(timestamp: str, nonce: str, key: str = SECRET) -> bytes:
    sign = hmac.new(key.encode(), (timestamp + nonce).encode(), hashlib.sha256).hexdigest()
    doc = {"status": "DELIVRD", "msg_id": "V-77", "timestamp": timestamp, "nonce": nonce, "sign": sign}
    return json.dumps(doc).encode()


def test_a_signed_report_is_checked_with_the_secret(tmp_path: Path) -> None:
    gateway = callbacks(tmp_path, SIGNED)
    assert gateway.report(42, {}, signed_report("1796112000", "n1")).state == MessageState.DELIVERED
    with pytest.raises(CallbackError, match=r"callback_signature.field 'sign': the signature does not match"):
        gateway.report(42, {}, signed_report("1796112000", "n1", key="guess"))
    with pytest.raises(CallbackError, match=r"callback_signature.over 'nonce': missing"):
        gateway.report(42, {}, json.dumps({"status": "DELIVRD", "timestamp": "1", "sign": "00"}).encode())


def test_a_definition_without_callback_sections_refuses_callbacks(tmp_path: Path) -> None:
    gateway = provider(tmp_path, JSON_VENDOR, answer(200, {}))
    with pytest.raises(CallbackError, match=r"no \[report\] section"):
        gateway.report(1, {"status": "DELIVRD"}, b"")
    with pytest.raises(CallbackError, match=r"no \[inbound\] section"):
        gateway.inbound({"mobile": "+15555550100"}, b"", NOW)


def test_a_form_report_merges_query_and_body(tmp_path: Path) -> None:
    text = JSON_VENDOR + CALLBACKS.replace('format = "json"', 'format = "form"')
    gateway = provider(tmp_path, text, answer(200, {}))
    report = gateway.report(7, {"msg_id": "Q"}, b"status=UNDELIV&err_code=%E7%A9%BA%E5%8F%B7")
    assert (report.state, report.reason, report.gateway_id) == (MessageState.FAILED, "空号", "Q")


def test_a_form_report_with_too_many_fields_is_a_callback_error(tmp_path: Path) -> None:
    text = JSON_VENDOR + CALLBACKS.replace('format = "json"', 'format = "form"')
    gateway = provider(tmp_path, text, answer(200, {}))
    with pytest.raises(CallbackError, match="callback body: Max number of fields exceeded"):
        gateway.report(7, {}, "&".join(f"f{i}=1" for i in range(1000)).encode())


async def test_the_definitions_content_type_wins_whatever_its_case(tmp_path: Path) -> None:
    text = JSON_VENDOR.replace("[headers]", '[headers]\ncontent-type = "application/json"')
    seen: list[httpx2.Request] = []
    gateway = provider(tmp_path, text, recording(seen, lambda: httpx2.Response(200, json={"code": "0"})))
    assert (await gateway.submit(MESSAGE)).status == SubmitStatus.ACCEPTED
    assert seen[0].headers.get_list("content-type") == ["application/json"]


def test_a_url_with_a_broken_host_is_refused_at_load(tmp_path: Path) -> None:
    text = JSON_VENDOR.replace("https://sms.vendor.example.cn/send", "http://[::1/send")
    assert "url: not a URL: Invalid port" in problems(tmp_path, text)


def test_a_report_to_the_fixed_url_carries_duecalls_id_in_its_field(tmp_path: Path) -> None:
    text = JSON_VENDOR + CALLBACKS.replace(
        'id_field = "msg_id"\n', 'id_field = "msg_id"\nmessage_id_field = "uid"\n', 1
    )
    gateway = provider(tmp_path, text, answer(200, {}))
    report = gateway.report(
        None, {}, json.dumps({"status": "DELIVRD", "msg_id": "V-1", "uid": "314"}).encode()
    )
    assert (report.message_id, report.state, report.gateway_id) == (314, MessageState.DELIVERED, "V-1")
    for bad, words in (
        ({"status": "DELIVRD"}, "'uid': missing"),
        ({"status": "DELIVRD", "uid": "V-1"}, "not a message id"),
    ):
        with pytest.raises(CallbackError, match=words):
            gateway.report(None, {}, json.dumps(bad).encode())


def test_without_the_id_field_a_report_to_the_fixed_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CallbackError, match=r"no report\.message_id_field"):
        callbacks(tmp_path).report(None, {}, json.dumps({"status": "DELIVRD"}).encode())

"""The HTTP provider adapter against a real HTTP server on 127.0.0.1 (issue 12, item 2): a signed
request checked by the server, a vendor that never answers, one that hangs up, one that floods,
and nothing listening. Ports 13400-13499 are this file's own."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sms.gateway import Outgoing, SubmitStatus
from sms.http_provider import HttpProvider

PORT = 13400
CLOSED_PORT = 13499  # nothing listens here
SECRET = "s3cret"
MESSAGE = Outgoing(
    message_id=42, to="+8613800138000", sender="", text="【Acme】您的账单已到期。回T退订", ucs2=True
)
DEFINITION = """\
name = "local-106"
url = "http://127.0.0.1:{port}/{mode}"
format = "json"
secret_file = "vendor.secret"
connect_timeout = 1
read_timeout = 0.5
total_timeout = 3
[headers]
X-Timestamp = "{{timestamp}}"
X-Nonce = "{{nonce}}"
X-Signature = "{{signature}}"
[fields]
mobile = "{{to_national}}"
content = "{{text}}"
ext_id = "{{message_id}}"
notify_url = "{{callback_url}}"
[signature]
algorithm = "hmac-sha256"
over = "{{timestamp}}\\n{{nonce}}\\n{{body}}"
[response]
accepted_statuses = [200]
accepted_field = "code"
accepted_values = ["0"]
id_field = "data.msg_id"
error_field = "msg"
"""


@dataclass
class Vendor:
    """A vendor's HTTP API on loopback, behaving as the request path says."""

    received: list[dict[str, object]] = field(default_factory=list)
    flooded: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            mode = head.split(" ", 2)[1].lstrip("/")
            headers = dict(line.lower().split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            await getattr(self, mode)(headers, body, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def signed(self, headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter) -> None:
        signed = f"{headers['x-timestamp']}\n{headers['x-nonce']}\n".encode() + body
        good = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest() == headers["x-signature"]
        self.received.append(json.loads(body))
        reply = {"code": "0", "data": {"msg_id": "R-1"}} if good else {"code": "401", "msg": "bad signature"}
        await respond(writer, 200, json.dumps(reply).encode())

    async def silent(self, headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)  # took the message, never answers

    async def hangup(self, headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter) -> None:
        pass  # reads the request and closes

    async def busy(self, headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 503, b'{"msg": "maintenance"}')

    async def flood(self, headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n"
        )
        chunk = b" " * 65536
        while self.flooded < 1 << 30:  # 1 GiB, for as long as the client reads
            writer.write(chunk)
            await writer.drain()
            self.flooded += len(chunk)


async def respond(writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body)
    await writer.drain()


@pytest.fixture
async def vendor() -> AsyncIterator[Vendor]:
    vendor = Vendor()
    server = await asyncio.start_server(vendor.serve, "127.0.0.1", PORT)
    async with server:
        yield vendor
        server.close()


def adapter(tmp_path: Path, mode: str, port: int = PORT) -> HttpProvider:
    (tmp_path / "vendor.secret").write_text(SECRET + "\n", encoding="utf-8")
    (tmp_path / "vendor.secret").chmod(0o600)
    path = tmp_path / "vendor.toml"
    path.write_text(DEFINITION.format(port=port, mode=mode), encoding="utf-8")
    return HttpProvider.from_file(path, lambda message_id: f"http://127.0.0.1:8472/sms/k/dlr/{message_id}")


async def submit(tmp_path: Path, mode: str, port: int = PORT) -> tuple[SubmitStatus, str, str, float]:
    gateway = adapter(tmp_path, mode, port)
    started = time.monotonic()
    try:
        result = await gateway.submit(MESSAGE)
    finally:
        await gateway.aclose()
    return result.status, result.reason, result.gateway_id, time.monotonic() - started


async def test_a_signed_message_is_accepted_by_a_real_server(tmp_path: Path, vendor: Vendor) -> None:
    status, _, gateway_id, _ = await submit(tmp_path, "signed")
    assert (status, gateway_id) == (SubmitStatus.ACCEPTED, "R-1")
    assert vendor.received == [
        {
            "mobile": "13800138000",
            "content": MESSAGE.text,
            "ext_id": "42",
            "notify_url": "http://127.0.0.1:8472/sms/k/dlr/42",
        }
    ]


async def test_a_vendor_that_never_answers_is_unknown_after_the_read_timeout(
    tmp_path: Path, vendor: Vendor
) -> None:
    status, reason, _, elapsed = await submit(tmp_path, "silent")
    assert status == SubmitStatus.UNKNOWN and reason.startswith("ReadTimeout")
    assert 0.4 < elapsed < 2


async def test_a_vendor_that_hangs_up_after_the_request_is_unknown(tmp_path: Path, vendor: Vendor) -> None:
    status, reason, _, _ = await submit(tmp_path, "hangup")
    assert status == SubmitStatus.UNKNOWN and reason.startswith("RemoteProtocolError")


async def test_a_busy_vendor_is_refused_with_its_words(tmp_path: Path, vendor: Vendor) -> None:
    status, reason, _, _ = await submit(tmp_path, "busy")
    assert (status, reason) == (SubmitStatus.UNREACHABLE, "HTTP 503: maintenance")


async def test_a_flood_of_1_gb_is_cut_at_the_limit(tmp_path: Path, vendor: Vendor) -> None:
    status, reason, _, elapsed = await submit(tmp_path, "flood")
    await asyncio.sleep(0.1)
    assert status == SubmitStatus.UNKNOWN and "over 65536 bytes" in reason
    assert elapsed < 2 and vendor.flooded < 64 << 20  # the socket buffers, not the gigabyte


async def test_nothing_listening_is_unreachable(tmp_path: Path) -> None:
    status, reason, _, elapsed = await submit(tmp_path, "signed", port=CLOSED_PORT)
    assert status == SubmitStatus.UNREACHABLE and reason.startswith("ConnectError")
    assert elapsed < 2

"""The Kannel adapter of the gateway door: sendsms requests out, Kannel's callbacks in.

Each message asks for every delivery report (dlr-mask 31) at a URL that carries DueCall's own
message id and the receiver's secret; Kannel fills in the report type (`%d`) and the SMSC's
words (`%A`). Report types (Kannel's user guide, "Delivery reports"): 1 delivered to the phone,
2 not delivered, 4 queued on the SMSC, 8 delivered to the SMSC, 16 not delivered to the SMSC.
An SMPP receipt's `stat:` says whether a type 2 was a failure or an expiry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

import httpx2

from dialer.core.vocab import MessageState
from sms.gateway import CallbackError, DeliveryReport, Inbound, Outgoing, SubmitStatus, Submitted
from sms.kannel import KannelEndpoint

NAME = "kannel"
# Every wait on Kannel is bounded; a read timeout means the request went out (fate unknown).
TIMEOUT = httpx2.Timeout(connect=2.0, read=10.0, write=5.0, pool=10.0)
MAX_CONNECTIONS = 16
MAX_FIELD = 2000  # no callback field DueCall reads is longer (an MO text is at most ~1,600 bytes)
# Report type bits, most final first. Kannel sets 32 beside 2 for an expiry (34) even when the
# mask did not ask for it, and 16 alone when the SMSC refused the submit (NACK).
_TYPE_BITS = (
    (1, MessageState.DELIVERED),
    (32, MessageState.EXPIRED),
    (2, MessageState.FAILED),
    (16, MessageState.FAILED),
    (8, MessageState.ACCEPTED),
    (4, MessageState.ACCEPTED),
)
_KNOWN_BITS = 1 | 2 | 4 | 8 | 16 | 32
_EXPIRED = re.compile(r"stat:\s*EXPIRED", re.IGNORECASE)
_GATEWAY_ID = re.compile(r"id:\s*([0-9A-Za-z-]{1,64})")
_PHONE = re.compile(r"^\+?[0-9]{3,20}$")


class KannelGateway:
    """Submit through Kannel's sendsms interface; parse its delivery-report and MO callbacks."""

    name = NAME

    def __init__(self, endpoint: KannelEndpoint, receiver: str, sender: str = "") -> None:
        self._endpoint = endpoint
        self._receiver = receiver  # the callback base URL, secret included
        self._sender = sender
        limits = httpx2.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)
        base = f"http://{endpoint.host}:{endpoint.port}"
        self._client = httpx2.AsyncClient(base_url=base, timeout=TIMEOUT, limits=limits)

    def query(self, message: Outgoing) -> dict[str, str]:
        """The sendsms parameters of one message (the dlr-url keeps Kannel's escapes literal)."""
        params = {
            "user": self._endpoint.username,
            "pass": self._endpoint.password,
            "to": message.to,
            "text": message.text,
            "charset": "UTF-8",
            "dlr-mask": "31",
            "dlr-url": f"{self._receiver}/dlr/{message.message_id}?type=%d&status=%A",
        }
        sender = message.sender or self._sender
        if sender:
            params["from"] = sender
        if message.ucs2:
            params["coding"] = "2"
        return params

    async def submit(self, message: Outgoing) -> Submitted:
        try:
            response = await self._client.get("/cgi-bin/sendsms", params=self.query(message))
        except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout) as exc:
            return Submitted(SubmitStatus.UNREACHABLE, f"Kannel not reachable: {type(exc).__name__} {exc}")
        except httpx2.HTTPError as exc:  # the request went out; Kannel may have taken it
            return Submitted(SubmitStatus.UNKNOWN, f"no answer from Kannel: {type(exc).__name__} {exc}")
        text = response.text[:300].strip()
        if response.status_code in (200, 202) and text.startswith("0:"):
            return Submitted(SubmitStatus.ACCEPTED, text)
        if response.status_code == 503:  # "Temporal failure, try again later": not queued
            return Submitted(SubmitStatus.UNREACHABLE, f"HTTP 503 {text}")
        return Submitted(SubmitStatus.REFUSED, f"HTTP {response.status_code} {text}")

    def report(self, message_id: int | None, params: Mapping[str, str], body: bytes) -> DeliveryReport:
        if message_id is None:  # every text's dlr-url carries its id
            raise CallbackError("delivery report without DueCall's message id in its URL")
        kind = _field(params, "type")
        bits = int(kind) if kind.isdigit() and len(kind) <= 2 else 0
        if bits & ~_KNOWN_BITS:
            bits = 0  # a bit Kannel does not send: not a report we understand
        state = next((s for bit, s in _TYPE_BITS if bits & bit), None)
        if state is None:
            raise CallbackError(f"delivery report for message {message_id}: unknown type {kind[:20]!r}")
        status = params.get("status", "")[:MAX_FIELD]
        if state is MessageState.FAILED and _EXPIRED.search(status):
            state = MessageState.EXPIRED
        found = _GATEWAY_ID.search(status)
        return DeliveryReport(message_id, state, status, found.group(1) if found else "")

    def inbound(self, params: Mapping[str, str], body: bytes, now: datetime) -> Inbound:
        sender = _field(params, "from")
        if not _PHONE.match(sender):
            raise CallbackError(f"inbound text: 'from' is not a phone number: {sender[:40]!r}")
        if "text" not in params:
            raise CallbackError("inbound text: no 'text' field")
        text = params["text"]
        if len(text) > MAX_FIELD:
            raise CallbackError(f"inbound text: 'text' is {len(text)} characters (at most {MAX_FIELD})")
        number = sender if sender.startswith("+") else f"+{sender}"
        return Inbound(number, params.get("to", "")[:40], text, now, params.get("ref", "")[:100])

    async def aclose(self) -> None:
        await self._client.aclose()


def _field(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise CallbackError(f"callback: no {name!r} field")
    if len(value) > MAX_FIELD:
        raise CallbackError(f"callback: {name!r} is {len(value)} characters (at most {MAX_FIELD})")
    return value

"""The one door to an SMS gateway: what DueCall hands over, what comes back, what calls back.

Adapters: `sms.kannel_client` (Kannel's sendsms interface, the embedded default) and
`sms.http_provider` (a lender's own vendor: request template, signature, response and
callback mapping). The sender and the receiver only see this Protocol.

Delivery reports are matched by DueCall's own message id, which travels in the callback URL
the adapter gives the gateway, never by the gateway's id.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dialer.core.vocab import MessageState


@dataclass(frozen=True, slots=True)
class Outgoing:
    message_id: int  # DueCall's id: the callback URL carries it
    to: str  # E.164
    sender: str  # the lender's sender id or number ('' = the gateway's default)
    text: str
    ucs2: bool  # True: UCS-2 (Chinese, Korean); False: GSM-7


class SubmitStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # the gateway took it
    REFUSED = "refused"  # the gateway answered no (400, 403, ...): it never left
    UNREACHABLE = "unreachable"  # no connection was made: it never left, safe to try again
    UNKNOWN = "unknown"  # the request went out but no answer came (timeout): it may have left


@dataclass(frozen=True, slots=True)
class Submitted:
    status: SubmitStatus
    reason: str = ""  # the gateway's words, or what went wrong
    gateway_id: str = ""  # the gateway's own id, kept for people, never used to match


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    message_id: int
    state: MessageState  # accepted, delivered, failed or expired
    reason: str = ""  # the gateway's status text (e.g. an SMPP receipt's stat/err)
    gateway_id: str = ""


@dataclass(frozen=True, slots=True)
class Inbound:
    sender: str  # E.164 of the handset
    to: str  # the number or short code it was sent to
    text: str
    received_at: datetime  # UTC
    gateway_ref: str = ""


class CallbackError(ValueError):
    """A malformed delivery report or inbound request: answered 400, logged, nothing changed."""


class Gateway(Protocol):
    name: str

    async def submit(self, message: Outgoing) -> Submitted:
        """Hand one message over, within the adapter's timeout; never raises for gateway trouble."""
        ...

    def report(self, message_id: int | None, params: Mapping[str, str], body: bytes) -> DeliveryReport:
        """A delivery-report callback for `message_id` (from the URL path; None when the gateway
        calls one fixed URL and the report itself carries DueCall's id); CallbackError if malformed."""
        ...

    def inbound(self, params: Mapping[str, str], body: bytes, now: datetime) -> Inbound:
        """An inbound-message callback; CallbackError if malformed."""
        ...

    async def aclose(self) -> None: ...

"""Records of the SMS channel shared by the store, the policy gate and the `sms` package, and the
Protocols through which `sms` uses the store and the policy (which it never imports):
`dialer.store.sqlite.SqliteStore` and `dialer.policy.gate.PackGate` implement them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from dialer.core.models import Account, Decision, Preferences
from dialer.core.vocab import MessageState, Outcome, ReplyKind

REMINDER = "reminder"
CONFIRMATION = "confirmation"  # the one text after an opt-out (it goes to an opted-out number)


@dataclass(frozen=True, slots=True)
class TextRequest:
    """A text DueCall would like to send: what the policy decides on and the store writes."""

    account: Account
    batch: str  # one send per account per batch: a re-run after a crash skips those already written
    template: str  # "<file>#<message key>", e.g. reminder-en-US.yaml#due_today
    text: str
    coding: str  # gsm-7 or ucs-2
    segments: int
    gateway: str  # the adapter's name (kannel, http:<vendor>)
    campaign_id: int | None = None
    purpose: str = REMINDER
    step: str = ""  # the strategy's step or rule that asked for it (reports group by it)


@dataclass(frozen=True, slots=True)
class Message:
    """A text whose row is written (and counted) but not necessarily sent."""

    id: int
    account_pk: int | None
    account_id: str
    phone_e164: str
    text: str
    coding: str
    decided_at: datetime
    state: MessageState
    template: str = ""
    batch: str = ""


@dataclass(frozen=True, slots=True)
class PastMessage:
    """A text of the contact history, as the policy counts it."""

    message_id: int
    at: datetime
    state: MessageState


@dataclass(frozen=True, slots=True)
class InboundText:
    """An inbound text and what it was taken to be."""

    phone_e164: str  # who sent it
    to: str
    text: str
    received_at: datetime
    kind: ReplyKind
    outcome: Outcome | None = None
    keyword: str = ""
    gateway_ref: str = ""  # the gateway's reference: a retried callback is recorded once


@dataclass(frozen=True, slots=True)
class InboundResult:
    inbound_id: int
    new: bool  # False: a retried callback already recorded
    account: Account | None  # the account of the number, if any
    answered: Message | None  # the last text sent to the number, which a reply answers
    opted_out_now: tuple[str, ...] = ()  # channels newly opted out by this text


# The policy's question for a text: the account, its number's text history, the channels it
# opted out of, its stated preferences.
DecideText = Callable[[Account, Sequence[PastMessage], frozenset[str], Preferences], Decision]


class TextStore(Protocol):
    async def claim_message(
        self,
        request: TextRequest,
        now: datetime,
        decide: DecideText,
        dialer_id: str,
        history_since: datetime,
    ) -> Message | Decision | None: ...

    async def claim_confirmation(
        self, request: TextRequest, opted_out_at: datetime, now: datetime, dialer_id: str
    ) -> Message | None: ...

    async def advance_message(
        self,
        message_id: int,
        state: MessageState,
        now: datetime,
        actor: str,
        source: str,
        reason: str = "",
        gateway_id: str = "",
    ) -> bool | None: ...

    async def last_text_to(self, phone_e164: str) -> Message | None: ...

    async def stale_messages(self, written_before: datetime) -> list[Message]: ...

    async def record_inbound(
        self, inbound: InboundText, opt_out_channels: Sequence[str], now: datetime, actor: str
    ) -> InboundResult: ...


class TextPolicy(Protocol):
    @property
    def history_window(self) -> timedelta: ...

    def decide_text(
        self,
        account: Account,
        at: datetime,
        history: Sequence[PastMessage],
        opted_out: frozenset[str],
        prefs: Preferences = ...,
    ) -> Decision: ...

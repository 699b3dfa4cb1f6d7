"""What the SMS channel needs from the store and the contact policy, as Protocols.

`dialer.store.sqlite.SqliteStore` and `dialer.policy.gate.PackGate` implement them; the
application layer (duecall/) hands them over: `sms` never imports the dialer's store or policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from dialer.core.messages import DecideText, InboundResult, InboundText, Message, PastMessage, TextRequest
from dialer.core.models import Account, Decision, Preferences
from dialer.core.vocab import MessageState


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

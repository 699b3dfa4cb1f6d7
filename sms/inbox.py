"""What the gateway tells DueCall: delivery reports and inbound texts, recorded the moment they arrive.

An inbound text is classified (`sms.replies`) against what the last text to that number asked
for, then written with, for an opt-out, the opt-outs the pack requires (one transaction). After
a number's first SMS opt-out it gets one confirmation text (47 CFR 64.1200(a)(12)); a second
STOP gets none. A reply the template asked for is an outcome; anything else waits for a person
(`duecall sms inbox`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dialer.core.clock import Clock
from dialer.core.messages import CONFIRMATION, InboundText, TextRequest, TextStore
from dialer.core.models import Account
from dialer.core.vocab import ReplyKind
from sms.gateway import DeliveryReport, Inbound
from sms.replies import classify
from sms.sender import Sender
from sms.templates import OPT_OUT_CONFIRMATION, TemplateSet, account_fields, render, template_key

log = logging.getLogger(__name__)


class Inbox:
    """The receiver's sink: reports move texts' states; inbound texts become records and actions."""

    def __init__(
        self,
        store: TextStore,
        sender: Sender,
        templates: TemplateSet,
        opt_out_channels: Sequence[str],
        clock: Clock,
        gateway: str,
    ) -> None:
        self._store = store
        self._sender = sender
        self._templates = templates
        self._opt_out_channels = tuple(opt_out_channels)
        self._clock = clock
        self._gateway = gateway

    @property
    def actor(self) -> str:
        return f"gateway:{self._gateway}"

    async def report(self, report: DeliveryReport) -> bool | None:
        return await self._store.advance_message(
            report.message_id,
            report.state,
            self._clock.now(),
            self.actor,
            "report",
            report.reason,
            report.gateway_id,
        )

    async def inbound(self, inbound: Inbound) -> None:
        last = await self._store.last_text_to(inbound.sender)
        found = self._templates.of_key(last.template) if last else None
        asked = found[0].messages[found[1]].replies if found else None
        classified = classify(inbound.text, asked)
        record = InboundText(
            inbound.sender,
            inbound.to,
            inbound.text,
            inbound.received_at,
            classified.kind,
            classified.outcome,
            classified.keyword,
            inbound.gateway_ref,
        )
        channels = self._opt_out_channels if classified.kind is ReplyKind.OPT_OUT else ()
        result = await self._store.record_inbound(record, channels, self._clock.now(), self.actor)
        if result.new and "sms" in result.opted_out_now and result.account is not None:
            await self._confirm_opt_out(result.account)

    async def _confirm_opt_out(self, account: Account) -> None:
        now = self._clock.now()
        templates = self._templates.for_account(account)
        done = render(templates, OPT_OUT_CONFIRMATION, account_fields(templates, account))
        request = TextRequest(
            account=account,
            batch=f"opt-out-confirmation/{account.phone_e164}/{now:%Y%m%dT%H%M%S}",
            template=template_key(templates, OPT_OUT_CONFIRMATION),
            text=done.text,
            coding=done.encoding.coding.value,
            segments=done.encoding.segments,
            gateway=self._gateway,
            purpose=CONFIRMATION,
        )
        message = await self._store.claim_confirmation(request, now, now, self._sender.dialer_id)
        if message is None:
            log.info("opt-out of %s: already confirmed", account.phone_e164)
            return
        await self._sender.submit(message)

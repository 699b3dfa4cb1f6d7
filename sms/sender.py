"""Sending texts: policy and row first, then the gateway, then the gateway's answer.

One text goes through three steps, each of them durable before the next:
1. `TextStore.claim_message`: the policy decides inside the transaction that writes the row
   (state queued); the row counts toward the caps from this moment.
2. The gateway is asked (bounded by the adapter's timeouts).
3. Its answer moves the row: submitted, not_sent (refused, unreachable) or unknown.

A crash between 1 and 3 leaves a queued row: `reconcile` marks it unknown (counted, never sent
again blindly); a delivery report that still arrives for it settles it. A text that never left
(the gateway was unreachable) is tried again, with a new policy decision, per `RetryPlan`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dialer.core.clock import Clock
from dialer.core.messages import DecideText, Message, PastMessage, TextPolicy, TextRequest, TextStore
from dialer.core.models import Account, Decision, Preferences
from dialer.core.vocab import MessageState
from sms.gateway import Gateway, Outgoing, SubmitStatus

log = logging.getLogger(__name__)

# A queued row older than this has lost its gateway answer (the adapters' timeouts are ~20 s).
RECONCILE_AFTER = timedelta(minutes=2)
_STATE_OF = {
    SubmitStatus.ACCEPTED: MessageState.SUBMITTED,
    SubmitStatus.REFUSED: MessageState.NOT_SENT,
    SubmitStatus.UNREACHABLE: MessageState.NOT_SENT,
    SubmitStatus.UNKNOWN: MessageState.UNKNOWN,
}


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """Texts that never left (gateway unreachable) are tried again this often, this many times."""

    attempts: int = 3
    delay: timedelta = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class Sent:
    """What became of one request."""

    request: TextRequest
    state: str  # a MessageState value, or "refused" (policy) or "skipped" (already in the batch)
    message_id: int | None = None
    reason: str = ""
    decision: Decision | None = None
    submitted: SubmitStatus | None = None  # the gateway's answer, when it was asked


@dataclass(slots=True)
class BatchSummary:
    results: list[Sent] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(r.state for r in self.results)


class Sender:
    """Sends texts for one dialer process: claims through the store, submits through a gateway."""

    def __init__(
        self,
        store: TextStore,
        policy: TextPolicy,
        gateway: Gateway,
        clock: Clock,
        dialer_id: str,
        concurrency: int = 16,
        retry: RetryPlan = RetryPlan(),
        sender_id: str = "",
    ) -> None:
        self._store = store
        self._policy = policy
        self._gateway = gateway
        self._clock = clock
        self._dialer_id = dialer_id
        self._concurrency = concurrency
        self._retry = retry
        self._sender_id = sender_id  # who texts come from ("" = the gateway's default)

    @property
    def dialer_id(self) -> str:
        return self._dialer_id

    @property
    def actor(self) -> str:
        return f"dialer:{self._dialer_id}"

    async def send(self, request: TextRequest) -> Sent:
        """Decide, write, submit, record; retried while the gateway cannot be reached."""
        result = await self._send_once(request)
        for _ in range(self._retry.attempts - 1):
            if result.submitted is not SubmitStatus.UNREACHABLE:
                break
            await asyncio.sleep(self._retry.delay.total_seconds())
            result = await self._send_once(request)
        return result

    async def send_batch(self, requests: Iterable[TextRequest]) -> BatchSummary:
        """Every request, `concurrency` at a time, under one TaskGroup."""
        summary = BatchSummary()
        queue: asyncio.Queue[TextRequest] = asyncio.Queue()
        for request in requests:
            queue.put_nowait(request)

        async def worker() -> None:
            while not queue.empty():
                summary.results.append(await self.send(queue.get_nowait()))

        async with asyncio.TaskGroup() as group:
            for _ in range(min(self._concurrency, queue.qsize())):
                group.create_task(worker())
        return summary

    async def submit(self, message: Message) -> tuple[MessageState, str, SubmitStatus]:
        """Hand a written row to the gateway and record its answer: the row's state and why."""
        ucs2 = message.coding == "ucs-2"
        outgoing = Outgoing(message.id, message.phone_e164, self._sender_id, message.text, ucs2)
        submitted = await self._gateway.submit(outgoing)
        state = _STATE_OF[submitted.status]
        reason = f"{submitted.status}: {submitted.reason}"
        await self._store.advance_message(
            message.id, state, self._clock.now(), self.actor, "submit", reason, submitted.gateway_id
        )
        if state is not MessageState.SUBMITTED:
            log.warning("text %d to %s: %s", message.id, message.phone_e164, reason)
        return state, reason, submitted.status

    async def reconcile(self, after: timedelta = RECONCILE_AFTER) -> list[int]:
        """Queued rows whose gateway answer was lost (a crash): marked unknown, never re-sent."""
        now = self._clock.now()
        settled = []
        for message in await self._store.stale_messages(now - after):
            why = "reconciled: no gateway answer recorded (the sender stopped); counted, not re-sent"
            if await self._store.advance_message(
                message.id, MessageState.UNKNOWN, now, self.actor, "reconcile", why
            ):
                settled.append(message.id)
        return settled

    async def _send_once(self, request: TextRequest) -> Sent:
        now = self._clock.now()
        since = now - self._policy.history_window
        claimed = await self._store.claim_message(request, now, self._decide_at(now), self._dialer_id, since)
        if claimed is None:
            return Sent(request, "skipped", reason=f"already texted in batch {request.batch}")
        if isinstance(claimed, Decision):
            why = "; ".join(f"{r.rule}: {r.detail}" for r in claimed.reasons)
            return Sent(request, "refused", reason=why, decision=claimed)
        state, reason, status = await self.submit(claimed)
        return Sent(request, state.value, claimed.id, reason, submitted=status)

    def _decide_at(self, now: datetime) -> DecideText:
        policy = self._policy

        def decide(
            account: Account, history: Sequence[PastMessage], opted_out: frozenset[str], prefs: Preferences
        ) -> Decision:
            return policy.decide_text(account, now, history, opted_out, prefs)

        return decide

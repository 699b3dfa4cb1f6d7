"""Texts: the policy's verdict and the counted message row in one transaction, then its states.

`claim_message` reads the number's text history and opt-outs, asks the policy, and writes the
row (state queued) inside one write transaction: the row exists, and counts toward the caps,
before the gateway is asked. A state only moves forward (queued -> submitted -> accepted ->
delivered | failed | expired), so a late or repeated delivery report never undoes a later one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dialer.core.messages import (
    CONFIRMATION,
    DecideText,
    InboundResult,
    InboundText,
    Message,
    TextRequest,
)
from dialer.core.models import Account, Decision
from dialer.core.vocab import MessageState, ReplyKind
from dialer.store.accounts import ACCOUNT_COLUMNS, account_from
from dialer.store.attempts import reasons
from dialer.store.chain import AuditEvent
from dialer.store.chain import append as append_audit
from dialer.store.conn import Conn
from dialer.store.contacts import OPT_OUT, preferences_in, text_history
from dialer.store.db import Database, Row, fetch_all, fetch_one, insert_id
from dialer.store.events import MessageQueued, MessageReceived, MessageRefused, MessageStateChanged, OptedOut
from dialer.store.times import from_db, to_db, to_db_or_none

S = MessageState
# How far along a state is: a change only ever moves to a higher rank.
_RANK = {
    S.QUEUED: 0,
    S.SUBMITTED: 1,
    S.UNKNOWN: 1,
    S.ACCEPTED: 2,
    S.DELIVERED: 3,
    S.FAILED: 3,
    S.EXPIRED: 3,
    S.NOT_SENT: 3,
}

MESSAGE_COLUMNS = (
    "m.id, m.account_pk, coalesce(a.account_id, '') AS account_id, m.phone_e164, m.text, m.coding, "
    "m.decided_at, m.state, m.template, m.batch, m.campaign_id"
)
IN_BATCH = "SELECT 1 FROM messages WHERE batch=? AND account_pk=? AND state!=? LIMIT 1"
OPTED_OUT = "SELECT channel, at FROM opt_outs WHERE phone_e164=?"
INSERT_MESSAGE = (
    "INSERT INTO messages (campaign_id, account_pk, phone_e164, batch, purpose, template, text, coding, "
    "segments, gateway, state, policy_reasons, decided_at, updated_at, dialer_id, step) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
MESSAGE = f"SELECT {MESSAGE_COLUMNS} FROM messages m LEFT JOIN accounts a ON a.id=m.account_pk WHERE m.id=?"
SET_STATE = "UPDATE messages SET state=?, reason=?, gateway_id=?, updated_at=? WHERE id=?"
STALE = (
    f"SELECT {MESSAGE_COLUMNS} FROM messages m LEFT JOIN accounts a ON a.id=m.account_pk "
    "WHERE m.state=? AND m.decided_at<? ORDER BY m.id"
)
CONFIRMED_SINCE = "SELECT 1 FROM messages WHERE phone_e164=? AND purpose=? AND decided_at>=? LIMIT 1"
LAST_SENT = (
    f"SELECT {MESSAGE_COLUMNS} FROM messages m LEFT JOIN accounts a ON a.id=m.account_pk "
    "WHERE m.phone_e164=? AND m.state!=? AND m.purpose!=? ORDER BY m.decided_at DESC, m.id DESC LIMIT 1"
)
ACCOUNT_BY_PHONE = (
    f"SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.phone_e164=? ORDER BY a.updated_at DESC LIMIT 1"
)
SEEN_INBOUND = "SELECT id FROM inbound_messages WHERE phone_e164=? AND gateway_ref=?"
INSERT_INBOUND = (
    "INSERT INTO inbound_messages (received_at, phone_e164, to_number, text, kind, outcome, keyword, "
    "account_pk, message_id, gateway_ref) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
INBOX = (
    "SELECT i.id, i.received_at, i.phone_e164, i.text, i.kind, i.outcome, coalesce(a.account_id, '') "
    "AS account_id, i.message_id FROM inbound_messages i LEFT JOIN accounts a ON a.id=i.account_pk "
    "WHERE (CAST(? AS BOOLEAN) OR i.kind=?) AND i.handled_at IS NULL ORDER BY i.id"
)
MESSAGES_IN = (
    "SELECT m.id, coalesce(a.account_id, '') AS account_id, m.phone_e164, m.batch, m.purpose, m.template, "
    "m.text, m.coding, m.segments, m.state, m.reason, m.gateway, m.decided_at, m.updated_at "
    "FROM messages m LEFT JOIN accounts a ON a.id=m.account_pk WHERE (CAST(? AS TEXT) IS NULL OR m.batch=?) "
    "ORDER BY m.id"
)


def message_from(r: Row) -> Message:
    return Message(
        id=r["id"],
        account_pk=r["account_pk"],
        account_id=r["account_id"],
        phone_e164=r["phone_e164"],
        text=r["text"],
        coding=r["coding"],
        decided_at=from_db(r["decided_at"]),
        state=MessageState(r["state"]),
        template=r["template"],
        batch=r["batch"],
    )


class Messages:
    """The store's texts, in and out (a part of `SqliteStore`)."""

    _db: Database

    async def claim_message(
        self,
        request: TextRequest,
        now: datetime,
        decide: DecideText,
        dialer_id: str,
        history_since: datetime,
    ) -> Message | Decision | None:
        """Decide and, when allowed, write the counted message: one transaction.

        None: this account already has a text in this batch (sent, or with its fate unknown).
        """
        account = request.account
        actor = f"dialer:{dialer_id}"
        async with self._db.write() as db:
            if await fetch_one(db, IN_BATCH, (request.batch, account.pk, S.NOT_SENT.value)):
                return None
            history = await text_history(db, account.phone_e164, history_since)
            opted_out = frozenset(r["channel"] for r in await fetch_all(db, OPTED_OUT, (account.phone_e164,)))
            decision = decide(account, history, opted_out, await preferences_in(db, account.phone_e164))
            if not decision.allowed:
                record = MessageRefused(
                    account.phone_e164,
                    request.batch,
                    request.template,
                    reasons(decision),
                    to_db_or_none(decision.next_allowed_at),
                )
                event = AuditEvent(record, now, actor, request.campaign_id, None, account.account_id)
                await append_audit(db, [event])
                return decision
            return await _insert(db, request, now, decision, dialer_id)

    async def claim_confirmation(
        self, request: TextRequest, opted_out_at: datetime, now: datetime, dialer_id: str
    ) -> Message | None:
        """The one confirmation of an opt-out, unless one was already written since `opted_out_at`."""
        async with self._db.write() as db:
            phone = request.account.phone_e164
            if await fetch_one(db, CONFIRMED_SINCE, (phone, CONFIRMATION, to_db(opted_out_at))):
                return None
            why = Decision(True, ())
            return await _insert(db, request, now, why, dialer_id)

    async def advance_message(
        self,
        message_id: int,
        state: MessageState,
        now: datetime,
        actor: str,
        source: str,
        reason: str = "",
        gateway_id: str = "",
    ) -> bool | None:
        """Move a text to `state` if that is forward; None when no text has this id."""
        async with self._db.write() as db:
            row = await fetch_one(db, MESSAGE, (message_id,))
            if row is None:
                return None
            current = MessageState(row["state"])
            if not _forward(current, state):
                return False
            await db.execute(SET_STATE, (state.value, reason[:500], gateway_id[:200], to_db(now), message_id))
            record = MessageStateChanged(
                message_id, state.value, current.value, reason[:500], gateway_id[:200], source
            )
            keys = (row["campaign_id"], None, row["account_id"] or None)
            await append_audit(db, [AuditEvent(record, now, actor, *keys)])
            return True

    async def message(self, message_id: int) -> Message | None:
        row = await self._db.fetch_one(MESSAGE, (message_id,))
        return message_from(row) if row else None

    async def last_text_to(self, phone_e164: str) -> Message | None:
        """The last reminder that may have reached this number: the one a reply answers."""
        row = await self._db.fetch_one(LAST_SENT, (phone_e164, S.NOT_SENT.value, CONFIRMATION))
        return message_from(row) if row else None

    async def stale_messages(self, written_before: datetime) -> list[Message]:
        """Texts still queued (no answer from the gateway recorded) written before the cut-off."""
        rows = await self._db.fetch_all(STALE, (S.QUEUED.value, to_db(written_before)))
        return [message_from(r) for r in rows]

    async def record_inbound(
        self, inbound: InboundText, opt_out_channels: Sequence[str], now: datetime, actor: str
    ) -> InboundResult:
        """Write an inbound text and, for an opt-out, the opt-outs: one transaction, at once."""
        async with self._db.write() as db:
            phone = inbound.phone_e164
            if inbound.gateway_ref:
                seen = await fetch_one(db, SEEN_INBOUND, (phone, inbound.gateway_ref))
                if seen is not None:
                    return InboundResult(int(seen["id"]), False, None, None)
            last = await fetch_one(db, LAST_SENT, (phone, S.NOT_SENT.value, CONFIRMATION))
            answered = message_from(last) if last else None
            account = await _account_for(db, phone, answered)
            inbound_id = await _insert_inbound(db, inbound, account, answered)
            keys = (None, None, account.account_id if account else None)
            events = [AuditEvent(_received(inbound_id, inbound, answered), inbound.received_at, actor, *keys)]
            newly: list[str] = []
            if inbound.kind is ReplyKind.OPT_OUT:
                source = f"sms reply {inbound.text[:40]!r}"
                for channel in opt_out_channels:
                    added = await db.execute(OPT_OUT, (phone, channel, to_db(now), source)) == 1
                    if added:
                        newly.append(channel)
                    record = OptedOut(phone, channel, source, added)
                    events.append(AuditEvent(record, now, actor, *keys))
            await append_audit(db, events)
            return InboundResult(inbound_id, True, account, answered, tuple(newly))

    async def inbox(self, everything: bool = False) -> list[dict[str, Any]]:
        """Inbound texts no person has dealt with: those kept for a person, or all of them."""
        rows = await self._db.fetch_all(INBOX, (everything, ReplyKind.FOR_PERSON.value))
        return [dict(r) for r in rows]

    async def messages_in(self, batch: str | None = None) -> list[dict[str, Any]]:
        """Every text (of one batch), for the command line, the demo and tests."""
        return [dict(r) for r in await self._db.fetch_all(MESSAGES_IN, (batch, batch))]


def _forward(current: MessageState, new: MessageState) -> bool:
    if new is S.NOT_SENT:
        return current is S.QUEUED  # only the gateway's own answer can say it never left
    return _RANK[new] > _RANK[current]


async def _insert(
    db: Conn, request: TextRequest, now: datetime, decision: Decision, dialer_id: str
) -> Message:
    account = request.account
    why = reasons(decision)
    params = (
        request.campaign_id,
        account.pk,
        account.phone_e164,
        request.batch,
        request.purpose,
        request.template,
        request.text,
        request.coding,
        request.segments,
        request.gateway,
        S.QUEUED.value,
        json.dumps(why),
        to_db(now),
        to_db(now),
        dialer_id,
        request.step,
    )
    message_id = await insert_id(db, INSERT_MESSAGE, params)
    record = MessageQueued(
        message_id,
        account.phone_e164,
        request.batch,
        request.purpose,
        request.template,
        request.text,
        request.coding,
        request.segments,
        request.gateway,
        why,
    )
    actor = f"dialer:{dialer_id}"
    await append_audit(db, [AuditEvent(record, now, actor, request.campaign_id, None, account.account_id)])
    return Message(
        message_id,
        account.pk,
        account.account_id,
        account.phone_e164,
        request.text,
        request.coding,
        now,
        S.QUEUED,
        request.template,
        request.batch,
    )


async def _account_for(db: Conn, phone: str, answered: Message | None) -> Account | None:
    """The account a text from `phone` is about: that of the last text sent there, else the newest."""
    if answered is not None and answered.account_pk is not None:
        row = await fetch_one(
            db, f"SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id=?", (answered.account_pk,)
        )
    else:
        row = await fetch_one(db, ACCOUNT_BY_PHONE, (phone,))
    return account_from(row) if row else None


async def _insert_inbound(
    db: Conn, inbound: InboundText, account: Account | None, answered: Message | None
) -> int:
    params = (
        to_db(inbound.received_at),
        inbound.phone_e164,
        inbound.to,
        inbound.text,
        inbound.kind.value,
        inbound.outcome.value if inbound.outcome else None,
        inbound.keyword,
        account.pk if account else None,
        answered.id if answered else None,
        inbound.gateway_ref,
    )
    return await insert_id(db, INSERT_INBOUND, params)


def _received(inbound_id: int, inbound: InboundText, answered: Message | None) -> MessageReceived:
    return MessageReceived(
        inbound_id,
        inbound.phone_e164,
        inbound.to,
        inbound.text,
        inbound.kind.value,
        inbound.outcome.value if inbound.outcome else None,
        inbound.keyword,
        answered.id if answered else None,
    )

"""Read-side queries for texts (SMS) on the audit page: the search and one account's story.

Three kinds of row: a text DueCall wrote (`messages`, one row per decided text, whatever became
of it), a text the policy refused (a `message.refused` event: no row is written for it) and a
reply from a handset (`inbound_messages`). The search runs one arm per kind, each from its own
index, and merges them newest first. An account's timeline reads the chain's `message.*` and
`consumer.opted_out` events for the account (the state history in the gateway's words, what a
reply was taken for and the opt-outs it caused) beside the rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from audit.search import Page, count, page_of
from dialer.store import Reads
from dialer.store.chain import COLUMNS, StoredEvent
from dialer.store.db import Row as DbRow

OUT, IN, REFUSED = "out", "in", "refused"
DIRECTIONS = (OUT, IN, REFUSED)
TIMELINE_LIMIT = 300  # per kind of row on an account's page: the newest, and a note when cut
TEXT_EVENTS = ("message.queued", "message.state", "message.refused", "message.inbound", "consumer.opted_out")
_EVENTS_LIMIT = 5 * TIMELINE_LIMIT  # a text has a few state events; a bound, whatever happened


@dataclass(frozen=True, slots=True)
class TextFilter:
    """What an auditor searches texts for; every field is optional. Dates are UTC, inclusive.

    `state` narrows to texts sent (it is theirs alone), `kind` to replies.
    """

    date_from: date | None = None
    date_to: date | None = None
    account_id: str = ""
    number: str = ""  # E.164, the handset's number
    direction: str = ""  # out, in, refused
    state: str = ""  # a MessageState
    kind: str = ""  # a ReplyKind

    def as_dict(self) -> dict[str, str]:
        found = {
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "account": self.account_id,
            "number": self.number,
            "direction": self.direction,
            "state": self.state,
            "kind": self.kind,
        }
        return {k: v for k, v in found.items() if v}


@dataclass(frozen=True, slots=True)
class TextRow:
    """One text in the search: sent, refused or received."""

    direction: str  # out, in, refused
    id: int  # the message's id, the reply's id, or the refusal's event seq
    at: str
    account_pk: int | None
    account_id: str
    name: str
    phone: str
    template: str  # "" for a reply
    text: str  # "" for a refusal (nothing was written)
    status: str  # the text's state, the reply's kind, or "refused"
    detail: str  # the gateway's words, the reply's outcome, or the refusal's reasons (JSON)


# One SELECT per direction, with the same columns; each filter adds conditions to the arms it
# concerns and leaves out the arms it cannot match.
_ARMS = {
    OUT: (
        "SELECT 'out' AS direction, m.id AS id, m.decided_at AS at, m.account_pk AS account_pk, "
        "coalesce(a.account_id, '') AS account_id, coalesce(a.name, '') AS name, m.phone_e164 AS phone, "
        "m.template AS template, m.text AS text, m.state AS status, m.reason AS detail "
        "FROM messages m LEFT JOIN accounts a ON a.id = m.account_pk",
        {"at": "m.decided_at", "account": "m.account_pk", "number": "m.phone_e164", "state": "m.state"},
    ),
    IN: (
        "SELECT 'in' AS direction, i.id AS id, i.received_at AS at, i.account_pk AS account_pk, "
        "coalesce(a.account_id, '') AS account_id, coalesce(a.name, '') AS name, i.phone_e164 AS phone, "
        "'' AS template, i.text AS text, i.kind AS status, coalesce(i.outcome, '') AS detail "
        "FROM inbound_messages i LEFT JOIN accounts a ON a.id = i.account_pk",
        {"at": "i.received_at", "account": "i.account_pk", "number": "i.phone_e164", "kind": "i.kind"},
    ),
    REFUSED: (
        "SELECT 'refused' AS direction, e.seq AS id, e.at AS at, a.id AS account_pk, "
        "coalesce(e.account_id, '') AS account_id, coalesce(a.name, '') AS name, "
        "coalesce(json_extract(e.data, '$.phone'), '') AS phone, "
        "coalesce(json_extract(e.data, '$.template'), '') AS template, '' AS text, 'refused' AS status, "
        "coalesce(json_extract(e.data, '$.reasons'), '[]') AS detail "
        "FROM audit_events e LEFT JOIN accounts a ON a.account_id = e.account_id",
        {"at": "e.at", "account": "e.account_id", "number": "json_extract(e.data, '$.phone')"},
    ),
}
_COUNT_FROM = {OUT: "messages m", IN: "inbound_messages i", REFUSED: "audit_events e"}


def _arm_where(direction: str, f: TextFilter) -> tuple[str, list[Any]] | None:
    """The arm's conditions and parameters, or None when the filter cannot match this arm."""
    columns = _ARMS[direction][1]
    if (f.direction and f.direction != direction) or (f.state and "state" not in columns):
        return None
    if f.kind and "kind" not in columns:
        return None
    conds: list[str] = ["e.kind = 'message.refused'"] if direction == REFUSED else []
    params: list[Any] = []
    if f.date_from:
        conds.append(f"{columns['at']} >= ?")
        params.append(f.date_from.isoformat())
    if f.date_to and f.date_to < date.max:  # the last day there is has no next day: no upper bound
        conds.append(f"{columns['at']} < ?")
        params.append((f.date_to + timedelta(days=1)).isoformat())
    if f.account_id:
        by_key = direction == REFUSED  # events name the account by its id, rows by its key
        conds.append(
            f"{columns['account']} = " + ("?" if by_key else "(SELECT id FROM accounts WHERE account_id = ?)")
        )
        params.append(f.account_id)
    for key, value in (("number", f.number), ("state", f.state), ("kind", f.kind)):
        if value:
            conds.append(f"{columns[key]} = ?")
            params.append(value)
    return (" WHERE " + " AND ".join(conds)) if conds else "", params


def _text_row(r: DbRow) -> TextRow:
    return TextRow(*(r[i] for i in range(len(TextRow.__dataclass_fields__))))


async def search_texts(db: Reads, f: TextFilter, page: int = 1, size: int = 50) -> Page[TextRow]:
    """One page of matching texts, newest first, with the total number of matches."""
    arms = [(d, w) for d in DIRECTIONS if (w := _arm_where(d, f)) is not None]
    total = 0
    for direction, (where, params) in arms:
        total += await count(db, f"SELECT count(*) AS n FROM {_COUNT_FROM[direction]}{where}", params)
    page, pages = page_of(total, page, size)
    if not arms:
        return Page([], 0, page, pages)
    sql = " UNION ALL ".join(f"{_ARMS[d][0]}{where}" for d, (where, _) in arms)
    params = [p for _, (_, ps) in arms for p in ps]
    rows = await db.fetch_all(
        f"{sql} ORDER BY at DESC, id DESC LIMIT ? OFFSET ?", [*params, size, (page - 1) * size]
    )
    return Page([_text_row(r) for r in rows], total, page, pages)


# -- one account's texts ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateChange:
    at: str
    state: str
    previous: str
    reason: str  # the gateway's words
    gateway_id: str
    source: str  # submit, report or reconcile


@dataclass(frozen=True, slots=True)
class SentText:
    id: int
    at: str
    phone: str
    purpose: str
    template: str
    text: str
    coding: str
    segments: int
    gateway: str
    state: str  # as the row holds it now
    reasons: list[dict[str, str]]  # why the policy allowed it
    states: list[StateChange] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class OptOut:
    channel: str
    new: bool  # False: the number had already opted out of this channel


@dataclass(frozen=True, slots=True)
class Reply:
    id: int
    at: str
    phone: str
    text: str
    kind: str  # what it was taken for: a ReplyKind
    outcome: str | None
    keyword: str
    answers: int | None  # the text it answers (the last one sent to the number)
    opt_outs: list[OptOut] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RefusedText:
    seq: int
    at: str
    phone: str
    template: str
    reasons: list[dict[str, str]]
    next_allowed_at: str | None


@dataclass(frozen=True, slots=True)
class AccountTexts:
    sent: list[SentText]
    replies: list[Reply]
    refused: list[RefusedText]
    events: list[StoredEvent]  # the events they were read from, for their hash links
    cut: bool  # more than the page holds: the oldest are left out


_SENT = (
    "SELECT id, decided_at, phone_e164, purpose, template, text, coding, segments, gateway, state, "
    "policy_reasons FROM messages WHERE account_pk = ? ORDER BY decided_at DESC, id DESC LIMIT ?"
)
_EVENTS = (
    f"SELECT {COLUMNS} FROM audit_events WHERE account_id = ? "
    f"AND kind IN ({', '.join('?' * len(TEXT_EVENTS))}) ORDER BY seq DESC LIMIT ?"
)


async def account_texts(db: Reads, account_pk: int, account_id: str) -> AccountTexts:
    """The account's texts (the newest `TIMELINE_LIMIT` of each kind), oldest first."""
    rows = await db.fetch_all(_SENT, (account_pk, TIMELINE_LIMIT + 1))
    found = await db.fetch_all(_EVENTS, (account_id, *TEXT_EVENTS, _EVENTS_LIMIT + 1))
    events = sorted((StoredEvent.from_row(r) for r in found[:_EVENTS_LIMIT]), key=lambda e: e.seq)
    sent = [_sent(r) for r in reversed(rows[:TIMELINE_LIMIT])]
    texts = group(sent, events)
    cut = len(rows) > TIMELINE_LIMIT or len(found) > _EVENTS_LIMIT
    return AccountTexts(
        texts.sent,
        texts.replies[-TIMELINE_LIMIT:],
        texts.refused[-TIMELINE_LIMIT:],
        events,
        cut or len(texts.replies) > TIMELINE_LIMIT or len(texts.refused) > TIMELINE_LIMIT,
    )


def _sent(r: DbRow) -> SentText:
    return SentText(
        r["id"],
        r["decided_at"],
        r["phone_e164"],
        r["purpose"],
        r["template"],
        r["text"],
        r["coding"],
        r["segments"],
        r["gateway"],
        r["state"],
        _list(r["policy_reasons"]),
    )


def _list(text: str) -> list[dict[str, str]]:
    try:
        value = json.loads(text or "[]")
    except (TypeError, ValueError, RecursionError):
        return []
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def group(sent: Sequence[SentText], events: Sequence[StoredEvent]) -> AccountTexts:
    """Pure: each state change under its text, each opt-out under the reply that caused it.

    An opt-out caused by a reply is written in the same transaction, right after the reply's
    `message.inbound` event, so it is the next event of the account (consecutive seq).
    """
    states: dict[int, list[StateChange]] = {s.id: [] for s in sent}
    replies: list[Reply] = []
    refused: list[RefusedText] = []
    last: tuple[int, Reply] | None = None  # the latest reply and the seq its opt-outs follow
    for e in events:
        d = e.payload()
        if e.kind == "message.state" and d.get("message_id") in states:
            states[d["message_id"]].append(_change(e.at, d))
        elif e.kind == "message.inbound":
            reply = _reply(e.at, d)
            replies.append(reply)
            last = (e.seq, reply)
        elif e.kind == "consumer.opted_out" and last and last[0] == e.seq - 1:
            last[1].opt_outs.append(OptOut(str(d.get("channel", "")), bool(d.get("new"))))
            last = (e.seq, last[1])
        elif e.kind == "message.refused":
            refused.append(_refused(e.seq, e.at, d))
    with_states = [replace(s, states=states[s.id]) for s in sent]
    return AccountTexts(with_states, replies, refused, list(events), False)


def _change(at: str, d: dict[str, Any]) -> StateChange:
    keys = ("state", "previous", "reason", "gateway_id", "source")
    return StateChange(at, *(str(d.get(k) or "") for k in keys))


def _reply(at: str, d: dict[str, Any]) -> Reply:
    answers = d.get("answers")
    return Reply(
        int(d.get("inbound_id") or 0),
        at,
        str(d.get("phone", "")),
        str(d.get("text", "")),
        str(d.get("kind", "")),
        d.get("outcome") if isinstance(d.get("outcome"), str) else None,
        str(d.get("keyword") or ""),
        answers if isinstance(answers, int) else None,
    )


def _refused(seq: int, at: str, d: dict[str, Any]) -> RefusedText:
    reasons = d.get("reasons")
    nxt = d.get("next_allowed_at")
    return RefusedText(
        seq,
        at,
        str(d.get("phone", "")),
        str(d.get("template", "")),
        [r for r in reasons if isinstance(r, dict)] if isinstance(reasons, list) else [],
        nxt if isinstance(nxt, str) else None,
    )


async def account_by_pk(db: Reads, account_pk: int) -> dict[str, Any] | None:
    row = await db.fetch_one(
        "SELECT id, account_id, name, phone_e164, region, language FROM accounts WHERE id = ?", (account_pk,)
    )
    return dict(row) if row else None

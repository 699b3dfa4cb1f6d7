"""A campaign's live state, for the operations page: one read snapshot of aggregate queries.

What is under way (open attempts, texts not yet in a final state), the pace (calls and texts of
the last minute), how calls and texts ended so far, what the policy refused in the last hour and
why, and what is due next. Each figure is one aggregate query on an index; none reads a row per
call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from dialer.core.errors import DueCallError
from dialer.core.models import AttemptState, Disposition, TargetState
from dialer.core.vocab import CampaignState, MessageState, RuleId
from dialer.store.conn import Conn, Dialect
from dialer.store.db import Database, fetch_all, fetch_one
from dialer.store.times import from_db, to_db

PACE_WINDOW = timedelta(minutes=1)  # "calls and texts in the last minute"
REFUSALS_WINDOW = timedelta(hours=1)
NEXT_DUE = 10

_OPEN_TEXTS = tuple(s.value for s in MessageState if not s.final)
_OPEN_MARKS = ",".join("?" * len(_OPEN_TEXTS))
_LEFT = tuple(s.value for s in MessageState if s is not MessageState.NOT_SENT)  # may have reached the carrier
_LEFT_MARKS = ",".join("?" * len(_LEFT))
_INFORMATIVE = tuple(r.value for r in RuleId if not r.blocking)  # they never refuse a contact

STATE = "SELECT state FROM campaigns WHERE id=?"
CALLS_IN_FLIGHT = "SELECT count(*) AS n FROM attempts WHERE campaign_id=? AND state=?"
TEXTS_IN_FLIGHT = f"SELECT count(*) AS n FROM messages WHERE campaign_id=? AND state IN ({_OPEN_MARKS})"
# Calls placed (an Originate Asterisk refused placed none) and texts that left (not_sent never did).
# `+campaign_id`: walk the last minute on attempts_decided, never the campaign's every attempt.
CALLS_SINCE = (
    "SELECT count(*) AS n FROM attempts WHERE decided_at>=? AND +campaign_id=? "
    "AND coalesce(disposition, '')!=?"
)
TEXTS_SINCE = (
    f"SELECT count(*) AS n FROM messages WHERE campaign_id=? AND state IN ({_LEFT_MARKS}) AND decided_at>=?"
)
DISPOSITIONS = (
    "SELECT disposition AS k, count(*) AS n FROM attempts "
    "WHERE campaign_id=? AND disposition IS NOT NULL GROUP BY disposition"
)
DELIVERIES = "SELECT state AS k, count(*) AS n FROM messages WHERE campaign_id=? GROUP BY state"
# Once per refusing rule of each refusal (a call's contact.blocked, a text's message.refused), as
# the Prometheus counter counts them; the detail of the latest (SQLite's bare column beside max():
# of the latest event's reasons with that rule, the first; PostgreSQL's first of them by seq, then
# by place in the list).
_REFUSED = (
    "WHERE e.kind IN ('contact.blocked', 'message.refused') AND e.at>=? AND e.campaign_id=? "
    f"AND coalesce({{rule}}, '') NOT IN ({','.join('?' * len(_INFORMATIVE))}) GROUP BY 1"
)
REFUSALS: dict[Dialect, str] = {
    "sqlite": "SELECT json_extract(r.value, '$.rule') AS rule, count(*) AS n, max(e.seq) AS seq, "
    "json_extract(r.value, '$.detail') AS detail "
    "FROM audit_events e, json_each(e.data, '$.reasons') r "
    + _REFUSED.format(rule="json_extract(r.value, '$.rule')"),
    "postgresql": "SELECT r.value ->> 'rule' AS rule, count(*) AS n, max(e.seq) AS seq, "
    "(array_agg(r.value ->> 'detail' ORDER BY e.seq DESC, r.place))[1] AS detail "
    "FROM audit_events e, "
    "jsonb_array_elements(CAST(e.data AS jsonb) -> 'reasons') WITH ORDINALITY r(value, place) "
    + _REFUSED.format(rule="r.value ->> 'rule'"),
}
DUE_NEXT = (
    "SELECT t.next_at, a.account_id, coalesce(t.channel, '') AS channel, t.note "
    "FROM targets t JOIN accounts a ON a.id=t.account_pk "
    "WHERE t.campaign_id=? AND t.state=? ORDER BY t.next_at LIMIT ?"
)


class NextDue(NamedTuple):
    """A target due next: when, whose (the page masks the id), which lane, why it waits."""

    at: datetime
    account_id: str
    channel: str  # voice, sms, or "" (the strategy chooses the lane when it is due)
    note: str


@dataclass(frozen=True, slots=True)
class LiveState:
    state: CampaignState
    calls_in_flight: int  # attempts open: claimed and not yet stored
    texts_in_flight: int  # texts not yet in a final state (MessageState.final)
    calls_last_minute: int
    texts_last_minute: int
    dispositions: dict[str, int]  # calls ended so far, by disposition
    deliveries: dict[str, int]  # texts so far, by state
    refusals_last_hour: dict[str, int]  # rule -> refusals (calls and texts) in the last hour
    latest_refusal: dict[str, str]  # rule -> the detail of its latest refusal
    next_due: list[NextDue]  # soonest first, at most NEXT_DUE


class Live:
    """The store's live reads (a part of `SqliteStore`)."""

    _db: Database

    async def live_state(self, campaign_id: int, now: datetime, upcoming: int = NEXT_DUE) -> LiveState:
        async with self._db.read() as db:  # one snapshot: the figures agree with each other
            row = await fetch_one(db, STATE, (campaign_id,))
            if row is None:
                raise DueCallError(f"no campaign with id {campaign_id}")
            calls, texts = await _in_flight(db, campaign_id)
            calls_pace, texts_pace = await _pace(db, campaign_id, to_db(now - PACE_WINDOW))
            dispositions = await _counts(db, DISPOSITIONS, campaign_id)
            deliveries = await _counts(db, DELIVERIES, campaign_id)
            refusals = await fetch_all(
                db, REFUSALS[db.dialect], (to_db(now - REFUSALS_WINDOW), campaign_id, *_INFORMATIVE)
            )
            due = await fetch_all(db, DUE_NEXT, (campaign_id, TargetState.PENDING.value, upcoming))
        return LiveState(
            CampaignState(row["state"]),
            calls,
            texts,
            calls_pace,
            texts_pace,
            dispositions,
            deliveries,
            {str(r["rule"]): int(r["n"]) for r in refusals},
            {str(r["rule"]): str(r["detail"] or "") for r in refusals},
            [NextDue(from_db(r["next_at"]), r["account_id"], r["channel"], r["note"]) for r in due],
        )


async def _in_flight(db: Conn, campaign_id: int) -> tuple[int, int]:
    calls = await _count(db, CALLS_IN_FLIGHT, (campaign_id, AttemptState.DECIDED.value))  # open
    texts = await _count(db, TEXTS_IN_FLIGHT, (campaign_id, *_OPEN_TEXTS))
    return calls, texts


async def _pace(db: Conn, campaign_id: int, since: str) -> tuple[int, int]:
    calls = await _count(db, CALLS_SINCE, (since, campaign_id, Disposition.NOT_PLACED.value))
    texts = await _count(db, TEXTS_SINCE, (campaign_id, *_LEFT, since))
    return calls, texts


async def _count(db: Conn, sql: str, params: tuple[object, ...]) -> int:
    row = await fetch_one(db, sql, params)
    return int(row["n"]) if row is not None else 0


async def _counts(db: Conn, sql: str, campaign_id: int) -> dict[str, int]:
    return {str(r["k"]): int(r["n"]) for r in await fetch_all(db, sql, (campaign_id,))}

"""How a call ended: its attempt, its target's next state, its IVR result, its events, its audit
trail, and (when ready) its recordings, all in one transaction (`finish_attempt`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dialer.core.flags import ended_flags
from dialer.core.models import Attempt, CallResult, Disposition, TargetUpdate
from dialer.store.attempts import add_flags
from dialer.store.call_events import CallEnded, CallLateResult, CallOutcome, call_event, ivr_event
from dialer.store.chain import AuditEvent
from dialer.store.chain import append as append_audit
from dialer.store.conn import Conn
from dialer.store.db import Database
from dialer.store.events import Record
from dialer.store.evidence import RecordingFacts
from dialer.store.ivr import store_ivr
from dialer.store.keys import keys_of
from dialer.store.recordings import store_recordings
from dialer.store.times import to_db, to_db_or_none

FINISH_ATTEMPT = """
UPDATE attempts SET state='ended', ended_at=?, answered_at=?, disposition=?, dial_status=?,
    cause=?, ivr_stage=?, amd_status=?, digits=?, note=?
WHERE id=? AND state='decided'
"""
ENDED_AT = "SELECT ended_at FROM attempts WHERE id=?"
# A call never placed gives its attempt number back (its row stays, for the trail).
MOVE_TARGET = (
    "UPDATE targets SET state=?, next_at=?, last_disposition=?, note=?, attempts=max(attempts-?, 0), "
    "channel=? WHERE campaign_id=? AND account_pk=?"
)
ADD_CALL_EVENT = "INSERT INTO call_events (attempt_id, at, kind, data) VALUES (?,?,?,?)"


class Calls:
    """The store's finished calls (a part of `SqliteStore`)."""

    _db: Database

    async def finish_attempt(
        self,
        attempt: Attempt,
        result: CallResult,
        update: TargetUpdate,
        actor: str = "dialer",
        recordings: Sequence[RecordingFacts] | None = None,
        takeover: bool = False,
    ) -> bool:
        """Store how the call ended, where its target goes next, and its audit events: one transaction.

        `recordings`: the call's sealed recordings when they were ready (else None: sealed later).
        False when another dialer had already closed the attempt (it took over after this one's
        lease ran out): then only `call.late-result` is added, with what this dialer knew. The
        same result stored again (a retry after a commit that may have failed) changes nothing.
        `takeover`: this dialer is closing another's attempt; if it is closed already (a third
        dialer was quicker), nothing is written.
        """
        async with self._db.write() as db:
            if await db.execute(FINISH_ATTEMPT, _finish_params(attempt.id, result)) == 0:
                return await _already_ended(db, attempt, result, actor, late=not takeover)
            given_back = 1 if result.disposition is Disposition.NOT_PLACED else 0
            await db.execute(MOVE_TARGET, _move_params(attempt, result, update, given_back))
            if result.ivr is not None:
                await store_ivr(db, attempt.id, result)
            await db.executemany(
                ADD_CALL_EVENT,
                [
                    (attempt.id, to_db(at), kind, json.dumps(data, ensure_ascii=False))
                    for at, kind, data in result.events
                ],
            )
            sealed: list[AuditEvent] = []
            if recordings is not None:
                answered = result.answered_at is not None
                sealed = await store_recordings(db, attempt, recordings, result.ended_at, actor, answered)
            await _audit_ended(db, attempt, result, update, actor, sealed)
        return True


async def _already_ended(db: Conn, attempt: Attempt, result: CallResult, actor: str, late: bool) -> bool:
    """True if this very result is the one stored (an earlier try committed after all); else
    False, and (`late`) the result kept as `call.late-result`."""
    rows = await db.fetch_all(ENDED_AT, (attempt.id,))
    if rows and rows[0]["ended_at"] == to_db(result.ended_at):
        return True
    if not late:
        return False
    ivr = result.ivr
    record = CallLateResult(
        disposition=result.disposition.value,
        outcome=ivr.outcome if ivr is not None else "",
        digits=result.digits,
        note=result.note,
        answered_at=to_db_or_none(result.answered_at),
    )
    keys = await keys_of(db, attempt)
    event = AuditEvent(record, result.ended_at, actor, attempt.campaign_id, attempt.id, keys[2])
    await append_audit(db, [event])
    return False


async def _audit_ended(
    db: Conn,
    attempt: Attempt,
    result: CallResult,
    update: TargetUpdate,
    actor: str,
    sealed: Sequence[AuditEvent] = (),
) -> None:
    """The call's events, its end, and (`sealed`) its recordings: appended in one batch."""
    flags = ended_flags(result)
    await add_flags(db, attempt.id, flags)
    keys = await keys_of(db, attempt)

    def event(record: Record, at: datetime, who: str) -> AuditEvent:
        return AuditEvent(record, at, who, attempt.campaign_id, attempt.id, keys[2])

    timeline = [event(call_event(kind, data), at, actor) for at, kind, data in result.events]
    ivr = result.ivr
    if ivr is not None:
        timeline += [event(ivr_event(st), st.at, "ivr") for st in ivr.steps]
    timeline.sort(key=lambda e: e.at)  # stable: same-time events keep their order
    if ivr is not None and ivr.outcome:
        promised = ivr.promised_date.isoformat() if ivr.promised_date else None
        outcome = CallOutcome(ivr.outcome, ivr.script, promised, ivr.promised_amount_minor, ivr.right_party)
        timeline.append(event(outcome, result.ended_at, "ivr"))
    timeline.append(event(_ended(result, update, flags), result.ended_at, actor))
    await append_audit(db, [*timeline, *sealed])


def _ended(result: CallResult, update: TargetUpdate, flags: list[str]) -> CallEnded:
    return CallEnded(
        disposition=result.disposition.value,
        dial_status=result.dial_status,
        cause=result.cause,
        amd_status=result.amd_status,
        digits=result.digits,
        note=result.note,
        counted=result.disposition is not Disposition.NOT_PLACED,  # False: no call was placed
        answered_at=to_db_or_none(result.answered_at),
        next_state=update.state.value,
        next_at=to_db(update.next_at),
        flags=flags,
    )


def _finish_params(attempt_id: int, r: CallResult) -> tuple[Any, ...]:
    return (
        to_db(r.ended_at),
        to_db_or_none(r.answered_at),
        r.disposition.value,
        r.dial_status,
        r.cause,
        r.ivr_stage,
        r.amd_status,
        r.digits,
        r.note,
        attempt_id,
    )


def _move_params(attempt: Attempt, r: CallResult, update: TargetUpdate, given_back: int) -> tuple[Any, ...]:
    return (
        update.state.value,
        to_db(update.next_at),
        r.disposition.value,
        update.note,
        given_back,
        update.channel,
        attempt.campaign_id,
        attempt.account_pk,
    )

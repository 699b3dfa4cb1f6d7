"""Attempts: the policy's verdict and the counted attempt written in one transaction (`claim`).

The policy reads the history inside the same transaction that adds the attempt, so no other
writer can slip an attempt in between.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from dialer.core.flags import decided_flags
from dialer.core.messages import PastMessage
from dialer.core.models import (
    Account,
    Attempt,
    AttemptState,
    Decision,
    Disposition,
    PastAttempt,
    Preferences,
    Target,
    TargetState,
)
from dialer.store.call_events import AttemptDecided, ContactBlocked
from dialer.store.chain import AuditEvent
from dialer.store.chain import append as append_audit
from dialer.store.conn import Conn
from dialer.store.contacts import preferences_in, text_history
from dialer.store.db import Database, Row, fetch_all, fetch_one, insert_id
from dialer.store.times import from_db, to_db, to_db_or_none

Decide = Callable[[Account, Sequence[PastAttempt], bool, Preferences], Decision]

CLAIMABLE = (
    "SELECT state, attempts, EXISTS (SELECT 1 FROM opt_outs WHERE phone_e164=? AND channel='voice') "
    "AS opted_out FROM targets WHERE campaign_id=? AND account_pk=?"
)
TARGET_STATE = "SELECT state FROM targets WHERE campaign_id=? AND account_pk=?"
HISTORY = (
    "SELECT t.id, t.decided_at, t.campaign_id, t.disposition, a.debt_id, t.cause, t.outcome "
    "FROM attempts t JOIN accounts a ON a.id = t.account_pk "
    "WHERE t.phone_e164=? AND t.decided_at>=? AND coalesce(t.disposition, '')!=? ORDER BY t.decided_at"
)
DEFER_TARGET = "UPDATE targets SET state=?, next_at=?, note=?, channel=? WHERE campaign_id=? AND account_pk=?"
STEERED_RETRY = timedelta(days=1)  # a strategy's call the policy will never allow: asked again then
INSERT_ATTEMPT = (
    "INSERT INTO attempts (campaign_id, account_pk, phone_e164, attempt_no, state, decided_at, "
    "policy_reasons, dialer_id, step) VALUES (?,?,?,?,?,?,?,?,?)"
)
SET_RECORDING = "UPDATE attempts SET recording_path=? WHERE id=?"
TARGET_IN_FLIGHT = "UPDATE targets SET state=?, attempts=?, note='' WHERE campaign_id=? AND account_pk=?"
ADD_FLAG = "INSERT INTO attempt_flags (attempt_id, flag) VALUES (?,?) ON CONFLICT DO NOTHING"
ATTEMPT_COLUMNS = (
    "t.id, t.campaign_id, t.account_pk, t.phone_e164, t.attempt_no, t.decided_at, t.recording_path, "
    "a.account_id"
)
OPEN_ATTEMPTS = (
    f"SELECT {ATTEMPT_COLUMNS} FROM attempts t JOIN accounts a ON a.id=t.account_pk "
    "WHERE t.campaign_id=?1 AND t.state=?2 AND (?3='' OR t.dialer_id=?3) ORDER BY t.id"
)
CLOSED_AMONG = "SELECT id FROM attempts WHERE state=? AND id IN ({marks})"
ATTEMPTS_FOR = (
    "SELECT t.id, a.account_id, t.phone_e164, t.attempt_no, t.state, t.disposition, "
    "t.dial_status, t.cause, t.ivr_stage, t.amd_status, t.digits, t.decided_at, t.ended_at, "
    "t.recording_path, t.note, t.outcome, t.script, o.promised_date FROM attempts t "
    "JOIN accounts a ON a.id=t.account_pk LEFT JOIN outcomes o ON o.attempt_id=t.id "
    "WHERE t.campaign_id=? ORDER BY t.id"
)
CALL_EVENTS = "SELECT at, kind, data FROM call_events WHERE attempt_id=? ORDER BY id"


def attempt_from(r: Row) -> Attempt:
    """An attempt from a row holding ATTEMPT_COLUMNS."""
    return Attempt(
        r["id"],
        r["campaign_id"],
        r["account_pk"],
        r["phone_e164"],
        r["attempt_no"],
        from_db(r["decided_at"]),
        r["recording_path"],
        r["account_id"],
    )


class Attempts:
    """The store's attempts (a part of `SqliteStore`)."""

    _db: Database

    async def claim(
        self,
        target: Target,
        now: datetime,
        decide: Decide,
        recording_for: Callable[[int, datetime], str],
        dialer_id: str,
        history_since: datetime,
        steered: bool = False,
        step: str = "",
    ) -> Attempt | Decision:
        """Decide and, when allowed, write the counted attempt: one transaction.

        `steered`: the campaign runs a strategy, so a refusal sends the account back to it (texts
        may still be allowed) rather than ending it."""
        account = target.account
        # Taken already (by another dialer with the same batch)? Seen on the read side, without
        # waiting for the write lock every machine shares; checked again inside the transaction.
        state = await self._db.fetch_one(TARGET_STATE, (target.campaign_id, account.pk))
        if state is None or state["state"] != TargetState.PENDING.value:
            return Decision(False)
        async with self._db.write() as db:
            row = await fetch_one(db, CLAIMABLE, (account.phone_e164, target.campaign_id, account.pk))
            if row is None or row["state"] != TargetState.PENDING.value:
                return Decision(False)  # another dialer took it, or it changed state
            history = await _history(db, account.phone_e164, history_since)
            opted_out = bool(row["opted_out"])
            decision = decide(account, history, opted_out, await preferences_in(db, account.phone_e164))
            actor = f"dialer:{dialer_id}"
            if not decision.allowed:
                await defer_in(db, target, decision, now, opted_out, actor, steered)
                return decision
            attempt_no = row["attempts"] + 1
            attempt = await _insert_attempt(
                db, target, attempt_no, now, decision, recording_for, dialer_id, step
            )
            await _audit_decided(db, target, attempt, decision, actor)
            return attempt

    async def defer(
        self, target: Target, decision: Decision, now: datetime, actor: str, steered: bool = False
    ) -> None:
        """Hold a target back without an attempt (e.g. its prompts could not be rendered)."""
        async with self._db.write() as db:
            await defer_in(db, target, decision, now, False, actor, steered)

    async def closed_attempts(self, attempt_ids: Iterable[int]) -> set[int]:
        """Which of these attempts have their result stored (any campaign)."""
        ids = sorted(attempt_ids)
        closed: set[int] = set()
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            sql = CLOSED_AMONG.format(marks=",".join("?" * len(chunk)))
            rows = await self._db.fetch_all(sql, (AttemptState.ENDED.value, *chunk))
            closed.update(int(r["id"]) for r in rows)
        return closed

    async def open_attempts(self, campaign_id: int, dialer_id: str = "") -> list[Attempt]:
        """A campaign's attempts without a stored result, placed by `dialer_id` ("": by any)."""
        params = (campaign_id, AttemptState.DECIDED.value, dialer_id)
        rows = await self._db.fetch_all(OPEN_ATTEMPTS, params)
        return [attempt_from(r) for r in rows]

    async def attempts_for(self, campaign_id: int) -> list[dict[str, Any]]:
        """Every attempt of a campaign with its account id, for reports and tests."""
        return [dict(r) for r in await self._db.fetch_all(ATTEMPTS_FOR, (campaign_id,))]

    async def events_for(self, attempt_id: int) -> list[tuple[str, str, dict[str, str]]]:
        rows = await self._db.fetch_all(CALL_EVENTS, (attempt_id,))
        return [(r["at"], r["kind"], json.loads(r["data"])) for r in rows]


async def _history(db: Conn, phone: str, since: datetime) -> list[PastAttempt]:
    params = (phone, to_db(since), Disposition.NOT_PLACED.value)  # no call placed: not a contact
    calls = [past_attempt(r) for r in await fetch_all(db, HISTORY, params)]
    return with_texts(await text_history(db, phone, since), calls)


def with_texts(texts: Sequence[PastMessage], calls: Sequence[PastAttempt]) -> list[PastAttempt]:
    """A number's call history as the policy is given it: its texts too, for the packs that count
    texts with calls (us-ma). The claims and the snapshots (the dry run) both build it here."""
    return [PastAttempt(m.message_id, m.at, 0, None, channel="sms") for m in texts] + list(calls)


def past_attempt(r: Row) -> PastAttempt:
    """An attempt of the policy's history, from a row of HISTORY's columns."""
    return PastAttempt(
        r["id"],
        from_db(r["decided_at"]),
        r["campaign_id"],
        Disposition(r["disposition"]) if r["disposition"] else None,
        r["debt_id"],
        r["cause"],
        r["outcome"] or "",
    )


def reasons(decision: Decision) -> list[dict[str, str]]:
    return [{"rule": r.rule, "detail": r.detail} for r in decision.reasons]


async def defer_in(
    db: Conn,
    target: Target,
    decision: Decision,
    now: datetime,
    opted_out: bool,
    actor: str,
    steered: bool = False,
) -> None:
    note = "; ".join(f"{r.rule}: {r.detail}" for r in decision.reasons)
    channel: str | None = "voice"
    if steered:  # back to the strategy: at the time allowed, or tomorrow (another channel may be)
        state, channel = TargetState.PENDING, None
        next_at = decision.next_allowed_at or now + STEERED_RETRY
    elif opted_out:
        state, next_at = TargetState.OPTED_OUT, now
    elif decision.next_allowed_at is None:
        state, next_at = TargetState.EXHAUSTED, now  # nothing will ever allow it
    else:
        state, next_at = TargetState.PENDING, decision.next_allowed_at
    account = target.account
    await db.execute(
        DEFER_TARGET, (state.value, to_db(next_at), note, channel, target.campaign_id, account.pk)
    )
    record = ContactBlocked(
        account.phone_e164, reasons(decision), to_db_or_none(decision.next_allowed_at), state.value
    )
    event = AuditEvent(record, now, actor, target.campaign_id, None, account.account_id)
    await append_audit(db, [event])


async def add_flags(db: Conn, attempt_id: int, flags: Sequence[str]) -> None:
    if flags:  # most calls have none: no round trip to the database thread then
        await db.executemany(ADD_FLAG, [(attempt_id, f) for f in flags])


async def _audit_decided(db: Conn, target: Target, attempt: Attempt, decision: Decision, actor: str) -> None:
    flags = decided_flags(target.account, decision)
    await add_flags(db, attempt.id, flags)
    record = AttemptDecided(
        attempt.phone_e164,
        attempt.attempt_no,
        target.account.debt_id,
        reasons(decision),
        flags,
        attempt.recording_path,
    )
    keys = (attempt.campaign_id, attempt.id, target.account.account_id)
    await append_audit(db, [AuditEvent(record, attempt.decided_at, actor, *keys)])


async def _insert_attempt(
    db: Conn,
    target: Target,
    attempt_no: int,
    now: datetime,
    decision: Decision,
    recording_for: Callable[[int, datetime], str],
    dialer_id: str,
    step: str = "",
) -> Attempt:
    account = target.account
    params = (
        target.campaign_id,
        account.pk,
        account.phone_e164,
        attempt_no,
        AttemptState.DECIDED.value,
        to_db(now),
        json.dumps(reasons(decision)),
        dialer_id,
        step,
    )
    attempt_id = await insert_id(db, INSERT_ATTEMPT, params)
    recording = recording_for(attempt_id, now)
    await db.execute(SET_RECORDING, (recording, attempt_id))
    await db.execute(
        TARGET_IN_FLIGHT, (TargetState.IN_FLIGHT.value, attempt_no, target.campaign_id, account.pk)
    )
    return Attempt(
        attempt_id,
        target.campaign_id,
        account.pk,
        account.phone_e164,
        attempt_no,
        now,
        recording,
        account.account_id,
    )

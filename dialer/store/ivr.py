"""IVR progress: an answered call's steps, saved as they happen and replaced by its final ones."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dialer.core.models import AttemptState, CallResult, IvrStep
from dialer.store.conn import Conn
from dialer.store.db import Database, fetch_all
from dialer.store.times import from_db, to_db

SET_SCRIPT_IF_OPEN = "UPDATE attempts SET script=? WHERE id=? AND state!=?"
ADD_STEP = "INSERT INTO ivr_steps (attempt_id, seq, at, node, kind, detail) VALUES (?,?,?,?,?,?)"
DROP_STEPS = "DELETE FROM ivr_steps WHERE attempt_id=?"
STEPS = "SELECT at, node, kind, detail FROM ivr_steps WHERE attempt_id=? ORDER BY seq"
SCRIPT = "SELECT script FROM attempts WHERE id=?"
SET_OUTCOME = "UPDATE attempts SET outcome=?, script=? WHERE id=?"
ADD_OUTCOME = (
    "INSERT INTO outcomes (attempt_id, outcome, promised_date, promised_amount_minor, detail, at) "
    "VALUES (?,?,?,?,?,?)"
)


@dataclass(frozen=True, slots=True)
class IvrProgress:
    """An answered call's IVR steps so far (`first_seq`: the number of the first one given)."""

    attempt_id: int
    script: str
    first_seq: int
    steps: tuple[IvrStep, ...]


class IvrSteps:
    """The store's IVR progress (a part of `SqliteStore`)."""

    _db: Database

    async def save_ivr_progress(self, progress: Sequence[IvrProgress]) -> None:
        """IVR steps of calls still in flight, as they happen: a dialer killed mid-call keeps them.

        Provisional: `finish_attempt` replaces them with the call's final steps (and puts those in
        the audit chain). One transaction for every call's new steps.
        """
        async with self._db.write() as db:
            for p in progress:
                still_open = await db.execute(
                    SET_SCRIPT_IF_OPEN, (p.script, p.attempt_id, AttemptState.ENDED.value)
                )
                if not still_open:
                    continue  # ended meanwhile: its final steps are stored
                rows = [_step_row(p.attempt_id, p.first_seq + i, st) for i, st in enumerate(p.steps)]
                await db.executemany(ADD_STEP, rows)

    async def saved_ivr_progress(self, attempt_id: int) -> IvrProgress:
        """What `save_ivr_progress` kept for an attempt (its script and steps so far)."""
        async with self._db.read() as db:
            rows = await fetch_all(db, STEPS, (attempt_id,))
            script = await fetch_all(db, SCRIPT, (attempt_id,))
        steps = tuple(IvrStep(from_db(r["at"]), r["node"], r["kind"], json.loads(r["detail"])) for r in rows)
        return IvrProgress(attempt_id, (script[0]["script"] if script else "") or "", 0, steps)

    async def ivr_steps(self, attempt_id: int) -> list[tuple[str, str, dict[str, Any]]]:
        rows = await self._db.fetch_all(STEPS, (attempt_id,))
        return [(r["node"], r["kind"], json.loads(r["detail"])) for r in rows]


async def store_ivr(db: Conn, attempt_id: int, result: CallResult) -> None:
    """The call's final IVR steps (replacing the provisional ones) and its outcome."""
    ivr = result.ivr
    assert ivr is not None
    await db.execute(SET_OUTCOME, (ivr.outcome or None, ivr.script, attempt_id))
    await db.execute(DROP_STEPS, (attempt_id,))
    await db.executemany(ADD_STEP, [_step_row(attempt_id, i, st) for i, st in enumerate(ivr.steps)])
    if not ivr.outcome:
        return  # cut before the script chose one: no outcome to keep
    detail = json.dumps({"right_party": ivr.right_party}, ensure_ascii=False)
    promised = ivr.promised_date.isoformat() if ivr.promised_date else None
    params = (attempt_id, ivr.outcome, promised, ivr.promised_amount_minor, detail, to_db(result.ended_at))
    await db.execute(ADD_OUTCOME, params)


def _step_row(attempt_id: int, seq: int, step: IvrStep) -> tuple[Any, ...]:
    detail = json.dumps(step.detail, ensure_ascii=False)
    return (attempt_id, seq, to_db(step.at), step.node, step.kind, detail)

"""Call recordings as stored evidence: sealed files, missing ones, and purges past retention."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from dialer.core.models import Attempt
from dialer.store.attempts import ATTEMPT_COLUMNS, attempt_from
from dialer.store.chain import AuditEvent
from dialer.store.chain import append as append_audit
from dialer.store.conn import Conn
from dialer.store.db import Database
from dialer.store.events import RecordingMissing, RecordingPurged, RecordingStored
from dialer.store.evidence import RecordingFacts
from dialer.store.keys import attempt_keys, keys_of
from dialer.store.times import to_db

ADD_RECORDING = (
    "INSERT INTO recordings (attempt_id, path, kind, sha256, bytes, duration_ms, stored_at) "
    "VALUES (?,?,?,?,?,?,?)"
)
UNSEALED = (
    f"SELECT {ATTEMPT_COLUMNS} FROM attempts t JOIN accounts a ON a.id=t.account_pk "
    "WHERE t.campaign_id=?1 AND (?2='' OR t.dialer_id=?2) AND t.state='ended' AND t.answered_at IS NOT NULL "
    "AND NOT EXISTS (SELECT 1 FROM recordings r WHERE r.attempt_id=t.id) "
    "AND NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.attempt_id=t.id "
    "AND e.kind='recording.missing') ORDER BY t.id"
)
PURGEABLE = (
    "SELECT r.attempt_id, r.path, r.sha256 FROM recordings r JOIN attempts t ON t.id=r.attempt_id "
    "WHERE r.purged_at IS NULL AND t.decided_at<? ORDER BY r.attempt_id, r.path"
)
MARK_PURGED = "UPDATE recordings SET purged_at=? WHERE attempt_id=? AND path=?"


class Recordings:
    """The store's recordings (a part of `SqliteStore`)."""

    _db: Database

    async def add_recordings(
        self,
        attempt: Attempt,
        found: Sequence[RecordingFacts],
        now: datetime,
        actor: str,
        answered: bool = True,
    ) -> None:
        """Store a call's sealed recordings, each with a `recording.stored` event; or, for an answered
        call, note that none was found."""
        async with self._db.write() as db:
            events = await store_recordings(db, attempt, found, now, actor, answered)
            await append_audit(db, events)

    async def unsealed(self, campaign_id: int, dialer_id: str = "") -> list[Attempt]:
        """Answered attempts that ended without their recording sealed (a crash in between),
        placed by `dialer_id` ("": by any; a dialer seals only its own: the files are on its host)."""
        rows = await self._db.fetch_all(UNSEALED, (campaign_id, dialer_id))
        return [attempt_from(r) for r in rows]

    async def purgeable(self, called_before: datetime) -> list[tuple[int, str, str]]:
        """(attempt id, path, sha256) of kept recordings of calls decided before `called_before`."""
        rows = await self._db.fetch_all(PURGEABLE, (to_db(called_before),))
        return [(r["attempt_id"], r["path"], r["sha256"]) for r in rows]

    async def mark_purged(
        self, attempt_id: int, path: str, sha256: str, now: datetime, actor: str, reason: str
    ) -> None:
        """The file is gone: say so in the table and the chain (the hash stays)."""
        async with self._db.write() as db:
            await db.execute(MARK_PURGED, (to_db(now), attempt_id, path))
            keys = await attempt_keys(db, attempt_id)
            await append_audit(db, [AuditEvent(RecordingPurged(path, sha256, reason), now, actor, *keys)])


async def store_recordings(
    db: Conn,
    attempt: Attempt,
    found: Sequence[RecordingFacts],
    now: datetime,
    actor: str,
    answered: bool,
) -> list[AuditEvent]:
    """Insert the recordings rows; returns their audit events for the caller to append.

    An answered call without a file is recorded as missing; an unanswered one has nothing to say.
    """
    if not found and not answered:
        return []
    keys = await keys_of(db, attempt)
    if found:
        rows = [(attempt.id, r.path, r.kind, r.sha256, r.bytes, r.duration_ms, to_db(now)) for r in found]
        await db.executemany(ADD_RECORDING, rows)
    events = [
        AuditEvent(
            RecordingStored(r.path, r.kind, r.sha256, r.bytes, r.duration_ms, r.complete), now, actor, *keys
        )
        for r in found
    ]
    if not found:
        missing = RecordingMissing(f"{attempt.recording_path}.wav")
        events.append(AuditEvent(missing, now, actor, *keys))
    return events

"""The store: every SQL statement DueCall runs lives in this module.

SQLite through aiosqlite is the embedded default. The dialer only sees the
`Store` methods, so a PostgreSQL backend (several dialer machines sharing one
campaign) can implement the same methods: `claim` then takes a row lock on the
target and an advisory lock on the phone number instead of SQLite's single
writer, and everything else is plain SQL.

One connection, one asyncio lock: each method is one transaction, so two
coroutines never interleave statements inside each other's transactions.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from dialer.core.errors import StoreError
from dialer.core.flags import decided_flags, ended_flags
from dialer.core.models import (
    Account,
    AccountRecord,
    Attempt,
    AttemptState,
    CallResult,
    Campaign,
    Decision,
    Disposition,
    IvrStep,
    PastAttempt,
    Preferences,
    RejectedRow,
    Target,
    TargetState,
    TargetUpdate,
)
from dialer.core.private_files import create_private, tighten
from dialer.store.chain import AuditEvent
from dialer.store.chain import append as append_audit
from dialer.store.events import call_audit_kind
from dialer.store.evidence import RecordingFacts


def to_db(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_db(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("dialer.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


@dataclass(frozen=True, slots=True)
class ImportCounts:
    inserted: int
    updated: int


@dataclass(frozen=True, slots=True)
class IvrProgress:
    """An answered call's IVR steps so far (`first_seq`: the number of the first one given)."""

    attempt_id: int
    script: str
    first_seq: int
    steps: tuple[IvrStep, ...]


@dataclass(frozen=True, slots=True)
class CampaignStatus:
    campaign: Campaign
    targets_by_state: dict[str, int]
    attempts_by_disposition: dict[str, int]
    open_attempts: int
    next_due: list[tuple[datetime, str, str, str]]  # (at, account id, phone, note)
    outcomes: dict[str, int] = field(default_factory=dict)  # what answered borrowers chose


Decide = Callable[[Account, Sequence[PastAttempt], bool, Preferences], Decision]
_ACCOUNT_COLUMNS = (
    "a.id, a.account_id, a.debt_id, a.name, a.phone_e164, a.time_zones, a.tz_derived, "
    "a.amount_minor, a.currency, a.due_date, a.language"
)


def _account(row: Sequence[Any]) -> Account:
    return Account(
        pk=row[0],
        account_id=row[1],
        debt_id=row[2],
        name=row[3],
        phone_e164=row[4],
        time_zones=tuple(json.loads(row[5])),
        tz_derived=bool(row[6]),
        amount_minor=row[7],
        currency=row[8],
        due_date=date.fromisoformat(row[9]),
        language=row[10],
    )


def _make_private(path: Path) -> None:
    """The database holds borrowers' data: 0600, and SQLite gives its -wal and -shm the same mode.

    Files left by an older version (or by a killed process) are tightened first.
    """
    create_private(path)
    for suffix in ("-wal", "-shm", "-journal"):
        tighten(path.with_name(path.name + suffix))


class Store:
    """SQLite implementation. Open with `await Store.open(path)`."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path, synchronous: str = "FULL") -> Store:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            _make_private(path)
            conn = await aiosqlite.connect(path, isolation_level=None)
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute(f"PRAGMA synchronous={synchronous}")
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute("PRAGMA busy_timeout=10000")
        except Exception as exc:  # sqlite3 errors and OSError alike
            raise StoreError(f"{path}: cannot open the database: {exc}") from exc
        store = cls(conn)
        try:
            await store._migrate(path)
        except BaseException:
            await conn.close()
            raise
        return store

    async def close(self) -> None:
        await self._conn.close()

    @property
    def conn(self) -> aiosqlite.Connection:
        """The connection, for read-side query modules (audit/search.py); writes go through methods."""
        return self._conn

    async def write_audited(self, sql: str, params: Sequence[Any], events: Sequence[AuditEvent]) -> int:
        """One write by a read-side module (audit/users.py) and, if it changed a row, its events:
        one transaction. Returns the number of rows changed."""
        async with self._tx() as db:
            cur = await db.execute(sql, params)
            if cur.rowcount > 0:
                await append_audit(db, events, to_db)
            return int(cur.rowcount)

    async def audit(self, events: Sequence[AuditEvent]) -> None:
        """Append facts to the audit chain in their own transaction."""
        async with self._tx() as db:
            await append_audit(db, events, to_db)

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def _migrate(self, path: Path) -> None:
        async with self._tx() as db:
            version = (await (await db.execute("PRAGMA user_version")).fetchone() or (0,))[0]
            known = _migrations()
            if version > known[-1][0]:
                raise StoreError(f"{path}: schema version {version} is newer than this DueCall")
            for number, sql in known:
                if number > version:
                    for statement in _statements(sql):
                        await db.execute(statement)
                    await db.execute(f"PRAGMA user_version={number}")

    async def instance_id(self) -> str:
        row = await (await self._conn.execute("SELECT value FROM meta WHERE key='instance'")).fetchone()
        if row is None:
            raise StoreError("the database has no instance id (meta table)")
        return str(row[0])

    async def schema_version(self) -> int:
        row = await (await self._conn.execute("PRAGMA user_version")).fetchone()
        return int(row[0]) if row else 0

    # -- accounts ---------------------------------------------------------

    async def start_import(self, file: str, now: datetime) -> int:
        async with self._tx() as db:
            cur = await db.execute("INSERT INTO imports (file, started_at) VALUES (?, ?)", (file, to_db(now)))
            return int(cur.lastrowid or 0)

    async def upsert_accounts(self, records: Sequence[AccountRecord], now: datetime) -> ImportCounts:
        """Insert new accounts, update known ones (keyed by account_id), in one transaction."""
        async with self._tx() as db:
            return await _upsert_accounts(db, records, to_db(now))

    async def add_rejects(self, import_id: int, rejects: Sequence[RejectedRow]) -> None:
        async with self._tx() as db:
            await _add_rejects(db, import_id, rejects)

    async def import_batch(
        self,
        import_id: int,
        batch: int,
        records: Sequence[AccountRecord],
        rejects: Sequence[RejectedRow],
        now: datetime,
        actor: str = "operator",
    ) -> ImportCounts:
        """One batch of an import, all or nothing: its accounts (inserted or updated), its rejects,
        the import's running totals and its `accounts.import_batch` event, in one transaction."""
        async with self._tx() as db:
            counts = await _upsert_accounts(db, records, to_db(now))
            await _add_rejects(db, import_id, rejects)
            rows = len(records) + len(rejects)
            await db.execute(
                "UPDATE imports SET rows=rows+?, inserted=inserted+?, updated=updated+?, rejected=rejected+?"
                " WHERE id=?",
                (rows, counts.inserted, counts.updated, len(rejects), import_id),
            )
            counted = _counts_data(counts, len(rejects))
            data = {"import_id": import_id, "batch": batch, "rows": rows, **counted}
            await append_audit(db, [AuditEvent("accounts.import_batch", now, actor, data)], to_db)
        return counts

    async def finish_import(self, import_id: int, now: datetime, actor: str = "operator") -> None:
        """Every batch is in: `accounts.imported` with the import's totals."""
        async with self._tx() as db:
            data = await _import_totals(db, import_id)
            await append_audit(db, [AuditEvent("accounts.imported", now, actor, data)], to_db)

    async def fail_import(self, import_id: int, reason: str, now: datetime, actor: str = "operator") -> None:
        """The import stopped: `accounts.import_failed` with what its committed batches hold."""
        async with self._tx() as db:
            data = {**await _import_totals(db, import_id), "reason": reason}
            await append_audit(db, [AuditEvent("accounts.import_failed", now, actor, data)], to_db)

    async def rejects(self, import_id: int) -> list[tuple[int, str]]:
        cur = await self._conn.execute(
            "SELECT row_number, reason FROM import_rejects WHERE import_id=? ORDER BY row_number",
            (import_id,),
        )
        return [(r[0], r[1]) for r in await cur.fetchall()]

    async def account(self, account_id: str) -> Account | None:
        cur = await self._conn.execute(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a WHERE a.account_id=?", (account_id,)
        )
        row = await cur.fetchone()
        return _account(row) if row else None

    async def count_accounts(self) -> int:
        row = await (await self._conn.execute("SELECT count(*) FROM accounts")).fetchone()
        return int(row[0]) if row else 0

    async def set_preferences(
        self, phone_e164: str, prefs: Preferences, now: datetime, actor: str = "operator"
    ) -> None:
        """Replace what the consumer said about when they may be called.

        A consent's given time is `now` unless given, or kept from the same window recorded
        before (recording it again must not restart its 7 days, 1006.14(b)(3)(i)).
        """
        inconvenient = json.dumps([[a.strftime("%H:%M"), b.strftime("%H:%M")] for a, b in prefs.inconvenient])
        async with self._tx() as db:
            consents = json.dumps(_consent_rows(await _preferences(db, phone_e164), prefs, now))
            await db.execute(
                "INSERT INTO contact_preferences (phone_e164, inconvenient, consents, updated_at) "
                "VALUES (?,?,?,?) ON CONFLICT (phone_e164) DO UPDATE SET inconvenient=excluded.inconvenient, "
                "consents=excluded.consents, updated_at=excluded.updated_at",
                (phone_e164, inconvenient, consents, to_db(now)),
            )
            data = {
                "phone": phone_e164,
                "inconvenient": json.loads(inconvenient),
                "consents": json.loads(consents),
            }
            await append_audit(db, [AuditEvent("preferences.set", now, actor, data)], to_db)

    async def preferences(self, phone_e164: str) -> Preferences:
        async with self._lock:
            return await _preferences(self._conn, phone_e164)

    async def opt_out(
        self,
        phone_e164: str,
        channel: str,
        now: datetime,
        source: str,
        *,
        actor: str = "",
        attempt_id: int | None = None,
    ) -> None:
        async with self._tx() as db:
            cur = await db.execute(
                "INSERT INTO opt_outs (phone_e164, channel, at, source) VALUES (?,?,?,?) "
                "ON CONFLICT (phone_e164, channel) DO NOTHING",
                (phone_e164, channel, to_db(now), source),
            )
            data = {"phone": phone_e164, "channel": channel, "source": source, "new": cur.rowcount == 1}
            where = await _attempt_keys(db, attempt_id)
            event = AuditEvent("consumer.opted_out", now, actor or source, data, *where)
            await append_audit(db, [event], to_db)

    # -- campaigns --------------------------------------------------------

    async def create_campaign(self, name: str, now: datetime, actor: str = "operator") -> Campaign:
        async with self._tx() as db:
            cur = await db.execute(
                "INSERT INTO campaigns (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (name, to_db(now)),
            )
            if cur.rowcount == 1:
                event = AuditEvent("campaign.created", now, actor, {"name": name}, cur.lastrowid)
                await append_audit(db, [event], to_db)
        found = await self.campaign(name)
        assert found is not None
        return found

    async def campaign(self, name: str) -> Campaign | None:
        cur = await self._conn.execute("SELECT id, name, created_at FROM campaigns WHERE name=?", (name,))
        row = await cur.fetchone()
        return Campaign(row[0], row[1], from_db(row[2])) if row else None

    async def add_targets(
        self, campaign_id: int, now: datetime, account_ids: Sequence[str] | None = None
    ) -> int:
        """Put accounts into the campaign (all of them when no ids are given); returns how many were new."""
        # "WHERE true" lets SQLite parse INSERT ... SELECT ... ON CONFLICT.
        select = "SELECT ?, id, ?, 0, ? FROM accounts WHERE true"
        params: list[Any] = [campaign_id, TargetState.PENDING.value, to_db(now)]
        if account_ids is not None:
            select += f" AND account_id IN ({','.join('?' * len(account_ids))})"
            params += list(account_ids)
        async with self._tx() as db:
            cur = await db.execute(
                "INSERT INTO targets (campaign_id, account_pk, state, attempts, next_at) "
                f"{select} ON CONFLICT DO NOTHING",
                params,
            )
            return cur.rowcount

    async def due_targets(self, campaign_id: int, now: datetime, limit: int) -> list[Target]:
        cur = await self._conn.execute(
            f"SELECT {_ACCOUNT_COLUMNS}, t.attempts, t.next_at FROM targets t "
            "JOIN accounts a ON a.id = t.account_pk "
            "WHERE t.campaign_id=? AND t.state='pending' AND t.next_at<=? "
            "ORDER BY t.next_at LIMIT ?",
            (campaign_id, to_db(now), limit),
        )
        return [Target(campaign_id, _account(row), row[11], from_db(row[12])) for row in await cur.fetchall()]

    async def next_due_at(self, campaign_id: int) -> datetime | None:
        cur = await self._conn.execute(
            "SELECT min(next_at) FROM targets WHERE campaign_id=? AND state='pending'", (campaign_id,)
        )
        row = await cur.fetchone()
        return from_db(row[0]) if row and row[0] else None

    async def count_targets(self, campaign_id: int, states: Iterable[TargetState]) -> int:
        names = [s.value for s in states]
        cur = await self._conn.execute(
            f"SELECT count(*) FROM targets WHERE campaign_id=? AND state IN ({','.join('?' * len(names))})",
            (campaign_id, *names),
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    # -- attempts ---------------------------------------------------------

    async def claim(
        self,
        target: Target,
        now: datetime,
        decide: Decide,
        recording_for: Callable[[int, datetime], str],
        dialer_id: str,
        history_since: datetime,
    ) -> Attempt | Decision:
        """Decide and, when allowed, write the counted attempt: one transaction.

        The policy reads the history inside the same transaction that adds the
        attempt, so no other writer can slip an attempt in between.
        """
        account = target.account
        async with self._tx() as db:
            rows = await db.execute_fetchall(
                "SELECT state, attempts, EXISTS (SELECT 1 FROM opt_outs WHERE phone_e164=? "
                "AND channel='voice') FROM targets WHERE campaign_id=? AND account_pk=?",
                (account.phone_e164, target.campaign_id, account.pk),
            )
            row = next(iter(rows), None)
            if row is None or row[0] != TargetState.PENDING.value:
                return Decision(False)  # another dialer took it, or it changed state
            history = await _history(db, account.phone_e164, history_since)
            opted_out = bool(row[2])
            decision = decide(account, history, opted_out, await _preferences(db, account.phone_e164))
            actor = f"dialer:{dialer_id}"
            if not decision.allowed:
                await _defer(db, target, decision, now, opted_out, actor)
                return decision
            attempt = await _insert_attempt(db, target, row[1] + 1, now, decision, recording_for, dialer_id)
            await _audit_decided(db, target, attempt, decision, actor)
            return attempt

    async def defer(self, target: Target, decision: Decision, now: datetime, actor: str) -> None:
        """Hold a target back without an attempt (e.g. its prompts could not be rendered)."""
        async with self._tx() as db:
            await _defer(db, target, decision, now, False, actor)

    async def finish_attempt(
        self,
        attempt: Attempt,
        result: CallResult,
        update: TargetUpdate,
        actor: str = "dialer",
        recordings: Sequence[RecordingFacts] | None = None,
    ) -> None:
        """Store how the call ended, where its target goes next, and its audit events: one transaction.

        `recordings`: the call's sealed recordings when they were ready (else None: sealed later).
        """
        async with self._tx() as db:
            await db.execute(_FINISH_ATTEMPT, _finish_params(attempt.id, result))
            # A call never placed gives its attempt number back (its row stays, for the trail).
            given_back = 1 if result.disposition is Disposition.NOT_PLACED else 0
            await db.execute(
                "UPDATE targets SET state=?, next_at=?, last_disposition=?, note=?, "
                "attempts=max(attempts-?, 0) WHERE campaign_id=? AND account_pk=?",
                (
                    update.state.value,
                    to_db(update.next_at),
                    result.disposition.value,
                    update.note,
                    given_back,
                    attempt.campaign_id,
                    attempt.account_pk,
                ),
            )
            if result.ivr is not None:
                await _store_ivr(db, attempt.id, result)
            await db.executemany(
                "INSERT INTO call_events (attempt_id, at, kind, data) VALUES (?,?,?,?)",
                [
                    (attempt.id, to_db(at), kind, json.dumps(data, ensure_ascii=False))
                    for at, kind, data in result.events
                ],
            )
            sealed: list[AuditEvent] = []
            if recordings is not None:
                answered = result.answered_at is not None
                sealed = await _store_recordings(db, attempt, recordings, result.ended_at, actor, answered)
            await _audit_ended(db, attempt, result, update, actor, sealed)

    # -- recordings -------------------------------------------------------

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
        async with self._tx() as db:
            events = await _store_recordings(db, attempt, found, now, actor, answered)
            await append_audit(db, events, to_db)

    async def unsealed(self, campaign_id: int) -> list[Attempt]:
        """Answered attempts that ended without their recording sealed (a crash in between)."""
        cur = await self._conn.execute(
            f"SELECT {_ATTEMPT_COLUMNS} FROM attempts t JOIN accounts a ON a.id=t.account_pk "
            "WHERE t.campaign_id=? AND t.state='ended' AND t.answered_at IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM recordings r WHERE r.attempt_id=t.id) "
            "AND NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.attempt_id=t.id "
            "AND e.kind='recording.missing') ORDER BY t.id",
            (campaign_id,),
        )
        return [_attempt(r) for r in await cur.fetchall()]

    async def purgeable(self, called_before: datetime) -> list[tuple[int, str, str]]:
        """(attempt id, path, sha256) of kept recordings of calls decided before `called_before`."""
        rows = await self._conn.execute_fetchall(
            "SELECT r.attempt_id, r.path, r.sha256 FROM recordings r JOIN attempts t ON t.id=r.attempt_id "
            "WHERE r.purged_at IS NULL AND t.decided_at<? ORDER BY r.attempt_id, r.path",
            (to_db(called_before),),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def mark_purged(
        self, attempt_id: int, path: str, sha256: str, now: datetime, actor: str, reason: str
    ) -> None:
        """The file is gone: say so in the table and the chain (the hash stays)."""
        async with self._tx() as db:
            await db.execute(
                "UPDATE recordings SET purged_at=? WHERE attempt_id=? AND path=?",
                (to_db(now), attempt_id, path),
            )
            keys = await _attempt_keys(db, attempt_id)
            data = {"path": path, "sha256": sha256, "reason": reason}
            await append_audit(db, [AuditEvent("recording.purged", now, actor, data, *keys)], to_db)

    async def config_hashes(self) -> dict[str, str]:
        """The latest recorded SHA-256 of every configuration file and script the chain knows."""
        rows = await self._conn.execute_fetchall(
            "SELECT data FROM audit_events WHERE kind='config.changed' ORDER BY seq"
        )
        latest: dict[str, str] = {}
        for (data,) in rows:
            loaded = json.loads(data)
            latest[loaded["path"]] = loaded["sha256"]
        return latest

    async def closed_attempts(self, attempt_ids: Iterable[int]) -> set[int]:
        """Which of these attempts have their result stored (any campaign)."""
        ids = sorted(attempt_ids)
        closed: set[int] = set()
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            rows = await self._conn.execute_fetchall(
                f"SELECT id FROM attempts WHERE state=? AND id IN ({','.join('?' * len(chunk))})",
                (AttemptState.ENDED.value, *chunk),
            )
            closed.update(int(r[0]) for r in rows)
        return closed

    async def open_attempts(self, campaign_id: int) -> list[Attempt]:
        cur = await self._conn.execute(
            f"SELECT {_ATTEMPT_COLUMNS} FROM attempts t JOIN accounts a ON a.id=t.account_pk "
            "WHERE t.campaign_id=? AND t.state!=? ORDER BY t.id",
            (campaign_id, AttemptState.ENDED.value),
        )
        return [_attempt(r) for r in await cur.fetchall()]

    async def attempts_for(self, campaign_id: int) -> list[dict[str, Any]]:
        """Every attempt of a campaign with its account id, for reports and tests."""
        cur = await self._conn.execute(
            "SELECT t.id, a.account_id, t.phone_e164, t.attempt_no, t.state, t.disposition, "
            "t.dial_status, t.cause, t.ivr_stage, t.amd_status, t.digits, t.decided_at, t.ended_at, "
            "t.recording_path, t.note, t.outcome, t.script, o.promised_date FROM attempts t "
            "JOIN accounts a ON a.id=t.account_pk LEFT JOIN outcomes o ON o.attempt_id=t.id "
            "WHERE t.campaign_id=? ORDER BY t.id",
            (campaign_id,),
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]

    async def save_ivr_progress(self, progress: Sequence[IvrProgress]) -> None:
        """IVR steps of calls still in flight, as they happen: a dialer killed mid-call keeps them.

        Provisional: `finish_attempt` replaces them with the call's final steps (and puts those in
        the audit chain). One transaction for every call's new steps.
        """
        async with self._tx() as db:
            for p in progress:
                cur = await db.execute(
                    "UPDATE attempts SET script=? WHERE id=? AND state!=?",
                    (p.script, p.attempt_id, AttemptState.ENDED.value),
                )
                if cur.rowcount == 0:
                    continue  # ended meanwhile: its final steps are stored
                await db.executemany(
                    "INSERT INTO ivr_steps (attempt_id, seq, at, node, kind, detail) VALUES (?,?,?,?,?,?)",
                    [_step_row(p.attempt_id, p.first_seq + i, st) for i, st in enumerate(p.steps)],
                )

    async def saved_ivr_progress(self, attempt_id: int) -> IvrProgress:
        """What `save_ivr_progress` kept for an attempt (its script and steps so far)."""
        rows = await self._conn.execute_fetchall(
            "SELECT at, node, kind, detail FROM ivr_steps WHERE attempt_id=? ORDER BY seq", (attempt_id,)
        )
        script = await self._conn.execute_fetchall("SELECT script FROM attempts WHERE id=?", (attempt_id,))
        steps = tuple(IvrStep(from_db(r[0]), r[1], r[2], json.loads(r[3])) for r in rows)
        return IvrProgress(attempt_id, next(iter(script), ("",))[0] or "", 0, steps)

    async def ivr_steps(self, attempt_id: int) -> list[tuple[str, str, dict[str, Any]]]:
        rows = await self._conn.execute_fetchall(
            "SELECT node, kind, detail FROM ivr_steps WHERE attempt_id=? ORDER BY seq", (attempt_id,)
        )
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    async def opted_out(self, phone_e164: str) -> set[str]:
        rows = await self._conn.execute_fetchall(
            "SELECT channel FROM opt_outs WHERE phone_e164=?", (phone_e164,)
        )
        return {r[0] for r in rows}

    async def events_for(self, attempt_id: int) -> list[tuple[str, str, dict[str, str]]]:
        cur = await self._conn.execute(
            "SELECT at, kind, data FROM call_events WHERE attempt_id=? ORDER BY id", (attempt_id,)
        )
        return [(r[0], r[1], json.loads(r[2])) for r in await cur.fetchall()]

    async def status(self, campaign: Campaign, upcoming: int = 10) -> CampaignStatus:
        by_state = await self._counts(
            "SELECT state, count(*) FROM targets WHERE campaign_id=? GROUP BY state", campaign.id
        )
        by_disp = await self._counts(
            "SELECT coalesce(disposition, 'open'), count(*) FROM attempts WHERE campaign_id=? GROUP BY 1",
            campaign.id,
        )
        cur = await self._conn.execute(
            "SELECT t.next_at, a.account_id, a.phone_e164, t.note FROM targets t "
            "JOIN accounts a ON a.id=t.account_pk WHERE t.campaign_id=? AND t.state='pending' "
            "ORDER BY t.next_at LIMIT ?",
            (campaign.id, upcoming),
        )
        nxt = [(from_db(r[0]), r[1], r[2], r[3]) for r in await cur.fetchall()]
        outcomes = await self._counts(
            "SELECT outcome, count(*) FROM attempts WHERE campaign_id=? AND outcome IS NOT NULL GROUP BY 1",
            campaign.id,
        )
        return CampaignStatus(campaign, by_state, by_disp, by_disp.get("open", 0), nxt, outcomes)

    async def _counts(self, sql: str, campaign_id: int) -> dict[str, int]:
        cur = await self._conn.execute(sql, (campaign_id,))
        return {r[0]: r[1] for r in await cur.fetchall()}


def _statements(script: str) -> list[str]:
    """Split a migration into statements (no semicolons inside our literals)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


async def _attempt_keys(db: aiosqlite.Connection, attempt_id: int | None) -> tuple[Any, Any, Any]:
    """(campaign id, attempt id, account id) of an attempt, for its audit events."""
    if attempt_id is None:
        return None, None, None
    rows = await db.execute_fetchall(
        "SELECT t.campaign_id, a.account_id FROM attempts t JOIN accounts a ON a.id=t.account_pk "
        "WHERE t.id=?",
        (attempt_id,),
    )
    row = next(iter(rows), None)
    return (row[0], attempt_id, row[1]) if row else (None, None, None)


async def _upsert_accounts(
    db: aiosqlite.Connection, records: Sequence[AccountRecord], stamp: str
) -> ImportCounts:
    if not records:
        return ImportCounts(0, 0)
    ids = [r.account_id for r in records]
    known = await _existing_ids(db, ids)
    await db.executemany(_UPSERT_ACCOUNT, [_account_params(r, stamp) for r in records])
    updated = sum(1 for i in ids if i in known)
    return ImportCounts(inserted=len(ids) - updated, updated=updated)


async def _add_rejects(db: aiosqlite.Connection, import_id: int, rejects: Sequence[RejectedRow]) -> None:
    await db.executemany(
        "INSERT INTO import_rejects (import_id, row_number, reason, raw) VALUES (?,?,?,?)",
        [(import_id, r.row_number, r.reason, r.raw) for r in rejects],
    )


def _counts_data(counts: ImportCounts, rejected: int) -> dict[str, int]:
    return {"inserted": counts.inserted, "updated": counts.updated, "rejected": rejected}


async def _import_totals(db: aiosqlite.Connection, import_id: int) -> dict[str, Any]:
    found = await db.execute_fetchall(
        "SELECT file, rows, inserted, updated, rejected FROM imports WHERE id=?", (import_id,)
    )
    file, rows, inserted, updated, rejected = next(iter(found))
    counts = _counts_data(ImportCounts(inserted, updated), rejected)
    return {"import_id": import_id, "file": file, "rows": rows, **counts}


async def _existing_ids(db: aiosqlite.Connection, ids: Sequence[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        cur = await db.execute(
            f"SELECT account_id FROM accounts WHERE account_id IN ({','.join('?' * len(chunk))})", chunk
        )
        known.update(r[0] for r in await cur.fetchall())
    return known


_UPSERT_ACCOUNT = """
INSERT INTO accounts (account_id, debt_id, name, phone_e164, region, time_zones, tz_derived,
                      amount_minor, currency, due_date, language, created_at, updated_at)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (account_id) DO UPDATE SET
    debt_id=excluded.debt_id, name=excluded.name, phone_e164=excluded.phone_e164,
    region=excluded.region, time_zones=excluded.time_zones, tz_derived=excluded.tz_derived,
    amount_minor=excluded.amount_minor, currency=excluded.currency, due_date=excluded.due_date,
    language=excluded.language, updated_at=excluded.updated_at
"""


def _account_params(r: AccountRecord, stamp: str) -> tuple[Any, ...]:
    return (
        r.account_id,
        r.debt_id,
        r.name,
        r.phone_e164,
        r.region,
        json.dumps(list(r.time_zones)),
        int(r.tz_derived),
        r.amount_minor,
        r.currency,
        r.due_date.isoformat(),
        r.language,
        stamp,
        stamp,
    )


async def _history(db: aiosqlite.Connection, phone: str, since: datetime) -> list[PastAttempt]:
    rows = await db.execute_fetchall(
        "SELECT t.id, t.decided_at, t.campaign_id, t.disposition, a.debt_id, t.cause, t.outcome "
        "FROM attempts t JOIN accounts a ON a.id = t.account_pk "
        "WHERE t.phone_e164=? AND t.decided_at>=? AND coalesce(t.disposition, '')!=? "
        "ORDER BY t.decided_at",
        (phone, to_db(since), Disposition.NOT_PLACED.value),  # no call placed: not a contact
    )
    return [
        PastAttempt(r[0], from_db(r[1]), r[2], Disposition(r[3]) if r[3] else None, r[4], r[5], r[6] or "")
        for r in rows
    ]


async def _preferences(db: aiosqlite.Connection, phone: str) -> Preferences:
    rows = await db.execute_fetchall(
        "SELECT inconvenient, consents FROM contact_preferences WHERE phone_e164=?", (phone,)
    )
    row = next(iter(rows), None)
    if row is None:
        return Preferences()
    inconvenient = tuple((time.fromisoformat(a), time.fromisoformat(b)) for a, b in json.loads(row[0]))
    stored = json.loads(row[1])  # [from, to] (before given times were kept) or [from, to, given]
    consents = tuple((from_db(c[0]), from_db(c[1])) for c in stored)
    given = tuple(from_db(c[2]) if len(c) > 2 and c[2] else None for c in stored)
    return Preferences(inconvenient, consents, given)


def _consent_rows(before: Preferences, prefs: Preferences, now: datetime) -> list[list[str]]:
    known = {window: before.given_at(i) for i, window in enumerate(before.consents)}
    rows = []
    for i, (start, end) in enumerate(prefs.consents):
        given = prefs.given_at(i)
        if given is None:  # a window kept from before keeps its time, even "not recorded"
            given = known.get((start, end), now)
        rows.append([to_db(start), to_db(end), to_db(given) if given else ""])
    return rows


async def _defer(
    db: aiosqlite.Connection, target: Target, decision: Decision, now: datetime, opted_out: bool, actor: str
) -> None:
    note = "; ".join(f"{r.rule}: {r.detail}" for r in decision.reasons)
    if opted_out:
        state, next_at = TargetState.OPTED_OUT, now
    elif decision.next_allowed_at is None:
        state, next_at = TargetState.EXHAUSTED, now  # nothing will ever allow it
    else:
        state, next_at = TargetState.PENDING, decision.next_allowed_at
    await db.execute(
        "UPDATE targets SET state=?, next_at=?, note=? WHERE campaign_id=? AND account_pk=?",
        (state.value, to_db(next_at), note, target.campaign_id, target.account.pk),
    )
    data = {
        "phone": target.account.phone_e164,
        "reasons": _reasons(decision),
        "next_allowed_at": to_db(decision.next_allowed_at) if decision.next_allowed_at else None,
        "target_state": state.value,
    }
    event = AuditEvent(
        "contact.blocked", now, actor, data, target.campaign_id, None, target.account.account_id
    )
    await append_audit(db, [event], to_db)


def _reasons(decision: Decision) -> list[dict[str, str]]:
    return [{"rule": r.rule, "detail": r.detail} for r in decision.reasons]


async def _audit_decided(
    db: aiosqlite.Connection, target: Target, attempt: Attempt, decision: Decision, actor: str
) -> None:
    flags = decided_flags(target.account, decision)
    await _add_flags(db, attempt.id, flags)
    data = {
        "phone": attempt.phone_e164,
        "attempt_no": attempt.attempt_no,
        "debt_id": target.account.debt_id,
        "reasons": _reasons(decision),
        "flags": flags,
        "recording": attempt.recording_path,
    }
    event = AuditEvent(
        "attempt.decided",
        attempt.decided_at,
        actor,
        data,
        attempt.campaign_id,
        attempt.id,
        target.account.account_id,
    )
    await append_audit(db, [event], to_db)


async def _insert_attempt(
    db: aiosqlite.Connection,
    target: Target,
    attempt_no: int,
    now: datetime,
    decision: Decision,
    recording_for: Callable[[int, datetime], str],
    dialer_id: str,
) -> Attempt:
    reasons = json.dumps([{"rule": r.rule, "detail": r.detail} for r in decision.reasons])
    cur = await db.execute(
        "INSERT INTO attempts (campaign_id, account_pk, phone_e164, attempt_no, state, decided_at, "
        "policy_reasons, dialer_id) VALUES (?,?,?,?,?,?,?,?)",
        (
            target.campaign_id,
            target.account.pk,
            target.account.phone_e164,
            attempt_no,
            AttemptState.DECIDED.value,
            to_db(now),
            reasons,
            dialer_id,
        ),
    )
    attempt_id = int(cur.lastrowid or 0)
    recording = recording_for(attempt_id, now)
    await db.execute("UPDATE attempts SET recording_path=? WHERE id=?", (recording, attempt_id))
    await db.execute(
        "UPDATE targets SET state=?, attempts=?, note='' WHERE campaign_id=? AND account_pk=?",
        (TargetState.IN_FLIGHT.value, attempt_no, target.campaign_id, target.account.pk),
    )
    return Attempt(
        attempt_id,
        target.campaign_id,
        target.account.pk,
        target.account.phone_e164,
        attempt_no,
        now,
        recording,
        target.account.account_id,
    )


_ATTEMPT_COLUMNS = (
    "t.id, t.campaign_id, t.account_pk, t.phone_e164, t.attempt_no, t.decided_at, t.recording_path, "
    "a.account_id"
)


def _attempt(r: Sequence[Any]) -> Attempt:
    return Attempt(r[0], r[1], r[2], r[3], r[4], from_db(r[5]), r[6], r[7])


async def _store_ivr(db: aiosqlite.Connection, attempt_id: int, result: CallResult) -> None:
    ivr = result.ivr
    assert ivr is not None
    await db.execute(
        "UPDATE attempts SET outcome=?, script=? WHERE id=?", (ivr.outcome or None, ivr.script, attempt_id)
    )
    await db.execute("DELETE FROM ivr_steps WHERE attempt_id=?", (attempt_id,))  # the provisional ones
    await db.executemany(
        "INSERT INTO ivr_steps (attempt_id, seq, at, node, kind, detail) VALUES (?,?,?,?,?,?)",
        [_step_row(attempt_id, i, st) for i, st in enumerate(ivr.steps)],
    )
    if not ivr.outcome:
        return  # cut before the script chose one: no outcome to keep
    detail = json.dumps({"right_party": ivr.right_party}, ensure_ascii=False)
    await db.execute(
        "INSERT INTO outcomes (attempt_id, outcome, promised_date, promised_amount_minor, detail, at) "
        "VALUES (?,?,?,?,?,?)",
        (
            attempt_id,
            ivr.outcome,
            ivr.promised_date.isoformat() if ivr.promised_date else None,
            ivr.promised_amount_minor,
            detail,
            to_db(result.ended_at),
        ),
    )


def _step_row(attempt_id: int, seq: int, step: IvrStep) -> tuple[Any, ...]:
    detail = json.dumps(step.detail, ensure_ascii=False)
    return (attempt_id, seq, to_db(step.at), step.node, step.kind, detail)


async def _add_flags(db: aiosqlite.Connection, attempt_id: int, flags: Sequence[str]) -> None:
    if flags:  # most calls have none: no round trip to the database thread then
        await db.executemany(
            "INSERT OR IGNORE INTO attempt_flags (attempt_id, flag) VALUES (?,?)",
            [(attempt_id, f) for f in flags],
        )


async def _keys(db: aiosqlite.Connection, attempt: Attempt) -> tuple[Any, Any, Any]:
    if attempt.account_id:
        return attempt.campaign_id, attempt.id, attempt.account_id
    return await _attempt_keys(db, attempt.id)


async def _store_recordings(
    db: aiosqlite.Connection,
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
    keys = await _keys(db, attempt)
    if found:
        await db.executemany(
            "INSERT INTO recordings (attempt_id, path, kind, sha256, bytes, duration_ms, stored_at) "
            "VALUES (?,?,?,?,?,?,?)",
            [(attempt.id, r.path, r.kind, r.sha256, r.bytes, r.duration_ms, to_db(now)) for r in found],
        )
    events = [
        AuditEvent(
            "recording.stored",
            now,
            actor,
            {
                "path": r.path,
                "kind": r.kind,
                "sha256": r.sha256,
                "bytes": r.bytes,
                "duration_ms": r.duration_ms,
                "complete": r.complete,
            },
            *keys,
        )
        for r in found
    ]
    if not found:
        data = {"path": f"{attempt.recording_path}.wav"}
        events.append(AuditEvent("recording.missing", now, actor, data, *keys))
    return events


async def _audit_ended(
    db: aiosqlite.Connection,
    attempt: Attempt,
    result: CallResult,
    update: TargetUpdate,
    actor: str,
    sealed: Sequence[AuditEvent] = (),
) -> None:
    """The call's events, its end, and (`sealed`) its recordings: appended in one batch."""
    flags = ended_flags(result)
    await _add_flags(db, attempt.id, flags)
    _, _, account_id = await _keys(db, attempt)

    def event(kind: str, at: datetime, who: str, data: dict[str, Any]) -> AuditEvent:
        return AuditEvent(kind, at, who, data, attempt.campaign_id, attempt.id, account_id)

    timeline = [event(call_audit_kind(kind), at, actor, dict(data)) for at, kind, data in result.events]
    ivr = result.ivr
    if ivr is not None:
        timeline += [
            event(f"ivr.{st.kind}", st.at, "ivr", {"node": st.node, **st.detail}) for st in ivr.steps
        ]
    timeline.sort(key=lambda e: e.at)  # stable: same-time events keep their order
    if ivr is not None and ivr.outcome:
        outcome = {
            "outcome": ivr.outcome,
            "script": ivr.script,
            "promised_date": ivr.promised_date.isoformat() if ivr.promised_date else None,
            "promised_amount_minor": ivr.promised_amount_minor,
            "right_party": ivr.right_party,
        }
        timeline.append(event("call.outcome", result.ended_at, "ivr", outcome))
    ended = {
        "disposition": result.disposition.value,
        "dial_status": result.dial_status,
        "cause": result.cause,
        "amd_status": result.amd_status,
        "digits": result.digits,
        "note": result.note,
        "counted": result.disposition is not Disposition.NOT_PLACED,  # False: no call was placed
        "answered_at": to_db(result.answered_at) if result.answered_at else None,
        "next_state": update.state.value,
        "next_at": to_db(update.next_at),
        "flags": flags,
    }
    timeline.append(event("call.ended", result.ended_at, actor, ended))
    await append_audit(db, [*timeline, *sealed], to_db)


_FINISH_ATTEMPT = """
UPDATE attempts SET state='ended', ended_at=?, answered_at=?, disposition=?, dial_status=?,
    cause=?, ivr_stage=?, amd_status=?, digits=?, note=?
WHERE id=?
"""


def _finish_params(attempt_id: int, r: CallResult) -> tuple[Any, ...]:
    return (
        to_db(r.ended_at),
        to_db(r.answered_at) if r.answered_at else None,
        r.disposition.value,
        r.dial_status,
        r.cause,
        r.ivr_stage,
        r.amd_status,
        r.digits,
        r.note,
        attempt_id,
    )

"""The audit trail's hash chain: how an event is written down and how a link is checked.

Each event's hash is SHA-256 over the previous event's hash and the event's own
fields, so editing, deleting or reordering any stored event breaks its link and
every later one. Appending happens inside the caller's write transaction (the
store's one write path), so an event is written exactly when the fact it records is.

The chain alone cannot show that its newest events were cut off; `duecall audit
verify` prints the head (sequence number and hash) for the operator to keep
elsewhere, and checks any head recorded earlier (docs/audit.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dialer.store.conn import Conn, Row
from dialer.store.db import fetch_one
from dialer.store.events import Record
from dialer.store.times import to_db

GENESIS = "0" * 64
_HEADER = json.JSONEncoder(ensure_ascii=False)  # built once: json.dumps with options builds one per call

_INSERT = (
    "INSERT INTO audit_events (seq, at, kind, actor, campaign_id, attempt_id, account_id, data, "
    "prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
HEAD = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"
COLUMNS = "seq, at, kind, actor, campaign_id, attempt_id, account_id, data, prev_hash, hash"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One fact for the chain: its typed record (kind and data), when it happened (UTC), who did it
    and what it is about."""

    record: Record
    at: datetime
    actor: str
    campaign_id: int | None = None
    attempt_id: int | None = None
    account_id: str | None = None

    @property
    def kind(self) -> str:
        return self.record.event_kind()

    @property
    def data(self) -> dict[str, Any]:
        return self.record.data()


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the chain holds it."""

    seq: int
    at: str
    kind: str
    actor: str
    campaign_id: int | None
    attempt_id: int | None
    account_id: str | None
    data: str  # canonical JSON text, exactly as hashed
    prev_hash: str
    hash: str

    @classmethod
    def from_row(cls, row: Row | tuple[Any, ...]) -> StoredEvent:
        """From a row of `COLUMNS`: by column name when it has names (a store's row), else in order
        (a plain tuple)."""
        if not isinstance(row, tuple):
            return cls(**{name: row[name] for name in row.keys()})  # noqa: SIM118 (a Row is no dict)
        return cls(*row)

    def payload(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.data)
        return loaded


@dataclass(frozen=True, slots=True)
class BrokenLink:
    seq: int
    why: str

    def __str__(self) -> str:
        return f"event {self.seq}: {self.why}"


def canonical(data: Mapping[str, Any]) -> str:
    """The one JSON text of `data` that is hashed and stored."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def link_hash(
    prev_hash: str,
    seq: int,
    at: str,
    kind: str,
    actor: str,
    campaign_id: int | None,
    attempt_id: int | None,
    account_id: str | None,
    data: str,
) -> str:
    # The header is JSON so no field value can be mistaken for a boundary between fields.
    header = _HEADER.encode([seq, at, kind, actor, campaign_id, attempt_id, account_id])
    return hashlib.sha256(f"{prev_hash}\n{header}\n{data}".encode()).hexdigest()


def expected_hash(event: StoredEvent) -> str:
    return link_hash(
        event.prev_hash,
        event.seq,
        event.at,
        event.kind,
        event.actor,
        event.campaign_id,
        event.attempt_id,
        event.account_id,
        event.data,
    )


def check_link(event: StoredEvent, seq: int, prev_hash: str) -> BrokenLink | None:
    """Is `event` the `seq`th event, following `prev_hash`, with its own hash right?"""
    if event.seq != seq:
        return BrokenLink(seq, f"missing: the next stored event is {event.seq}")
    if event.prev_hash != prev_hash:
        return BrokenLink(seq, "does not follow the event before it (previous hash differs)")
    if expected_hash(event) != event.hash:
        return BrokenLink(seq, f"its content changed after it was written ({event.kind} at {event.at})")
    return None


def first_break(
    events: Iterable[StoredEvent], seq: int = 0, prev: str = GENESIS
) -> tuple[int, str, BrokenLink | None]:
    """Walk the chain after event `seq` (whose hash is `prev`; 0 and GENESIS: from the start).

    Returns (the last good seq, its hash, the first broken link or None).
    """
    for event in events:
        broken = check_link(event, seq + 1, prev)
        if broken is not None:
            return seq, prev, broken
        seq, prev = event.seq, event.hash
    return seq, prev, None


async def append(db: Conn, events: Sequence[AuditEvent]) -> None:
    """Append `events` after the current head. Call inside the store's write transaction."""
    if not events:
        return
    head = await fetch_one(db, HEAD)
    seq, prev = (int(head["seq"]), str(head["hash"])) if head else (0, GENESIS)
    params = []
    for e in events:
        seq += 1
        at, kind, data = to_db(e.at), e.kind, canonical(e.data)
        digest = link_hash(prev, seq, at, kind, e.actor, e.campaign_id, e.attempt_id, e.account_id, data)
        params.append((seq, at, kind, e.actor, e.campaign_id, e.attempt_id, e.account_id, data, prev, digest))
        prev = digest
    await db.executemany(_INSERT, params)

"""The audit trail's figures: counters over the events appended since the dialer started.

Each refresh reads only the new events, a range on the chain's `seq` (its primary key), in chunks
of CHUNK, at most MAX_CHUNKS a refresh: the cost does not grow with the database, and no read holds
the store's one read connection for long."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dialer.core.models import Disposition
from dialer.core.vocab import MessageState, RuleId
from dialer.store import Reads

CHUNK = 5000  # audit events per read: each read stays short (the store has one read connection)
MAX_CHUNKS = 20  # per refresh; the rest waits for the next one
OPEN_CALLS = 10_000  # calls whose last IVR step is remembered (to tell a spoken reply's reject)
OTHER = "other"  # a label value outside the vocabulary (an older or newer DueCall's)
KINDS = ("call.ended", "contact.blocked", "message.refused", "message.queued", "message.state")
IVR_KINDS = ("ivr.speech", "ivr.confirm", "ivr.no_match", "ivr.key", "ivr.no_input")
_HEAD = "SELECT coalesce(max(seq), 0) AS seq FROM audit_events"
# `kind || ''`: walk the new rows by seq (the primary key), never the whole kind index (SQLite's
# `+kind`, in SQL PostgreSQL takes too).
_EVENTS = (
    "SELECT seq, kind, attempt_id, data FROM audit_events WHERE seq > ? AND seq <= ? "
    f"AND kind || '' IN ({', '.join('?' * (len(KINDS) + len(IVR_KINDS)))}) ORDER BY seq LIMIT ?"
)


@dataclass
class TrailCounts:
    """Counters over the audit events appended since `start` (the chain's head at start-up)."""

    cursor: int = 0
    attempts: Counter[str] = field(default_factory=Counter)  # disposition
    texts: Counter[str] = field(default_factory=Counter)  # state reached
    refusals: Counter[tuple[str, str]] = field(default_factory=Counter)  # (channel, rule)
    speech_rejects: Counter[str] = field(default_factory=Counter)  # why
    _last_ivr: dict[int, str] = field(default_factory=dict)  # attempt id -> its last IVR step's kind

    def take(self, kind: str, attempt_id: int | None, data: dict[str, Any]) -> None:
        """Count one event."""
        if kind.startswith("ivr."):
            self._ivr_step(kind, attempt_id)
        elif kind == "call.ended":
            self.attempts[_known(Disposition, data.get("disposition"))] += 1
            self._last_ivr.pop(attempt_id or 0, None)
        elif kind == "message.queued":
            self.texts[MessageState.QUEUED.value] += 1
        elif kind == "message.state":
            self.texts[_known(MessageState, data.get("state"))] += 1
        else:  # contact.blocked (a call), message.refused (a text)
            channel = "sms" if kind == "message.refused" else "voice"
            for rule in _blocking_rules(data.get("reasons")):
                self.refusals[channel, rule] += 1

    def _ivr_step(self, kind: str, attempt_id: int | None) -> None:
        """A spoken reply the IVR did not take: no_match right after the words it heard (no
        phrase, too unsure) or after the borrower did not confirm them."""
        if attempt_id is None:
            return
        before = self._last_ivr.pop(attempt_id, "")
        if kind == "ivr.no_match" and before in ("ivr.speech", "ivr.confirm"):
            self.speech_rejects["unmatched" if before == "ivr.speech" else "not_confirmed"] += 1
        if len(self._last_ivr) >= OPEN_CALLS:  # calls whose end never came (a crash): forget the oldest
            self._last_ivr.pop(next(iter(self._last_ivr)))
        self._last_ivr[attempt_id] = kind

    async def start(self, store: Reads) -> None:
        self.cursor = await _head(store)

    async def refresh(self, store: Reads) -> None:
        """Count the events appended since the last read (at most MAX_CHUNKS * CHUNK of them)."""
        head = await _head(store)  # every seq up to it is committed: the store has one writer
        for _ in range(MAX_CHUNKS):
            rows = await store.fetch_all(_EVENTS, (self.cursor, head, *KINDS, *IVR_KINDS, CHUNK))
            for row in rows:
                self.take(row["kind"], row["attempt_id"], _data(row["data"]))
            self.cursor = rows[-1]["seq"] if len(rows) == CHUNK else head
            if self.cursor >= head:
                return


async def _head(store: Reads) -> int:
    row = await store.fetch_one(_HEAD)
    return int(row["seq"]) if row is not None else 0


def _data(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _known(vocabulary: Any, value: object) -> str:
    """The value if the vocabulary has it, else "other": labels stay few whatever the rows say."""
    known = isinstance(value, str) and value in {m.value for m in vocabulary}
    return str(value) if known else OTHER


def _blocking_rules(reasons: object) -> Iterable[str]:
    """The rules that refused (not those that only informed, such as consent)."""
    for reason in reasons if isinstance(reasons, list) else ():
        if not isinstance(reason, dict):
            continue  # not a reason at all
        rule = reason.get("rule")
        try:
            if RuleId(str(rule)).blocking:
                yield str(rule)
        except ValueError:
            yield OTHER

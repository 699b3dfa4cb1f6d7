"""What consumers told us: when they may be called (preferences) and that they may not (opt-outs)."""

from __future__ import annotations

import json
from datetime import datetime, time

from dialer.core.messages import PastMessage
from dialer.core.models import Preferences
from dialer.core.vocab import MessageState
from dialer.store.chain import AuditEvent
from dialer.store.chain import append as append_audit
from dialer.store.conn import Conn
from dialer.store.db import Database, Row, fetch_all, fetch_one
from dialer.store.events import OptedOut, PreferencesSet
from dialer.store.keys import attempt_keys
from dialer.store.times import from_db, to_db

PREFERENCES = "SELECT inconvenient, consents FROM contact_preferences WHERE phone_e164=?"
SET_PREFERENCES = (
    "INSERT INTO contact_preferences (phone_e164, inconvenient, consents, updated_at) VALUES (?,?,?,?) "
    "ON CONFLICT (phone_e164) DO UPDATE SET inconvenient=excluded.inconvenient, "
    "consents=excluded.consents, updated_at=excluded.updated_at"
)
OPT_OUT = (
    "INSERT INTO opt_outs (phone_e164, channel, at, source) VALUES (?,?,?,?) "
    "ON CONFLICT (phone_e164, channel) DO NOTHING"
)
OPTED_OUT = "SELECT channel FROM opt_outs WHERE phone_e164=?"
# A number's texts that may have reached the carrier: the SMS caps count them, and us-ma's calls.
TEXT_HISTORY = (
    "SELECT id, decided_at, state FROM messages WHERE phone_e164=? AND decided_at>=? AND state!=? "
    "ORDER BY decided_at"
)


class Contacts:
    """The store's preferences and opt-outs (a part of `SqliteStore`)."""

    _db: Database

    async def set_preferences(
        self, phone_e164: str, prefs: Preferences, now: datetime, actor: str = "operator"
    ) -> None:
        """Replace what the consumer said about when they may be called.

        A consent's given time is `now` unless given, or kept from the same window recorded
        before (recording it again must not restart its 7 days, 1006.14(b)(3)(i)).
        """
        inconvenient = [[a.strftime("%H:%M"), b.strftime("%H:%M")] for a, b in prefs.inconvenient]
        async with self._db.write() as db:
            consents = _consent_rows(await preferences_in(db, phone_e164), prefs, now)
            params = (phone_e164, json.dumps(inconvenient), json.dumps(consents), to_db(now))
            await db.execute(SET_PREFERENCES, params)
            record = PreferencesSet(phone_e164, inconvenient, consents)
            await append_audit(db, [AuditEvent(record, now, actor)])

    async def preferences(self, phone_e164: str) -> Preferences:
        async with self._db.read() as db:
            return await preferences_in(db, phone_e164)

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
        async with self._db.write() as db:
            added = await db.execute(OPT_OUT, (phone_e164, channel, to_db(now), source))
            record = OptedOut(phone_e164, channel, source, added == 1)
            where = await attempt_keys(db, attempt_id)
            await append_audit(db, [AuditEvent(record, now, actor or source, *where)])

    async def opted_out(self, phone_e164: str) -> set[str]:
        return {r["channel"] for r in await self._db.fetch_all(OPTED_OUT, (phone_e164,))}


async def preferences_in(db: Conn, phone: str) -> Preferences:
    """The consumer's preferences, read on `db` (inside a write transaction, or a read)."""
    row = await fetch_one(db, PREFERENCES, (phone,))
    return Preferences() if row is None else preferences_from(row)


def preferences_from(row: Row) -> Preferences:
    """A contact_preferences row's preferences."""
    pairs = json.loads(row["inconvenient"])
    inconvenient = tuple((time.fromisoformat(a), time.fromisoformat(b)) for a, b in pairs)
    stored = json.loads(row["consents"])  # [from, to] (before given times were kept) or [from, to, given]
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


async def text_history(db: Conn, phone: str, since: datetime) -> list[PastMessage]:
    """The number's texts since `since`, read on `db` (inside the claim's write transaction)."""
    rows = await fetch_all(db, TEXT_HISTORY, (phone, to_db(since), MessageState.NOT_SENT.value))
    return [PastMessage(r["id"], from_db(r["decided_at"]), MessageState(r["state"])) for r in rows]

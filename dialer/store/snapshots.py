"""What the strategy and the policy decide from, read for many accounts at once (one read snapshot).

`duecall run` reads one account's before each decision; `duecall campaign plan` reads a whole
campaign's. Both get the same `Snapshot`s (dialer/strategy/snapshot.py), so the dry run and the run
decide from the same facts. Queries go by chunks of accounts (SQLite's bound-parameter limit), a
few per chunk whatever the number of accounts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dialer.core import balance
from dialer.core.messages import PastMessage
from dialer.core.models import PERSON_ANSWERED, Account, PastAttempt, Preferences
from dialer.core.vocab import MessageState, Outcome
from dialer.store.attempts import past_attempt, with_texts
from dialer.store.conn import Conn
from dialer.store.contacts import preferences_from
from dialer.store.db import Database, fetch_all
from dialer.store.payments import call_promise, payment, text_promise
from dialer.store.times import from_db, to_db
from dialer.strategy.decide import AccountView, HistoryView, PastContact, Said
from dialer.strategy.snapshot import Snapshot

_CHUNK = 900  # SQLite's bound-parameter limit is 999

# Everything we did and everything said, by account (the strategy's history: all of it).
ACCOUNT_CALLS = (
    "SELECT account_pk, decided_at, disposition, outcome, phone_e164, ended_at FROM attempts "
    "WHERE account_pk IN ({marks}) AND coalesce(disposition, '')!='not_placed' ORDER BY decided_at"
)
ACCOUNT_TEXTS = (
    "SELECT account_pk, decided_at FROM messages WHERE account_pk IN ({marks}) AND state!='not_sent' "
    "AND purpose='reminder' ORDER BY decided_at"
)
ACCOUNT_REPLIES = (
    "SELECT account_pk, received_at, outcome, phone_e164 FROM inbound_messages "
    "WHERE account_pk IN ({marks}) AND outcome IS NOT NULL ORDER BY received_at"
)
PAYMENTS = (
    "SELECT account_pk, payment_id, amount_minor, currency, paid_at, paid_on FROM payments "
    "WHERE account_pk IN ({marks}) ORDER BY paid_at, id"
)
CALL_PROMISES = (
    "SELECT t.account_pk, o.attempt_id, o.at, o.promised_date, o.promised_amount_minor FROM outcomes o "
    "JOIN attempts t ON t.id=o.attempt_id WHERE t.account_pk IN ({marks}) AND o.outcome=? ORDER BY o.at"
)
TEXT_PROMISES = (
    "SELECT account_pk, id, received_at FROM inbound_messages WHERE account_pk IN ({marks}) AND outcome=? "
    "ORDER BY received_at"
)
# The policy's history, by number, in its window (as the claims read it: dialer/store/attempts.py).
PHONE_CALLS = (
    "SELECT t.id, t.phone_e164, t.decided_at, t.campaign_id, t.disposition, a.debt_id, t.cause, t.outcome "
    "FROM attempts t JOIN accounts a ON a.id = t.account_pk WHERE t.phone_e164 IN ({marks}) "
    "AND t.decided_at>=? AND coalesce(t.disposition, '')!='not_placed' ORDER BY t.decided_at"
)
PHONE_TEXTS = (
    "SELECT id, phone_e164, decided_at, state FROM messages WHERE phone_e164 IN ({marks}) "
    "AND decided_at>=? AND state!='not_sent' ORDER BY decided_at"
)
OPT_OUTS = "SELECT phone_e164, channel FROM opt_outs WHERE phone_e164 IN ({marks})"
PREFERENCES = (
    "SELECT phone_e164, inconvenient, consents FROM contact_preferences WHERE phone_e164 IN ({marks})"
)


class Snapshots:
    """The store's snapshots (a part of `SqliteStore`)."""

    _db: Database

    async def snapshots(
        self,
        accounts: Sequence[Account],
        policy_since: datetime,
        arms: Mapping[int, str] | None = None,
        columns: Mapping[int, Mapping[str, str]] | None = None,
    ) -> list[Snapshot]:
        """Each account's snapshot, in the order given; the policy's history from `policy_since`."""
        found: list[Snapshot] = []
        async with self._db.read() as db:
            for start in range(0, len(accounts), _CHUNK):
                chunk = accounts[start : start + _CHUNK]
                found += await _chunk(db, chunk, policy_since, arms or {}, columns or {})
        return found


async def _chunk(
    db: Conn,
    accounts: Sequence[Account],
    since: datetime,
    arms: Mapping[int, str],
    columns: Mapping[int, Mapping[str, str]],
) -> list[Snapshot]:
    pks = [a.pk for a in accounts]
    phones = sorted({a.phone_e164 for a in accounts})
    by_pk = await _by_account(db, pks)
    by_phone = await _by_phone(db, phones, since)
    out = []
    for a in accounts:
        mine = by_pk[a.pk]
        made = [*mine["call_promises"], *mine["text_promises"]]
        view = AccountView(
            a,
            tuple(mine["payments"]),
            balance.promises(made, a.time_zones, a.due_date),
            dict(columns.get(a.pk, {})),
        )
        opted = frozenset(by_phone["opt_outs"][a.phone_e164])
        said = sorted(mine["said"], key=lambda s: s.at)
        contacts = sorted(mine["contacts"], key=lambda c: c.at)
        history = HistoryView(tuple(contacts), tuple(said), opted)
        texts = tuple(by_phone["texts"][a.phone_e164])
        calls = tuple(with_texts(texts, by_phone["calls"][a.phone_e164]))
        prefs = by_phone["prefs"].get(a.phone_e164, Preferences())
        out.append(Snapshot(view, history, calls, texts, opted, prefs, arms.get(a.pk)))
    return out


async def _by_account(db: Conn, pks: Sequence[int]) -> dict[int, dict[str, list[Any]]]:
    found: dict[int, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    marks = ",".join("?" * len(pks))
    for r in await fetch_all(db, ACCOUNT_CALLS.format(marks=marks), pks):
        at = from_db(r["decided_at"])
        answered = r["disposition"] in PERSON_ANSWERED
        found[r["account_pk"]]["contacts"].append(PastContact(at, "voice", answered))
        if r["outcome"] and r["outcome"] != Outcome.NO_RESPONSE.value:
            said_at = from_db(r["ended_at"]) if r["ended_at"] else at
            found[r["account_pk"]]["said"].append(Said(said_at, Outcome(r["outcome"]), r["phone_e164"]))
    for r in await fetch_all(db, ACCOUNT_TEXTS.format(marks=marks), pks):
        found[r["account_pk"]]["contacts"].append(PastContact(from_db(r["decided_at"]), "sms"))
    for r in await fetch_all(db, ACCOUNT_REPLIES.format(marks=marks), pks):
        said = Said(from_db(r["received_at"]), Outcome(r["outcome"]), r["phone_e164"])
        found[r["account_pk"]]["said"].append(said)
    for r in await fetch_all(db, PAYMENTS.format(marks=marks), pks):
        found[r["account_pk"]]["payments"].append(payment(r))
    promise = Outcome.PROMISE_TO_PAY.value
    for r in await fetch_all(db, CALL_PROMISES.format(marks=marks), [*pks, promise]):
        found[r["account_pk"]]["call_promises"].append(call_promise(r))
    for r in await fetch_all(db, TEXT_PROMISES.format(marks=marks), [*pks, promise]):
        found[r["account_pk"]]["text_promises"].append(text_promise(r))
    return found


async def _by_phone(db: Conn, phones: Sequence[str], since: datetime) -> dict[str, Any]:
    marks = ",".join("?" * len(phones))
    calls: dict[str, list[PastAttempt]] = defaultdict(list)
    for r in await fetch_all(db, PHONE_CALLS.format(marks=marks), [*phones, to_db(since)]):
        calls[r["phone_e164"]].append(past_attempt(r))
    texts: dict[str, list[PastMessage]] = defaultdict(list)
    for r in await fetch_all(db, PHONE_TEXTS.format(marks=marks), [*phones, to_db(since)]):
        texts[r["phone_e164"]].append(
            PastMessage(r["id"], from_db(r["decided_at"]), MessageState(r["state"]))
        )
    opt_outs: dict[str, set[str]] = defaultdict(set)
    for r in await fetch_all(db, OPT_OUTS.format(marks=marks), phones):
        opt_outs[r["phone_e164"]].add(r["channel"])
    rows = await fetch_all(db, PREFERENCES.format(marks=marks), phones)
    prefs = {r["phone_e164"]: preferences_from(r) for r in rows}
    return {"calls": calls, "texts": texts, "opt_outs": opt_outs, "prefs": prefs}

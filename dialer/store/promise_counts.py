"""The campaign's promises for the reports: read in bulk (every promise of the accounts that made one
in the campaign, and their payments), then dated and judged by `dialer.core.balance`, the rules of
`duecall payments show` and of the strategy. `judge` gives the rows the store keeps judged
(dialer/store/promise_rollup.py) for a batch of accounts; `read_promises` and `count_verdicts` judge
a whole campaign directly on one day: the reference the kept rows are tested against."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from dialer.core import balance
from dialer.core.vocab import Outcome, PromiseState
from dialer.store.conn import Conn, Dialect
from dialer.store.db import Row, fetch_all

# Promises: every one of the campaign's accounts (a text's day may come from an earlier call
# promise, in any campaign) with the campaign and step that asked; then, for the accounts with one in
# the campaign (a JSON list), the accounts and their payments.
_PROMISE = Outcome.PROMISE_TO_PAY.value
# From the campaign's accounts (CROSS JOIN keeps that order) to their promising calls through the
# partial index of migration 0014; going by outcome first, SQLite would read every such attempt's row
# (three times slower on a million accounts).
CALL_PROMISES = f"""
SELECT t.account_pk, t.campaign_id, t.step, o.attempt_id, o.at, o.promised_date, o.promised_amount_minor
FROM targets g CROSS JOIN attempts t JOIN outcomes o ON o.attempt_id = t.id
WHERE g.campaign_id = ?1 AND t.account_pk = g.account_pk AND t.outcome = '{_PROMISE}'"""
TEXT_PROMISES = f"""
SELECT i.account_pk, m.campaign_id, coalesce(m.step, '') AS step, i.id, i.received_at
FROM inbound_messages i JOIN targets g ON g.campaign_id = ?1 AND g.account_pk = i.account_pk
LEFT JOIN messages m ON m.id = i.message_id WHERE i.outcome = '{_PROMISE}'"""
# The accounts of a JSON list of ids (?1), read by each backend's JSON functions.
_THEIRS: dict[Dialect, str] = {
    "sqlite": "IN (SELECT value FROM json_each(?1))",
    "postgresql": "IN (SELECT CAST(value AS BIGINT) FROM json_array_elements_text(CAST(?1 AS json)))",
}
# The same for a batch of the campaign's accounts (promise_batch; dialer/store/promise_rollup.py).
# (SQLite's CROSS JOIN keeps the order written; its join's terms are in WHERE, as PostgreSQL has no
# CROSS JOIN ... ON: to SQLite's planner an inner join's ON and WHERE are one.)
_BATCH = "promise_batch b CROSS JOIN targets g"
_BATCH_JOIN = "g.campaign_id = ?1 AND g.account_pk = b.account_pk"
BATCH_CALLS = f"""
SELECT t.account_pk, t.campaign_id, t.step, o.attempt_id, o.at, o.promised_date, o.promised_amount_minor
FROM {_BATCH} CROSS JOIN attempts t JOIN outcomes o ON o.attempt_id = t.id
WHERE {_BATCH_JOIN} AND t.account_pk = g.account_pk AND t.outcome = '{_PROMISE}'"""
BATCH_TEXTS = f"""
SELECT i.account_pk, m.campaign_id, coalesce(m.step, '') AS step, i.id, i.received_at
FROM {_BATCH} CROSS JOIN inbound_messages i LEFT JOIN messages m ON m.id = i.message_id
WHERE {_BATCH_JOIN} AND i.account_pk = g.account_pk AND i.outcome = '{_PROMISE}'"""
BATCH_ACCOUNTS = (
    "SELECT a.id, a.time_zones, a.amount_minor, a.due_date, coalesce(arm.arm, '') AS arm "
    f"FROM {_BATCH} CROSS JOIN accounts a "
    "LEFT JOIN arm_assignments arm ON arm.campaign_id = ?1 AND arm.account_pk = a.id "
    f"WHERE {_BATCH_JOIN} AND a.id = g.account_pk"
)
BATCH_PAYMENTS = (
    "SELECT p.account_pk, p.payment_id, p.amount_minor, p.currency, p.paid_at, p.paid_on "
    f"FROM {_BATCH} CROSS JOIN payments p WHERE {_BATCH_JOIN} AND p.account_pk = g.account_pk "
    "ORDER BY p.paid_at, p.id"
)
PROMISING = {
    dialect: "SELECT a.id, a.time_zones, a.amount_minor, a.due_date, coalesce(arm.arm, '') AS arm "
    "FROM accounts a LEFT JOIN arm_assignments arm ON arm.campaign_id = ?2 AND arm.account_pk = a.id "
    f"WHERE a.id {theirs}"
    for dialect, theirs in _THEIRS.items()
}
THEIR_PAYMENTS = {
    dialect: "SELECT account_pk, payment_id, amount_minor, currency, paid_at, paid_on FROM payments "
    f"WHERE account_pk {theirs} ORDER BY paid_at, id"
    for dialect, theirs in _THEIRS.items()
}


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _segment(step: str) -> str:
    """'segments[1].steps[2]' -> 'segments[1]'; a rule's step or none: ''."""
    return step.split(".", 1)[0] if step.startswith("segments[") else ""


@dataclass(frozen=True, slots=True)
class PromiseRows:
    """What judging a campaign's promises needs, as read in one snapshot (turned into records off
    the event loop, by `count_verdicts`)."""

    campaign_id: int
    calls: list[Row]
    texts: list[Row]
    accounts: list[Row]
    payments: list[Row]


@dataclass(frozen=True, slots=True)
class _Promising:
    """One account with promises in the campaign: what judging them needs."""

    zones: tuple[str, ...]
    stored_zones: str  # as the accounts table holds them
    amount_minor: int
    due_date: date
    arm: str
    payments: list[balance.Payment]
    made: list[balance.PromiseMade]
    steps: dict[tuple[str, int], str]  # the campaign's promises of it: (source, ref) -> its step


async def read_promises(db: Conn, campaign_id: int) -> PromiseRows:
    calls = await fetch_all(db, CALL_PROMISES, (campaign_id,))
    texts = await fetch_all(db, TEXT_PROMISES, (campaign_id,))
    pks = json.dumps(sorted({r["account_pk"] for r in [*calls, *texts] if r["campaign_id"] == campaign_id}))
    accounts = await fetch_all(db, PROMISING[db.dialect], (pks, campaign_id))
    payments = await fetch_all(db, THEIR_PAYMENTS[db.dialect], (pks,))
    return PromiseRows(campaign_id, calls, texts, accounts, payments)


async def read_batch(db: Conn, campaign_id: int) -> PromiseRows:
    """What judging the accounts of promise_batch needs (those of them in the campaign)."""
    calls = await fetch_all(db, BATCH_CALLS, (campaign_id,))
    texts = await fetch_all(db, BATCH_TEXTS, (campaign_id,))
    accounts = await fetch_all(db, BATCH_ACCOUNTS, (campaign_id,))
    payments = await fetch_all(db, BATCH_PAYMENTS, (campaign_id,))
    return PromiseRows(campaign_id, calls, texts, accounts, payments)


def _at(text: str) -> datetime:
    """A time as the store writes it (dialer/store/times.py), read by fromisoformat: some 50 times
    faster than `from_db`'s strptime, which counts when hundreds of thousands are read."""
    return datetime.fromisoformat(text)


def read_payment(r: Row) -> balance.Payment:
    paid_on = date.fromisoformat(r["paid_on"]) if r["paid_on"] else None
    return balance.Payment(r["payment_id"], r["amount_minor"], r["currency"], _at(r["paid_at"]), paid_on)


def _call(r: Row) -> balance.PromiseMade:
    day = date.fromisoformat(r["promised_date"]) if r["promised_date"] else None
    return balance.PromiseMade("call", r["attempt_id"], _at(r["at"]), day, r["promised_amount_minor"])


def _text(r: Row) -> balance.PromiseMade:
    return balance.PromiseMade("sms", r["id"], _at(r["received_at"]), None, None)


def _facts(rows: PromiseRows) -> dict[int, _Promising]:
    zones: dict[str, tuple[str, ...]] = {}  # a few distinct lists among many accounts: parsed once
    facts = {}
    for r in rows.accounts:
        if (mine := zones.get(r["time_zones"])) is None:
            mine = zones[r["time_zones"]] = tuple(json.loads(r["time_zones"]))
        due = date.fromisoformat(r["due_date"])
        facts[r["id"]] = _Promising(mine, r["time_zones"], r["amount_minor"], due, r["arm"], [], [], {})
    for r in rows.payments:
        facts[r["account_pk"]].payments.append(read_payment(r))
    for source, found, made in (("call", rows.calls, _call), ("sms", rows.texts, _text)):
        for r in found:
            if (account := facts.get(r["account_pk"])) is not None:
                account.made.append(made(r))
                if r["campaign_id"] == rows.campaign_id:
                    account.steps[(source, account.made[-1].ref)] = r["step"]
    return facts


_SLOT = {
    PromiseState.KEPT: 2,
    PromiseState.PARTIALLY_KEPT: 3,
    PromiseState.BROKEN: 4,
    PromiseState.PENDING: 5,
}


def count_verdicts(rows: PromiseRows, today: date, by: str) -> dict[str, list[int]]:
    """Counts per group: promises, due (with a verdict), kept, partially kept, broken, pending. Each
    account's days are in its decision zone at midday (UTC) of `today`."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * 6)
    moment = datetime.combine(today, time(12), UTC)
    zones: dict[tuple[str, ...], ZoneInfo] = {}
    for account in _facts(rows).values():
        if (zone := zones.get(account.zones)) is None:
            zone = zones[account.zones] = balance.decision_zone(account.zones, moment)
        for p in balance.promises(account.made, account.zones, account.due_date):
            step = account.steps.get((p.source, p.ref))
            if step is None:
                continue  # another campaign's: it only helped to date this one's texts
            verdict = balance.evaluate_promise(p, account.amount_minor, account.payments, zone, today)
            row = counts[_promise_group(by, account, p, step, zone)]
            row[0] += 1
            row[1] += verdict.state is not PromiseState.PENDING
            row[_SLOT[verdict.state]] += 1
    return counts


def _promise_group(by: str, account: _Promising, p: balance.Promise, step: str, zone: ZoneInfo) -> str:
    """The promise's group: its account's arm, the step that asked, its segment, the account's bucket
    at the start of the day it was made, or the ISO week it was made in."""
    if by in ("", "arm"):
        return account.arm if by else ""
    if by in ("step", "segment"):
        return step if by == "step" else _segment(step)
    made_day = p.made_at.astimezone(zone).date()
    return iso_week(made_day) if by == "period" else _bucket_then(account, made_day, zone)


def _bucket_then(account: _Promising, day: date, zone: ZoneInfo) -> str:
    """The account's bucket at the start of `day`."""
    earlier = [pay for pay in account.payments if balance.payment_day(pay, zone) < day]
    return balance.bucket(balance.days_past_due(account.due_date, account.amount_minor, earlier, zone, day))


# A judged promise as report_promises holds it (migration 0016).
Judged = tuple[int, int, str, int, str, str, str, str, str, str, str, str, str]


def judge(rows: PromiseRows, today: date) -> list[Judged]:
    """The campaign's promises among `rows`, each judged on every payment known (its verdict holds
    from the day it was decided; pending before), in its account's decision zone at midday (UTC) of
    `today`, with its groups."""
    moment = datetime.combine(today, time(12), UTC)
    found: list[Judged] = []
    for pk, account in _facts(rows).items():
        zone = balance.decision_zone(account.zones, moment)
        for p in balance.promises(account.made, account.zones, account.due_date):
            if (step := account.steps.get((p.source, p.ref))) is None:
                continue  # another campaign's
            verdict = balance.evaluate_promise(p, account.amount_minor, account.payments, zone, date.max)
            # Nothing owed when it was made: kept on any day (evaluate_promise's first case).
            final = "" if verdict.amount_minor <= 0 else str(verdict.decided_on or date.max)
            made_day = p.made_at.astimezone(zone).date()
            then = _bucket_then(account, made_day, zone)
            groups = (account.arm, step, _segment(step), then, iso_week(made_day))
            place = (rows.campaign_id, pk, p.source, p.ref, account.stored_zones, zone.key)
            found.append((*place, *groups, verdict.state.value, final))
    return found

"""The reports' contact counts, aggregated in SQL: a campaign's funnel and its contacts by local hour.

The funnel counts every account of the campaign (intention to treat: reached or not), each once
however many calls or texts it had, for all of them or per arm, per bucket at entry or per week of
first contact; per strategy step or segment, an account counts in each one that contacted it.
reports/metrics.py says in words what each count is. One read snapshot per query.

Local times (the week of a first contact, the hour of a call) are the account's decision zone's
(docs/payments.md): SQL groups by the zones and the UTC quarter hour, the few groups are converted
here with zoneinfo. Every UTC offset in use is a whole number of quarter hours and changes on a
quarter hour, so a quarter hour has one local hour: exact, and the rows stay few.

The SQL is one text for SQLite and PostgreSQL but for the outcome's JSON detail (`_RIGHT_PARTY`): a
truth value is counted or kept as CASE WHEN ... THEN 1 ELSE 0 END, as PostgreSQL neither adds up
nor orders booleans (on SQLite the funnel's reads take a sixth less than with the bare truth value;
none of those values is ever NULL, or its sum is read through coalesce(..., 0)).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from dialer.core.balance import bucket, decision_zone
from dialer.core.models import PERSON_ANSWERED
from dialer.store.conn import Conn, Dialect, Row, take_batch
from dialer.store.db import Database, fetch_all, fetch_one
from dialer.store.times import from_db

_PERSON = "(" + ", ".join(f"'{d.value}'" for d in sorted(PERSON_ANSWERED)) + ")"  # for SQL
_PLACED = "coalesce(disposition, '') != 'not_placed'"  # a call Asterisk took (an open one counts)
_SENT = "purpose = 'reminder' AND state != 'not_sent'"  # a reminder handed to the gateway


# The borrower confirmed being who was asked for (dialer/store/ivr.py writes {"right_party": true}):
# SQLite's json_extract gives 1 for true (and for 1 or 1.0), NULL for a key missing or null.
_RIGHT_PARTY: dict[Dialect, str] = {
    "sqlite": "json_extract(o.detail, '$.right_party') = 1",
    "postgresql": "(CAST(o.detail AS jsonb) -> 'right_party') IN (CAST('true' AS jsonb), CAST('1' AS jsonb))",
}


def _slot(column: str) -> str:
    """SQL: the UTC quarter hour of a stored time, 'YYYY-MM-DDTHH:MM' (MM 00, 15, 30 or 45)."""
    minutes = f"substr('00153045', CAST(substr({column}, 15, 2) AS INTEGER) / 15 * 2 + 1, 2)"
    return f"substr({column}, 1, 14) || {minutes}"


def _segment(column: str) -> str:
    """SQL: 'segments[1]' of 'segments[1].steps[2]', 'rules' of 'rules.promise_broken', '' of ''."""
    return (
        f"CASE WHEN {column} LIKE 'segments[%' THEN substr({column}, 1, instr({column}, ']')) "
        f"WHEN instr({column}, '.') > 0 THEN substr({column}, 1, instr({column}, '.') - 1) "
        f"ELSE {column} END"
    )


# Per account (and, by step or segment, per step or segment: `k`), one pass over each table;
# `{only}` restricts each pass to some accounts (the rollup's dirty ones) or to none ("").
_PER_ACCOUNT = f"""
calls AS (
    SELECT account_pk, {{k_call}} AS k, count(*) AS placed,
        max(CASE WHEN coalesce(disposition, '') IN {_PERSON} THEN 1 ELSE 0 END) AS contacted,
        max(CASE WHEN outcome IS NOT DISTINCT FROM 'promise_to_pay' THEN 1 ELSE 0 END) AS promised,
        min(decided_at) AS first_at
    FROM attempts WHERE campaign_id = ?1 AND {_PLACED} {{only}} GROUP BY {{by}}),
rpc AS (
    SELECT t.account_pk, {{k_rpc}} AS k, count(*) AS calls
    FROM {{rpc_from}}
    WHERE o.attempt_id = t.id AND t.campaign_id = ?1 AND {{right_party}} {{only_t}} GROUP BY t.{{by}}),
texts AS (
    SELECT account_pk, {{k_text}} AS k, count(*) AS sent,
        sum(CASE WHEN state = 'delivered' THEN 1 ELSE 0 END) AS delivered, min(decided_at) AS first_at
    FROM messages WHERE campaign_id = ?1 AND {_SENT} {{only}} GROUP BY {{by}}),
replies AS (
    SELECT i.account_pk, {{k_reply}} AS k,
        max(CASE WHEN i.kind IN ('answer', 'for_person') THEN 1 ELSE 0 END) AS replied,
        max(CASE WHEN i.kind = 'opt_out' THEN 1 ELSE 0 END) AS stop,
        max(CASE WHEN i.outcome IS NOT DISTINCT FROM 'promise_to_pay' THEN 1 ELSE 0 END) AS promised
    FROM inbound_messages i JOIN messages m ON m.id = i.message_id
    WHERE m.campaign_id = ?1 AND i.account_pk IS NOT NULL {{only_i}} GROUP BY i.{{by}})"""
_ONLY = "AND {c}account_pk IN (SELECT account_pk FROM report_batch)"
# Some accounts: from their calls to the outcomes; all of them: the other way round (fewer rows).
# (SQLite's CROSS JOIN keeps the order written; the join's term is in WHERE, as PostgreSQL has no
# CROSS JOIN ... ON: to SQLite's planner an inner join's ON and WHERE are one.)
_RPC_FROM = {True: "attempts t CROSS JOIN outcomes o", False: "outcomes o CROSS JOIN attempts t"}
# The keys: by all steps (''), by step, by segment; what each pass groups by.
_KINDS: dict[str, Callable[[str], str]] = {"": lambda _: "''", "step": lambda c: c, "segment": _segment}
_KEY_COLUMNS = {"k_call": "step", "k_rpc": "t.step", "k_text": "step", "k_reply": "m.step"}


def _per_account(kind: str, only: bool, dialect: Dialect) -> str:
    key = _KINDS[kind]
    restrict = {
        n: _ONLY.format(c=c) if only else "" for n, c in (("only", ""), ("only_t", "t."), ("only_i", "i."))
    }
    return _PER_ACCOUNT.format(
        by="account_pk, k",
        rpc_from=_RPC_FROM[only],
        right_party=_RIGHT_PARTY[dialect],
        **{n: key(c) for n, c in _KEY_COLUMNS.items()},
        **restrict,
    )


# The rollup's rows of the accounts in report_batch, for one kind: each (account, k) once.
_ROLLUP = """
WITH {per_account}
INSERT INTO report_accounts (campaign_id, kind, k, account_pk, placed, contacted, right_party_calls,
    call_promised, sent, delivered, replied, stop, text_promised, first_at)
SELECT ?1, '{kind}', k, account_pk, sum(placed), max(contacted), sum(rpc), max(call_promised), sum(sent),
    sum(delivered), max(replied), max(stop), max(text_promised), min(first_at)
FROM (
    SELECT account_pk, k, placed, contacted, 0 AS rpc, promised AS call_promised, 0 AS sent, 0 AS delivered,
        0 AS replied, 0 AS stop, 0 AS text_promised, first_at FROM calls
    UNION ALL SELECT account_pk, k, 0, 0, calls, 0, 0, 0, 0, 0, 0, NULL FROM rpc
    UNION ALL SELECT account_pk, k, 0, 0, 0, 0, sent, delivered, 0, 0, 0, first_at FROM texts
    UNION ALL SELECT account_pk, k, 0, 0, 0, 0, 0, 0, replied, stop, promised, NULL FROM replies) u
GROUP BY account_pk, k
"""
# A promise counts (`promised`) on an account with a right-party call; without one it is
# `promised_unconfirmed` (a text's answer, or a call's promise nobody confirmed being the borrower).
_ROLLUP_COUNTS = """
    coalesce(sum(CASE WHEN r.placed > 0 THEN 1 ELSE 0 END), 0) AS attempted,
    coalesce(sum(r.placed), 0) AS calls,
    coalesce(sum(r.contacted), 0) AS contacted,
    coalesce(sum(CASE WHEN r.right_party_calls > 0 THEN 1 ELSE 0 END), 0) AS right_party,
    coalesce(sum(r.right_party_calls), 0) AS right_party_calls,
    coalesce(sum(CASE WHEN r.right_party_calls > 0 AND max(r.call_promised, r.text_promised) > 0
        THEN 1 ELSE 0 END), 0) AS promised,
    coalesce(sum(CASE WHEN r.sent > 0 THEN 1 ELSE 0 END), 0) AS texted,
    coalesce(sum(r.sent), 0) AS texts,
    coalesce(sum(r.delivered), 0) AS delivered,
    coalesce(sum(r.replied), 0) AS replied,
    coalesce(sum(r.stop), 0) AS opted_out,
    coalesce(sum(CASE WHEN r.right_party_calls = 0 AND max(r.call_promised, r.text_promised) > 0
        THEN 1 ELSE 0 END), 0) AS promised_unconfirmed"""
# Every account of the campaign, once: by arm, or by a raw key (zones, times) converted below.
ROLLUP_ACCOUNT_FUNNEL = f"""
SELECT {{group}} AS grp, count(*) AS accounts, {_ROLLUP_COUNTS}
FROM targets b
LEFT JOIN report_accounts r ON r.campaign_id = ?1 AND r.kind = '' AND r.k = '' AND r.account_pk = b.account_pk
{{joins}}
WHERE b.campaign_id = ?1 GROUP BY grp ORDER BY grp
"""
# The accounts each step (or segment) called or texted, once per step (or segment).
ROLLUP_CONTACT_FUNNEL = f"""
SELECT r.k AS grp, sum(CASE WHEN r.placed > 0 OR r.sent > 0 THEN 1 ELSE 0 END) AS accounts, {_ROLLUP_COUNTS}
FROM report_accounts r WHERE r.campaign_id = ?1 AND r.kind = ?2 GROUP BY r.k ORDER BY r.k
"""

# The reference: the same counts straight from the base tables (slow on a big campaign: the
# tests compare the rollup with it).
_PROMISED = "coalesce(calls.promised, 0) + coalesce(replies.promised, 0) > 0"  # on a call or by text
_DIRECT_COUNTS = f"""
    count(calls.account_pk) AS attempted,
    coalesce(sum(calls.placed), 0) AS calls,
    coalesce(sum(calls.contacted), 0) AS contacted,
    count(rpc.account_pk) AS right_party,
    coalesce(sum(rpc.calls), 0) AS right_party_calls,
    coalesce(sum(CASE WHEN rpc.account_pk IS NOT NULL AND {_PROMISED} THEN 1 ELSE 0 END), 0) AS promised,
    count(texts.account_pk) AS texted,
    coalesce(sum(texts.sent), 0) AS texts,
    coalesce(sum(texts.delivered), 0) AS delivered,
    coalesce(sum(replies.replied), 0) AS replied,
    coalesce(sum(replies.stop), 0) AS opted_out,
    coalesce(sum(CASE WHEN rpc.account_pk IS NULL AND {_PROMISED} THEN 1 ELSE 0 END), 0)
        AS promised_unconfirmed"""
_JOINS = """
LEFT JOIN calls ON calls.account_pk = b.account_pk AND calls.k = b.k
LEFT JOIN rpc ON rpc.account_pk = b.account_pk AND rpc.k = b.k
LEFT JOIN texts ON texts.account_pk = b.account_pk AND texts.k = b.k
LEFT JOIN replies ON replies.account_pk = b.account_pk AND replies.k = b.k"""
_DIRECT_ACCOUNT_FUNNEL = f"""
WITH {{per_account}},
b AS (SELECT t.account_pk, '' AS k, t.added_at FROM targets t WHERE t.campaign_id = ?1)
SELECT {{group}} AS grp, count(*) AS accounts, {_DIRECT_COUNTS}
FROM b {{joins}} {_JOINS}
GROUP BY grp ORDER BY grp
"""
_DIRECT_CONTACT_FUNNEL = f"""
WITH {{per_account}},
b AS (SELECT account_pk, k FROM calls UNION SELECT account_pk, k FROM rpc
    UNION SELECT account_pk, k FROM texts UNION SELECT account_pk, k FROM replies)
SELECT b.k AS grp, count(calls.account_pk IS NOT NULL OR texts.account_pk IS NOT NULL OR NULL) AS accounts,
    {_DIRECT_COUNTS}
FROM b {_JOINS}
GROUP BY grp ORDER BY grp
"""
# Owed nothing at entry (1, else 0): the payments made up to the moment it entered cover the amount due.
_PAID_UP = (
    "CASE WHEN a.amount_minor <= coalesce((SELECT sum(p.amount_minor) FROM payments p "
    "WHERE p.account_pk = b.account_pk AND p.paid_at <= b.added_at), 0) THEN 1 ELSE 0 END"
)
_DIRECT_FIRST_AT = "min(coalesce(calls.first_at, texts.first_at), coalesce(texts.first_at, calls.first_at))"
_ACCOUNT = "JOIN accounts a ON a.id = b.account_pk"
_ARM = "LEFT JOIN arm_assignments arm ON arm.campaign_id = ?1 AND arm.account_pk = b.account_pk"


def _account_groups(first_at: str) -> dict[str, tuple[str, str]]:
    """by: (the SQL group, the join it needs). A bucket's and a period's raw group joins its parts
    with '|' (none holds one), the stored zones last; a period's is NULL if never contacted."""
    return {
        "": ("''", ""),
        "arm": ("coalesce(arm.arm, '')", _ARM),
        "bucket": (f"b.added_at || '|' || a.due_date || '|' || {_PAID_UP} || '|' || a.time_zones", _ACCOUNT),
        "period": (f"{_slot(first_at)} || '|' || a.time_zones", _ACCOUNT),
    }


_ROLLUP_GROUPS = _account_groups("r.first_at")
_DIRECT_GROUPS = _account_groups(_DIRECT_FIRST_AT)
_CONTACT_GROUPS = ("step", "segment")
GROUPS = ("", "arm", "step", "segment", "bucket", "period")

# Calls and texts by the account's zones and the UTC quarter hour they were made in ({days}: only
# those made in the UTC day ?2, or all).
_BY_HOUR = f"""
SELECT a.time_zones AS zones, c.slot, sum(c.calls) AS calls, sum(c.contacted) AS contacted,
    sum(c.right_party) AS right_party, sum(c.texts) AS texts
FROM (
    SELECT t.account_pk, {_slot("t.decided_at")} AS slot, 1 AS calls,
        CASE WHEN coalesce(t.disposition, '') IN {_PERSON} THEN 1 ELSE 0 END AS contacted,
        CASE WHEN t.outcome IS NOT NULL THEN coalesce((SELECT CASE WHEN {{right_party}} THEN 1 ELSE 0 END
            FROM outcomes o WHERE o.attempt_id = t.id), 0) ELSE 0 END AS right_party, 0 AS texts
    FROM attempts t WHERE t.campaign_id = ?1 AND {_PLACED} {{day_t}}
    UNION ALL
    SELECT account_pk, {_slot("decided_at")}, 0, 0, 0, 1
    FROM messages WHERE campaign_id = ?1 AND {_SENT} {{day}}
) c JOIN accounts a ON a.id = c.account_pk
GROUP BY a.time_zones, c.slot
"""
_DAY = "AND {c}decided_at >= ?2 AND {c}decided_at < ?3"  # ?3: the day after ?2
_HOURS_OF_DAY = {
    dialect: f"""
INSERT INTO report_hours (campaign_id, day, zones, slot, calls, contacted, right_party, texts)
SELECT ?1, ?2, zones, slot, calls, contacted, right_party, texts
FROM ({_BY_HOUR.format(day_t=_DAY.format(c="t."), day=_DAY.format(c=""), right_party=right_party)}) h
"""
    for dialect, right_party in _RIGHT_PARTY.items()
}
ROLLUP_BY_HOUR = """
SELECT zones, slot, sum(calls) AS calls, sum(contacted) AS contacted, sum(right_party) AS right_party,
    sum(texts) AS texts
FROM report_hours WHERE campaign_id = ?1 GROUP BY zones, slot
"""
BATCH_ACCOUNTS = 2500  # accounts recomputed per write transaction: about half a second of the writer


@dataclass(frozen=True, slots=True)
class FunnelRow:
    """A campaign's counts for one group ("" for all of them, else the arm, step, bucket ...)."""

    group: str
    accounts: int  # in the campaign (the arm, bucket, week) or, by step or segment, contacted by it
    attempted: int  # accounts with a call placed
    calls: int
    contacted: int  # accounts on which a person answered
    right_party: int  # accounts on which the borrower confirmed who they are
    right_party_calls: int
    promised: int  # accounts with a right-party call that promised to pay, on a call or by text
    texted: int  # accounts with a text handed to the gateway
    texts: int
    delivered: int
    replied: int  # accounts that answered a text
    opted_out: int  # accounts that replied STOP
    promised_unconfirmed: int  # accounts that promised with no right-party call (not in `promised`)


@dataclass(frozen=True, slots=True)
class HourRow:
    """Calls and texts made in one hour of the borrowers' local day (their decision zone)."""

    hour: int  # 0-23, local
    calls: int  # placed
    contacted: int  # calls a person answered
    right_party: int  # calls on which the borrower confirmed who they are
    texts: int  # reminders handed to the gateway


_COUNT_NAMES = [f.name for f in fields(FunnelRow)][1:]


class Reports:
    """The store's report queries (a part of `SqliteStore`), read from the rollups of migration 0015."""

    _db: Database

    async def funnel(self, campaign_id: int, by: str = "") -> list[FunnelRow]:
        """The campaign's funnel for all its accounts (`by` ""), or per arm, strategy step, segment,
        bucket at entry, or ISO week of the first contact ("" for accounts never contacted)."""
        if by not in GROUPS:
            raise ValueError(f"a funnel by {by!r}: by one of {sorted(GROUPS)}")
        await self.refresh_report_rollups(campaign_id)
        sql, params = _rollup_funnel_sql(by), (campaign_id, by)
        async with self._db.read() as db:
            rows = await fetch_all(db, sql, params if by in _CONTACT_GROUPS else params[:1])
        return funnel_rows(by, rows)

    async def contacts_by_hour(self, campaign_id: int) -> list[HourRow]:
        """Calls placed, answered by a person, reaching the right party, and texts sent, per hour
        0-23 of the borrower's local day: every hour, in order, 0 where nothing was made."""
        await self.refresh_report_rollups(campaign_id)
        async with self._db.read() as db:
            rows = await fetch_all(db, ROLLUP_BY_HOUR, (campaign_id,))
        return hour_rows(rows)

    async def refresh_report_rollups(self, campaign_id: int) -> None:
        """Recompute the rollups of the accounts and days written since the last refresh (all of
        them the first time), in small write transactions so that the dialer's writes go on."""
        async with self._db.write() as db:
            if (
                await fetch_one(db, "SELECT 1 FROM report_built WHERE campaign_id = ?", (campaign_id,))
                is None
            ):
                await _mark_all(db, campaign_id)
        while True:
            async with self._db.write() as db:
                if not await _refresh_accounts(db, campaign_id):
                    break
        while True:
            async with self._db.write() as db:
                if not await _refresh_days(db, campaign_id):
                    break


async def _mark_all(db: Conn, campaign_id: int) -> None:
    """A campaign with no rollup yet: every account and day it has is to be computed."""
    await db.execute(
        "INSERT INTO report_dirty SELECT CAST(?1 AS BIGINT), account_pk FROM targets WHERE campaign_id = ?1 "
        "UNION SELECT ?1, account_pk FROM attempts WHERE campaign_id = ?1 "
        "UNION SELECT ?1, account_pk FROM messages WHERE campaign_id = ?1 ON CONFLICT DO NOTHING",
        (campaign_id,),
    )
    await db.execute(
        "INSERT INTO report_dirty_days SELECT CAST(?1 AS BIGINT), substr(decided_at, 1, 10) FROM attempts "
        "WHERE campaign_id = ?1 UNION SELECT ?1, substr(decided_at, 1, 10) FROM messages "
        "WHERE campaign_id = ?1 ON CONFLICT DO NOTHING",
        (campaign_id,),
    )
    await db.execute("INSERT INTO report_built (campaign_id) VALUES (?)", (campaign_id,))


async def _refresh_accounts(db: Conn, campaign_id: int) -> bool:
    """One batch of dirty accounts recomputed; False if there was none."""
    if not await take_batch(db, "report_batch", "report_dirty", campaign_id, BATCH_ACCOUNTS):
        return False
    batch = "account_pk IN (SELECT account_pk FROM report_batch)"
    await db.execute(f"DELETE FROM report_accounts WHERE campaign_id = ? AND {batch}", (campaign_id,))
    for kind in _KINDS:
        per_account = _per_account(kind, only=True, dialect=db.dialect)
        await db.execute(_ROLLUP.format(per_account=per_account, kind=kind), (campaign_id,))
    await db.execute(f"DELETE FROM report_dirty WHERE campaign_id = ? AND {batch}", (campaign_id,))
    return True


async def _refresh_days(db: Conn, campaign_id: int) -> bool:
    """One dirty UTC day's calls and texts by zones and quarter hour recomputed; False if none."""
    row = await fetch_one(
        db, "SELECT day FROM report_dirty_days WHERE campaign_id = ? LIMIT 1", (campaign_id,)
    )
    if row is None:
        return False
    params = (campaign_id, row["day"])
    after = (date.fromisoformat(row["day"]) + timedelta(days=1)).isoformat()
    await db.execute("DELETE FROM report_hours WHERE campaign_id = ? AND day = ?", params)
    await db.execute(_HOURS_OF_DAY[db.dialect], (*params, after))
    await db.execute("DELETE FROM report_dirty_days WHERE campaign_id = ? AND day = ?", params)
    return True


def _rollup_funnel_sql(by: str) -> str:
    if by in _CONTACT_GROUPS:
        return ROLLUP_CONTACT_FUNNEL
    group, joins = _ROLLUP_GROUPS[by]
    return ROLLUP_ACCOUNT_FUNNEL.format(group=group, joins=joins)


def direct_funnel_sql(by: str, dialect: Dialect) -> str:
    """The funnel's SQL straight from the base tables (the rollup's reference; parameter ?1 the
    campaign): rows as the rollup's, for `funnel_rows`."""
    if by in _CONTACT_GROUPS:
        return _DIRECT_CONTACT_FUNNEL.format(per_account=_per_account(by, False, dialect))
    group, joins = _DIRECT_GROUPS[by]
    return _DIRECT_ACCOUNT_FUNNEL.format(
        per_account=_per_account("", False, dialect), group=group, joins=joins
    )


def direct_by_hour_sql(dialect: Dialect) -> str:
    """Contacts by hour straight from the base tables (parameter ?1 the campaign): rows as the
    rollup's, for `hour_rows`."""
    return _BY_HOUR.format(day_t="", day="", right_party=_RIGHT_PARTY[dialect])


def funnel_rows(by: str, rows: Iterable[Row]) -> list[FunnelRow]:
    label = _LABELS.get(by, str)
    return _merged((label(r["grp"]), [int(r[k]) for k in _COUNT_NAMES]) for r in rows)


def hour_rows(rows: Iterable[Row]) -> list[HourRow]:
    """Every hour 0-23, from rows of (zones, UTC quarter hour, counts)."""
    counts = [[0, 0, 0, 0] for _ in range(24)]
    for row in rows:
        hour = _local(row["zones"], row["slot"]).hour
        for i, key in enumerate(("calls", "contacted", "right_party", "texts")):
            counts[hour][i] += int(row[key])
    return [HourRow(hour, *c) for hour, c in enumerate(counts)]


def _merged(rows: Iterable[tuple[str, list[int]]]) -> list[FunnelRow]:
    """Rows of equal labels added up (each account is in one raw group, so the sums stay exact)."""
    totals: dict[str, list[int]] = {}
    for label, counts in rows:
        have = totals.setdefault(label, [0] * len(counts))
        totals[label] = [a + b for a, b in zip(have, counts, strict=True)]
    return [FunnelRow(label, *totals[label]) for label in sorted(totals)]


@lru_cache(maxsize=4096)
def _zones(stored: str) -> tuple[str, ...]:
    return tuple(json.loads(stored))


def _local(zones: str, slot: str) -> datetime:
    """The start of a UTC quarter hour ('YYYY-MM-DDTHH:MM') in the zones' decision zone."""
    at = datetime.strptime(slot, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
    return at.astimezone(decision_zone(_zones(zones), at))


def _entry_bucket(raw: str) -> str:
    """The bucket on the local day the account entered, from 'added_at|due_date|paid up|zones'."""
    added, due, paid_up, zones = raw.split("|", 3)
    if not added:
        return ""  # no entry time known
    at = from_db(added)
    day = at.astimezone(decision_zone(_zones(zones), at)).date()
    return bucket(0 if paid_up == "1" else max((day - date.fromisoformat(due)).days, 0))


def _week(raw: str | None) -> str:
    """The ISO week 'YYYY-Www' of the first contact's local day, from 'UTC quarter hour|zones'."""
    if raw is None:
        return ""  # never called nor texted
    slot, zones = raw.split("|", 1)
    year, week, _ = _local(zones, slot).isocalendar()
    return f"{year}-W{week:02d}"


_LABELS: dict[str, Callable[[str], str]] = {"bucket": _entry_bucket, "period": _week}

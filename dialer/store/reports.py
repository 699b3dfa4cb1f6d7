"""The reports' contact counts, aggregated in SQL: a campaign's funnel and its contacts by local hour.

The funnel counts every account of the campaign (intention to treat: reached or not), each once
however many calls or texts it had, for all of them or per arm, per bucket at entry or per week of
first contact; per strategy step or segment, an account counts in each one that contacted it.
reports/metrics.py says in words what each count is. One read snapshot per query.

Local times (the week of a first contact, the hour of a call) are the account's decision zone's
(docs/payments.md): SQL groups by the zones and the UTC quarter hour, the few groups are converted
here with zoneinfo. Every UTC offset in use is a whole number of quarter hours and changes on a
quarter hour, so a quarter hour has one local hour: exact, and the rows stay few.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from functools import lru_cache

from dialer.core.balance import bucket, decision_zone
from dialer.core.models import PERSON_ANSWERED
from dialer.store.db import Database, fetch_all
from dialer.store.times import from_db

_PERSON = "(" + ", ".join(f"'{d.value}'" for d in sorted(PERSON_ANSWERED)) + ")"  # for SQL
_PLACED = "coalesce(disposition, '') != 'not_placed'"  # a call Asterisk took (an open one counts)
_SENT = "purpose = 'reminder' AND state != 'not_sent'"  # a reminder handed to the gateway


def _slot(column: str) -> str:
    """SQL: the UTC quarter hour of a stored time, 'YYYY-MM-DDTHH:MM' (MM 00, 15, 30 or 45)."""
    return f"substr({column}, 1, 14) || printf('%02d', CAST(substr({column}, 15, 2) AS INTEGER) / 15 * 15)"


def _segment(column: str) -> str:
    """SQL: 'segments[1]' of 'segments[1].steps[2]', 'rules' of 'rules.promise_broken', '' of ''."""
    return (
        f"CASE WHEN {column} LIKE 'segments[%' THEN substr({column}, 1, instr({column}, ']')) "
        f"WHEN instr({column}, '.') > 0 THEN substr({column}, 1, instr({column}, '.') - 1) "
        f"ELSE {column} END"
    )


# Per account (and, by step or segment, per step or segment: `k`), one pass over each table.
_PER_ACCOUNT = f"""
calls AS (
    SELECT account_pk, {{k_call}} AS k, count(*) AS placed,
        max(coalesce(disposition, '') IN {_PERSON}) AS contacted,
        max(outcome IS 'promise_to_pay') AS promised, min(decided_at) AS first_at
    FROM attempts WHERE campaign_id = ?1 AND {_PLACED} GROUP BY {{by}}),
rpc AS (
    SELECT t.account_pk, {{k_rpc}} AS k, count(*) AS calls
    FROM outcomes o CROSS JOIN attempts t ON t.id = o.attempt_id
    WHERE t.campaign_id = ?1 AND json_extract(o.detail, '$.right_party') = 1 GROUP BY t.{{by}}),
texts AS (
    SELECT account_pk, {{k_text}} AS k, count(*) AS sent, sum(state = 'delivered') AS delivered,
        min(decided_at) AS first_at
    FROM messages WHERE campaign_id = ?1 AND {_SENT} GROUP BY {{by}}),
replies AS (
    SELECT i.account_pk, {{k_reply}} AS k, max(i.kind IN ('answer', 'for_person')) AS replied,
        max(i.kind = 'opt_out') AS stop, max(i.outcome IS 'promise_to_pay') AS promised
    FROM inbound_messages i JOIN messages m ON m.id = i.message_id
    WHERE m.campaign_id = ?1 AND i.account_pk IS NOT NULL GROUP BY i.{{by}})"""
_COUNTS = """
    count(*) AS accounts,
    count(calls.account_pk) AS attempted,
    coalesce(sum(calls.placed), 0) AS calls,
    coalesce(sum(calls.contacted), 0) AS contacted,
    count(rpc.account_pk) AS right_party,
    coalesce(sum(rpc.calls), 0) AS right_party_calls,
    coalesce(sum(max(coalesce(calls.promised, 0), coalesce(replies.promised, 0))), 0) AS promised,
    count(texts.account_pk) AS texted,
    coalesce(sum(texts.sent), 0) AS texts,
    coalesce(sum(texts.delivered), 0) AS delivered,
    coalesce(sum(replies.replied), 0) AS replied,
    coalesce(sum(replies.stop), 0) AS opted_out"""
_JOINS = """
LEFT JOIN calls ON calls.account_pk = b.account_pk AND calls.k = b.k
LEFT JOIN rpc ON rpc.account_pk = b.account_pk AND rpc.k = b.k
LEFT JOIN texts ON texts.account_pk = b.account_pk AND texts.k = b.k
LEFT JOIN replies ON replies.account_pk = b.account_pk AND replies.k = b.k"""
# Every account of the campaign, once: by arm, or by a raw key (zones, times) converted below.
ACCOUNT_FUNNEL = f"""
WITH {_PER_ACCOUNT.format(k_call="''", k_rpc="''", k_text="''", k_reply="''", by="account_pk")},
b AS (SELECT t.account_pk, '' AS k, t.added_at FROM targets t WHERE t.campaign_id = ?1)
SELECT {{group}} AS grp, {_COUNTS}
FROM b {{joins}} {_JOINS}
GROUP BY grp ORDER BY grp
"""
# The accounts each step (or segment) called or texted, once per step (or segment): counted per
# step from each pass, an account both called and texted (or promising both ways) taken off once
# (|A or B| = |A| + |B| - |A and B|), so that only those pairs are joined.
CONTACT_FUNNEL = """
WITH {per_account},
per_step(k, accounts, attempted, calls, contacted, right_party, right_party_calls, promised, texted,
    texts, delivered, replied, opted_out) AS (
    SELECT k, count(*), count(*), sum(placed), sum(contacted), 0, 0, sum(promised), 0, 0, 0, 0, 0
    FROM calls GROUP BY k
    UNION ALL SELECT k, 0, 0, 0, 0, count(*), sum(calls), 0, 0, 0, 0, 0, 0 FROM rpc GROUP BY k
    UNION ALL SELECT k, count(*), 0, 0, 0, 0, 0, 0, count(*), sum(sent), sum(delivered), 0, 0
    FROM texts GROUP BY k
    UNION ALL SELECT k, 0, 0, 0, 0, 0, 0, sum(promised), 0, 0, 0, sum(replied), sum(stop)
    FROM replies GROUP BY k
    UNION ALL SELECT c.k, -count(*), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
    FROM calls c JOIN texts x ON x.account_pk = c.account_pk AND x.k = c.k GROUP BY c.k
    UNION ALL SELECT c.k, 0, 0, 0, 0, 0, 0, -count(*), 0, 0, 0, 0, 0
    FROM calls c JOIN replies r ON r.account_pk = c.account_pk AND r.k = c.k
    WHERE c.promised = 1 AND r.promised = 1 GROUP BY c.k)
SELECT k AS grp, sum(accounts) AS accounts, sum(attempted) AS attempted, sum(calls) AS calls,
    sum(contacted) AS contacted, sum(right_party) AS right_party, sum(right_party_calls) AS right_party_calls,
    sum(promised) AS promised, sum(texted) AS texted, sum(texts) AS texts, sum(delivered) AS delivered,
    sum(replied) AS replied, sum(opted_out) AS opted_out
FROM per_step GROUP BY k ORDER BY k
"""
# Owed nothing at entry: the payments made up to the moment it entered cover the amount due.
_PAID_UP = (
    "a.amount_minor <= coalesce((SELECT sum(p.amount_minor) FROM payments p "
    "WHERE p.account_pk = b.account_pk AND p.paid_at <= b.added_at), 0)"
)
_FIRST_AT = "min(coalesce(calls.first_at, texts.first_at), coalesce(texts.first_at, calls.first_at))"
_ACCOUNT = "JOIN accounts a ON a.id = b.account_pk"
_ARM = "LEFT JOIN arm_assignments arm ON arm.campaign_id = ?1 AND arm.account_pk = b.account_pk"
# by: (the SQL group, the join it needs).
_ACCOUNT_GROUPS = {
    "": ("''", ""),
    "arm": ("coalesce(arm.arm, '')", _ARM),
    "bucket": (f"json_array(a.time_zones, b.added_at, a.due_date, {_PAID_UP})", _ACCOUNT),
    "period": (f"iif({_FIRST_AT} IS NULL, NULL, json_array(a.time_zones, {_slot(_FIRST_AT)}))", _ACCOUNT),
}
_CONTACT_GROUPS = {"step": lambda column: column, "segment": _segment}
GROUPS = ("", "arm", "step", "segment", "bucket", "period")

# Calls and texts by the account's zones and the UTC quarter hour they were made in.
BY_HOUR = f"""
SELECT a.time_zones AS zones, c.slot, sum(c.calls) AS calls, sum(c.contacted) AS contacted,
    sum(c.right_party) AS right_party, sum(c.texts) AS texts
FROM (
    SELECT t.account_pk, {_slot("t.decided_at")} AS slot, 1 AS calls,
        coalesce(t.disposition, '') IN {_PERSON} AS contacted,
        CASE WHEN t.outcome IS NOT NULL THEN coalesce((SELECT json_extract(o.detail, '$.right_party') = 1
            FROM outcomes o WHERE o.attempt_id = t.id), 0) ELSE 0 END AS right_party, 0 AS texts
    FROM attempts t WHERE t.campaign_id = ?1 AND {_PLACED}
    UNION ALL
    SELECT account_pk, {_slot("decided_at")}, 0, 0, 0, 1 FROM messages WHERE campaign_id = ?1 AND {_SENT}
) c JOIN accounts a ON a.id = c.account_pk
GROUP BY a.time_zones, c.slot
"""


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
    promised: int  # accounts that promised to pay, on a call or by text
    texted: int  # accounts with a text handed to the gateway
    texts: int
    delivered: int
    replied: int  # accounts that answered a text
    opted_out: int  # accounts that replied STOP


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
    """The store's report queries (a part of `SqliteStore`)."""

    _db: Database

    async def funnel(self, campaign_id: int, by: str = "") -> list[FunnelRow]:
        """The campaign's funnel for all its accounts (`by` ""), or per arm, strategy step, segment,
        bucket at entry, or ISO week of the first contact ("" for accounts never contacted)."""
        if by not in GROUPS:
            raise ValueError(f"a funnel by {by!r}: by one of {sorted(GROUPS)}")
        async with self._db.read() as db:
            rows = await fetch_all(db, _funnel_sql(by), (campaign_id,))
        label = _LABELS.get(by, str)
        return _merged((label(r["grp"]), [int(r[k]) for k in _COUNT_NAMES]) for r in rows)

    async def contacts_by_hour(self, campaign_id: int) -> list[HourRow]:
        """Calls placed, answered by a person, reaching the right party, and texts sent, per hour
        0-23 of the borrower's local day: every hour, in order, 0 where nothing was made."""
        async with self._db.read() as db:
            rows = await fetch_all(db, BY_HOUR, (campaign_id,))
        counts = [[0, 0, 0, 0] for _ in range(24)]
        for row in rows:
            hour = _local(row["zones"], row["slot"]).hour
            for i, key in enumerate(("calls", "contacted", "right_party", "texts")):
                counts[hour][i] += int(row[key])
        return [HourRow(hour, *c) for hour, c in enumerate(counts)]


def _funnel_sql(by: str) -> str:
    if by in _CONTACT_GROUPS:
        key = _CONTACT_GROUPS[by]
        keys = {"k_call": "step", "k_rpc": "t.step", "k_text": "step", "k_reply": "m.step"}
        per_account = _PER_ACCOUNT.format(by="account_pk, k", **{n: key(c) for n, c in keys.items()})
        return CONTACT_FUNNEL.format(per_account=per_account)
    group, joins = _ACCOUNT_GROUPS[by]
    return ACCOUNT_FUNNEL.format(group=group, joins=joins)


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
    """The bucket on the local day the account entered, from [zones, added_at, due_date, paid up]."""
    zones, added, due, paid_up = json.loads(raw)
    if not added:
        return ""  # no entry time known
    at = from_db(added)
    day = at.astimezone(decision_zone(_zones(zones), at)).date()
    return bucket(0 if paid_up else max((day - date.fromisoformat(due)).days, 0))


def _week(raw: str | None) -> str:
    """The ISO week 'YYYY-Www' of the first contact's local day, from [zones, UTC quarter hour]."""
    if raw is None:
        return ""  # never called nor texted
    zones, slot = json.loads(raw)
    year, week, _ = _local(zones, slot).isocalendar()
    return f"{year}-W{week:02d}"


_LABELS: dict[str, Callable[[str], str]] = {"bucket": _entry_bucket, "period": _week}

"""The reports' money: promises kept, cures and recovery, entries (入催率), roll rates, cure curves and
the amount recovered per assigned account by arm (docs/reports.md, "How the money metrics are counted").

Money is counted in SQL by each payment's local day (`payments.paid_day`, written with the payment:
SQLite knows no time zones), per currency, over every account of the campaign (intention to treat).
Promises are judged in Python by `dialer.core.balance`, the rules `duecall payments show` uses, on
rows read in bulk. An account "at the start of day D" has had every payment of the days before D:
it owes its amount less those, and it is late (D - due days past due) when D is after its due date
and it owes something: `balance.days_past_due` on day D given only those payments.

The SQL is one text for SQLite and PostgreSQL: a truth value (never NULL here) summed as CASE WHEN
... THEN 1 ELSE 0 END (PostgreSQL adds up no boolean), and on PostgreSQL SQLite's julianday() of a
date and max/min of sums (NUMERIC there) from its migration 0018; its sums come back as Decimal,
made int here.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from dialer.core import balance
from dialer.store.db import Database, Row, fetch_all
from dialer.store.payments import local_day
from dialer.store.promise_counts import iso_week, read_payment
from dialer.store.promise_rollup import judge_batch, mark_unjudged, verdicts_sql

# Each query is one pass over the campaign's accounts (targets), with their payments summed per
# account through the payments_day index; the arm is joined only when it groups.
_ARM = "LEFT JOIN arm_assignments arm ON arm.campaign_id = t.campaign_id AND arm.account_pk = t.account_pk"
_ACCOUNTS = """SELECT a.id AS pk, a.amount_minor AS amount, a.currency, a.due_date AS due, {arm} AS arm
    FROM targets t JOIN accounts a ON a.id = t.account_pk {join} WHERE t.campaign_id = ?1"""
_PAID = """SELECT p.account_pk AS pk, {sums} FROM targets t JOIN payments p ON p.account_pk = t.account_pk
    WHERE t.campaign_id = ?1 AND {where} GROUP BY p.account_pk"""
CURES = """WITH
paid AS ({paid}),
acc AS ({accounts}),
late AS (
    SELECT acc.*, acc.amount - coalesce(paid.before, 0) AS owed, coalesce(paid.during, 0) AS during,
        (acc.due < ?2 AND acc.amount - coalesce(paid.before, 0) > 0) AS is_late
    FROM acc LEFT JOIN paid ON paid.pk = acc.pk)
SELECT {group} AS grp, currency,
    sum(CASE WHEN is_late THEN 1 ELSE 0 END) AS late_at_start,
    sum(CASE WHEN is_late AND during >= owed THEN 1 ELSE 0 END) AS cured,
    sum(CASE WHEN is_late THEN owed ELSE 0 END) AS overdue_minor,
    sum(CASE WHEN is_late THEN min(during, owed) ELSE 0 END) AS recovered_minor,
    sum(CASE WHEN is_late AND during > 0 THEN 1 ELSE 0 END) AS paying
FROM late GROUP BY grp, currency ORDER BY grp, currency"""
_PAID_BY_DUE = """SELECT p.account_pk AS pk, sum(p.amount_minor) AS paid
    FROM targets t JOIN accounts a ON a.id = t.account_pk
    JOIN payments p ON p.account_pk = a.id AND p.paid_day <= a.due_date
    WHERE t.campaign_id = ?1 AND {where} GROUP BY p.account_pk"""
ENTRIES = f"""WITH
paid AS ({_PAID_BY_DUE.format(where="a.due_date >= ?2 AND a.due_date < ?3")}),
acc AS ({{accounts}})
SELECT acc.arm, acc.due, count(*) AS due_count,
    sum(CASE WHEN acc.amount - coalesce(paid.paid, 0) > 0 THEN 1 ELSE 0 END) AS unpaid
FROM acc LEFT JOIN paid ON paid.pk = acc.pk WHERE acc.due >= ?2 AND acc.due < ?3
GROUP BY acc.arm, acc.due"""
ROLLS = """WITH
paid AS ({paid}),
acc AS ({accounts}),
owed AS (SELECT acc.due, julianday(acc.due) AS jd, {owed} FROM acc LEFT JOIN paid ON paid.pk = acc.pk)
SELECT {path} AS path, count(*) AS n FROM owed GROUP BY path"""
CURRENCIES = (
    "SELECT DISTINCT a.currency FROM targets t JOIN accounts a ON a.id = t.account_pk "
    "WHERE t.campaign_id = ?1 ORDER BY a.currency"
)
# Curves: k = 0 rows are the late accounts by currency and due date (count, owed); k >= 1 rows the
# cures (count) and the money (each account's payments capped at what it owed) of day k past due.
CURVES = f"""WITH
paid AS ({_PAID_BY_DUE.format(where="a.due_date < ?2")}),
late AS MATERIALIZED (
    SELECT a.id AS pk, a.currency, a.due_date AS due, julianday(a.due_date) AS jd,
        a.amount_minor - coalesce(paid.paid, 0) AS owed
    FROM targets t JOIN accounts a ON a.id = t.account_pk LEFT JOIN paid ON paid.pk = a.id
    WHERE t.campaign_id = ?1 AND a.due_date < ?2 AND a.amount_minor - coalesce(paid.paid, 0) > 0),
later AS (
    SELECT l.currency, l.due, l.owed, p.amount_minor AS amount,
        CAST(julianday(p.paid_day) - l.jd AS INTEGER) AS k,
        sum(p.amount_minor) OVER (PARTITION BY l.pk ORDER BY p.paid_day, p.id) AS paid
    FROM late l JOIN payments p ON p.account_pk = l.pk AND p.paid_day > l.due AND p.paid_day <= ?2)
SELECT 0 AS k, currency, due, count(*) AS a, sum(owed) AS b FROM late GROUP BY currency, due
UNION ALL
SELECT k, currency, due, sum(CASE WHEN paid >= owed AND paid - amount < owed THEN 1 ELSE 0 END) AS a,
    sum(min(paid, owed) - min(paid - amount, owed)) AS b
FROM later WHERE k <= ?3 GROUP BY currency, due, k"""
RECOVERED = """WITH paid AS (
    SELECT arm.account_pk AS pk,
        sum(CASE WHEN {before} THEN p.amount_minor ELSE 0 END) AS before,
        sum(CASE WHEN {before} THEN 0 ELSE p.amount_minor END) AS after
    FROM arm_assignments arm JOIN payments p ON p.account_pk = arm.account_pk
    WHERE arm.campaign_id = ?1 GROUP BY arm.account_pk)
SELECT arm.arm, a.currency,
    max(0, min(coalesce(paid.after, 0), a.amount_minor - coalesce(paid.before, 0))) AS recovered,
    count(*) AS accounts
FROM arm_assignments arm JOIN accounts a ON a.id = arm.account_pk LEFT JOIN paid ON paid.pk = arm.account_pk
WHERE arm.campaign_id = ?1 GROUP BY arm.arm, a.currency, recovered"""
MISSING_DAYS = (
    "SELECT p.id, p.payment_id, p.amount_minor, p.currency, p.paid_at, p.paid_on, a.time_zones "
    "FROM payments p JOIN accounts a ON a.id = p.account_pk WHERE p.paid_day IS NULL LIMIT ?"
)
SET_DAY = "UPDATE payments SET paid_day = ? WHERE id = ? AND paid_day IS NULL"
_FILL_BATCH = 20_000

CURES_BY = ("", "arm", "bucket")
ENTRIES_BY = ("", "arm", "period")
PROMISES_BY = ("", "arm", "step", "segment", "bucket", "period")


@dataclass(frozen=True, slots=True)
class PromiseRow:
    """Promises made in the campaign, by their verdict on `today` (dialer.core.balance)."""

    group: str
    promises: int
    due: int  # with a verdict: kept (early too), partially kept or broken
    kept: int
    partially_kept: int
    broken: int
    pending: int  # its day has not ended and it is not paid in full yet


@dataclass(frozen=True, slots=True)
class CureRow:
    """Accounts late at the period's start (one currency), and what became of them by its end."""

    group: str
    currency: str
    late_at_start: int
    cured: int  # nothing owed at the end of the period's last day
    overdue_minor: int  # owed at the period's start by those accounts
    recovered_minor: int  # paid during the period by them, each at most what it owed at the start
    paying: int  # of them, accounts that paid something during the period


@dataclass(frozen=True, slots=True)
class EntryRow:
    """Accounts due in the period (their first day late in it too), and those unpaid on that day."""

    group: str
    due: int
    unpaid_day1: int  # owed something when their due date ended: in collection from day 1


@dataclass(frozen=True, slots=True)
class RollRow:
    """Accounts in `from_bucket` at the start of `month` and in `to_bucket` at its end."""

    month: date  # its first day
    from_bucket: str
    to_bucket: str
    accounts: int


@dataclass(frozen=True, slots=True)
class CurveRow:
    """By the end of day `days_past_due`, of the accounts that became late that long ago or more."""

    days_past_due: int
    late: int  # owed something when their due date ended, and due at least this many days ago
    cured: int  # of them, paid in full by the end of this day past due
    overdue_minor: int  # what they owed when their due date ended
    recovered_minor: int  # paid by them after it, up to this day, each at most what it owed
    currency: str


def _promise_row(r: Row) -> PromiseRow:
    promises, due, kept, partly, broken = (
        int(r[k]) for k in ("promises", "due", "kept", "partially_kept", "broken")
    )
    return PromiseRow(r["grp"], promises, due, kept, partly, broken, promises - due)


class Outcomes:
    """The store's money queries for the reports (a part of `SqliteStore`)."""

    _db: Database

    async def promise_verdicts(self, campaign_id: int, today: date, by: str = "") -> list[PromiseRow]:
        """The campaign's promises (calls' and texts' answers) and their verdicts on `today`."""
        _allowed("promise_verdicts", by, PROMISES_BY)
        await self.refresh_promise_verdicts(campaign_id, today)
        async with self._db.read() as db:
            found = await fetch_all(db, verdicts_sql(by), (campaign_id, today.isoformat()))
        rows = [_promise_row(r) for r in found]
        return rows or ([PromiseRow("", 0, 0, 0, 0, 0, 0)] if by == "" else [])

    async def refresh_promise_verdicts(self, campaign_id: int, today: date) -> None:
        """Judge again the promises of the accounts whose facts changed since the last report (all
        of them the first time), in small write transactions so that the dialer's writes go on."""
        async with self._db.write() as db:
            await mark_unjudged(db, campaign_id, today)
        while True:
            async with self._db.write() as db:
                if not await judge_batch(db, campaign_id, today):
                    break

    async def cures(self, campaign_id: int, start: date, end: date, by: str = "") -> list[CureRow]:
        """Accounts late at the start of `start`, and by the end of `end` cured and paid, per currency."""
        _allowed("cures", by, CURES_BY)
        _ordered(start, end)
        bucket = _bucket_at(start, "due", "owed")
        group = {"": "''", "arm": "arm", "bucket": bucket}[by]
        sums = (
            "sum(CASE WHEN p.paid_day < ?2 THEN p.amount_minor ELSE 0 END) AS before, "
            "sum(CASE WHEN p.paid_day >= ?2 THEN p.amount_minor ELSE 0 END) AS during"
        )
        paid = _PAID.format(sums=sums, where="p.paid_day <= ?3")
        sql = CURES.format(paid=paid, accounts=_accounts(by == "arm"), group=group)
        rows = await self._db.fetch_all(sql, (campaign_id, start.isoformat(), end.isoformat()))
        found = [
            CureRow(r["grp"], r["currency"], *(int(r[k] or 0) for k in list(r.keys())[2:])) for r in rows
        ]
        return found or ([CureRow("", "", 0, 0, 0, 0, 0)] if by == "" else [])

    async def entries(self, campaign_id: int, start: date, end: date, by: str = "") -> list[EntryRow]:
        """Accounts due from `start` to the day before `end` (so that their first day late is in the
        period), and those of them still owing when their due date ended."""
        _allowed("entries", by, ENTRIES_BY)
        _ordered(start, end)
        sql = ENTRIES.format(accounts=_accounts(by == "arm"))
        rows = await self._db.fetch_all(sql, (campaign_id, start.isoformat(), end.isoformat()))
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in rows:
            key = {"": "", "arm": r["arm"], "period": iso_week(date.fromisoformat(r["due"]))}[by]
            totals[key][0] += int(r["due_count"])
            totals[key][1] += int(r["unpaid"])
        found = [EntryRow(group, due, unpaid) for group, (due, unpaid) in sorted(totals.items())]
        return found or ([EntryRow("", 0, 0)] if by == "" else [])

    async def roll_matrix(self, campaign_id: int, months: int, today: date | None = None) -> list[RollRow]:
        """For each of the `months` calendar months up to today's (that one so far: to the end of
        `today`), accounts by bucket at its start and at its end. `today` None: the UTC date now."""
        if months < 1:
            raise ValueError(f"a roll matrix of {months} months: at least 1")
        spans = _months(today or _utc_today(), months)
        days = sorted({d for span in spans for d in span})
        rows = await self._db.fetch_all(_roll_sql(days), (campaign_id, days[-1].isoformat()))
        moves: Counter[tuple[date, str, str]] = Counter()
        for r in rows:
            bucket_on = dict(zip(days, r["path"].split(" "), strict=True))
            for first, after in spans:
                moves[(first, bucket_on[first], bucket_on[after])] += int(r["n"])
        order = {name: i for i, name in enumerate(_bucket_names())}
        found = [RollRow(month, f, t, n) for (month, f, t), n in moves.items()]
        return sorted(found, key=lambda r: (r.month, order[r.from_bucket], order[r.to_bucket]))

    async def curves(self, campaign_id: int, max_days: int, today: date | None = None) -> list[CurveRow]:
        """Day by day past due (1 to `max_days`), per currency: of the accounts that became late and
        whose that day has come by `today` (None: the UTC date now), how many cured, how much paid."""
        if max_days < 1:
            raise ValueError(f"curves over {max_days} days: at least 1")
        day = (today or _utc_today()).isoformat()
        async with self._db.read() as db:
            currencies = [r["currency"] for r in await fetch_all(db, CURRENCIES, (campaign_id,))]
            rows = await fetch_all(db, CURVES, (campaign_id, day, max_days))
        return _curves(currencies or [""], rows, today or _utc_today(), max_days)

    async def recovered_by_arm(
        self, campaign_id: int, since: date | None, currency: str | None = None
    ) -> dict[str, list[int]]:
        """Per arm, for every assigned account (reached or not), what it paid from `since` (None: from
        its assignment), at most what it owed then, in minor units, smallest first. One currency:
        `currency`, or the only one the assigned accounts have (several: ValueError naming them)."""
        found = await self.recovered_by_currency(campaign_id, since)
        if currency is None and len(found) > 1:
            raise ValueError(f"recovered_by_arm: the accounts are in {', '.join(found)}: name one currency")
        if currency is None:
            return next(iter(found.values()), {})
        return found.get(currency, {})

    async def recovered_by_currency(
        self, campaign_id: int, since: date | None
    ) -> dict[str, dict[str, list[int]]]:
        """`recovered_by_arm` for every currency of the assigned accounts, in one read."""
        before = "p.paid_day < ?2" if since else "p.paid_at < arm.assigned_at"
        params = (campaign_id, since.isoformat()) if since else (campaign_id,)
        rows = await self._db.fetch_all(RECOVERED.format(before=before), params)
        amounts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for r in rows:
            amounts[r["currency"]][r["arm"]] += [int(r["recovered"])] * int(r["accounts"])
        return {
            currency: {arm: sorted(values) for arm, values in sorted(arms.items())}
            for currency, arms in sorted(amounts.items())
        }

    async def fill_payment_days(self) -> int:
        """Give each payment without one its local day (rows from before migration 0014, or written
        by SQL alone); returns how many were filled. Looked for on the read connection first: a
        store with nothing to fill opens without taking the write lock."""
        filled = 0
        while rows := await self._db.fetch_all(MISSING_DAYS, (_FILL_BATCH,)):
            days = await asyncio.to_thread(_days, rows)
            async with self._db.write() as db:
                await db.executemany(SET_DAY, days)
            filled += len(rows)
        return filled


def _allowed(query: str, by: str, groups: Sequence[str]) -> None:
    if by not in groups:
        raise ValueError(f"{query} by {by!r}: by one of {', '.join(map(repr, groups))}")


def _ordered(start: date, end: date) -> None:
    if end < start:
        raise ValueError(f"a period from {start} to {end}: it ends before it starts")


def _utc_today() -> date:
    return datetime.now(UTC).date()


def _bucket_names() -> list[str]:
    return [name for _, name in balance.BUCKETS] + [balance.OVER]


def _bucket_sql(days: str) -> str:
    """balance.bucket in SQL, from its table."""
    whens = " ".join(f"WHEN {days} <= {upper} THEN '{name}'" for upper, name in balance.BUCKETS)
    return f"CASE {whens} ELSE '{balance.OVER}' END"


def _julian(day: date) -> float:
    """SQLite's julianday() of a date (a whole day and a half: a difference of two is exact)."""
    return day.toordinal() + 1721424.5


def _bucket_at(day: date, due: str, owed: str, julian_due: str = "") -> str:
    """The bucket at the start of `day` of an account due on `due` owing `owed` then (SQL)."""
    days = f"CAST({_julian(day)} - {julian_due or f'julianday({due})'} AS INTEGER)"
    return f"CASE WHEN {due} < '{day.isoformat()}' AND {owed} > 0 THEN {_bucket_sql(days)} ELSE 'M0' END"


def _accounts(arm: bool) -> str:
    return _ACCOUNTS.format(arm="coalesce(arm.arm, '')" if arm else "''", join=_ARM if arm else "")


def _months(today: date, months: int) -> list[tuple[date, date]]:
    """(first day, the day after its end) of each month up to today's; today's ends after today."""
    first = today.replace(day=1)
    starts = [first]
    while len(starts) < months:
        starts.insert(0, (starts[0] - timedelta(days=1)).replace(day=1))
    ends = [*starts[1:], min((first + timedelta(days=32)).replace(day=1), today + timedelta(days=1))]
    return list(zip(starts, ends, strict=True))


def _roll_sql(days: Sequence[date]) -> str:
    """What each account owed at the start of each of `days` (the first days of months, and the day
    after the last one's end: one column each), and its buckets then as one path "M0 M1 ..."."""
    sums = ", ".join(
        f"sum(CASE WHEN p.paid_day < '{d.isoformat()}' THEN p.amount_minor ELSE 0 END) AS p{i}"
        for i, d in enumerate(days)
    )
    owed = ", ".join(f"acc.amount - coalesce(paid.p{i}, 0) AS o{i}" for i in range(len(days)))
    path = " || ' ' || ".join(_bucket_at(d, "due", f"o{i}", "jd") for i, d in enumerate(days))
    paid = _PAID.format(sums=sums, where="p.paid_day < ?2")
    return ROLLS.format(paid=paid, accounts=_accounts(False), owed=owed, path=path)


def _curves(currencies: Sequence[str], rows: Iterable[Row], today: date, max_days: int) -> list[CurveRow]:
    """Cumulate the cures and amounts of each day past due; day k counts the accounts due k days
    before `today` or earlier (for the others that day has not come)."""
    late: dict[str, dict[date, tuple[int, int]]] = defaultdict(dict)  # currency: due: (accounts, owed)
    steps: dict[tuple[str, date, int], tuple[int, int]] = {}  # (currency, due, k): (cured, paid)
    for r in rows:
        due = date.fromisoformat(r["due"])
        counts = (int(r["a"]), int(r["b"]))
        if r["k"] == 0:
            late[r["currency"]][due] = counts
        else:
            steps[(r["currency"], due, r["k"])] = counts
    found = []
    for currency in currencies:
        dues = late[currency]
        cured: Counter[date] = Counter()
        paid: Counter[date] = Counter()
        for k in range(1, max_days + 1):
            for due in dues:
                c, p = steps.get((currency, due, k), (0, 0))
                cured[due], paid[due] = cured[due] + c, paid[due] + p
            come = [due for due in dues if due + timedelta(days=k) <= today]
            n, owed = sum(dues[d][0] for d in come), sum(dues[d][1] for d in come)
            found.append(
                CurveRow(k, n, sum(cured[d] for d in come), owed, sum(paid[d] for d in come), currency)
            )
    return found


def _days(rows: Sequence[Row]) -> list[tuple[str, int]]:
    return [(local_day(read_payment(r), json.loads(r["time_zones"])).isoformat(), r["id"]) for r in rows]

"""Read-side queries for the audit page: finding calls, one call's whole story, CSV rows.

Every filter is written against `attempts` alone (account and campaign by a
subquery on their unique keys, flags by the flag index), so the planner can
drive each query from one of the attempts indexes and the count never needs
the joins. Results come newest first.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Generic, TypeVar

from dialer.store import Reads
from dialer.store.chain import COLUMNS, StoredEvent
from dialer.store.db import Row as DbRow

PAGE_SIZE = 50
Row = TypeVar("Row")
EXPORT_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class CallFilter:
    """What an auditor searches for; every field is optional. Dates are UTC, inclusive."""

    date_from: date | None = None
    date_to: date | None = None
    account_id: str = ""
    campaign: str = ""
    outcome: str = ""
    disposition: str = ""
    flag: str = ""

    def as_dict(self) -> dict[str, str]:
        """The non-empty filters as text (for links, the audit log and CSV names)."""
        found = {
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "account": self.account_id,
            "campaign": self.campaign,
            "outcome": self.outcome,
            "disposition": self.disposition,
            "flag": self.flag,
        }
        return {k: v for k, v in found.items() if v}


@dataclass(frozen=True, slots=True)
class CallRow:
    """One call in a list or a CSV export."""

    id: int
    decided_at: str
    answered_at: str | None
    ended_at: str | None
    attempt_no: int
    disposition: str | None
    outcome: str | None
    phone_e164: str
    account_id: str
    name: str
    campaign: str
    account_pk: int  # the account's key: the link to its timeline (its id may be the number)


@dataclass(frozen=True, slots=True)
class Page(Generic[Row]):
    rows: list[Row]
    total: int
    page: int  # 1-based
    pages: int


def page_of(total: int, page: int, size: int) -> tuple[int, int]:
    """(the page asked for, kept within range; how many pages there are)."""
    pages = max(1, -(-total // size))
    return min(max(1, page), pages), pages


@dataclass(frozen=True, slots=True)
class Recording:
    path: str
    kind: str
    sha256: str
    bytes: int
    duration_ms: int
    stored_at: str
    purged_at: str | None


@dataclass(frozen=True, slots=True)
class IvrStepRow:
    seq: int
    at: str
    node: str
    kind: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallDetail:
    call: CallRow
    attempt: dict[str, Any]  # the whole attempts row
    account: dict[str, Any]  # account_id, name, phone_e164, region, time_zones, language
    outcome: dict[str, Any] | None  # the outcomes row
    flags: list[str]
    recordings: list[Recording]  # the call's own recording first, then replies
    events: list[StoredEvent]  # its chain events, by seq
    steps: list[IvrStepRow]


_ROW_COLUMNS = (
    "t.id, t.decided_at, t.answered_at, t.ended_at, t.attempt_no, t.disposition, t.outcome, "
    "t.phone_e164, a.account_id, a.name AS name, c.name AS campaign, t.account_pk"
)
_FROM = "attempts t JOIN accounts a ON a.id = t.account_pk JOIN campaigns c ON c.id = t.campaign_id"


def _where(f: CallFilter) -> tuple[str, list[Any]]:
    """SQL conditions on `attempts t` only, with their parameters."""
    conds, params = _dates("t.decided_at", f)
    if f.account_id:
        conds.append("t.account_pk = (SELECT id FROM accounts WHERE account_id = ?)")
        params.append(f.account_id)
    if f.campaign:
        conds.append("t.campaign_id = (SELECT id FROM campaigns WHERE name = ?)")
        params.append(f.campaign)
    if f.outcome:
        conds.append("t.outcome = ?")
        params.append(f.outcome)
    if f.disposition:
        conds.append("t.disposition = ?")
        params.append(f.disposition)
    if f.flag:
        conds.append("t.id IN (SELECT attempt_id FROM attempt_flags WHERE flag = ?)")
        params.append(f.flag)
    return (" WHERE " + " AND ".join(conds)) if conds else "", params


def _dates(column: str, f: CallFilter) -> tuple[list[str], list[Any]]:
    """The filter's date range (UTC days, inclusive) on `column`."""
    conds: list[str] = []
    params: list[Any] = []
    if f.date_from:
        conds.append(f"{column} >= ?")
        params.append(f.date_from.isoformat())
    if f.date_to and f.date_to < date.max:  # the last day there is has no next day: no upper bound
        # Stored times are ISO text, so "before the next day" is a plain text comparison.
        conds.append(f"{column} < ?")
        params.append((f.date_to + timedelta(days=1)).isoformat())
    return conds, params


def _call(row: DbRow) -> CallRow:
    return CallRow(**{name: row[name] for name in CallRow.__dataclass_fields__})


async def search(db: Reads, f: CallFilter, page: int = 1, size: int = PAGE_SIZE) -> Page[CallRow]:
    """One page of matching calls, newest first, with the total number of matches."""
    where, params = _where(f)
    total = await count(db, f"SELECT count(*) AS n FROM attempts t{where}", params)
    page, pages = page_of(total, page, size)
    rows = await db.fetch_all(
        f"SELECT {_ROW_COLUMNS} FROM {_FROM}{where} ORDER BY t.decided_at DESC, t.id DESC LIMIT ? OFFSET ?",
        [*params, size, (page - 1) * size],
    )
    return Page([_call(r) for r in rows], total, page, pages)


async def export_rows(db: Reads, f: CallFilter, chunk: int = EXPORT_CHUNK) -> AsyncIterator[list[CallRow]]:
    """Every matching call, newest first, a chunk at a time.

    Keyset paging (after the last row seen) rather than one long cursor: no statement stays
    open between chunks, and each chunk costs the same.
    """
    where, params = _where(f)
    after = "(t.decided_at, t.id) < (?, ?)"
    last: tuple[str, int] | None = None
    while True:
        cond, extra = where, list(params)
        if last is not None:
            cond = f"{where} AND {after}" if where else f" WHERE {after}"
            extra += list(last)
        rows = await db.fetch_all(
            f"SELECT {_ROW_COLUMNS} FROM {_FROM}{cond} ORDER BY t.decided_at DESC, t.id DESC LIMIT ?",
            [*extra, chunk],
        )
        found = [_call(r) for r in rows]
        if not found:
            return
        yield found
        if len(found) < chunk:
            return
        last = (found[-1].decided_at, found[-1].id)


@dataclass(frozen=True, slots=True)
class BlockedRow:
    """A contact the policy refused (a `contact.blocked` event): who, when, why, until when."""

    seq: int
    at: str
    account_id: str
    campaign: str
    name: str
    phone: str
    reasons: list[dict[str, str]]
    next_allowed_at: str | None


async def blocked(
    db: Reads, f: CallFilter, rule: str = "", page: int = 1, size: int = PAGE_SIZE
) -> Page[BlockedRow]:
    """One page of refused contacts, newest first, with how many match (dates, account, campaign, rule)."""
    conds, params = _dates("e.at", f)
    conds.insert(0, "e.kind = 'contact.blocked'")
    if f.account_id:
        conds.append("e.account_id = ?")
        params.append(f.account_id)
    if f.campaign:
        conds.append("e.campaign_id = (SELECT id FROM campaigns WHERE name = ?)")
        params.append(f.campaign)
    if rule:
        conds.append(
            "EXISTS (SELECT 1 FROM json_each(e.data, '$.reasons') r "
            "WHERE json_extract(r.value, '$.rule') = ?)"
        )
        params.append(rule)
    where = " WHERE " + " AND ".join(conds)
    total = await count(db, f"SELECT count(*) AS n FROM audit_events e{where}", params)
    page, pages = page_of(total, page, size)
    rows = await db.fetch_all(
        "SELECT e.seq, e.at, e.account_id, coalesce(c.name, '') AS campaign, coalesce(a.name, '') AS name, "
        "e.data "
        "FROM audit_events e LEFT JOIN campaigns c ON c.id = e.campaign_id "
        f"LEFT JOIN accounts a ON a.account_id = e.account_id{where} ORDER BY e.at DESC, e.seq DESC "
        "LIMIT ? OFFSET ?",
        [*params, size, (page - 1) * size],
    )
    found = []
    for r in rows:
        d = json.loads(r["data"])
        found.append(
            BlockedRow(
                r["seq"],
                r["at"],
                r["account_id"] or "",
                r["campaign"],
                r["name"],
                d.get("phone", ""),
                d.get("reasons", []),
                d.get("next_allowed_at"),
            )
        )
    return Page(found, total, page, pages)


async def call_detail(db: Reads, attempt_id: int) -> CallDetail | None:
    """Everything stored about one call, or None if there is no such attempt."""
    first = await call_row(db, attempt_id)
    if first is None:
        return None
    attempt = await _one(db, "SELECT * FROM attempts WHERE id = ?", attempt_id)
    assert attempt is not None
    account = await _one(
        db,
        "SELECT account_id, name, phone_e164, region, time_zones, tz_derived, language "
        "FROM accounts WHERE id = ?",
        attempt["account_pk"],
    )
    outcome = await _one(db, "SELECT * FROM outcomes WHERE attempt_id = ?", attempt_id)
    flags = [
        r["flag"]
        for r in await db.fetch_all(
            "SELECT flag FROM attempt_flags WHERE attempt_id = ? ORDER BY flag", (attempt_id,)
        )
    ]
    return CallDetail(
        call=first,
        attempt=attempt,
        account=account or {},
        outcome=outcome,
        flags=flags,
        recordings=await recordings(db, attempt_id),
        events=await events_for(db, attempt_id),
        steps=await _steps(db, attempt_id),
    )


async def call_row(db: Reads, attempt_id: int) -> CallRow | None:
    first = await db.fetch_one(f"SELECT {_ROW_COLUMNS} FROM {_FROM} WHERE t.id = ?", (attempt_id,))
    return _call(first) if first else None


async def recordings(db: Reads, attempt_id: int) -> list[Recording]:
    rows = await db.fetch_all(
        "SELECT path, kind, sha256, bytes, duration_ms, stored_at, purged_at FROM recordings "
        "WHERE attempt_id = ? ORDER BY kind = 'reply', stored_at, path",
        (attempt_id,),
    )
    return [Recording(**{name: r[name] for name in Recording.__dataclass_fields__}) for r in rows]


async def events_for(db: Reads, attempt_id: int) -> list[StoredEvent]:
    rows = await db.fetch_all(
        # In the order things happened: an opt-out is written the moment it is chosen, before the
        # call's own events, which are stored (with their times) when it ends.
        f"SELECT {COLUMNS} FROM audit_events WHERE attempt_id = ? ORDER BY at, seq",
        (attempt_id,),
    )
    return [StoredEvent.from_row(r) for r in rows]


async def previous_hashes(db: Reads, seqs: list[int]) -> dict[int, str]:
    """The hash of the event just before each of `seqs` (seq -> hash of seq - 1)."""
    wanted = [s - 1 for s in seqs if s > 1]
    found: dict[int, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = await db.fetch_all(
            f"SELECT seq, hash FROM audit_events WHERE seq IN ({','.join('?' * len(chunk))})", chunk
        )
        found.update({int(r["seq"]) + 1: str(r["hash"]) for r in rows})
    return found


async def _steps(db: Reads, attempt_id: int) -> list[IvrStepRow]:
    rows = await db.fetch_all(
        "SELECT seq, at, node, kind, detail FROM ivr_steps WHERE attempt_id = ? ORDER BY seq", (attempt_id,)
    )
    return [IvrStepRow(r["seq"], r["at"], r["node"], r["kind"], json.loads(r["detail"])) for r in rows]


async def _one(db: Reads, sql: str, *params: Any) -> dict[str, Any] | None:
    row = await db.fetch_one(sql, params)
    return dict(row) if row else None


async def count(db: Reads, sql: str, params: list[Any]) -> int:
    row = await db.fetch_one(sql, params)
    return int(row["n"]) if row else 0


async def choices(db: Reads) -> dict[str, list[str]]:
    """Values for the filter form's drop-downs (campaigns are few; flags come from their index)."""
    campaigns = [r["name"] for r in await db.fetch_all("SELECT name FROM campaigns ORDER BY name")]
    flags = [r["flag"] for r in await db.fetch_all("SELECT DISTINCT flag FROM attempt_flags ORDER BY flag")]
    return {"campaign": campaigns, "flag": flags}

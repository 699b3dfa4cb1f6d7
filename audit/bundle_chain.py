"""`check-bundle --against-chain`: compare a bundle with the server's chain and tie it to anchors.

This is how a masked bundle is checked: each of its events must be the chain's event at that
seq, masked the same way (with the account's name and number as the database holds them now),
and the chain must run unbroken from the auditor's newest anchor before the call's events to
their oldest anchor at or after them. The database is opened read-only.
"""

from __future__ import annotations

import sqlite3
from itertools import takewhile
from pathlib import Path
from typing import Any

from audit.bundle import BundleError, event_entry
from audit.bundle_check import BundleReport, Loaded, check_recordings, load
from audit.masking import Masker, Plain
from audit.verify import connect_read_only, stored_events
from dialer.store.chain import COLUMNS, GENESIS, StoredEvent, check_link, first_break


def check_bundle_against_chain(path: Path, db_path: Path, anchors: dict[int, str]) -> BundleReport:
    """Check a bundle against the chain in `db_path`; `anchors` (seq -> hash) are the auditor's."""
    report = BundleReport()
    try:
        loaded = load(path)
        check_against_chain(loaded, db_path, anchors, report)
    except BundleError as exc:
        report.problems.append(f"{path}: refused: {exc}")
    except sqlite3.Error as exc:
        report.problems.append(f"{db_path}: cannot be read as a DueCall database: {exc}")
    return report


def check_against_chain(loaded: Loaded, db_path: Path, anchors: dict[int, str], report: BundleReport) -> None:
    ev = loaded.evidence
    report.masked, report.events = ev.masked, len(ev.events)
    conn = connect_read_only(db_path)
    try:
        masker = _masker(conn, loaded, report)
        if masker is None:
            return
        matched = _compare(conn, loaded, masker, report)
        if matched:
            _tie(conn, matched, anchors, report)
        _left_out(conn, loaded, report)
    finally:
        conn.close()
    check_recordings(loaded, report)


def _masker(conn: sqlite3.Connection, loaded: Loaded, report: BundleReport) -> Masker | None:
    attempts = {e.attempt_id for e in loaded.evidence.events if e.attempt_id is not None}
    if len(attempts) != 1:
        report.problems.append(f"the bundle's events name {len(attempts)} calls, not one")
        return None
    if not loaded.evidence.masked:
        return Plain()
    row: Any = conn.execute(
        "SELECT a.name, a.phone_e164 FROM attempts t JOIN accounts a ON a.id = t.account_pk WHERE t.id = ?",
        (attempts.pop(),),
    ).fetchone()
    if row is None:
        report.problems.append("the bundle's call is not in this database")
        return None
    return Masker(str(row[0]), str(row[1]))


def _compare(conn: sqlite3.Connection, loaded: Loaded, m: Masker, report: BundleReport) -> list[int]:
    """The seqs whose bundle event equals the chain's (masked alike) and whose link holds."""
    masked, matched = loaded.evidence.masked, []
    for entry in loaded.evidence.events:
        stored = _event(conn, entry.seq)
        if stored is None:
            report.problems.append(f"event {entry.seq}: not in this chain")
            continue
        want = event_entry(stored, m, masked)
        differ = [k for k, v in want.items() if getattr(entry, k) != v]
        if differ:
            report.problems.append(f"event {entry.seq}: differs from the chain's ({', '.join(differ)})")
            continue
        before = _event(conn, entry.seq - 1)
        broken = check_link(stored, entry.seq, before.hash if before else GENESIS)
        if broken is not None:
            report.problems.append(f"in the chain: {broken}")
            continue
        matched.append(entry.seq)
    if matched:
        report.proves.append(f"{len(matched)} events are the chain's, as this database holds it")
    return matched


def _event(conn: sqlite3.Connection, seq: int) -> StoredEvent | None:
    row = conn.execute(f"SELECT {COLUMNS} FROM audit_events WHERE seq = ?", (seq,)).fetchone()
    return StoredEvent.from_row(row) if row else None


def _tie(conn: sqlite3.Connection, matched: list[int], anchors: dict[int, str], report: BundleReport) -> None:
    """Walk the chain from the newest anchor before the events to the oldest one at or after them."""
    low, high = min(matched), max(matched)
    start = max(((s, h) for s, h in anchors.items() if s < low), default=(0, GENESIS))
    end = min(((s, h) for s, h in anchors.items() if s >= high), default=None)
    if end is None:
        report.cannot.append(
            f"that this database's chain is authentic: none of your anchors is at or after event {high} "
            "(take one, keep it elsewhere, and check again)"
        )
        return
    walk = takewhile(lambda e: e.seq <= end[0], stored_events(conn, after=start[0]))
    last, digest, broken = first_break(walk, *start)
    if broken is not None:
        report.problems.append(f"the chain between your anchors at {start[0]} and {end[0]}: {broken}")
    elif (last, digest) != end:
        report.problems.append(f"the chain does not lead to your anchor at event {end[0]} (rewritten or cut)")
    else:
        report.tied.update(matched)
        since = f"your anchor at event {start[0]}" if start[0] else "the first event"
        report.proves.append(f"the chain runs unbroken from {since} to your anchor at event {end[0]}")


def _left_out(conn: sqlite3.Connection, loaded: Loaded, report: BundleReport) -> None:
    """Events of the call the chain has and the bundle does not (up to its newest event)."""
    seqs = {e.seq for e in loaded.evidence.events}
    attempt = next(e.attempt_id for e in loaded.evidence.events if e.attempt_id is not None)
    rows = conn.execute(
        "SELECT seq FROM audit_events WHERE attempt_id = ? AND seq <= ?", (attempt, max(seqs))
    )
    missing = sorted(int(r[0]) for r in rows if int(r[0]) not in seqs)
    if missing:
        report.problems.append(f"the chain has events of this call the bundle leaves out: {missing[:10]}")

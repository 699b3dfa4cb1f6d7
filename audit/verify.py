"""`duecall audit verify`: re-check every link of the chain and every recording against it.

The chain is the authority: a recording's expected hash comes from its
`recording.stored` event, not from the recordings table, so changing a file and
the table together is still caught. The database is opened read-only.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialer.core.digest import sha256_file
from dialer.core.errors import StoreError
from dialer.store.chain import COLUMNS, GENESIS, BrokenLink, StoredEvent, first_break

BATCH = 5000
HASH_THREADS = 4  # hashlib releases the GIL on large buffers: files hash in parallel


@dataclass(frozen=True, slots=True)
class Expected:
    seq: int  # the recording.stored event
    sha256: str
    bytes: int


@dataclass
class VerifyReport:
    events: int = 0
    from_seq: int = 0  # checked after this event (an anchor); 0: the whole chain
    head_seq: int = 0
    head_hash: str = ""
    broken: BrokenLink | None = None
    recordings_checked: int = 0
    recordings_purged: int = 0
    recording_problems: list[str] = field(default_factory=list)
    anchors_checked: int = 0
    anchor_problems: list[str] = field(default_factory=list)
    chain_seconds: float = 0.0
    recordings_seconds: float = 0.0
    messages_checked: int = 0
    message_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        problems = self.recording_problems or self.anchor_problems or self.message_problems
        return self.broken is None and not problems


@dataclass
class _Texts:
    """What the chain says of each text and inbound text: the tables must agree with it."""

    sent: dict[int, tuple[str, str]] = field(default_factory=dict)  # id -> (phone, text)
    state: dict[int, str] = field(default_factory=dict)  # id -> latest state
    inbound: dict[int, tuple[str, str]] = field(default_factory=dict)  # id -> (phone, text)

    def watch(self, event: StoredEvent) -> None:
        if event.kind == "message.queued" and (data := _payload(event, "message_id", "phone", "text")):
            self.sent[int(data["message_id"])] = (data["phone"], data["text"])
            self.state[int(data["message_id"])] = "queued"
        elif event.kind == "message.state" and (data := _payload(event, "message_id", "state")):
            self.state[int(data["message_id"])] = data["state"]
        elif event.kind == "message.inbound" and (data := _payload(event, "inbound_id", "phone", "text")):
            self.inbound[int(data["inbound_id"])] = (data["phone"], data["text"])


def connect_read_only(db_path: Path) -> sqlite3.Connection:
    if not db_path.exists():
        raise FileNotFoundError(f"{db_path}: no such database")
    if not db_path.is_file():
        raise StoreError(f"{db_path}: not a database file")
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:  # a file that is not a DueCall database fails here, not halfway through a report
        conn.execute("SELECT seq FROM audit_events LIMIT 0")
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"{db_path}: cannot be read as a DueCall database ({exc})") from exc
    return conn


def stored_events(conn: sqlite3.Connection, after: int = 0) -> Iterator[StoredEvent]:
    cur = conn.execute(f"SELECT {COLUMNS} FROM audit_events WHERE seq>? ORDER BY seq", (after,))
    while rows := cur.fetchmany(BATCH):
        for row in rows:
            yield StoredEvent(*row)


def verify(db_path: Path, anchors: Path | None = None, since: tuple[int, str] | None = None) -> VerifyReport:
    """Check the chain and the recordings; with `since` (an anchored seq and hash), only what came
    after it: the events, and the recordings stored after it."""
    report = VerifyReport()
    conn = connect_read_only(db_path)
    try:
        started = time.perf_counter()
        texts = _Texts()
        expected, purged = _walk(conn, report, since or (0, GENESIS), texts)
        report.chain_seconds = time.perf_counter() - started
        started = time.perf_counter()
        _check_table(conn, expected, purged, report)
        _check_files(expected, purged, report)
        report.recordings_seconds = time.perf_counter() - started
        _check_texts(conn, texts, report)
        if anchors is not None and anchors.exists():
            _check_anchors(conn, anchors, report)
    finally:
        conn.close()
    return report


def _walk(
    conn: sqlite3.Connection, report: VerifyReport, start: tuple[int, str], texts: _Texts
) -> tuple[dict[str, Expected], set[str]]:
    """Check every link; collect what the chain says each recording is."""
    expected: dict[str, Expected] = {}
    purged: set[str] = set()

    def watched() -> Iterator[StoredEvent]:
        for event in stored_events(conn, after=start[0]):
            # A tampered event may not even parse: its link check (next) names it, so skip it here.
            if event.kind == "recording.stored" and (data := _payload(event, "path", "sha256", "bytes")):
                expected[data["path"]] = Expected(event.seq, data["sha256"], int(data["bytes"]))
                purged.discard(data["path"])
            elif event.kind == "recording.purged" and (data := _payload(event, "path")):
                purged.add(data["path"])
            else:
                texts.watch(event)
            yield event

    last, head, broken = first_break(watched(), *start)
    report.from_seq, report.head_seq, report.head_hash, report.broken = start[0], last, head, broken
    report.events = last - start[0]
    return expected, purged


def _payload(event: StoredEvent, *keys: str) -> dict[str, Any] | None:
    try:
        data = event.payload()
    except ValueError:
        return None
    return data if isinstance(data, dict) and all(k in data for k in keys) else None


def _check_table(
    conn: sqlite3.Connection, expected: dict[str, Expected], purged: set[str], report: VerifyReport
) -> None:
    """The recordings table must agree with the chain (the web page shows the table's rows)."""
    for path, sha, purged_at in conn.execute("SELECT path, sha256, purged_at FROM recordings ORDER BY path"):
        fact = expected.get(path)
        if fact is None and report.from_seq:
            continue  # stored before the anchor: not part of this check
        if fact is None:
            report.recording_problems.append(f"{path}: in the recordings table but never stored in the chain")
        elif fact.sha256 != sha:
            report.recording_problems.append(
                f"{path}: the recordings table's hash differs from the chain's (event {fact.seq})"
            )
        elif purged_at is not None and path not in purged:
            report.recording_problems.append(f"{path}: marked purged, but the chain has no purge of it")


def _check_texts(conn: sqlite3.Connection, texts: _Texts, report: VerifyReport) -> None:
    """The messages and inbound tables must say what the chain says (text, number, state)."""
    if not _has_table(conn, "messages"):
        return  # a database from before texts
    for mid, phone, text, state in conn.execute(
        "SELECT id, phone_e164, text, state FROM messages ORDER BY id"
    ):
        report.messages_checked += 1
        if mid not in texts.sent:
            if not report.from_seq:
                report.message_problems.append(
                    f"text {mid}: in the messages table but never queued in the chain"
                )
        elif texts.sent[mid] != (phone, text):
            report.message_problems.append(f"text {mid}: its number or text differs from the chain's")
        elif texts.state.get(mid) != state:
            report.message_problems.append(
                f"text {mid}: state {state!r} in the table, {texts.state.get(mid)!r} in the chain"
            )
    for iid, phone, text in conn.execute("SELECT id, phone_e164, text FROM inbound_messages ORDER BY id"):
        report.messages_checked += 1
        if iid not in texts.inbound:
            if not report.from_seq:
                report.message_problems.append(
                    f"inbound text {iid}: in the table but never received in the chain"
                )
        elif texts.inbound[iid] != (phone, text):
            report.message_problems.append(f"inbound text {iid}: its number or text differs from the chain's")


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone()
    return found is not None


def _check_files(expected: dict[str, Expected], purged: set[str], report: VerifyReport) -> None:
    kept = sorted((p, e) for p, e in expected.items() if p not in purged)
    report.recordings_purged = len(expected) - len(kept)
    with ThreadPoolExecutor(HASH_THREADS) as pool:
        results = list(pool.map(lambda item: _file_problem(*item), kept))
    report.recordings_checked = len(kept)
    report.recording_problems += [p for p in results if p]


def _file_problem(path: str, fact: Expected) -> str:
    file = Path(path)
    try:
        size = file.stat().st_size
        digest = sha256_file(file)
    except FileNotFoundError:
        return f"{path}: missing (stored in event {fact.seq}, never purged)"
    except OSError as exc:
        return f"{path}: cannot be read: {exc}"
    if digest != fact.sha256:
        return f"{path}: content changed since event {fact.seq} stored it ({size} bytes, was {fact.bytes})"
    return ""


def _check_anchors(conn: sqlite3.Connection, anchors: Path, report: VerifyReport) -> None:
    """Heads recorded earlier must still be in the chain: nothing was cut off or rewritten."""
    newest: Any = conn.execute("SELECT MAX(seq) FROM audit_events").fetchone()
    top = int(newest[0] or 0)
    for number, anchor in anchor_lines(anchors):
        where = f"{anchors}:{number}"
        if isinstance(anchor, str):
            report.anchor_problems.append(f"{where}: {anchor}")
            continue
        seq, digest = anchor
        report.anchors_checked += 1
        found = GENESIS if seq == 0 else _hash_at(conn, seq)
        if found is None and seq > top:
            report.anchor_problems.append(
                f"{where}: event {seq} is gone: it is past the head ({top}), "
                "so the chain was cut, or the anchor is not of this chain"
            )
        elif found is None:
            report.anchor_problems.append(f"{where}: event {seq} is gone (the chain was cut)")
        elif found != digest:
            report.anchor_problems.append(f"{where}: event {seq} has another hash (rewritten)")


def _hash_at(conn: sqlite3.Connection, seq: int) -> str | None:
    row: Any = conn.execute("SELECT hash FROM audit_events WHERE seq=?", (seq,)).fetchone()
    return None if row is None else str(row[0])


Anchor = tuple[int, str]
_ANCHOR_SEQ = re.compile(r"[0-9]+")
_ANCHOR_HASH = re.compile(r"[0-9a-f]{64}")
MAX_SEQ = 2**63 - 1  # SQLite's largest integer


def parse_anchor(line: str) -> Anchor | str:
    """'SEQ HASH [TIME]' -> (seq, hash), or why the line is not an anchor."""
    parts = line.split()
    if len(parts) < 2 or not _ANCHOR_SEQ.fullmatch(parts[0]) or not _ANCHOR_HASH.fullmatch(parts[1]):
        return "not 'SEQ HASH [TIME]' (SEQ a number 0 or more, HASH 64 lowercase hex digits)"
    if len(parts[0]) > len(str(MAX_SEQ)) or int(parts[0]) > MAX_SEQ:  # int() refuses 4,300+ digits
        return f"sequence number {parts[0][:40]}{'...' if len(parts[0]) > 40 else ''} is out of range"
    return int(parts[0]), parts[1]


def anchor_lines(anchors: Path) -> Iterator[tuple[int, Anchor | str]]:
    """(line number, (seq, hash) or why the line is not an anchor) for each anchor line;
    blank lines and # comments are skipped."""
    for number, line in enumerate(anchors.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, parse_anchor(line)


def read_anchors(anchors: Path) -> dict[int, str]:
    """Every well-formed anchor of a file (seq -> hash); ValueError naming the first bad line."""
    found: dict[int, str] = {}
    for number, anchor in anchor_lines(anchors):
        if isinstance(anchor, str):
            raise ValueError(f"{anchors}:{number}: {anchor}")
        if found.setdefault(anchor[0], anchor[1]) != anchor[1]:
            raise ValueError(f"{anchors}:{number}: event {anchor[0]} is anchored twice with different hashes")
    return found


def last_anchor(anchors: Path) -> Anchor | None:
    """The newest well-formed (seq, hash) line of an anchor file."""
    found = None
    for _, anchor in anchor_lines(anchors):
        if not isinstance(anchor, str):
            found = anchor
    return found


def head(db_path: Path) -> tuple[int, str]:
    """The newest event's (seq, hash), for an anchor; (0, genesis) on an empty chain."""
    conn = connect_read_only(db_path)
    try:
        row = conn.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)

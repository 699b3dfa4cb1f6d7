"""`duecall audit verify`: re-check every link of the chain and every recording against it.

The chain is the authority: a recording's expected hash comes from its
`recording.stored` event, not from the recordings table, so changing a file and
the table together is still caught. It reads through the store on either backend
(dialer/store/audit_reads.py): the chain in batches and the tables in one read
transaction, so they are compared as they stood at one moment; a SQLite file is
opened read-only. The recordings are hashed after that transaction, in threads.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from dialer.core.config import Settings
from dialer.core.digest import sha256_file
from dialer.store.audit_reads import AuditReading, AuditView, SqliteFile, StoredRecording
from dialer.store.chain import GENESIS, BrokenLink, StoredEvent, first_break
from dialer.store.opening import open_store

HASH_THREADS = 4  # hashlib releases the GIL on large buffers: files hash in parallel
T = TypeVar("T")


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


@dataclass
class _Seen:
    """What the chain says each recording is, and each text."""

    expected: dict[str, Expected] = field(default_factory=dict)
    purged: set[str] = field(default_factory=set)
    texts: _Texts = field(default_factory=_Texts)

    def watch(self, event: StoredEvent) -> None:
        # A tampered event may not even parse: its link check names it, so skip it here.
        if event.kind == "recording.stored" and (data := _payload(event, "path", "sha256", "bytes")):
            self.expected[data["path"]] = Expected(event.seq, data["sha256"], int(data["bytes"]))
            self.purged.discard(data["path"])
        elif event.kind == "recording.purged" and (data := _payload(event, "path")):
            self.purged.add(data["path"])
        else:
            self.texts.watch(event)


@asynccontextmanager
async def reading(s: Settings) -> AsyncIterator[AuditReading]:
    """The chain of the store `s` names: PostgreSQL's through the store, a SQLite file read-only
    (never created or migrated by checking it)."""
    reads = (
        await open_store(s)
        if s.store.postgres_url()
        else await SqliteFile.open(s.path(s.store.sqlite_file()))
    )
    try:
        yield reads
    finally:
        await reads.close()


async def verify_store(
    reads: AuditReading, anchors: Path | None = None, since: tuple[int, str] | None = None
) -> VerifyReport:
    """Check the chain, the tables and the recordings; with `since` (an anchored seq and hash), only
    what came after it: the events, and the recordings stored after it."""
    report, seen = VerifyReport(), _Seen()
    held = await asyncio.to_thread(_held, anchors)
    async with reads.audit_view() as view:
        started = time.perf_counter()
        await _walk(view, report, since or (0, GENESIS), seen)
        report.chain_seconds = time.perf_counter() - started
        started = time.perf_counter()
        _check_table(await view.recordings(), seen, report)
        table_seconds = time.perf_counter() - started
        await _check_texts(view, seen.texts, report)
        if anchors is not None and held is not None:
            await _check_anchors(view, anchors, held, report)
    started = time.perf_counter()
    await asyncio.to_thread(_check_files, seen, report)
    report.recordings_seconds = table_seconds + time.perf_counter() - started
    return report


def verify(db_path: Path, anchors: Path | None = None, since: tuple[int, str] | None = None) -> VerifyReport:
    """`verify_store` on a SQLite file (the demo, the benchmarks)."""
    return _on_file(db_path, lambda reads: verify_store(reads, anchors, since))


async def store_head(reads: AuditReading) -> tuple[int, str]:
    """The newest event's (seq, hash), for an anchor; (0, genesis) on an empty chain."""
    async with reads.audit_view() as view:
        return await view.head()


def head(db_path: Path) -> tuple[int, str]:
    """`store_head` of a SQLite file."""
    return _on_file(db_path, store_head)


def _on_file(db_path: Path, check: Callable[[AuditReading], Awaitable[T]]) -> T:
    """Run `check` on a SQLite file opened read-only, to the end, on an event loop of its own: in a
    thread, as the caller may be inside a loop already (an async test)."""

    async def run() -> T:
        reads = await SqliteFile.open(db_path)
        try:
            return await check(reads)
        finally:
            await reads.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


async def walk(
    view: AuditView,
    start: tuple[int, str],
    upto: int | None = None,
    watch: Callable[[StoredEvent], None] | None = None,
) -> tuple[int, str, BrokenLink | None]:
    """`first_break` over the chain after `start` (up to seq `upto`), read in batches; each batch is
    checked in a thread, so a long chain never holds up the event loop (the trail page's)."""
    seq, prev, broken, after = *start, None, start[0]
    while broken is None and (batch := await view.events(after, upto)):
        after = batch[-1].seq
        seq, prev, broken = await asyncio.to_thread(_checked, batch, seq, prev, watch)
    return seq, prev, broken


def _checked(
    batch: Sequence[StoredEvent], seq: int, prev: str, watch: Callable[[StoredEvent], None] | None
) -> tuple[int, str, BrokenLink | None]:
    if watch is None:
        return first_break(batch, seq, prev)

    def watched() -> Iterator[StoredEvent]:
        for event in batch:
            watch(event)
            yield event

    return first_break(watched(), seq, prev)


async def _walk(view: AuditView, report: VerifyReport, start: tuple[int, str], seen: _Seen) -> None:
    """Check every link; note what the chain says each recording and text is."""
    last, digest, broken = await walk(view, start, watch=seen.watch)
    report.from_seq, report.head_seq, report.head_hash, report.broken = start[0], last, digest, broken
    report.events = last - start[0]


def _payload(event: StoredEvent, *keys: str) -> dict[str, Any] | None:
    try:
        data = event.payload()
    except ValueError:
        return None
    return data if isinstance(data, dict) and all(k in data for k in keys) else None


def _check_table(rows: Sequence[StoredRecording], seen: _Seen, report: VerifyReport) -> None:
    """The recordings table must agree with the chain (the web page shows the table's rows)."""
    for row in rows:
        fact = seen.expected.get(row.path)
        if fact is None and report.from_seq:
            continue  # stored before the anchor: not part of this check
        if fact is None:
            report.recording_problems.append(
                f"{row.path}: in the recordings table but never stored in the chain"
            )
        elif fact.sha256 != row.sha256:
            report.recording_problems.append(
                f"{row.path}: the recordings table's hash differs from the chain's (event {fact.seq})"
            )
        elif row.purged and row.path not in seen.purged:
            report.recording_problems.append(f"{row.path}: marked purged, but the chain has no purge of it")


async def _check_texts(view: AuditView, texts: _Texts, report: VerifyReport) -> None:
    """The messages and inbound tables must say what the chain says (text, number, state)."""
    if not await view.has_texts():
        return  # a database from before texts
    after = 0
    while batch := await view.texts(after):
        after = batch[-1].id
        for sent in batch:
            report.messages_checked += 1
            _check_sent(sent.id, (sent.phone, sent.text), sent.state, texts, report)
    after = 0
    while batch := await view.replies(after):
        after = batch[-1].id
        for got in batch:
            report.messages_checked += 1
            if got.id not in texts.inbound:
                if not report.from_seq:
                    report.message_problems.append(
                        f"inbound text {got.id}: in the table but never received in the chain"
                    )
            elif texts.inbound[got.id] != (got.phone, got.text):
                report.message_problems.append(
                    f"inbound text {got.id}: its number or text differs from the chain's"
                )


def _check_sent(mid: int, sent: tuple[str, str], state: str, texts: _Texts, report: VerifyReport) -> None:
    if mid not in texts.sent:
        if not report.from_seq:
            report.message_problems.append(f"text {mid}: in the messages table but never queued in the chain")
    elif texts.sent[mid] != sent:
        report.message_problems.append(f"text {mid}: its number or text differs from the chain's")
    elif texts.state.get(mid) != state:
        report.message_problems.append(
            f"text {mid}: state {state!r} in the table, {texts.state.get(mid)!r} in the chain"
        )


def _check_files(seen: _Seen, report: VerifyReport) -> None:
    kept = sorted((p, e) for p, e in seen.expected.items() if p not in seen.purged)
    report.recordings_purged = len(seen.expected) - len(kept)
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


def _held(anchors: Path | None) -> list[tuple[int, Anchor | str]] | None:
    """The lines of an anchor file (see `anchor_lines`); None when there is no such file."""
    return list(anchor_lines(anchors)) if anchors is not None and anchors.exists() else None


async def _check_anchors(
    view: AuditView, anchors: Path, held: list[tuple[int, Anchor | str]], report: VerifyReport
) -> None:
    """Heads recorded earlier must still be in the chain: nothing was cut off or rewritten."""
    top = (await view.head())[0]
    for number, anchor in held:
        where = f"{anchors}:{number}"
        if isinstance(anchor, str):
            report.anchor_problems.append(f"{where}: {anchor}")
            continue
        seq, digest = anchor
        report.anchors_checked += 1
        event = None if seq == 0 else await view.event(seq)
        found = GENESIS if seq == 0 else event.hash if event else None
        if found is None and seq > top:
            report.anchor_problems.append(
                f"{where}: event {seq} is gone: it is past the head ({top}), "
                "so the chain was cut, or the anchor is not of this chain"
            )
        elif found is None:
            report.anchor_problems.append(f"{where}: event {seq} is gone (the chain was cut)")
        elif found != digest:
            report.anchor_problems.append(f"{where}: event {seq} has another hash (rewritten)")


Anchor = tuple[int, str]
_ANCHOR_SEQ = re.compile(r"[0-9]+")
_ANCHOR_HASH = re.compile(r"[0-9a-f]{64}")
MAX_SEQ = 2**63 - 1  # the largest integer either backend stores (SQLite's INTEGER, BIGINT)


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

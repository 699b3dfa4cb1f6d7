"""`check-bundle --against-chain`: compare a bundle with the server's chain and tie it to anchors.

This is how a masked bundle is checked: each of its events must be the chain's event at that
seq, masked the same way (with the account's name and number as the database holds them now),
and the chain must run unbroken from the auditor's newest anchor before the call's events to
their oldest anchor at or after them, all in one read of the store (either backend).
"""

from __future__ import annotations

from pathlib import Path

from audit.bundle import BundleError, event_entry
from audit.bundle_check import BundleReport, Loaded, check_recordings, load
from audit.masking import Masker, Plain
from audit.verify import walk
from dialer.store.audit_reads import AuditReading, AuditView
from dialer.store.chain import GENESIS, check_link


async def check_bundle_against_store(
    path: Path, reads: AuditReading, anchors: dict[int, str]
) -> BundleReport:
    """Check a bundle against the chain `reads` reads; `anchors` (seq -> hash) are the auditor's."""
    report = BundleReport()
    try:
        loaded = load(path)
        await check_against_chain(loaded, reads, anchors, report)
    except BundleError as exc:
        report.problems.append(f"{path}: refused: {exc}")
    return report


async def check_against_chain(
    loaded: Loaded, reads: AuditReading, anchors: dict[int, str], report: BundleReport
) -> None:
    ev = loaded.evidence
    report.masked, report.events = ev.masked, len(ev.events)
    async with reads.audit_view() as view:
        masker = await _masker(view, loaded, report)
        if masker is None:
            return
        matched = await _compare(view, loaded, masker, report)
        if matched:
            await _tie(view, matched, anchors, report)
        await _left_out(view, loaded, report)
    check_recordings(loaded, report)


async def _masker(view: AuditView, loaded: Loaded, report: BundleReport) -> Masker | None:
    attempts = {e.attempt_id for e in loaded.evidence.events if e.attempt_id is not None}
    if len(attempts) != 1:
        report.problems.append(f"the bundle's events name {len(attempts)} calls, not one")
        return None
    if not loaded.evidence.masked:
        return Plain()
    person = await view.call_person(attempts.pop())
    if person is None:
        report.problems.append("the bundle's call is not in this database")
        return None
    return Masker(*person)


async def _compare(view: AuditView, loaded: Loaded, m: Masker, report: BundleReport) -> list[int]:
    """The seqs whose bundle event equals the chain's (masked alike) and whose link holds."""
    masked, matched = loaded.evidence.masked, []
    for entry in loaded.evidence.events:
        stored = await view.event(entry.seq)
        if stored is None:
            report.problems.append(f"event {entry.seq}: not in this chain")
            continue
        want = event_entry(stored, m, masked)
        differ = [k for k, v in want.items() if getattr(entry, k) != v]
        if differ:
            report.problems.append(f"event {entry.seq}: differs from the chain's ({', '.join(differ)})")
            continue
        before = await view.event(entry.seq - 1)
        broken = check_link(stored, entry.seq, before.hash if before else GENESIS)
        if broken is not None:
            report.problems.append(f"in the chain: {broken}")
            continue
        matched.append(entry.seq)
    if matched:
        report.proves.append(f"{len(matched)} events are the chain's, as this database holds it")
    return matched


async def _tie(view: AuditView, matched: list[int], anchors: dict[int, str], report: BundleReport) -> None:
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
    last, digest, broken = await walk(view, start, upto=end[0])
    if broken is not None:
        report.problems.append(f"the chain between your anchors at {start[0]} and {end[0]}: {broken}")
    elif (last, digest) != end:
        report.problems.append(f"the chain does not lead to your anchor at event {end[0]} (rewritten or cut)")
    else:
        report.tied.update(matched)
        since = f"your anchor at event {start[0]}" if start[0] else "the first event"
        report.proves.append(f"the chain runs unbroken from {since} to your anchor at event {end[0]}")


async def _left_out(view: AuditView, loaded: Loaded, report: BundleReport) -> None:
    """Events of the call the chain has and the bundle does not (up to its newest event)."""
    seqs = {e.seq for e in loaded.evidence.events}
    attempt = next(e.attempt_id for e in loaded.evidence.events if e.attempt_id is not None)
    missing = [seq for seq in await view.call_events(attempt, max(seqs)) if seq not in seqs]
    if missing:
        report.problems.append(f"the chain has events of this call the bundle leaves out: {missing[:10]}")

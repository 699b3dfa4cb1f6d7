"""`duecall audit check-bundle`: what an evidence bundle proves, and what it cannot.

A bundle is the server's account of one call. Recomputing its hashes shows only that it is
consistent with itself: whoever made it could have recomputed them too. It proves what it can tie
to an anchor the auditor holds (a head written down elsewhere, `duecall audit anchor`):

- offline, an unmasked bundle's event is tied when one of the auditor's anchors names that event
  with the same hash, or it is the predecessor (by `prev_hash`) of a tied event;
- against the server's chain (`--against-chain`, where the database is), every event must equal
  the chain's (masked the same way for a masked bundle), and the chain must run unbroken from the
  auditor's anchor before the call's events to their anchor at or after them.

Verdicts: VERIFIED (exit 0) when every event and every recording is tied; FAILED (exit 1) when
something is wrong or the bundle is refused; NOT VERIFIED (exit 2) when nothing is wrong but
something could not be tied, which is all an offline check of a masked bundle can say.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

from audit.bundle import BundleError, EventEntry, Evidence, parse_evidence
from audit.bundle_zip import EVIDENCE, MAX_EVIDENCE, BundleZip, open_bundle
from dialer.store.chain import GENESIS, link_hash


class Verdict(IntEnum):
    """The exit status of check-bundle."""

    VERIFIED = 0
    FAILED = 1
    NOT_VERIFIED = 2


@dataclass
class BundleReport:
    masked: bool = False
    events: int = 0
    rehashed: int = 0  # events whose own hash and link were recomputed from the bundle
    tied: set[int] = field(default_factory=set)  # seqs tied to the auditor's anchors
    recordings: int = 0
    recordings_tied: int = 0
    proves: list[str] = field(default_factory=list)
    cannot: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        if self.problems:
            return Verdict.FAILED
        whole = self.events > 0 and len(self.tied) == self.events
        return Verdict.VERIFIED if whole and self.recordings_tied == self.recordings else Verdict.NOT_VERIFIED


@dataclass(frozen=True, slots=True)
class Loaded:
    evidence: Evidence
    files: dict[str, str]  # recording file -> its SHA-256 as read from the ZIP


def load(path: Path) -> Loaded:
    """Read and validate a bundle, hashing its recordings; BundleError on anything hostile."""
    with open_bundle(path) as bundle:
        evidence = parse_evidence(bundle.read(EVIDENCE, MAX_EVIDENCE))
        return Loaded(evidence, _hash_files(bundle, evidence))


def _hash_files(bundle: BundleZip, evidence: Evidence) -> dict[str, str]:
    return {r.file: bundle.sha256(r.file) for r in evidence.recordings if r.file}


def check_bundle(path: Path, anchors: dict[int, str] | None = None) -> BundleReport:
    """Check a bundle on its own (no database); `anchors` (seq -> hash) are the auditor's."""
    report = BundleReport()
    try:
        loaded = load(path)
    except BundleError as exc:
        report.problems.append(f"{path}: refused: {exc}")
        return report
    check_loaded(loaded, anchors or {}, report)
    return report


def check_loaded(loaded: Loaded, anchors: dict[int, str], report: BundleReport) -> None:
    ev = loaded.evidence
    report.masked, report.events = ev.masked, len(ev.events)
    if _duplicate_seqs(ev, report):
        return
    if not ev.events:
        report.cannot.append("anything about a call: the bundle holds no events")
    hashed = [e for e in ev.events if e.hash is not None]
    if ev.masked and not hashed:
        _explain_masked(report)
    else:
        if ev.masked:
            report.cannot.append(
                f"this masked bundle ({ev.format}) carries the hashes of masked events: anyone holding it "
                "can guess the hidden digits; treat it as unmasked data, and export it again"
            )
        _rehash(ev, report)
        _tie(ev, anchors, report)
    check_recordings(loaded, report)


def _duplicate_seqs(ev: Evidence, report: BundleReport) -> bool:
    twice = sorted(seq for seq, n in Counter(e.seq for e in ev.events).items() if n > 1)
    for seq in twice[:5]:
        report.problems.append(f"event {seq}: appears more than once in the bundle")
    return bool(twice)


def _explain_masked(report: BundleReport) -> None:
    report.cannot.append(
        "that these events are the chain's: a masked bundle carries no chain hashes (a hash over a "
        "masked name or number would let its holder guess it). Re-check it where the database is: "
        "duecall audit check-bundle FILE --against-chain --anchors YOUR-ANCHORS"
    )


def _rehash(ev: Evidence, report: BundleReport) -> None:
    for e in ev.events:
        if e.data_masked or e.hash is None or e.prev_hash is None:
            continue  # a masked event's data is no longer what was hashed
        report.rehashed += 1
        prev = GENESIS if e.seq == 1 else ev.previous_hashes.get(str(e.seq))
        if prev is None:
            report.problems.append(f"event {e.seq}: the bundle has no hash for the event before it")
        elif prev != e.prev_hash:
            report.problems.append(f"event {e.seq}: does not follow the event before it")
        if _own_hash(e) != e.hash:
            report.problems.append(f"event {e.seq}: its content differs from what was hashed ({e.kind})")
    skipped = report.events - report.rehashed
    if skipped:
        report.cannot.append(f"the content of {skipped} masked or unhashed events (not re-hashed here)")
    if report.rehashed:
        report.proves.append(f"{report.rehashed} events are consistent with their own hashes and links")


def _own_hash(e: EventEntry) -> str:
    keys = (e.campaign_id, e.attempt_id, e.account_id)
    return link_hash(e.prev_hash or "", e.seq, e.at, e.kind, e.actor, *keys, e.data)


def _tie(ev: Evidence, anchors: dict[int, str], report: BundleReport) -> None:
    """Events tied to an anchor: named by one, or reached from one through prev_hash links."""
    known = dict(anchors)
    for e in sorted(ev.events, key=lambda e: -e.seq):
        if e.data_masked or e.hash is None or known.get(e.seq) is None:
            continue
        if known[e.seq] != e.hash:
            report.problems.append(f"event {e.seq}: its hash differs from your anchor (rewritten)")
            continue
        if _own_hash(e) != e.hash or e.prev_hash is None:
            continue  # _rehash names it
        report.tied.add(e.seq)
        if known.setdefault(e.seq - 1, e.prev_hash) != e.prev_hash:
            report.problems.append(f"event {e.seq}: does not follow your anchor at event {e.seq - 1}")
    if report.tied:
        report.proves.append(f"{len(report.tied)} events are the ones your anchors fixed")
    if len(report.tied) < report.events:
        report.cannot.append(
            f"that {report.events - len(report.tied)} events are authentic: no anchor of yours reaches "
            "them (consistency is not authenticity: the whole bundle could have been recomputed); "
            "give --anchors, or re-check with --against-chain"
        )


def check_recordings(loaded: Loaded, report: BundleReport) -> None:
    """Each file's SHA-256 must be the one a recording.stored event in the bundle holds."""
    stored = _stored_hashes(loaded.evidence)
    for rec in loaded.evidence.recordings:
        if not rec.file:
            report.cannot.append(f"a {rec.kind or 'recording'} not in the bundle ({rec.status or 'no file'})")
            continue
        report.recordings += 1
        if loaded.files[rec.file] != rec.sha256_chain:
            report.problems.append(f"{rec.file}: SHA-256 differs from the chain's")
        elif rec.sha256_chain not in stored:
            report.problems.append(f"{rec.file}: no recording.stored event in the bundle has its hash")
        elif stored[rec.sha256_chain] in report.tied:
            report.recordings_tied += 1
    if report.recordings:
        report.proves.append(
            f"{report.recordings} recording files have the SHA-256 the bundle's recording.stored events give"
        )


def _stored_hashes(ev: Evidence) -> dict[str, int]:
    """SHA-256 -> seq of each recording.stored event in the bundle."""
    found = {}
    for e in ev.events:
        if e.kind == "recording.stored":
            try:
                data = json.loads(e.data)
            except (ValueError, RecursionError):
                continue  # its own hash check names it
            if isinstance(data, dict) and isinstance(data.get("sha256"), str):
                found[data["sha256"]] = e.seq
    return found

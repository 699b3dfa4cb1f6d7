"""One call as the page shows it and as an evidence bundle: masked, with its hashes checked.

Checks made here, for the call page and the bundle alike:
- each of the call's chain events: its own hash recomputed, and its prev_hash
  compared with the stored hash of the event before it;
- each recording: the file's SHA-256 recomputed (in a thread) and compared with
  the hash the chain recorded when it was stored (`recording.stored`).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit.bundle import FORMAT, event_entry
from audit.masking import Masker, Plain
from audit.search import CallDetail, Recording, previous_hashes
from dialer.core.digest import sha256_file
from dialer.store import Reads
from dialer.store.chain import GENESIS, StoredEvent, check_link

VERIFIED, MISMATCH = "verified", "MISMATCH"


@dataclass(frozen=True, slots=True)
class Bundle:
    data: bytes
    sha256: str


def inside(path: Path, folder: Path) -> Path | None:
    """`path` with links resolved, if it is a file inside `folder` (resolved); else None."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return real if real.is_relative_to(folder) and real.is_file() else None


def masker_for(detail: CallDetail, revealed: bool) -> Masker:
    return Plain() if revealed else Masker(detail.call.name, detail.call.phone_e164)


async def link_status(db: Reads, events: list[StoredEvent]) -> dict[int, str]:
    """seq -> verified / MISMATCH for each event's own hash and its link to the event before."""
    before = await previous_hashes(db, [e.seq for e in events])
    found = {}
    for e in events:
        prev = GENESIS if e.seq == 1 else before.get(e.seq)
        found[e.seq] = VERIFIED if prev is not None and check_link(e, e.seq, prev) is None else MISMATCH
    return found


async def recording_checks(detail: CallDetail, folder: Path) -> list[dict[str, Any]]:
    """Each recording with the chain's hash, the file's hash now, and the verdict."""
    sealed: dict[str, str] = {}
    purged: set[str] = set()
    for e in detail.events:
        if e.kind == "recording.stored":
            data = e.payload()
            sealed[str(data.get("path", ""))] = str(data.get("sha256", ""))
        elif e.kind == "recording.purged":
            purged.add(str(e.payload().get("path", "")))
    checks = []
    for n, rec in enumerate(detail.recordings):
        checks.append(await _check_one(n, rec, sealed.get(rec.path, ""), rec.path in purged, folder))
    return checks


async def _check_one(n: int, rec: Recording, chain_sha: str, purged: bool, folder: Path) -> dict[str, Any]:
    path = None if rec.purged_at or purged else inside(Path(rec.path), folder)
    file_sha = await asyncio.to_thread(sha256_file, path) if path else ""
    if rec.purged_at or purged:
        status = "purged"
    elif path is None:
        status = "MISSING"
    elif not chain_sha:
        status = f"{MISMATCH} (not in the chain)"
    else:
        status = VERIFIED if file_sha == chain_sha else MISMATCH
    return {
        "n": n,
        "kind": rec.kind,
        "name": Path(rec.path).name,
        "path": path,
        "duration_ms": rec.duration_ms,
        "bytes": rec.bytes,
        "stored_at": rec.stored_at,
        "sha256_chain": chain_sha,
        "sha256_table": rec.sha256,
        "sha256_file": file_sha,
        "status": status,
        "playable": path is not None,
    }


def decision(detail: CallDetail) -> list[dict[str, Any]]:
    """Why the policy allowed the call: the chain's attempt.decided event, else the attempt row."""
    for e in detail.events:
        if e.kind == "attempt.decided":
            reasons = e.payload().get("reasons", [])
            return list(reasons) if isinstance(reasons, list) else []
    stored = json.loads(detail.attempt.get("policy_reasons") or "[]")
    return list(stored) if isinstance(stored, list) else []


def _event_text(m: Masker, e: StoredEvent) -> str:
    data = e.payload()
    # Empty fields (no AMD verdict, no note) say nothing; leaving them out keeps rows readable.
    return ", ".join(f"{k}: {_short(m.data(v))}" for k, v in sorted(data.items()) if v not in ("", None))


def _short(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _step_text(m: Masker, kind: str, detail: dict[str, Any]) -> str:
    if kind == "speech":
        conf = detail.get("confidence")
        conf_text = f" (confidence {conf:.2f})" if isinstance(conf, int | float) else ""
        return f"“{m.text(str(detail.get('transcript', '')))}”{conf_text}"
    if kind == "key":
        return f"pressed {detail.get('digits') or detail.get('digit') or ''}"
    if kind == "prompt":
        return m.text(str(detail.get("text", "")))
    return ", ".join(f"{k}: {_short(m.data(v))}" for k, v in sorted(detail.items()))


async def call_view(db: Reads, detail: CallDetail, folder: Path, revealed: bool) -> dict[str, Any]:
    """What the call page shows, masked unless `revealed`."""
    m = masker_for(detail, revealed)
    links = await link_status(db, detail.events)
    timeline: list[dict[str, Any]] = [
        {
            "seq": e.seq,
            "at": e.at,
            "kind": e.kind,
            "actor": e.actor,
            "text": _event_text(m, e),
            "link": links[e.seq],
        }
        for e in detail.events
    ]
    return {
        "call": replace(detail.call, account_id=m.text(detail.call.account_id)),  # it may be the number
        "attempt": detail.attempt,
        "name": m.text(detail.call.name),
        "phone": m.text(detail.call.phone_e164),
        "account": detail.account,
        "outcome": detail.outcome,
        "decision": [m.data(r) for r in decision(detail)],
        "flags": detail.flags,
        "recordings": await recording_checks(detail, folder),
        "timeline": [t for t in timeline if not str(t["kind"]).startswith("audit.")],
        "access": [t for t in timeline if str(t["kind"]).startswith("audit.")],
        "transcript": [
            {"at": s.at, "node": s.node, "kind": s.kind, "text": _step_text(m, s.kind, s.detail)}
            for s in detail.steps
        ],
        "links_ok": all(v == VERIFIED for v in links.values()),
    }


HOW_TO_CHECK = (
    "For each event: hash = SHA-256 of UTF-8 text prev_hash + '\\n' + header + '\\n' + data, where "
    "header = JSON array [seq, at, kind, actor, campaign_id, attempt_id, account_id] (json.dumps defaults, "
    "ensure_ascii=False) and data is the `data` string exactly as given. prev_hash must equal the hash of "
    "event seq-1 (previous_hashes). Each recording file's SHA-256 must equal sha256_chain. This shows the "
    "bundle is consistent; it is authentic only as far as it leads to an anchor you hold "
    "(`duecall audit check-bundle FILE --anchors YOUR-ANCHORS`)."
)
HOW_TO_CHECK_MASKED = (
    "Names and numbers are masked, and the bundle carries no chain hashes: each covers the unmasked data, "
    "so it would let its holder guess what is masked. Each recording file's SHA-256 must equal sha256_chain. "
    "Whether the events are the chain's is checked against the server's chain, where the database is: "
    "`duecall audit check-bundle FILE --against-chain --anchors YOUR-ANCHORS`."
)


async def build_bundle(db: Reads, detail: CallDetail, folder: Path, revealed: bool, by: str) -> Bundle:
    """evidence.json and the recording files in one ZIP (built in a thread)."""
    m = masker_for(detail, revealed)
    checks = await recording_checks(detail, folder)
    files = [(c["path"], _arcname(c)) for c in checks if c["path"] is not None]
    evidence = {
        "format": FORMAT,
        "generated_at": datetime.now(UTC).isoformat(),
        "generated_by": f"auditor:{by}",
        "masked": not revealed,
        "attempt": m.data(_decoded(detail.attempt, "policy_reasons")),
        "account": m.data({**detail.account, "name": detail.call.name}),
        "campaign": detail.call.campaign,
        "outcome": m.data(_decoded(detail.outcome, "detail")) if detail.outcome else None,
        "decision": m.data(decision(detail)),
        "flags": detail.flags,
        "recordings": [_recording_entry(c) for c in checks],
        "events": [event_entry(e, m, not revealed) for e in detail.events],
        "how_to_check": HOW_TO_CHECK if revealed else HOW_TO_CHECK_MASKED,
    }
    if revealed:  # hashes of other events: a masked bundle carries none (see audit/bundle.py)
        before = await previous_hashes(db, [e.seq for e in detail.events])
        evidence["previous_hashes"] = {str(k): v for k, v in before.items()}
    return await asyncio.to_thread(_zip, evidence, files)


def _decoded(row: dict[str, Any], column: str) -> dict[str, Any]:
    """A row with its JSON column decoded, so masking sees values, not JSON text (escapes hide names)."""
    try:
        value = json.loads(row.get(column) or "null")
    except (TypeError, ValueError, RecursionError):
        value = "(not JSON: withheld)"
    return {**row, column: value}


def _recording_entry(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "file": _arcname(c) if c["path"] else None,
        "kind": c["kind"],
        "sha256_chain": c["sha256_chain"],
        "sha256_file": c["sha256_file"],
        "bytes": c["bytes"],
        "duration_ms": c["duration_ms"],
        "status": c["status"],
    }


def _arcname(check: dict[str, Any]) -> str:
    return f"recordings/{check['n']}-{check['name']}"


def _zip(evidence: dict[str, Any], files: list[tuple[Path, str]]) -> Bundle:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("evidence.json", json.dumps(evidence, ensure_ascii=False, indent=2, default=str))
        for path, arc in files:
            z.write(path, arc)
    data = out.getvalue()
    return Bundle(data, hashlib.sha256(data).hexdigest())

"""Checking an evidence bundle (the ZIP the audit page exports) without DueCall's database.

A third party (a regulator, a court expert) re-computes each event's link and
each recording's SHA-256 from the ZIP alone: `duecall audit check-bundle FILE`.
The checks are the ones `evidence.json` describes in `how_to_check`.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.chain import GENESIS, link_hash


@dataclass
class BundleReport:
    events: int = 0
    masked: int = 0  # events whose data was masked: their own hash can't be re-checked here
    recordings: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_bundle(path: Path) -> BundleReport:
    report = BundleReport()
    try:
        with zipfile.ZipFile(path) as z:
            evidence = json.loads(z.read("evidence.json"))
            _check_events(evidence, report)
            _check_recordings(z, evidence, report)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        report.problems.append(f"{path}: not an evidence bundle: {exc}")
    return report


def _check_events(evidence: dict[str, Any], report: BundleReport) -> None:
    before: dict[str, str] = evidence.get("previous_hashes", {})
    for e in evidence.get("events", []):
        report.events += 1
        seq = int(e["seq"])
        prev = GENESIS if seq == 1 else before.get(str(seq))
        if prev is not None and prev != e["prev_hash"]:
            report.problems.append(f"event {seq}: does not follow the event before it")
        if e.get("data_masked"):
            report.masked += 1
            continue
        keys = (e["campaign_id"], e["attempt_id"], e["account_id"])
        digest = link_hash(e["prev_hash"], seq, e["at"], e["kind"], e["actor"], *keys, e["data"])
        if digest != e["hash"]:
            report.problems.append(f"event {seq}: its content differs from what was hashed ({e['kind']})")


def _check_recordings(z: zipfile.ZipFile, evidence: dict[str, Any], report: BundleReport) -> None:
    stored = {
        json.loads(e["data"]).get("sha256")
        for e in evidence.get("events", [])
        if e["kind"] == "recording.stored" and not e.get("data_masked")
    }
    for rec in evidence.get("recordings", []):
        if not rec.get("file"):
            continue
        report.recordings += 1
        digest = hashlib.sha256(z.read(rec["file"])).hexdigest()
        if digest != rec["sha256_chain"]:
            report.problems.append(f"{rec['file']}: SHA-256 differs from the chain's")
        elif rec["sha256_chain"] not in stored:
            report.problems.append(f"{rec['file']}: no recording.stored event in the bundle has its hash")

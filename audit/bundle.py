"""The evidence bundle's format: one event as a bundle holds it, and reading `evidence.json` back.

Two kinds (docs/audit.md, "Evidence bundles"):

- unmasked (an admin who chose to see names and numbers): every event exactly as hashed, with
  `prev_hash` and `hash`, and the hash of each event's predecessor (`previous_hashes`), so anyone
  can recompute each link;
- masked (an auditor): names and numbers masked and *no chain hash at all*. A chain hash covers the
  unmasked data, so beside the masked text it lets the holder guess what is hidden (a US number's
  six hidden digits fall in under a second), and every hash links to the next. A masked bundle is
  re-checked against the server's chain instead (`check-bundle --against-chain`), which masks the
  chain's events the same way and compares.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from audit.masking import Masker
from dialer.store.chain import StoredEvent, canonical

FORMAT = "duecall-evidence/2"
OLD_FORMAT = "duecall-evidence/1"  # masked bundles of this format still carry hashes (issue 9)
LINK_FIELDS = ("seq", "at", "kind", "actor", "campaign_id", "attempt_id", "account_id", "data")
UNMASKABLE = '"(stored data is not JSON: withheld from a masked bundle)"'

_BIG = 2**63 - 1  # SQLite's largest integer: anything above is not a sequence number or an id
Hex64 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Short = Annotated[str, StringConstraints(max_length=1_000)]
Id = Annotated[int, Field(ge=0, le=_BIG)]


class BundleError(ValueError):
    """A bundle refused before any check: the message says which part and why."""


class EventEntry(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True)

    seq: Annotated[int, Field(ge=1, le=_BIG)]
    at: Short
    kind: Short
    actor: Short
    campaign_id: Id | None
    attempt_id: Id | None
    account_id: Short | None
    data: Annotated[str, StringConstraints(max_length=1_000_000)]
    data_masked: bool = False
    prev_hash: Hex64 | None = None
    hash: Hex64 | None = None


class RecordingEntry(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True)

    file: Short | None
    sha256_chain: Hex64 | Literal[""]
    kind: Short = ""
    status: Short = ""


class Evidence(BaseModel):
    """The parts of evidence.json that are checked; the rest (attempt, account, ...) is shown as is."""

    model_config = ConfigDict(strict=True, frozen=True)

    format: Literal["duecall-evidence/1", "duecall-evidence/2"]
    masked: bool
    events: Annotated[list[EventEntry], Field(max_length=100_000)]
    previous_hashes: Annotated[
        dict[Annotated[str, StringConstraints(max_length=20)], Hex64], Field(max_length=100_000)
    ] = {}
    recordings: Annotated[list[RecordingEntry], Field(max_length=10_000)] = []


def event_entry(e: StoredEvent, m: Masker, masked: bool) -> dict[str, Any]:
    """One chain event as a bundle holds it: exact with its hashes, or masked with none."""
    entry: dict[str, Any] = {k: getattr(e, k) for k in LINK_FIELDS}
    if not masked:
        return {**entry, "data_masked": False, "prev_hash": e.prev_hash, "hash": e.hash}
    entry["data"] = _masked_data(m, e.data)
    entry["account_id"] = m.optional(e.account_id)  # an account id may be the phone number itself
    entry["data_masked"] = entry["data"] != e.data or entry["account_id"] != e.account_id
    return entry


def _masked_data(m: Masker, data: str) -> str:
    # Decoded, masked value by value, encoded again: never masked as JSON text (escapes hide names).
    try:
        return canonical(m.data(json.loads(data)))
    except (ValueError, RecursionError):
        return UNMASKABLE


def parse_evidence(raw: bytes) -> Evidence:
    """evidence.json's bytes -> Evidence, or BundleError naming what is wrong."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(f"evidence.json: not UTF-8 (byte {exc.start})") from exc
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError as exc:
        raise BundleError("evidence.json: nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, and integers past Python's digit limit
        raise BundleError(f"evidence.json: not valid JSON: {exc}") from exc
    try:
        return Evidence.model_validate(value)
    except ValidationError as exc:
        raise BundleError(f"evidence.json: {_first_errors(exc)}") from exc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _first_errors(exc: ValidationError, most: int = 5) -> str:
    found = []
    for err in exc.errors(include_url=False, include_input=False)[:most]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        found.append(f"{where or 'top level'}: {err['msg']}")
    more = exc.error_count() - len(found)
    return "; ".join(found) + (f" (and {more} more)" if more > 0 else "")

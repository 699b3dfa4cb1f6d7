"""`duecall policy check`: JSON lines in, one JSON line of verdict out per input line.

A malformed line gets an error line naming the line and the field, and the rest are still
decided. The format is documented with examples in docs/policy.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from dialer.contact_policy import (
    Consent,
    Consumer,
    Contact,
    Pack,
    Proposal,
    TimeRange,
    Verdict,
)
from dialer.errors import field_path


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a UTC offset, e.g. 2026-11-28T14:00:00Z")
    return value.astimezone(UTC)


class RangeIn(_In):
    start: time
    end: time


class ConsentIn(_In):
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    _utc_start = field_validator("start", "end")(_utc)


def _known_zone(zone: str) -> str:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone!r}") from None
    return zone


Zone = Annotated[str, AfterValidator(_known_zone)]


class ConsumerIn(_In):
    time_zones: list[Zone] = []
    inconvenient: list[RangeIn] = []
    consents: list[ConsentIn] = []
    opted_out: list[Literal["voice", "sms"]] = []


class ContactIn(_In):
    at: datetime
    channel: Literal["voice", "sms"]
    direction: Literal["outbound", "inbound"] = "outbound"
    person: str = "consumer"
    debts: list[str] = []
    outcome: Literal["answered", "no_answer", "voicemail", "busy", "not_in_service", "failed", "dropped"]
    conversation: bool = False
    consented: bool = False
    _utc_at = field_validator("at")(_utc)


class ProposalIn(_In):
    id: str
    policy: str | None = None
    at: datetime
    channel: Literal["voice", "sms"]
    person: str = "consumer"
    debts: list[str] = []
    consumer: ConsumerIn = ConsumerIn()
    history: list[ContactIn] = []
    _utc_at = field_validator("at")(_utc)

    def proposal(self) -> Proposal:
        c = self.consumer
        consumer = Consumer(
            tuple(c.time_zones),
            tuple(TimeRange(r.start, r.end) for r in c.inconvenient),
            tuple(Consent(k.start, k.end) for k in c.consents),
            frozenset(c.opted_out),
        )
        history = tuple(
            Contact(
                str(i),
                h.at,
                h.channel,
                h.direction,
                h.person,
                tuple(h.debts),
                h.outcome,
                h.conversation,
                h.consented,
            )
            for i, h in enumerate(self.history)
        )
        return Proposal(self.id, self.at, self.channel, self.person, tuple(self.debts), consumer, history)


def _error_line(number: int, raw: str, message: str) -> dict[str, Any]:
    ident = None
    try:
        data = json.loads(raw)
        ident = data.get("id") if isinstance(data, dict) else None
    except ValueError:
        pass
    return {"id": ident, "error": f"line {number}: {message}"}


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    """A block lists the rules that block; an allow lists what was checked."""
    shown = [r for r in verdict.reasons if r.blocking or verdict.allowed]
    return {
        "id": verdict.id,
        "decision": "allow" if verdict.allowed else "block",
        "reasons": [{"rule": r.rule, "detail": r.detail, "history": list(r.history)} for r in shown],
        "next_allowed_at": _iso(verdict.next_allowed_at),
    }


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at else None


def check_lines(
    lines: Iterable[str],
    packs: Callable[[str], Pack],
    default_policy: str | None,
    decide: Callable[[Pack, Proposal], Verdict],
) -> Iterator[dict[str, Any]]:
    """One output object per non-blank input line, in order."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            parsed = ProposalIn.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = field_path(tuple(first["loc"])) or "(line)"
            message = first["msg"].removeprefix("Value error, ")
            yield _error_line(number, raw, f"{where}: {message}")
            continue
        name = parsed.policy or default_policy
        if name is None:
            yield _error_line(number, raw, "policy: missing (give it in the line or with --policy)")
            continue
        try:
            pack = packs(name)
        except (KeyError, ValueError, OSError) as exc:
            yield _error_line(number, raw, f"policy: {exc}")
            continue
        yield verdict_json(decide(pack, parsed.proposal()))

"""`duecall policy check`: JSON lines in, one JSON line of verdict out per input line.

A bad line (not UTF-8, too long, not JSON, nested too deep, a wrong field, an unknown pack) gets an
error line naming the line and the field, and the rest are still decided. Lines are read one at
a time with a length cap, so memory stays bounded whatever the input. The format is documented
with examples in docs/policy.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time
from typing import Annotated, Any, BinaryIO, Literal

import pydantic_core
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from dialer.core.errors import DueCallError, field_path
from dialer.policy.engine import (
    Consent,
    Consumer,
    Contact,
    Outcome,
    Pack,
    Proposal,
    TimeRange,
    Verdict,
    in_supported_range,
    known_zone,
    shorten,
)

# A proposal with a few hundred history entries is a few tens of KiB; 1 MiB is generous.
MAX_LINE_BYTES = 1 << 20
# The 7-in-7 and conversation rules need at most a few weeks of history; this bounds decide()'s time.
MAX_HISTORY = 1000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a UTC offset, e.g. 2026-11-28T14:00:00Z")
    try:
        moment = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is outside the years 1900-2999") from None
    if not in_supported_range(moment):
        raise ValueError(f"{value.isoformat()} is outside the years 1900-2999")
    return moment


Moment = Annotated[datetime, AfterValidator(_utc)]


class RangeIn(_In):
    start: time
    end: time


class ConsentIn(_In):
    start: Moment = Field(alias="from")
    end: Moment = Field(alias="to")
    # When the consumer gave it: needed for the 7-day prior-consent exclusion (1006.14(b)(3)(i)).
    given_at: Moment | None = None


def _no_consented_flag(value: bool) -> bool:
    if value:
        raise ValueError(
            "no longer taken on trust: a call is under prior consent when it falls in a "
            "consumer.consents entry whose given_at is within the 7 days before it"
        )
    return value


def _known_zone(zone: str) -> str:
    if not known_zone(zone):
        raise ValueError(f"unknown time zone {shorten(zone)}")
    return zone


Zone = Annotated[str, AfterValidator(_known_zone)]


class ConsumerIn(_In):
    time_zones: list[Zone] = []
    inconvenient: list[RangeIn] = []
    consents: list[ConsentIn] = []
    opted_out: list[Literal["voice", "sms"]] = []


class ContactIn(_In):
    at: Moment
    channel: Literal["voice", "sms"]
    direction: Literal["outbound", "inbound"] = "outbound"
    person: str = "consumer"
    debts: list[str] = []
    # A call's outcome is required; a text's may be left out: every text given counts toward the SMS caps.
    outcome: Outcome | None = Field(None, validate_default=True)
    conversation: bool = False
    consented: Annotated[bool, AfterValidator(_no_consented_flag)] = False

    @field_validator("outcome")
    @classmethod
    def _call_outcome(cls, value: Outcome | None, info: ValidationInfo) -> Outcome | None:
        if value is None and info.data.get("channel") == "voice":
            raise ValueError("a voice call needs its outcome (answered, no_answer, busy, ...)")
        return value


class ProposalIn(_In):
    id: str
    policy: str | None = None
    at: Moment
    channel: Literal["voice", "sms"]
    person: str = "consumer"
    debts: list[str] = []
    consumer: ConsumerIn = ConsumerIn()
    history: list[ContactIn] = Field([], max_length=MAX_HISTORY)

    def proposal(self) -> Proposal:
        c = self.consumer
        consumer = Consumer(
            tuple(c.time_zones),
            tuple(TimeRange(r.start, r.end) for r in c.inconvenient),
            tuple(Consent(k.start, k.end, k.given_at, str(i)) for i, k in enumerate(c.consents)),
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
                h.outcome or "unknown",
                h.conversation,
            )
            for i, h in enumerate(self.history)
        )
        return Proposal(self.id, self.at, self.channel, self.person, tuple(self.debts), consumer, history)


def _error_line(number: int, raw: str | None, message: str) -> dict[str, Any]:
    """An error line; the line's id when it has one (pydantic_core bounds the parser's depth)."""
    ident = None
    if raw is not None:
        try:
            data = pydantic_core.from_json(raw)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            ident = data["id"]
    return {"id": ident, "error": f"line {number}: {message}"}


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    """A block lists the rules that block; an allow lists what was checked."""
    shown = [r for r in verdict.reasons if r.blocking or verdict.allowed]
    return {
        "id": verdict.id,
        "decision": "allow" if verdict.allowed else "block",
        "reasons": [
            {"rule": r.rule, "detail": r.detail, "history": list(r.history), "source": r.source}
            for r in shown
        ],
        "next_allowed_at": _iso(verdict.next_allowed_at),
    }


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at else None


JSON_SPACE = " \t\r\n"


def read_lines(stream: BinaryIO, limit: int = MAX_LINE_BYTES) -> Iterator[tuple[int, str | None, str]]:
    """(number, text, problem) per line: text None with a problem for a line that is too long or
    not UTF-8. Never holds more than `limit` bytes of one line."""
    number = 0
    while chunk := stream.readline(limit + 1):
        number += 1
        if len(chunk) > limit:
            _skip_rest(stream, chunk)
            yield number, None, f"(line): longer than {limit} bytes, skipped"
            continue
        try:
            yield number, chunk.decode("utf-8"), ""
        except UnicodeDecodeError as exc:
            yield number, None, f"(line): not UTF-8 (byte 0x{chunk[exc.start]:02x} at byte {exc.start + 1})"


def _skip_rest(stream: BinaryIO, chunk: bytes) -> None:
    while chunk and not chunk.endswith(b"\n"):
        chunk = stream.readline(1 << 16)


def check_lines(
    stream: BinaryIO,
    packs: Callable[[str], Pack],
    default_policy: str | None,
    decide: Callable[[Pack, Proposal], Verdict],
) -> Iterator[dict[str, Any]]:
    """One output object per non-blank input line, in order.

    Blank means JSON's own whitespace only: a line of other characters (a control such as \x1c,
    which `str.strip` also removes) is an error line, never silently skipped."""
    for number, raw, problem in read_lines(stream):
        if raw is None:
            yield _error_line(number, None, problem)
        elif raw.strip(JSON_SPACE):
            yield _check_line(number, raw, packs, default_policy, decide)


def _check_line(
    number: int,
    raw: str,
    packs: Callable[[str], Pack],
    default_policy: str | None,
    decide: Callable[[Pack, Proposal], Verdict],
) -> dict[str, Any]:
    try:
        parsed = ProposalIn.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = field_path(tuple(first["loc"])) or "(line)"
        message = first["msg"].removeprefix("Value error, ")
        return _error_line(number, raw, f"{where}: {message}")
    name = parsed.policy or default_policy
    if name is None:
        return _error_line(number, raw, "policy: missing (give it in the line or with --policy)")
    try:
        pack = packs(name)
    except (DueCallError, OSError) as exc:
        return _error_line(number, raw, f"policy: {exc}")
    try:
        return verdict_json(decide(pack, parsed.proposal()))
    except (OverflowError, ValueError) as exc:  # a moment whose local conversion leaves datetime's range
        return _error_line(number, raw, f"at: cannot be decided: {exc}")

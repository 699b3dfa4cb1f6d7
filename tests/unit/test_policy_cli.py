"""`duecall policy check`: JSON lines in, a verdict (or a named error) per line out."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tracemalloc
from functools import cache
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dialer.policy.engine import decide
from dialer.policy.jsonl import check_lines, read_lines
from dialer.policy.packs import load_pack

LINES = [
    # allowed: 10:00 in New York, no history
    {
        "id": "ok",
        "at": "2026-11-30T15:00:00Z",
        "channel": "voice",
        "debts": ["D1"],
        "consumer": {"time_zones": ["America/New_York"]},
    },
    # blocked twice: 7 counted calls in 7 days, and 22:00 locally
    {
        "id": "late-and-capped",
        "at": "2026-12-01T03:00:00Z",
        "channel": "voice",
        "debts": ["D1"],
        "consumer": {"time_zones": ["America/New_York"]},
        "history": [
            {"at": f"2026-11-{24 + i}T15:00:00Z", "channel": "voice", "outcome": "no_answer", "debts": ["D1"]}
            for i in range(7)
        ],
    },
    # busy calls don't count toward 7-in-7
    {
        "id": "busy-free",
        "at": "2026-11-30T15:00:00Z",
        "channel": "voice",
        "debts": ["D1"],
        "consumer": {"time_zones": ["America/New_York"]},
        "history": [
            {"at": f"2026-11-{24 + i}T15:00:00Z", "channel": "voice", "outcome": "busy", "debts": ["D1"]}
            for i in range(7)
        ],
    },
    {
        "id": "cn-third-party",
        "policy": "cn",
        "at": "2026-11-30T02:00:00Z",
        "channel": "voice",
        "person": "emergency-contact-1",
        "debts": ["D1"],
        "consumer": {"time_zones": ["Asia/Shanghai"]},
    },
]


def run(lines: list[str], *args: str) -> list[dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-m", "duecall", "policy", "check", *args],
        input="\n".join(lines),
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_verdicts_line_by_line() -> None:
    out = run([json.dumps(x) for x in LINES], "--policy", "us-regf")
    assert [o["id"] for o in out] == ["ok", "late-and-capped", "busy-free", "cn-third-party"]
    assert out[0]["decision"] == "allow" and out[0]["next_allowed_at"] == "2026-11-30T15:00:00Z"
    assert out[1]["decision"] == "block"
    assert {r["rule"] for r in out[1]["reasons"]} >= {"window", "7-in-7"}  # type: ignore[index]
    assert out[1]["next_allowed_at"] == "2026-12-01T13:00:00Z"  # 08:00 New York, the oldest call dropped out
    assert out[2]["decision"] == "allow"
    assert out[3]["decision"] == "block" and out[3]["next_allowed_at"] is None


def test_malformed_lines_name_the_field_and_the_rest_is_decided(tmp_path: Path) -> None:
    lines = [
        "not json",
        json.dumps(
            {
                "id": "z",
                "at": "2026-11-30T15:00:00Z",
                "channel": "voice",
                "consumer": {"time_zones": ["UTC", "Mars/Base"]},
            }
        ),
        json.dumps({"id": "naive", "at": "2026-11-30T15:00:00", "channel": "voice"}),
        json.dumps({"id": "nopolicy", "at": "2026-11-30T15:00:00Z", "channel": "voice"}),
        json.dumps(LINES[0] | {"policy": "us-ma"}),
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = run([], str(path))
    assert out[0] == {"id": None, "error": "line 1: (line): Invalid JSON: expected ident at line 1 column 2"}
    assert out[1] == {"id": "z", "error": "line 2: consumer.time_zones[1]: unknown time zone 'Mars/Base'"}
    assert out[2]["error"].startswith("line 3: at: needs a UTC offset")  # type: ignore[union-attr]
    assert out[3]["error"] == "line 4: policy: missing (give it in the line or with --policy)"
    assert out[4]["decision"] == "allow"


# --- hostile input: one error line each, the run goes on ------------------------------------------

GOOD = json.dumps(LINES[0])
_BASE = {"at": "2026-11-30T15:00:00Z", "channel": "voice", "debts": ["D1"]}
NY_ONLY = {"time_zones": ["America/New_York"]}
HOSTILE: list[tuple[bytes, str]] = [
    (
        json.dumps({"id": "p", "policy": "nope", **_BASE}).encode(),
        "policy: unknown policy pack 'nope' (known: cn",
    ),
    (
        json.dumps({"id": "f", **_BASE, "consumer": {"time_zones": ["America"]}}).encode(),
        "time_zones[0]: unknown",
    ),
    (
        json.dumps({"id": "l", **_BASE, "consumer": {"time_zones": ["A" * 300]}}).encode(),
        "consumer.time_zones[0]: unknown time zone 'AAAA",
    ),
    (
        json.dumps({"id": "y1", **_BASE, "at": "0001-01-01T00:00:00Z"}).encode(),
        "at: 0001-01-01T00:00:00+00:00 is",
    ),
    (json.dumps({"id": "y1o", **_BASE, "at": "0001-01-01T00:00:00+05:00"}).encode(), "at: 0001-01-01"),
    (
        json.dumps({"id": "y9", **_BASE, "at": "9999-12-31T23:00:00Z"}).encode(),
        "at: 9999-12-31T23:00:00+00:00 is",
    ),
    (
        json.dumps(
            {
                "id": "h9",
                **_BASE,
                "consumer": NY_ONLY,
                "history": [{"at": "9999-12-31T23:59:00-12:00", "channel": "voice", "outcome": "no_answer"}],
            }
        ).encode(),
        "history[0].at: ",
    ),
    (
        json.dumps(
            {
                "id": "k9",
                **_BASE,
                "consumer": {
                    **NY_ONLY,
                    "consents": [
                        {
                            "from": "2026-11-30T00:00:00Z",
                            "to": "2026-12-01T00:00:00Z",
                            "given_at": "0001-01-01T00:00:00Z",
                        }
                    ],
                },
            }
        ).encode(),
        "consumer.consents[0].given_at: ",
    ),
    (b"[" * 10_000 + b"]" * 10_000, "(line): Invalid JSON: recursion limit exceeded"),
    (
        b'{"id": "d", "x": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_001,
        "(line): Invalid JSON: recursion limit",
    ),
    (b'\xff\xfe{"id": "x"}', "(line): not UTF-8 (byte 0xff at byte 1)"),
    (b'{"id": "caf\xe9"}', "(line): not UTF-8 (byte 0xe9 at byte 12)"),
    (b'{"id": "big", "x": "' + b"a" * (5 << 20) + b'"}', "(line): longer than 1048576 bytes, skipped"),
    (
        json.dumps(
            {
                "id": "c",
                **_BASE,
                "consumer": NY_ONLY,
                "history": [
                    {
                        "at": "2026-11-29T15:00:00Z",
                        "channel": "voice",
                        "outcome": "no_answer",
                        "consented": True,
                    }
                ],
            }
        ).encode(),
        "history[0].consented: no longer taken on trust",
    ),
    (
        json.dumps(
            {
                "id": "m",
                **_BASE,
                "consumer": NY_ONLY,
                "history": [{"at": "2026-11-29T15:00:00Z", "channel": "voice", "outcome": "no_answer"}]
                * 1001,
            }
        ).encode(),
        "history: List should have at most 1000 items",
    ),
]


def run_bytes(data: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "duecall", "policy", "check", *args],
        input=data,
        capture_output=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("line", "error"), HOSTILE, ids=lambda x: repr(x)[:40] if isinstance(x, bytes) else ""
)
def test_one_bad_line_is_one_error_line_and_the_run_goes_on(line: bytes, error: str) -> None:
    result = run_bytes(GOOD.encode() + b"\n" + line + b"\n" + GOOD.encode() + b"\n", "--policy", "us-regf")
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr[-2000:]
    out = [json.loads(x) for x in result.stdout.decode().splitlines()]
    assert len(out) == 3
    assert out[0]["decision"] == out[2]["decision"] == "allow"
    assert out[1]["error"].startswith("line 2: ") and error in out[1]["error"], out[1]


def test_an_unknown_policy_option_is_a_usage_error_naming_the_packs() -> None:
    result = run_bytes(GOOD.encode() + b"\n", "--policy", "nope")
    assert result.returncode == 2 and result.stdout == b""
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr
    assert "unknown policy pack 'nope' (known: cn, cn-as-written, us-ma, us-regf)" in stderr


class _HugeLine(io.RawIOBase):
    """A stream whose first line is `size` bytes, made on demand (so only the reader's memory counts)."""

    def __init__(self, size: int, rest: bytes) -> None:
        self.left, self.rest = size, rest

    def readline(self, limit: int | None = -1) -> bytes:
        if self.left > 0:
            n = min(self.left, limit if limit and limit > 0 else self.left)
            self.left -= n
            return b"a" * n if self.left else b"a" * (n - 1) + b"\n"
        out, self.rest = self.rest, b""
        return out


def test_a_line_of_many_megabytes_is_read_in_bounded_memory() -> None:
    """Before: the whole line was read and parsed (a 50 MB line peaked at 306 MB RSS; now 54 MB)."""
    stream = _HugeLine(200 << 20, GOOD.encode() + b"\n")
    tracemalloc.start()
    try:
        out = list(check_lines(stream, load_pack, "us-regf", decide))  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [o.get("error", o.get("decision")) for o in out] == [
        "line 1: (line): longer than 1048576 bytes, skipped",
        "allow",
    ]
    assert peak < 8 << 20, peak  # a few copies of the 1 MiB cap, not 200 MiB


def test_lines_are_read_one_at_a_time() -> None:
    assert list(read_lines(io.BytesIO(b"a\n\xff\n" + b"b" * 11 + b"\nc"), limit=10)) == [
        (1, "a\n", ""),
        (2, None, "(line): not UTF-8 (byte 0xff at byte 1)"),
        (3, None, "(line): longer than 10 bytes, skipped"),
        (4, "c", ""),
    ]


_VALID = {
    "id": "v",
    **_BASE,
    "consumer": {
        "time_zones": ["America/New_York"],
        "consents": [
            {"from": "2026-11-30T00:00:00Z", "to": "2026-12-01T00:00:00Z", "given_at": "2026-11-29T00:00:00Z"}
        ],
    },
    "history": [
        {"at": "2026-11-29T15:00:00Z", "channel": "voice", "outcome": "answered", "conversation": True}
    ],
}
_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(
        [
            "America",
            "US",
            "Asia/Shanghai",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59-23:59",
            "2026-11-30T15:00:00Z",
        ]
    )
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def _mutated_lines(draw: st.DrawFn) -> bytes:
    """A valid proposal with one field replaced by anything, or raw bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=200)).replace(b"\n", b" ")
    line = json.loads(json.dumps(_VALID))
    where = draw(
        st.sampled_from(
            [
                ("at",),
                ("policy",),
                ("consumer", "time_zones"),
                ("consumer", "consents"),
                ("history",),
                ("debts",),
                ("channel",),
            ]
        )
    )
    target = line
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = draw(_JSON)
    return json.dumps(line).encode()


@settings(max_examples=300, deadline=None)
@given(st.lists(_mutated_lines(), min_size=1, max_size=5))
@example([b"\x1c"])  # str.strip() takes it for a blank line: it is an error line, not skipped
def test_fuzzed_lines_never_stop_the_run(lines: list[bytes]) -> None:
    data = b"\n".join([*lines, GOOD.encode()]) + b"\n"
    out = list(check_lines(io.BytesIO(data), cache(load_pack), "us-regf", decide))
    numbers = [n for n, line in enumerate(data.split(b"\n"), start=1) if line.strip(b" \t\r")]
    assert len(out) == len(numbers)
    for number, o in zip(numbers, out, strict=True):
        assert o.get("decision") in ("allow", "block") or o["error"].startswith(f"line {number}: "), o
    assert out[-1]["decision"] == "allow"

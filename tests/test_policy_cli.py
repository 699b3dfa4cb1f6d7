"""`duecall policy check`: JSON lines in, a verdict (or a named error) per line out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
        [sys.executable, "-m", "dialer", "policy", "check", *args],
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

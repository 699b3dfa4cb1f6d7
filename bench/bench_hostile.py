"""Hostile input: time and peak memory of each parser on the inputs that once blocked or blew it up.

    python bench/bench_hostile.py

Each case runs in its own Python process so its peak memory (VmHWM) is its own. The figures from
before the fixes are in docs/benchmarks.md (issue 9); this prints today's.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Each case: (name, what it was before the fix, setup code run in the child, the measured code).
CASES = [
    (
        "AGI reply line, 64 KiB, backtracking shape",
        "11.8 s, loop blocked",
        "from ivr.agi_protocol import parse_reply\nline = '200 result=0 (' + ') a=b' * 13100 + ' !'",
        "parse_reply(line)",
    ),
    (
        "AMI message, 2 MB unterminated, 100-byte reads",
        "10.9-17.6 s",
        "from dialer.asterisk.ami_protocol import AmiParser, AmiProtocolError\n"
        "p = AmiParser()\np.feed(b'Asterisk Call Manager/9.0.0\\r\\n')\nchunk = b'X' * 100",
        "try:\n    [p.feed(chunk) for _ in range(20_000)]\n"
        "except AmiProtocolError as e:\n    result = str(e)[:60]",
    ),
    (
        "evidence ZIP bomb, 300 KB -> 300 MB",
        "666 MB, 'verified'",
        "from pathlib import Path\nfrom audit.bundle_check import check_bundle",
        "result = check_bundle(Path(ARG)).problems[:1]",
    ),
    (
        "IVR script, billion laughs (236 bytes)",
        "1.14 GB, 3.4 s",
        "from pathlib import Path\nfrom ivr.script import load_script\n"
        "from dialer.core.errors import DueCallError",
        "try:\n    load_script(Path(ARG))\nexcept DueCallError as e:\n    result = str(e)[-60:]",
    ),
    (
        "accounts CSV, one 48 MiB line then a good row",
        "288 MiB, whole file refused",
        "from pathlib import Path\nfrom dialer.accounts.csvrecords import read_records\npath = Path(ARG)",
        "with path.open('rb') as h:\n    result = sum(1 for _ in read_records(path, h))",
    ),
    (
        "policy check, one 50 MB line",
        "306 MB",
        "from dialer.policy.jsonl import read_lines",
        "with open(ARG, 'rb') as h:\n    result = [p[2][:40] for p in read_lines(h)]",
    ),
]

CHILD = """
import re, sys, time
from pathlib import Path
ARG = sys.argv[1]
{setup}
result = None
started = time.perf_counter()
{code}
seconds = time.perf_counter() - started
peak_kb = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
import json
print(json.dumps({{"seconds": seconds, "peak_mb": peak_kb / 1024, "result": repr(result)[:80]}}))
"""


def make_inputs(folder: Path) -> list[str]:
    bomb = folder / "bomb.zip"
    with (
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z,
        z.open("evidence.json", "w") as f,
    ):
        f.write(b'{"format":"duecall-evidence/2","masked":false,"events":[],"recordings":[],"pad":"')
        for _ in range(300):
            f.write(b"a" * (1 << 20))
        f.write(b'"}')
    names = "abcdefg"
    lines = [f"a: &a [{','.join('x' * 9)}]"]
    lines += [f"{n}: &{n} [{','.join([f'*{b}'] * 9)}]" for b, n in itertools.pairwise(names)]
    laughs = folder / "laughs.yaml"
    laughs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    csv = folder / "long.csv"
    with csv.open("wb") as f:
        f.write(b"account_id,name,phone,time_zone,amount,currency,due_date\n")
        f.write(b"A1," + b"x" * (48 << 20) + b",+12025550101,America/New_York,1.00,USD,2026-12-31\n")
        f.write(b"A2,Ann,+12025550102,America/New_York,1.00,USD,2026-12-31\n")
    policy = folder / "long.jsonl"
    policy.write_bytes(b'{"id": "' + b"x" * (50 << 20) + b'"}\n{"id": "next"}\n')
    return ["", "", str(bomb), str(laughs), str(csv), str(policy)]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        args = make_inputs(Path(tmp))
        print(f"{'case':50} {'before the fix':28} {'now: time':>11} {'peak':>9}  result")
        for (name, before, setup, code), arg in zip(CASES, args, strict=True):
            child = CHILD.format(setup=setup, code=code)
            run = subprocess.run(
                [sys.executable, "-c", child, arg], capture_output=True, text=True, cwd=ROOT, timeout=120
            )
            if run.returncode != 0:
                print(f"{name:50} {before:28} FAILED: {run.stderr.strip()[-200:]}")
                continue
            got = json.loads(run.stdout.splitlines()[-1])
            ms = got["seconds"] * 1000
            print(f"{name:50} {before:28} {ms:9.1f} ms {got['peak_mb']:6.0f} MB  {got['result']}")


if __name__ == "__main__":
    main()

"""The audit trail of real calls through the real Asterisk: what lands in the chain, the sealed
recordings, and `duecall audit verify` catching one changed byte."""

from __future__ import annotations

import asyncio
import sqlite3
import wave
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.asterisk.host import AmiCredentials
from dialer.core.clock import SystemClock
from dialer.core.digest import sha256_file
from duecall.cli import main
from duecall.runtime import dial
from tests.support.project import daytime_zone
from tests.support.sim import attempts, ivr_settings, opts_out_by_key, prepare, reset_counts

pytestmark = pytest.mark.asterisk


async def test_real_calls_are_in_the_chain_and_verify(asterisk: AmiCredentials, work_dir: Path) -> None:
    settings = ivr_settings(work_dir)
    opt_out, busy = "+12185550106", "+12195550130"
    await opts_out_by_key(asterisk, settings, opt_out, "O1")
    await reset_counts(asterisk, [opt_out, busy])
    zone = daytime_zone()
    await prepare(settings, work_dir, [("O1", opt_out, zone), ("B1", busy, zone)])

    summary = await dial(settings, "test", SystemClock(), timedelta(0))
    assert summary.finished == 2
    got = {str(r["account_id"]): r for r in await attempts(settings)}
    assert got["O1"]["outcome"] == "opt_out" and got["B1"]["disposition"] == "busy"

    db = settings.path(settings.store.path)
    with sqlite3.connect(db) as conn:
        answered = int(got["O1"]["id"])  # type: ignore[call-overload]
        kinds = [r[0] for r in conn.execute("SELECT kind FROM audit_events WHERE attempt_id=?", (answered,))]
        recs = conn.execute(
            "SELECT path, kind, sha256, bytes, duration_ms FROM recordings WHERE attempt_id=?", (answered,)
        ).fetchall()
        busy_recordings = conn.execute(
            "SELECT count(*) FROM recordings WHERE attempt_id=?",
            (int(got["B1"]["id"]),),  # type: ignore[call-overload]
        ).fetchone()[0]
        config = [r[0] for r in conn.execute("SELECT kind FROM audit_events WHERE kind='config.changed'")]
    assert kinds[0] == "attempt.decided"
    for kind in ("call.answer", "ivr.prompt", "ivr.key", "call.outcome", "call.ended", "consumer.opted_out"):
        assert kind in kinds, (kind, kinds)
    assert kinds[-1] == "recording.stored"
    assert len(config) >= 3  # the settings, the policy pack and the scripts, on the first run
    assert busy_recordings == 0  # never answered: nothing recorded

    [(path, kind, sha, size, duration_ms)] = recs
    wav = Path(path)
    assert kind == "call" and wav == Path(f"{got['O1']['recording_path']}.wav")
    assert sha == sha256_file(wav) and size == wav.stat().st_size
    with wave.open(str(wav)) as audio:
        assert audio.getframerate() == 8000
        assert abs(duration_ms - 1000 * audio.getnframes() / 8000) < 2 and duration_ms > 1000

    runner = CliRunner()
    config_file = str(work_dir / "duecall.toml")
    ok = await asyncio.to_thread(runner.invoke, main, ["--config", config_file, "audit", "verify"])
    assert ok.exit_code == 0 and "verified" in ok.output, ok.output

    data = bytearray(wav.read_bytes())
    data[-100] ^= 0x01
    wav.write_bytes(bytes(data))
    bad = await asyncio.to_thread(runner.invoke, main, ["--config", config_file, "audit", "verify"])
    assert bad.exit_code == 1
    assert f"{wav}: content changed" in bad.output.replace("\n", "")

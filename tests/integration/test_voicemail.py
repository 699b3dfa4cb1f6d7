"""Answering machines on the real Asterisk (issue 11 item 6): under us-regf the script's
limited-content message (12 CFR 1006.2(j)) is left after the greeting ends, recorded and counted as
voicemail; under cn none is left.

The simulated machine (numbers 0150-0159, docs/number-plan.md) plays its greeting (here vm-intro,
about 5.7 s) and a beep, then records what it hears to `sim/<number>/record`, as a machine keeps a
message: so the test hears what the machine kept, not only what the dialer says it played.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dialer.asterisk.host import AmiCredentials
from dialer.core.clock import SystemClock
from dialer.core.config import Settings
from dialer.core.dialplan import SIM_AUDIO, SIM_RECORD, sim_family
from dialer.core.errors import AmiActionFailed
from dialer.core.models import Account
from duecall.runtime import build_ivr, dial
from ivr.script import load_script
from ivr.service import voicemail_text
from tests.support.config import make_settings
from tests.support.project import daytime_zone
from tests.support.sim import SCRIPTS, ami, attempts, prepare, put, reset_counts, seconds

pytestmark = pytest.mark.asterisk
GREETING = "vm-intro"  # 5.7 s of speech, then the sim's beep
GREETING_SECONDS = 5.66


def machine_settings(work_dir: Path, pack: str) -> Settings:
    settings = make_settings(
        work_dir,
        policy={"pack": pack},
        dialer={"amd": True, "ring_timeout": "8s"},
        ivr={"enabled": True, "speech_model": "", "agi_port": 0},  # the suite's shared prompt cache
    )
    # The borrower's script only: fewer prompts to render before the first call.
    ivr = settings.ivr.model_copy(update={"scripts": (SCRIPTS / "reminder-en-US.yaml",)})
    return settings.model_copy(update={"ivr": ivr})


@pytest.fixture
async def machine(asterisk: AmiCredentials, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A simulated answering machine with a short greeting; its AstDB settings removed afterwards."""
    phone: str = request.param
    await put(asterisk, phone, SIM_AUDIO, GREETING)
    await reset_counts(asterisk, [phone])
    yield phone
    async with ami(asterisk) as client:
        for key in (SIM_AUDIO, SIM_RECORD):
            with contextlib.suppress(AmiActionFailed):  # not set
                await client.send("DBDel", {"Family": sim_family(phone.lstrip("+")), "Key": key})


async def call_machine(asterisk: AmiCredentials, settings: Settings, work_dir: Path, phone: str) -> Path:
    """One campaign call to the machine; returns where the machine recorded what it heard."""
    heard = work_dir / "heard"
    await put(asterisk, phone, SIM_RECORD, str(heard))
    await prepare(settings, work_dir, [("M1", phone, daytime_zone())])
    started = datetime.now(UTC)
    summary = await dial(settings, "test", SystemClock(), timedelta(0))
    assert summary.finished == 1
    assert datetime.now(UTC) - started < timedelta(seconds=60)  # greeting + message, then done
    return heard.with_suffix(".wav")


def trail(settings: Settings, attempt_id: int) -> list[tuple[str, dict[str, Any]]]:
    with sqlite3.connect(settings.path(settings.store.path)) as conn:
        rows = conn.execute(
            "SELECT kind, data FROM audit_events WHERE attempt_id=? ORDER BY seq", (attempt_id,)
        )
        return [(kind, json.loads(data)) for kind, data in rows]


def flags(settings: Settings, attempt_id: int) -> list[str]:
    with sqlite3.connect(settings.path(settings.store.path)) as conn:
        rows = conn.execute("SELECT flag FROM attempt_flags WHERE attempt_id=? ORDER BY flag", (attempt_id,))
        return [r[0] for r in rows]


def voiced_seconds(wav: Path) -> float:
    """Seconds of 20 ms frames louder than silence (Asterisk's own threshold is 256)."""
    with wave.open(str(wav)) as audio:
        rate = audio.getframerate()
        samples = np.frombuffer(audio.readframes(audio.getnframes()), dtype=np.int16).astype(np.float64)
    frame = rate // 50
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame)
    loud = np.sqrt((frames**2).mean(axis=1)) > 256
    return float(loud.sum()) / 50


async def message_of(settings: Settings) -> tuple[str, float]:
    """The en-US script's message as the dialer rendered it (a cache hit now) and its length."""
    service = build_ivr(settings, None, SystemClock())  # type: ignore[arg-type]  # no opt-out here
    try:
        account = Account(0, "M1", "x", "x", "+1", (), False, 100, "USD", datetime.now(UTC).date(), "en-US")
        prompt = await service.render_voicemail(account)
        assert prompt is not None
        return prompt.text, seconds(Path(f"{prompt.playback}.wav"))
    finally:
        await service.close()


@pytest.mark.parametrize("machine", ["+12025550152"], indirect=True)
async def test_us_regf_leaves_the_limited_content_message(
    asterisk: AmiCredentials, work_dir: Path, machine: str
) -> None:
    settings = machine_settings(work_dir, "us-regf")
    heard = await call_machine(asterisk, settings, work_dir, machine)
    [row] = await attempts(settings)
    assert (row["disposition"], row["ivr_stage"], row["amd_status"]) == ("machine", "voicemail", "MACHINE")
    attempt_id = int(row["id"])  # type: ignore[call-overload]
    assert "voicemail-left" in flags(settings, attempt_id)

    text, length = await message_of(settings)
    assert (
        text == voicemail_text(load_script(SCRIPTS / "reminder-en-US.yaml"))
        and "Jordan Lee" in text
        and "debt" not in text.lower()
    )
    # The machine kept the whole message: about its length of speech, after the greeting ended.
    assert 1.0 < length < 15.0
    assert length < seconds(heard) < length + 3.0, (seconds(heard), length)  # 1.5 s wait included
    assert 0.4 * length < voiced_seconds(heard) <= length + 0.5, (voiced_seconds(heard), length)
    # Our own recording of the call holds the greeting and the message.
    assert seconds(Path(f"{row['recording_path']}.wav")) > GREETING_SECONDS + length

    events = trail(settings, attempt_id)
    kinds = [k for k, _ in events]
    prompts = [d for k, d in events if k == "ivr.prompt"]
    assert prompts == [{"node": "voicemail", "text": text}]
    [ended] = [d for k, d in events if k == "call.ended"]
    assert ended["disposition"] == "machine" and "voicemail-left" in ended["flags"]
    assert "call.outcome" not in kinds  # a message is no conversation: no outcome, no 7-day bar
    assert kinds[-1] == "recording.stored"


@pytest.mark.parametrize("machine", ["+12025550153"], indirect=True)
async def test_cn_leaves_no_message(asterisk: AmiCredentials, work_dir: Path, machine: str) -> None:
    settings = machine_settings(work_dir, "cn")
    heard = await call_machine(asterisk, settings, work_dir, machine)
    [row] = await attempts(settings)
    assert (row["disposition"], row["ivr_stage"], row["amd_status"]) == ("machine", "machine", "MACHINE")
    attempt_id = int(row["id"])  # type: ignore[call-overload]
    assert "voicemail-left" not in flags(settings, attempt_id)
    assert "no message left: pack cn forbids it" in str(row["note"])
    # Hung up during the greeting: the machine never reached its beep, so it recorded nothing.
    assert not heard.exists()
    assert seconds(Path(f"{row['recording_path']}.wav")) < GREETING_SECONDS
    kinds = [k for k, _ in trail(settings, attempt_id)]
    assert "ivr.prompt" not in kinds and kinds[-1] == "recording.stored"

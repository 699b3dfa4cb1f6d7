"""The dialer end to end against the real Asterisk and its simulated borrowers."""

from __future__ import annotations

import wave
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dialer.asterisk.host import AmiCredentials
from dialer.core.clock import ShiftedClock
from dialer.store import SqliteStore
from duecall.runtime import dial, ivr_figures
from tests.support.config import make_settings
from tests.support.project import daytime_zone
from tests.support.sim import attempts, prepare

pytestmark = pytest.mark.asterisk

BEHAVIOURS = {
    # last four digits: (disposition, digits pressed)
    "0101": ("answered", "1"),
    "0104": ("answered", "4"),
    "0111": ("answered", ""),
    "0170": ("answered", ""),
    "0120": ("no_answer", ""),
    "0130": ("busy", ""),
    "0140": ("failed", ""),
    "0141": ("failed", ""),
    "0150": ("machine", ""),
    "0160": ("hung_up_early", ""),
}


async def test_each_simulated_borrower_ends_in_its_disposition(
    asterisk: AmiCredentials, work_dir: Path
) -> None:
    settings = make_settings(work_dir)
    zone = daytime_zone()
    await prepare(settings, work_dir, [(f"A{k}", f"+1202555{k}", zone) for k in BEHAVIOURS])
    summary = await dial(settings, "test", ShiftedClock(datetime.now(UTC)), timedelta(0))
    rows = await attempts(settings)
    assert summary.placed == len(BEHAVIOURS) == len(rows)
    got = {str(r["account_id"])[1:]: (r["disposition"], r["digits"]) for r in rows}
    assert got == BEHAVIOURS
    for row in rows:
        assert row["state"] == "ended"
        recording = Path(f"{row['recording_path']}.wav")
        if row["disposition"] in ("answered", "machine", "hung_up_early"):
            with wave.open(str(recording)) as audio:
                assert audio.getframerate() == 8000 and audio.getnframes() > 8000


async def test_calling_window_defers_until_morning(asterisk: AmiCredentials, work_dir: Path) -> None:
    settings = make_settings(work_dir)
    zone = "America/New_York"
    await prepare(settings, work_dir, [("W1", "+12025550101", zone)])
    day = _tomorrow(zone)
    late = datetime.combine(day, time(21, 30), ZoneInfo(zone))
    summary = await dial(settings, "test", ShiftedClock(late), timedelta(0))
    assert (summary.placed, summary.blocked) == (0, 1)
    store = await SqliteStore.open(settings.path(settings.store.path))
    try:
        campaign = await store.campaign("test")
        assert campaign is not None
        status = await store.status(campaign)
    finally:
        await store.close()
    [(next_at, account_id, _, note)] = status.next_due
    assert account_id == "W1" and note.startswith("window: outside 08:00-21:00")
    assert next_at == datetime.combine(day + timedelta(days=1), time(8), ZoneInfo(zone))
    morning = await dial(settings, "test", ShiftedClock(next_at), timedelta(0))
    assert morning.placed == 1
    assert [r["disposition"] for r in await attempts(settings)] == ["answered"]


async def test_daily_cap_holds_across_retries(asterisk: AmiCredentials, work_dir: Path) -> None:
    settings = make_settings(
        work_dir, policy={"max_attempts_per_day": 2}, retry={"busy": {"delay": "1s", "max_attempts": 5}}
    )
    zone = "Asia/Shanghai"
    await prepare(settings, work_dir, [("C1", "+12025550130", zone)])  # always busy
    day = _tomorrow(zone)
    start = datetime.combine(day, time(20, 58, 30), ZoneInfo(zone))
    summary = await dial(settings, "test", ShiftedClock(start), timedelta(seconds=30))
    rows = await attempts(settings)
    assert summary.placed == 2
    assert [r["disposition"] for r in rows] == ["busy", "busy"]
    store = await SqliteStore.open(settings.path(settings.store.path))
    try:
        campaign = await store.campaign("test")
        assert campaign is not None
        [(next_at, _, _, note)] = (await store.status(campaign)).next_due
    finally:
        await store.close()
    assert note.startswith("daily-cap: 2 of 2 voice calls today")
    assert next_at == datetime.combine(day + timedelta(days=1), time(8), ZoneInfo(zone))


def _tomorrow(zone: str) -> date:
    """A local day after the real one: the accounts are imported (and fall due) at the real time, so
    a dialer's shifted clock must not run before it."""
    return datetime.now(ZoneInfo(zone)).date() + timedelta(days=1)


async def test_answer_to_first_prompt_is_measured_from_the_answer(
    asterisk: AmiCredentials, work_dir: Path
) -> None:
    """Issue 9 item 20: with AMD off the figure printed 0 or -0 ms: it compared when two messages
    reached the dialer (DueCallAnswer over AMI, the FastAGI session), not the answer.

    It now runs from the dialplan's own clock reading at the answer (DueCallAnswer's AnsweredAt)
    to the IVR sending the first prompt: MixMonitor, the FastAGI connect and the session lookup
    lie in between, so it is positive, and printed to a tenth of a millisecond.
    """
    settings = make_settings(
        work_dir,
        dialer={"amd": False, "ring_timeout": "8s"},
        ivr={"enabled": True, "prompts_dir": str(work_dir / "prompts"), "speech_model": "", "agi_port": 0},
    )
    # 0160 hangs up during the first prompt: a short call that still starts the script.
    await prepare(settings, work_dir, [("F1", "+12195550160", daytime_zone())])
    summary = await dial(settings, "test", ShiftedClock(datetime.now(UTC)), timedelta(0))
    [delay] = summary.answer_to_audio
    assert 0.0001 <= delay < 1.0, delay
    printed = ivr_figures(summary)
    assert "answer to first prompt start: p50 " in printed
    assert " 0.0 ms" not in printed and "-0" not in printed, printed

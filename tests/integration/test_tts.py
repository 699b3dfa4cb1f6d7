"""Real synthesis through pyttsx3 + espeak-ng into Asterisk-playable 8 kHz WAV files."""

from __future__ import annotations

import asyncio
import subprocess
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dialer.core.errors import DueCallError
from ivr.spoken import spoken_amount
from ivr.tts import PromptCache, TtsError, Voice, playback_target, speakable, voice_for

PROMPTS = {
    "en-US": f"Your payment of {spoken_amount(123450, 'USD', 'en-US')} is due.",
    "zh-CN": f"您的应还金额为{spoken_amount(123450, 'CNY', 'zh-CN')}。",
    "ko-KR": f"상환 금액은 {spoken_amount(1234000, 'KRW', 'ko-KR')}입니다.",
}


class SpyCache(PromptCache):
    """Records the text each synthesis was given (once per prompt made, however many attempts it took)."""

    def __init__(self, folder: Path, workers: int = 2, timeout: float = 30.0) -> None:
        super().__init__(folder, workers, timeout)
        self.spoken: list[str] = []
        self.attempts = 0
        self._outs: set[Path] = set()  # a prompt's attempts share one temporary file name

    async def _synthesize(self, spoken: str, voice: Voice, out: Path, text: str) -> dict[str, Any]:
        self.attempts += 1
        if out not in self._outs:
            self._outs.add(out)
            self.spoken.append(spoken)
        return await super()._synthesize(spoken, voice, out, text)


@pytest.fixture
def cache(tmp_path: Path) -> SpyCache:
    return SpyCache(tmp_path / "prompts")


def wav_facts(path: Path) -> tuple[int, int, int, int, float, float]:
    """(format tag, channels, sample width, rate, seconds, RMS) of a WAV file."""
    format_tag = int.from_bytes(path.read_bytes()[20:22], "little")
    with wave.open(str(path), "rb") as reader:
        frames = reader.readframes(reader.getnframes())
        seconds = reader.getnframes() / reader.getframerate()
        facts = (reader.getnchannels(), reader.getsampwidth(), reader.getframerate())
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64)
    return (format_tag, *facts, seconds, float(np.sqrt(np.mean(samples**2))))


def test_voice_for() -> None:
    assert voice_for("zh-CN") == Voice("cmn-latn-pinyin", 150)
    assert voice_for("en-US") == Voice("en-us")
    assert voice_for("en-GB") == Voice("en-us")
    assert voice_for("ko-KR") == Voice("ko")
    with pytest.raises(ValueError, match="ja-JP"):
        voice_for("ja-JP")


def test_path_for_depends_on_text_voice_and_rate(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path)
    path = cache.path_for("hello", Voice("en-us"))
    assert path.parent == tmp_path and path.suffix == ".wav" and len(path.stem) == 32
    assert path == cache.path_for("hello", Voice("en-us"))
    others = {cache.path_for("hello!", Voice("en-us")), cache.path_for("hello", Voice("ko"))}
    others.add(cache.path_for("hello", Voice("en-us", rate=170)))
    assert path not in others and len(others) == 3
    assert playback_target(path) == str(tmp_path / path.stem)


def test_pinyin_voice_gets_pinyin_that_espeak_reads_as_mandarin() -> None:
    spoken = speakable("您好，请按时还款。", voice_for("zh-CN"))
    assert spoken == "nin2 hao3, qing3 an4 shi2 huan2 kuan3."
    phonemes = subprocess.run(
        ["espeak-ng", "-q", "-x", "-v", "cmn-latn-pinyin", spoken], capture_output=True, text=True, check=True
    ).stdout
    assert "(en)" not in phonemes  # no switch to English
    assert "X'Au214" in phonemes  # hao3 with a third tone
    assert speakable("Hello 1", voice_for("en-US")) == "Hello 1"


@pytest.mark.parametrize("locale", sorted(PROMPTS))
async def test_render_writes_asterisk_playable_wav(cache: SpyCache, locale: str) -> None:
    path = await cache.render(PROMPTS[locale], voice_for(locale))
    assert path == cache.path_for(PROMPTS[locale], voice_for(locale))
    format_tag, channels, width, rate, seconds, rms = wav_facts(path)
    assert (format_tag, channels, width, rate) == (1, 1, 2, 8000)
    assert 1.0 < seconds < 12.0
    assert rms > 300  # speech, not silence
    assert list(cache.folder.iterdir()) == [path]  # no temporary files left behind
    assert (cache.misses, cache.hits) == (1, 0)


async def test_zh_render_sends_pinyin_to_the_worker(cache: SpyCache) -> None:
    await cache.render(PROMPTS["zh-CN"], voice_for("zh-CN"))
    assert cache.spoken == [
        "nin2 de5 ying1 huan2 jin1 e2 wei2 ren2 min2 bi4 yi4 qian1 er4 bai3 san1 shi2 si4 yuan2 wu3 jiao3."
    ]


async def test_cache_hit_runs_no_subprocess(cache: SpyCache) -> None:
    voice = voice_for("en-US")
    first = await cache.render("Hello.", voice)
    second = await cache.render("Hello.", voice)
    assert first == second
    assert (cache.misses, cache.hits, len(cache.spoken)) == (1, 1, 1)
    assert cache.hit_rate == 0.5
    fresh = SpyCache(cache.folder)  # a new process finds the file on disk
    assert await fresh.render("Hello.", voice) == first
    assert (fresh.misses, fresh.hits, fresh.spoken) == (0, 1, [])


async def test_concurrent_renders_share_one_synthesis(cache: SpyCache) -> None:
    voice = voice_for("en-US")
    paths = await asyncio.gather(*(cache.render("Please call us back.", voice) for _ in range(5)))
    assert len(set(paths)) == 1
    assert (cache.misses, cache.joined, len(cache.spoken)) == (1, 4, 1)
    assert list(cache.folder.iterdir()) == [paths[0]]


async def test_a_cancelled_caller_does_not_cancel_the_shared_synthesis(cache: SpyCache) -> None:
    voice = voice_for("en-US")
    first = asyncio.create_task(cache.render("Goodbye.", voice))
    second = asyncio.create_task(cache.render("Goodbye.", voice))
    await asyncio.sleep(0)
    first.cancel()
    path = await second
    assert wav_facts(path)[:4] == (1, 1, 2, 8000)
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_unknown_voice_is_an_error_not_english(cache: SpyCache) -> None:
    with pytest.raises(TtsError, match=r"'Hello there\.' with voice zh\b.*EE_INTERNAL_ERROR") as caught:
        await cache.render("Hello there.", Voice("zh"))
    assert isinstance(caught.value, DueCallError)
    assert not cache.folder.exists() or list(cache.folder.iterdir()) == []


async def test_empty_text_is_an_error(cache: SpyCache) -> None:
    with pytest.raises(TtsError, match="empty text"):
        await cache.render("  ", voice_for("en-US"))
    assert cache.spoken == []


async def test_timeout_kills_the_worker(tmp_path: Path) -> None:
    # 2 ms: less than any worker process needs to start, however fast the machine.
    cache = PromptCache(tmp_path, timeout=0.002)
    with pytest.raises(TtsError, match=r"more than 0\.002 s"):
        await cache.render("This takes longer than two milliseconds to start.", voice_for("en-US"))
    assert list(tmp_path.iterdir()) == []


def test_error_message_shortens_long_text() -> None:
    error = TtsError("word " * 50, Voice("en-us"), "boom")
    assert "…" in str(error) and len(str(error)) < 120 and "en-us" in str(error)

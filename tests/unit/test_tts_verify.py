"""The prompt cache keeps only renders that match the request; no real engine (fault-injected workers)."""

from __future__ import annotations

import hashlib
import json
import logging
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from dialer.core.config import IvrSettings, VoiceSettings
from dialer.core.errors import ScriptError, TtsError, VoiceError
from ivr.script import load_script
from ivr.tts import (
    ATTEMPTS,
    PromptCache,
    Voice,
    find_piper_model,
    length_problem,
    piper_voice,
    predicted_seconds,
    read_audio,
)

TEXT = "Please call us back about your account today."  # 8 words: ~3.2 s at 150 wpm
RAW_RATE = 22050


def write_tone(path: Path, seconds: float, rate: int = RAW_RATE, channels: int = 1) -> dict[str, Any]:
    """A 440 Hz tone as a PCM WAV; the receipt a worker would give for it."""
    t = np.arange(int(seconds * rate)) / rate
    mono = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    samples = np.repeat(mono, channels) if channels > 1 else mono
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(samples.tobytes())
    return {"frames": len(mono), "sample_rate": rate, "sha256": hashlib.sha256(samples.tobytes()).hexdigest()}


class FaultyCache(PromptCache):
    """A worker that renders its first `wrong` attempts at 200 wpm, whatever was asked (the pyttsx3 fault)."""

    def __init__(self, folder: Path, wrong: int, fail_engines: tuple[str, ...] = ()) -> None:
        super().__init__(folder)
        self.wrong = wrong
        self.fail_engines = fail_engines
        self.attempts: list[tuple[str, int]] = []  # (engine, rate rendered at)

    async def _expected_frames(self, spoken: str, voice: Voice) -> int | None:
        return int(3.2 * RAW_RATE) if voice.engine == "espeak" else None  # what espeak-ng says at 150

    async def _synthesize(self, spoken: str, voice: Voice, out: Path, text: str) -> dict[str, Any]:
        if voice.engine in self.fail_engines:
            raise TtsError(text, voice, "piper worker failed: injected")
        rate = 200 if len(self.attempts) < self.wrong else voice.rate
        self.attempts.append((voice.engine, rate))
        facts = write_tone(out, 3.2 * 150 / rate)
        echoed = {"voice": voice.name} if voice.engine == "espeak" else {"model": voice.model}
        noise = {"noise_scale": 0.0, "noise_w_scale": 0.0}
        return {"engine": voice.engine, "rate": voice.rate, **echoed, **noise, **facts}


async def test_a_render_at_the_wrong_rate_is_made_again_not_cached(tmp_path: Path) -> None:
    cache = FaultyCache(tmp_path, wrong=2)
    path = await cache.render(TEXT, Voice("en-us"))
    assert cache.attempts == [("espeak", 200), ("espeak", 200), ("espeak", 150)]
    assert cache.rejected == 2
    audio = read_audio(path)
    assert (audio.channels, audio.rate) == (1, 8000) and audio.seconds == pytest.approx(3.2, abs=0.01)
    assert list(tmp_path.iterdir()) == [path]


async def test_a_prompt_that_never_renders_right_is_an_error_and_nothing_is_kept(tmp_path: Path) -> None:
    cache = FaultyCache(tmp_path, wrong=99)
    with pytest.raises(TtsError, match=rf"{ATTEMPTS} renders did not match.*another rate"):
        await cache.render(TEXT, Voice("en-us"))
    assert len(cache.attempts) == ATTEMPTS  # bounded
    assert list(tmp_path.iterdir()) == []


async def test_an_echo_of_another_voice_is_rejected(tmp_path: Path) -> None:
    class Liar(FaultyCache):
        async def _synthesize(self, spoken: str, voice: Voice, out: Path, text: str) -> dict[str, Any]:
            receipt = await super()._synthesize(spoken, voice, out, text)
            return receipt | ({"voice": "en-gb"} if len(self.attempts) == 1 else {})

    cache = Liar(tmp_path, wrong=0)
    await cache.render(TEXT, Voice("en-us"))
    assert (len(cache.attempts), cache.rejected) == (2, 1)


async def test_a_bad_cached_file_is_made_again_on_first_use(tmp_path: Path) -> None:
    cache = FaultyCache(tmp_path, wrong=0)
    path = await cache.render(TEXT, Voice("en-us"))
    good = path.read_bytes()
    for damage in (good[: len(good) // 3], good[:44] + b"\0" * 100, b"RIFF nonsense"):
        path.write_bytes(damage)
        fresh = FaultyCache(tmp_path, wrong=0)  # a new process
        assert await fresh.render(TEXT, Voice("en-us")) == path
        assert (fresh.hits, fresh.misses) == (0, 1)
        assert path.read_bytes() == good
    again = FaultyCache(tmp_path, wrong=0)
    assert await again.render(TEXT, Voice("en-us")) == path
    assert (again.hits, again.misses, again.attempts) == (1, 0, [])


async def test_a_failing_piper_voice_falls_back_to_espeak_with_the_reason_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = tmp_path / "v.onnx"
    model.write_bytes(b"x")
    cache = FaultyCache(tmp_path / "prompts", wrong=0, fail_engines=("piper",))
    cache.voices["en-US"] = model
    voice = cache.voice("en-US", rate=150)
    assert voice.engine == "piper" and voice.fallback == Voice("en-us")
    with caplog.at_level(logging.WARNING):
        path = await cache.render(TEXT, voice)
    assert path == cache.path_for(TEXT, Voice("en-us")) and cache.fell_back == 1
    assert "injected; using en-us instead" in caplog.text


async def test_when_every_engine_fails_the_error_reaches_the_call(tmp_path: Path) -> None:
    cache = FaultyCache(tmp_path, wrong=0, fail_engines=("piper", "espeak"))
    with pytest.raises(TtsError, match="with voice en-us"):
        await cache.render(TEXT, piper_voice(Path("/nowhere/v.onnx"), fallback=Voice("en-us")))


def test_path_depends_on_the_piper_voice_file(tmp_path: Path) -> None:
    model = tmp_path / "v.onnx"
    model.write_bytes(b"one")
    cache = PromptCache(tmp_path)
    first = cache.path_for(TEXT, piper_voice(model))
    assert first != cache.path_for(TEXT, Voice("en-us")) and first != cache.path_for(
        TEXT, piper_voice(model, 170)
    )
    model.write_bytes(b"other voice")
    assert PromptCache(tmp_path).path_for(TEXT, piper_voice(model)) != first


def test_missing_voice_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(VoiceError, match=r"voices/zh\.onnx is missing"):
        find_piper_model("voices/zh.onnx", lambda p: tmp_path / p)
    (tmp_path / "zh.onnx").write_bytes(b"x")
    with pytest.raises(VoiceError, match=r"zh\.onnx\.json is missing"):
        find_piper_model(str(tmp_path / "zh.onnx"))
    (tmp_path / "zh.onnx.json").write_text("{not json")
    with pytest.raises(VoiceError, match="not a piper voice config"):
        find_piper_model(str(tmp_path / "zh.onnx"))
    (tmp_path / "zh.onnx.json").write_text(
        json.dumps({"audio": {"sample_rate": 22050}, "phoneme_type": "pinyin"})
    )
    with pytest.raises(VoiceError, match=r"pinyin voice and needs .*g2pW/g2pw\.onnx"):
        find_piper_model(str(tmp_path / "zh.onnx"))
    (tmp_path / "zh.onnx.json").write_text(
        json.dumps({"audio": {"sample_rate": 22050}, "espeak": {"voice": "cmn"}})
    )
    assert find_piper_model(str(tmp_path / "zh.onnx")) == tmp_path / "zh.onnx"


SCRIPT = """locale: en-US
lender: Acme
callback: "1-800-555-0100"
start: intro
nodes:
  intro:
    type: end
    say: "Hello from {lender}. This call is recorded."
    audio: AUDIO
"""


def test_a_node_may_play_a_recording_checked_at_load(tmp_path: Path) -> None:
    (tmp_path / "rec").mkdir()
    write_tone(tmp_path / "rec" / "hello.wav", 1.5, rate=44100, channels=2)
    path = tmp_path / "s.yaml"
    path.write_text(SCRIPT.replace("AUDIO", "rec/hello.wav"))
    script = load_script(path)
    assert script.audio_path("intro") == tmp_path / "rec" / "hello.wav"
    assert script.nodes["intro"].say.startswith("Hello")  # the transcript stays

    path.write_text(SCRIPT.replace("AUDIO", "rec/missing.wav"))
    with pytest.raises(ScriptError, match=r"s\.yaml:\d+: nodes\.intro\.audio: .*missing\.wav: no such file"):
        load_script(path)
    path.write_text(SCRIPT.replace("AUDIO", "rec/hello.wav").replace("{lender}", "{name}"))
    with pytest.raises(
        ScriptError, match=r"nodes\.intro\.audio: a recording cannot say the account's \{name\}"
    ):
        load_script(path)
    (tmp_path / "rec" / "song.mp3").write_bytes(b"ID3\x03" + bytes(200))
    path.write_text(SCRIPT.replace("AUDIO", "rec/song.mp3"))
    with pytest.raises(ScriptError, match=r"nodes\.intro\.audio: .*song\.mp3: not a PCM WAV"):
        load_script(path)


async def test_a_recording_is_converted_once_to_what_asterisk_plays(tmp_path: Path) -> None:
    source = tmp_path / "hello.wav"
    write_tone(source, 1.5, rate=44100, channels=2)
    cache = PromptCache(tmp_path / "prompts")
    path = await cache.recorded(source)
    audio = read_audio(path)
    assert (audio.channels, audio.width, audio.rate) == (1, 2, 8000)
    assert audio.seconds == pytest.approx(1.5, abs=0.01)
    stamp = path.stat().st_mtime_ns
    assert await cache.recorded(source) == path and path.stat().st_mtime_ns == stamp


def test_a_piper_voice_without_a_model_is_a_settings_error() -> None:
    with pytest.raises(ValidationError, match=r'voices."zh-CN": a piper voice needs `model`'):
        IvrSettings.model_validate({"voices": {"zh-CN": {"engine": "piper"}}})
    assert IvrSettings().voices["en-US"] == VoiceSettings(engine="piper", model="package")


def test_the_length_band_counts_words_and_syllables() -> None:
    english = predicted_seconds("Your payment of twelve dollars is due.", 150)
    hanzi = predicted_seconds("您的应还金额为人民币一千二百元。", 150)  # 15 syllables, no spaces
    assert english == pytest.approx(7 * 60 / 150) and hanzi == pytest.approx(15 / 1.65 * 60 / 150)
    assert length_problem(4.0, "您的应还金额为人民币一千二百元。", 150) is None
    assert length_problem(0.5, "您的应还金额为人民币一千二百元。", 150) is not None  # cut short

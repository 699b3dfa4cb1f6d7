"""Synthesize one prompt with pyttsx3's espeak driver, in a short-lived process of its own.

Usage: ``python -m ivr.tts_worker --voice VOICE --rate WPM --out FILE.wav`` with the text on
standard input (UTF-8). Writes a 22050 Hz mono 16-bit WAV (the driver's fixed format).

One process per prompt because pyttsx3 2.99 with espeak-ng writes only the last of several
queued files, may return from ``runAndWait`` before the file is complete, and can apply a voice
or rate change one utterance late. Completion is the ``finished-utterance`` event; an unknown
voice is reported only through the ``error`` event (espeak then speaks English), so any error
event fails the run.

Exit codes: 0 written, 2 bad usage or empty text, 3 engine error, 4 no completion in time.
The reason is printed on standard error. The process ends with the dialer that started it
(`ivr.lifeline`), instead of finishing a prompt nobody will play.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import threading
from pathlib import Path

import pyttsx3  # type: ignore[import-untyped]

from ivr.lifeline import die_with_parent

EXIT_USAGE = 2
EXIT_ENGINE = 3
EXIT_INCOMPLETE = 4


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ivr.tts_worker")
    parser.add_argument("--voice", required=True, help="espeak-ng voice id, e.g. en-us, cmn-latn-pinyin, ko")
    parser.add_argument("--rate", type=int, default=150, help="words per minute")
    parser.add_argument("--out", type=Path, required=True, help="WAV file to write")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for completion")
    return parser.parse_args(argv)


def synthesize(text: str, voice: str, rate: int, out: Path, wait: float) -> list[str]:
    """Write `text` spoken by `voice` to `out`; the errors the engine reported (empty: success)."""
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
    # The driver print()s "Audio saved to ..." on stdout: keep stdout for nothing but that.
    with contextlib.redirect_stdout(io.StringIO()):
        engine.runAndWait()
        if not finished.wait(wait):
            errors.append(f"no finished-utterance within {wait:g} s")
    return errors


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if argv is None:  # run as the dialer's worker process: end with the dialer
        die_with_parent()
    text = sys.stdin.buffer.read().decode("utf-8").strip()
    if not text:
        print("empty text", file=sys.stderr)
        return EXIT_USAGE
    try:
        errors = synthesize(text, args.voice, args.rate, args.out, args.wait)
    except Exception as exc:  # the engine's own failures: report them, never a traceback
        print(f"engine failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ENGINE
    if errors:
        print("; ".join(errors), file=sys.stderr)
        return EXIT_INCOMPLETE if errors[-1].startswith("no finished") else EXIT_ENGINE
    if not args.out.is_file() or args.out.stat().st_size <= 44:
        print(f"no audio written to {args.out}", file=sys.stderr)
        return EXIT_ENGINE
    return 0


if __name__ == "__main__":
    sys.exit(main())

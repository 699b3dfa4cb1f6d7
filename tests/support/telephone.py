"""The telephone-channel audio recipe shared by the voice evaluation bench and its tests.

A clip is speech (espeak-ng, tests/support/utterances.py) or a non-answer (silence, hiss, background talk),
put through what a phone line does to it, in this order: to 8 kHz (soxr), a level (normal -20 dBFS RMS,
quiet -30 dBFS, or hot and clipped at full scale), leading and trailing silence, white or babble noise at
an SNR over the whole clip (the line does not go quiet between words), the 300-3400 Hz band (FFT brick
wall), and a G.711 round trip (mu-law or A-law, the real segment codecs, in numpy). The result is the
8 kHz mono 16-bit WAV that Asterisk records.

Everything random comes from a seed in the `Channel`, so a recipe gives the same bytes on every run.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soxr  # type: ignore[import-untyped]  # no stubs; only soxr.resample is used

from dialer.core.vocab import Outcome
from ivr.flow import IvrRun, Reply
from ivr.script import Option, Script
from ivr.speech import Recognizer, SpeechError
from tests.support.utterances import espeak_samples

RECIPE_VERSION = 2  # bump when a step below changes what a clip sounds like (cached clips are keyed by it)
RATE = 8000
BAND = (300.0, 3400.0)
LEVELS = {"normal": -20.0, "quiet": -30.0, "clipped": -6.0}  # RMS dBFS of the speech before clipping
Floats = np.ndarray[Any, np.dtype[np.float32]]
Law = Literal["ulaw", "alaw"]

# Babble: other people talking in the room, in three languages, mixed at staggered offsets.
BABBLE_LINES = (
    ("ko", "오늘 회의는 몇 시에 시작해요 저는 아직 점심을 못 먹었어요"),
    ("ko+f3", "주말에 어디 가실 거예요 날씨가 좋으면 산에 가려고요"),
    ("en-us", "did you see the game last night it went on for hours"),
    ("en-us+f2", "put the kettle on I will be there in a minute"),
    ("cmn", "我们明天早上八点在门口见面好不好"),
    ("ko+m3", "아이들이 학교에서 돌아올 시간이에요 빨리 가야 돼요"),
)


@dataclass(frozen=True)
class Channel:
    """How one clip reaches the IVR. `noise` is none, white or babble; `snr_db` is ignored for none."""

    law: Law = "ulaw"
    noise: Literal["none", "white", "babble"] = "none"
    snr_db: float = 20.0
    level: Literal["normal", "quiet", "clipped"] = "normal"
    lead_s: float = 0.3
    tail_s: float = 0.6
    seed: int = 0

    @property
    def label(self) -> str:
        noise = "clean" if self.noise == "none" else f"{self.noise} {self.snr_db:g} dB"
        return f"{self.law} {noise} {self.level} lead {self.lead_s:g}s"


# The conditions the bench rotates through (each speaker gets some of them; see bench_voice_eval.py).
CONDITIONS: tuple[Channel, ...] = (
    Channel("ulaw"),
    Channel("alaw"),
    Channel("ulaw", "white", 20),
    Channel("alaw", "white", 10),
    Channel("ulaw", "white", 5),
    Channel("alaw", "babble", 20),
    Channel("ulaw", "babble", 10),
    Channel("alaw", "babble", 5),
    Channel("ulaw", level="quiet"),
    Channel("alaw", level="clipped"),
    Channel("ulaw", lead_s=1.5),
)


# -- G.711 -------------------------------------------------------------------------------------------


def _top_bit(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Index of the highest set bit of each positive integer."""
    top: np.ndarray[Any, Any] = np.floor(np.log2(np.maximum(values, 1))).astype(np.int64)
    return top


def ulaw_roundtrip(pcm: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.int16]]:
    """16-bit PCM -> G.711 mu-law code -> 16-bit PCM, as the reference g711.c (and audioop) do it."""
    x = pcm.astype(np.int64) >> 2  # 14-bit, floored: a negative sample rounds away from zero
    mag = np.minimum(np.minimum(np.abs(x), 8159) + 33, 8191)  # past the top segment: its last step
    segment = np.clip(_top_bit(mag) - 5, 0, 7)
    mantissa = (mag >> (segment + 1)) & 0x0F
    decoded = (((mantissa << 3) + 132) << segment) - 132
    out: np.ndarray[Any, np.dtype[np.int16]] = np.where(x < 0, -decoded, decoded).astype(np.int16)
    return out


def alaw_roundtrip(pcm: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.int16]]:
    """16-bit PCM -> G.711 A-law code -> 16-bit PCM, as the reference g711.c (and audioop) do it."""
    x = pcm.astype(np.int64) >> 3  # 13-bit, floored
    mag = np.minimum(np.where(x < 0, -x - 1, x), 4095)
    segment = np.where(mag < 32, 0, np.clip(_top_bit(mag) - 4, 1, 7))
    mantissa = np.where(segment == 0, mag >> 1, (mag >> segment) & 0x0F)
    decoded = np.where(
        segment == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(segment - 1, 0)
    )
    out: np.ndarray[Any, np.dtype[np.int16]] = np.where(x < 0, -decoded, decoded).astype(np.int16)
    return out


# -- signal steps -------------------------------------------------------------------------------------


def rms_dbfs(x: np.ndarray[Any, Any]) -> float:
    power = float(np.mean(np.square(x, dtype=np.float64))) if len(x) else 0.0
    return 10 * np.log10(power) if power > 0 else -120.0


def to_rate(x: Floats, rate: int) -> Floats:
    out: Floats = soxr.resample(x, rate, RATE, "HQ").astype(np.float32) if rate != RATE else x
    return out


def band_pass(x: Floats, band: tuple[float, float] = BAND) -> Floats:
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    spectrum[(freqs < band[0]) | (freqs > band[1])] = 0
    return np.fft.irfft(spectrum, len(x)).astype(np.float32)


def at_level(x: Floats, dbfs: float) -> Floats:
    gain = 10 ** ((dbfs - rms_dbfs(x)) / 20) if rms_dbfs(x) > -120 else 1.0
    return (x * gain).astype(np.float32)


def white(seconds: float, dbfs: float, seed: int) -> Floats:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * RATE)) * 10 ** (dbfs / 20)).astype(np.float32)


def babble(seconds: float, dbfs: float, seed: int, talkers: int = 4) -> Floats:
    """`talkers` of BABBLE_LINES (picked by `seed`) at random offsets, summed, at `dbfs` RMS."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * RATE), np.float32)
    for i in rng.choice(len(BABBLE_LINES), size=min(talkers, len(BABBLE_LINES)), replace=False):
        voice, text = BABBLE_LINES[int(i)]
        talk = to_rate(*espeak_samples(text, voice, int(rng.integers(130, 190))))
        talk = np.tile(talk, int(np.ceil(len(out) / max(len(talk), 1))) + 1)
        start = int(rng.integers(0, max(len(talk) - len(out), 1)))
        out += at_level(talk[start : start + len(out)], -20.0)
    return at_level(out, dbfs)


def through_line(speech: Floats, channel: Channel) -> np.ndarray[Any, np.dtype[np.int16]]:
    """8 kHz float speech (may be empty) -> what the IVR records, as 16-bit PCM."""
    level = LEVELS[channel.level]
    x = at_level(speech, level) if len(speech) else speech
    x = np.concatenate(
        [
            np.zeros(int(channel.lead_s * RATE), np.float32),
            x,
            np.zeros(int(channel.tail_s * RATE), np.float32),
        ]
    )
    if channel.noise != "none":
        seconds, noise_dbfs = len(x) / RATE, level - channel.snr_db
        make = white if channel.noise == "white" else babble
        noise = make(seconds + 0.01, noise_dbfs, channel.seed)  # a little long: never a sample short
        x = x + noise[: len(x)]
    if channel.level == "clipped":
        x = np.clip(x, -0.3, 0.3) / 0.3  # a hot microphone: the peaks flattened at full scale
    pcm = np.clip(band_pass(x.astype(np.float32)) * 32768, -32768, 32767).astype(np.int16)
    return ulaw_roundtrip(pcm) if channel.law == "ulaw" else alaw_roundtrip(pcm)


# -- clips on disk --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Speech:
    """espeak-ng speaking `text` (empty text: nothing is said)."""

    text: str
    voice: str = "ko"
    words_per_minute: int = 150
    pitch: int = 50


@dataclass(frozen=True)
class Background:
    """A non-speech answer: `kind` silence, white (hiss at `dbfs`) or babble (other people at `dbfs`)."""

    kind: Literal["silence", "white", "babble"]
    seconds: float = 2.0
    dbfs: float = -30.0
    seed: int = 0


Source = Speech | Background


def render(source: Source, channel: Channel) -> np.ndarray[Any, np.dtype[np.int16]]:
    if isinstance(source, Speech):
        if not source.text:
            return through_line(np.zeros(0, np.float32), channel)
        samples, rate = espeak_samples(source.text, source.voice, source.words_per_minute, source.pitch)
        return through_line(to_rate(samples, rate), channel)
    seconds = source.seconds
    if source.kind == "silence":
        x = np.zeros(int(seconds * RATE), np.float32)
    elif source.kind == "white":
        x = white(seconds, source.dbfs, source.seed)
    else:
        x = babble(seconds, source.dbfs, source.seed)
    # Not re-levelled or padded: the background's dbfs is its level on the line.
    pcm = np.clip(band_pass(x) * 32768, -32768, 32767).astype(np.int16)
    return ulaw_roundtrip(pcm) if channel.law == "ulaw" else alaw_roundtrip(pcm)


def clip_path(folder: Path, source: Source, channel: Channel) -> Path:
    """The WAV for (source, channel) in `folder`, rendered once and cached under a hash of the recipe."""
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(repr((RECIPE_VERSION, RATE, BAND, LEVELS, source, channel)).encode()).hexdigest()[
        :20
    ]
    path = folder / f"{digest}.wav"
    if path.exists():
        return path
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    write_wav(tmp, render(source, channel))
    os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    return path


def write_wav(path: Path, pcm: np.ndarray[Any, Any]) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.astype("<i2").tobytes())


def read_wav(path: Path) -> np.ndarray[Any, np.dtype[np.int16]]:
    with wave.open(str(path), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(np.int16)


def rotate(conditions: Sequence[Channel], index: int, count: int, seed: int) -> list[Channel]:
    """`count` conditions for the `index`-th speaker, rotating through the list, each with its own seed."""
    picked = [conditions[(index * count + j) % len(conditions)] for j in range(count)]
    return [
        Channel(c.law, c.noise, c.snr_db, c.level, c.lead_s, c.tail_s, seed * 100_003 + index * 7 + j)
        for j, c in enumerate(picked)
    ]


# -- the simulated caller ---------------------------------------------------------------------------------
# One trial = one call through the real dialogue (`ivr.flow.IvrRun`) with `CallerIo` in place of Asterisk
# (see bench/bench_voice_eval.py for what is measured and how the caller behaves).

CONSEQUENTIAL = frozenset({Outcome.PAID, Outcome.PROMISE_TO_PAY, Outcome.DISPUTE, Outcome.HARDSHIP_CALLBACK})
FIELDS = {
    "name": "김민수",
    "amount": "삼십만 원",
    "currency": "KRW",
    "due_date": "12월 15일",
    "promised_date": "",
}
MAX_FOLLOW_UPS = 4  # listens after the node under test before the caller hangs up
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


_REPLY_FIELDS = frozenset(Reply.__dataclass_fields__)


class HangUp(Exception):
    """The simulated caller ends the call: the trial has shown what it measures."""


@dataclass(frozen=True)
class Trial:
    node: str
    kind: str  # "menu" for an answer meant as an option, else the non-answer class
    intent: int | None  # index of the option meant, None for a non-answer
    sources: tuple[tuple[Source, Channel], ...]  # what is said at each attempt
    label: str  # speaker and channel, for the listing
    condition: str = ""  # the channel condition of the first rendition


@dataclass
class TrialResult:
    taken: int | None = None  # option index the dialogue took at the node
    first: str = "none"  # first recognition alone: right, wrong, none (asked again)
    reasked: bool = False
    keypad: bool = False
    disclosed: bool = False
    outcome: Outcome | None = None
    error: str = ""
    turns: int = 0


class CallerIo:
    """The dialogue's Io for one trial: keys to reach the node, recorded audio at it (see the module doc)."""

    def __init__(self, rec: Recognizer, script: Script, trial: Trial, path: dict[str, str], cache: Path):
        self.rec, self.script, self.trial, self.path, self.cache = rec, script, trial, path, cache
        self.node = ""
        self.where = ""
        self.left_target = False
        self.follow_ups = 0
        self.last_phrase: str | None = None
        self.confirming: int | None = None  # the option the IVR is asking back, while it does
        self.first_phrases: frozenset[str] | None = None
        self.result = TrialResult()

    async def play(self, where: str, text: str, keys: str) -> str | None:
        self.where = where
        parts = where.split(".")
        node = parts[1] if len(parts) > 1 and parts[0] == "nodes" else self.node
        if self.node == self.trial.node and node != self.trial.node:
            self.left_target = True
        self.node = node
        self.confirming = _asked_back(where, self.trial.node)
        if FIELDS["amount"] in text or FIELDS["due_date"] in text:
            self.result.disclosed = True
        return None

    async def listen(self, keys: str, phrases: Sequence[str], timeout: float) -> Reply:
        if self.left_target or self.confirming is not None:
            return await self._follow_up(keys, phrases)
        if self.node != self.trial.node:
            digit = self.path.get(self.node)
            if digit is None:
                raise HangUp
            return Reply(digit=digit)
        attempt = self.result.turns
        self.result.turns += 1
        if attempt:
            self.result.reasked = True
        if self.first_phrases is None:
            self.first_phrases = frozenset(phrases)
        if not phrases or frozenset(phrases) < self.first_phrases:
            self.result.keypad = True  # keys only now (stop phrases may still be heard)
        if not phrases:
            return Reply()  # the caller answers menus by voice: nothing pressed
        source, channel = self.trial.sources[min(attempt, len(self.trial.sources) - 1)]
        reply = await self._hear(source, channel, phrases)
        if attempt == 0:
            self.result.first = self._first(reply)
        self.last_phrase = reply.phrase
        return reply

    async def _hear(self, source: Source, channel: Channel, phrases: Sequence[str]) -> Reply:
        wav = await asyncio.to_thread(clip_path, self.cache, source, channel)
        if wav.stat().st_size < 44 + 2 * 1600:  # AgiIo: under 0.2 s of audio, nothing was said
            return Reply()
        try:
            heard = await self.rec.recognize(wav, phrases)
        except SpeechError as exc:  # what AgiIo.listen does: no answer, never a guess
            self.result.error = str(exc)[:200]
            failed: dict[str, Any] = {"error": self.result.error} if "error" in _REPLY_FIELDS else {}
            return Reply(**failed)
        return Reply(text=heard.text, confidence=heard.confidence, phrase=heard.phrase)

    def _first(self, reply: Reply) -> str:
        node = self.script.nodes[self.trial.node]
        if reply.phrase is None or reply.confidence < self.script.confidence:
            return "none"
        meant = node.options[self.trial.intent] if self.trial.intent is not None else None
        return "right" if meant is not None and reply.phrase in meant.phrases else "wrong"

    def _meant_taken(self) -> bool:
        if self.trial.intent is None:
            return False
        if self.confirming is not None:  # "You said <option>...": the IVR names what it heard
            return self.confirming == self.trial.intent
        if self.last_phrase is None:
            return False
        return self.last_phrase in self.script.nodes[self.trial.node].options[self.trial.intent].phrases

    async def _follow_up(self, keys: str, phrases: Sequence[str]) -> Reply:
        self.follow_ups += 1
        if self.follow_ups > MAX_FOLLOW_UPS:
            raise HangUp
        if self.trial.intent is None:  # the background goes on: the same non-answer again
            source, channel = self.trial.sources[min(self.follow_ups, len(self.trial.sources) - 1)]
            return await self._hear(source, channel, phrases) if phrases else Reply()
        if self.confirming is None:
            raise HangUp  # a later menu: the answer at the node under test has done what it did
        answer = _confirmation_answer(self.script, yes=self._meant_taken())
        if answer is None:
            return Reply()
        digit, words = answer
        wanted = [p for p in words if p in phrases]
        if wanted:
            source, channel = self.trial.sources[0]
            assert isinstance(source, Speech)
            said = Speech(wanted[0], source.voice, source.words_per_minute, source.pitch)
            return await self._hear(said, channel, phrases)
        return Reply(digit=digit) if digit in keys else Reply()

    async def read_digits(self, count: int, timeout: float) -> str:
        if self.left_target and self._meant_taken():
            return "20261208"  # the promised date the caller meant, a week ahead
        return ""


def _asked_back(where: str, target: str) -> int | None:
    """The option index of a confirmation prompt (`nodes.<target>.options.<i>.confirm`), else None."""
    parts = where.split(".")
    if len(parts) == 5 and parts[:3] == ["nodes", target, "options"] and parts[4] == "confirm":
        return int(parts[3])
    return None


def _confirmation_answer(script: Script, yes: bool) -> tuple[str, tuple[str, ...]] | None:
    """The key and words of the script's confirmation answer yes or no (None: the script has none)."""
    confirmation = getattr(script, "confirm", None)
    answer = getattr(confirmation, "accept" if yes else "reject", None)
    if answer is None:
        return None
    return str(answer.digit), tuple(answer.phrases)


def path_digits(script: Script, target: str) -> dict[str, str] | None:
    """Keys to press at each menu on the way from the start to `target` (None: unreachable by keys)."""
    seen = {script.start}
    frontier: list[tuple[str, dict[str, str]]] = [(script.start, {})]
    while frontier:
        key, presses = frontier.pop(0)
        if key == target:
            return presses
        node = script.nodes[key]
        steps = [(o.next, {**presses, key: o.digit}) for o in node.options if o.digit and o.next]
        steps += [(node.next, presses)] if node.type != "menu" and node.next else []
        for nxt, pressed in steps:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append((nxt, pressed))
    return None


def taken_option(script: Script, target: str, run: IvrRun) -> int | None:
    """Which option of `target` the dialogue took, from the nodes it went to and the outcome it recorded."""
    nodes = run.result.nodes
    if target not in nodes:
        return None
    after = len(nodes) - 1 - nodes[::-1].index(target) + 1
    options = script.nodes[target].options
    if after < len(nodes):
        hit = [i for i, o in enumerate(options) if o.next == nodes[after]]
        if hit:
            return hit[0]
    hit = [i for i, o in enumerate(options) if o.next is None and o.outcome == run.result.outcome]
    return hit[0] if hit and run.result.outcome is not None else None


def wrong_consequence(script: Script, trial: Trial, result: TrialResult) -> bool:
    node = script.nodes[trial.node]
    meant: Option | None = node.options[trial.intent] if trial.intent is not None else None
    denied = meant is None or meant.outcome in (Outcome.WRONG_NUMBER, Outcome.OPT_OUT)
    if node.right_party and result.disclosed and denied:  # the debt is never spoken before this node
        return True
    if result.outcome in CONSEQUENTIAL:
        return meant is None or (
            meant.outcome != result.outcome and not _leads_to(script, meant, result.outcome)
        )
    return False


def _leads_to(script: Script, option: Option, outcome: Outcome | None) -> bool:
    nxt = script.nodes.get(option.next or "")
    return nxt is not None and nxt.outcome == outcome


async def run_trial(
    rec: Recognizer, script: Script, trial: Trial, path: dict[str, str], cache: Path
) -> TrialResult:
    io = CallerIo(rec, script, trial, path, cache)
    fields = {**FIELDS, "lender": script.lender, "callback": script.callback}
    run = IvrRun(script, fields, io, now=lambda: NOW)
    try:
        await run.run()
    except HangUp:
        pass
    except Exception as exc:  # a failed recognition is a finding, not a crash of the bench
        io.result.error = f"{type(exc).__name__}: {exc}"
    io.result.taken = taken_option(script, trial.node, run)
    io.result.outcome = run.result.outcome
    return io.result

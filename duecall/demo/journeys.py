"""Simulated borrowers who walk through the reminder script in the demo.

A simulated borrower presses keys on a timer (AstDB `sim/<number>/keys`, `W` = one second).
To press the right key in the right menu, the demo works out when each prompt will be
playing from the rendered prompts' lengths. Timing slips are harmless: the script asks again.
"""

from __future__ import annotations

import itertools
import wave
from dataclasses import dataclass
from pathlib import Path

from dialer.core.models import Account
from ivr.script import Script
from ivr.service import IvrService, account_fields

# From the answer to the first prompt with AMD on: the borrower's "hello" (0.8 s), then AMD's
# 0.8 s of silence after the greeting, then the FastAGI session starts.
IVR_START = 1.9
HELLO = 0.8  # the simulated borrower says hello before its delay starts
INTO_PROMPT = 2.0  # press a key this long after a menu's prompt begins
DIGIT = 0.35  # SendDTMF's time per key


@dataclass(frozen=True)
class Journey:
    label: str
    presses: tuple[tuple[str, str], ...]  # (node, keys) in order


def _seconds(wav: Path) -> float:
    with wave.open(str(wav), "rb") as audio:
        frames: int = audio.getnframes()
        rate: int = audio.getframerate()
    return frames / rate


async def say_seconds(ivr: IvrService, script: Script, account: Account, nodes: list[str]) -> float:
    total = 0.0
    for node in nodes:
        text = script.nodes[node].say.format(**account_fields(script, account))
        total += _seconds(await ivr.prompts.render(text, ivr.voice(script)))
    return total


def _chain(script: Script, start: str | None) -> list[str]:
    """Message nodes spoken one after another from `start` until a menu, input or end."""
    nodes = []
    while start is not None and script.nodes[start].type == "message":
        nodes.append(start)
        start = script.nodes[start].next
    return nodes


def _after(script: Script, node: str, keys: str) -> str | None:
    current = script.nodes[node]
    if current.type == "input":
        return current.next
    option = next(o for o in current.options if o.digit == keys[0])
    return option.next


async def plan_keys(ivr: IvrService, account: Account, journey: Journey) -> tuple[str, float]:
    """The simulated borrower's key string and its delay after "hello"."""
    script = ivr.script_for(account)
    at = IVR_START + await say_seconds(ivr, script, account, _chain(script, script.start))
    times: list[float] = []
    for node, keys in journey.presses:
        at += INTO_PROMPT
        times.append(at)
        after = _after(script, node, keys)
        at += len(keys) * DIGIT + await say_seconds(ivr, script, account, _chain(script, after))
    text = journey.presses[0][1]
    for (_, keys), (prev_at, next_at) in zip(journey.presses[1:], itertools.pairwise(times), strict=True):
        gap = next_at - prev_at - DIGIT * len(text.split("W")[-1])
        text += "W" * max(1, round(gap)) + keys
    return text, times[0] - HELLO

"""Asterisk's side of a FastAGI session, played by the test: no Asterisk needed."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from ivr.tts import Voice, voice_for


def agi_problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ivr.agi" and r.levelno >= logging.WARNING]


SECRET_SCRIPT = """\
locale: en-US
lender: Acme
callback: "18005550100"
start: confirm
listen: false
nodes:
  confirm:
    type: menu
    say: "Hello from {lender}. This call is recorded. Are you {name}? Press 9 to stop these calls."
    options:
      - {digit: "1", outcome: acknowledged, next: bye}
      - {digit: "9", outcome: opt_out, next: bye}
  bye:
    type: end
    say: "Goodbye."
"""


class CannedPrompts:
    """The service's prompt cache, minus synthesis: every prompt is one file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def render(self, text: str, voice: object) -> Path:
        return self.path

    def voice(self, locale: str, name: str | None = None, rate: int = 150) -> Voice:
        return Voice(name or voice_for(locale).name, rate)

    async def recorded(self, source: Path) -> Path:
        return self.path

    async def close(self) -> None:
        pass


async def drive(port: int, key: str, *args: str) -> list[str]:
    """Play Asterisk for call `key`: press 9 whenever 9 may cut a prompt. The commands received."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    env = ["agi_network: yes", "agi_network_script: reminder", "agi_uniqueid: 9.9", f"agi_arg_1: {key}"]
    env += [f"agi_arg_{i}: {arg}" for i, arg in enumerate(args, start=2)]
    writer.write(("\n".join(env) + "\n\n").encode())
    commands: list[str] = []
    async with asyncio.timeout(5):
        while line := (await reader.readline()).decode().rstrip("\n"):
            commands.append(line)
            if line.startswith("STREAM FILE") and "9" in line.rsplit(" ", 1)[-1]:
                writer.write(b"200 result=57 endpos=800\n")  # the key 9
            elif line.startswith("STREAM FILE"):
                writer.write(b"200 result=0 endpos=8000\n")
            else:
                writer.write(b"200 result=1\n")
    writer.close()
    return commands

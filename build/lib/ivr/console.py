"""`duecall ivr try`: play a script in the terminal, for script authors.

Prompts are printed; the author types what the borrower would do: a key
(`1`), words (`yes`), digits for an input (`20261201`), or nothing (silence).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from ivr.flow import Reply


class ConsoleIo:
    def __init__(self, ask: Callable[[str], str] = input, show: Callable[[str], None] = print) -> None:
        self.ask = ask
        self.show = show

    async def _ask(self, hint: str) -> str:
        # input() blocks: keep it off the event loop like any other blocking call
        return (await asyncio.to_thread(self.ask, hint)).strip()

    async def play(self, where: str, text: str, keys: str) -> str | None:
        self.show(f"  IVR  [{where}] {text}")
        return None

    async def listen(self, keys: str, phrases: Sequence[str], timeout: float) -> Reply:
        choices = f"keys {','.join(keys)}" + (f"; or say: {' / '.join(phrases)}" if phrases else "")
        answer = await self._ask(f"  you  ({choices}; Enter = silence) > ")
        if not answer:
            return Reply()
        if len(answer) == 1 and answer in "0123456789*#":
            return Reply(digit=answer)
        matched = next((p for p in phrases if p.casefold() == answer.casefold()), None)
        return Reply(text=answer, confidence=1.0 if matched else 0.0, phrase=matched)

    async def read_digits(self, count: int, timeout: float) -> str:
        answer = await self._ask(f"  you  (up to {count} digits; Enter = silence) > ")
        return "".join(c for c in answer if c.isdigit())[:count]

"""Running a script on one call: an explicit state machine over the script's nodes.

The flow does not know how audio is played or replies are heard: an `Io`
does (FastAGI on a real call, the terminal for `duecall ivr try`). It records
every node visited, every key and utterance, and the outcome.

    SPEAKING --prompt done--> AWAITING --reply--> SPEAKING (next node)
        |                        |
        +------- end node / hangup / no more retries ------> ENDED
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from dialer.core.vocab import Outcome
from ivr.script import Node, Option, Script

log = logging.getLogger(__name__)
NO_INPUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Reply:
    """What the borrower did after a prompt: a key, words, or nothing."""

    digit: str | None = None
    text: str = ""
    confidence: float = 0.0
    phrase: str | None = None  # the grammar phrase recognised, if any

    @property
    def empty(self) -> bool:
        return self.digit is None and not self.text


class Io(Protocol):
    async def play(self, where: str, text: str, keys: str) -> str | None:
        """Speak `text`; a key in `keys` pressed meanwhile stops it and is returned (barge-in)."""

    async def listen(self, keys: str, phrases: Sequence[str], timeout: float) -> Reply:
        """Wait for a key in `keys`, or (when `phrases`) a spoken reply recognised against them."""

    async def read_digits(self, count: int, timeout: float) -> str:
        """Collect up to `count` digits (ends early on '#' or the timeout)."""


class IvrState(enum.StrEnum):
    SPEAKING = "speaking"
    AWAITING = "awaiting"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Step:
    at: datetime
    node: str
    kind: str  # prompt, key, speech, no_input, no_match, outcome, error
    detail: Mapping[str, Any]


@dataclass
class IvrResult:
    outcome: Outcome = Outcome.NO_RESPONSE
    promised_date: date | None = None
    right_party: bool | None = None  # None: never asked or never answered
    nodes: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)


class IvrRun:
    def __init__(
        self,
        script: Script,
        fields: Mapping[str, str],
        io: Io,
        now: Callable[[], datetime],
        on_opt_out: Callable[[], Awaitable[None]] | None = None,
        spoken_date: Callable[[date], str] | None = None,
    ) -> None:
        self.script = script
        self.fields = dict(fields)
        self.io = io
        self.now = now
        self.on_opt_out = on_opt_out
        self.spoken_date = spoken_date or (lambda d: d.isoformat())
        self.state = IvrState.SPEAKING
        self.result = IvrResult()

    def text(self, template: str) -> str:
        return template.format(**self.fields)

    def _step(self, node: str, kind: str, **detail: Any) -> None:
        self.result.steps.append(Step(self.now(), node, kind, detail))

    async def run(self) -> IvrResult:
        key: str | None = self.script.start
        while key is not None:
            self.result.nodes.append(key)
            key = await self._visit(key, self.script.nodes[key])
        self.state = IvrState.ENDED
        return self.result

    async def _visit(self, key: str, node: Node) -> str | None:
        self.state = IvrState.SPEAKING
        if node.type == "menu":
            return await self._menu(key, node)
        if node.type == "input":
            return await self._input(key, node)
        await self._say(key, node.say, "")
        if node.type == "end":
            await self._finish(key, node.outcome)
            return None
        return node.next

    async def _say(self, key: str, template: str, keys: str, record_key: bool = True) -> str | None:
        text = self.text(template)
        self._step(key, "prompt", text=text)
        pressed = await self.io.play(f"nodes.{key}.say", text, keys)
        if pressed is not None and record_key:
            self._step(key, "key", digit=pressed, barge_in=True)
        return pressed

    async def _finish(self, key: str, outcome: Outcome | None) -> None:
        if outcome is None:
            return
        if outcome is Outcome.OPT_OUT and self.on_opt_out is not None:
            await self.on_opt_out()  # recorded before the confirmation is spoken
        self.result.outcome = outcome
        self._step(key, "outcome", outcome=outcome.value)

    # -- menus ---------------------------------------------------------------

    async def _menu(self, key: str, node: Node) -> str | None:
        keys = self.script.menu_digits(key)
        phrases = [p for o in node.options for p in o.phrases] if self.script.listen else []
        misses = {"no_input": 0, "no_match": 0}
        template = node.say
        while True:
            pressed = await self._say(key, template, keys)
            self.state = IvrState.AWAITING
            reply = Reply(digit=pressed) if pressed else await self.io.listen(keys, phrases, NO_INPUT_SECONDS)
            if not pressed:
                self._record_reply(key, reply)
            option = self._match(node, reply)
            if option is not None:
                return await self._choose(key, node, option)
            kind = "no_input" if reply.empty else "no_match"
            if reply.text and reply.confidence < self.script.confidence:
                phrases = []  # asked again once by voice; from now on, keypad only
            misses[kind] += 1
            retry = getattr(node, kind)
            self._step(key, kind, attempt=misses[kind])
            if retry is None or misses[kind] > retry.retries:
                return await self._give_up(key, node)
            template = retry.say
            self.state = IvrState.SPEAKING

    def _record_reply(self, key: str, reply: Reply) -> None:
        if reply.digit is not None:
            self._step(key, "key", digit=reply.digit, barge_in=False)
        elif reply.text:
            self._step(
                key,
                "speech",
                transcript=reply.text,
                confidence=round(reply.confidence, 3),
                phrase=reply.phrase,
            )

    def _match(self, node: Node, reply: Reply) -> Option | None:
        for option in node.options:
            if reply.digit is not None and reply.digit == option.digit:
                return option
            confident = reply.confidence >= self.script.confidence
            if reply.phrase is not None and confident and reply.phrase in option.phrases:
                return option
        return None

    async def _choose(self, key: str, node: Node, option: Option) -> str | None:
        if node.right_party:
            self.result.right_party = option.outcome is not Outcome.WRONG_NUMBER
        if option.outcome is not None and option.next is None:
            await self._finish(key, option.outcome)
            return None
        if option.outcome is not None:
            await self._finish(key, option.outcome)
        return option.next

    async def _give_up(self, key: str, node: Node) -> str | None:
        if node.fallback is not None:
            return node.fallback
        await self._finish(key, Outcome.NO_RESPONSE)
        return None

    # -- digit input (a promised date) ------------------------------------------

    async def _input(self, key: str, node: Node) -> str | None:
        template, misses = node.say, 0
        while True:
            first = await self._say(key, template, "0123456789", record_key=False)  # part of the digits
            self.state = IvrState.AWAITING
            rest = await self.io.read_digits(node.digits - len(first or ""), NO_INPUT_SECONDS)
            digits = (first or "") + rest
            self._step(key, "key", digits=digits)
            promised = self._promised_date(digits, node.max_days)
            if promised is not None:
                self.result.promised_date = promised
                self.fields["promised_date"] = self.spoken_date(promised)
                await self._finish(key, node.outcome)
                return node.next
            misses += 1
            retry = node.no_input if not digits else node.no_match
            self._step(key, "no_input" if not digits else "no_match", attempt=misses, digits=digits)
            if retry is None or misses > retry.retries:
                return await self._give_up(key, node)
            template = retry.say

    def _promised_date(self, digits: str, max_days: int) -> date | None:
        try:
            promised = datetime.strptime(digits, "%Y%m%d").date()
        except ValueError:
            return None
        today = self.now().date()
        return promised if today <= promised <= today + timedelta(days=max_days) else None

"""Running a script on one call: an explicit state machine over the script's nodes.

The flow does not know how audio is played or replies are heard: an `Io`
does (FastAGI on a real call, the terminal for `duecall ivr try`). It records
every node visited, every key and utterance, and the outcome.

    SPEAKING --prompt done--> AWAITING --key, or voice where it may act at once--> SPEAKING (next node)
        |                        |
        |                        +--voice answer to confirm--> CONFIRMING --yes--> SPEAKING (next node)
        |                                                          |
        |                        AWAITING (keypad only) <--no / no answer--+
        +------- end node / hangup / no more retries ------> ENDED

Consequences decide the dialogue (docs/ivr.md): a key takes effect at once; a spoken answer in a
`voice: confirm` menu is asked back ("You said pay. Press 1 ...") and takes effect only on a yes;
a stop request (the script's `stop_phrases`, or the opt-out option) is never asked back. A reply
the recogniser could not give (`Reply.error`: a crash, no model, a VAD failure) is no input, with
its reason recorded, and the rest of the call is keypad only: never an invented answer.

A paid account is never asked for money: before the first node that speaks of money (after the
right person is confirmed), the flow asks the account's balance once (`balance_of`, bounded by
`balance_timeout`). Paid in full: the script's `paid_in_full` is said and the call ends
`already_paid`. No answer in time, or an error: fail safe, the amount is not said either; the
script's close (`Script.closing_after`) is said and the call ends `no_response`.
"""

from __future__ import annotations

import asyncio
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
BALANCE_SECONDS = 2.0  # how long the balance check may take before the call fails safe
PAID_NODE = "paid_in_full"  # the node the steps name for the paid text (it is no node of the script)
Balance = Callable[[], Awaitable[int | None]]  # the account's balance now, minor units; None: unknown


@dataclass(frozen=True, slots=True)
class Reply:
    """What the borrower did after a prompt: a key, words, or nothing."""

    digit: str | None = None
    text: str = ""
    confidence: float = 0.0
    phrase: str | None = None  # the grammar phrase recognised, if any
    error: str | None = None  # why nothing could be recognised (recogniser crash, no model, VAD)
    refused: str = ""  # why the words heard were not taken as a phrase ("no speech", "not a menu phrase")

    @property
    def empty(self) -> bool:
        return self.digit is None and not self.text


class Io(Protocol):
    async def play(self, where: str, text: str, keys: str) -> str | None:
        """Speak `text`; a key in `keys` pressed meanwhile stops it and is returned (barge-in)."""

    async def listen(self, keys: str, phrases: Sequence[str], timeout: float) -> Reply:
        """Wait for a key in `keys`, or (when `phrases`) a spoken reply recognised against them.

        When nothing could be recognised (the recogniser failed, no model), a `Reply` with `error`.
        """

    async def read_digits(self, count: int, timeout: float) -> str:
        """Collect up to `count` digits (ends early on '#' or the timeout)."""


class IvrState(enum.StrEnum):
    SPEAKING = "speaking"
    AWAITING = "awaiting"
    CONFIRMING = "confirming"  # a spoken answer is asked back before it takes effect
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Step:
    at: datetime
    node: str
    kind: str  # prompt, key, speech, no_input, no_match, confirm, outcome
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
        balance_of: Balance | None = None,
        balance_timeout: float = BALANCE_SECONDS,
    ) -> None:
        self.script = script
        self.fields = dict(fields)
        self.io = io
        self.now = now
        self.on_opt_out = on_opt_out
        self.spoken_date = spoken_date or (lambda d: d.isoformat())
        self.state = IvrState.SPEAKING
        self.result = IvrResult()
        self.voice_down = False  # the recogniser failed once: keypad only for the rest of the call
        self.balance_of = balance_of  # None: no check (e.g. `duecall ivr try`)
        self.balance_timeout = balance_timeout
        self.balance_checked = False

    def text(self, template: str) -> str:
        return template.format(**self.fields)

    def _step(self, node: str, kind: str, **detail: Any) -> None:
        self.result.steps.append(Step(self.now(), node, kind, detail))

    async def run(self) -> IvrResult:
        key: str | None = self.script.start
        while key is not None:
            if self._check_due(key) and not await self._still_owed(key):
                break
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

    async def _say(
        self, key: str, template: str, keys: str, record_key: bool = True, where: str | None = None
    ) -> str | None:
        text = self.text(template)
        self._step(key, "prompt", text=text)
        pressed = await self.io.play(where or f"nodes.{key}.say", text, keys)
        if pressed is not None and record_key:
            self._step(key, "key", digit=pressed, barge_in=True)
        return pressed

    async def _say_all(self, key: str, prompts: Sequence[tuple[str, str]], keys: str) -> str | None:
        """Speak (where, template) prompts in turn; a key pressed during one ends them all."""
        for where, template in prompts:
            pressed = await self._say(key, template, keys, where=where)
            if pressed is not None:
                return pressed
        return None

    async def _hear(self, key: str, keys: str, phrases: Sequence[str]) -> Reply:
        """The reply after a prompt, recorded; a recogniser failure turns voice off for the call."""
        reply = await self.io.listen(keys, phrases, NO_INPUT_SECONDS)
        if reply.error is not None:
            self.voice_down = True
            log.warning("call in node %s: no voice reply (%s); keypad only from now on", key, reply.error)
            return Reply(error=reply.error)  # whatever else came with it is not an answer
        self._record_reply(key, reply)
        return reply

    async def _finish(self, key: str, outcome: Outcome | None, via: str | None = None) -> None:
        if outcome is None:
            return
        if outcome is Outcome.OPT_OUT and self.on_opt_out is not None:
            await self.on_opt_out()  # recorded before the confirmation is spoken
        self.result.outcome = outcome
        detail = {"outcome": outcome.value} | ({"via": via} if via else {})
        self._step(key, "outcome", **detail)

    # -- the balance, before any word about money -------------------------------

    def _check_due(self, key: str) -> bool:
        """Once a call, before the first node that speaks of money. Checked once only: the amount
        and the menu follow within seconds, and a payment landing after the check is seen by the
        strategy at its next decision (the account then leaves it)."""
        return self.balance_of is not None and not self.balance_checked and self.script.speaks_of_money(key)

    async def _still_owed(self, key: str) -> bool:
        """Ask the balance; False when the call has ended here (paid in full, or unknown)."""
        self.balance_checked = True
        balance = await self._balance()
        if balance is not None and balance > 0:
            return True
        if balance is not None:
            await self._paid(key)
        else:
            await self._close_unknown(key)
        self.state = IvrState.ENDED
        return False

    async def _balance(self) -> int | None:
        assert self.balance_of is not None
        try:
            async with asyncio.timeout(self.balance_timeout):
                return await self.balance_of()
        except TimeoutError:
            log.warning(
                "balance check: no answer within %.1f s; the amount is not said", self.balance_timeout
            )
        except Exception:  # any failure of the lookup: fail safe (never the amount), and say why in the log
            log.warning("balance check failed; the amount is not said", exc_info=True)
        return None

    async def _paid(self, key: str) -> None:
        text = self.script.paid_in_full
        close = self.script.closing_after(key)
        if text is None and close is not None:  # a script without the paid text: its close
            text = self.script.nodes[close].say
        if text is not None:
            await self._say(PAID_NODE, text, "", where=PAID_NODE)
        await self._finish(PAID_NODE, Outcome.ALREADY_PAID, "balance")

    async def _close_unknown(self, key: str) -> None:
        """Fail safe: the close after the menu (its callback number), not the amount; no_response."""
        close = self.script.closing_after(key)
        if close is not None:
            self.result.nodes.append(close)
            await self._say(close, self.script.nodes[close].say, "")
        await self._finish(close or key, Outcome.NO_RESPONSE, "balance-unknown")

    # -- menus ---------------------------------------------------------------

    async def _menu(self, key: str, node: Node) -> str | None:
        keys = self.script.menu_digits(key)
        misses = {"no_input": 0, "no_match": 0}
        prompts = [(f"nodes.{key}.say", node.say)]
        keypad_only = False  # after a doubtful or unconfirmed spoken answer: keys (and stop) only
        while True:
            self.state = IvrState.SPEAKING
            pressed = await self._say_all(key, prompts, keys)
            self.state = IvrState.AWAITING
            phrases = self._phrases(key, keypad_only)
            reply = Reply(digit=pressed) if pressed else await self._hear(key, keys, phrases)
            option = self._match(key, node, reply)
            taken = await self._take(key, node, option, reply) if option is not None else None
            if taken is not None:
                return await self._choose(key, node, *taken)
            kind = "no_input" if option is None and reply.empty else "no_match"
            doubtful = bool(reply.text) and reply.confidence < self.script.confidence
            keypad_only = keypad_only or option is not None or doubtful
            misses[kind] += 1
            self._missed(key, kind, misses[kind], reply, unconfirmed=option is not None)
            retry = getattr(node, kind)
            if retry is None or misses[kind] > retry.retries:
                return await self._give_up(key, node)
            prompts = [(f"nodes.{key}.{kind}.say", retry.say)]
            if option is not None and self.script.confirm is not None:  # not confirmed: ask again
                prompts = [("confirm.again", self.script.confirm.again), (f"nodes.{key}.say", node.say)]

    def _missed(self, key: str, kind: str, attempt: int, reply: Reply, unconfirmed: bool = False) -> None:
        reason = reply.error or ("not confirmed" if unconfirmed else None) or reply.refused or None
        self._step(key, kind, attempt=attempt, **({"reason": reason} if reason else {}))

    def _stop_phrases(self, key: str) -> list[str]:
        """What a stop request sounds like in this menu (none where the menu has no opt-out)."""
        stop = self.script.opt_out_option(key)
        return [] if stop is None else _unique([*stop.phrases, *self.script.stop_phrases])

    def _phrases(self, key: str, keypad_only: bool) -> list[str]:
        if not self.script.listen or self.voice_down:
            return []
        if keypad_only or not self.script.takes_voice(key):
            return self._stop_phrases(key)  # opt-out stays voice and key
        answers = [p for o in self.script.nodes[key].options for p in o.phrases]
        return _unique([*answers, *self._stop_phrases(key)])

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

    def _match(self, key: str, node: Node, reply: Reply) -> Option | None:
        if reply.digit is not None:
            return next((o for o in node.options if o.digit == reply.digit), None)
        if reply.phrase is None or reply.confidence < self.script.confidence:
            return None
        if reply.phrase in self._stop_phrases(key):
            return self.script.opt_out_option(key)
        return next((o for o in node.options if reply.phrase in o.phrases), None)

    async def _take(self, key: str, node: Node, option: Option, reply: Reply) -> tuple[Option, str] | None:
        """The option to act on and how it was given, or None: a spoken answer not confirmed."""
        if reply.digit is not None:
            return option, "key"
        if not self.script.needs_confirming(key, option):
            return option, "voice"  # a stop request, or a menu where nothing consequential follows
        self.state = IvrState.CONFIRMING
        return await self._confirm(key, node, option, reply.phrase or "")

    # -- asking a spoken answer back -----------------------------------------------

    async def _confirm(self, key: str, node: Node, option: Option, heard: str) -> tuple[Option, str] | None:
        confirm = self.script.confirm
        assert confirm is not None and option.confirm is not None  # the script validator makes sure
        stop = self.script.opt_out_option(key)
        keys = confirm.accept.digit + confirm.reject.digit + ((stop.digit or "") if stop else "")
        where = f"nodes.{key}.options.{node.options.index(option)}.confirm"
        record = {"option": option.label, "heard": heard}
        for attempt in range(1, confirm.retries + 2):
            pressed = await self._say(key, option.confirm, keys, where=where)
            reply = (
                Reply(digit=pressed) if pressed else await self._hear(key, keys, self._confirm_phrases(key))
            )
            answer = self._confirm_answer(key, reply)
            how = "key" if reply.digit else "voice"
            if answer is not None:
                given = {"digit": reply.digit} if reply.digit else {"phrase": reply.phrase}
                self._step(key, "confirm", **record, answer=answer, by=how, **given)
            if answer == "stop" and stop is not None:
                return stop, how  # a stop request ends the question: opt-out, never asked back
            if answer is not None:
                return (option, f"voice+{how}") if answer == "yes" else None
            kind = "no_match" if reply.text else "no_input"
            self._missed(key, kind, attempt, reply)
        self._step(key, "confirm", **record, answer="none")
        return None

    def _confirm_phrases(self, key: str) -> list[str]:
        confirm = self.script.confirm
        assert confirm is not None
        answers = [*confirm.accept.phrases, *confirm.reject.phrases]
        if not answers or not self.script.listen or self.voice_down:
            return []  # a confirmation by key only (e.g. ko-KR: "맞으시면 1번")
        return _unique([*answers, *self._stop_phrases(key)])

    def _confirm_answer(self, key: str, reply: Reply) -> str | None:
        """yes, no, stop, or None (silence, or nothing clear)."""
        confirm = self.script.confirm
        assert confirm is not None
        stop = self.script.opt_out_option(key)
        if reply.digit is not None:
            digits = {confirm.accept.digit: "yes", confirm.reject.digit: "no"}
            return digits.get(reply.digit) or (
                "stop" if stop is not None and reply.digit == stop.digit else None
            )
        if reply.phrase is None or reply.confidence < self.script.confidence:
            return None
        if reply.phrase in self._stop_phrases(key):
            return "stop"
        if reply.phrase in confirm.accept.phrases:
            return "yes"
        return "no" if reply.phrase in confirm.reject.phrases else None

    async def _choose(self, key: str, node: Node, option: Option, via: str) -> str | None:
        if node.right_party:
            self.result.right_party = option.outcome is not Outcome.WRONG_NUMBER
        if option.outcome is not None:
            await self._finish(key, option.outcome, via)
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
                await self._finish(key, node.outcome, "key")
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


def _unique(phrases: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(phrases))

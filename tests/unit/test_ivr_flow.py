"""The IVR state machine over the shipped en-US script, with a scripted caller.

This fake stands at the project's own boundary (the `Io` protocol); the same flows run over
FastAGI against the real Asterisk in tests/integration/test_ivr_asterisk.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from dialer.core.vocab import Outcome
from ivr.flow import IvrRun, Reply
from ivr.script import load_script

SCRIPT = load_script(Path(__file__).parents[2] / "ivr" / "scripts" / "reminder-en-US.yaml")
NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
FIELDS = {
    "name": "Olivia Smith",
    "amount": "1,234 dollars and 50 cents",
    "due_date": "December 1, 2026",
    "lender": "Acme Lending",
    "callback": "1 8 0 0 5 5 5 0 1 0 0",
}


class Caller:
    """Answers each prompt from a list: 'key:1' (after the prompt), 'barge:1' (during it),
    'say:yes:0.9' (words, confidence), 'digits:20261201', or 'silence'."""

    def __init__(self, answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.heard: list[str] = []

    def _next(self) -> str:
        return self.answers.pop(0) if self.answers else "silence"

    async def play(self, where: str, text: str, keys: str) -> str | None:
        self.heard.append(text)
        if self.answers and self.answers[0].startswith("barge:") and self.answers[0][6:] in keys:
            return self._next().split(":")[1]
        return None

    async def listen(self, keys: str, phrases: Sequence[str], timeout: float) -> Reply:
        answer = self._next()
        if answer.startswith("key:"):
            return Reply(digit=answer.split(":")[1])
        if answer.startswith("say:"):
            _, words, conf = answer.split(":")
            phrase = words if words in phrases else None
            return Reply(text=words, confidence=float(conf), phrase=phrase)
        return Reply()

    async def read_digits(self, count: int, timeout: float) -> str:
        answer = self._next()
        return answer.split(":")[1][:count] if answer.startswith("digits:") else ""


async def run(answers: Sequence[str]) -> tuple[IvrRun, Caller]:
    caller = Caller(answers)
    opted: list[bool] = []

    async def opt_out() -> None:
        opted.append(True)
        assert not any("will not receive further calls" in h for h in caller.heard)  # recorded first

    flow = IvrRun(SCRIPT, FIELDS, caller, lambda: NOW, opt_out, lambda d: d.strftime("%B %-d, %Y"))
    await flow.run()
    flow.opted = opted  # type: ignore[attr-defined]
    return flow, caller


async def test_keypad_promise_to_pay() -> None:
    flow, caller = await run(["key:1", "barge:2", "digits:20261205"])
    r = flow.result
    assert (r.outcome, r.promised_date, r.right_party) == (Outcome.PROMISE_TO_PAY, date(2026, 12, 5), True)
    assert r.nodes == ["intro", "confirm", "details", "menu", "promise_date", "promised"]
    assert "promise to pay on December 5, 2026" in caller.heard[-1]
    assert [s.kind for s in r.steps if s.node == "menu"] == ["prompt", "key"]
    assert [s.detail.get("barge_in") for s in r.steps if s.kind == "key"] == [False, True, None]


async def test_voice_reply_then_dispute_by_voice_each_confirmed() -> None:
    flow, _ = await run(["say:yes:0.92", "key:1", "say:dispute:0.8", "say:yes:0.9"])
    assert flow.result.outcome is Outcome.DISPUTE
    speech = [s.detail for s in flow.result.steps if s.kind == "speech"]
    assert speech[0] == {"transcript": "yes", "confidence": 0.92, "phrase": "yes"}
    confirmed = [s.detail for s in flow.result.steps if s.kind == "confirm"]
    assert [(d["heard"], d["answer"], d["by"]) for d in confirmed] == [
        ("yes", "yes", "key"),
        ("dispute", "yes", "voice"),
    ]


async def test_low_confidence_asks_again_then_keypad_only() -> None:
    flow, _ = await run(["say:yes:0.3", "say:yes:0.95", "key:1", "key:4"])
    assert flow.result.outcome is Outcome.HARDSHIP_CALLBACK
    # after a doubtful spoken reply the flow stops offering voice: the confident "yes" is not taken
    kinds = [s.kind for s in flow.result.steps if s.node == "confirm"]
    assert kinds == ["prompt", "speech", "no_match", "prompt", "speech", "no_match", "prompt", "key"]


async def test_wrong_party_hears_nothing_about_the_debt() -> None:
    flow, caller = await run(["key:2"])
    assert flow.result.outcome is Outcome.WRONG_NUMBER and flow.result.right_party is False
    assert not any("1,234" in h or "December" in h for h in caller.heard)
    assert "sorry to have disturbed you" in caller.heard[-1]


async def test_opt_out_is_recorded_before_it_is_confirmed() -> None:
    flow, caller = await run(["key:1", "key:9"])
    assert flow.result.outcome is Outcome.OPT_OUT
    assert flow.opted == [True]  # type: ignore[attr-defined]
    assert "will not receive further calls" in caller.heard[-1]


async def test_no_input_retries_then_a_polite_close_without_details() -> None:
    flow, caller = await run([])
    assert flow.result.outcome is Outcome.NO_RESPONSE
    assert flow.result.nodes == ["intro", "confirm", "unreached"]
    assert sum(1 for s in flow.result.steps if s.kind == "no_input") == 3
    assert not any("1,234" in h for h in caller.heard)


@pytest.mark.parametrize("digits", ["20261301", "20251201", "20270301", "2026"])
async def test_invalid_promised_dates_are_asked_again(digits: str) -> None:
    flow, _ = await run(["key:1", "key:2", f"digits:{digits}", "digits:20261130"])
    assert flow.result.promised_date == date(2026, 11, 30)
    assert any(s.kind in ("no_match", "no_input") for s in flow.result.steps if s.node == "promise_date")


async def test_no_choice_in_the_menu_ends_as_acknowledged() -> None:
    flow, _ = await run(["key:1", "key:7", "key:8", "silence", "silence"])
    assert flow.result.outcome is Outcome.ACKNOWLEDGED

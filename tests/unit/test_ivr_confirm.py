"""Consequences decide the dialogue (issue 11, item 3): a spoken answer that confirms the person or
records an outcome is asked back before it takes effect; a stop request never is; a recogniser
failure is no input, never an answer.

The hostile inputs are what the recogniser gets wrong on telephone audio (issue 11): a third
party's words heard as "yes", "dispute" heard as "pay", "stop calls" heard as "yes" or "paid",
and a recogniser that crashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from dialer.core.clock import SystemClock
from dialer.core.errors import ScriptError, SpeechError
from dialer.core.vocab import Outcome
from ivr.agi import RecordResult
from ivr.flow import IvrRun, Reply
from ivr.lint import lint, lint_file, require_compliant
from ivr.script import Script, load_script, parse_script
from ivr.service import AgiIo

SCRIPTS = Path(__file__).parents[2] / "ivr" / "scripts"
EN = load_script(SCRIPTS / "reminder-en-US.yaml")
KO = load_script(SCRIPTS / "reminder-ko-KR.yaml")
NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
FIELDS = {"name": "Olivia Smith", "amount": "1,234 dollars", "due_date": "December 1, 2026"}
FIELDS |= {"lender": "Acme Lending", "callback": "1 8 0 0"}


@dataclass
class Listened:
    after: str  # the prompt just played
    keys: str
    phrases: tuple[str, ...]


@dataclass
class Caller:
    """Replies in order: 'key:1', 'heard:<phrase>' (what the recogniser returned), 'error:<why>',
    'refused:<why>' (words heard, not taken as a phrase), 'silence'. Records what it heard and
    what each listen offered."""

    answers: list[str]
    heard: list[tuple[str, str]] = field(default_factory=list)  # (where, text)
    listens: list[Listened] = field(default_factory=list)

    async def play(self, where: str, text: str, keys: str) -> str | None:
        self.heard.append((where, text))
        return None

    async def listen(self, keys: str, phrases: Sequence[str], timeout: float) -> Reply:
        self.listens.append(Listened(self.heard[-1][0], keys, tuple(phrases)))
        answer = self.answers.pop(0) if self.answers else "silence"
        kind, _, value = answer.partition(":")
        if kind == "key":
            return Reply(digit=value)
        if kind == "heard":
            return Reply(text=value, confidence=1.0, phrase=value if value in phrases else None)
        if kind == "error":
            return Reply(error=value)
        if kind == "refused":
            return Reply(text="음 그러니까", confidence=0.9, refused=value)
        return Reply()

    async def read_digits(self, count: int, timeout: float) -> str:
        return ""


async def run(script: Script, answers: list[str]) -> tuple[IvrRun, Caller, list[int]]:
    caller = Caller(list(answers))
    opted: list[int] = []

    async def opt_out() -> None:
        opted.append(len(caller.heard))  # how many prompts had been spoken when it was stored

    flow = IvrRun(script, FIELDS, caller, lambda: NOW, opt_out)
    await flow.run()
    return flow, caller, opted


def steps(flow: IvrRun, node: str) -> list[tuple[str, dict[str, object]]]:
    return [(s.kind, dict(s.detail)) for s in flow.result.steps if s.node == node and s.kind != "prompt"]


async def test_heard_pay_by_voice_takes_effect_only_when_confirmed_by_key() -> None:
    flow, caller, _ = await run(EN, ["key:1", "heard:pay", "key:1"])
    assert flow.result.outcome is Outcome.PAID
    assert steps(flow, "menu") == [
        ("speech", {"transcript": "pay", "confidence": 1.0, "phrase": "pay"}),
        ("key", {"digit": "1", "barge_in": False}),
        ("confirm", {"option": "pay", "heard": "pay", "answer": "yes", "by": "key", "digit": "1"}),
        ("outcome", {"outcome": "paid", "via": "voice+key"}),
    ]
    assert caller.heard[-2] == ("nodes.menu.options.0.confirm", EN.nodes["menu"].options[0].confirm)


async def test_a_key_takes_effect_at_once() -> None:
    flow, caller, _ = await run(EN, ["key:1", "key:3"])
    assert flow.result.outcome is Outcome.DISPUTE
    assert not any(where.endswith(".confirm") for where, _ in caller.heard)
    assert steps(flow, "menu")[-1] == ("outcome", {"outcome": "dispute", "via": "key"})


async def test_dispute_heard_as_pay_is_refused_then_asked_again_by_keypad() -> None:
    flow, caller, _ = await run(EN, ["key:1", "heard:pay", "heard:no", "key:3"])
    assert flow.result.outcome is Outcome.DISPUTE  # never `paid`
    kinds = [k for k, _ in steps(flow, "menu")]
    assert kinds == ["speech", "speech", "confirm", "no_match", "key", "outcome"]
    assert steps(flow, "menu")[2][1]["answer"] == "no"
    assert steps(flow, "menu")[3][1] == {"attempt": 1, "reason": "not confirmed"}
    again = [where for where, _ in caller.heard[-4:-1]]
    assert again == ["nodes.menu.options.0.confirm", "confirm.again", "nodes.menu.say"]
    assert caller.listens[-1].phrases == tuple(dict.fromkeys(["stop", *EN.stop_phrases]))  # keypad + stop


async def test_a_third_partys_yes_discloses_nothing_without_the_confirmation() -> None:
    # heard "yes" (the neighbour said something), then nothing at the confirmation, twice
    flow, caller, _ = await run(EN, ["heard:yes", "silence", "silence", "silence", "silence", "silence"])
    assert flow.result.right_party is None and flow.result.outcome is Outcome.NO_RESPONSE
    assert "details" not in flow.result.nodes
    assert not any("1,234" in text or "December" in text for _, text in caller.heard)
    confirm = [d for k, d in steps(flow, "confirm") if k == "confirm"]
    assert confirm == [{"option": "yes", "heard": "yes", "answer": "none"}]


@pytest.mark.parametrize("said", ["stop calling me", "don't call me", "stop"])
async def test_a_stop_request_opts_out_at_once_and_says_so(said: str) -> None:
    flow, caller, opted = await run(EN, [f"heard:{said}"])
    assert flow.result.outcome is Outcome.OPT_OUT
    assert opted == [len(caller.heard) - 1]  # stored before "You will not receive further calls" is spoken
    assert "will not receive further calls" in caller.heard[-1][1]
    assert steps(flow, "confirm")[-1] == ("outcome", {"outcome": "opt_out", "via": "voice"})
    assert not any(k == "confirm" for k, _ in steps(flow, "confirm"))


async def test_stop_during_a_confirmation_opts_out() -> None:
    flow, _, opted = await run(EN, ["key:1", "heard:dispute", "heard:stop calls"])
    assert flow.result.outcome is Outcome.OPT_OUT and len(opted) == 1
    assert steps(flow, "menu")[-2:] == [
        (
            "confirm",
            {
                "option": "dispute",
                "heard": "dispute",
                "answer": "stop",
                "by": "voice",
                "phrase": "stop calls",
            },
        ),
        ("outcome", {"outcome": "opt_out", "via": "voice"}),
    ]


async def test_every_menu_hears_the_stop_phrases_even_keypad_only() -> None:
    _, caller, _ = await run(EN, ["key:1", "heard:pay", "silence", "silence", "silence"])
    assert all(set(EN.stop_phrases) <= set(listened.phrases) for listened in caller.listens)


@pytest.mark.parametrize("why", ["speech worker died during recognize", "no speech model", "vad: bad audio"])
async def test_a_recogniser_failure_is_no_input_with_its_reason_then_keypad(why: str) -> None:
    flow, caller, _ = await run(EN, [f"error:{why}", "heard:yes", "key:1", "key:9"])
    assert steps(flow, "confirm")[0] == ("no_input", {"attempt": 1, "reason": why})
    assert caller.listens[1].phrases == ()  # voice off for the rest of the call: the "yes" is not taken
    assert flow.result.right_party is True and flow.result.outcome is Outcome.OPT_OUT
    assert [k for k, _ in steps(flow, "confirm")] == ["no_input", "speech", "no_match", "key"]


async def test_words_the_recogniser_refused_are_a_no_match_with_its_reason() -> None:
    flow, _, _ = await run(EN, ["refused:not a menu phrase", "key:1", "key:9"])
    assert steps(flow, "confirm")[1] == ("no_match", {"attempt": 1, "reason": "not a menu phrase"})
    assert flow.result.right_party is True


async def test_korean_confirmations_take_keys_only() -> None:
    # "네" at the confirmation is not taken (vosk-ko hears it in any speech); key 1 is
    flow, caller, _ = await run(KO, ["heard:네", "heard:네", "key:1"])
    assert flow.result.right_party is True and "details" in flow.result.nodes
    confirm_listens = [listened for listened in caller.listens if listened.after.endswith(".confirm")]
    assert confirm_listens and all(listened.phrases == () for listened in confirm_listens)


async def test_korean_stop_phrase_is_heard_in_every_menu() -> None:
    flow, _, opted = await run(KO, ["key:1", "heard:전화 중지"])
    assert flow.result.outcome is Outcome.OPT_OUT and opted


# ---------------------------------------------------------------- the script format and lint

BASE = (SCRIPTS / "reminder-en-US.yaml").read_text(encoding="utf-8")
PAY_CONFIRM = EN.nodes["menu"].options[0].confirm
UNCONFIRMED = "would take effect as heard: use voice: confirm or keys"


def line(text: str, fragment: str, after: str = "") -> int:
    """The line of the first `fragment` after the first `after` (the file may change around it)."""
    lines = text.splitlines()
    start = next(i for i, t in enumerate(lines) if after in t) if after else 0
    return next(i for i, t in enumerate(lines) if i >= start and fragment in t) + 1


def problems_of(text: str) -> list[str]:
    with pytest.raises(ScriptError) as caught:
        parse_script(text, Path("s.yaml"))
    return caught.value.problems


def test_a_confirming_menu_needs_each_spoken_options_question() -> None:
    text = BASE.replace(f'        confirm: "{PAY_CONFIRM}"\n', "")
    at = line(text, 'digit: "1"', "  menu:")
    assert problems_of(text) == [
        f"s.yaml:{at}: nodes.menu.options[0].confirm: a spoken answer here is confirmed first: "
        "give the question (confirm)"
    ]


def test_a_confirming_script_needs_its_confirmation_answers() -> None:
    block = BASE[BASE.index("confirm:\n  accept:") : BASE.index("nodes:\n")]
    found = problems_of(BASE.replace(block, ""))
    assert found == [
        f"s.yaml:{line(BASE, 'locale:')}: confirm: a menu confirms spoken answers: "
        "the script needs `confirm` (accept, reject, again)"
    ]
    same_key = BASE.replace('reject: {digit: "2"', 'reject: {digit: "1"')
    assert problems_of(same_key) == [
        f"s.yaml:{line(same_key, 'reject:')}: confirm.reject.digit: accept and reject both use key 1"
    ]


def test_the_default_is_confirm() -> None:
    text = BASE.replace("    voice: confirm\n", "")
    assert all(node.voice == "confirm" for node in parse_script(text, Path("s.yaml")).nodes.values())


def test_a_stop_phrase_cannot_mean_anything_else() -> None:
    text = BASE.replace('phrases: ["dispute"]', 'phrases: ["stop calling"]')
    at = line(text, '["stop calling"]', "  menu:")
    assert problems_of(text) == [
        f"s.yaml:{at}: nodes.menu.options[2].phrases: stop calling is a stop phrase: it can only mean opt-out"
    ]


def test_lint_refuses_unconfirmed_voice_where_it_matters(tmp_path: Path) -> None:
    text = BASE.replace("    voice: confirm\n", "    voice: direct\n")
    path = tmp_path / "direct.yaml"
    path.write_text(text, encoding="utf-8")
    confirm = f"{path}:{line(text, 'voice: direct', '  confirm:')}: nodes.confirm.voice"
    menu = f"{path}:{line(text, 'voice: direct', '  menu:')}: nodes.menu.voice"
    assert lint_file(path, "us-regf") == [
        f"{confirm}: 'yes' (confirms the right person) {UNCONFIRMED}",
        f"{confirm}: 'no' (wrong_number) {UNCONFIRMED}",
        f"{menu}: 'pay' (paid) {UNCONFIRMED}",
        f"{menu}: 'dispute' (dispute) {UNCONFIRMED}",
        f"{menu}: 'help' (hardship_callback) {UNCONFIRMED}",
    ]


def test_keys_only_menus_pass_lint() -> None:
    text = BASE.replace("    voice: confirm\n", "    voice: keys\n")
    script = parse_script(text, Path("s.yaml"))
    assert script.nodes["menu"].voice == "keys" and lint(script, "us-regf") == []


def test_lint_refuses_a_script_without_stop_phrases_and_a_voice_only_opt_out(tmp_path: Path) -> None:
    stop = '{digit: "9", phrases: ["stop"], outcome: opt_out, next: opted_out}'
    menu_at = BASE.index("  menu:")
    text = BASE[:menu_at] + BASE[menu_at:].replace(stop, stop.replace('digit: "9", ', ""), 1)
    text = text.replace("stop_phrases: [", "# stop_phrases: [")
    path = tmp_path / "nostop.yaml"
    path.write_text(text, encoding="utf-8")
    found = lint_file(path, "cn")
    options = line(text, "options:", "  menu:")
    assert found == [
        f"{path}:{options}: nodes.menu.options: the opt-out option needs a key (digit), not only words",
        f"{path}:{line(text, 'locale:')}: stop_phrases: no stop phrases: "
        "list how a borrower says 'stop calling me' (stop_phrases)",
    ]
    with pytest.raises(ScriptError, match="do not meet the cn requirements") as caught:
        require_compliant([path], "cn")  # what a campaign's start runs
    assert caught.value.problems[1:] == found


def test_shipped_scripts_ask_back_every_consequential_spoken_answer() -> None:
    for path in sorted(SCRIPTS.glob("*.yaml")):
        script = load_script(path)
        require_compliant([path], "us-regf")
        assert script.stop_phrases and script.confirm is not None, path
        for key, node in script.nodes.items():
            assert node.type != "menu" or node.voice in ("confirm", "keys"), (path, key)
    assert KO.confirm is not None and not KO.confirm.accept.phrases  # ko-KR: confirmed by key only


# ---------------------------------------------------------------- the FastAGI side: never a guess


class _Session:
    def __init__(self, digit: str | None = None) -> None:
        self.digit = digit

    async def record_file(
        self, path: str, fmt: str, keys: str, timeout_ms: int, silence: int
    ) -> RecordResult:
        return RecordResult("timeout", None, 16000)  # two seconds of something

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        return self.digit


class _Crashing:
    async def recognize(self, wav: Path, phrases: Sequence[str]) -> object:
        raise SpeechError("speech worker died during recognize; worker restarted")


def _agi_io(tmp_path: Path, recognizer: object | None, session: _Session) -> AgiIo:
    service = SimpleNamespace(recognizer_for=lambda script: recognizer, voice=lambda script: None)
    prepared = SimpleNamespace(script=EN, recordings=tmp_path / "replies")
    return AgiIo(service, session, prepared)  # type: ignore[arg-type]


async def test_a_recogniser_crash_is_a_reply_with_its_reason_not_an_answer(tmp_path: Path) -> None:
    reply = await _agi_io(tmp_path, _Crashing(), _Session()).listen("129", ["yes", "no"], 5)
    assert reply == Reply(error="speech worker died during recognize; worker restarted") and reply.empty


async def test_no_speech_model_is_said_where_the_script_listens(tmp_path: Path) -> None:
    assert await _agi_io(tmp_path, None, _Session()).listen("129", ["yes"], 5) == Reply(
        error="no speech model"
    )
    assert await _agi_io(tmp_path, None, _Session("1")).listen("129", ["yes"], 5) == Reply(digit="1")
    assert await _agi_io(tmp_path, None, _Session()).listen("129", [], 5) == Reply()  # keypad-only menu


def test_a_campaign_does_not_start_with_a_script_that_fails_lint(tmp_path: Path) -> None:
    from duecall.runtime import build_ivr
    from tests.support.config import make_settings

    direct = tmp_path / "reminder-direct.yaml"
    direct.write_text(BASE.replace("    voice: confirm\n", "    voice: direct\n"), encoding="utf-8")
    shipped = make_settings(tmp_path, ivr={"speech_model": ""}, policy={"pack": "us-ma"})
    assert build_ivr(shipped, None, SystemClock()).scripts  # type: ignore[arg-type]  # no store used
    settings = shipped.model_copy(update={"ivr": shipped.ivr.model_copy(update={"scripts": (direct,)})})
    with pytest.raises(ScriptError, match="do not meet the us-ma requirements") as caught:
        build_ivr(settings, None, SystemClock())  # type: ignore[arg-type]
    assert len(caught.value.problems) == 6 and all(str(direct) in p for p in caught.value.problems[1:])

"""Answering machines (issue 11 item 6): the pack says whether a message may be left, the script
holds the limited-content message (12 CFR 1006.2(j)), lint refuses one that speaks of the debt,
and a message left is a `machine` call flagged `voicemail-left`, counted as voicemail, no
conversation. The real call is tests/integration/test_voicemail.py."""

from __future__ import annotations

import sqlite3
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dialer.asterisk.ami import AmiEndpoint
from dialer.campaign.calls import DialReport, IvrReport, classify
from dialer.campaign.engine import VOICEMAIL_NODE, Dialer, _Tracked, _with_voicemail
from dialer.core.clock import FixedClock
from dialer.core.config import PACKS_DIR, load_settings, pack_names
from dialer.core.dialplan import Event, Stage
from dialer.core.errors import ConfigError, ScriptError
from dialer.core.flags import ended_flags
from dialer.core.models import (
    Account,
    Attempt,
    CallResult,
    Campaign,
    Decision,
    Disposition,
    IvrStep,
    PastAttempt,
    Reason,
)
from dialer.core.vocab import Flag, RuleId
from dialer.policy.gate import PackGate, contact_of
from dialer.policy.packs import load_pack, load_pack_file, load_voicemail_rule, voicemail_rule_file
from dialer.store import SqliteStore
from ivr.lint import lint, lint_file, policies
from ivr.script import load_script, parse_script
from ivr.service import voicemail_text
from ivr.spoken import spoken_digits
from tests.support.config import make_settings
from tests.support.project import PROJECT_ROOT
from tests.support.records import record

NOW = datetime(2026, 11, 30, 15, tzinfo=UTC)  # 10:00 in New York
SCRIPTS = sorted((PROJECT_ROOT / "ivr" / "scripts").glob("*.yaml"))
# A keypad-only script (no voice answers to confirm) with a limited-content message.
SCRIPT = """\
locale: en-US
lender: Acme
callback: "18005550100"
start: intro
listen: false
voicemail:
  agent: Jordan Lee
  say: "This is {agent} from {business}. Please call us back at {callback}."
nodes:
  intro:
    say: "Hello from {lender}. This call is recorded."
    next: confirm
  confirm:
    type: menu
    right_party: true
    say: "Are you {name}? Press 1 for yes, 2 for no, 9 to stop these calls."
    options:
      - {digit: "1", next: details}
      - {digit: "2", outcome: wrong_number, next: bye}
      - {digit: "9", outcome: opt_out, next: bye}
  details:
    say: "You owe {amount} by {due_date}. Call {callback}."
    next: bye
  bye:
    type: end
    say: "Goodbye."
"""
MESSAGE = "This is {agent} from {business}. Please call us back at {callback}."


# -- the pack's rule -----------------------------------------------------------------------------------


def test_every_pack_says_whether_a_message_may_be_left_and_cites_its_source() -> None:
    rules = {name: load_voicemail_rule(name) for name in pack_names()}
    assert {name: rule.allowed for name, rule in rules.items()} == {
        "cn": False,
        "cn-as-written": False,
        "us-ma": True,
        "us-regf": True,
    }
    assert "1006.2(j)" in rules["us-regf"].source and "1006.2(j)" in rules["us-ma"].source
    assert all(len(rule.source) > 20 for rule in rules.values())


def _pack_without_voicemail() -> str:
    text = (PACKS_DIR / "us-regf.yaml").read_text(encoding="utf-8")
    return text[: text.index("# On an answering machine")]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("", "voicemail: Field required"),  # every pack must say
        ("voicemail: {allowed: true}\n", "voicemail.source: Field required"),
        ("voicemail: {allowed: 'yes', source: 12 CFR 1006.2(j)}\n", "voicemail.allowed"),  # strict bool
        ("voicemail: true\n", "voicemail"),
        ("voicemail: {allowed: true, source: 12 CFR 1006.2(j), text: hi}\n", "voicemail.text: Extra"),
    ],
)
def test_a_bad_voicemail_rule_names_the_file_and_field(tmp_path: Path, rule: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(_pack_without_voicemail() + rule, encoding="utf-8")
    for load in (load_pack_file, voicemail_rule_file):
        with pytest.raises(ConfigError, match=r"bad\.yaml") as err:
            load(path)
        assert expected in str(err.value)


def test_an_unknown_pack_has_no_voicemail_rule() -> None:
    with pytest.raises(ConfigError, match=r"unknown policy pack .*\(known: cn, cn-as-written"):
        load_voicemail_rule("../../etc/passwd")


# -- the script's message --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_shipped_scripts_have_a_limited_content_message_that_lints_clean(path: Path) -> None:
    script = load_script(path)
    assert script.voicemail is not None
    text = voicemail_text(script)
    assert text is not None and script.voicemail.agent in text
    assert not {"{", "}"} & set(text)
    for policy in policies():
        assert [msg for loc, msg in lint(script, policy) if loc[0] == "voicemail"] == []


def test_the_message_is_filled_from_the_script_only() -> None:
    script = parse_script(SCRIPT, Path("s.yaml"))
    # The business defaults to the lender; the number is read out digit by digit.
    callback = spoken_digits("18005550100", "en-US")
    assert voicemail_text(script) == f"This is Jordan Lee from Acme. Please call us back at {callback}."
    without = SCRIPT.replace(SCRIPT[SCRIPT.index("voicemail:") : SCRIPT.index("nodes:")], "")
    assert voicemail_text(parse_script(without, Path("s.yaml"))) is None


def _load_problems(text: str) -> list[str]:
    with pytest.raises(ScriptError) as caught:
        parse_script(text, Path("s.yaml"))
    return caught.value.problems


@pytest.mark.parametrize(
    ("say", "field"),
    [
        ("Call {callback} about {amount}.", "amount"),
        ("Due {due_date}: call {callback}.", "due_date"),
        ("Hello {name}, call {callback}.", "name"),  # whoever plays the tape hears the name
        ("Call {callback}, {currency}.", "currency"),
        ("Call {callback} before {promised_date}.", "promised_date"),
        ("Call {callback}, {nope}.", "nope"),
    ],
)
def test_a_message_naming_the_account_or_the_debt_does_not_load(say: str, field: str) -> None:
    """Hostile script: the message is heard by anyone with the phone; it never names the account."""
    [problem] = _load_problems(SCRIPT.replace(MESSAGE, say))
    assert problem.startswith("s.yaml:8: voicemail.say: {" + field + "} in a voicemail message")
    assert "may use only {agent}, {business}, {callback}" in problem


def test_a_message_with_a_format_spec_or_no_agent_does_not_load() -> None:
    [spec] = _load_problems(SCRIPT.replace(MESSAGE, "Call {callback:>999999999}, {agent}, {business}."))
    assert "voicemail.say: {callback}: no format spec" in spec
    no_agent = _load_problems(SCRIPT.replace("  agent: Jordan Lee\n", ""))
    assert any("voicemail.agent" in p and "Field required" in p for p in no_agent)


def _lint(tmp_path: Path, text: str, policy: str = "us-regf") -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return [p.split(": ", 1)[1] for p in lint_file(path, policy) if ": voicemail." in p]


@pytest.mark.parametrize(
    ("say", "words"),
    [
        ("This is {agent} from {business} about your overdue payment. Call {callback}.", "payment, overdue"),
        ("{agent} of {business}: a DEBT matter. Call {callback}.", "debt"),
        ("This is {agent} from {business}, past due accounts. Call {callback}.", "past due, due"),
    ],
)
def test_lint_refuses_a_message_that_speaks_of_the_debt(tmp_path: Path, say: str, words: str) -> None:
    for policy in policies():
        assert _lint(tmp_path, SCRIPT.replace(MESSAGE, say), policy) == [
            f"voicemail.say: a voicemail message says nothing about the debt: it says {words}"
        ]


def test_lint_reads_the_business_name_too(tmp_path: Path) -> None:
    """A business name that says "collections" tells whoever hears the tape what the call is about."""
    text = SCRIPT.replace("  agent: Jordan Lee\n", "  agent: Jordan Lee\n  business: Acme Collections\n")
    assert _lint(tmp_path, text) == [
        "voicemail.say: a voicemail message says nothing about the debt: it says collections"
    ]


def test_lint_refuses_chinese_and_korean_debt_words(tmp_path: Path) -> None:
    zh = (
        SCRIPT.replace("locale: en-US", "locale: zh-CN")
        .replace(MESSAGE, "您好，我是{business}的{agent}，关于您的欠款，请回电{callback}。")
        .replace("Goodbye.", "再见。")
    )
    assert _lint(tmp_path, zh, "cn") == [
        "voicemail.say: a voicemail message says nothing about the debt: it says 欠款"
    ]
    ko = SCRIPT.replace("locale: en-US", "locale: ko-KR").replace(
        MESSAGE, "{business}의 {agent}입니다. 연체 건으로 {callback}번으로 전화 주세요."
    )
    assert _lint(tmp_path, ko) == [
        "voicemail.say: a voicemail message says nothing about the debt: it says 연체"
    ]


def test_lint_refuses_a_message_without_the_callback_the_business_or_a_person(tmp_path: Path) -> None:
    text = SCRIPT.replace(MESSAGE, "Hello, please call us back.")
    assert _lint(tmp_path, text) == [
        "voicemail.say: a voicemail message must give the business name ({business}) (12 CFR 1006.2(j))",
        "voicemail.say: a voicemail message must give a person to ask for ({agent}) (12 CFR 1006.2(j))",
        "voicemail.say: a voicemail message must give the callback number ({callback}) (12 CFR 1006.2(j))",
    ]


def test_lint_of_a_long_message_is_bounded(tmp_path: Path) -> None:
    """A 200 KB message of near-words (the script limit is 256 KiB): linted in well under a second."""
    long = "This is {agent} from {business}. " + "paym dueling overdu " * 10_000 + "Call {callback}."
    text = SCRIPT.replace(MESSAGE, long)
    started = time.monotonic()
    assert _lint(tmp_path, text) == []
    elapsed = time.monotonic() - started  # about 0.5 s: the 200 KB script is read twice (load, lint)
    tracemalloc.start()
    try:
        _lint(tmp_path, text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 2.5 and peak < 64 * 1024 * 1024, (elapsed, peak)


# -- the dialer: which calls get a message, how it is stored -----------------------------------------


def account() -> Account:
    return Account(
        1,
        "A1",
        "D1",
        "Test",
        "+12025550101",
        ("America/New_York",),
        False,
        100,
        "USD",
        date(2026, 12, 1),
        "en-US",
    )


class Prompts:
    """Stands in for the IVR service at the project's own boundary (rendering is tested in test_tts)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.asked = 0

    async def render_voicemail(self, account: Account, script: str | None = None) -> Any:
        self.asked += 1
        if self.fail:
            raise ValueError("espeak-ng is missing")
        return _Message()


class _Message:
    script = "reminder-en-US"
    text = "This is Jordan Lee from Acme Lending. Please call us back at 1 8 0 0."
    playback = "/prompts/abc"


def dialer(tmp_path: Path, pack: str, amd: bool = True, ivr: Any = None) -> Dialer:
    settings = make_settings(tmp_path, policy={"pack": pack}, dialer={"amd": amd})
    store: Any = None  # never reached: only the message is asked for
    campaign = Campaign(1, "c", NOW)
    return Dialer(
        settings,
        store,
        campaign,
        PackGate(load_pack(pack)),
        FixedClock(NOW),
        AmiEndpoint("127.0.0.1", 9, "x"),
        ivr=ivr,
    )


async def test_the_message_is_prepared_only_where_the_pack_allows_one(tmp_path: Path) -> None:
    target: Any = type("T", (), {"account": account()})()
    prompts = Prompts()
    message, why = await dialer(tmp_path, "us-regf", ivr=prompts)._render_voicemail(target, None)
    assert message is not None and message.playback == "/prompts/abc" and why == ""
    for pack in ("cn", "cn-as-written"):
        message, why = await dialer(tmp_path, pack, ivr=prompts)._render_voicemail(target, None)
        assert message is None and why.startswith(f"no message left: pack {pack} forbids it [source: NIFA")
    assert prompts.asked == 1  # never rendered where it may not be left
    # No AMD: no machine is ever told apart. No IVR: no script, so no message (the note says so).
    no_amd = dialer(tmp_path, "us-regf", amd=False, ivr=prompts)
    assert await no_amd._render_voicemail(target, None) == (None, "")
    assert await dialer(tmp_path, "us-regf")._render_voicemail(target, None) == (
        None,
        "no message left: the IVR is off (no script, no message)",
    )
    # A render that fails costs the call nothing: no message, the reason in the note.
    message, why = await dialer(tmp_path, "us-regf", ivr=Prompts(fail=True))._render_voicemail(target, None)
    assert message is None and why == "no message left: it could not be rendered (espeak-ng is missing)"


def attempt() -> Attempt:
    return Attempt(7, 1, 1, "+12025550101", 1, NOW, "/rec/7", "A1")


def machine_result(stage: str) -> CallResult:
    ended = NOW + timedelta(seconds=20)
    events = ((ended, Event.IVR, {"Stage": stage, "Amd": "MACHINE"}),)
    return CallResult(Disposition.MACHINE, ended, NOW, "ANSWER", "16", stage, "MACHINE", events=events)


def tracked(message: Any, why: str = "") -> _Tracked:
    from dialer.campaign.calls import Call

    t = _Tracked(Call(attempt(), "db-7"))
    t.voicemail, t.no_voicemail = message, why
    return t


def test_a_message_left_is_the_calls_one_step_and_sets_the_flag() -> None:
    left = _with_voicemail(tracked(_Message()), machine_result(Stage.VOICEMAIL))
    assert left.ivr is not None and left.ivr.outcome == "" and left.ivr.script == "reminder-en-US"
    assert left.ivr.steps == (IvrStep(left.ended_at, VOICEMAIL_NODE, "prompt", {"text": _Message.text}),)
    assert ended_flags(left) == [Flag.VOICEMAIL_LEFT]
    assert left.disposition is Disposition.MACHINE


def test_a_machine_without_a_message_keeps_its_flags_and_says_why() -> None:
    forbidden = _with_voicemail(
        tracked(None, "no message left: pack cn forbids it"), machine_result(Stage.MACHINE)
    )
    assert forbidden.ivr is None and ended_flags(forbidden) == []
    assert forbidden.note == "no message left: pack cn forbids it"
    # The machine hung up during the message (stage stays `machine`): not left, no flag.
    cut_short = _with_voicemail(tracked(_Message()), machine_result(Stage.MACHINE))
    assert cut_short.ivr is None and ended_flags(cut_short) == [] and "machine hung up" in cut_short.note
    # Left by a call a run before a restart placed (adopted): flagged, and the note says the text is gone.
    adopted = _with_voicemail(tracked(None), machine_result(Stage.VOICEMAIL))
    assert ended_flags(adopted) == [Flag.VOICEMAIL_LEFT] and "its text was not kept" in adopted.note
    # A person's call is untouched.
    answered = CallResult(Disposition.ANSWERED, NOW, ivr_stage=Stage.DONE)
    assert _with_voicemail(tracked(_Message()), answered) == answered


def test_the_voicemail_stage_is_a_machine_whatever_amd_said() -> None:
    dial = DialReport("ANSWER", "16")
    assert (
        classify(dial, IvrReport(Stage.VOICEMAIL, "MACHINE", "LONGGREETING-1500-1500", ""), "")
        is Disposition.MACHINE
    )
    assert classify(dial, IvrReport(Stage.VOICEMAIL, "", "", ""), "") is Disposition.MACHINE
    # Only a machine call with the stage is flagged (a stage value alone on another disposition is not).
    assert ended_flags(CallResult(Disposition.CUT, NOW, ivr_stage=Stage.VOICEMAIL)) == []


async def test_a_message_left_is_stored_in_the_trail_and_counted_as_voicemail(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "d.db")
    try:
        await store.upsert_accounts([record("A1")], NOW)
        campaign = await store.create_campaign("c", NOW)
        await store.add_targets(campaign.id, NOW)
        [target] = await store.due_targets(campaign.id, NOW, 10)
        claimed = await store.claim(
            target,
            NOW,
            lambda *a: Decision(True, (Reason(RuleId.WINDOW, "inside"),)),
            lambda i, at: str(tmp_path / str(i)),
            "test",
            NOW - timedelta(days=7),
        )
        assert isinstance(claimed, Attempt)
        result = _with_voicemail(tracked(_Message()), machine_result(Stage.VOICEMAIL))
        update = _retry_update(result)
        await store.finish_attempt(claimed, result, update)
        [row] = await store.attempts_for(campaign.id)
    finally:
        await store.close()
    assert (row["disposition"], row["ivr_stage"], row["outcome"]) == ("machine", "voicemail", None)
    with sqlite3.connect(tmp_path / "d.db") as conn:
        kinds = [
            k
            for (k,) in conn.execute(
                "SELECT kind FROM audit_events WHERE attempt_id=? ORDER BY seq", (claimed.id,)
            )
        ]
        prompt = conn.execute("SELECT data FROM audit_events WHERE kind='ivr.prompt'").fetchone()[0]
        flags = [
            f for (f,) in conn.execute("SELECT flag FROM attempt_flags WHERE attempt_id=?", (claimed.id,))
        ]
    assert "ivr.prompt" in kinds and "call.outcome" not in kinds and kinds[-1] == "call.ended"
    assert '"node":"voicemail"' in prompt and "Jordan Lee" in prompt
    assert "voicemail-left" in flags
    # The policy engine counts it as voicemail (7-in-7 counts it), and it is no conversation.
    contact = contact_of(PastAttempt(claimed.id, NOW, campaign.id, Disposition.MACHINE, "D-A1", "16", ""))
    assert (contact.outcome, contact.conversation) == ("voicemail", False)


def _retry_update(result: CallResult) -> Any:
    from dialer.campaign.retry import after_attempt

    return after_attempt(result.disposition, 1, load_settings().retry, result.ended_at)

"""IVR script loading, validation errors with lines, and policy lint."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.lint import lint, lint_file, policies
from ivr.script import Outcome, ScriptError, load_script, parse_script

SCRIPTS = sorted((Path(__file__).parents[1] / "ivr" / "scripts").glob("*.yaml"))
MINIMAL = """\
locale: en-US
lender: Acme
callback: "18005550100"
start: intro
nodes:
  intro:
    say: "Hello from {lender}. This call is recorded."
    next: confirm
  confirm:
    type: menu
    right_party: true
    say: "Are you {name}?"
    options:
      - {digit: "1", phrases: ["yes"], next: details}
      - {digit: "2", outcome: wrong_number, next: bye}
      - {digit: "9", outcome: opt_out, next: bye}
  details:
    say: "You owe {amount} by {due_date}. Call {callback}."
    next: bye
  bye:
    type: end
    say: "Goodbye."
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ScriptError) as caught:
        parse_script(text, Path("s.yaml"))
    return caught.value.problems


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_shipped_scripts_load_and_pass_every_policy(path: Path) -> None:
    script = load_script(path)
    assert script.nodes[script.start].type == "message"
    for policy in policies():
        assert lint(script, policy) == [], policy


def test_shipped_scripts_cover_the_standard_reminder() -> None:
    assert {p.stem for p in SCRIPTS} == {"reminder-en-US", "reminder-zh-CN", "reminder-ko-KR"}
    for path in SCRIPTS:
        script = load_script(path)
        outcomes = {o.outcome for n in script.nodes.values() for o in n.options} | {
            n.outcome for n in script.nodes.values()
        }
        assert {
            Outcome.WRONG_NUMBER,
            Outcome.OPT_OUT,
            Outcome.DISPUTE,
            Outcome.HARDSHIP_CALLBACK,
            Outcome.PROMISE_TO_PAY,
            Outcome.PAID,
        } <= outcomes


def test_minimal_script_is_valid() -> None:
    script = parse_script(MINIMAL, Path("s.yaml"))
    assert script.menu_digits("confirm") == "129"


def test_errors_name_file_line_and_field() -> None:
    text = MINIMAL.replace("{name}", "{nmae}").replace("next: details", "next: detials")
    assert problems(text) == [
        "s.yaml:12: nodes.confirm.say: unknown field {nmae}; known: amount, callback, currency, "
        "due_date, lender, name, promised_date",
        "s.yaml:14: nodes.confirm.options[0].next: no node named 'detials'",
    ]


def test_schema_errors_name_line_and_field() -> None:
    text = MINIMAL.replace('{digit: "2"', '{digit: "22"').replace("type: end", "type: finish")
    found = problems(text)
    assert found[0].startswith("s.yaml:15: nodes.confirm.options[1].digit: String should match")
    assert found[1].startswith("s.yaml:21: nodes.bye.type: Input should be")


def test_duplicate_digits_and_missing_targets() -> None:
    text = MINIMAL.replace('{digit: "9"', '{digit: "1"').replace("start: intro", "start: begin")
    assert problems(text) == [
        "s.yaml:4: start: no node named 'begin'",
        "s.yaml:16: nodes.confirm.options[2].digit: digit 1 is already option 0",
    ]


def test_unquoted_yes_gets_a_hint() -> None:
    found = problems(MINIMAL.replace('["yes"]', "[yes]"))
    assert found == [
        "s.yaml:14: nodes.confirm.options[0].phrases[0]: Input should be a valid string "
        "(YAML read a yes/no word as true/false: put it in quotes)"
    ]


def test_bad_yaml_names_the_line() -> None:
    assert problems("locale: en-US\nnodes: [\n")[0].startswith("s.yaml:3: not valid YAML")


def test_lint_finds_every_missing_element(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace("Hello from {lender}. This call is recorded.", "Hello.")
        .replace('      - {digit: "9", outcome: opt_out, next: bye}\n', "")
        .replace(" Call {callback}.", "")
        .replace("Goodbye.", "You owe {amount}.")
    )
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    assert lint_file(path, "us-regf") == [
        f"{path}:7: nodes.intro.say: the first prompt must name the lender ({{lender}})",
        f"{path}:7: nodes.intro.say: no recorded-call notice before the first question (recorded, recording)",
        f"{path}:5: nodes: no prompt gives the callback number ({{callback}})",
        f"{path}:13: nodes.confirm.options: no opt-out option (outcome: opt_out)",
        f"{path}:21: nodes.bye.say: speaks amount where the right person may not be confirmed",
    ]


def test_lint_unknown_policy_is_an_error() -> None:
    from dialer.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown policy 'eu'"):
        lint(parse_script(MINIMAL, Path("s.yaml")), "eu")

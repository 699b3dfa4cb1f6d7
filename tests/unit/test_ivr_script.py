"""IVR script loading, validation errors with lines, and policy lint."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dialer.core.config import pack_names
from dialer.core.vocab import Outcome
from ivr.lint import lint, lint_file, policies
from ivr.script import ScriptError, load_script, parse_script

SCRIPTS = sorted((Path(__file__).parents[2] / "ivr" / "scripts").glob("*.yaml"))
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
      - {digit: "1", phrases: ["yes"], next: details, confirm: "You said yes. Press 1 to confirm."}
      - {digit: "2", outcome: wrong_number, next: bye}
      - {digit: "9", outcome: opt_out, next: bye}
  details:
    say: "You owe {amount} by {due_date}. Call {callback}."
    next: bye
  bye:
    type: end
    say: "Goodbye."
stop_phrases: ["stop"]
confirm:
  accept: {digit: "1", phrases: ["correct"]}
  reject: {digit: "2", phrases: ["wrong"]}
  again: "Please use your keypad."
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
        "s.yaml:16: nodes.confirm.options[2].digit: the opt-out key is also a confirmation answer "
        "(confirm.accept/reject)",
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
    from dialer.core.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown policy 'eu'"):
        lint(parse_script(MINIMAL, Path("s.yaml")), "eu")


# ---------------------------------------------------------------- hostile scripts (issue 9, item 7)

MEMORY_CAP = 256 * 1024 * 1024  # address space for the whole `duecall ivr validate` process
VALIDATE = """\
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
sys.argv = ["duecall", "ivr", "validate", *sys.argv[1:]]
from duecall.cli import main
main()
"""


def validate_capped(path: Path) -> tuple[int, str, float]:
    """`duecall ivr validate path` in a child capped at MEMORY_CAP: (exit code, output, seconds)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", VALIDATE.format(cap=MEMORY_CAP), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def laughs(levels: int) -> str:
    """A "billion laughs" file: each anchor holds nine aliases of the one before (9**levels)."""
    names = "abcdefghij"
    lines = [f"a: &a [{','.join('x' * 9)}]"]
    for before, name in itertools.pairwise(names[:levels]):
        lines.append(f"{name}: &{name} [{','.join([f'*{before}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_in_bounded_memory_and_time(tmp_path: Path) -> None:
    """236 bytes that took 1.14 GB and 3.4 s (the issue: 272 bytes, 1.1 GB, 5.8 s)."""
    path = tmp_path / "laughs.yaml"
    path.write_text(laughs(7), encoding="utf-8")
    assert path.stat().st_size < 300
    code, out, seconds = validate_capped(path)
    assert code == 1
    assert f"{path}:1: anchors and aliases (&name, *name) are not allowed in a script" in out
    assert "Traceback" not in out and "MemoryError" not in out
    assert seconds < 3


def test_an_alias_inside_a_valid_script_is_refused() -> None:
    text = MINIMAL.replace("lender: Acme", "lender: &who Acme").replace(
        'callback: "18005550100"', "callback: *who"
    )
    assert problems(text) == ["s.yaml:2: anchors and aliases (&name, *name) are not allowed in a script"]


def test_self_referencing_alias_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "selfref.yaml"
    path.write_text("locale: en-US\nlender: &x [*x]\n", encoding="utf-8")
    code, out, _ = validate_capped(path)
    assert code == 1
    assert out.strip() == f"{path}:2: anchors and aliases (&name, *name) are not allowed in a script"


@pytest.mark.parametrize(
    "text",
    [
        "locale: " + "[" * 100_000 + "]" * 100_000 + "\n",  # flow style
        "".join(f"{' ' * i}k{i}:\n" for i in range(700)) + " " * 700 + "x: 1\n",  # block style
    ],
    ids=["flow", "block"],
)
def test_deep_nesting_is_a_clear_error(tmp_path: Path, text: str) -> None:
    """Was: RecursionError traceback (0.8 s)."""
    path = tmp_path / "deep.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, seconds = validate_capped(path)
    assert code == 1
    assert "nested more than 16 levels deep" in out and out.startswith(f"{path}:")
    assert "Traceback" not in out and "RecursionError" not in out
    assert seconds < 5


def test_oversized_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w", encoding="utf-8") as file:
        file.write(MINIMAL)
        file.write("# " + "x" * (300 * 1024 * 1024) + "\n")  # 300 MB: more than the cap itself
    code, out, _ = validate_capped(path)
    assert code == 1
    assert out.strip() == f"{path}: larger than 256 KiB: not a reminder script"


def test_huge_integer_is_a_clear_error() -> None:
    found = problems(MINIMAL + "rate: 1" + "0" * 5000 + "\n")
    assert len(found) == 1 and found[0].startswith("s.yaml: not a value a script can hold:")


@pytest.mark.parametrize(
    ("template", "written"),
    [
        ("{lender:d}", "{lender:d}"),  # validated, then failed on every render
        ("{lender:>999999999}", "{lender:>999999999}"),  # MemoryError (987 MB) on render
        ("{name!r}", "{name!r}"),
        ("{name:{lender}}", "{name:{lender}}"),
    ],
)
def test_format_specs_are_refused_at_validate_time(template: str, written: str) -> None:
    text = MINIMAL.replace("Hello from {lender}.", f"Hello from {template}.")
    assert problems(text) == [
        f"s.yaml:7: nodes.intro.say: {written}: no format spec or conversion allowed; "
        f"write {{{template[1:].split(':')[0].split('!')[0]}}}"
    ]


def test_validate_names_file_line_and_field_of_a_format_spec(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(MINIMAL.replace("Goodbye.", "Goodbye from {lender:>999999999}."), encoding="utf-8")
    code, out, seconds = validate_capped(path)
    assert code == 1
    assert " ".join(out.split()) == (  # (the console wraps long lines)
        f"{path}:22: nodes.bye.say: {{lender:>999999999}}: no format spec or conversion allowed; "
        "write {lender}"
    )
    assert seconds < 3


def test_every_policy_pack_has_script_lint_rules() -> None:
    # `duecall ivr lint --policy P` must know every pack the dialer can run under.
    assert set(pack_names()) <= set(policies())

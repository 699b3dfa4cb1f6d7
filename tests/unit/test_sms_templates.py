"""SMS templates (issue 12, item 1): validation naming file, line and field; hostile YAML; the
segment count; lint per policy; rendering with the locale's amounts and dates."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.core.errors import TemplateError
from dialer.core.models import Account
from duecall.cli import main
from sms.encoding import Coding, encoded
from sms.lint import lint
from sms.templates import account_fields, load_located, load_templates, render
from tests.support.project import PROJECT_ROOT

SHIPPED = sorted((PROJECT_ROOT / "sms" / "templates").glob("*.yaml"))
GOOD = """\
locale: en-US
lender: Acme Lending
callback: "1-800-555-0100"
messages:
  due_today:
    text: "{lender}: {name}, {amount} is due {due_date}. Reply STOP to opt out."
  opt_out_confirmation:
    text: "{lender}: no more texts."
"""


def problems(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError) as caught:
        load_templates(path)
    return caught.value.problems


def test_the_shipped_templates_load_and_meet_their_policies() -> None:
    assert [p.stem for p in SHIPPED] == ["reminder-en-US", "reminder-ko-KR", "reminder-zh-CN"]
    for path in SHIPPED:
        templates, where = load_located(path)
        policy = "cn" if templates.locale == "zh-CN" else "us-regf"
        assert lint(templates, where, policy) == [], path


def test_an_unknown_field_names_file_line_and_field(tmp_path: Path) -> None:
    bad = GOOD.replace("{amount} is due", "{amonut} is due")
    [problem] = problems(bad, tmp_path)
    assert problem.startswith(f"{tmp_path / 't.yaml'}:6: messages.due_today.text: unknown field {{amonut}}")


def test_format_specs_a_missing_confirmation_and_a_bad_reply_are_refused(tmp_path: Path) -> None:
    bad = GOOD.replace("{name},", "{name:>999999999},").replace("  opt_out_confirmation:", "  bye:")
    bad += '    replies: {"1": opt_out}\n'
    found = problems(bad, tmp_path)
    assert any("no format specs" in p and ":6:" in p for p in found), found
    assert any("no opt_out_confirmation message" in p for p in found), found
    assert any("messages.bye.replies.1" in p and "opt_out cannot come from a text" in p for p in found), found


def test_a_yes_no_word_gets_its_hint(tmp_path: Path) -> None:
    [problem] = problems(GOOD.replace('text: "{lender}: no more texts."', "text: yes"), tmp_path)
    assert ":8: messages.opt_out_confirmation.text:" in problem and "put it in quotes" in problem


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: &x [1]\nb: *x\n", "anchors and aliases"),  # a billion-laughs file starts like this
        ("a: " + "[" * 40 + "]" * 40 + "\n", "nested more than 16 levels"),
        ("a: [1\n", "not valid YAML"),
        ("- just\n- a list\n", "a template file maps locale"),
    ],
)
def test_hostile_yaml_is_one_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    [problem] = problems(text, tmp_path)
    assert problem.startswith(str(tmp_path / "t.yaml")) and expected in problem


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(2 << 30)  # 2 GiB, sparse: reading it all would take the memory
    with pytest.raises(TemplateError, match="larger than 64 KiB"):
        load_templates(path)


@pytest.mark.parametrize(
    ("text", "coding", "units", "segments"),
    [
        ("a" * 160, Coding.GSM7, 160, 1),
        ("a" * 161, Coding.GSM7, 161, 2),
        ("€" * 80, Coding.GSM7, 160, 1),  # an extension character takes two septets
        ("a" * 152 + "{" + "a" * 10, Coding.GSM7, 164, 2),  # the escape pair stays whole
        ("a" * 307, Coding.GSM7, 307, 3),
        ("你" * 70, Coding.UCS2, 70, 1),
        ("你" * 71, Coding.UCS2, 71, 2),
        ("é" * 10 + "你", Coding.UCS2, 11, 1),
        ("😀" * 35, Coding.UCS2, 70, 1),  # outside the BMP: two UTF-16 units each
        ("😀" * 34 + "a", Coding.UCS2, 69, 1),
    ],
)
def test_coding_and_segments(text: str, coding: Coding, units: int, segments: int) -> None:
    found = encoded(text)
    assert (found.coding, found.units, found.segments) == (coding, units, segments)


def test_lint_names_what_a_policy_misses(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        GOOD.replace(". Reply STOP to opt out.", ". Pay now or we call your employer and the police."),
        encoding="utf-8",
    )
    templates, where = load_located(path)
    us = lint(templates, where, "us-regf")
    assert any(":6: messages.due_today.text: no opt-out notice" in p for p in us), us
    assert any("threatening words: 'police'" in p for p in us), us
    assert any("brings in other people: 'your employer'" in p for p in us), us
    cn = lint(templates, where, "cn")
    assert sum("starts with the sender's signature 【Acme Lending】" in p for p in cn) == 2, cn


def test_render_writes_the_locales_amount_and_date() -> None:
    templates = load_templates(PROJECT_ROOT / "sms" / "templates" / "reminder-zh-CN.yaml")
    account = Account(
        1, "A1", "D1", "李雷", "+8613912345678", (), False, 123450, "CNY", date(2026, 12, 1), "zh-CN"
    )
    done = render(templates, "due_today", account_fields(templates, account))
    assert done.text.startswith("【安信贷】李雷您好，您的借款¥1,234.50今日到期")
    assert done.encoding.coding is Coding.UCS2
    with pytest.raises(TemplateError, match="promise_confirm needs promised_date"):
        render(templates, "promise_confirm", account_fields(templates, account))


def test_the_commands_validate_lint_and_render(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["sms", "validate", *map(str, SHIPPED)])
    assert ok.exit_code == 0 and ok.output.count(": ok (") == 3, ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("{amount}", "{amonut}"), encoding="utf-8")
    failed = runner.invoke(main, ["sms", "validate", str(bad)])
    assert failed.exit_code == 1 and "unknown field {amonut}" in failed.output
    lint_cn = runner.invoke(main, ["sms", "lint", str(SHIPPED[0]), "--policy", "cn"])
    assert lint_cn.exit_code == 1 and "sender's signature" in lint_cn.output
    shown = runner.invoke(main, ["sms", "render", str(SHIPPED[2]), "--message", "before_due"])
    assert shown.exit_code == 0 and "ucs-2" in shown.output and "2 segments" in shown.output, shown.output

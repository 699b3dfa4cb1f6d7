"""A paid account is never asked for money (issue 13 item 2): the IVR asks the balance once, before
the first node that speaks of money, and fails safe when it cannot know. Also: scripts by name.

The caller here stands at the flow's own boundary (the `Io` protocol), as in test_ivr_flow.py; the
same call through the dialer and the real Asterisk is tests/integration/test_ivr_paid.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from dialer.core.clock import FixedClock
from dialer.core.errors import ScriptError
from dialer.core.models import Account
from dialer.core.vocab import Outcome
from ivr.flow import IvrRun, Reply
from ivr.script import load_script, parse_script
from ivr.service import IvrService, account_fields, by_name
from tests.support.agi_peer import SECRET_SCRIPT, CannedPrompts
from tests.support.project import PROJECT_ROOT

SCRIPTS = PROJECT_ROOT / "ivr" / "scripts"
EN = load_script(SCRIPTS / "reminder-en-US.yaml")
NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
ACCOUNT = Account(
    1, "A1", "D1", "Olivia Smith", "+12025550101", (), False, 123450, "USD", date(2026, 12, 1), "en-US"
)
FIELDS = account_fields(EN, ACCOUNT)
PAID_TEXT = "Our records show this account is paid in full. Thank you, and goodbye."


class Caller:
    """Presses 1 after the right-party question, then 1 (pay today) in the menu if it comes."""

    def __init__(self) -> None:
        self.heard: list[str] = []

    async def play(self, where: str, text: str, keys: str) -> str | None:
        self.heard.append(text)
        return None

    async def listen(self, keys: str, phrases: Sequence[str], timeout: float) -> Reply:
        return Reply(digit="1")

    async def read_digits(self, count: int, timeout: float) -> str:
        return ""


def balance(value: int | None = None, *, fail: bool = False, delay: float = 0.0):  # type: ignore[no-untyped-def]
    calls: list[int] = []

    async def balance_of() -> int | None:
        calls.append(1)
        await asyncio.sleep(delay)
        if fail:
            raise OSError("database is locked")
        return value

    balance_of.calls = calls  # type: ignore[attr-defined]
    return balance_of


async def call(balance_of, timeout: float = 2.0) -> tuple[IvrRun, Caller]:  # type: ignore[no-untyped-def]
    caller = Caller()
    flow = IvrRun(EN, FIELDS, caller, lambda: NOW, balance_of=balance_of, balance_timeout=timeout)
    await flow.run()
    return flow, caller


def says_money(caller: Caller) -> list[str]:
    """What the borrower heard of the amount, the due date or the menu (asking for money)."""
    menu = EN.nodes["menu"].say
    return [h for h in caller.heard if "1,234" in h or "December" in h or h == menu]


async def test_paid_in_full_is_said_instead_of_the_amount() -> None:
    check = balance(0)
    flow, caller = await call(check)
    r = flow.result
    assert check.calls == [1]  # asked once
    assert caller.heard[-1] == PAID_TEXT and says_money(caller) == []
    assert r.outcome is Outcome.ALREADY_PAID and r.right_party is True
    assert r.nodes == ["intro", "confirm"]
    assert [(s.node, s.kind) for s in r.steps][-2:] == [
        ("paid_in_full", "prompt"),
        ("paid_in_full", "outcome"),
    ]
    assert r.steps[-1].detail == {"outcome": "already_paid", "via": "balance"}


async def test_an_overpaid_account_is_paid_in_full_too() -> None:
    flow, caller = await call(balance(-500))
    assert flow.result.outcome is Outcome.ALREADY_PAID and says_money(caller) == []


async def test_a_balance_still_owed_hears_the_reminder_as_before() -> None:
    check = balance(100)
    flow, caller = await call(check)
    assert check.calls == [1]  # once, not again before the menu
    assert flow.result.nodes == ["intro", "confirm", "details", "menu", "pay_today"]
    assert flow.result.outcome is Outcome.PAID
    assert any("1,234 dollars and 50 cents" in h for h in caller.heard) and PAID_TEXT not in caller.heard


async def test_a_failing_check_fails_safe_without_the_amount(caplog: pytest.LogCaptureFixture) -> None:
    flow, caller = await call(balance(fail=True))
    r = flow.result
    close = EN.nodes["acknowledged"].say.format(**FIELDS)  # the close after the menu: the callback number
    assert caller.heard[-1] == close and says_money(caller) == [] and PAID_TEXT not in caller.heard
    assert r.outcome is Outcome.NO_RESPONSE and r.nodes == ["intro", "confirm", "acknowledged"]
    assert r.steps[-1].detail == {"outcome": "no_response", "via": "balance-unknown"}
    assert "balance check failed" in caplog.text and "database is locked" in caplog.text


async def test_an_unknown_balance_fails_safe() -> None:
    flow, caller = await call(balance(None))
    assert flow.result.outcome is Outcome.NO_RESPONSE and says_money(caller) == []


async def test_a_slow_check_is_cut_at_its_timeout(caplog: pytest.LogCaptureFixture) -> None:
    started = time.monotonic()
    flow, caller = await call(balance(100, delay=30), timeout=0.2)
    elapsed = time.monotonic() - started
    assert elapsed < 2, elapsed  # bounded by the timeout, not the 30 s lookup
    assert flow.result.outcome is Outcome.NO_RESPONSE and says_money(caller) == []
    assert "no answer within 0.2 s" in caplog.text


async def test_no_check_is_made_when_the_right_person_is_not_confirmed() -> None:
    class Wrong(Caller):
        async def listen(self, keys: str, phrases: Sequence[str], timeout: float) -> Reply:
            return Reply(digit="2")

    check = balance(0)
    flow = IvrRun(EN, FIELDS, Wrong(), lambda: NOW, balance_of=check)
    await flow.run()
    assert flow.result.outcome is Outcome.WRONG_NUMBER and check.calls == []


async def test_without_balance_of_the_flow_is_unchanged() -> None:
    flow = IvrRun(EN, FIELDS, Caller(), lambda: NOW)
    await flow.run()
    assert flow.result.nodes == ["intro", "confirm", "details", "menu", "pay_today"]


@pytest.mark.parametrize("locale", ["en-US", "ko-KR", "zh-CN"])
def test_every_shipped_script_has_its_paid_text_and_a_close(locale: str) -> None:
    script = load_script(SCRIPTS / f"reminder-{locale}.yaml")
    assert script.paid_in_full and "{" not in script.paid_in_full
    assert script.speaks_of_money("details") and not script.speaks_of_money("confirm")
    assert script.closing_after("details") == "acknowledged"


# -- the script field ------------------------------------------------------------------------------


def test_a_paid_text_that_names_the_debt_is_refused(work_dir: Path) -> None:
    text = SECRET_SCRIPT.replace("nodes:", 'paid_in_full: "Paid: {amount}, due {due_date}."\nnodes:')
    with pytest.raises(ScriptError) as err:
        parse_script(text, work_dir / "leaky.yaml")
    assert len(err.value.problems) == 2
    assert all(p.startswith(f"{work_dir / 'leaky.yaml'}:6: paid_in_full: {{") for p in err.value.problems)
    assert "{amount}: a paid account hears nothing of the debt" in str(err.value)


def test_already_paid_is_never_a_menu_choice(work_dir: Path) -> None:
    text = SECRET_SCRIPT.replace("outcome: acknowledged", "outcome: already_paid")
    with pytest.raises(
        ScriptError, match=r"choice.yaml:\d+: nodes.confirm.options\[0\].outcome: already_paid"
    ):
        parse_script(text, work_dir / "choice.yaml")


# -- scripts by name -------------------------------------------------------------------------------


async def no_opt_out(account: Account, attempt_id: int) -> None:
    return None


def service(work_dir: Path, balance_of=None) -> IvrService:  # type: ignore[no-untyped-def]
    paths = [SCRIPTS / "reminder-en-US.yaml", SCRIPTS / "reminder-ko-KR.yaml"]
    return IvrService.load(
        paths,
        "en-US",
        CannedPrompts(work_dir / "prompt.wav"),  # type: ignore[arg-type]
        None,
        no_opt_out,
        0,
        clock=FixedClock(NOW),
        balance_of=balance_of,
    )


async def test_a_script_is_picked_by_name_else_by_locale(work_dir: Path) -> None:
    ivr = service(work_dir)
    assert ivr.script_for(ACCOUNT).name == "reminder-en-US"
    assert ivr.script_for(ACCOUNT, "reminder-ko-KR").locale == "ko-KR"
    fields = await ivr.render_account(ACCOUNT, script="reminder-ko-KR")
    assert fields["amount"] != FIELDS["amount"]  # spoken the Korean way
    ivr.register("db1-1", ACCOUNT, fields, work_dir / "r", 1, script="reminder-ko-KR")
    prepared = ivr.peek("db1-1")
    assert prepared is not None and prepared.script.name == "reminder-ko-KR"
    message = await ivr.render_voicemail(ACCOUNT, script="reminder-ko-KR")
    assert message is not None and message.script == "reminder-ko-KR"


async def test_an_unknown_script_name_is_refused_by_name(work_dir: Path) -> None:
    ivr = service(work_dir)
    for attempt in (
        ivr.render_account(ACCOUNT, script="reminder-fr-FR"),
        ivr.render_voicemail(ACCOUNT, script="reminder-fr-FR"),
    ):
        with pytest.raises(
            ScriptError,
            match=r"no IVR script named 'reminder-fr-FR' \(loaded: reminder-en-US, reminder-ko-KR",
        ):
            await attempt
    with pytest.raises(ScriptError, match="reminder-fr-FR"):
        ivr.register("db1-2", ACCOUNT, FIELDS, work_dir / "r", 2, script="reminder-fr-FR")
    assert ivr.peek("db1-2") is None  # nothing registered


def test_two_scripts_with_one_name_are_refused(work_dir: Path) -> None:
    other = work_dir / "copy" / "reminder-en-US.yaml"
    other.parent.mkdir()
    other.write_text((SCRIPTS / "reminder-en-US.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    paths = [SCRIPTS / "reminder-en-US.yaml", other]
    with pytest.raises(ScriptError, match=f"{other}: a script named 'reminder-en-US' is already loaded"):
        by_name(paths, [load_script(p) for p in paths])


# -- over FastAGI ----------------------------------------------------------------------------------


async def press_one(port: int, key: str, secret: str) -> list[str]:
    """Play Asterisk for call `key`: press 1 whenever 1 may cut a prompt. The commands received."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    env = ["agi_network: yes", "agi_network_script: reminder", "agi_uniqueid: 9.9"]
    writer.write(("\n".join([*env, f"agi_arg_1: {key}", f"agi_arg_2: {secret}"]) + "\n\n").encode())
    commands: list[str] = []
    async with asyncio.timeout(5):
        while line := (await reader.readline()).decode().rstrip("\n"):
            commands.append(line)
            pressed = line.startswith("STREAM FILE") and "1" in line.rsplit(" ", 1)[-1]
            writer.write(b"200 result=49 endpos=800\n" if pressed else b"200 result=0 endpos=8000\n")
    writer.close()
    return commands


async def test_the_service_asks_the_registered_accounts_balance(work_dir: Path) -> None:
    """The whole path in the service: the account registered is the one asked about, the outcome
    reaches the dialplan, and the steps say paid in full."""
    asked: list[str] = []

    async def balance_of(account: Account) -> int | None:
        asked.append(account.account_id)
        return 0

    ivr = service(work_dir, balance_of)
    ivr.register("db1-3", ACCOUNT, FIELDS, work_dir / "r", 3)
    task = asyncio.create_task(ivr.server.serve())
    try:
        await asyncio.wait_for(ivr.server.ready.wait(), 5)
        commands = await press_one(ivr.server.port, "db1-3", ivr.agi_secret("db1-3"))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert asked == ["A1"]
    assert 'SET VARIABLE "DUECALL_OUTCOME" "already_paid"' in commands
    prepared = ivr.take("db1-3")
    assert prepared is not None and prepared.result is not None
    assert [s.detail.get("text") for s in prepared.result.steps if s.kind == "prompt"][-1] == PAID_TEXT

"""The dry run (issue 13, item 4): `plan()` replays the strategy and the policy over the coming days
with nobody answering; each outcome rule and each policy refusal shows in the plan by its name;
sharing between accounts in the same situation changes nothing; the loop guard; the rendering."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from dialer.core.balance import Payment, Promise
from dialer.core.errors import DueCallError
from dialer.core.messages import PastMessage
from dialer.core.models import Account, Campaign, Decision, Disposition, PastAttempt, Preferences, Reason
from dialer.core.vocab import Outcome, RuleId
from dialer.policy.engine import LenderSettings
from dialer.policy.gate import PackGate
from dialer.policy.packs import load_pack
from dialer.strategy.decide import AccountView, HistoryView, PastContact, Said
from dialer.strategy.loader import Known, load_strategy
from dialer.strategy.model import Channel, Strategy
from dialer.strategy.plan import MAX_STEPS_A_DAY, Plan, plan
from dialer.strategy.snapshot import Snapshot
from duecall import planning, steered
from duecall.cli import main
from duecall.cli.plan import parse_start
from duecall.planning import Work, plan_on_every_core, render
from sms.templates import load_templates
from tests.support.project import PROJECT_ROOT
from tests.support.records import borrower

SCRIPTS = {p.stem for p in (PROJECT_ROOT / "ivr" / "scripts").glob("*.yaml")}
TEMPLATES = [load_templates(p) for p in sorted((PROJECT_ROOT / "sms" / "templates").glob("*.yaml"))]
KNOWN = Known(SCRIPTS, set.intersection(*(set(t.messages) for t in TEMPLATES)))
SHANGHAI = "Asia/Shanghai"
NO_PREFERENCES = Preferences()
START = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)  # 00:00 on 2 December in Shanghai
DAY0 = date(2026, 12, 2)  # the first local day of the plan

STRATEGY = """\
name: plan-test
pack: cn
rules:
  promise_pending: {grace_days: 1}
  promise_broken: {channel: voice, script: reminder-zh-CN, per_day: 1, interval: 2h}
  paid: stop
  dispute: person
  opt_out: stop_channel
segments:
  - name: all
    steps:
      - {days: -3, channel: sms, message: before_due, per_day: 1, interval: 1d}
      - {days: 0, channel: sms, message: due_today, per_day: 1, interval: 1d}
      - {days: 1+, channel: voice, script: reminder-zh-CN, per_day: 2, interval: 3h}
"""


@pytest.fixture(scope="module")
def strategy(tmp_path_factory: pytest.TempPathFactory) -> Strategy:
    path = tmp_path_factory.mktemp("plan") / "plan-test.yaml"
    path.write_text(STRATEGY, encoding="utf-8")
    return load_strategy(path, KNOWN)


def account(n: int = 1, due: date = DAY0 - timedelta(days=5), zone: str = SHANGHAI) -> Account:
    r = borrower(f"A{n}", f"+86139{n:08d}", zone, "zh-CN", currency="CNY", amount_minor=50_000)
    return Account(
        n, r.account_id, r.debt_id, r.name, r.phone_e164, r.time_zones, False, 50_000, "CNY", due, "zh-CN"
    )


def snap(
    acct: Account | None = None,
    payments: tuple[Payment, ...] = (),
    promises: tuple[Promise, ...] = (),
    said: tuple[Said, ...] = (),
    opted_out: frozenset[Channel] = frozenset(),
    calls: tuple[PastAttempt, ...] = (),
    contacts: tuple[PastContact, ...] = (),
) -> Snapshot:
    a = acct or account()
    return Snapshot(
        AccountView(a, payments, promises),
        HistoryView(contacts, said, opted_out),
        calls,
        (),
        opted_out,
        Preferences(),
    )


def gate(max_voice_per_day: int | None = None) -> PackGate:
    return PackGate(load_pack("cn", LenderSettings(max_voice_per_day=max_voice_per_day)))


def run(
    strategy: Strategy, snaps: Sequence[Snapshot], days: int = 5, follow: str | None = "A1", **kw: int
) -> Plan:
    return plan(snaps, lambda _s: strategy, gate(**kw), START, days, 7, follow)


def day(p: Plan, d: date) -> tuple[int, int]:
    found = [x for x in p.days if x.day == d]
    return (found[0].voice.made, found[0].sms.made) if found else (0, 0)


def test_overdue_account_gets_two_calls_a_day_each_moved_from_midnight_to_the_window(
    strategy: Strategy,
) -> None:
    p = run(strategy, [snap()], days=3)
    assert [day(p, DAY0 + timedelta(days=i)) for i in range(3)] == [(2, 0)] * 3
    made = [e for e in p.schedule if e.kind == "made"]
    assert [e.local.strftime("%m-%d %H:%M") for e in made[:2]] == ["12-02 08:00", "12-02 11:00"]
    assert made[0].what == "reminder-zh-CN" and made[0].source == "segments[0].steps[2]"
    assert made[0].at == datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
    night = p.schedule[0]  # asked at 00:00 local: the policy's window moves it to 08:00
    assert (night.kind, night.rules, night.until) == ("refused", ("window",), made[0].at)
    assert p.days[0].voice.by_rule == {"window": 1} and p.days[0].voice.refused == 1
    held = [e for e in p.schedule if e.kind == "held"]
    assert "2 of 2 a day made" in held[0].why


def test_the_lenders_daily_cap_refuses_the_second_call_by_name(strategy: Strategy) -> None:
    p = run(strategy, [snap()], days=2, max_voice_per_day=1)
    assert day(p, DAY0) == (1, 0)
    assert p.days[0].voice.by_rule == {"daily-cap": 1, "window": 1}
    capped = [e for e in p.schedule if e.kind == "refused" and "daily-cap" in e.rules]
    assert capped[0].local.strftime("%H:%M") == "11:00"
    assert capped[0].until == datetime(2026, 12, 3, 0, 0, tzinfo=UTC)  # 08:00 the next local day


def test_texts_before_and_on_the_due_day_then_calls(strategy: Strategy) -> None:
    p = run(strategy, [snap(account(due=DAY0 + timedelta(days=3)))], days=6)
    assert [day(p, DAY0 + timedelta(days=i)) for i in range(6)] == [
        (0, 1),
        (0, 0),
        (0, 0),
        (0, 1),
        (2, 0),
        (2, 0),
    ]
    texts = [e.what for e in p.schedule if e.kind == "made" and e.channel == "sms"]
    assert texts == ["before_due", "due_today"]
    assert p.days[1].held_by == {"no step": 1}


def test_a_pending_promise_is_silence_until_its_grace_then_the_broken_promise_call(
    strategy: Strategy,
) -> None:
    promise = Promise("call", 1, START - timedelta(days=1), DAY0 + timedelta(days=1), None)
    p = run(strategy, [snap(promises=(promise,))], days=5)
    # Promised for day 1, a day's grace: silent on days 0-2, the broken promise's one call on day 3.
    assert [day(p, DAY0 + timedelta(days=i)) for i in range(5)] == [(0, 0), (0, 0), (0, 0), (1, 0), (2, 0)]
    assert p.days[0].held_by == {"promise_pending": 1}
    broken = next(e for e in p.schedule if e.kind == "made")
    assert broken.source == "rules.promise_broken" and broken.local.date() == DAY0 + timedelta(days=3)
    assert "broken" in broken.why


def test_a_dispute_stops_and_goes_to_a_person(strategy: Strategy) -> None:
    said = (Said(START - timedelta(days=1), Outcome.DISPUTE, "+8613900000001"),)
    p = run(strategy, [snap(said=said)])
    assert p.stopped == {"dispute": 1} and p.to_person == 1
    assert p.made("voice") == p.made("sms") == 0
    assert p.schedule[0].kind == "stopped" and p.schedule[0].to_person


def test_paid_in_full_stops(strategy: Strategy) -> None:
    paid = (Payment("P1", 50_000, "CNY", START - timedelta(days=3)),)
    p = run(strategy, [snap(payments=paid)])
    assert p.stopped == {"paid": 1} and p.to_person == 0 and p.made("voice") == 0


def test_opted_out_of_calls_still_gets_the_texts(strategy: Strategy) -> None:
    p = run(strategy, [snap(account(due=DAY0 + timedelta(days=3)), opted_out=frozenset({"voice"}))], days=6)
    assert p.made("voice") == 0 and p.made("sms") == 2
    assert p.days[-1].held_by == {"opt_out": 1}


def test_per_day_counts_add_up_over_accounts_and_zones(strategy: Strategy) -> None:
    snaps = [snap(account(n)) for n in range(1, 11)]
    snaps += [snap(account(n, due=DAY0 + timedelta(days=3), zone="Asia/Urumqi")) for n in range(11, 16)]
    p = run(strategy, snaps, days=4, follow=None)
    assert p.accounts == 15 and p.schedule == ()
    assert day(p, DAY0) == (20, 5)
    assert day(p, DAY0 + timedelta(days=3)) == (20, 5)
    later = next(d for d in p.days if d.day == DAY0 + timedelta(days=1))
    assert (later.held, later.held_by) == (5, {"no step": 1 * 5})  # the five due later: no step on day -2


def test_the_earlier_calls_count_against_todays_cap(strategy: Strategy) -> None:
    before = START - timedelta(hours=4)  # 20:00 local the evening before: yesterday's, not today's
    today = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # 09:00 local on the first day
    calls = tuple(
        PastAttempt(i, at, 1, Disposition.NO_ANSWER, "D-A1") for i, at in enumerate((before, today), start=1)
    )
    contacts = (PastContact(before, "voice"), PastContact(today, "voice"))
    p = run(strategy, [snap(calls=calls, contacts=contacts)], days=1)
    assert day(p, DAY0) == (1, 0)  # the strategy's 2 a day: one already made


def test_sharing_changes_nothing(strategy: Strategy) -> None:
    rng = random.Random(13)
    snaps = [_random_snapshot(n, rng) for n in range(1, 301)]
    shared = plan(snaps, lambda _s: strategy, gate(), START, 10, 7, None)
    alone = plan(snaps, lambda _s: strategy, gate(), START, 10, 7, None, share=False)
    assert shared.days == alone.days
    assert (shared.stopped, shared.to_person, shared.errors) == (alone.stopped, alone.to_person, alone.errors)
    assert alone.simulated == 300 and shared.simulated < 300
    assert shared.made("voice") > 0 and shared.made("sms") > 0


def _random_snapshot(n: int, rng: random.Random) -> Snapshot:
    zone = rng.choice([SHANGHAI, "Asia/Urumqi"])
    a = account(n, due=DAY0 + timedelta(days=rng.randint(-40, 5)), zone=zone)
    a = replace(a, amount_minor=rng.choice([10_000, 50_000]))
    payments: tuple[Payment, ...] = ()
    promises: tuple[Promise, ...] = ()
    calls: tuple[PastAttempt, ...] = ()
    contacts: tuple[PastContact, ...] = ()
    roll = rng.random()
    if roll < 0.1:
        payments = (
            Payment(f"P{n}", rng.randint(1, 20_000), "CNY", START - timedelta(days=rng.randint(0, 4))),
        )
    elif roll < 0.2:
        promises = (
            Promise("call", n, START - timedelta(days=1), DAY0 + timedelta(days=rng.randint(-1, 4)), None),
        )
    elif roll < 0.5:
        times = sorted(START - timedelta(hours=rng.randint(1, 60)) for _ in range(rng.randint(1, 3)))
        calls = tuple(
            PastAttempt(n * 10 + i, at, 1, Disposition.NO_ANSWER, a.debt_id) for i, at in enumerate(times)
        )
        contacts = tuple(PastContact(at, "voice") for at in times)
    return snap(a, payments, promises, calls=calls, contacts=contacts)


@dataclass
class StuckGate:
    """A gate that refuses and never moves time on (a broken gate): the loop guard must stop it."""

    next_at: str = "same"
    asked: int = 0

    @property
    def history_window(self) -> timedelta:
        return timedelta(days=3)

    def decide(
        self,
        account: Account,
        at: datetime,
        history: Sequence[PastAttempt],
        opted_out: bool,
        prefs: Preferences = NO_PREFERENCES,
    ) -> Decision:
        return self._refuse(at)

    def decide_text(
        self,
        account: Account,
        at: datetime,
        history: Sequence[PastMessage],
        opted_out: frozenset[str],
        prefs: Preferences = NO_PREFERENCES,
    ) -> Decision:
        return self._refuse(at)

    def _refuse(self, at: datetime) -> Decision:
        self.asked += 1
        return Decision(False, (Reason(RuleId.WINDOW, "stuck"),), at if self.next_at == "same" else None)


def test_a_gate_that_never_moves_time_on_is_stopped_by_the_guard(strategy: Strategy) -> None:
    stuck = StuckGate()
    began = time.perf_counter()
    p = plan([snap(), snap(account(2))], lambda _s: strategy, stuck, START, 14, 7, "A1")
    assert time.perf_counter() - began < 5
    why = f"more than {MAX_STEPS_A_DAY} decisions on {DAY0}: simulation stopped there"
    assert p.errors == (f"A1: {why}", f"A2: {why}")
    assert p.schedule[-1].kind == "error" and stuck.asked <= 2 * MAX_STEPS_A_DAY


def test_a_channel_the_gate_never_allows_is_asked_again_each_day(strategy: Strategy) -> None:
    never = StuckGate(next_at="never")
    p = plan([snap()], lambda _s: strategy, never, START, 4, 7, "A1")
    assert p.errors == () and p.made("voice") == 0
    assert [d.voice.refused for d in p.days] == [1, 1, 1, 1]
    assert p.schedule[0].until == datetime(2026, 12, 2, 16, 0, tzinfo=UTC)


def test_the_plan_starts_at_a_utc_time(strategy: Strategy) -> None:
    with pytest.raises(ValueError, match="UTC"):
        plan([], lambda _s: strategy, gate(), START.astimezone(SHANGHAI_TZ), 1, 7)


SHANGHAI_TZ = __import__("zoneinfo").ZoneInfo(SHANGHAI)


def test_rendering_shows_days_rules_stops_and_the_schedule(strategy: Strategy) -> None:
    said = (Said(START - timedelta(days=1), Outcome.DISPUTE, "+8613900000002"),)
    p = run(strategy, [snap(), snap(account(2), said=said)], days=2)
    out = Console(record=True, width=200)
    render(out, "november", p)
    text = out.export_text()
    assert "dry run of 2 accounts" in text
    assert "Wed 2026-12-02" in text and "1: window 1" in text
    assert "dispute" in text and "of which to a person │        1" in text
    assert "account A1: its schedule" in text and "voice reminder-zh-CN" in text
    assert "[segments[0].steps[2]]" in text  # brackets shown, not taken for markup
    assert "window: outside 08:00-21:00 (pack cn)" in text and "[source:" not in text
    assert "Nothing was sent" in text


def test_start_must_be_an_iso_utc_time() -> None:
    assert parse_start("2026-12-01T16:00Z") == START
    assert parse_start("2026-12-02T00:00+08:00") == START
    with pytest.raises(DueCallError, match="UTC"):
        parse_start("2026-12-01T16:00")
    with pytest.raises(DueCallError, match="ISO 8601"):
        parse_start("tomorrow")


def test_the_command_plans_the_campaign_and_follows_one_account(
    strategy: Strategy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    asked: list[tuple[str, datetime]] = []

    async def inputs(_s: object, name: str, now: datetime) -> steered.PlanInputs:
        asked.append((name, now))
        snaps = [snap(), snap(account(2))]
        return steered.PlanInputs(Campaign(7, name, START), snaps, lambda _x: strategy, gate())

    monkeypatch.setattr(steered, "plan_inputs", inputs)
    config = tmp_path / "duecall.toml"
    config.write_text("", encoding="utf-8")
    args = ["--config", str(config), "campaign", "plan", "november", "--days", "2", "--account", "A1"]
    result = CliRunner().invoke(main, [*args, "--start", "2026-12-01T16:00Z"])
    assert result.exit_code == 0, result.output
    assert asked == [("november", START)]
    assert "dry run of 2 accounts" in result.output and "account A1: its schedule" in result.output
    missing = CliRunner().invoke(main, [*args[:-1], "A9", "--start", "2026-12-01T16:00Z"])
    assert missing.exit_code != 0 and "A9 is not in campaign november" in missing.output


def test_planning_on_two_cores_gives_the_same_plan(
    strategy: Strategy, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(7)
    snaps = [_random_snapshot(n, rng) for n in range(1, 121)]
    work = Work(snaps, lambda _s: strategy, gate(), START, 6, 7, "A5")
    alone = plan(snaps, lambda _s: strategy, gate(), START, 6, 7, "A5")
    monkeypatch.setattr(planning, "PARALLEL_FROM", 10)
    both = plan_on_every_core(work, workers=2)
    assert both.days == alone.days and both.schedule == alone.schedule and both.schedule
    assert (both.accounts, both.stopped, both.to_person, both.errors) == (
        alone.accounts,
        alone.stopped,
        alone.to_person,
        alone.errors,
    )

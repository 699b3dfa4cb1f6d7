"""Contact strategies (issue 13, item 1): the file format and its load-time refusals naming file,
line and field; hostile YAML; the pure next step for each outcome rule, promises kept and broken,
a bucket change; the shipped strategies against the shipped scripts, templates and packs."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.core.balance import Payment, Promise
from dialer.core.errors import StrategyError
from dialer.core.models import Account
from dialer.core.vocab import Outcome
from dialer.strategy.decide import AccountView, HistoryView, Hold, PastContact, Proposal, Said, next_contact
from dialer.strategy.loader import Known, load_strategy
from dialer.strategy.model import Strategy
from duecall.cli import main
from sms.templates import load_templates
from tests.support.project import PROJECT_ROOT

SHIPPED = sorted((PROJECT_ROOT / "dialer" / "strategy" / "strategies").glob("*.yaml"))
SCRIPTS = {p.stem for p in (PROJECT_ROOT / "ivr" / "scripts").glob("*.yaml")}
TEMPLATES = [load_templates(p) for p in sorted((PROJECT_ROOT / "sms" / "templates").glob("*.yaml"))]
MESSAGES = set.intersection(*(set(t.messages) for t in TEMPLATES))
KNOWN = Known(SCRIPTS, MESSAGES)
DUE = date(2026, 12, 10)
NUMBER = "+12025550101"

GOOD = """\
name: test
pack: cn
rules:
  promise_pending: {grace_days: 1}
  promise_broken: {channel: voice, script: reminder-zh-CN, per_day: 1, interval: 2h}
  partially_paid: {channel: sms, message: missed_call, per_day: 1, interval: 1d}
  no_answer:
    after: 3
    switch: {channel: sms, message: missed_call, per_day: 1, interval: 1d}
segments:
  - name: early
    where: {bucket: [M0, M1]}
    steps:
      - {days: -3, channel: sms, message: before_due, per_day: 1, interval: 1d}
      - {days: 0, channel: sms, message: due_today, per_day: 1, interval: 1d}
      - {days: 1-30, channel: voice, script: reminder-zh-CN, per_day: 2, interval: 3h}
  - name: late
    where: {bucket: M2}
    steps:
      - {days: 31-60, channel: voice, script: reminder-en-US, per_day: 1, interval: 1d}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(StrategyError) as caught:
        load_strategy(write(tmp_path, text), KNOWN)
    return caught.value.problems


@pytest.fixture
def good(tmp_path: Path) -> Strategy:
    return load_strategy(write(tmp_path, GOOD), KNOWN)


def account(
    amount: int = 10_000, payments: tuple[Payment, ...] = (), promises: tuple[Promise, ...] = ()
) -> AccountView:
    acct = Account(1, "A1", "A1", "Ann", NUMBER, ("UTC",), False, amount, "CNY", DUE, "zh-CN")
    return AccountView(acct, payments, promises)


def on(day: int, hour: int = 10) -> datetime:
    """A moment on the day `day` relative to the due date (UTC, the account's zone)."""
    return datetime(DUE.year, DUE.month, DUE.day, hour, tzinfo=UTC) + timedelta(days=day)


def calls(*moments: datetime, answered: bool = False) -> tuple[PastContact, ...]:
    return tuple(PastContact(m, "voice", answered) for m in moments)


# ------------------------------------------------------------------ the shipped strategies


def test_the_shipped_strategies_load_against_the_shipped_scripts_templates_and_packs() -> None:
    assert [p.stem for p in SHIPPED] == ["cn", "us-regf"]
    assert {"before_due", "due_today", "missed_call"} <= MESSAGES
    loaded = {p.stem: load_strategy(p, KNOWN) for p in SHIPPED}
    assert {name: s.pack for name, s in loaded.items()} == {"cn": "cn", "us-regf": "us-regf"}
    for strategy in loaded.values():  # texts before and on the due day, calls from day 1
        view = account()
        assert _chosen(strategy, view, on(-3)) == ("sms", "before_due")
        assert _chosen(strategy, view, on(0)) == ("sms", "due_today")
        assert _chosen(strategy, view, on(1))[0] == "voice"


def _chosen(strategy: Strategy, view: AccountView, now: datetime) -> tuple[str, str | None]:
    found = next_contact(strategy, view, HistoryView(), now)
    assert isinstance(found, Proposal), found
    return found.channel, found.message or found.script


def test_the_command_validates_and_names_the_problem(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["strategy", "validate", *map(str, SHIPPED)])
    assert ok.exit_code == 0 and ok.output.count(": ok (") == 2, ok.output
    bad = write(tmp_path, GOOD.replace("message: due_today", "message: due_tomorrow"))
    failed = runner.invoke(main, ["strategy", "validate", str(bad)])
    assert (
        failed.exit_code == 1
        and f"{bad}:15: segments[0].steps[1].message: no template message" in failed.output
    )


# ------------------------------------------------------------------ steps by days past due


def test_steps_by_day_and_the_wait_before_the_first(good: Strategy) -> None:
    held = next_contact(good, account(), HistoryView(), on(-5))
    assert isinstance(held, Hold) and held.until == on(-3, 0) and "no step on day -5" in held.reason
    first = next_contact(good, account(), HistoryView(), on(-3))
    assert isinstance(first, Proposal) and first.source == "segments[0].steps[0]" and first.earliest == on(-3)
    assert first.message == "before_due" and "days -3" in first.why
    between = next_contact(good, account(), HistoryView(), on(-1))
    assert isinstance(between, Hold) and between.until == on(0, 0)


def test_a_bucket_change_moves_the_account_to_another_step(good: Strategy) -> None:
    m1 = next_contact(good, account(), HistoryView(), on(30))
    m2 = next_contact(good, account(), HistoryView(), on(31))
    assert isinstance(m1, Proposal) and m1.script == "reminder-zh-CN" and m1.source == "segments[0].steps[2]"
    assert isinstance(m2, Proposal) and m2.script == "reminder-en-US" and m2.source == "segments[1].steps[0]"
    past = next_contact(good, account(), HistoryView(), on(61))  # M3: no segment is written for it
    assert isinstance(past, Hold) and past.until == on(91, 0) and "no segment" in past.reason  # M4 next
    beyond = next_contact(good, account(), HistoryView(), on(200))
    assert isinstance(beyond, Hold) and beyond.until is None


def test_contacts_a_day_and_the_interval(good: Strategy) -> None:
    one = HistoryView(calls(on(2, 9)))
    later = next_contact(good, account(), one, on(2, 10))
    assert isinstance(later, Proposal) and later.earliest == on(2, 12) and "voice 2 of 2 today" in later.why
    two = HistoryView(calls(on(2, 9), on(2, 12)))
    full = next_contact(good, account(), two, on(2, 13))
    assert isinstance(full, Hold) and full.until == on(3, 0) and "2 of 2 a day made" in full.reason
    late = next_contact(good, account(), HistoryView(calls(on(2, 22))), on(2, 23))
    assert isinstance(late, Hold) and late.until == on(3, 0) and "later day" in late.reason


# ------------------------------------------------------------------ outcome rules


def test_paid_in_full_stops_and_a_paid_claim_waits_for_the_payment(good: Strategy) -> None:
    paid = account(payments=(Payment("P1", 10_000, "CNY", on(3, 8)),))
    stopped = next_contact(good, paid, HistoryView(), on(3))
    assert isinstance(stopped, Hold) and stopped.until is None and "rules.paid" in stopped.reason
    claim = HistoryView(said=(Said(on(3, 9), Outcome.PAID, NUMBER),))
    waiting = next_contact(good, account(), claim, on(4))
    assert isinstance(waiting, Hold) and waiting.until == on(5, 0)  # grace_days 1 after the claim
    assert isinstance(next_contact(good, account(), claim, on(5)), Proposal)  # no payment came


@pytest.mark.parametrize("outcome", [Outcome.DISPUTE, Outcome.HARDSHIP_CALLBACK])
def test_a_dispute_or_a_hardship_call_goes_to_a_person(good: Strategy, outcome: Outcome) -> None:
    history = HistoryView(said=(Said(on(2), outcome, NUMBER), Said(on(3), Outcome.ACKNOWLEDGED, NUMBER)))
    held = next_contact(good, account(), history, on(20))
    assert isinstance(held, Hold) and held.to_person and held.until is None and str(outcome) in held.reason


def test_a_wrong_number_stops_that_number_only(good: Strategy) -> None:
    here = HistoryView(said=(Said(on(2), Outcome.WRONG_NUMBER, NUMBER),))
    held = next_contact(good, account(), here, on(3))
    assert isinstance(held, Hold) and held.until is None and "rules.wrong_number" in held.reason
    old = HistoryView(said=(Said(on(2), Outcome.WRONG_NUMBER, "+12025550199"),))  # the number changed since
    assert isinstance(next_contact(good, account(), old, on(3)), Proposal)


def test_an_opt_out_stops_that_channel(good: Strategy) -> None:
    no_calls = HistoryView(opted_out=frozenset({"voice"}))
    assert isinstance(next_contact(good, account(), no_calls, on(0)), Proposal)  # a text
    held = next_contact(good, account(), no_calls, on(2))
    assert isinstance(held, Hold) and "opted out of voice" in held.reason
    said_stop = HistoryView(said=(Said(on(1), Outcome.OPT_OUT, NUMBER),))  # the IVR's "stop calls"
    assert isinstance(next_contact(good, account(), said_stop, on(2)), Hold)
    both = HistoryView(opted_out=frozenset({"voice", "sms"}))
    done = next_contact(good, account(), both, on(0))
    assert isinstance(done, Hold) and done.until is None


def test_a_kept_promise_of_part_of_the_balance_resumes_the_steps(good: Strategy) -> None:
    promise = Promise("call", 1, on(2, 11), DUE + timedelta(days=5), 4_000)
    pending = next_contact(good, account(promises=(promise,)), HistoryView(), on(4))
    assert (
        isinstance(pending, Hold) and pending.until == on(7, 0) and "rules.promise_pending" in pending.reason
    )
    kept = account(payments=(Payment("P1", 4_000, "CNY", on(5, 9)),), promises=(promise,))
    resumed = next_contact(good, kept, HistoryView(), on(6))
    assert isinstance(resumed, Proposal) and resumed.source == "segments[0].steps[2]"
    in_full = account(payments=(Payment("P1", 10_000, "CNY", on(5, 9)),), promises=(promise,))
    assert next_contact(good, in_full, HistoryView(), on(6)) == Hold(
        "paid in full: the strategy stops (rules.paid)", None
    )


def test_a_broken_promise_brings_its_call_after_the_grace_then_the_steps(good: Strategy) -> None:
    promise = Promise("call", 1, on(2, 11), DUE + timedelta(days=5), None)
    view = account(promises=(promise,))
    grace = next_contact(good, view, HistoryView(), on(6))  # the day after: broken, in its grace day
    assert isinstance(grace, Hold) and grace.until == on(7, 0)
    broken = next_contact(good, view, HistoryView(), on(7))
    assert isinstance(broken, Proposal) and broken.source == "rules.promise_broken"
    assert broken.script == "reminder-zh-CN" and "broken" in broken.why
    after = next_contact(good, view, HistoryView(), on(8))
    assert isinstance(after, Proposal) and after.source == "segments[0].steps[2]"


def test_a_partially_kept_promise_takes_its_rule(good: Strategy) -> None:
    promise = Promise("call", 1, on(2, 11), DUE + timedelta(days=5), None)
    view = account(payments=(Payment("P1", 3_000, "CNY", on(4, 9)),), promises=(promise,))
    partly = next_contact(good, view, HistoryView(), on(7))
    assert isinstance(partly, Proposal) and partly.source == "rules.partially_paid"
    assert partly.channel == "sms" and partly.message == "missed_call"


def test_an_unanswered_streak_switches_to_a_text_and_a_text_ends_it(good: Strategy) -> None:
    three = calls(on(2, 9), on(2, 12), on(3, 9))
    switched = next_contact(good, account(), HistoryView(three), on(3, 13))
    assert isinstance(switched, Proposal) and switched.source == "rules.no_answer.switch"
    assert switched.channel == "sms" and "3 unanswered calls" in switched.why
    # The text took the place of the day's second call: calls resume the next day.
    texted = HistoryView((*three, PastContact(on(3, 13), "sms")))
    later = next_contact(good, account(), texted, on(3, 14))
    assert isinstance(later, Hold) and later.until == on(4, 0) and "2 of 2 a day" in later.reason
    back = next_contact(good, account(), texted, on(4, 9))
    assert isinstance(back, Proposal) and back.channel == "voice"
    answered = HistoryView((*three[:2], *calls(on(3, 9), answered=True)))
    reached = next_contact(good, account(), answered, on(3, 13))
    assert isinstance(reached, Proposal) and reached.channel == "voice"


def test_the_no_answer_text_waits_for_the_call_it_replaces(good: Strategy) -> None:
    """A streak ending with the day's last call: the text replaces the next call, not sent at once."""
    three = calls(on(2, 9), on(2, 12), on(3, 9), on(3, 12))
    held = next_contact(good, account(), HistoryView(three), on(3, 13))
    assert isinstance(held, Hold) and held.until == on(4, 0)
    switched = next_contact(good, account(), HistoryView(three), on(4, 1))
    assert isinstance(switched, Proposal) and switched.channel == "sms"
    assert switched.earliest == on(4, 1) and switched.source == "rules.no_answer.switch"


def test_a_streak_can_widen_the_interval_instead(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    switch: {channel: sms, message: missed_call, per_day: 1, interval: 1d}\n", "    widen: 20h\n"
    )
    strategy = load_strategy(write(tmp_path, text), KNOWN)
    three = calls(on(1, 9), on(1, 12), on(2, 9))
    wider = next_contact(strategy, account(), HistoryView(three), on(2, 12))
    assert isinstance(wider, Hold) and wider.until == on(3, 0)  # 09:00 + 20 h is tomorrow
    tomorrow = next_contact(strategy, account(), HistoryView(three), on(3, 1))
    assert isinstance(tomorrow, Proposal) and tomorrow.earliest == on(3, 5)
    assert tomorrow.source == "rules.no_answer.widen"


@settings(max_examples=200, deadline=None)
@given(
    day=st.integers(-10, 70),
    hour=st.integers(0, 23),
    opted=st.sets(st.sampled_from(["voice", "sms"])),
    past=st.lists(
        st.tuples(st.integers(-10, 70), st.integers(0, 23), st.sampled_from(["voice", "sms"]), st.booleans()),
        max_size=12,
    ),
)
def test_never_an_opted_out_channel_nor_more_than_the_step_allows(
    day: int, hour: int, opted: set[str], past: list[tuple[int, int, str, bool]]
) -> None:
    strategy = load_strategy(SHIPPED[0], KNOWN)
    now = on(day, hour)
    contacts = tuple(PastContact(on(d, h), c, a) for d, h, c, a in past if on(d, h) < now)  # type: ignore[arg-type]
    history = HistoryView(contacts, opted_out=frozenset(opted))  # type: ignore[arg-type]
    found = next_contact(strategy, account(), history, now)
    if isinstance(found, Proposal):
        assert found.channel not in opted
        today = [c for c in contacts if c.channel == found.channel and c.at.date() == now.date()]
        limits = {c.per_day for g in strategy.segments for c in g.steps if c.channel == found.channel}
        assert len(today) < max(limits) and found.earliest >= now
        assert found.earliest.date() == now.date()


# ------------------------------------------------------------------ load-time refusals


@pytest.mark.parametrize(
    ("change", "where", "expected"),
    [
        (
            ("script: reminder-zh-CN, per_day: 2", "script: reminder-xx, per_day: 2"),
            ":16: segments[0].steps[2].script",
            "no IVR script named 'reminder-xx'",
        ),
        (
            ("message: before_due", "message: nope"),
            ":14: segments[0].steps[0].message",
            "no template message 'nope'",
        ),
        (
            ("per_day: 2, interval: 3h", "per_day: 4, interval: 3h"),
            ":16: segments[0].steps[2].per_day",
            "4 a day is more than pack cn allows (3)",
        ),
        (
            ("message: before_due, per_day: 1", "message: before_due, per_day: 5"),
            ":14: segments[0].steps[0].per_day",
            "5 a day is more than pack cn allows (3)",
        ),
        (("days: 0,", "days: -4--2,"), ":14: segments[0].steps[0].days", "overlap steps[1] (days -4 to -2)"),
        (("days: 31-60", "days: 1-30"), ":19: segments[1].steps", "no step can ever apply"),
        (("pack: cn", "pack: xx"), ":2: pack", "unknown policy pack"),
        (
            ("channel: sms, message: due_today", "channel: voice, message: due_today"),
            ":15: segments[0].steps[1]",
            "a call runs a script",
        ),
        (("days: 1-30", "days: 30-1"), ":16: segments[0].steps[2].days", "the first one first"),
        (("interval: 2h", "interval: soon"), ":5: rules.promise_broken.interval", "not a duration"),
        (("bucket: M2", "bucket: M9"), ":18: segments[1].where.bucket", "no bucket 'M9'"),
        (("where: {bucket: [M0, M1]}", "where: {}"), ":17: segments[1]", "never matches: segment 'early'"),
    ],
)
def test_each_refusal_names_file_line_and_field(
    tmp_path: Path, change: tuple[str, str], where: str, expected: str
) -> None:
    assert change[0] in GOOD
    found = problems(tmp_path, GOOD.replace(change[0], change[1], 1))
    prefix = str(tmp_path / "s.yaml") + where
    assert any(p.startswith(prefix) and expected in p for p in found), found


def test_a_strategy_that_can_never_contact_anyone_is_refused(tmp_path: Path) -> None:
    text = """\
name: never
pack: us-regf
segments:
  - name: late
    where: {bucket: M3}
    steps:
      - {days: 1-30, channel: voice, script: reminder-en-US, per_day: 1, interval: 1d}
"""
    found = problems(tmp_path, text)
    assert any(":3: segments: can never contact anyone" in p for p in found), found
    assert any(":6: segments[0].steps: no step can ever apply" in p for p in found), found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: &x [1]\nb: *x\n", "anchors and aliases"),  # a billion-laughs file starts like this
        ("a: " + "[" * 40 + "]" * 40 + "\n", "nested more than 16 levels"),
        ("a: [1\n", "not valid YAML"),
        ("- just\n- a list\n", "a strategy maps name, pack"),
    ],
)
def test_hostile_yaml_is_one_clear_error_quickly(tmp_path: Path, text: str, expected: str) -> None:
    started = time.monotonic()
    [problem] = problems(tmp_path, text)
    assert problem.startswith(str(tmp_path / "s.yaml")) and expected in problem
    assert time.monotonic() - started < 1.0


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(2 << 30)  # 2 GiB, sparse: reading it all would take the memory
    started = time.monotonic()
    with pytest.raises(StrategyError, match="larger than 256 KiB"):
        load_strategy(path, KNOWN)
    assert time.monotonic() - started < 1.0


def test_many_steps_are_checked_in_bounded_time(tmp_path: Path) -> None:
    steps = "".join(
        f"      - {{days: {d}, channel: sms, message: before_due, per_day: 1, interval: 1d}}\n"
        for d in range(-365, 2000)
    )
    text = GOOD.split("segments:")[0] + "segments:\n  - name: many\n    steps:\n" + steps
    assert len(text.encode()) < 256 * 1024
    started = time.monotonic()
    assert len(load_strategy(write(tmp_path, text), KNOWN).segments[0].steps) == 2365
    assert time.monotonic() - started < 5.0  # 3.2 s when each step was looked for in a list
    segments = "".join(
        f"  - name: s{i}\n    where: {{locale: x{i}}}\n    steps:\n"
        "      - {days: 0, channel: sms, message: due_today, per_day: 1, interval: 1d}\n"
        for i in range(2000)
    )
    text = GOOD.split("segments:")[0] + "segments:\n" + segments
    started = time.monotonic()
    assert len(load_strategy(write(tmp_path, text), KNOWN).segments) == 2000
    assert time.monotonic() - started < 5.0


def test_us_regf_calls_a_day_are_bounded_by_seven_in_seven(tmp_path: Path) -> None:
    text = """\
name: eager
pack: us-regf
segments:
  - name: all
    steps:
      - {days: 1-30, channel: voice, script: reminder-en-US, per_day: 8, interval: 1h}
"""
    [problem] = problems(tmp_path, text)
    assert problem.startswith(f"{tmp_path / 's.yaml'}:6: segments[0].steps[0].per_day: 8 a day")
    assert "more than pack us-regf allows (7)" in problem


def test_where_matches_an_imported_column_by_name_and_no_account_has_one_yet(tmp_path: Path) -> None:
    text = """\
name: bands
pack: cn
segments:
  - name: risky
    where: {risk_band: 3, locale: [zh-CN, en-US]}
    steps:
      - {days: 1-30, channel: voice, script: reminder-en-US, per_day: 1, interval: 1d}
  - name: everyone
    steps:
      - {days: 1-30, channel: voice, script: reminder-zh-CN, per_day: 1, interval: 1d}
      - {days: 31-40, channel: voice, script: reminder-zh-CN, per_day: 1, interval: 1d}
"""
    strategy = load_strategy(write(tmp_path, text), KNOWN)
    today = next_contact(strategy, account(), HistoryView(), on(2))
    assert isinstance(today, Proposal) and today.source == "segments[1].steps[0]"
    banded = AccountView(account().account, columns={"risk_band": "3"})
    risky = next_contact(strategy, banded, HistoryView(), on(2))
    assert isinstance(risky, Proposal) and risky.source == "segments[0].steps[0]"
    outside = text.replace("{risk_band: 3, locale: [zh-CN, en-US]}", "{bucket: M1}").replace(
        "reminder-en-US, per_day: 1, interval: 1d}\n",
        "reminder-en-US, per_day: 1, interval: 1d}\n"
        "      - {days: 31-40, channel: voice, script: reminder-en-US, per_day: 1, interval: 1d}\n",
        1,
    )
    [problem] = problems(tmp_path, outside)
    assert problem.startswith(
        f"{tmp_path / 's.yaml'}:8: segments[0].steps[1].days: days 31 to 40 are outside"
    )

"""A campaign's report over a real store (each backend): every metric, its interval, the arms, CSV and PNG."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from rich.console import Console

from dialer.accounts.payments_import import check_against_accounts
from dialer.accounts.payments_parse import PaymentRecord
from dialer.core import balance
from dialer.core.models import (
    AccountRecord,
    Attempt,
    CallResult,
    Campaign,
    Decision,
    Disposition,
    IvrStep,
    IvrSummary,
    TargetState,
    TargetUpdate,
)
from dialer.store import Store
from dialer.strategy.arms import ArmAssignment
from reports import stats
from reports.build import build_report, report_png
from reports.counts import ROLL_MONTHS, champion_of, roll_months
from reports.csvout import write_csv
from reports.metrics import METRICS
from reports.plots import NO_DATA, write_plots
from reports.report import ALL, NO_GROUP, Cell, Report
from reports.tables import format_cell, render
from tests.support.records import record
from tests.support.stores import backend_store

__all__ = ["backend_store"]  # the fixture, on both backends

NOW = datetime(2026, 12, 2, 15, tzinfo=UTC)
TODAY = NOW.date()
PLOTS = ("funnel.png", "curves.png", "roll_rates.png", "arms.png", "hours.png")


@pytest.fixture
async def store(backend_store: Store) -> AsyncIterator[Store]:
    yield backend_store


async def campaign_of(store: Store, n: int, arms: dict[str, str] | None = None) -> Campaign:
    """`n` accounts A0.. in campaign "c"; `arms` gives an account id its arm."""
    await store.upsert_accounts([record(f"A{i}", f"+1202555{1000 + i:04d}") for i in range(n)], NOW)
    campaign = await store.create_campaign("c", NOW)
    await store.add_targets(campaign.id, NOW)
    if arms:
        accounts = await store.accounts_named(list(arms))
        drawn = [ArmAssignment(a.pk, a.account_id, arms[a.account_id], ("M1",), 7) for a in accounts.values()]
        await store.save_arms(campaign.id, drawn, NOW, "operator:test")
    return campaign


def _allow(*_: object) -> Decision:
    return Decision(True)


async def call(
    store: Store, campaign_id: int, account_id: str, disposition: Disposition, outcome: str = ""
) -> None:
    [target] = [
        t for t in await store.due_targets(campaign_id, NOW, 100) if t.account.account_id == account_id
    ]
    attempt = await store.claim(target, NOW, _allow, lambda i, _: f"/rec/{i}", "t", NOW - timedelta(days=7))
    assert isinstance(attempt, Attempt)
    ivr = None
    if outcome:  # the IVR reached an outcome: the borrower confirmed who they are
        step = IvrStep(NOW, "menu", "outcome", {"outcome": outcome})
        ivr = IvrSummary("reminder-en-US", outcome, None, None, True, (step,))
    result = CallResult(disposition, NOW + timedelta(seconds=30), answered_at=NOW if ivr else None, ivr=ivr)
    await store.finish_attempt(attempt, result, TargetUpdate(TargetState.PENDING, NOW), "dialer:t")


async def calls(store: Store, campaign_id: int, plan: Sequence[tuple[Disposition, str]]) -> None:
    for i, (disposition, outcome) in enumerate(plan):
        await call(store, campaign_id, f"A{i}", disposition, outcome)


def one(report: Report, group: str, metric: str) -> Cell:
    [cell] = report.cell(group, metric)
    return cell


def assert_wilson(cell: Cell, successes: int, trials: int) -> None:
    """The cell is what reports.stats says for successes of trials (interval or its absence)."""
    expected = stats.proportion(successes, trials)
    assert (cell.numerator, cell.denominator) == (successes, trials)
    assert cell.proportion == expected
    assert (cell.low, cell.high) == (expected.low, expected.high)


ANSWERED, NO_ANSWER, MACHINE = Disposition.ANSWERED, Disposition.NO_ANSWER, Disposition.MACHINE
# 14 accounts: 6 promise on the call, 2 answer but reach no outcome, 4 no answer, 1 machine, 1 never called.
PLAN = [(ANSWERED, "promise_to_pay")] * 6 + [(ANSWERED, "")] * 2 + [(NO_ANSWER, "")] * 4 + [(MACHINE, "")]


async def test_each_rate_is_its_count_over_its_denominator_with_wilson_where_enough(store: Store) -> None:
    campaign = await campaign_of(store, 14)
    await calls(store, campaign.id, PLAN)
    report = await build_report(store, campaign, by="", since=None, today=TODAY)
    assert report.groups == (ALL,)
    assert one(report, ALL, "attempts").value == 13 and one(report, ALL, "accounts_attempted").value == 13
    assert_wilson(one(report, ALL, "contact_rate"), 8, 13)  # a machine is no contact
    assert_wilson(one(report, ALL, "right_party_rate"), 6, 13)
    promise = one(report, ALL, "promise_rate")
    assert_wilson(promise, 6, 6)
    assert (
        promise.low is None
        and promise.why == "6 right-party accounts, fewer than 10: too few for an interval"
    )
    ratio = one(report, ALL, "calls_per_right_party")
    assert (ratio.value, ratio.proportion) == (13 / 6, None)
    assert format_cell(one(report, ALL, "contact_rate")).startswith("61.5% (")
    assert format_cell(one(report, ALL, "contact_rate")).endswith("%) 8/13")
    assert "too few for an interval" in format_cell(promise)
    texted = one(report, ALL, "sms_reply_rate")
    assert texted.value is None and texted.why == "no accounts texted: no rate"  # no texts: said, not 0 %
    assert {c.metric for c in report.cells} == {m.key for m in METRICS} - {"roll_rate"}


async def test_arms_are_compared_with_the_champion_over_every_assigned_account(store: Store) -> None:
    # Intention to treat: A9 and A11 are never reached, still trials of their arm; A13 has no arm.
    arms = {f"A{i}": "short" if i % 2 else "champion" for i in range(13)}
    campaign = await campaign_of(store, 14, arms)
    await calls(store, campaign.id, PLAN[:12] + [(ANSWERED, "promise_to_pay")] * 2)
    report = await build_report(store, campaign, by="arm", since=None, today=TODAY)
    assert report.groups == (ALL, "champion", "short", NO_GROUP) and report.arms is not None
    assert report.arms.champion == "champion"
    rates = {(c.group, c.metric): c for c in report.arms.rates}
    # champion: A0 A2 A4 (promise), A6 (answered), A8 A10 (no answer), A12 (promise): 7 accounts
    assert_wilson(rates["champion", "contact_rate"], 5, 7)
    # short: A1 A3 A5 (promise), A7 (answered), A9 A11 (no answer): 6 accounts
    assert_wilson(rates["short", "contact_rate"], 4, 6)
    assert_wilson(rates["short", "promise_rate"], 3, 6)
    [contact] = [d for d in report.arms.differences if d.metric == "contact_rate"]
    a, b = stats.proportion(5, 7), stats.proportion(4, 6)
    assert contact.arm == "short"
    assert contact.difference == stats.difference(a, b) and contact.sample == stats.sample_size(a, b)
    assert (
        contact.difference.why_no_interval == "an arm has 6 accounts, fewer than 10: too few for an interval"
    )
    # The per-group table keeps the published denominators (accounts attempted).
    assert_wilson(one(report, "champion", "contact_rate"), 5, 7)
    # The whole campaign's row (the arms' rows added up) is the store's own for every account.
    [whole] = await store.funnel(campaign.id)
    assert one(report, ALL, "attempts").numerator == whole.calls == 14
    assert_wilson(one(report, ALL, "contact_rate"), whole.contacted, whole.attempted)
    bars = report.funnel[0]
    assert (bars.group, bars.attempted, bars.contacted, bars.right_party, bars.promised) == (
        ALL,
        whole.attempted,
        whole.contacted,
        whole.right_party,
        whole.promised,
    )


async def test_an_empty_campaign_says_so_everywhere_and_still_draws(store: Store, tmp_path: Path) -> None:
    campaign = await campaign_of(store, 0)
    report = await build_report(store, campaign, by="arm", since=None, today=TODAY)
    assert report.arms is None and report.groups == (ALL,)
    for cell in report.cells:
        assert cell.low is None and cell.high is None
        if cell.denominator is not None:
            assert cell.value is None and cell.why, cell  # never 0 % of nothing
    assert one(report, ALL, "contact_rate").why == "no accounts attempted: no rate"
    out = Console(record=True, width=200)
    render(out, report)
    assert "no accounts attempted: no rate" in out.export_text()
    paths = write_plots(report, tmp_path / "png")
    assert [p.name for p in paths] == list(PLOTS)
    for path in paths:
        assert_png(path)
    assert NO_DATA == "no data yet"


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.size == (900, 550)


async def test_the_plots_of_a_campaign_with_calls_and_arms(store: Store, tmp_path: Path) -> None:
    arms = {f"A{i}": "short" if i % 2 else "champion" for i in range(14)}
    campaign = await campaign_of(store, 14, arms)
    await calls(store, campaign.id, PLAN)
    paths = await report_png(store, campaign, TODAY, tmp_path / "png")
    assert [p.name for p in paths] == list(PLOTS)
    for path in paths:
        assert_png(path)
    empty = await campaign_of_other(store)
    blank = await report_png(store, empty, TODAY, tmp_path / "blank")
    # A funnel with bars holds more ink than the "no data yet" figure.
    assert paths[0].stat().st_size > blank[0].stat().st_size


async def campaign_of_other(store: Store) -> Campaign:
    return await store.create_campaign("empty", NOW)


async def test_the_csv_has_one_row_per_group_and_metric_and_no_formulas(store: Store, tmp_path: Path) -> None:
    arms = {f"A{i}": "=HYPERLINK(1)" if i % 2 else "champion" for i in range(14)}
    campaign = await campaign_of(store, 14, arms)
    await calls(store, campaign.id, PLAN)
    report = await build_report(store, campaign, by="arm", since=None, today=TODAY)
    path = write_csv(report, tmp_path / "r.csv")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["group", "metric", "numerator", "denominator", "value", "low", "high", "note"]
    assert {r["metric"] for r in rows} <= {m.key for m in METRICS}
    contact = next(r for r in rows if (r["group"], r["metric"]) == (ALL, "contact_rate"))
    expected = stats.proportion(8, 13)
    assert (contact["numerator"], contact["denominator"]) == ("8", "13")
    assert float(contact["value"]) == pytest.approx(8 / 13, abs=1e-6)
    assert float(contact["low"]) == pytest.approx(expected.low, abs=1e-6)
    assert float(contact["high"]) == pytest.approx(expected.high, abs=1e-6)
    groups = {r["group"] for r in rows}
    assert "'=HYPERLINK(1)" in groups and "=HYPERLINK(1)" not in groups  # shown as text, never run
    assert all(not r["group"].startswith(("=", "+", "@")) for r in rows)
    differences = [r for r in rows if r["group"].endswith(" - champion")]
    rates, amounts = [r for r in differences if r["metric"] != "recovery_rate"], differences[-1:]
    assert len(rates) == 4 and all("Newcombe" in r["note"] for r in rates)
    assert amounts[0]["metric"] == "recovery_rate" and "bootstrap" in amounts[0]["note"]
    promise = next(r for r in rows if (r["group"], r["metric"]) == (ALL, "promise_rate"))
    assert promise["low"] == "" and "too few for an interval" in promise["note"]


def test_the_champion_is_named_champion_else_the_strategys_first_arm(tmp_path: Path) -> None:
    strategy = tmp_path / "s.yaml"
    strategy.write_text(
        "name: s\narms:\n  variants:\n    - {name: steady}\n    - {name: bold}\n", encoding="utf-8"
    )
    assert champion_of(["bold", "steady"], str(strategy)) == ("steady", f"the first arm of {strategy}")
    assert champion_of(["bold", "champion"], str(strategy))[0] == "champion"
    name, why = champion_of(["bold", "steady"], str(tmp_path / "gone.yaml"))
    assert name == "bold" and "the first arm by name" in why and "gone.yaml" in why
    assert champion_of([], "") == ("", "no arms")


async def test_a_report_by_something_unknown_is_refused(store: Store) -> None:
    campaign = await campaign_of(store, 1)
    with pytest.raises(ValueError, match="by one of"):
        await build_report(store, campaign, by="hour", since=None, today=TODAY)


async def test_since_is_the_periods_start(store: Store) -> None:
    campaign = await campaign_of(store, 2)
    report = await build_report(store, campaign, by="", since=date(2026, 11, 1), today=TODAY)
    assert (report.start, report.today) == (date(2026, 11, 1), TODAY)
    default = await build_report(store, campaign, by="", since=None, today=TODAY)
    assert default.start == NOW.date()  # the campaign's first day


def late_account(account_id: str, due: date) -> AccountRecord:
    return AccountRecord(
        account_id,
        f"D-{account_id}",
        "T",
        f"+1202555{2000 + int(account_id[1:]):04d}",
        "US",
        ("America/New_York",),
        False,
        10000,
        "USD",
        due,
        "en-US",
    )


async def pay(store: Store, account_id: str, amount: int, day: date, n: int) -> None:
    """A date-only payment through the import's own checks."""
    accounts = await store.accounts_named([account_id])
    paid_at = datetime(day.year, day.month, day.day, tzinfo=UTC)
    payment = balance.Payment(f"P{n}", amount, "USD", paid_at, day)
    good, bad = check_against_accounts([PaymentRecord(2, "", account_id, payment)], accounts, NOW)
    assert not bad, bad
    import_id = await store.start_payment_import("p.csv", NOW)
    await store.payment_import_batch(import_id, 1, good, [], NOW)


async def test_the_money_cures_recovery_entries_rolls_and_amounts_per_arm(store: Store) -> None:
    nov1, nov20, since = date(2026, 11, 1), date(2026, 11, 20), date(2026, 11, 10)
    # B0..B11 due November 1st (late at the period's start), B12 and B13 due November 20th.
    records = [late_account(f"B{i}", nov1) for i in range(12)] + [
        late_account(f"B{i}", nov20) for i in (12, 13)
    ]
    await store.upsert_accounts(records, NOW)
    campaign = await store.create_campaign("m", NOW)
    await store.add_targets(campaign.id, NOW)
    accounts = await store.accounts_named([r.account_id for r in records[:12]])
    drawn = [
        ArmAssignment(a.pk, a.account_id, "short" if int(a.account_id[1:]) % 2 else "champion", ("M1",), 7)
        for a in accounts.values()
    ]
    await store.save_arms(campaign.id, drawn, NOW, "operator:test")
    for n, account_id in enumerate(["B0", "B1", "B2", "B3"]):
        await pay(store, account_id, 10000, date(2026, 11, 20), n)  # in full: cured
    await pay(store, "B4", 3000, date(2026, 11, 25), 4)  # in part
    await pay(store, "B12", 10000, date(2026, 11, 19), 5)  # before its due date: never entered
    report = await build_report(store, campaign, by="", since=since, today=TODAY)

    # Late at the start: B0..B11 (12); cured B0..B3; owed 120000, paid 43000 by 5 accounts.
    assert_wilson(one(report, ALL, "cure_rate"), 4, 12)
    recovery = one(report, ALL, "recovery_rate")
    assert (recovery.numerator, recovery.denominator, recovery.value) == (43000, 120000, 43000 / 120000)
    assert recovery.note == "USD; 5 accounts paid" and recovery.proportion is None
    assert format_cell(recovery) == "35.8% 430.00/1,200.00 USD; 5 accounts paid"
    # Due in the period (Nov 10 to Dec 1): B12 (paid before) and B13 (unpaid on its first day late).
    assert_wilson(one(report, ALL, "entry_rate"), 1, 2)
    assert one(report, ALL, "promise_kept_rate").why == "no promises due: no rate"
    # The store's rows, as they came, behind the cells and the plots.
    [whole] = await store.cures(campaign.id, since, TODAY)
    assert (whole.late_at_start, whole.cured, whole.overdue_minor, whole.recovered_minor) == (
        12,
        4,
        120000,
        43000,
    )
    rolls = await store.roll_matrix(campaign.id, roll_months(report.start, TODAY), TODAY)
    assert [(r.month, r.from_bucket, r.to_bucket, r.accounts) for r in report.roll_matrix] == [
        (r.month, r.from_bucket, r.to_bucket, r.accounts) for r in rolls
    ]
    november_m0 = next(c for c in report.roll_rates if c.group == "2026-11 M0")
    rolled = sum(r.accounts for r in rolls if (r.month, r.from_bucket, r.to_bucket) == (nov1, "M0", "M1"))
    started = sum(r.accounts for r in rolls if (r.month, r.from_bucket) == (nov1, "M0"))
    assert_wilson(november_m0, rolled, started)
    assert november_m0.note == "M0 to M1"
    assert (rolled, started) == (9, 14)  # all 14 current on Nov 1; B4..B11 and B13 late on Dec 1
    assert report.curves and {p.currency for p in report.curves} == {"USD"}

    # Amounts per assigned account, 0 for those that paid nothing (intention to treat).
    assert report.arms is not None
    [champion, short] = report.arms.amounts
    assert (champion.arm, champion.currency, short.arm) == ("champion", "USD", "short")
    assert champion.amount == stats.mean_amount([10000, 10000, 3000, 0, 0, 0])  # B0 B2 B4 B6 B8 B10
    assert short.difference == stats.amount_difference(
        [10000, 10000, 3000, 0, 0, 0], [10000, 10000, 0, 0, 0, 0]
    )
    assert "fewer than 20" in (champion.amount.why_no_interval or "")
    cure = {c.group: c for c in report.arms.rates if c.metric == "cure_rate"}
    assert_wilson(cure["champion"], 2, 6)  # B0 B2 of B0 B2 B4 B6 B8 B10
    assert_wilson(cure["short"], 2, 6)


async def test_amounts_per_arm_are_never_added_across_currencies(store: Store) -> None:
    usd = [late_account(f"U{i}", date(2026, 11, 1)) for i in range(2)]
    cny = [replace(late_account(f"C{i}", date(2026, 11, 1)), currency="CNY") for i in range(2)]
    await store.upsert_accounts([*usd, *cny], NOW)
    campaign = await store.create_campaign("two", NOW)
    await store.add_targets(campaign.id, NOW)
    accounts = await store.accounts_named([r.account_id for r in (*usd, *cny)])
    drawn = [
        ArmAssignment(a.pk, a.account_id, "champion" if a.account_id.endswith("0") else "b", ("M1",), 7)
        for a in accounts.values()
    ]
    await store.save_arms(campaign.id, drawn, NOW, "operator:test")
    report = await build_report(store, campaign, by="arm", since=None, today=TODAY)
    assert report.arms is not None
    assert [(a.arm, a.currency, a.amount.count) for a in report.arms.amounts] == [
        ("champion", "CNY", 1),
        ("b", "CNY", 1),
        ("champion", "USD", 1),
        ("b", "USD", 1),
    ]


async def test_a_grouping_a_query_cannot_split_by_is_shown_for_all_with_a_note(store: Store) -> None:
    campaign = await campaign_of(store, 14)
    await calls(store, campaign.id, PLAN)
    report = await build_report(store, campaign, by="step", since=None, today=TODAY)
    assert report.groups == (ALL, NO_GROUP)  # calls outside a strategy have no step
    assert_wilson(one(report, NO_GROUP, "contact_rate"), 8, 13)
    assert one(report, NO_GROUP, "cure_rate").why == "not counted by step (see the notes)"
    assert_wilson(one(report, ALL, "cure_rate"), 0, 14)  # due December 1st, unpaid on the 2nd
    assert [n.split(":")[0] for n in report.notes] == ["cures", "entries"]


def test_the_roll_matrix_starts_at_the_period_s_month_and_keeps_at_most_six() -> None:
    assert roll_months(date(2026, 12, 1), date(2026, 12, 31)) == 1  # a campaign begun this month
    assert roll_months(date(2026, 10, 31), date(2026, 12, 1)) == 3  # October, November, December
    assert roll_months(date(2025, 1, 1), date(2026, 12, 1)) == ROLL_MONTHS

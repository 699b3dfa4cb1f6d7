"""Champion/challenger arms (issue 13, items 5 and 6): the `arms:` format and its load-time refusals
naming file, line and field; each arm's strategy; stratified permuted-block assignment balanced,
stable when accounts are added and reproducible from its seed; assignments stored once, never
changed, each with its audit event, for 100,000 accounts in one call."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from audit.verify import verify
from dialer.core.errors import StrategyError
from dialer.core.models import Account
from dialer.store import SqliteStore, Store
from dialer.strategy.arms import ArmAssignment, Stratum, assign, stratum, variant
from dialer.strategy.decide import AccountView, HistoryView, Proposal, next_contact
from dialer.strategy.loader import Known, load_strategy
from dialer.strategy.model import Arms, Contact, Strategy
from tests.support.project import PROJECT_ROOT
from tests.support.raw_db import executemany
from tests.support.records import record
from tests.support.stores import SQLITE_ONLY, backend_store

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SCRIPTS = {p.stem for p in (PROJECT_ROOT / "ivr" / "scripts").glob("*.yaml")}
KNOWN = Known(SCRIPTS, {"before_due", "due_today", "missed_call"})

BASE = """\
name: test
pack: us-regf
rules:
  promise_broken: {channel: voice, script: reminder-en-US, per_day: 1, interval: 4h}
  no_answer:
    after: 3
    switch: {channel: sms, message: missed_call, per_day: 1, interval: 1d}
segments:
  - name: korean
    where: {locale: ko-KR}
    rules:
      partially_paid: {channel: voice, script: reminder-en-US, per_day: 1, interval: 4h}
    steps:
      - {days: 0, channel: sms, message: due_today, per_day: 1, interval: 1d}
      - {days: 1+, channel: voice, script: reminder-ko-KR, per_day: 1, interval: 20h}
  - name: everyone
    steps:
      - {days: 0, channel: sms, message: due_today, per_day: 1, interval: 1d}
      - {days: 1+, channel: voice, script: reminder-en-US, per_day: 1, interval: 20h}
"""
ARMS = """\
arms:
  stratify: [bucket, risk_band]
  seed: 20261201
  variants:
    - {name: champion, weight: 1}
    - {name: short, weight: 1, scripts: {reminder-en-US: reminder-zh-CN}, messages: {due_today: before_due}}
    - {name: gentle, weight: 1, strategy: gentle.yaml}
"""
GENTLE = BASE.replace("name: test", "name: gentle").replace("interval: 20h", "interval: 44h")


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(StrategyError) as caught:
        load_strategy(write(tmp_path, text), KNOWN)
    return caught.value.problems


def arms_of(*weights: int, stratify: tuple[str, ...] = ("bucket",)) -> Arms:
    variants = [{"name": f"arm{i}", "weight": w} for i, w in enumerate(weights)]
    return Arms.model_validate({"stratify": list(stratify), "variants": variants})


def population(n: int, seed: int = 7) -> list[tuple[str, Stratum]]:
    """n accounts (A00001 ...) over three strata of unequal sizes, in account id order."""
    rng = random.Random(seed)
    strata = rng.choices([("M0",), ("M1",), ("M2",)], weights=[6, 3, 1], k=n)
    return [(f"A{i:05d}", strata[i]) for i in range(n)]


def assert_within_one_block(arms: Arms, accounts: list[tuple[str, Stratum]], chosen: dict[str, str]) -> None:
    """At every moment (after each account, in order), each stratum's arms are within one block."""
    weights = {v.name: v.weight for v in arms.variants}
    block = sum(weights.values())
    running: dict[Stratum, Counter[str]] = {}
    for key, where in accounts:
        counts = running.setdefault(where, Counter())
        counts[chosen[key]] += 1
        n = sum(counts.values())
        for name, weight in weights.items():
            assert abs(counts[name] - n * weight / block) <= weight, (where, n, counts)


# ------------------------------------------------------------------ assignment


@pytest.mark.parametrize("weights", [(1, 1), (2, 1), (1, 1, 1)])
def test_each_stratum_stays_within_one_block_of_the_weights(weights: tuple[int, ...]) -> None:
    arms = arms_of(*weights)
    accounts = population(10_000)
    chosen = assign(arms, 20261201, accounts)
    assert set(chosen) == {key for key, _ in accounts}
    assert_within_one_block(arms, accounts, chosen)
    totals = Counter(chosen.values())  # and overall: within one block per stratum (3 strata)
    for i, weight in enumerate(weights):
        assert abs(totals[f"arm{i}"] - 10_000 * weight / sum(weights)) <= 3 * weight


def test_a_coin_per_account_would_not_have_been_balanced() -> None:
    """Why blocks (arms.py): the same accounts split by a coin leave a stratum far off 1:1."""
    rng = random.Random(1)
    accounts = population(10_000)
    coin = {key: rng.choice(["arm0", "arm1"]) for key, _ in accounts}
    with pytest.raises(AssertionError):
        assert_within_one_block(arms_of(1, 1), accounts, coin)


@pytest.mark.parametrize("weights", [(1, 1), (2, 1)])
def test_accounts_added_later_keep_balance_and_the_first_keep_their_arms(weights: tuple[int, ...]) -> None:
    arms = arms_of(*weights)
    everyone = population(10_500)
    first, later = everyone[:10_000], everyone[10_000:]
    before = assign(arms, 5, first)
    taken: dict[Stratum, Counter[str]] = {}
    for key, where in first:
        taken.setdefault(where, Counter())[before[key]] += 1
    after = assign(arms, 5, later, taken)
    assert set(after) == {key for key, _ in later}
    assert_within_one_block(arms, everyone, {**before, **after})
    assert {**before, **after} == assign(arms, 5, everyone)  # the same as one call for all


def test_later_accounts_after_a_foreign_split_fill_the_arm_behind_first() -> None:
    arms = arms_of(1, 1)
    taken = {("M1",): Counter({"arm0": 7, "arm1": 1})}
    later = assign(arms, 5, [(f"B{i}", ("M1",)) for i in range(10)], taken)
    assert [later[f"B{i}"] for i in range(6)] == ["arm1"] * 6
    assert Counter(later.values()) + taken[("M1",)] == Counter({"arm0": 9, "arm1": 9})


def test_the_same_seed_gives_the_same_arms_in_any_process_and_another_seed_others(tmp_path: Path) -> None:
    arms = arms_of(1, 1, stratify=("bucket", "risk_band"))
    accounts = [(key, (*where, "low" if int(key[1:]) % 3 else "high")) for key, where in population(2_000)]
    once = assign(arms, 42, accounts)
    assert assign(arms, 42, accounts) == once
    other = assign(arms, 43, accounts)
    differ = sum(once[k] != other[k] for k in once)
    assert 800 < differ < 1200, differ  # about half, as two independent fair draws
    program = (
        "import json, sys\n"
        "from dialer.strategy.arms import assign\n"
        "from dialer.strategy.model import Arms\n"
        "arms, accounts = json.load(sys.stdin)\n"
        "chosen = assign(Arms.model_validate(arms), 42, [(k, tuple(s)) for k, s in accounts])\n"
        "print(json.dumps(chosen))\n"
    )
    for hashseed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        given = json.dumps([arms.model_dump(), accounts])
        done = subprocess.run(
            [sys.executable, "-c", program], input=given, capture_output=True, text=True, env=env,
            cwd=PROJECT_ROOT, check=True, timeout=60,
        )  # fmt: skip
        assert json.loads(done.stdout) == once


def test_stratum_takes_the_columns_in_order_and_an_absent_one_as_empty() -> None:
    arms = arms_of(1, 1, stratify=("bucket", "risk_band", "locale"))
    assert stratum(arms, {"locale": "en-US", "bucket": "M1"}) == ("M1", "", "en-US")


def test_assigning_100000_accounts_is_quick() -> None:
    accounts = population(100_000)
    started = time.perf_counter()
    chosen = assign(arms_of(1, 1), 9, accounts)
    elapsed = time.perf_counter() - started
    assert len(chosen) == 100_000 and elapsed < 5, elapsed  # about 0.4 s here


# ------------------------------------------------------------------ the store


__all__ = ["backend_store"]  # the fixture, on both backends


@pytest.fixture
async def store(backend_store: Store) -> Store:
    await backend_store.upsert_accounts([record(f"A{i}") for i in range(1, 5)], NOW)
    return backend_store


def arm_events(db: Path) -> list[tuple[int, str, dict[str, object]]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT campaign_id, account_id, data FROM audit_events WHERE kind='arm.assigned' ORDER BY seq"
        ).fetchall()
    conn.close()
    return [(c, a, json.loads(d)) for c, a, d in rows]


@SQLITE_ONLY  # reads the database file
async def test_save_arms_stores_each_once_never_changes_one_and_audits_each(
    tmp_path: Path, store: Store
) -> None:
    campaign = await store.create_campaign("november", NOW)
    pks = {f"A{i}": await _pk(store, f"A{i}") for i in range(1, 5)}

    def made(account_id: str, arm: str) -> ArmAssignment:
        return ArmAssignment(pks[account_id], account_id, arm, ("M1", "low"), 20261201)

    first = [made("A1", "champion"), made("A2", "short")]
    assert await store.save_arms(campaign.id, first, NOW) == 2
    again = [made("A1", "short"), made("A2", "champion"), made("A3", "gentle"), made("A3", "short")]
    assert await store.save_arms(campaign.id, again, NOW, actor="cli") == 1
    assert await store.arms(campaign.id) == {pks["A1"]: "champion", pks["A2"]: "short", pks["A3"]: "gentle"}
    assert await store.arm_counts(campaign.id) == {
        ("M1", "low"): Counter({"champion": 1, "short": 1, "gentle": 1})
    }
    events = arm_events(tmp_path / "t.db")
    assert [(a, d["arm"]) for _, a, d in events] == [("A1", "champion"), ("A2", "short"), ("A3", "gentle")]
    assert events[0] == (campaign.id, "A1", {"arm": "champion", "stratum": ["M1", "low"], "seed": 20261201})
    report = verify(tmp_path / "t.db")
    assert report.ok and report.broken is None, report
    other = await store.create_campaign("december", NOW)  # another campaign: its own arms
    assert await store.save_arms(other.id, [made("A1", "short")], NOW) == 1
    assert (await store.arms(other.id), (await store.arms(campaign.id))[pks["A1"]]) == (
        {pks["A1"]: "short"},
        "champion",
    )


@SQLITE_ONLY  # reads the database file
async def test_campaign_accounts_added_later_keep_their_arms_through_the_store(
    tmp_path: Path, store: Store
) -> None:
    """Assign, store, add accounts; assigning everyone again (another seed even) changes no stored arm."""
    arms = arms_of(2, 1)
    campaign = await store.create_campaign("november", NOW)
    accounts = [(f"A{i}", await _pk(store, f"A{i}")) for i in range(1, 5)]
    strata = {key: ("M1",) for key, _ in accounts}

    async def save(members: list[tuple[str, int]], seed: int) -> None:
        taken = await store.arm_counts(campaign.id)
        chosen = assign(arms, seed, [(key, strata[key]) for key, _ in members], taken)
        rows = [ArmAssignment(pk, key, chosen[key], strata[key], seed) for key, pk in members]
        await store.save_arms(campaign.id, rows, NOW)

    await save(accounts[:3], 1)
    before = await store.arms(campaign.id)
    await save(accounts, 99)  # every account again: only A4 is new
    after = await store.arms(campaign.id)
    assert {pk: after[pk] for pk in before} == before and len(after) == 4
    counts = (await store.arm_counts(campaign.id))[("M1",)]  # block 0 (2:1) full, then one of block 1
    assert counts.total() == 4 and counts["arm0"] in (2, 3) and counts["arm1"] in (1, 2)
    assert verify(tmp_path / "t.db").ok


async def _pk(store: Store, account_id: str) -> int:
    found = await store.account(account_id)
    assert found is not None
    return found.pk


async def test_save_arms_stores_100000_assignments_in_one_call_quickly(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    opened = await SqliteStore.open(db)
    await opened.close()
    rows = [
        (i, f"A{i:06d}", "D", "N", "+12025550101", "US", '["America/New_York"]', 0, 100, "USD",
         "2026-12-01", "en-US", "2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z")
        for i in range(1, 100_001)
    ]  # fmt: skip
    columns = (
        "id, account_id, debt_id, name, phone_e164, region, time_zones, tz_derived, amount_minor, "
        "currency, due_date, language, created_at, updated_at"
    )
    executemany(db, f"INSERT INTO accounts ({columns}) VALUES ({','.join('?' * 14)})", rows)
    store = await SqliteStore.open(db)
    try:
        campaign = await store.create_campaign("big", NOW)
        accounts = [(pk, (("M0", "M1", "M2")[pk % 3],)) for pk in range(1, 100_001)]
        started = time.perf_counter()
        chosen = assign(arms_of(1, 1), 3, accounts)
        made = [ArmAssignment(pk, f"A{pk:06d}", chosen[pk], where, 3) for pk, where in accounts]
        stored = await store.save_arms(campaign.id, made, NOW)
        elapsed = time.perf_counter() - started
        counts = await store.arm_counts(campaign.id)
    finally:
        await store.close()
    assert stored == 100_000 and elapsed < 20, elapsed  # about 2.1 s here (assign 0.4 s, save_arms 1.7 s)
    assert all(abs(c["arm0"] - c["arm1"]) <= 1 for c in counts.values()), counts
    assert len(arm_events(db)) == 100_000 and verify(db).ok


# ------------------------------------------------------------------ the format and each arm's strategy


@pytest.fixture
def loaded(tmp_path: Path) -> Strategy:
    write(tmp_path, GENTLE, "gentle.yaml")
    return load_strategy(write(tmp_path, BASE + ARMS), KNOWN)


def test_the_champion_is_the_file_itself(loaded: Strategy) -> None:
    assert variant(loaded, None) is loaded and variant(loaded, "champion") is loaded
    assert loaded.arms is not None and loaded.arms.stratify == ["bucket", "risk_band"]
    assert loaded.arms.seed == 20261201


def test_a_renaming_arm_renames_every_step_rule_and_switch(loaded: Strategy) -> None:
    short = variant(loaded, "short")
    assert short is variant(loaded, "short") and short.arms is None  # built once, at load
    assert short.rules.promise_broken is not None and short.rules.promise_broken.script == "reminder-zh-CN"
    assert short.rules.no_answer is not None and short.rules.no_answer.switch is not None
    assert short.rules.no_answer.switch.message == "missed_call"  # not renamed: not in the arm's messages
    korean, everyone = short.segments
    assert [s.message or s.script for s in korean.steps] == ["before_due", "reminder-ko-KR"]
    assert [s.message or s.script for s in everyone.steps] == ["before_due", "reminder-zh-CN"]
    assert korean.rules.partially_paid is not None and korean.rules.partially_paid.script == "reminder-zh-CN"
    assert short.rules_for(korean).promise_broken == short.rules.promise_broken  # set where it was set
    assert short.rules_for(everyone).partially_paid is None
    champion_contacts = [s.script or s.message for s in loaded.segments[1].steps]
    assert champion_contacts == ["due_today", "reminder-en-US"]  # the champion is untouched


def test_a_strategy_file_arm_runs_that_strategy(loaded: Strategy, tmp_path: Path) -> None:
    gentle = variant(loaded, "gentle")
    assert gentle.name == "gentle" and gentle.file == str(tmp_path / "gentle.yaml")
    assert all(s.interval.total_seconds() in (86400, 44 * 3600) for seg in gentle.segments for s in seg.steps)


def test_decisions_on_an_arm_use_its_contacts(loaded: Strategy) -> None:
    acct = Account(1, "A1", "A1", "Ann", "+12025550101", ("UTC",), False, 10_000, "USD", NOW.date(), "en-US")
    due = NOW.replace(hour=10)
    picks = {}
    for arm in ("champion", "short", "gentle"):
        found = next_contact(variant(loaded, arm), AccountView(acct, (), ()), HistoryView(), due)
        assert isinstance(found, Proposal), found
        picks[arm] = found.message
    assert picks == {"champion": "due_today", "short": "before_due", "gentle": "due_today"}


def test_an_unknown_arm_is_an_error_naming_the_file_and_the_arms(loaded: Strategy) -> None:
    with pytest.raises(
        StrategyError, match=r"s\.yaml: arm 'other': no such arm \(arms: champion, short, gentle\)"
    ):
        variant(loaded, "other")


def test_a_strategy_not_read_by_the_loader_builds_renaming_arms_and_refuses_file_arms(
    loaded: Strategy,
) -> None:
    bare = Strategy.model_validate({**yaml.safe_load(BASE + ARMS), "file": loaded.file})
    assert dict(bare.variants) == {}
    assert variant(bare, "short") == variant(loaded, "short")
    with pytest.raises(StrategyError, match=r"arm 'gentle': runs gentle\.yaml, not loaded"):
        variant(bare, "gentle")


def test_a_strategy_without_arms_loads_as_before(tmp_path: Path) -> None:
    plain = load_strategy(write(tmp_path, BASE), KNOWN)
    assert plain.arms is None and variant(plain, None) is plain and dict(plain.variants) == {}


def _arms(*variants: str, head: str = "") -> str:
    return BASE + "arms:\n" + head + "  variants:\n" + "".join(f"    - {v}\n" for v in variants)


CHAMPION = "{name: champion}"
BASE_LINES = BASE.count("\n")  # "arms:" is line BASE_LINES + 1


B = "{name: b"  # a challenger, finished by each case
SCRIPT, WEIGHT = "arms.variants[1].scripts", "arms.variants[1].weight: Input should be"


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        (_arms(CHAMPION), 2, "arms.variants: List should have at least 2 items"),
        (_arms(*[f"{{name: a{i}}}" for i in range(9)]), 2, "arms.variants: List should have at most 8 items"),
        (_arms(CHAMPION, CHAMPION), 4, "arms.variants[1].name: arm 'champion' is named twice"),
        (_arms(CHAMPION, B + ", weight: 0}"), 4, f"{WEIGHT} greater than or equal to 1"),
        (_arms(CHAMPION, B + ", weight: 101}"), 4, f"{WEIGHT} less than or equal to 100"),
        (_arms(CHAMPION, B + ", weight: '2'}"), 4, f"{WEIGHT} a valid integer"),
        (
            _arms(CHAMPION, B + ", scripts: {reminder-en-US: reminder-en-US-short}}"),
            4, f"{SCRIPT}.reminder-en-US: no IVR script named 'reminder-en-US-short'",
        ),
        (
            _arms(CHAMPION, B + ", scripts: {reminder-zh-CN: reminder-en-US}}"),
            4, f"{SCRIPT}.reminder-zh-CN: this strategy never uses IVR script 'reminder-zh-CN'",
        ),
        (
            _arms(CHAMPION, B + ", messages: {due_today: due_today_short}}"),
            4, "arms.variants[1].messages.due_today: no template message named 'due_today_short'",
        ),
        (
            _arms("{name: champion, scripts: {reminder-en-US: reminder-zh-CN}}", "{name: b}"),
            3, "arms.variants[0]: the first arm is the champion",
        ),
        (
            _arms(CHAMPION, B + ", strategy: s.yaml, messages: {due_today: before_due}}"),
            4, "arms.variants[1].strategy: an arm is another strategy file or renames",
        ),
        (_arms(CHAMPION, B + ", strategy: missing.yaml}"), 4, "arms.variants[1].strategy: no strategy file "),
        (  # itself: an arm's file with arms
            _arms(CHAMPION, B + ", strategy: s.yaml}"),
            4, "arms.variants[1].strategy: s.yaml has arms of its own",
        ),
        (
            _arms(CHAMPION, "{name: b}", head="  stratify: [bucket, bucket]\n"),
            2, "arms.stratify[1]: column 'bucket' is named twice",
        ),
        (
            _arms(CHAMPION, "{name: b}", head="  seed: -1\n"),
            2, "arms.seed: Input should be greater than or equal to 0",
        ),
        (_arms(CHAMPION, B + ", colour: red}"), 4, "arms.variants[1].colour: Extra inputs"),
    ],
)  # fmt: skip
def test_bad_arms_are_refused_naming_file_line_and_field(
    tmp_path: Path, text: str, line: int, expected: str
) -> None:
    found = problems(tmp_path, text)
    start = f"{tmp_path / 's.yaml'}:{BASE_LINES + line}: {expected}"
    assert any(p.startswith(start) for p in found), found


def test_an_arm_file_for_another_pack_is_refused(tmp_path: Path) -> None:
    write(tmp_path, GENTLE.replace("pack: us-regf", "pack: cn").replace("reminder-en-US", "reminder-zh-CN")
          .replace("reminder-ko-KR", "reminder-zh-CN"), "cn.yaml")  # fmt: skip
    found = problems(tmp_path, _arms(CHAMPION, "{name: b, strategy: cn.yaml}"))
    assert found == [
        f"{tmp_path / 's.yaml'}:{BASE_LINES + 4}: arms.variants[1].strategy: cn.yaml is written for pack cn, "
        "this strategy for us-regf: one pack"
    ]


def test_an_arm_files_own_problems_name_that_file(tmp_path: Path) -> None:
    write(tmp_path, GENTLE.replace("message: due_today", "message: due_tomorrow"), "gentle.yaml")
    found = problems(tmp_path, _arms(CHAMPION, "{name: b, strategy: gentle.yaml}"))
    gentle = str(tmp_path / "gentle.yaml")
    assert found and all(p.startswith(gentle + ":") for p in found), found
    assert f"{gentle}:14: segments[0].steps[0].message: no template message 'due_tomorrow'" in found[0]


def test_the_champion_and_a_renaming_arm_are_refused_together_with_other_problems(tmp_path: Path) -> None:
    """Every problem at once: the file's own and its arms'."""
    text = _arms(CHAMPION, "{name: champion}").replace(
        "per_day: 1, interval: 20h", "per_day: 9, interval: 20h"
    )
    found = problems(tmp_path, text)
    assert any("per_day: 9 a day is more than pack us-regf allows" in p for p in found)
    assert any("arms.variants[1].name: arm 'champion' is named twice" in p for p in found)


def test_an_arm_file_naming_itself_through_another_stops(tmp_path: Path) -> None:
    """a.yaml's arm is b.yaml whose arm is a.yaml: refused at once, never a loop."""
    write(tmp_path, _arms(CHAMPION, "{name: x, strategy: b.yaml}"), "a.yaml")
    write(tmp_path, _arms(CHAMPION, "{name: y, strategy: a.yaml}"), "b.yaml")
    started = time.perf_counter()
    with pytest.raises(StrategyError) as caught:
        load_strategy(tmp_path / "a.yaml", KNOWN)
    assert time.perf_counter() - started < 5
    assert caught.value.problems == [
        f"{tmp_path / 'a.yaml'}:{BASE_LINES + 4}: arms.variants[1].strategy: b.yaml has arms of its own: "
        "an arm runs one strategy"
    ]


def test_contact_renames_leave_the_other_channel_alone(loaded: Strategy) -> None:
    """A script rename touches calls only, a message rename texts only."""
    short = variant(loaded, "short")
    contacts: list[Contact] = [s for seg in short.segments for s in seg.steps]
    assert all((c.script is None) == (c.channel == "sms") for c in contacts)

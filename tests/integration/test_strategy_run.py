"""The dry run agrees with the run: the same contacts on the same days, through the real Asterisk
and the real Kannel (issue 13 items 3, 4 and 6).

`duecall campaign plan` is asked first, for each account; then `duecall run` is driven day by day
with a settable clock, at every moment the plan said a contact would be made and twice more each
day, and what it did is compared with the plan. The simulated borrowers are busy (the plan's
assumption: nobody answers, nobody replies); one account is paid in full and is never contacted.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dialer.asterisk.host import AmiCredentials
from dialer.core.balance import Payment
from dialer.core.clock import FixedClock
from dialer.core.config import Settings
from dialer.store import SqliteStore
from dialer.store.payments import NewPayment
from dialer.strategy.plan import plan
from duecall import steered
from duecall.runtime import dial
from sms import kannel
from tests.support.config import make_settings
from tests.support.handsets import connected_handsets
from tests.support.records import borrower

pytestmark = pytest.mark.asterisk

PORTS = {"admin_port": 13900, "smsbox_port": 13901, "sendsms_port": 13913, "fake_port": 13920}
RECEIVER = 13930
STRATEGY = Path(__file__).parents[2] / "dialer/strategy/strategies/us-regf.yaml"
NY = ZoneInfo("America/New_York")
START = datetime(2026, 12, 7, 9, tzinfo=NY).astimezone(UTC)  # a Monday, 09:00 in New York
DAYS = 4
# Every number ending 0130 is a busy borrower in the simulated carrier (asterisk/conf).
ACCOUNTS = {
    "S3": ("+12025550130", 3),  # due in three days: a text on day -3 and on the due day
    "S0": ("+12125550130", 0),  # due today: a text, then a call a day
    "L5": ("+13125550130", -5),  # five days late: a call a day
    "PD": ("+14155550130", -5),  # five days late, paid in full: never contacted
}


@pytest.fixture
def settings(work_dir: Path) -> Iterator[Settings]:
    s = make_settings(
        work_dir,
        dialer={"amd": False, "ring_timeout": "2s"},
        sms={"state_dir": str(work_dir / "sms"), **PORTS, "receiver_port": RECEIVER},
    )
    kannel.start(s.sms, s.path(s.sms.state_dir))
    try:
        with connected_handsets(s):
            yield s
    finally:
        kannel.stop(s.sms, s.path(s.sms.state_dir))


async def _prepare(s: Settings) -> None:
    store = await SqliteStore.open(s.path(s.store.path))
    try:
        day = START.astimezone(NY).date()
        records = [
            dataclasses.replace(
                borrower(key, phone, "America/New_York"), due_date=day + timedelta(days=offset)
            )
            for key, (phone, offset) in ACCOUNTS.items()
        ]
        await store.upsert_accounts(records, START - timedelta(days=1))
        campaign = await store.create_campaign("plan", START)
        campaign = await steered.attach(store, s, campaign, STRATEGY, START, "operator:test")
        await store.add_targets(campaign.id, START)
        import_id = await store.start_payment_import("payments.csv", START)
        [paid] = (await store.accounts_named(["PD"])).values()
        payment = Payment("P1", paid.amount_minor, "USD", START - timedelta(hours=20))
        await store.payment_import_batch(import_id, 1, [NewPayment(2, "raw", paid.pk, payment)], [], START)
    finally:
        await store.close()


async def _made(s: Settings) -> Counter[tuple[str, date, str]]:
    """What the run did: (account, local day, channel) for every call placed and text written."""
    store = await SqliteStore.open(s.path(s.store.path))
    try:
        calls = await store.fetch_all(
            "SELECT a.account_id, t.decided_at FROM attempts t JOIN accounts a ON a.id=t.account_pk"
        )
        texts = await store.fetch_all(
            "SELECT a.account_id, m.decided_at FROM messages m JOIN accounts a ON a.id=m.account_pk"
        )
    finally:
        await store.close()
    found: Counter[tuple[str, date, str]] = Counter()
    for channel, rows in (("voice", calls), ("sms", texts)):
        for r in rows:
            found[(r[0], datetime.fromisoformat(r[1]).astimezone(NY).date(), channel)] += 1
    return found


async def test_the_plan_is_what_the_run_then_does(asterisk: AmiCredentials, settings: Settings) -> None:
    await _prepare(settings)
    inputs = await steered.plan_inputs(settings, "plan", START)
    expected: Counter[tuple[str, date, str]] = Counter()
    moments: set[datetime] = set()
    for account_id in ACCOUNTS:
        followed = plan(
            inputs.snapshots, inputs.strategy_of, inputs.gate, START, DAYS, inputs.campaign.id, account_id
        )
        for entry in followed.schedule:
            if entry.kind == "made":
                assert entry.channel is not None
                expected[(account_id, entry.local.date(), entry.channel)] += 1
                moments.add(entry.at)
    whole = plan(inputs.snapshots, inputs.strategy_of, inputs.gate, START, DAYS, inputs.campaign.id)
    assert whole.stopped and sum(whole.stopped.values()) == 1  # PD: paid in full
    assert expected, "the plan makes no contact: the test would prove nothing"
    assert {channel for *_, channel in expected} == {"voice", "sms"}
    for day in range(DAYS):
        for hour in (10, 20):  # and twice a day besides: the run must not do more than the plan
            moments.add(datetime(2026, 12, 7 + day, hour, tzinfo=NY).astimezone(UTC))

    clock = FixedClock(START)
    for moment in sorted(moments):
        if moment >= START + timedelta(days=DAYS):
            continue
        clock.at = moment
        await dial(settings, "plan", clock, timedelta(0))

    made = await _made(settings)
    assert made == expected
    assert whole.made("voice") == sum(n for (_, _, c), n in made.items() if c == "voice")
    assert whole.made("sms") == sum(n for (_, _, c), n in made.items() if c == "sms")
    assert not any(account == "PD" for account, _, _ in made)

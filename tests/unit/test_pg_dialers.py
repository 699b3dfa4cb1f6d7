"""Several dialers on one PostgreSQL database (issue 15 item 3): three stores, as three machines
would open them, claim the same campaign at once. No target is claimed twice, and a cap per
number holds across them: accounts sharing a phone number get one call between all dialers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

from dialer.core.models import Account, Decision, PastAttempt, Preferences, Reason
from dialer.store.postgres import PostgresStore
from tests.support.postgres import postgres_db, postgres_server
from tests.support.records import NOW, record

__all__ = ["postgres_db", "postgres_server"]  # the fixtures

PHONES = 20
ACCOUNTS = 60  # three accounts (three debts) per number


def one_call_per_number(
    account: Account, history: Sequence[PastAttempt], opted_out: bool, prefs: Preferences
) -> Decision:
    """A tight cap: a number called once is not called again (the history is read in the claim)."""
    if history:
        return Decision(False, (Reason("cap", f"{len(history)} call(s) already"),), None)
    return Decision(True)


async def _dial_all(store: PostgresStore, campaign_id: int, dialer: int) -> list[int]:
    """Claim every due target, as a dialer's loop would, each dialer from another place in the list
    (so that each wins some numbers: in one order, the quickest could take them all); the attempts
    this dialer placed."""
    placed = []
    due = await store.due_targets(campaign_id, NOW, ACCOUNTS)
    start = dialer * 7  # another number first (the numbers repeat every PHONES targets)
    for target in due[start:] + due[:start]:
        claimed = await store.claim(
            target, NOW, one_call_per_number, lambda i, _: f"/r/{i}", f"d{dialer}", NOW
        )
        if not isinstance(claimed, Decision):
            placed.append(claimed.id)
    return placed


async def test_three_dialers_never_claim_one_target_twice_and_keep_a_cap_per_number(postgres_db: str) -> None:
    stores = [await PostgresStore.open(postgres_db) for _ in range(3)]
    try:
        first = stores[0]
        phones = [f"+1202555{1000 + i % PHONES:04d}" for i in range(ACCOUNTS)]
        await first.upsert_accounts([record(f"A{i}", phones[i]) for i in range(ACCOUNTS)], NOW)
        campaign = await first.create_campaign("c", NOW)
        await first.add_targets(campaign.id, NOW)
        placed = await asyncio.gather(*[_dial_all(s, campaign.id, n) for n, s in enumerate(stores)])
        attempts = await first.attempts_for(campaign.id)
        by_dialer = await first.fetch_all("SELECT dialer_id, count(*) AS n FROM attempts GROUP BY dialer_id")
    finally:
        for s in stores:
            await s.close()
    per_phone = Counter(a["phone_e164"] for a in attempts)
    assert len(attempts) == sum(map(len, placed)) == PHONES  # one call per number, no more
    assert set(per_phone.values()) == {1}
    assert {r["dialer_id"]: r["n"] for r in by_dialer} == {f"d{n}": len(p) for n, p in enumerate(placed)}
    assert all(placed)  # each dialer placed calls: they really ran side by side

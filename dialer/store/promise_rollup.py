"""The promises' verdicts kept judged (migration 0016), so that a report counts them in one query.

Each promise is judged on every payment known: a verdict on day D is that one from the day it was
decided (`final_from`), pending before, exactly what `balance.evaluate_promise` gives on D (tested
against `promise_counts.count_verdicts`). An account is judged again when one of its facts changes
(the triggers mark it) or when the report's day gives its zones another decision zone.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, time

from dialer.core import balance
from dialer.core.vocab import PromiseState
from dialer.store.conn import Conn, take_batch
from dialer.store.db import Row, fetch_all, fetch_one
from dialer.store.promise_counts import judge, read_batch

BATCH_ACCOUNTS = 5000  # accounts judged per write transaction: about a quarter second of the writer

_PROMISE = "promise_to_pay"
# The first time: every account with a promise in the campaign (by a call or a text's answer).
MARK_ALL = f"""INSERT INTO report_promise_dirty
SELECT CAST(?1 AS BIGINT), account_pk FROM attempts WHERE campaign_id = ?1 AND outcome = '{_PROMISE}'
UNION SELECT ?1, i.account_pk FROM inbound_messages i JOIN messages m ON m.id = i.message_id
WHERE m.campaign_id = ?1 AND i.outcome = '{_PROMISE}' AND i.account_pk IS NOT NULL
ON CONFLICT DO NOTHING"""
_IN_BATCH = "account_pk IN (SELECT account_pk FROM promise_batch)"
GROUP_COLUMNS = {
    "": "''",
    "arm": "arm",
    "step": "step",
    "segment": "segment",
    "bucket": "bucket",
    "period": "week",
}
_DECIDED = "final_from <= ?2"
# A truth value (never NULL: both columns are NOT NULL) counted as CASE WHEN ... THEN 1 ELSE 0 END:
# PostgreSQL adds up no boolean.
VERDICTS = f"""SELECT {{group}} AS grp, count(*) AS promises,
    sum(CASE WHEN {_DECIDED} THEN 1 ELSE 0 END) AS due,
    sum(CASE WHEN {_DECIDED} AND state = '{PromiseState.KEPT}' THEN 1 ELSE 0 END) AS kept,
    sum(CASE WHEN {_DECIDED} AND state = '{PromiseState.PARTIALLY_KEPT}' THEN 1 ELSE 0 END) AS partially_kept,
    sum(CASE WHEN {_DECIDED} AND state = '{PromiseState.BROKEN}' THEN 1 ELSE 0 END) AS broken
FROM report_promises WHERE campaign_id = ?1 GROUP BY grp ORDER BY grp"""


def verdicts_sql(by: str) -> str:
    return VERDICTS.format(group=GROUP_COLUMNS[by])


async def mark_unjudged(db: Conn, campaign_id: int, today: date) -> None:
    """Mark what is to be judged besides what the triggers marked: the whole campaign the first
    time; the accounts whose zones decide in another zone on `today` than they were judged in."""
    built = "SELECT 1 FROM report_promises_built WHERE campaign_id = ?"
    if await fetch_one(db, built, (campaign_id,)) is None:
        await db.execute(MARK_ALL, (campaign_id,))
        await db.execute("INSERT INTO report_promises_built (campaign_id) VALUES (?)", (campaign_id,))
        return
    pairs = "SELECT DISTINCT zones, zone FROM report_promises WHERE campaign_id = ?"
    for r in await fetch_all(db, pairs, (campaign_id,)):
        if _decision_zone(r, today) != r["zone"]:
            await db.execute(
                "INSERT INTO report_promise_dirty SELECT campaign_id, account_pk FROM report_promises "
                "WHERE campaign_id = ? AND zones = ? AND zone = ? ON CONFLICT DO NOTHING",
                (campaign_id, r["zones"], r["zone"]),
            )


def _decision_zone(r: Row, today: date) -> str:
    moment = datetime.combine(today, time(12), UTC)
    return balance.decision_zone(json.loads(r["zones"]), moment).key


async def judge_batch(db: Conn, campaign_id: int, today: date) -> bool:
    """One batch of marked accounts judged again; False if none was marked."""
    if not await take_batch(db, "promise_batch", "report_promise_dirty", campaign_id, BATCH_ACCOUNTS):
        return False
    rows = await read_batch(db, campaign_id)
    judged = await asyncio.to_thread(judge, rows, today)
    mine = (campaign_id,)
    await db.execute(f"DELETE FROM report_promises WHERE campaign_id = ? AND {_IN_BATCH}", mine)
    await db.executemany(f"INSERT INTO report_promises VALUES ({','.join('?' * 13)})", judged)
    await db.execute(f"DELETE FROM report_promise_dirty WHERE campaign_id = ? AND {_IN_BATCH}", mine)
    return True

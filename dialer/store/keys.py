"""What an attempt's audit events are about: its campaign, its own id and the lender's account id."""

from __future__ import annotations

from dialer.core.models import Attempt
from dialer.store.conn import Conn
from dialer.store.db import fetch_one

Keys = tuple[int | None, int | None, str | None]
ATTEMPT_KEYS = (
    "SELECT t.campaign_id, a.account_id FROM attempts t JOIN accounts a ON a.id=t.account_pk WHERE t.id=?"
)


async def attempt_keys(db: Conn, attempt_id: int | None) -> Keys:
    """(campaign id, attempt id, account id) of an attempt, for its audit events."""
    if attempt_id is None:
        return None, None, None
    row = await fetch_one(db, ATTEMPT_KEYS, (attempt_id,))
    return (row["campaign_id"], attempt_id, row["account_id"]) if row else (None, None, None)


async def keys_of(db: Conn, attempt: Attempt) -> Keys:
    if attempt.account_id:
        return attempt.campaign_id, attempt.id, attempt.account_id
    return await attempt_keys(db, attempt.id)

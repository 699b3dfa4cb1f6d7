"""A campaign's state: started, paused and resumed, each change into the audit chain.

new -> running (start), running -> paused (pause), paused -> running (resume); nothing else. The
dialer reads the state as it runs (dialer/campaign/switch.py): a paused campaign claims no call
and sends no text, and what is under way finishes (docs/campaigns.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from dialer.core.errors import CampaignStateError, DueCallError
from dialer.core.models import Campaign
from dialer.core.vocab import CampaignState
from dialer.store.campaigns import CAMPAIGN_COLUMNS, campaign_from
from dialer.store.chain import AuditEvent
from dialer.store.chain import append as append_audit
from dialer.store.db import Database, fetch_one
from dialer.store.events import CampaignPaused, CampaignResumed, CampaignStarted, Record

S = CampaignState
CAMPAIGN_BY_ID = f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id=?"
STATE = "SELECT name, state FROM campaigns WHERE id=?"
SET_STATE = "UPDATE campaigns SET state=? WHERE id=? AND state=?"

# (from, to) -> the audit record of the change and its verb.
TRANSITIONS: dict[tuple[CampaignState, CampaignState], tuple[Callable[[str], Record], str]] = {
    (S.NEW, S.RUNNING): (CampaignStarted, "started"),
    (S.RUNNING, S.PAUSED): (CampaignPaused, "paused"),
    (S.PAUSED, S.RUNNING): (CampaignResumed, "resumed"),
}


def wanted_verb(state: CampaignState, expected: CampaignState | None) -> str:
    """What the caller asked for, in words, for the error that refuses it."""
    if expected is not None and (expected, state) in TRANSITIONS:
        return TRANSITIONS[expected, state][1]
    return {S.RUNNING: "started or resumed", S.PAUSED: "paused", S.NEW: "made new again"}[state]


class CampaignStates:
    """The store's campaign states (a part of `SqliteStore`)."""

    _db: Database

    async def set_campaign_state(
        self,
        campaign_id: int,
        state: CampaignState,
        now: datetime,
        actor: str,
        *,
        expected: CampaignState | None = None,
    ) -> Campaign:
        """Start, pause or resume the campaign, with its audit event, in one transaction.

        `expected`: the state the caller acts from (`start` from new, `resume` from paused), so
        that resuming a campaign never started is refused rather than starting it. Raises
        CampaignStateError, naming the campaign and its state, for any other change.
        """
        async with self._db.write() as db:
            row = await fetch_one(db, CAMPAIGN_BY_ID, (campaign_id,))
            if row is None:
                raise DueCallError(f"no campaign with id {campaign_id}")
            current = CampaignState(row["state"])
            change = TRANSITIONS.get((current, state))
            if change is None or (expected is not None and expected is not current):
                raise CampaignStateError(row["name"], current.value, wanted_verb(state, expected))
            await db.execute(SET_STATE, (state.value, campaign_id, current.value))
            record = change[0](row["name"])
            await append_audit(db, [AuditEvent(record, now, actor, campaign_id)])
        return replace(campaign_from(row), state=state)

    async def campaign_state(self, campaign_id: int) -> CampaignState:
        row = await self._db.fetch_one(STATE, (campaign_id,))
        if row is None:
            raise DueCallError(f"no campaign with id {campaign_id}")
        return CampaignState(row["state"])

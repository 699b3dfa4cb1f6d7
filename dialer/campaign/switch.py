"""Whether the campaign may make new contacts now: its state in the store, read at most once a second.

Every lane of the dialer (calls, texts, the strategy's routing) asks the one `Switch` before it
takes new work; they share its last read, so a pause costs one small query a second, not one per
lane and loop. A pause stops new claims and sends within about `READ_EVERY`; calls and texts
already under way finish (docs/campaigns.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from datetime import datetime

from dialer.core.errors import CampaignStateError
from dialer.core.models import Campaign
from dialer.core.vocab import CampaignState
from dialer.store import Store

log = logging.getLogger(__name__)
READ_EVERY = 1.0  # seconds between reads of the state


class Switch:
    def __init__(self, store: Store, campaign: Campaign, every: float = READ_EVERY) -> None:
        self.store = store
        self.campaign = campaign
        self.every = every
        self.state = campaign.state
        self._read_at = -math.inf  # loop time of the last read
        self._lock = asyncio.Lock()  # lanes asking at once share one read
        self._told_paused = False

    async def start(self, now: datetime, actor: str) -> CampaignState:
        """A campaign never started starts now (`campaign.started`, by `actor`); its state after."""
        state = await self.store.campaign_state(self.campaign.id)
        if state is CampaignState.NEW:
            # Refused if someone started it meanwhile (the operations page, another dialer).
            with contextlib.suppress(CampaignStateError):
                await self.store.set_campaign_state(
                    self.campaign.id, CampaignState.RUNNING, now, actor, expected=CampaignState.NEW
                )
            state = await self.store.campaign_state(self.campaign.id)
        self._note(state)
        return state

    async def paused(self) -> bool:
        """Is the campaign paused (as read within the last `every` seconds)?"""
        async with self._lock:
            loop = asyncio.get_running_loop()
            if loop.time() - self._read_at >= self.every:
                self._note(await self.store.campaign_state(self.campaign.id))
        return self.state is CampaignState.PAUSED

    async def wait_running(self, stop: asyncio.Event) -> bool:
        """Until the campaign is not paused (True), or `stop` is set (False)."""
        while not stop.is_set() and await self.paused():
            try:
                async with asyncio.timeout(self.every):
                    await stop.wait()
            except TimeoutError:
                pass
        return not stop.is_set()

    def _note(self, state: CampaignState) -> None:
        self._read_at = asyncio.get_running_loop().time()
        self.state = state
        # Said once per pause, not once per lane or loop.
        if state is CampaignState.PAUSED and not self._told_paused:
            log.warning(
                "campaign %s is paused: no new calls or texts until it is resumed "
                "(`duecall campaign resume %s`); those under way finish",
                self.campaign.name,
                self.campaign.name,
            )
        elif state is not CampaignState.PAUSED and self._told_paused:
            log.warning("campaign %s resumed", self.campaign.name)
        self._told_paused = state is CampaignState.PAUSED

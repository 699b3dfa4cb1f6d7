"""Opening the configured store (the one place the app picks its backend)."""

from __future__ import annotations

from dialer.core.config import Settings
from dialer.core.errors import DueCallError
from dialer.core.models import Campaign
from dialer.store import SqliteStore, Store


async def open_store(s: Settings) -> Store:
    return await SqliteStore.open(s.path(s.store.path), s.store.synchronous)


async def campaign_named(store: Store, name: str) -> Campaign:
    """The campaign, or an error that says how to make one."""
    found = await store.campaign(name)
    if found is None:
        raise DueCallError(f"no campaign named {name!r} (create it with `duecall campaign create`)")
    return found

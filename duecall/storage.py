"""Opening the configured store (dialer/store/opening.py picks the backend) and finding a campaign."""

from __future__ import annotations

from dialer.core.errors import DueCallError
from dialer.core.models import Campaign
from dialer.store import Store
from dialer.store.opening import open_store, sqlite_file

__all__ = ["campaign_named", "open_store", "sqlite_file"]


async def campaign_named(store: Store, name: str) -> Campaign:
    """The campaign, or an error that says how to make one."""
    found = await store.campaign(name)
    if found is None:
        raise DueCallError(f"no campaign named {name!r} (create it with `duecall campaign create`)")
    return found

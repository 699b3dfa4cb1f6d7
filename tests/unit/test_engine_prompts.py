"""An account whose prompts cannot be prepared costs no attempt: it is held back with the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dialer.asterisk.ami import AmiEndpoint
from dialer.campaign.engine import Dialer
from dialer.core.clock import FixedClock
from dialer.core.config import load_settings
from dialer.core.models import Account, TargetState
from dialer.policy.gate import PackGate
from dialer.policy.packs import load_pack
from dialer.store import SqliteStore
from tests.support.records import record

NOW = datetime(2026, 11, 30, 15, tzinfo=UTC)


class BrokenPrompts:
    """Stands in for the IVR service at the project's own boundary (synthesis is tested in test_tts)."""

    async def render_account(self, account: Account, script: str | None = None) -> dict[str, str]:
        raise ValueError("currency XAU has no spoken form")


async def test_prompt_failure_defers_without_an_attempt(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "d.db")
    try:
        await store.upsert_accounts([record("A1")], NOW)
        campaign = await store.create_campaign("c", NOW)
        await store.add_targets(campaign.id, NOW)
        [target] = await store.due_targets(campaign.id, NOW, 10)
        ivr: Any = BrokenPrompts()
        dialer = Dialer(
            load_settings(),
            store,
            campaign,
            PackGate(load_pack("us-regf")),
            FixedClock(NOW),
            AmiEndpoint("127.0.0.1", 9, "x"),
            ivr=ivr,
        )
        assert await dialer._render_prompts(target, None) is None
        assert await store.attempts_for(campaign.id) == []
        status = await store.status(campaign)
        [(next_at, _, _, note)] = status.next_due
        assert next_at == NOW + timedelta(hours=1)
        assert note == "prompts: currency XAU has no spoken form"
        assert status.targets_by_state == {TargetState.PENDING.value: 1}
    finally:
        await store.close()

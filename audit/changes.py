"""Configuration and script changes, put in the audit chain when a campaign starts.

What is recorded is what the dialer will act on: the effective settings (the
file with its defaults and overrides applied), the policy pack's rules and each
IVR script's text. A file that did not change since the chain last saw it adds
nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime

from dialer.core.config import PACKS_DIR, Settings
from dialer.store import Store
from dialer.store.chain import AuditEvent
from dialer.store.events import ConfigChanged


def watched(settings: Settings) -> dict[str, str]:
    """Name -> text of everything whose change the chain records."""
    texts = {"settings": settings.model_dump_json(indent=1, exclude={"root"})}
    pack = PACKS_DIR / f"{settings.policy.pack}.yaml"
    if pack.exists():
        texts[f"policy pack {settings.policy.pack}"] = pack.read_text(encoding="utf-8")
    if settings.ivr.enabled:
        for script in settings.ivr.scripts:
            path = settings.path(script)
            texts[f"ivr script {path}"] = path.read_text(encoding="utf-8")
    return texts


def changed_events(
    texts: Mapping[str, str], known: Mapping[str, str], now: datetime, actor: str
) -> list[AuditEvent]:
    events = []
    for name, text in sorted(texts.items()):
        digest = hashlib.sha256(text.encode()).hexdigest()
        if known.get(name) != digest:
            events.append(AuditEvent(ConfigChanged(name, digest, known.get(name), text), now, actor))
    return events


async def record_config(store: Store, settings: Settings, now: datetime, actor: str) -> list[str]:
    """Append a `config.changed` event for each watched text that changed; returns their names."""
    events = changed_events(watched(settings), await store.config_hashes(), now, actor)
    await store.audit(events)
    return [str(e.data["path"]) for e in events]

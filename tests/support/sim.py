"""Simulated borrowers on the real Asterisk: a campaign's accounts, AstDB behaviour, the dialer run."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from dialer.accounts.importer import import_accounts
from dialer.accounts.parse import ImportSettings
from dialer.asterisk.ami import AmiClient, AmiEndpoint, AmiTimeouts
from dialer.asterisk.host import AmiCredentials
from dialer.core.config import Settings
from dialer.core.errors import AmiActionFailed
from dialer.core.models import Account
from dialer.store import SqliteStore
from ivr.script import load_script
from ivr.service import account_fields
from ivr.tts import PromptCache, voice_for
from tests.support.borrowers import borrowers_csv
from tests.support.config import make_settings
from tests.support.project import PROJECT_ROOT

SCRIPTS = PROJECT_ROOT / "ivr" / "scripts"


async def prepare(settings: Settings, work_dir: Path, rows: list[tuple[str, str, str]]) -> None:
    store = await SqliteStore.open(settings.path(settings.store.path))
    try:
        csv_path = borrowers_csv(work_dir / "borrowers.csv", rows)
        report = await import_accounts(
            store, csv_path, ImportSettings("US", "USD", "en-US"), datetime.now(UTC), work_dir / "rejects.csv"
        )
        assert not report.rejects
        campaign = await store.create_campaign("test", datetime.now(UTC))
        await store.add_targets(campaign.id, datetime.now(UTC))
    finally:
        await store.close()


async def attempts(settings: Settings) -> list[dict[str, object]]:
    store = await SqliteStore.open(settings.path(settings.store.path))
    try:
        campaign = await store.campaign("test")
        assert campaign is not None
        return await store.attempts_for(campaign.id)
    finally:
        await store.close()


@asynccontextmanager
async def ami(creds: AmiCredentials) -> AsyncIterator[AmiClient]:
    client = AmiClient(
        AmiEndpoint(creds.host, creds.port, creds.username, creds.secret), AmiTimeouts(), lambda m: None
    )
    task = asyncio.create_task(client.run())
    await client.wait_connected(10)
    try:
        yield client
    finally:
        client.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def reset_counts(creds: AmiCredentials, phones: list[str]) -> None:
    async with ami(creds) as client:
        for phone in phones:
            with contextlib.suppress(AmiActionFailed):  # never called before
                await client.send("DBDel", {"Family": f"sim/{phone.lstrip('+')}", "Key": "calls"})


async def calls_received(creds: AmiCredentials, phones: list[str]) -> dict[str, int]:
    counts = {}
    async with ami(creds) as client:
        for phone in phones:
            try:
                events = await client.send_list(
                    "DBGet", {"Family": f"sim/{phone.lstrip('+')}", "Key": "calls"}
                )
                counts[phone] = int(events[0]["Val"])
            except AmiActionFailed:
                counts[phone] = 0
    return counts


def start_run(settings: Settings, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "duecall",
            "--config",
            str(settings.root / "duecall.toml"),
            "-v",
            "run",
            "test",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def wait_for(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def seconds(wav: Path) -> float:
    with wave.open(str(wav)) as audio:
        return audio.getnframes() / audio.getframerate()


async def prompt_seconds(cache: PromptCache, locale: str, nodes: list[str], name: str) -> float:
    """How long the given prompts last for this borrower (rendered now, cached for the call)."""
    script = load_script(SCRIPTS / f"reminder-{locale}.yaml")

    account = Account(0, "x", "x", name, "+1", (), False, 123450, "USD", datetime.now(UTC).date(), locale)
    fields = account_fields(script, account)
    total = 0.0
    for node in nodes:
        total += seconds(await cache.render(script.nodes[node].say.format(**fields), voice_for(locale)))
    return total


async def put(creds: AmiCredentials, phone: str, key: str, value: str) -> None:
    async with ami(creds) as client:
        await client.send("DBPut", {"Family": f"sim/{phone.lstrip('+')}", "Key": key, "Val": value})


def ivr_settings(work_dir: Path) -> Settings:
    """Real IVR calls: the reminder scripts over FastAGI, no AMD, prompts in the test's folder."""
    return make_settings(
        work_dir,
        dialer={"amd": False, "ring_timeout": "8s"},
        ivr={"enabled": True, "prompts_dir": str(work_dir / "prompts")},
    )


async def opts_out_by_key(creds: AmiCredentials, settings: Settings, phone: str, account_id: str) -> None:
    """This simulated borrower presses 9 (stop calls) during the confirm prompt."""
    cache = PromptCache(settings.path(settings.ivr.prompts_dir))
    intro = await prompt_seconds(cache, "en-US", ["intro"], f"Borrower {account_id}")
    await put(creds, phone, "keys", "9")
    await put(creds, phone, "delay", f"{intro + 2:.1f}")

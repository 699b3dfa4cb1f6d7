"""The operations page's CPU work, off the event loop: the dry-run plan in a process of its own,
the report's plots in a thread, each bounded (one at a time, a time limit, a few days ahead)."""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import secrets
import shutil
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from rich.console import Console

from audit.masking import Masker
from dialer.core.config import Settings
from dialer.core.errors import DueCallError
from duecall import steered
from duecall.planning import Work, plan_on_every_core, render
from reports.plots import write_plots
from reports.report import Report

PLAN_DAYS = 7  # the page's default: a week ahead
MAX_PLAN_DAYS = 14  # the page plans at most two weeks (`duecall campaign plan --days` goes further)
PLAN_SECONDS = 300  # a plan that takes longer is abandoned with a message
SPAWN_SECONDS = 30  # for the new process to start (imports) and answer
PLOTS_KEPT = 3600.0  # seconds a report's plot folder is kept for the page's images


class Busy(Exception):
    """The page's one plan at a time is being made, or took too long (a page's answer, 503, not
    a domain error of dialer.core.errors)."""


def plan_text(
    settings: Settings, campaign_name: str, start: datetime, days: int, masked: bool, seconds: int
) -> tuple[bool, str]:
    """The dry run as `duecall campaign plan` prints it, or why not: (planned, text). Run in a
    process of its own, which stops itself after `seconds` (the alarm ends a plan's worker pool
    too); errors come back as text (a DueCallError does not always survive pickling)."""
    signal.signal(signal.SIGALRM, _too_long)
    signal.alarm(seconds)
    try:
        inputs = asyncio.run(steered.plan_inputs(settings, campaign_name, start))
        work = Work(inputs.snapshots, inputs.strategy_of, inputs.gate, start, days, inputs.campaign.id, None)
        result = plan_on_every_core(work)
    except DueCallError as error:
        return False, str(error)
    except TimeoutError:
        return False, f"the dry run took longer than {seconds} s; plan fewer days"
    finally:
        signal.alarm(0)
    if masked:  # an account named in an error may be its phone number
        mask = Masker("", "")
        result = replace(result, errors=tuple(mask.body(e) for e in result.errors))
    out = Console(file=io.StringIO(), width=140, record=True, color_system=None)
    render(out, campaign_name, result)
    return True, out.export_text()


def _too_long(signum: int, frame: object) -> None:
    raise TimeoutError


class Planner:
    """One plan at a time, each in a fresh process (spawned: forking a threaded server is not
    safe), so that a large campaign never holds the page's event loop or its other users."""

    def __init__(self, settings: Settings, seconds: int = PLAN_SECONDS) -> None:
        self.settings, self.seconds = settings, seconds
        self._one = asyncio.Lock()

    async def plan(self, campaign_name: str, start: datetime, days: int, masked: bool) -> str:
        """The plan's text; Busy while another is made, DueCallError when it cannot be made."""
        if self._one.locked():
            raise Busy("another dry run is being made; try again in a minute")
        async with self._one:
            pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            try:
                job = asyncio.get_running_loop().run_in_executor(
                    pool, plan_text, self.settings, campaign_name, start, days, masked, self.seconds
                )
                async with asyncio.timeout(self.seconds + SPAWN_SECONDS):  # the alarm did not work
                    planned, text = await job
            except TimeoutError:
                raise Busy(f"the dry run took longer than {self.seconds} s; plan fewer days") from None
            finally:
                pool.shutdown(wait=False, cancel_futures=True)  # never wait on the event loop
        if not planned:
            raise DueCallError(text)
        return text


class Plots:
    """Each report's plots in a folder of their own under the state folder, named by a random
    token (the page's image links), removed after an hour."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._one = asyncio.Semaphore(2)  # matplotlib is CPU work: two reports at a time

    async def draw(self, report: Report) -> tuple[str, list[Path]]:
        async with self._one:
            return await asyncio.to_thread(self._draw, report)

    def _draw(self, report: Report) -> tuple[str, list[Path]]:
        self._forget_old()
        token = secrets.token_urlsafe(16)
        folder = self.root / token
        folder.mkdir(parents=True, mode=0o700)
        return token, write_plots(report, folder)

    def path(self, token: str, name: str) -> Path | None:
        """The plot file for a link, or None (a token or a name not made here)."""
        if not _plain(token, "-_") or not name.endswith(".png") or not _plain(name[:-4], "_"):
            return None
        found = self.root / token / name
        return found if found.is_file() else None

    def _forget_old(self) -> None:
        if not self.root.is_dir():
            return
        cutoff = time.time() - PLOTS_KEPT
        for folder in self.root.iterdir():
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)


def _plain(text: str, extra: str) -> bool:
    """Letters, digits and `extra` only, 1-64 of them: nothing that could climb out of a folder."""
    return 0 < len(text) <= 64 and all(c.isascii() and (c.isalnum() or c in extra) for c in text)

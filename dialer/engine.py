"""The campaign engine: choose who may be called, place the calls, record how they ended.

One `asyncio.TaskGroup` owns everything long-running: the AMI connection, the
scheduler and one task per call in flight. The order of work for each call is
what makes a crash harmless:

1. the policy decides and the attempt is written, counted, in one transaction;
2. only then is the Originate sent (once; never re-sent);
3. the result is written in one transaction with the account's next step.

An attempt left open by a crash is reconciled on the next start from the
facts the dialplan wrote into AstDB, or from the live channel, or closed as
`unknown` (still counted). Nothing is forgotten and nothing is dialled twice.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from audit.recordings import RecordingFacts, seal, seal_now
from dialer.ami import AmiClient, AmiEndpoint, AmiTimeouts
from dialer.ami_protocol import Message
from dialer.calls import Call
from dialer.clock import Clock
from dialer.config import Settings
from dialer.errors import AmiActionFailed, AmiError, DueCallError
from dialer.models import (
    Attempt,
    CallResult,
    Campaign,
    Decision,
    IvrStep,
    IvrSummary,
    Reason,
    Target,
    TargetState,
)
from dialer.pacing import Pacer
from dialer.policy import PolicyGate
from dialer.retry import after_attempt
from dialer.store import Store

if TYPE_CHECKING:
    from ivr.service import IvrService

log = logging.getLogger(__name__)
SETTLE_SECONDS = 5.0  # a call's last event follows its first end event within this
SEAL_SECONDS = 30.0  # MixMonitor closes a recording well within this after the hangup


@dataclass
class RunSummary:
    placed: int = 0
    finished: int = 0
    blocked: int = 0
    reconciled: int = 0
    stopped_by_signal: bool = False
    left_open: list[int] = field(default_factory=list)
    answer_to_audio: list[float] = field(default_factory=list)  # seconds, answered calls with IVR
    prompt_hits: int = 0  # prompts found rendered in the cache
    prompt_renders: int = 0  # prompts synthesised during the run


class _Tracked:
    """A call in flight: its pure state plus the asyncio event its task waits on."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.changed = asyncio.Event()
        self.action_id = ""


class Dialer:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        campaign: Campaign,
        policy: PolicyGate,
        clock: Clock,
        endpoint: AmiEndpoint,
        *,
        dialer_id: str | None = None,
        ivr: IvrService | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.campaign = campaign
        self.policy = policy
        self.clock = clock
        self.dialer_id = dialer_id or socket.gethostname()
        self._actor = f"dialer:{self.dialer_id}"
        self.ivr = ivr
        d, a = settings.dialer, settings.asterisk
        self.ami = AmiClient(
            endpoint,
            AmiTimeouts(
                a.connect_timeout.total_seconds(),
                a.action_timeout.total_seconds(),
                a.ping_interval.total_seconds(),
                a.reconnect_delay.total_seconds(),
            ),
            on_event=self._on_event,
            on_connect=self._on_connect,
        )
        self.pacer = Pacer(d.max_concurrent, d.calls_per_second)
        self.summary = RunSummary()
        self.recordings = settings.path(d.recordings_dir)
        self._stop = asyncio.Event()
        self._calls: dict[str, _Tracked] = {}
        self._originates: dict[str, str] = {}  # ActionID -> call key
        self._batch: list[Target] = []
        self._instance = ""
        self._group: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        """Stop placing calls; calls in flight may finish within the grace period."""
        if not self._stop.is_set():
            log.info("stopping: no new calls; waiting for %d in flight", len(self._calls))
            self.summary.stopped_by_signal = True
            self._stop.set()

    # -- top level ---------------------------------------------------------

    async def run(self, idle_horizon: timedelta | None = None) -> RunSummary:
        """Dial until every account is settled, or, with `idle_horizon`, until nothing is due that soon."""
        self._instance = await self.store.instance_id()
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                ami_task = group.create_task(self.ami.run(), name="ami")
                agi_task = await self._start_ivr(group)
                await self.ami.wait_connected(self.settings.asterisk.connect_timeout.total_seconds())
                await self._reconcile_leftovers()
                await self._schedule(idle_horizon)
                await self._drain()
                self._ivr_figures()
                self.ami.close()
                ami_task.cancel()
                if agi_task is not None:
                    agi_task.cancel()
        except BaseExceptionGroup as group_error:
            raise _first_error(group_error) from None
        finally:
            self._group = None
        return self.summary

    def _ivr_figures(self) -> None:
        if self.ivr is not None:
            cache = self.ivr.prompts
            self.summary.prompt_hits = cache.hits + cache.joined
            self.summary.prompt_renders = cache.misses

    async def _start_ivr(self, group: asyncio.TaskGroup) -> asyncio.Task[None] | None:
        if self.ivr is None:
            return None
        task = group.create_task(self.ivr.server.serve(), name="agi")
        async with asyncio.timeout(10):
            await self.ivr.server.ready.wait()
        await self.ivr.start()
        return task

    async def _schedule(self, idle_horizon: timedelta | None) -> None:
        while await self._acquire_line():
            target = await self._next_target()
            if target is None:
                self.pacer.release()
                if await self._finished(idle_horizon):
                    return
                await self._sleep(self.settings.dialer.poll_interval.total_seconds())
                continue
            await self._place(target)

    async def _acquire_line(self) -> bool:
        """Wait for a free line within the rate; False when asked to stop (no line held)."""
        if self._stop.is_set():
            return False
        acquire = asyncio.ensure_future(self.pacer.acquire())
        stop = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({acquire, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if acquire.done() and not self._stop.is_set():
            acquire.result()
            return True
        if acquire.done():
            self.pacer.release()
        else:
            acquire.cancel()  # the pacer gives the line back when cancelled
            await asyncio.gather(acquire, return_exceptions=True)
        return False

    async def _next_target(self) -> Target | None:
        if not self._batch:
            limit = max(50, 2 * self.pacer.max_concurrent)
            due = await self.store.due_targets(self.campaign.id, self.clock.now(), limit)
            self._batch = list(reversed(due))
        return self._batch.pop() if self._batch else None

    async def _finished(self, idle_horizon: timedelta | None) -> bool:
        if self._calls:
            return False
        open_targets = await self.store.count_targets(
            self.campaign.id, [TargetState.PENDING, TargetState.IN_FLIGHT]
        )
        if open_targets == 0:
            log.info("campaign %s: every account is settled", self.campaign.name)
            return True
        if idle_horizon is not None:
            nxt = await self.store.next_due_at(self.campaign.id)
            return nxt is None or nxt > self.clock.now() + idle_horizon
        return False

    async def _sleep(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._stop.wait()
        except TimeoutError:
            pass

    async def _drain(self) -> None:
        grace = self.settings.dialer.shutdown_grace.total_seconds()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        if pending:
            self.summary.left_open = sorted(t.call.attempt.id for t in self._calls.values())
            log.warning("grace period over: %d calls left open; the next run reconciles them", len(pending))
            for task in pending:
                task.cancel()

    # -- placing one call --------------------------------------------------

    async def _place(self, target: Target) -> None:
        if not self.ami.connected.is_set():
            self._batch.append(target)  # not claimed yet: nothing is lost
            self.pacer.release()
            await self._wait_connected()
            return
        fields = await self._render_prompts(target) if self.ivr is not None else {}
        if fields is None:
            self.pacer.release()
            return
        now = self.clock.now()
        outcome = await self.store.claim(
            target,
            now,
            self._decide_at(now),
            self._recording_path,
            self.dialer_id,
            now - self.policy.history_window,
        )
        if isinstance(outcome, Decision):
            self.pacer.release()
            if outcome.reasons:
                self.summary.blocked += 1
                log.info(
                    "account %s not called: %s",
                    target.account.account_id,
                    "; ".join(f"{r.rule}: {r.detail}" for r in outcome.reasons),
                )
            return
        self.summary.placed += 1
        tracked = self._track(outcome)
        if self.ivr is not None:
            replies = Path(outcome.recording_path).with_name(f"{outcome.id}-replies")
            self.ivr.register(tracked.call.key, target.account, fields, replies, outcome.id)
        self._start_call(tracked, originate=True)

    async def _render_prompts(self, target: Target) -> dict[str, str] | None:
        """The account's spoken fields, its prompts rendered (cached after the first call).

        Before the claim, so a failure costs no attempt: the account is held back an hour instead.
        """
        assert self.ivr is not None
        try:
            return await self.ivr.render_account(target.account)
        except (DueCallError, ValueError) as exc:
            log.error("account %s: cannot prepare its prompts: %s", target.account.account_id, exc)
            later = self.clock.now() + timedelta(hours=1)
            decision = Decision(False, (Reason("prompts", str(exc)),), later)
            await self.store.defer(target, decision, self.clock.now(), self._actor)
            return None

    async def _wait_connected(self) -> None:
        stop = asyncio.ensure_future(self._stop.wait())
        up = asyncio.ensure_future(self.ami.connected.wait())
        await asyncio.wait({stop, up}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        up.cancel()

    def _decide_at(self, now: datetime) -> Callable[..., Decision]:
        def decide(account, history, opted_out, prefs):  # type: ignore[no-untyped-def]
            return self.policy.decide(account, now, history, opted_out, prefs)

        return decide

    def _recording_path(self, attempt_id: int, at: datetime) -> str:
        return str(self.recordings / f"{at:%Y/%m/%d}" / str(attempt_id))

    def _track(self, attempt: Attempt) -> _Tracked:
        key = f"{self._instance}-{attempt.id}"
        tracked = _Tracked(Call(attempt, key))
        self._calls[key] = tracked
        return tracked

    def _start_call(self, tracked: _Tracked, originate: bool) -> None:
        assert self._group is not None
        task = self._group.create_task(
            self._run_call(tracked, originate), name=f"call-{tracked.call.attempt.id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_call(self, tracked: _Tracked, originate: bool) -> None:
        call = tracked.call
        try:
            if originate:
                await self._originate(tracked)
            await self._await_end(tracked)
            if not call.complete:
                await self._reconcile(tracked)
            result = call.finish(self.clock.now(), "" if call.complete else "no final event from Asterisk")
            sealed = await self._seal_now(call.attempt)
            await self._store_result(call.attempt, self._with_ivr(call, result), sealed)
        finally:
            self._calls.pop(call.key, None)
            self._originates.pop(tracked.action_id, None)
            if originate:
                self.pacer.release()
        await self._forget_in_astdb(call.key)
        if sealed is None:  # Asterisk was still writing: seal once it has closed the file
            await self._seal(call.attempt, answered=result.answered_at is not None)

    async def _seal_now(self, attempt: Attempt) -> list[RecordingFacts] | None:
        """The recordings, hashed now if Asterisk has closed them (usual), to store with the result."""
        try:
            return await asyncio.to_thread(seal_now, attempt.recording_path)
        except OSError as exc:
            log.warning("attempt %d: recording not readable yet (%s); sealing it later", attempt.id, exc)
            return None

    async def _seal(self, attempt: Attempt, answered: bool) -> None:
        """Hash the call's recordings once Asterisk has closed them, and put them in the chain.

        After the result is stored and the line is free: sealing waits on Asterisk, not on the call.
        """
        try:
            found = await seal(attempt.recording_path, SEAL_SECONDS)
        except OSError as exc:
            log.error("attempt %d: cannot read its recording: %s", attempt.id, exc)
            return
        await self.store.add_recordings(attempt, found, self.clock.now(), self._actor, answered)

    async def _originate(self, tracked: _Tracked) -> None:
        call, d = tracked.call, self.settings.dialer
        action_id = f"{self.ami.new_action_id()}-orig"
        self._originates[action_id] = call.key
        recording = Path(call.attempt.recording_path)
        recording.parent.mkdir(parents=True, exist_ok=True)
        variables = [
            f"DUECALL_ATTEMPT={call.key}",
            f"DUECALL_DIAL={d.trunk.format(number=call.attempt.phone_e164.lstrip('+'))}",
            f"DUECALL_RING_TIMEOUT={int(d.ring_timeout.total_seconds())}",
            f"DUECALL_AMD={'yes' if d.amd else 'no'}",
            f"DUECALL_RECORDING={recording}",
            f"DUECALL_PROMPT={d.prompt}",
        ]
        if self.ivr is not None:
            variables.append(f"DUECALL_AGI_PORT={self.ivr.server.port}")
        headers: dict[str, str | list[str]] = {
            "ActionID": action_id,
            "Channel": f"Local/{call.attempt.id}@duecall-outbound",
            "Context": "duecall-ivr",
            "Exten": "s",
            "Priority": "1",
            "Async": "true",
            "ChannelId": f"dc-{call.key}",
            "Timeout": str(int((d.ring_timeout.total_seconds() + 10) * 1000)),
            "CallerID": d.caller_id,
            "Variable": variables,
        }
        call.originate_sent(self.clock.now())
        try:
            await self.ami.send("Originate", headers)
        except AmiActionFailed as exc:
            # Asterisk refused it outright: no call was placed.
            call.record(self.clock.now(), "originate-refused", {"message": exc.message})
            call.notes.append(f"originate refused: {exc.message}")
            call.originate_failed = True
            tracked.changed.set()
        except AmiError as exc:
            # Maybe sent, maybe not: never send again; the dialplan's AstDB facts will tell.
            call.record(self.clock.now(), "originate-uncertain", {"error": str(exc)})
            call.notes.append(f"originate reply lost: {exc}")
        finally:
            tracked.action_id = action_id

    async def _await_end(self, tracked: _Tracked) -> None:
        call, d = tracked.call, self.settings.dialer
        loop = asyncio.get_running_loop()
        deadline = loop.time() + d.ring_timeout.total_seconds() + d.max_call.total_seconds() + 15
        settle_by: float | None = None
        while not call.complete:
            if call.settling and settle_by is None:
                settle_by = loop.time() + SETTLE_SECONDS
            until = min(deadline, settle_by) if settle_by is not None else deadline
            if loop.time() >= until:
                return
            try:
                async with asyncio.timeout(until - loop.time()):
                    await tracked.changed.wait()
            except TimeoutError:
                return
            tracked.changed.clear()

    def _with_ivr(self, call: Call, result: CallResult) -> CallResult:
        prepared = self.ivr.take(call.key) if self.ivr is not None else None
        if prepared is None or prepared.result is None:
            return result
        r = prepared.result
        if call.answered_at is not None and prepared.first_prompt_at is not None:
            # From the answer (DueCallAnswer, before AMD) to the first prompt's audio.
            delay = prepared.first_prompt_at - call.answered_at
            self.summary.answer_to_audio.append(delay.total_seconds())
        steps = tuple(IvrStep(s.at, s.node, s.kind, dict(s.detail)) for s in r.steps)
        keys = "".join(
            str(s.detail.get("digit") or s.detail.get("digits") or "") for s in r.steps if s.kind == "key"
        )
        promised = prepared.account.amount_minor if r.outcome.value in ("promise_to_pay", "paid") else None
        summary = IvrSummary(
            prepared.script.name, r.outcome.value, r.promised_date, promised, r.right_party, steps
        )
        return replace(result, ivr=summary, digits=keys or result.digits)

    async def _store_result(
        self, attempt: Attempt, result: CallResult, sealed: list[RecordingFacts] | None = None
    ) -> None:
        update = after_attempt(result.disposition, attempt.attempt_no, self.settings.retry, result.ended_at)
        await self.store.finish_attempt(attempt, result, update, self._actor, sealed)
        self.summary.finished += 1
        log.info("attempt %d (%s): %s %s", attempt.id, attempt.phone_e164, result.disposition, result.note)

    # -- events and reconciliation ----------------------------------------

    def _on_event(self, message: Message) -> None:
        name = message.get("Event")
        if name == "UserEvent":
            key = message.get("Attempt", "")
        elif name == "OriginateResponse":
            key = self._originates.pop(message.get("ActionID", ""), "")
        else:
            return
        tracked = self._calls.get(key)
        if tracked is not None:
            tracked.call.on_message(message, self.clock.now())
            tracked.changed.set()

    async def _on_connect(self) -> None:
        """After a reconnect, events may have been missed: ask AstDB about every call in flight."""
        if self.ami.sessions <= 1:
            return
        live = await self._live_channels()
        for tracked in list(self._calls.values()):
            found = await self._read_astdb(tracked.call)
            if not found and f"dc-{tracked.call.key}" not in live:
                tracked.call.notes.append("no channel and no result after reconnect")
                tracked.call.originate_failed = True  # settle now rather than at the deadline
            tracked.changed.set()

    async def _reconcile(self, tracked: _Tracked) -> None:
        try:
            await self._read_astdb(tracked.call)
        except AmiError as exc:
            tracked.call.notes.append(f"reconcile failed: {exc}")

    async def _read_astdb(self, call: Call) -> bool:
        dial = await self._db_get(call.key, "dial")
        ivr = await self._db_get(call.key, "ivr")
        call.apply_astdb(dial, ivr, self.clock.now())
        return dial is not None

    async def _db_get(self, key: str, field: str) -> str | None:
        try:
            events = await self.ami.send_list("DBGet", {"Family": f"duecall/{key}", "Key": field})
        except AmiActionFailed:
            return None  # no such entry
        return events[0].get("Val", "") if events else None

    async def _forget_in_astdb(self, key: str) -> None:
        try:
            await self.ami.send("DBDelTree", {"Family": f"duecall/{key}"})
        except AmiError as exc:
            log.debug("AstDB cleanup of %s skipped: %s", key, exc)

    async def _live_channels(self) -> set[str]:
        events = await self.ami.send_list("CoreShowChannels", {})
        return {e.get("Uniqueid", "") for e in events}

    async def _reconcile_leftovers(self) -> None:
        """Attempts a previous run left open: finish them from AstDB, adopt live calls, or close them."""
        for attempt in await self.store.unsealed(self.campaign.id):
            await self._seal(attempt, answered=True)
        leftovers = await self.store.open_attempts(self.campaign.id)
        if not leftovers:
            return
        live = await self._live_channels()
        for attempt in leftovers:
            tracked = self._track(attempt)
            call = tracked.call
            has_result = await self._read_astdb(call)
            self.summary.reconciled += 1
            if not has_result and f"dc-{call.key}" in live:
                log.info("attempt %d: call still up, adopting it", attempt.id)
                call.notes.append("adopted after restart: the call was still up")
                self._start_call(tracked, originate=False)
                continue
            note = (
                "reconciled from AstDB after restart"
                if has_result
                else "outcome lost: no result in Asterisk after restart"
            )
            self._calls.pop(call.key, None)
            result = call.finish(self.clock.now(), note)
            await self._store_result(attempt, result)
            await self._forget_in_astdb(call.key)
            await self._seal(attempt, answered=result.answered_at is not None)


def _first_error(group: BaseExceptionGroup) -> BaseException:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return _first_error(error)
        if isinstance(error, DueCallError | OSError):
            return error
    return group.exceptions[0]

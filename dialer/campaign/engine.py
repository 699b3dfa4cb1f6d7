"""The campaign engine: choose who may be called, place the calls, record how they ended.

One `asyncio.TaskGroup` owns everything long-running: the AMI connection, the
scheduler and one task per call in flight. The order of work for each call is
what makes a crash harmless:

1. the policy decides and the attempt is written, counted, in one transaction;
2. only then is the Originate sent (once; never re-sent);
3. the result is written in one transaction with the account's next step.

An attempt left open by a crash is reconciled on the next start from the
facts the dialplan wrote into AstDB (and the IVR steps saved while the call ran),
or from the live channel, or closed as `unknown` (still counted). Nothing is
forgotten and nothing is dialled twice. With several dialers on one campaign
each reconciles only its own attempts, and renews a lease; one whose lease goes
unrenewed for a whole lease has its open attempts closed by another (`cut` with
its saved IVR steps, else `unknown`; counted, never dialled again).

While the database is away (PostgreSQL stopped or unreachable: `StoreUnavailable`)
no account is claimed; calls in flight finish and their results are held and
written once it is back. An Originate Asterisk refused placed no
call: it is stored `not_placed` and not counted; while Asterisk shuts down no
account is claimed at all.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from dialer.asterisk.ami import SHUTTING_DOWN, AmiClient, AmiEndpoint, AmiTimeouts
from dialer.asterisk.ami_protocol import Message
from dialer.campaign.calls import Call
from dialer.campaign.pacing import Pacer
from dialer.campaign.ports import IvrPort, TextPort, VoicemailView
from dialer.campaign.retry import NOT_PLACED_DELAY, after_attempt, not_placed
from dialer.campaign.steering import Choice, ContactNow, Later, Steering, text_batch
from dialer.campaign.switch import Switch
from dialer.core.clock import Clock
from dialer.core.config import Settings
from dialer.core.dialplan import (
    ASTDB_DIAL,
    ASTDB_FAMILY,
    ASTDB_IVR,
    DIAL_HANGUP_PUSH,
    IVR_EXTEN,
    Context,
    Event,
    Header,
    Stage,
    Var,
    astdb_call_family,
)
from dialer.core.errors import AmiActionFailed, AmiError, DueCallError, StoreUnavailable
from dialer.core.models import (
    Attempt,
    CallResult,
    Campaign,
    Decision,
    Disposition,
    IvrStep,
    IvrSummary,
    Reason,
    Target,
    TargetState,
    TargetUpdate,
)
from dialer.core.vocab import PAYMENT_OUTCOMES, Outcome, RuleId
from dialer.policy.gate import PolicyGate
from dialer.policy.packs import load_voicemail_rule
from dialer.store import IvrProgress, OwnedAttempt, Store
from dialer.store.evidence import RecordingFacts, seal, seal_now
from dialer.strategy.decide import Proposal

log = logging.getLogger(__name__)
_T = TypeVar("_T")
SETTLE_SECONDS = 5.0  # a call's last event follows its first end event within this
SEAL_SECONDS = 30.0  # MixMonitor closes a recording well within this after the hangup
IVR_SAVE_SECONDS = 0.5  # IVR steps of calls in flight reach the store within this
ASTDB_SWEEP_SECONDS = 60.0  # AstDB entries whose cleanup failed are deleted again this often
VOICEMAIL_NODE = "voicemail"  # the IVR step (and audit event) of a message left on a machine
STORE_RETRY_FIRST = 0.5  # seconds before writing again to a database that went away; doubles
STORE_RETRY_MAX = 5.0
UNCERTAIN_CLAIM = "the claim's commit was not confirmed (the database went away): no call placed"


@dataclass
class RunSummary:
    placed: int = 0
    finished: int = 0
    blocked: int = 0
    reconciled: int = 0
    stopped_by_signal: bool = False
    duplicate_id: bool = False  # stopped: another dialer runs with this one's id
    left_open: list[int] = field(default_factory=list)
    answer_to_audio: list[float] = field(default_factory=list)  # seconds, answered calls with IVR
    prompt_hits: int = 0  # prompts found rendered in the cache
    prompt_renders: int = 0  # prompts synthesised during the run
    texts: int = 0  # texts the strategy asked for that were written and handed to the gateway
    texts_refused: int = 0  # by the policy
    stopped: int = 0  # accounts the strategy stopped contacting (paid, disputed, ...)


@dataclass(frozen=True, slots=True)
class _Watched:
    """Another dialer with open attempts: its lease beat, since when (loop time) it has stood at
    that, and whether it was seen moving."""

    beat: int
    since: float
    moved: bool


class _Tracked:
    """A call in flight: its pure state plus the asyncio event its task waits on."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.changed = asyncio.Event()
        self.action_id = ""
        self.saved_steps = 0  # IVR steps already in the store (saved as they happen)
        self.voicemail: VoicemailView | None = None  # the message for a machine, if one may be left
        self.no_voicemail = ""  # why none may be left (for the note of a call a machine answered)


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
        ivr: IvrPort | None = None,
        steering: Steering | None = None,
        texts: TextPort | None = None,
        started_by: str = "",
    ) -> None:
        self.settings = settings
        self.store = store
        self.campaign = campaign
        self.policy = policy
        self.clock = clock
        self.dialer_id = dialer_id or socket.gethostname()
        self._actor = f"dialer:{self.dialer_id}"
        self._started_by = started_by or self._actor  # who starts a new campaign (the CLI's user)
        # Paused: no new call or text (docs/campaigns.md); every lane asks this one switch.
        self.switch = Switch(store, campaign)
        self.ivr = ivr
        # A strategy decides each account's next contact, calls and texts (docs/strategy.md).
        if (steering is None) != (texts is None) or (steering is not None) != campaign.steered:
            raise ValueError(
                "a campaign with a strategy needs its steering and the SMS channel; others neither"
            )
        self.steering = steering
        self.texts = texts
        # May a message be left on an answering machine (the pack's rule, 12 CFR 1006.2(j)).
        self.voicemail_rule = load_voicemail_rule(settings.policy.pack)
        d, a = settings.dialer, settings.asterisk
        self.pacer = Pacer(d.max_concurrent, d.calls_per_second)
        self.text_pacer = Pacer(settings.sms.concurrency, settings.sms.texts_per_second)
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
            on_round_trip=self.pacer.observe,  # slow AMI replies: Asterisk is behind, pace down
        )
        self.summary = RunSummary()
        self.recordings = settings.path(d.recordings_dir)
        self._stop = asyncio.Event()
        self._calls: dict[str, _Tracked] = {}
        self._originates: dict[str, str] = {}  # ActionID -> call key
        self._batch: list[Target] = []
        self._text_batch: list[Target] = []
        self._texting: set[int] = set()  # accounts (pk) whose text is being sent
        self._instance = ""
        self._group: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Asterisk said it is shutting down (Shutdown event, or an action refused for it): no
        # claims until the next AMI login.
        self._asterisk_stopping = False
        self._astdb_leftovers: set[str] = set()  # call keys whose AstDB cleanup failed
        self._store_away = False  # the database is unreachable (said once per outage)
        self._store_delay = STORE_RETRY_FIRST  # the lanes' next wait while it is
        self._claims_uncertain = False  # a claim failed with the database: it may have committed
        self._run_started = clock.now()
        # Other dialers with open attempts, as this one watches them: owner -> their lease.
        self._beats: dict[str, _Watched] = {}
        self._lease_token = uuid.uuid4().hex  # this process's, in its lease row

    def stop(self) -> None:
        """Stop placing calls; calls in flight may finish within the grace period."""
        if not self._stop.is_set():
            log.info("stopping: no new calls; waiting for %d in flight", len(self._calls))
            self.summary.stopped_by_signal = True
            self._stop.set()

    @property
    def database_available(self) -> bool:
        """False from a failed store call until one succeeds again (read by duecall.monitoring)."""
        return not self._store_away

    @property
    def calls_in_flight(self) -> int:
        """Calls placed or adopted and not yet stored (read by duecall.monitoring)."""
        return len(self._calls)

    # -- top level ---------------------------------------------------------

    async def run(self, idle_horizon: timedelta | None = None) -> RunSummary:
        """Dial until every account is settled, or, with `idle_horizon`, until nothing is due that soon."""
        self._instance = await self.store.instance_id()
        self._run_started = self.clock.now()
        await self._renew_lease(first=True)
        await self.switch.start(self.clock.now(), self._started_by)  # a new campaign: started, audited
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                ami_task = group.create_task(self.ami.run(), name="ami")
                agi_task = await self._start_ivr(group)
                await self.ami.wait_connected(self.settings.asterisk.connect_timeout.total_seconds())
                await self._reconcile_leftovers()
                await self._take_over_silent()  # starts watching the others' leases
                await self._sweep_astdb()  # facts a previous run stored but could not delete
                side = [
                    group.create_task(self._save_ivr_loop(), name="ivr-save"),
                    group.create_task(self._sweep_astdb_loop(), name="astdb-sweep"),
                    group.create_task(self._lease_loop(), name="lease"),
                ]
                lanes = self._start_lanes(group)
                await self._schedule(idle_horizon)
                self._stop.set()  # the strategy's and the texts' lanes stop too
                await asyncio.gather(*lanes)
                await self._drain()
                await self._sweep_astdb()
                self._ivr_figures()
                for task in side:
                    task.cancel()
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
        while True:
            try:
                if await self._schedule_next(idle_horizon):
                    return
            except StoreUnavailable as exc:
                self._store_down(exc)
                self._batch.clear()  # read again once it is back: they may have changed
                await self._sleep(self._store_wait())

    async def _schedule_next(self, idle_horizon: timedelta | None) -> bool:
        """Place the next due call, or wait for one; True when the run is over."""
        if self._claims_uncertain:
            await self._settle_uncertain_claims()
        if not await self._acquire_running(self.pacer):
            return True
        try:
            target = await self._next_target()
        except BaseException:
            self.pacer.release()
            raise
        if target is None:
            self.pacer.release()
            if await self._finished(idle_horizon):
                return True
            await self._sleep(self.settings.dialer.poll_interval.total_seconds())
            return False
        await self._place(target)
        return False

    async def _acquire_line(self, pacer: Pacer | None = None) -> bool:
        """Wait for a free line (or text slot) within the rate; False when asked to stop (none held)."""
        pacer = pacer or self.pacer
        if self._stop.is_set():
            return False
        acquire = asyncio.ensure_future(pacer.acquire())
        stop = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({acquire, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if acquire.done() and not self._stop.is_set():
            acquire.result()
            return True
        if acquire.done():
            pacer.release()
        else:
            acquire.cancel()  # the pacer gives the line back when cancelled
            await asyncio.gather(acquire, return_exceptions=True)
        return False

    async def _acquire_running(self, pacer: Pacer) -> bool:
        """A free line (or text slot) while the campaign is not paused; False when asked to stop.

        While paused no line is held: the run waits (a pause is not the end of the campaign)."""
        while await self._acquire_line(pacer):
            try:
                paused = await self.switch.paused()
            except BaseException:
                pacer.release()
                raise
            if not paused:
                return True
            pacer.release()
            await self.switch.wait_running(self._stop)
        return False

    async def _next_target(self) -> Target | None:
        if not self._batch:
            limit = max(50, 2 * self.pacer.max_concurrent)
            due = await self.store.due_targets(self.campaign.id, self.clock.now(), limit)
            self._store_back()
            self._batch = list(reversed(due))
        return self._batch.pop() if self._batch else None

    async def _finished(self, idle_horizon: timedelta | None) -> bool:
        if self._calls or self._texting:
            return False
        open_targets = await self.store.count_targets(
            self.campaign.id, [TargetState.PENDING, TargetState.IN_FLIGHT]
        )
        if open_targets == 0:
            log.info("campaign %s: every account is settled", self.campaign.name)
            return True
        if idle_horizon is not None:
            if self._watching_silent():
                return False  # a silent dialer's calls: stay to close them once its lease ran out
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

    # -- the strategy's lanes (campaigns with a strategy) -------------------

    def _start_lanes(self, group: asyncio.TaskGroup) -> list[asyncio.Task[None]]:
        if self.steering is None:
            return []
        return [
            group.create_task(self._steer_loop(), name="strategy"),
            group.create_task(self._text_loop(group), name="texts"),
        ]

    async def _steer_loop(self) -> None:
        """Accounts due for a decision: the strategy puts each in a lane, for later, or stops it."""
        while True:
            try:
                await self._steer()
                return
            except StoreUnavailable as exc:
                self._store_down(exc)
                await self._sleep(self._store_wait())

    async def _steer(self) -> None:
        assert self.steering is not None
        limit = 200
        while await self.switch.wait_running(self._stop):
            due = await self.store.due_targets(self.campaign.id, self.clock.now(), limit, channel=None)
            for target, (choice, _) in zip(
                due, await self.steering.choose_all(due, self.clock.now()), strict=True
            ):
                if self._stop.is_set() or await self.switch.paused():
                    break  # the rest stay due: routed once the campaign runs again
                await self._route(target, choice)
            if len(due) < limit:
                await self._sleep(self.settings.dialer.poll_interval.total_seconds())

    async def _route(self, target: Target, choice: Choice) -> None:
        now = self.clock.now()
        if isinstance(choice, ContactNow):
            await self.store.route_target(target, choice.channel, now, choice.proposal.why)
        elif isinstance(choice, Later):
            await self.store.route_target(target, choice.channel, choice.at, choice.note)
        else:
            await self.store.stop_target(target, choice.reason, choice.to_person, now, self._actor)
            self.summary.stopped += 1
            log.info("account %s: the strategy stops: %s", target.account.account_id, choice.reason)

    async def _steer_call(self, target: Target) -> tuple[Target, Proposal] | None:
        """Asked again right before the call (a payment may have come): the call to place, with
        the balance as the amount, and the strategy's proposal; None when no call is due now."""
        assert self.steering is not None
        choice, _ = await self.steering.choose(target, self.clock.now())
        if isinstance(choice, ContactNow) and choice.channel == "voice":
            return replace(target, account=choice.account), choice.proposal
        await self._route(target, choice)
        return None

    async def _text_loop(self, group: asyncio.TaskGroup) -> None:
        """The texts' lane: its own pacing (`[sms] concurrency`, `texts_per_second`)."""
        while True:
            try:
                await self._texts(group)
                return
            except StoreUnavailable as exc:
                self._store_down(exc)
                self._text_batch.clear()
                await self._sleep(self._store_wait())

    async def _texts(self, group: asyncio.TaskGroup) -> None:
        while await self._acquire_running(self.text_pacer):
            try:
                target = await self._next_text()
            except BaseException:
                self.text_pacer.release()
                raise
            if target is None:
                self.text_pacer.release()
                await self._sleep(self.settings.dialer.poll_interval.total_seconds())
                continue
            self._texting.add(target.account.pk)
            task = group.create_task(self._text(target), name=f"text-{target.account.pk}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _next_text(self) -> Target | None:
        if not self._text_batch:
            due = await self.store.due_targets(self.campaign.id, self.clock.now(), 100, channel="sms")
            self._text_batch = [t for t in reversed(due) if t.account.pk not in self._texting]
        return self._text_batch.pop() if self._text_batch else None

    async def _text(self, target: Target) -> None:
        assert self.steering is not None and self.texts is not None
        try:
            now = self.clock.now()
            choice, snapshot = await self.steering.choose(target, now)
            if not (isinstance(choice, ContactNow) and choice.channel == "sms"):
                await self._route(target, choice)
                return
            if await self.switch.paused():
                return  # paused meanwhile: still due in its lane, sent once the campaign runs again
            proposal = choice.proposal
            assert proposal.message is not None
            batch = text_batch(self.campaign.name, snapshot, proposal, now)
            try:
                sent = await self.texts.send(
                    choice.account, proposal.message, batch, self.campaign.id, proposal.source
                )
            except StoreUnavailable:
                raise
            except (DueCallError, ValueError) as exc:  # its template cannot be rendered for the account
                log.error("account %s: cannot prepare its text: %s", target.account.account_id, exc)
                await self.store.route_target(target, None, now + timedelta(hours=1), f"text not sent: {exc}")
                return
            if sent.state == "refused":
                self.summary.texts_refused += 1
                retry = sent.retry_at or now + timedelta(days=1)
                await self.store.route_target(target, None, retry, f"text refused: {sent.reason}")
                return
            self.summary.texts += sent.state != "skipped"
            await self.store.route_target(
                target, None, self.clock.now(), f"text {proposal.message}: {sent.state}"
            )
        except StoreUnavailable as exc:  # still due in its lane: taken again once it is back
            self._store_down(exc)
        finally:
            self._texting.discard(target.account.pk)
            self.text_pacer.release()

    # -- placing one call --------------------------------------------------

    async def _place(self, target: Target) -> None:
        """Claim and place one call; the line taken for it is given back unless the call started."""
        try:
            await self._claim_and_start(target)
        except StoreUnavailable:
            self.pacer.release()
            self._claims_uncertain = True  # a claim's commit may have gone through
            raise
        except BaseException:
            self.pacer.release()
            raise

    async def _claim_and_start(self, target: Target) -> None:
        if not self._can_claim():
            self._batch.append(target)  # not claimed yet: nothing is lost
            self.pacer.release()
            await self._wait_connected()
            return
        script, step = None, ""
        if self.steering is not None:
            steered = await self._steer_call(target)
            if steered is None:
                self.pacer.release()
                return
            target, proposal = steered
            script, step = proposal.script, proposal.source
        fields = await self._render_prompts(target, script) if self.ivr is not None else {}
        if fields is None:
            self.pacer.release()
            return
        voicemail, no_voicemail = await self._render_voicemail(target, script)
        if await self.switch.paused():  # paused as the prompts rendered: not claimed, still due
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
            self.campaign.steered,
            step,
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
        tracked.voicemail, tracked.no_voicemail = voicemail, no_voicemail
        if self.ivr is not None:
            replies = Path(outcome.recording_path).with_name(f"{outcome.id}-replies")
            self.ivr.register(tracked.call.key, target.account, fields, replies, outcome.id, script=script)
        self._start_call(tracked, originate=True)

    async def _render_prompts(self, target: Target, script: str | None) -> dict[str, str] | None:
        """The account's spoken fields, its prompts rendered (cached after the first call).

        Before the claim, so a failure costs no attempt: the account is held back an hour instead.
        """
        assert self.ivr is not None
        try:
            return await self.ivr.render_account(target.account, script=script)
        except (DueCallError, ValueError) as exc:
            log.error("account %s: cannot prepare its prompts: %s", target.account.account_id, exc)
            later = self.clock.now() + timedelta(hours=1)
            decision = Decision(False, (Reason(RuleId.PROMPTS, str(exc)),), later)
            await self.store.defer(target, decision, self.clock.now(), self._actor, self.campaign.steered)
            return None

    async def _render_voicemail(self, target: Target, script: str | None) -> tuple[VoicemailView | None, str]:
        """The message to leave if a machine answers, rendered before the call; else why none.

        A render that fails leaves no message (the call goes ahead: a machine then hangs up as
        where the pack forbids one), with the reason in the call's note.
        """
        if not self.settings.dialer.amd:
            return None, ""  # no machine is ever told apart
        if self.ivr is None:
            return None, "no message left: the IVR is off (no script, no message)"
        pack = self.settings.policy.pack
        if not self.voicemail_rule.allowed:
            return None, f"no message left: pack {pack} forbids it [source: {self.voicemail_rule.source}]"
        try:
            found = await self.ivr.render_voicemail(target.account, script=script)
        except (DueCallError, ValueError) as exc:
            log.warning("account %s: no voicemail message: %s", target.account.account_id, exc)
            return None, f"no message left: it could not be rendered ({exc})"
        return (found, "") if found is not None else (None, "no message left: the script has no voicemail")

    def _can_claim(self) -> bool:
        """AMI is up and Asterisk is not stopping: a claimed call can be placed."""
        return self.ami.connected.is_set() and not self._asterisk_stopping

    async def _wait_connected(self) -> None:
        """Until a call can be placed again, or we are asked to stop."""
        while not self._stop.is_set() and not self._can_claim():
            await self._sleep(self.settings.dialer.poll_interval.total_seconds())
            if self._asterisk_stopping and self.ami.connected.is_set():
                await self._still_stopping()

    async def _still_stopping(self) -> None:
        """A shutdown can be cancelled (`core abort shutdown`): then Asterisk answers again."""
        try:
            await self.ami.send("Ping", {})
        except AmiError:
            return  # still refusing, or gone: the next login clears the flag
        log.info("Asterisk answers again: placing calls")
        self._asterisk_stopping = False

    def _asterisk_is_stopping(self, why: str) -> None:
        if not self._asterisk_stopping:
            log.warning("Asterisk is shutting down (%s): no new calls until it is back", why)
        self._asterisk_stopping = True

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
            concluded = self._with_ivr(call, await self._conclude(tracked))
            result = await self._until_stored(lambda: self._with_saved_ivr(call, concluded))
            result = _with_voicemail(tracked, result)
            sealed = await self._seal_now(call.attempt)
            await self._until_stored(lambda: self._store_result(call.attempt, result, sealed))
        finally:
            self._calls.pop(call.key, None)
            self._originates.pop(tracked.action_id, None)
            if originate:
                self.pacer.release()
        await self._forget_in_astdb(call.key)
        if sealed is None:  # Asterisk was still writing: seal once it has closed the file
            await self._seal(call.attempt, answered=result.answered_at is not None)

    async def _conclude(self, tracked: _Tracked) -> CallResult:
        """The call's result once its events are in (or given up on)."""
        call = tracked.call
        if call.not_placed:
            return call.finish(self.clock.now())
        note = ""
        if not call.complete:
            await self._reconcile(tracked)
            note = "" if call.complete else "no final event from Asterisk"
        if _ended_mid_ivr(call):
            await self._check_asterisk_stopping(call)
        return call.finish(self.clock.now(), note)

    async def _check_asterisk_stopping(self, call: Call) -> None:
        """An answered call ended before the script's end: was it Asterisk stopping, not the borrower?

        Asterisk hangs up every call when it shuts down; its hangup handlers report them like any
        other hangup. Any action it gets meanwhile is refused with "Asterisk is shutting down".
        """
        if not self._asterisk_stopping:
            try:
                await self.ami.send("Ping", {})
                return
            except AmiActionFailed as exc:
                if SHUTTING_DOWN not in exc.message:
                    return
                self._asterisk_is_stopping(f"Ping: {exc.message}")
            except AmiError as exc:  # the connection went with the call: Asterisk stopped or died
                log.info("call %s: AMI gone as the call ended (%s): Asterisk cut it", call.key, exc)
        call.asterisk_stopped = True

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
        await self._until_stored(
            lambda: self.store.add_recordings(attempt, found, self.clock.now(), self._actor, answered)
        )

    async def _originate(self, tracked: _Tracked) -> None:
        call, d = tracked.call, self.settings.dialer
        action_id = f"{self.ami.new_action_id()}-orig"
        self._originates[action_id] = call.key
        recording = Path(call.attempt.recording_path)
        recording.parent.mkdir(parents=True, exist_ok=True)
        variables = [
            DIAL_HANGUP_PUSH,  # first: the dial result is reported however the channel ends
            f"{Var.ATTEMPT}={call.key}",
            f"{Var.AMD}={'yes' if d.amd else 'no'}",
            f"{Var.RECORDING}={recording}",
            f"{Var.PROMPT}={d.prompt}",
        ]
        if tracked.voicemail is not None:
            variables.append(f"{Var.VOICEMAIL}={tracked.voicemail.playback}")
        if self.ivr is not None:
            variables.append(f"{Var.AGI_PORT}={self.ivr.server.port}")
            variables.append(f"{Var.AGI_SECRET}={self.ivr.agi_secret(call.key)}")
        headers: dict[str, str | list[str]] = {
            "ActionID": action_id,
            # The borrower's own channel: no Local pair of ours in between (docs/number-plan.md).
            "Channel": d.trunk.format(number=call.attempt.phone_e164.lstrip("+")),
            "Context": Context.IVR,
            "Exten": IVR_EXTEN,
            "Priority": "1",
            "Async": "true",
            "ChannelId": f"dc-{call.key}",
            # How long it may ring: on expiry Asterisk hangs it up, cause 19 (no answer).
            "Timeout": str(int(d.ring_timeout.total_seconds() * 1000)),
            "CallerID": d.caller_id,
            "Variable": variables,
        }
        call.originate_sent(self.clock.now())
        try:
            await self.ami.send("Originate", headers)
        except AmiActionFailed as exc:
            # Asterisk refused it outright (Response: Error): no call was placed, none is counted.
            call.record(self.clock.now(), "originate-refused", {"message": exc.message})
            call.notes.append(f"originate refused: {exc.message}")
            call.originate_failed = call.not_placed = True
            if SHUTTING_DOWN in exc.message:
                self._asterisk_is_stopping(f"Originate: {exc.message}")
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
        while not call.complete and not call.not_placed:
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
        answered = next((at for at, kind, _ in call.events if kind == Event.ANSWER), None)
        if answered is not None and prepared.first_prompt_at is not None:
            # From the answer (DueCallAnswer's AnsweredAt, before AMD) to the IVR sending the first
            # prompt's STREAM FILE: Asterisk starts playing it at once.
            delay = prepared.first_prompt_at - answered
            self.summary.answer_to_audio.append(delay.total_seconds())
        steps = tuple(IvrStep(s.at, s.node, s.kind, dict(s.detail)) for s in r.steps)
        # A cut call keeps only an outcome the borrower chose, not the flow's default.
        outcome = chosen_outcome(steps) if result.disposition is Disposition.CUT else r.outcome.value
        promised = prepared.account.amount_minor if outcome in PAYMENT_OUTCOMES else None
        summary = IvrSummary(prepared.script.name, outcome, r.promised_date, promised, r.right_party, steps)
        return replace(result, ivr=summary, digits=_keys(steps) or result.digits)

    async def _store_result(
        self,
        attempt: Attempt,
        result: CallResult,
        sealed: list[RecordingFacts] | None = None,
        takeover: bool = False,
    ) -> bool:
        """Store a call's result with its target's next step; False if another dialer closed it first."""
        if self.campaign.steered:
            update = _back_to_strategy(result)
        elif result.disposition is Disposition.NOT_PLACED:
            update = not_placed(result.ended_at, result.note)
        else:
            outcome = result.ivr.outcome if result.ivr is not None else ""
            rules = self.settings.retry
            update = after_attempt(result.disposition, attempt.attempt_no, rules, result.ended_at, outcome)
        if not await self.store.finish_attempt(attempt, result, update, self._actor, sealed, takeover):
            if not takeover:
                log.warning(
                    "attempt %d was closed by another dialer (this one's lease ran out): "
                    "its result is kept as call.late-result",
                    attempt.id,
                )
            return False
        self.summary.finished += 1
        log.info("attempt %d (%s): %s %s", attempt.id, attempt.phone_e164, result.disposition, result.note)
        return True

    # -- events and reconciliation ----------------------------------------

    def _on_event(self, message: Message) -> None:
        name = message.get("Event")
        if name == "UserEvent":
            key = message.get(Header.ATTEMPT, "")
        elif name == "OriginateResponse":
            key = self._originates.pop(message.get("ActionID", ""), "")
        elif name == "Shutdown":
            self._asterisk_is_stopping(f"Shutdown event, restart {message.get('Restart', '?')}")
            return
        else:
            return
        tracked = self._calls.get(key)
        if tracked is not None:
            tracked.call.on_message(message, self._event_time(message))
            tracked.changed.set()

    def _event_time(self, message: Message) -> datetime:
        """When it happened, on our clock: `AnsweredAt` (the dialplan's own clock reading, for
        DueCallAnswer), else the event's `Timestamp` (timestampevents=yes).

        Asterisk runs on this machine, so its clock is ours: the event's age moves our clock's
        `now` back. Without a usable time, the time it arrived.
        """
        now = self.clock.now()
        try:
            age = time.time() - float(message.get(Header.ANSWERED_AT) or message.get("Timestamp", ""))
        except ValueError:
            return now
        return now - timedelta(seconds=age) if 0 <= age < 60 else now

    async def _on_connect(self) -> None:
        """After a reconnect, events may have been missed: ask AstDB about every call in flight."""
        self._asterisk_stopping = False  # logged in again: Asterisk is (back) up
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
        dial = await self._db_get(call.key, ASTDB_DIAL)
        ivr = await self._db_get(call.key, ASTDB_IVR)
        call.apply_astdb(dial, ivr, self.clock.now())
        return dial is not None

    async def _db_get(self, key: str, field: str) -> str | None:
        try:
            events = await self.ami.send_list("DBGet", {"Family": astdb_call_family(key), "Key": field})
        except AmiActionFailed:
            return None  # no such entry
        return events[0].get("Val", "") if events else None

    async def _forget_in_astdb(self, key: str) -> None:
        """Delete the call's AstDB facts (its result is stored); on failure, the sweep tries again."""
        try:
            await self.ami.send("DBDelTree", {"Family": astdb_call_family(key)})
        except AmiActionFailed as exc:
            if SHUTTING_DOWN in exc.message:
                self._astdb_leftovers.add(key)
            # else nothing to delete: the call never reached the dialplan
        except AmiError as exc:
            log.info("AstDB cleanup of %s failed (%s); trying again later", key, exc)
            self._astdb_leftovers.add(key)
        else:
            self._astdb_leftovers.discard(key)

    async def _sweep_astdb_loop(self) -> None:
        while True:
            await asyncio.sleep(ASTDB_SWEEP_SECONDS)
            try:
                await self._sweep_astdb()
            except StoreUnavailable as exc:
                self._store_down(exc)

    async def _sweep_astdb(self) -> None:
        """Delete AstDB facts of calls whose result is stored: failed cleanups, and a previous run's."""
        if not self.ami.connected.is_set():
            return
        for key in sorted(self._astdb_leftovers | await self._closed_in_astdb()):
            await self._forget_in_astdb(key)

    async def _closed_in_astdb(self) -> set[str]:
        """Call keys of this database with facts in AstDB whose attempt is closed."""
        try:
            events = await self.ami.send_list("DBGetTree", {"Family": ASTDB_FAMILY})
        except AmiError as exc:
            log.debug("AstDB: cannot list duecall/: %s", exc)
            return set()
        ids = _attempt_ids((e.get("Key", "") for e in events), f"/{astdb_call_family(self._instance)}-")
        open_ids = {t.call.attempt.id for t in self._calls.values()}
        closed = await self.store.closed_attempts(ids - open_ids)
        return {f"{self._instance}-{i}" for i in closed}

    # -- IVR steps, saved as they happen ------------------------------------

    async def _save_ivr_loop(self) -> None:
        while True:
            await asyncio.sleep(IVR_SAVE_SECONDS)
            try:
                await self._save_ivr_progress()
            except StoreUnavailable as exc:  # kept in memory: saved once it is back
                self._store_down(exc)

    async def _save_ivr_progress(self) -> None:
        """New IVR steps of calls in flight into the store: a dialer killed mid-call keeps them."""
        progress = []
        for tracked in list(self._calls.values()):
            new = self._new_steps(tracked)
            if new is not None:
                progress.append(new)
        if not progress:
            return
        await self.store.save_ivr_progress(progress)
        for p in progress:
            found = self._calls.get(f"{self._instance}-{p.attempt_id}")
            if found is not None:
                found.saved_steps = p.first_seq + len(p.steps)

    def _new_steps(self, tracked: _Tracked) -> IvrProgress | None:
        prepared = self.ivr.peek(tracked.call.key) if self.ivr is not None else None
        if prepared is None or prepared.result is None:
            return None
        steps = prepared.result.steps[tracked.saved_steps :]
        if not steps:
            return None
        new = tuple(IvrStep(s.at, s.node, s.kind, dict(s.detail)) for s in steps)
        return IvrProgress(tracked.call.attempt.id, prepared.script.name, tracked.saved_steps, new)

    async def _with_saved_ivr(self, call: Call, result: CallResult) -> CallResult:
        """For a call this run did not serve: the outcome from AstDB and the steps saved as they
        happened, so a dialer killed mid-call loses neither."""
        if result.ivr is not None or result.answered_at is None:
            return result
        saved = await self.store.saved_ivr_progress(call.attempt.id)
        outcome = (call.ivr.outcome if call.ivr else "") or chosen_outcome(saved.steps)
        if not outcome and not saved.steps:
            return result
        promised_date = _promised_date(saved.steps) if outcome == Outcome.PROMISE_TO_PAY else None
        account = await self.store.account(call.attempt.account_id) if call.attempt.account_id else None
        promised = account.amount_minor if account and outcome in PAYMENT_OUTCOMES else None
        summary = IvrSummary(saved.script, outcome, promised_date, promised, None, saved.steps)
        return replace(result, ivr=summary, digits=_keys(saved.steps) or result.digits)

    async def _live_channels(self) -> set[str]:
        events = await self.ami.send_list("CoreShowChannels", {})
        return {e.get("Uniqueid", "") for e in events}

    async def _reconcile_leftovers(self) -> None:
        """Attempts a previous run left open: finish them from AstDB, adopt live calls, or close them."""
        for attempt in await self.store.unsealed(self.campaign.id, self.dialer_id):
            await self._seal(attempt, answered=True)
        leftovers = await self.store.open_attempts(self.campaign.id, self.dialer_id)
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
                call.recovered = True
                self._start_call(tracked, originate=False)
                continue
            note = (
                "reconciled from AstDB after restart"
                if has_result
                else "outcome lost: no result in Asterisk after restart"
            )
            call.recovered = has_result
            self._calls.pop(call.key, None)
            result = await self._with_saved_ivr(call, call.finish(self.clock.now(), note))
            await self._store_result(attempt, result)
            await self._forget_in_astdb(call.key)
            await self._seal(attempt, answered=result.answered_at is not None)

    # -- the database going away, and other dialers' leases ------------------

    @property
    def _lease_seconds(self) -> float:
        return self.settings.dialer.lease.total_seconds()

    def _store_down(self, exc: StoreUnavailable) -> None:
        if not self._store_away:
            log.warning("the database is unavailable (%s): no new calls; results held until it is back", exc)
        self._store_away = True

    def _store_back(self) -> None:
        if self._store_away:
            log.warning("the database is back: placing calls again")
        self._store_away = False
        self._store_delay = STORE_RETRY_FIRST

    def _store_wait(self) -> float:
        """How long a lane waits before asking the database again: doubling, up to the most."""
        delay = self._store_delay
        self._store_delay = min(2 * delay, STORE_RETRY_MAX)
        return delay

    async def _until_stored(self, work: Callable[[], Awaitable[_T]]) -> _T:
        """`work` (reads and writes of a call's result), tried again while the database is away:
        the result waits in memory (its facts stay in AstDB too), never dropped."""
        delay = STORE_RETRY_FIRST
        while True:
            try:
                done = await work()
            except StoreUnavailable as exc:
                self._store_down(exc)
                await asyncio.sleep(delay)
                delay = min(2 * delay, STORE_RETRY_MAX)
                continue
            if delay > STORE_RETRY_FIRST:  # it failed before: this try reached the database
                self._store_back()
            return done

    async def _settle_uncertain_claims(self) -> None:
        """This run's own open attempts it never placed: a claim that raised had committed after
        all. No Originate was sent for them: stored `not_placed` (not counted)."""
        placed = {t.call.attempt.id for t in self._calls.values()}
        for attempt in await self.store.open_attempts(self.campaign.id, self.dialer_id):
            if attempt.id in placed or attempt.decided_at < self._run_started:
                continue
            call = Call(attempt, f"{self._instance}-{attempt.id}")
            call.not_placed = True
            await self._store_result(attempt, call.finish(self.clock.now(), UNCERTAIN_CLAIM))
        self._claims_uncertain = False

    async def _lease_loop(self) -> None:
        """Renew this dialer's lease; close the open attempts of dialers silent for a whole lease."""
        while True:
            await asyncio.sleep(self._lease_seconds / 4)
            try:
                await self._renew_lease(first=False)
                self._store_back()
                await self._take_over_silent()
            except StoreUnavailable as exc:
                # Silence seen while this dialer could not look proves nothing: start again.
                self._beats.clear()
                self._store_down(exc)

    async def _renew_lease(self, first: bool) -> None:
        """Renew this dialer's lease. Another process's token found in it since the last renewal
        means a second dialer runs with this id: it could close this one's calls as its own
        leftovers, so both stop (each sees the other's token) and say why."""
        now = self.clock.now()
        had = await self.store.renew_lease(self.dialer_id, self._lease_token, now, self._lease_seconds)
        if not first and had != self._lease_token and not self._stop.is_set():
            log.error(
                "another dialer runs with the id %r ([dialer] id, else the host name): stopping; "
                "give each machine its own",
                self.dialer_id,
            )
            self.summary.duplicate_id = True
            self.stop()

    def _watching_silent(self) -> bool:
        """Is a dialer with open attempts yet to show it is alive (its beat moving)?"""
        return any(not w.moved for w in self._beats.values())

    async def _take_over_silent(self) -> None:
        now = asyncio.get_running_loop().time()
        found = await self.store.foreign_open_attempts(self.campaign.id, self.dialer_id)
        owners = {owned.owner: owned.beat for owned in found}
        for owner, beat in owners.items():
            seen = self._beats.get(owner)
            if seen is None:
                self._beats[owner] = _Watched(beat, now, moved=False)
            elif seen.beat != beat:
                self._beats[owner] = _Watched(beat, now, moved=True)
        for owner in set(self._beats) - set(owners):
            del self._beats[owner]
        for owned in found:
            if now - self._beats[owned.owner].since >= self._lease_seconds:
                await self._close_for(owned)

    async def _close_for(self, owned: OwnedAttempt) -> None:
        """Close a silent dialer's open attempt: from its saved IVR steps (`cut`: our side ended
        it), else `unknown`; counted, never dialled again. Another dialer may close it first."""
        attempt = owned.attempt
        call = Call(attempt, f"{self._instance}-{attempt.id}")
        saved = await self.store.saved_ivr_progress(attempt.id)
        if saved.steps:
            call.answered_at = saved.steps[0].at
        note = f"dialer {owned.owner} stopped renewing its lease; closed by dialer {self.dialer_id}"
        result = await self._with_saved_ivr(call, call.finish(self.clock.now(), note))
        if not await self._store_result(attempt, result, takeover=True):
            return  # another dialer closed it first
        self.summary.reconciled += 1
        log.warning("attempt %d of %s (lease ran out): %s", attempt.id, owned.owner, result.disposition)


def _back_to_strategy(result: CallResult) -> TargetUpdate:
    """After a call of a campaign with a strategy: the strategy decides what comes next (a call
    Asterisk refused is asked about again a little later: it placed no call)."""
    if result.disposition is Disposition.NOT_PLACED:
        at, note = result.ended_at + NOT_PLACED_DELAY, f"not placed ({result.note}): not counted"
    else:
        at, note = result.ended_at, f"{result.disposition}: the strategy decides next"
    return TargetUpdate(TargetState.PENDING, at, note, channel=None)


def chosen_outcome(steps: Sequence[IvrStep]) -> str:
    """The last outcome the borrower chose in these steps ("" if none)."""
    return next((str(s.detail.get("outcome", "")) for s in reversed(steps) if s.kind == "outcome"), "")


def _with_voicemail(tracked: _Tracked, result: CallResult) -> CallResult:
    """A machine's call: the message left (its text, a step of the IVR: into the audit trail), or
    why none was left (in the note). The step is stamped when the dialplan reported the call's end."""
    if result.disposition is not Disposition.MACHINE or result.ivr is not None:
        return result
    message = tracked.voicemail
    if result.ivr_stage != Stage.VOICEMAIL:
        why = tracked.no_voicemail or "no message left: the machine hung up, or its greeting never ended"
        return _noted(result, why)
    if message is None:  # placed by a run before a restart: its text went with that run
        return _noted(result, "message left; its text was not kept (the call was placed before a restart)")
    ended = next((at for at, kind, _ in reversed(result.events) if kind == Event.IVR), result.ended_at)
    step = IvrStep(ended, VOICEMAIL_NODE, "prompt", {"text": message.text})
    return replace(result, ivr=IvrSummary(message.script, "", None, None, None, (step,)))


def _noted(result: CallResult, note: str) -> CallResult:
    return replace(result, note="; ".join(n for n in (result.note, note) if n))


def _attempt_ids(keys: Iterable[str], prefix: str) -> set[int]:
    """Attempt ids in AstDB keys like `/duecall/<instance>-<attempt id>/dial`."""
    ids = set()
    for key in keys:
        head = key.removeprefix(prefix).split("/")[0] if key.startswith(prefix) else ""
        if head.isdigit():
            ids.add(int(head))
    return ids


def _promised_date(steps: Sequence[IvrStep]) -> date | None:
    """The date keyed in just before the promise (an `input` node's 8 digits, YYYYMMDD)."""
    for step in reversed(steps):
        digits = str(step.detail.get("digits", "")) if step.kind == "key" else ""
        if len(digits) == 8:
            try:
                return datetime.strptime(digits, "%Y%m%d").date()
            except ValueError:
                return None
    return None


def _keys(steps: Sequence[IvrStep]) -> str:
    return "".join(
        str(s.detail.get("digit") or s.detail.get("digits") or "") for s in steps if s.kind == "key"
    )


def _ended_mid_ivr(call: Call) -> bool:
    """Answered, and ended before the script's end with no one on our side saying why."""
    ivr = call.ivr
    if ivr is None:
        return call.answered_at is not None
    return ivr.stage not in (Stage.DONE, Stage.MACHINE, Stage.VOICEMAIL, Stage.CUT)


def _first_error(group: BaseExceptionGroup) -> BaseException:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return _first_error(error)
        if isinstance(error, DueCallError | OSError):
            return error
    return group.exceptions[0]

"""The IVR inside the dialer: scripts, prompts, speech and the FastAGI sessions.

Before a call is placed, `prepare` picks the account's script and renders every
prompt that names the account, so the borrower never hears dead air once they
answer. The dialplan then hands the answered call to the FastAGI server with
the call key; `handle` runs the script and keeps the result for the engine,
which stores it with the call's disposition in one transaction.

Anyone on the machine can connect to the FastAGI port and call keys are guessable, so each
call also gets a random secret (`agi_secret`): the dialer passes it to Asterisk in the
Originate (DUECALL_AGI_SECRET), the dialplan hands it back as AGI() argument 2, and `handle`
refuses a connection without it. It works once: the first session that shows it uses it up.

A script is picked by its name (its file's stem, e.g. `reminder-en-US`: what a strategy step names),
else by the account's locale. With `balance_of`, each call asks the account's balance once before
anything about money is said (ivr/flow.py): a paid account hears `paid_in_full`, never the amount.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import string
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dialer.core.clock import Clock
from dialer.core.dialplan import Stage, Var
from dialer.core.errors import ScriptError
from dialer.core.models import Account
from ivr.agi import AgiHangup, AgiRefused, AgiServer, AgiSession
from ivr.flow import BALANCE_SECONDS, IvrResult, IvrRun, Reply
from ivr.script import ACCOUNT_FIELDS, CALL_FIELDS, Script, load_script
from ivr.speech import Recognizer, SpeechError
from ivr.spoken import currency_name, spoken_amount, spoken_date, spoken_digits
from ivr.tts import PromptCache, Voice, playback_target

log = logging.getLogger(__name__)
OptOut = Callable[[Account, int], Awaitable[None]]  # (account, attempt id)
BalanceOf = Callable[[Account], Awaitable[int | None]]  # the balance now, minor units; None: unknown
SECRET_BYTES = 32  # of randomness in each call's AGI secret (43 URL-safe characters)


def account_fields(script: Script, account: Account) -> dict[str, str]:
    """What a script's templates can say about this account, as the script's locale says it."""
    return {
        "name": account.name,
        "amount": spoken_amount(account.amount_minor, account.currency, script.locale),
        "currency": currency_name(account.currency, script.locale),
        "due_date": spoken_date(account.due_date, script.locale),
        "lender": script.lender,
        "callback": spoken_digits(script.callback, script.locale),
    }


def voicemail_text(script: Script) -> str | None:
    """The script's answering-machine message as spoken (None: the script leaves none)."""
    message = script.voicemail
    if message is None:
        return None
    business = message.business or script.lender
    callback = spoken_digits(script.callback, script.locale)
    return message.say.format(agent=message.agent, business=business, callback=callback)


@dataclass(frozen=True)
class VoicemailPrompt:
    """A rendered answering-machine message: its text (for the audit trail) and what Asterisk plays."""

    script: str
    text: str
    playback: str  # the prompt's path without .wav (DUECALL_VOICEMAIL)


def _uses(text: str, names: frozenset[str]) -> bool:
    return any(f in names for _, f, _, _ in string.Formatter().parse(text) if f)


@dataclass
class Prepared:
    script: Script
    account: Account
    fields: dict[str, str]
    recordings: Path  # where the borrower's spoken replies are kept
    attempt_id: int
    agi_secret: str  # shown by the call's FastAGI session (agi_arg_2); see the module docstring
    admitted: bool = False  # a session showed the secret: it cannot be used again
    result: IvrResult | None = None
    first_prompt_at: datetime | None = None  # when the first prompt started playing


class IvrService:
    def __init__(
        self,
        scripts: dict[str, Script],
        default_locale: str,
        prompts: PromptCache,
        recognizer: Recognizer | None,
        on_opt_out: OptOut,
        *,
        host: str = "127.0.0.1",
        port: int = 4573,
        clock: Clock,
        recognizers: Mapping[str, Recognizer | None] | None = None,
        named: Mapping[str, Script] | None = None,
        balance_of: BalanceOf | None = None,
        balance_timeout: float = BALANCE_SECONDS,
    ) -> None:
        if default_locale not in scripts:
            raise ValueError(f"no script for the default locale {default_locale}")
        self.scripts = scripts  # by locale: for an account whose call names no script
        # By name (file stem): every loaded script, the locale ones included.
        self.named = {s.name: s for s in scripts.values()} | dict(named or {})
        self.balance_of = balance_of  # None: no balance check during calls
        self.balance_timeout = balance_timeout
        self.default_locale = default_locale
        self.prompts = prompts
        self.recognizer = recognizer  # for a script whose locale has none of its own in `recognizers`
        # By script locale ([ivr] speech."<locale>"): e.g. Whisper for en-US and zh-CN, None = keypad only.
        self.recognizers = dict(recognizers or {})
        self.on_opt_out = on_opt_out
        # The dialer's clock, never the wall clock: the IVR's steps and first-prompt time line up
        # with the dialer's events (a demo or a test moves the dialer's clock).
        self.now = clock.now
        self.server = AgiServer(host, port, self.handle)
        self._calls: dict[str, Prepared] = {}

    @classmethod
    def load(
        cls,
        paths: Sequence[Path],
        default_locale: str,
        prompts: PromptCache,
        recognizer: Recognizer | None,
        on_opt_out: OptOut,
        port: int = 4573,
        *,
        clock: Clock,
        recognizers: Mapping[str, Recognizer | None] | None = None,
        balance_of: BalanceOf | None = None,
    ) -> IvrService:
        loaded = [load_script(p) for p in paths]
        return cls(
            {s.locale: s for s in loaded},  # the last file of a locale, as before
            default_locale,
            prompts,
            recognizer,
            on_opt_out,
            port=port,
            clock=clock,
            recognizers=recognizers,
            named=by_name(paths, loaded),
            balance_of=balance_of,
        )

    def script_for(self, account: Account, script: str | None = None) -> Script:
        """The script named `script`, else the account's locale's (else the default locale's).

        An unknown name is a ScriptError naming it and the loaded ones."""
        if script is None:
            return self.scripts.get(account.language) or self.scripts[self.default_locale]
        found = self.named.get(script)
        if found is None:
            known = ", ".join(sorted(self.named))
            raise ScriptError([f"no IVR script named {script!r} (loaded: {known}; [ivr] scripts)"])
        return found

    def recognizer_for(self, script: Script) -> Recognizer | None:
        """The recogniser of the script's locale, else the default one (None: keypad only)."""
        return self.recognizers.get(script.locale, self.recognizer)

    def _every_recognizer(self) -> list[Recognizer]:
        found = [self.recognizer, *self.recognizers.values()]
        return [r for r in dict.fromkeys(found) if r is not None]  # one shared by locales: once

    def voice(self, script: Script) -> Voice:
        """The locale's piper voice if one is configured (espeak-ng behind it), else espeak-ng."""
        return self.prompts.voice(script.locale, script.voice, script.rate)

    async def start(self) -> None:
        """Start speech, check spoken phrases against the model, render prompts that name no account."""
        for recognizer in self._every_recognizer():
            await recognizer.start()
        for script in self.named.values():
            await self._check_phrases(script)
            static = [text for _, text in script.templates() if not _uses(text, ACCOUNT_FIELDS | CALL_FIELDS)]
            voice = self.voice(script)
            await asyncio.gather(*(self.prompts.render(_fill(t, script), voice) for t in static))
            recorded = [p for p in map(script.audio_path, script.nodes) if p is not None]
            await asyncio.gather(*(self.prompts.recorded(p) for p in recorded))  # converted once

    async def _check_phrases(self, script: Script) -> None:
        recognizer = self.recognizer_for(script)
        if recognizer is None or not script.listen:
            return
        phrases = [p for n in script.nodes.values() for o in n.options for p in o.phrases]
        missing = await recognizer.check_phrases(phrases) if phrases else []
        if missing:
            log.warning(
                "script %s: the speech model lacks %s; those phrases cannot be recognised "
                "(keypad still works)",
                script.name,
                ", ".join(missing),
            )

    async def close(self) -> None:
        for recognizer in self._every_recognizer():
            await recognizer.close()
        await self.prompts.close()

    async def render_account(self, account: Account, script: str | None = None) -> dict[str, str]:
        """Render this account's prompts (before its call is placed: no dead air after the answer)
        in the script named `script` (None: the account's locale's).

        Returns the account's spoken fields, for `register`.
        """
        chosen = self.script_for(account, script)
        fields = account_fields(chosen, account)
        voice = self.voice(chosen)
        texts = [
            t.format(**fields)
            for _, t in chosen.templates()
            if _uses(t, ACCOUNT_FIELDS) and not _uses(t, CALL_FIELDS)
        ]
        await asyncio.gather(*(self.prompts.render(t, voice) for t in texts))
        return fields

    async def render_voicemail(self, account: Account, script: str | None = None) -> VoicemailPrompt | None:
        """The answering-machine message of the script named `script` (None: the account's locale's),
        rendered (a cache hit after the first).

        None when the script has no `voicemail`: then none is left, whatever the pack allows.
        """
        chosen = self.script_for(account, script)
        text = voicemail_text(chosen)
        if text is None:
            return None
        path = await self.prompts.render(text, self.voice(chosen))
        return VoicemailPrompt(chosen.name, text, playback_target(path))

    def register(
        self,
        key: str,
        account: Account,
        fields: dict[str, str],
        recordings: Path,
        attempt_id: int,
        script: str | None = None,
    ) -> None:
        """The call `key` is about to be placed for `account` with the script named `script` (None:
        the account's locale's): its FastAGI session will find this.

        Makes the call's AGI secret (`agi_secret`), for the Originate.
        """
        chosen = self.script_for(account, script)
        secret = secrets.token_urlsafe(SECRET_BYTES)
        self._calls[key] = Prepared(chosen, account, fields, recordings, attempt_id, secret)

    def agi_secret(self, key: str) -> str:
        """The secret the call `key`'s FastAGI session must show (DUECALL_AGI_SECRET)."""
        return self._calls[key].agi_secret

    def peek(self, key: str) -> Prepared | None:
        """The call's IVR state while it runs (the engine saves its steps as they happen)."""
        return self._calls.get(key)

    def take(self, key: str) -> Prepared | None:
        """The call's IVR state, once; the engine calls this when the call has ended."""
        return self._calls.pop(key, None)

    def admit(self, session: AgiSession) -> Prepared:
        """The call this session may drive; AgiRefused unless it shows the call's unused secret.

        A refusal changes nothing: the real call can still connect with its secret.
        """
        prepared = self._calls.get(session.call_key)
        if prepared is None:  # not ours (e.g. placed before a restart): the apology, not silence
            raise LookupError(f"no prepared IVR for call {session.call_key!r}")
        shown = session.args[1] if len(session.args) > 1 else ""
        if not hmac.compare_digest(shown.encode(), prepared.agi_secret.encode()):
            why = "no AGI secret" if not shown else "a wrong AGI secret"
            raise AgiRefused(f"call {session.call_key} (uniqueid {session.uniqueid!r}): {why}")
        if prepared.admitted:
            raise AgiRefused(f"call {session.call_key}: its AGI secret was already used")
        prepared.admitted = True
        return prepared

    async def handle(self, session: AgiSession) -> None:
        prepared = self.admit(session)
        io = AgiIo(self, session, prepared)

        async def opt_out() -> None:
            await self.on_opt_out(prepared.account, prepared.attempt_id)

        flow = IvrRun(
            prepared.script,
            prepared.fields,
            io,
            self.now,
            opt_out,
            lambda d: spoken_date(d, prepared.script.locale),
            balance_of=self._balance_of(prepared.account),
            balance_timeout=self.balance_timeout,
        )
        try:
            prepared.result = flow.result
            await flow.run()
            await session.set_variable(Var.OUTCOME, flow.result.outcome.value)
            await session.set_variable(Var.STAGE, Stage.DONE)
        except AgiHangup:
            log.debug("call %s hung up in node %s", session.call_key, (flow.result.nodes or ["-"])[-1])
            raise

    def _balance_of(self, account: Account) -> Callable[[], Awaitable[int | None]] | None:
        check = self.balance_of
        if check is None:
            return None

        async def balance() -> int | None:
            return await check(account)

        return balance


def by_name(paths: Sequence[Path], scripts: Sequence[Script]) -> dict[str, Script]:
    """Scripts by their name (file stem); two files with one name are a ScriptError naming both."""
    named: dict[str, Script] = {}
    where: dict[str, Path] = {}
    for path, script in zip(paths, scripts, strict=True):
        if script.name in named:
            raise ScriptError(
                [f"{path}: a script named {script.name!r} is already loaded from {where[script.name]}"]
            )
        named[script.name], where[script.name] = script, path
    return named


def _fill(template: str, script: Script) -> str:
    return template.format(lender=script.lender, callback=spoken_digits(script.callback, script.locale))


class AgiIo:
    """The flow's `Io` over a FastAGI session: prompts by STREAM FILE, replies by keys or speech."""

    def __init__(self, service: IvrService, session: AgiSession, prepared: Prepared) -> None:
        self.service = service
        self.session = session
        self.prepared = prepared
        self.voice = service.voice(prepared.script)
        self._prompts_played = 0
        self._utterances = 0

    async def play(self, where: str, text: str, keys: str) -> str | None:
        recording = self._recording(where)
        if recording is not None:  # `text` is its transcript, kept in the steps
            path = await self.service.prompts.recorded(recording)
        else:
            path = await self.service.prompts.render(text, self.voice)  # a hit unless it names the call
        if self._prompts_played == 0:
            self.prepared.first_prompt_at = self.service.now()
        digit = await self.session.stream_file(playback_target(path), keys)
        self._prompts_played += 1
        if self._prompts_played == 1:
            # The first prompt was heard to the end (or answered): not a hang-up "during the first prompt".
            await self.session.set_variable(Var.STAGE, Stage.MENU)
        return digit

    def _recording(self, where: str) -> Path | None:
        """The recorded prompt of the node whose `say` is at `where` (nodes.<key>.say), if it has one."""
        script = self.prepared.script
        key = where.removeprefix("nodes.").removesuffix(".say")
        return script.audio_path(key) if where == f"nodes.{key}.say" and key in script.nodes else None

    async def listen(self, keys: str, phrases: Sequence[str], timeout: float) -> Reply:
        recognizer = self.service.recognizer_for(self.prepared.script)
        if not phrases or recognizer is None:
            digit = await self.session.wait_for_digit(int(timeout * 1000))
            if digit is None and phrases:  # the script listens but no model is loaded: say why
                return Reply(error="no speech model")
            return Reply(digit=digit)
        self._utterances += 1
        target = self.prepared.recordings / f"reply-{self._utterances}"
        target.parent.mkdir(parents=True, exist_ok=True)
        recorded = await self.session.record_file(str(target), "wav", keys or "#", int(timeout * 1000), 2)
        if recorded.digit is not None:
            return Reply(digit=recorded.digit)
        if recorded.endpos < 1600:  # under 0.2 s of audio: nothing was said
            return Reply()
        try:
            heard = await recognizer.recognize(target.with_suffix(".wav"), phrases)
        except SpeechError as exc:  # a crash, a timeout, a VAD failure: no answer, never a guess
            return Reply(error=str(exc)[:200])
        return Reply(text=heard.text, confidence=heard.confidence, phrase=heard.phrase, refused=heard.reason)

    async def read_digits(self, count: int, timeout: float) -> str:
        digits = ""
        while len(digits) < count:
            digit = await self.session.wait_for_digit(int(timeout * 1000))
            if digit is None or digit == "#":
                break
            digits += digit
        return digits

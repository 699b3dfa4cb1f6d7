"""IVR reminder scripts: one YAML file each, validated at load.

A script is a set of named nodes. Every node speaks a text template (`say`) over
the account's fields, then either goes on (`next`), ends the call (`type: end`),
offers a menu answered by key or by voice (`type: menu`), or collects digits
(`type: input`, e.g. the date the borrower promises to pay).

Errors name the file, the line and the field, e.g.
`reminder.yaml:14: nodes.menu.options[2].next: no node named 'dispue'`.

A script is data from whoever writes it, so reading one is bounded: at most MAX_SCRIPT_BYTES,
no YAML anchors or aliases (a 272-byte "billion laughs" file once took 1.1 GB), at most 16
levels of nesting (dialer/core/bounded_yaml.py, shared with the SMS templates), and templates
without format specs (`{lender:>999999999}` asks for a gigabyte of padding; `{lender:d}` fails
on every call).
"""

from __future__ import annotations

import string
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dialer.core import bounded_yaml
from dialer.core.bounded_yaml import Lines, Loc, YamlProblem
from dialer.core.errors import ScriptError, field_path
from dialer.core.vocab import PAYMENT_OUTCOMES, Outcome

MAX_SCRIPT_BYTES = 256 * 1024  # the shipped scripts are about 4 KB

# Fields a template may use. The first group differs per account (rendered before each call).
ACCOUNT_FIELDS = frozenset({"name", "amount", "currency", "due_date"})
SCRIPT_FIELDS = frozenset({"lender", "callback"})
CALL_FIELDS = frozenset({"promised_date"})  # known only during the call
FIELDS = ACCOUNT_FIELDS | SCRIPT_FIELDS | CALL_FIELDS
DEBT_FIELDS = frozenset({"amount", "due_date"})  # never before the right person is confirmed
VOICEMAIL_FIELDS = frozenset({"agent", "business", "callback"})  # all a machine's message may say
PAID_FIELDS = frozenset({"name"}) | SCRIPT_FIELDS  # what `paid_in_full` may say: nothing of the debt
VoiceMode = Literal["confirm", "keys", "direct"]
# What a false voice answer would do harm with: a wrong record (paid, promise, dispute, hardship) or
# a call ended as the wrong person. An opt-out is not among them (the cheap error: stop calling).
CONSEQUENTIAL = frozenset(
    {Outcome.PAID, Outcome.PROMISE_TO_PAY, Outcome.DISPUTE, Outcome.HARDSHIP_CALLBACK, Outcome.WRONG_NUMBER}
)
Problem = tuple[Loc, str]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Model):
    digit: str | None = Field(None, pattern=r"^[0-9*#]$")
    phrases: tuple[str, ...] = ()
    next: str | None = None
    outcome: Outcome | None = None
    confirm: str | None = None  # said after this option was heard by voice: "You said pay. Press 1 ..."

    @property
    def label(self) -> str:
        """How the audit trail names the option: its first phrase, else its key."""
        return self.phrases[0] if self.phrases else f"key {self.digit}"


class Answer(_Model):
    """One answer to a confirmation question: a key and the words that mean it."""

    digit: str = Field(pattern=r"^[0-9*#]$")
    phrases: tuple[str, ...] = ()  # empty: this answer by key only (e.g. ko-KR)


class Confirmation(_Model):
    """How a voice answer is confirmed before it takes effect (menus with `voice: confirm`)."""

    accept: Answer  # "yes, that is what I said" (YAML reads a bare `yes:` key as true: hence the name)
    reject: Answer
    again: str  # said when the answer was not confirmed, before the menu is asked again (keypad only)
    retries: int = Field(1, ge=0, le=3)  # the question again after silence or an unclear answer


class Voicemail(_Model):
    """The limited-content message left on an answering machine where the pack allows it
    (12 CFR 1006.2(j)): who calls, from which business, a request to call back, the number;
    nothing about the debt. `say` may use only VOICEMAIL_FIELDS."""

    say: str
    agent: str = Field(min_length=1)  # a person the borrower can ask for when calling back
    business: str | None = None  # a business name that says nothing of debt (default: lender)


class Retry(_Model):
    say: str
    retries: int = Field(2, ge=0, le=5)


class Node(_Model):
    type: Literal["message", "menu", "input", "end"] = "message"
    say: str
    # A recorded prompt played instead of speaking `say` (a WAV, relative to the script's folder);
    # `say` stays its transcript for the audit trail and the SMS.
    audio: str | None = None
    # menus: how a spoken answer is taken. confirm (the default): asked back before it takes effect;
    # keys: keypad only (stop phrases still heard); direct: at once (lint: only where nothing
    # consequential follows). Opt-out by voice is never confirmed: it is the cheap error.
    voice: VoiceMode = "confirm"
    next: str | None = None
    options: tuple[Option, ...] = ()
    no_input: Retry | None = None
    no_match: Retry | None = None
    fallback: str | None = None  # where to go when retries are used up (default: end, no_response)
    outcome: Outcome | None = None
    right_party: bool = False  # answering this menu confirms (or denies) the right person
    digits: int = Field(8, ge=1, le=16)  # input nodes: how many digits (a date is YYYYMMDD)
    max_days: int = Field(30, ge=0, le=366)  # input nodes: how far ahead a promised date may be


class Script(_Model):
    locale: str = Field(pattern=r"^[a-z]{2,3}-[A-Z]{2}$")
    lender: str
    callback: str
    start: str
    nodes: dict[str, Node]
    voice: str | None = None  # espeak voice; default from the locale
    rate: int = Field(150, ge=80, le=400)
    listen: bool = True  # accept spoken replies in menus
    voicemail: Voicemail | None = None  # left on answering machines where the pack allows (docs/ivr.md)
    confidence: float = Field(0.6, ge=0, le=1)  # below it a spoken reply is asked again
    stop_phrases: tuple[str, ...] = ()  # ways of saying "stop calling me": opt-out in every menu
    confirm: Confirmation | None = None  # needed when a menu takes voice answers with `voice: confirm`
    # Said instead of the amount when the balance check during the call finds the account paid
    # in full (docs/ivr.md); None: the closing after the menu is said instead.
    paid_in_full: str | None = None
    name: str = ""  # set from the file name
    folder: str = ""  # set from the file's folder: recorded prompts (`audio:`) are relative to it

    def audio_path(self, key: str) -> Path | None:
        """The recorded prompt node `key` plays instead of speaking its `say` (None: it speaks)."""
        audio = self.nodes[key].audio
        return None if audio is None else Path(self.folder) / audio

    def templates(self) -> Iterator[tuple[str, str]]:
        """(where, text) for every text the script can speak."""
        for key, node in self.nodes.items():
            yield f"nodes.{key}.say", node.say
            for kind in ("no_input", "no_match"):
                retry = getattr(node, kind)
                if retry is not None:
                    yield f"nodes.{key}.{kind}.say", retry.say
            for i, option in enumerate(node.options):
                if option.confirm is not None:
                    yield f"nodes.{key}.options.{i}.confirm", option.confirm
        if self.confirm is not None:
            yield "confirm.again", self.confirm.again
        if self.paid_in_full is not None:
            yield "paid_in_full", self.paid_in_full

    def menu_digits(self, key: str) -> str:
        return "".join(o.digit for o in self.nodes[key].options if o.digit)

    def opt_out_option(self, key: str) -> Option | None:
        return next((o for o in self.nodes[key].options if o.outcome is Outcome.OPT_OUT), None)

    def takes_voice(self, key: str) -> bool:
        """Whether the menu `key` takes spoken answers other than a stop request."""
        return self.listen and self.nodes[key].voice != "keys"

    def speaks_of_money(self, key: str) -> bool:
        """Node `key` says the amount or due date, or asks for a payment or a promise to pay:
        the IVR checks the balance before the first such node (docs/ivr.md)."""
        node = self.nodes[key]
        texts = [node.say, *(r.say for r in (node.no_input, node.no_match) if r is not None)]
        texts += [o.confirm for o in node.options if o.confirm is not None]
        outcomes = {node.outcome, *(o.outcome for o in node.options)}
        return any(_names(t) & DEBT_FIELDS for t in texts) or bool(outcomes & PAYMENT_OUTCOMES)

    def closing_after(self, key: str) -> str | None:
        """The close said when the balance is unknown at node `key`: the fallback (the "nothing
        chosen" end, e.g. `acknowledged`) of the first menu from `key` on, if it is an end node that
        speaks of no money. None: the script has no such close."""
        seen: set[str] = set()
        current: str | None = key
        while current is not None and current not in seen and self.nodes[current].type == "message":
            seen.add(current)
            current = self.nodes[current].next
        node = self.nodes[current] if current is not None else None
        close = node.fallback if node is not None and node.type == "menu" else None
        if close is None or self.nodes[close].type != "end" or self.speaks_of_money(close):
            return None
        return close

    def needs_confirming(self, key: str, option: Option) -> bool:
        """A spoken `option` in menu `key` is asked back before it takes effect."""
        node = self.nodes[key]
        return node.voice == "confirm" and consequential(node, option)


def _names(text: str) -> set[str]:
    """The fields a template names (a bad template names none: it is reported on its own)."""
    try:
        return {f for _, f, _, _ in string.Formatter().parse(text) if f}
    except ValueError:
        return set()


def consequential(node: Node, option: Option) -> bool:
    """Whether taking `option` on a false hearing would harm: it confirms (or denies) the right
    person, so the debt is spoken next, or it records an outcome (paid, promise, dispute, hardship,
    wrong number). An opt-out is the cheap error; a choice that only leads on (e.g. to a date typed
    on the keypad) records nothing by itself."""
    if option.outcome is Outcome.OPT_OUT:
        return False
    return node.right_party or option.outcome in CONSEQUENTIAL


def load_script(path: Path) -> Script:
    return load_located(path)[0]


def load_located(path: Path) -> tuple[Script, Lines]:
    """The script and where each of its fields is in the file (for later messages, e.g. lint)."""
    try:
        text = bounded_yaml.read_text(path, MAX_SCRIPT_BYTES, "a reminder script")
    except YamlProblem as exc:
        raise ScriptError([str(exc)]) from exc
    return _parse(text, path)


def _too_large(path: Path) -> str:
    return f"{path}: larger than {MAX_SCRIPT_BYTES // 1024} KiB: not a reminder script"


def parse_script(text: str, path: Path) -> Script:
    return _parse(text, path)[0]


def _parse(text: str, path: Path) -> tuple[Script, Lines]:
    if len(text.encode("utf-8")) > MAX_SCRIPT_BYTES:
        raise ScriptError([_too_large(path)])
    try:
        data, where = bounded_yaml.parse(text, path, "a script")
    except YamlProblem as exc:
        raise ScriptError([str(exc)]) from exc
    if not isinstance(data, dict):
        raise ScriptError([f"{path}:1: a script is a mapping with locale, lender, callback, start, nodes"])
    try:
        script = Script.model_validate({**data, "name": path.stem, "folder": str(path.parent)})
    except ValidationError as exc:
        raise ScriptError(_schema_problems(path, where, exc)) from exc
    problems = [f"{path}:{where.find(p)}: {field_path(p)}: {msg}" for p, msg in _semantic_problems(script)]
    if problems:
        raise ScriptError(problems)
    return script, where


def _schema_problems(path: Path, where: Lines, error: ValidationError) -> list[str]:
    out = []
    for item in error.errors():
        loc = tuple(item["loc"])
        hint = ""
        if isinstance(item.get("input"), bool):  # YAML 1.1 reads yes/no/on/off as booleans
            hint = " (YAML read a yes/no word as true/false: put it in quotes)"
        out.append(f"{path}:{where.find(loc)}: {field_path(loc) or '(file)'}: {item['msg']}{hint}")
    return out


def _semantic_problems(script: Script) -> Iterator[Problem]:
    names = set(script.nodes)
    for key in script.nodes:
        audio = script.audio_path(key)
        problem = None if audio is None else _recording_problem(audio, script.nodes[key].say)
        if problem is not None:
            yield ("nodes", key, "audio"), problem
    if script.start not in names:
        yield ("start",), f"no node named {script.start!r}"
    if script.voicemail is not None:
        yield from _voicemail_problems(script.voicemail.say)
    if script.paid_in_full is not None:
        for field in sorted(_names(script.paid_in_full) - PAID_FIELDS):
            yield (
                ("paid_in_full",),
                f"{{{field[:40]}}}: a paid account hears nothing of the debt; "
                f"use only {', '.join('{' + f + '}' for f in sorted(PAID_FIELDS))}",
            )
    for where, text in script.templates():
        loc = tuple(int(p) if p.isdigit() else p for p in where.split("."))
        yield from _template_problems(loc, text)
    for key, node in script.nodes.items():
        yield from _node_problems(key, node, names)
    yield from _voice_problems(script)


def _voice_problems(script: Script) -> Iterator[Problem]:
    """Each spoken option of a confirming menu has its question; stop phrases mean only stop."""
    confirming = [k for k, n in script.nodes.items() if n.type == "menu" and script.takes_voice(k)]
    for key in confirming:
        for i, option in enumerate(script.nodes[key].options):
            yield from _option_voice_problems(script, key, i, option)
    asks = any(
        o.phrases and script.needs_confirming(k, o) for k in confirming for o in script.nodes[k].options
    )
    if script.confirm is None and asks:
        yield (
            ("confirm",),
            "a menu confirms spoken answers: the script needs `confirm` (accept, reject, again)",
        )
    if script.confirm is not None:
        yield from _confirmation_problems(script.confirm, set(script.stop_phrases))


def _option_voice_problems(script: Script, key: str, i: int, option: Option) -> Iterator[Problem]:
    where: Loc = ("nodes", key, "options", i)
    if option.phrases and script.needs_confirming(key, option) and option.confirm is None:
        yield (*where, "confirm"), "a spoken answer here is confirmed first: give the question (confirm)"
    if option.outcome is Outcome.OPT_OUT:
        answers = (script.confirm.accept.digit, script.confirm.reject.digit) if script.confirm else ()
        if option.digit in answers:
            yield (*where, "digit"), "the opt-out key is also a confirmation answer (confirm.accept/reject)"
        return
    both = sorted(set(option.phrases) & set(script.stop_phrases))
    if both:
        yield (*where, "phrases"), f"{', '.join(both)} is a stop phrase: it can only mean opt-out"


def _confirmation_problems(confirm: Confirmation, stops: set[str]) -> Iterator[Problem]:
    if confirm.accept.digit == confirm.reject.digit:
        yield ("confirm", "reject", "digit"), f"accept and reject both use key {confirm.accept.digit}"
    for answer in ("accept", "reject"):
        clash = sorted(set(getattr(confirm, answer).phrases) & stops)
        if clash:
            yield ("confirm", answer, "phrases"), f"{', '.join(clash)} is a stop phrase"


def _voicemail_problems(text: str) -> Iterator[Problem]:
    """A machine's message is heard by whoever plays it back: no account field, nothing of the debt."""
    path: Loc = ("voicemail", "say")
    try:
        parts = [(f, spec or conv) for _, f, spec, conv in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        yield path, f"bad template: {exc}"
        return
    allowed = ", ".join("{" + f + "}" for f in sorted(VOICEMAIL_FIELDS))
    for field in sorted({f for f, _ in parts} - VOICEMAIL_FIELDS):
        yield (
            path,
            f"{{{field[:40]}}} in a voicemail message: a limited-content message (12 CFR 1006.2(j)) "
            f"may use only {allowed}",
        )
    for field, extra in parts:
        if extra:
            yield path, f"{{{field[:40]}}}: no format spec or conversion allowed; write {{{field[:40]}}}"


def _template_problems(path: Loc, text: str) -> Iterator[Problem]:
    try:
        parts = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        yield path, f"bad template: {exc}"
        return
    for field in sorted({f for f, _, _ in parts} - FIELDS):
        yield path, f"unknown field {{{field}}}; known: {', '.join(sorted(FIELDS))}"
    for field, spec, conversion in parts:
        if spec or conversion:
            # Every field is already spoken text: a spec can only break the render (`:d`) or blow
            # it up (`:>999999999`), so none is allowed.
            written = (
                "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            )
            yield path, f"{written[:80]}: no format spec or conversion allowed; write {{{field}}}"


def _node_problems(key: str, node: Node, names: set[str]) -> Iterator[Problem]:
    base: Loc = ("nodes", key)
    chosen = [((*base, "outcome"), node.outcome)]
    chosen += [((*base, "options", i, "outcome"), o.outcome) for i, o in enumerate(node.options)]
    for where, outcome in chosen:
        if outcome is Outcome.ALREADY_PAID:
            yield where, "already_paid is the balance check's, never a choice (paid_in_full; docs/ivr.md)"
    for attr in ("next", "fallback"):
        target = getattr(node, attr)
        if target is not None and target not in names:
            yield (*base, attr), f"no node named {target!r}"
    if node.type == "menu":
        yield from _menu_problems(base, node, names)
    elif node.options:
        yield (*base, "options"), f"only menus have options (this node is {node.type!r})"
    if node.type in ("message", "input") and node.next is None:
        yield (*base, "next"), f"a {node.type} node needs `next`"
    if node.type == "end" and node.next is not None:
        yield (*base, "next"), "an end node ends the call: remove `next`"


def _menu_problems(base: Loc, node: Node, names: set[str]) -> Iterator[Problem]:
    if not node.options:
        yield (*base, "options"), "a menu needs options"
    seen: dict[str, int] = {}
    for i, option in enumerate(node.options):
        where = (*base, "options", i)
        if option.digit is None and not option.phrases:
            yield where, "an option needs a digit or phrases"
        if option.digit is not None and option.digit in seen:
            yield (*where, "digit"), f"digit {option.digit} is already option {seen[option.digit]}"
        if option.digit is not None:
            seen[option.digit] = i
        if option.next is None and option.outcome is None:
            yield where, "an option needs `next` or `outcome`"
        if option.next is not None and option.next not in names:
            yield (*where, "next"), f"no node named {option.next!r}"
        if option.confirm is not None and option.outcome is Outcome.OPT_OUT:
            yield (*where, "confirm"), "a stop request is never asked back (opt-out needs no confirming)"


MAX_RECORDING_SECONDS = 300  # a recorded prompt (`audio:`)


def _recording_problem(path: Path, transcript: str) -> str | None:
    """Why a recorded prompt cannot be played (None: a PCM WAV that ivr.tts converts for Asterisk)."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(transcript) if f}
        named = fields & (ACCOUNT_FIELDS | CALL_FIELDS)
    except ValueError:
        named = set()  # a bad template: reported on `say`
    if named:
        return f"a recording cannot say the account's {{{sorted(named)[0]}}}: speak this node (no audio)"
    try:
        with wave.open(str(path), "rb") as reader:
            channels, width, rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
            seconds = reader.getnframes() / rate if rate else 0.0
    except FileNotFoundError:
        return f"{path}: no such file"
    except (OSError, wave.Error, EOFError) as exc:
        return f"{path}: not a PCM WAV file ({exc})"
    if channels not in (1, 2) or width not in (1, 2) or not 8000 <= rate <= 48000:
        shape = f"{channels} ch, {8 * width}-bit, {rate} Hz"
        return f"{path}: {shape}: use an 8-48 kHz, 8- or 16-bit, mono or stereo WAV"
    if not 0 < seconds <= MAX_RECORDING_SECONDS:
        return f"{path}: {seconds:.1f} s long: a prompt lasts up to {MAX_RECORDING_SECONDS} s"
    return None

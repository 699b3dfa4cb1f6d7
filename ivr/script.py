"""IVR reminder scripts: one YAML file each, validated at load.

A script is a set of named nodes. Every node speaks a text template (`say`) over
the account's fields, then either goes on (`next`), ends the call (`type: end`),
offers a menu answered by key or by voice (`type: menu`), or collects digits
(`type: input`, e.g. the date the borrower promises to pay).

Errors name the file, the line and the field, e.g.
`reminder.yaml:14: nodes.menu.options[2].next: no node named 'dispue'`.

A script is data from whoever writes it, so reading one is bounded: at most MAX_SCRIPT_BYTES,
no YAML anchors or aliases (a 272-byte "billion laughs" file once took 1.1 GB), at most
MAX_DEPTH levels of nesting, and templates without format specs (`{lender:>999999999}` asks
for a gigabyte of padding; `{lender:d}` fails on every call).
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dialer.core.errors import ScriptError, field_path
from dialer.core.vocab import Outcome

MAX_SCRIPT_BYTES = 256 * 1024  # the shipped scripts are about 4 KB
MAX_DEPTH = 16  # the deepest a script needs is 7: nodes.<key>.options[i].phrases[j]

# Fields a template may use. The first group differs per account (rendered before each call).
ACCOUNT_FIELDS = frozenset({"name", "amount", "currency", "due_date"})
SCRIPT_FIELDS = frozenset({"lender", "callback"})
CALL_FIELDS = frozenset({"promised_date"})  # known only during the call
FIELDS = ACCOUNT_FIELDS | SCRIPT_FIELDS | CALL_FIELDS
DEBT_FIELDS = frozenset({"amount", "due_date"})  # never before the right person is confirmed
Loc = tuple[str | int, ...]  # a place in the YAML document: ("nodes", "menu", "options", 2)
Problem = tuple[Loc, str]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Model):
    digit: str | None = Field(None, pattern=r"^[0-9*#]$")
    phrases: tuple[str, ...] = ()
    next: str | None = None
    outcome: Outcome | None = None


class Retry(_Model):
    say: str
    retries: int = Field(2, ge=0, le=5)


class Node(_Model):
    type: Literal["message", "menu", "input", "end"] = "message"
    say: str
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
    confidence: float = Field(0.6, ge=0, le=1)  # below it a spoken reply is asked again
    name: str = ""  # set from the file name

    def templates(self) -> Iterator[tuple[str, str]]:
        """(where, text) for every text the script can speak."""
        for key, node in self.nodes.items():
            yield f"nodes.{key}.say", node.say
            for kind in ("no_input", "no_match"):
                retry = getattr(node, kind)
                if retry is not None:
                    yield f"nodes.{key}.{kind}.say", retry.say

    def menu_digits(self, key: str) -> str:
        return "".join(o.digit for o in self.nodes[key].options if o.digit)


@dataclass(frozen=True)
class _Lines:
    """YAML path -> line number, for error messages."""

    lines: dict[Loc, int]

    def find(self, path: Loc) -> int:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)


def _index(node: yaml.Node, path: Loc, out: dict[Loc, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(*path, key.value)] = key.start_mark.line + 1
            _index(value, (*path, key.value), out)
            out[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), out)


def line_index(root: yaml.Node | None) -> _Lines:
    lines: dict[Loc, int] = {}
    if root is not None:
        _index(root, (), lines)
    return _Lines(lines)


def load_script(path: Path) -> Script:
    return load_located(path)[0]


def load_located(path: Path) -> tuple[Script, _Lines]:
    """The script and where each of its fields is in the file (for later messages, e.g. lint)."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_SCRIPT_BYTES + 1)  # never more, whatever the file's size
        if len(data) > MAX_SCRIPT_BYTES:
            raise ScriptError([_too_large(path)])
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError([f"{path}: cannot read: {exc}"]) from exc
    return _parse(text, path)


def _too_large(path: Path) -> str:
    return f"{path}: larger than {MAX_SCRIPT_BYTES // 1024} KiB: not a reminder script"


def parse_script(text: str, path: Path) -> Script:
    return _parse(text, path)[0]


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML, but not in a script: an anchor, an alias, nesting past MAX_DEPTH."""


class _ScriptLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases and nesting deeper than MAX_DEPTH.

    Aliases are what a "billion laughs" file multiplies (and a self-referencing one makes a cycle
    that every later walk recurses into); a script has no use for them. The depth limit stops
    `[[[[...` before PyYAML's recursive composer (and everything after it) runs out of stack.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]  # (untyped in the stubs)
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _refused(event, "anchors and aliases (&name, *name) are not allowed in a script")
        if self._depth >= MAX_DEPTH:
            raise _refused(event, f"nested more than {MAX_DEPTH} levels deep")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _refused(event: yaml.Event, problem: str) -> _Refused:
    mark = event.start_mark if isinstance(event.start_mark, yaml.error.Mark) else None
    return _Refused(None, None, problem, mark)


def _compose(text: str) -> tuple[yaml.Node | None, Any]:
    """The YAML node tree (for line numbers) and the data built from it: one parse."""
    loader = _ScriptLoader(text)
    try:
        root = loader.get_single_node()
        return root, (loader.construct_document(root) if root is not None else None)
    finally:
        loader.dispose()


def _parse(text: str, path: Path) -> tuple[Script, _Lines]:
    if len(text.encode("utf-8")) > MAX_SCRIPT_BYTES:
        raise ScriptError([_too_large(path)])
    try:
        return _parse_bounded(text, path)
    except RecursionError:  # a guard missed some shape: still an error that names the file
        raise ScriptError([f"{path}: nested too deeply to read"]) from None


def _parse_bounded(text: str, path: Path) -> tuple[Script, _Lines]:
    try:
        root, data = _compose(text)
    except _Refused as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise ScriptError([f"{path}:{line}: {exc.problem}"]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise ScriptError([f"{path}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from exc
    except ValueError as exc:  # e.g. an integer of more than 4300 digits (Python's own limit)
        raise ScriptError([f"{path}: not a value a script can hold: {exc}"]) from exc
    where = line_index(root)
    if not isinstance(data, dict):
        raise ScriptError([f"{path}:1: a script is a mapping with locale, lender, callback, start, nodes"])
    try:
        script = Script.model_validate({**data, "name": path.stem})
    except ValidationError as exc:
        raise ScriptError(_schema_problems(path, where, exc)) from exc
    problems = [f"{path}:{where.find(p)}: {field_path(p)}: {msg}" for p, msg in _semantic_problems(script)]
    if problems:
        raise ScriptError(problems)
    return script, where


def _schema_problems(path: Path, where: _Lines, error: ValidationError) -> list[str]:
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
    if script.start not in names:
        yield ("start",), f"no node named {script.start!r}"
    for where, text in script.templates():
        yield from _template_problems(tuple(where.split(".")), text)
    for key, node in script.nodes.items():
        yield from _node_problems(key, node, names)


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

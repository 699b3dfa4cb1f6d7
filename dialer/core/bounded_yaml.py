"""YAML written by people (IVR scripts, SMS templates), read within bounds and with line numbers.

A file is data from whoever writes it, so reading one is bounded: at most `max_bytes`, no YAML
anchors or aliases (a 272-byte "billion laughs" file once took 1.1 GB; a self-referencing one
makes a cycle every later walk recurses into), at most MAX_DEPTH levels of nesting (`[[[[...`
would exhaust PyYAML's recursive composer). Every problem is a `YamlProblem` whose message
starts with `<file>:<line>:`; the caller raises it as its own error (ScriptError, TemplateError).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dialer.core.errors import field_path

MAX_DEPTH = 16
Loc = tuple[str | int, ...]


class YamlProblem(ValueError):
    """One problem with a file, as '<file>:<line>: <what>'."""


@dataclass(frozen=True)
class Lines:
    """Where each field of a file is: a field's line, else its nearest parent's."""

    lines: dict[Loc, int]

    def find(self, path: Loc) -> int:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def problem(self, file: Path, path: Loc, message: str) -> str:
        return f"{file}:{self.find(path)}: {field_path(path) or '(file)'}: {message}"


def read_text(path: Path, max_bytes: int, what: str) -> str:
    """The file as text, never reading more than `max_bytes` + 1 whatever its size."""
    try:
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise YamlProblem(f"{path}: larger than {max_bytes // 1024} KiB: not {what}")
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlProblem(f"{path}: cannot read: {exc}") from exc


def parse(text: str, path: Path, what: str) -> tuple[Any, Lines]:
    """The data and where each field is, or a `YamlProblem` naming the file and line.

    `what` names the kind of file in messages: "a script", "an SMS template file"."""
    try:
        root, data = _compose(text, what)
    except _Refused as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise YamlProblem(f"{path}:{line}: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise YamlProblem(f"{path}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    except ValueError as exc:  # e.g. an integer of more than 4300 digits (Python's own limit)
        raise YamlProblem(f"{path}: not a value {what} can hold: {exc}") from exc
    except RecursionError:  # a guard missed some shape: still an error that names the file
        raise YamlProblem(f"{path}: nested too deeply to read") from None
    lines: dict[Loc, int] = {}
    if root is not None:
        _index(root, (), lines)
    return data, Lines(lines)


def yes_no_hint(value: object) -> str:
    """YAML 1.1 reads yes/no/on/off as booleans: say so where a text was expected."""
    return " (YAML read a yes/no word as true/false: put it in quotes)" if isinstance(value, bool) else ""


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML, but not here: an anchor, an alias, nesting past MAX_DEPTH."""


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, text: str, what: str) -> None:
        super().__init__(text)
        self._depth = 0
        self._what = what

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]  # (untyped in the stubs)
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _refused(event, f"anchors and aliases (&name, *name) are not allowed in {self._what}")
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


def _compose(text: str, what: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data built from it: one parse."""
    loader = _BoundedLoader(text, what)
    try:
        root = loader.get_single_node()
        return root, (loader.construct_document(root) if root is not None else None)
    finally:
        loader.dispose()


def _index(node: yaml.Node, path: Loc, out: dict[Loc, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _index(value, (*path, key.value), out)
            out[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), out)

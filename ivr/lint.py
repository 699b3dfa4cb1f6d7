"""`duecall ivr lint`: check a script against what a contact policy requires.

What each policy requires is data (ivr/lint_rules.yaml); the checks are here.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from dialer.core.bounded_yaml import Loc
from dialer.core.errors import ConfigError, ScriptError, field_path
from dialer.core.vocab import Outcome
from ivr.script import DEBT_FIELDS, Node, Problem, Script, consequential, load_located

CHECKS = (
    "lender_in_first_prompt",
    "recorded_notice",
    "callback_number",
    "opt_out_in_every_menu",
    "no_debt_before_right_party",
    "voicemail_limited_content",
    "voice_confirmed_where_it_matters",
    "stop_phrases",
)


def load_rules() -> dict[str, Any]:
    text = (resources.files("ivr") / "lint_rules.yaml").read_text(encoding="utf-8")
    rules: dict[str, Any] = yaml.safe_load(text)
    return rules


def policies() -> list[str]:
    return sorted(load_rules()["policies"])


def lint(script: Script, policy: str) -> list[Problem]:
    """Problems with `script` under `policy` (empty: compliant), each with its place in the file."""
    rules = load_rules()
    if policy not in rules["policies"]:
        raise ConfigError(f"unknown policy {policy!r}; known: {', '.join(policies())}")
    wanted = rules["policies"][policy]
    words = rules["notice_words"].get(script.locale.split("-")[0], [])
    problems: list[Problem] = []
    for check in CHECKS:
        if wanted.get(check):
            problems += list(_CHECKERS[check](script, words))
    return problems


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def _texts(node: Node) -> list[str]:
    return [node.say] + [r.say for r in (node.no_input, node.no_match) if r is not None]


def _lender_first(script: Script, words: list[str]) -> Iterator[Problem]:
    if "lender" not in _fields(script.nodes[script.start].say):
        yield ("nodes", script.start, "say"), "the first prompt must name the lender ({lender})"


def _before_first_menu(script: Script) -> list[str]:
    path: list[str] = []
    key: str | None = script.start
    while key is not None and key not in path:
        path.append(key)
        node = script.nodes[key]
        if node.type != "message":
            break
        key = node.next
    return path


def _recorded_notice(script: Script, words: list[str]) -> Iterator[Problem]:
    early = _before_first_menu(script)
    said = " ".join(script.nodes[k].say for k in early).lower()
    if not any(w.lower() in said for w in words):
        known = ", ".join(words) or "no words known for " + script.locale
        yield ("nodes", early[0], "say"), f"no recorded-call notice before the first question ({known})"


def _callback(script: Script, words: list[str]) -> Iterator[Problem]:
    if not any("callback" in _fields(t) for node in script.nodes.values() for t in _texts(node)):
        yield ("nodes",), "no prompt gives the callback number ({callback})"


def _opt_out_everywhere(script: Script, words: list[str]) -> Iterator[Problem]:
    for key, node in script.nodes.items():
        if node.type != "menu":
            continue
        stop = script.opt_out_option(key)
        if stop is None:
            yield ("nodes", key, "options"), "no opt-out option (outcome: opt_out)"
        elif stop.digit is None:
            yield ("nodes", key, "options"), "the opt-out option needs a key (digit), not only words"


def _voice_confirmed(script: Script, words: list[str]) -> Iterator[Problem]:
    """A spoken answer that confirms the person or records an outcome is asked back first."""
    if not script.listen:
        return
    for key, node in script.nodes.items():
        if node.type != "menu" or node.voice != "direct":
            continue
        for option in node.options:
            if option.phrases and consequential(node, option):
                what = option.outcome.value if option.outcome else "confirms the right person"
                yield (
                    ("nodes", key, "voice"),
                    f"{option.label!r} ({what}) would take effect as heard: use voice: confirm or keys",
                )


def _stop_phrases(script: Script, words: list[str]) -> Iterator[Problem]:
    if not script.stop_phrases:
        yield ("stop_phrases",), "no stop phrases: list how a borrower says 'stop calling me' (stop_phrases)"


def _unconfirmed_nodes(script: Script) -> set[str]:
    """Nodes a caller can reach without confirming they are the right person."""
    seen: set[str] = set()
    todo = [script.start]
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        node = script.nodes[key]
        targets = [node.next, node.fallback]
        for option in node.options:
            confirms = node.right_party and option.outcome not in (Outcome.WRONG_NUMBER, Outcome.OPT_OUT)
            if not confirms:
                targets.append(option.next)
        todo += [t for t in targets if t is not None]
    return seen


def _no_debt_early(script: Script, words: list[str]) -> Iterator[Problem]:
    if not any(n.right_party for n in script.nodes.values()):
        uses = any(_fields(t) & DEBT_FIELDS for n in script.nodes.values() for t in _texts(n))
        if uses:
            yield (
                ("nodes",),
                "debt details are spoken but no menu confirms the right person (right_party: true)",
            )
        return
    for key in sorted(_unconfirmed_nodes(script)):
        for text in _texts(script.nodes[key]):
            leaked = _fields(text) & DEBT_FIELDS
            if leaked:
                yield (
                    ("nodes", key, "say"),
                    (f"speaks {', '.join(sorted(leaked))} where the right person may not be confirmed"),
                )


# What a limited-content message must carry (12 CFR 1006.2(j)(1)): the business, a person, the number.
_VOICEMAIL_NEEDS = {
    "business": "the business name ({business})",
    "agent": "a person to ask for ({agent})",
    "callback": "the callback number ({callback})",
}


def _voicemail_limited(script: Script, words: list[str]) -> Iterator[Problem]:
    """The machine's message says who calls and the number, nothing about the debt (1006.2(j))."""
    message = script.voicemail
    if message is None:
        return  # no message: none is left
    where: Loc = ("voicemail", "say")
    used = _fields(message.say)
    for field, what in _VOICEMAIL_NEEDS.items():
        if field not in used:
            yield where, f"a voicemail message must give {what} (12 CFR 1006.2(j))"
    spoken = message.say.format(agent=message.agent, business=message.business or script.lender, callback="")
    debt_words = load_rules()["debt_words"].get(script.locale.split("-")[0], [])
    found = [w for w in debt_words if _says(spoken, w)]
    if found:
        yield where, f"a voicemail message says nothing about the debt: it says {', '.join(found)}"


def _says(text: str, word: str) -> bool:
    """Whole words for scripts with spaces between words; anywhere for Chinese and Korean."""
    if word.isascii():
        return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE) is not None
    return word in text


_CHECKERS = {
    "lender_in_first_prompt": _lender_first,
    "recorded_notice": _recorded_notice,
    "callback_number": _callback,
    "opt_out_in_every_menu": _opt_out_everywhere,
    "no_debt_before_right_party": _no_debt_early,
    "voicemail_limited_content": _voicemail_limited,
    "voice_confirmed_where_it_matters": _voice_confirmed,
    "stop_phrases": _stop_phrases,
}


def lint_file(path: Path, policy: str) -> list[str]:
    """Lint a script file; problems read `file:line: field: message`."""
    script, where = load_located(path)
    return [f"{path}:{where.find(loc)}: {field_path(loc)}: {msg}" for loc, msg in lint(script, policy)]


def require_compliant(paths: list[Path], policy: str) -> None:
    """Refuse to run a campaign whose scripts fail the policy's lint (ScriptError lists them all)."""
    problems = [problem for path in paths for problem in lint_file(path, policy)]
    if problems:
        raise ScriptError([f"the scripts do not meet the {policy} requirements:", *problems])

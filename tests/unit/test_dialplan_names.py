"""The dialplan contract (issue 10 item 3): every name Python shares with extensions.conf is defined
once, in dialer/core/dialplan.py, and is really in the dialplan.

A renamed context or variable on either side used to fail only in a call against the real Asterisk
(or silently: a UserEvent under a new name is simply never matched). Now the first test fails when
the module names something the dialplan lacks, and the second when Python spells a dialplan name as
a literal anywhere else.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from dialer.core import dialplan
from dialer.core.dialplan import Context, Event, Header, Stage, Var
from tests.support.project import PROJECT_ROOT

CONF = PROJECT_ROOT / "asterisk" / "conf" / "extensions.conf"
PACKAGES = ("dialer", "ivr", "audit", "duecall")
MODULE = Path("dialer/core/dialplan.py")
# Literals left where another engineer's work is under way; each names the file and the literal.
KNOWN: set[tuple[Path, str]] = set()  # every dialplan name in Python comes from dialplan.py


def dialplan_lines() -> list[str]:
    """The dialplan without comments."""
    return [line.split(";", 1)[0] for line in CONF.read_text(encoding="utf-8").splitlines()]


def sections() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    current = ""
    for line in dialplan_lines():
        if m := re.match(r"\s*\[([^\]]+)\]", line):
            current = m.group(1)
            found[current] = []
        elif line.strip():
            found.setdefault(current, []).append(line)
    return found


DIALPLAN = "\n".join(dialplan_lines())


def dialplan_variables() -> set[str]:
    """DUECALL_* names the dialplan sets or reads (${NAME}, Set(NAME=...), Read(NAME,...))."""
    return set(re.findall(r"\b(DUECALL_[A-Z_]*[A-Z])\b", DIALPLAN)) - {"DUECALL_CAUSE_"}


def user_events() -> dict[str, set[str]]:
    """Each UserEvent name with its headers."""
    events: dict[str, set[str]] = {}
    for name, body in re.findall(r"UserEvent\((\w+),([^\n]*)\)", DIALPLAN):
        events[name] = set(re.findall(r"(\w+): ", body))
    return events


# -- every name in the module is in the dialplan ------------------------------------------------------


def test_contexts_and_the_ivr_exten_are_in_the_dialplan() -> None:
    found = sections()
    assert [c for c in Context if c not in found] == []
    assert any(line.strip().startswith(f"exten => {dialplan.IVR_EXTEN},") for line in found[Context.IVR])


def test_channel_variables_are_in_the_dialplan() -> None:
    assert [v for v in Var if v not in dialplan_variables()] == []
    # the ones the dialplan reads are read there (${NAME}), the ones the IVR sets are tested there
    assert [v for v in Var if "${" + v + "}" not in DIALPLAN] == []


def test_stages_are_the_values_the_dialplan_sets_or_tests() -> None:
    stages = set(re.findall(r"Set\(DUECALL_STAGE=(\w+)\)", DIALPLAN))
    stages |= set(re.findall(r'"\$\{DUECALL_STAGE\}" = "(\w+)"', DIALPLAN))
    assert set(Stage) == stages


def test_user_events_and_their_headers_are_in_the_dialplan() -> None:
    events = user_events()
    assert [e for e in Event if e not in events] == []
    sent = set().union(*(events[e] for e in Event))
    assert [h for h in Header if h not in sent] == []
    assert all(Header.ATTEMPT in events[e] for e in Event)


def test_astdb_families_and_keys_are_in_the_dialplan() -> None:
    attempt = "${" + Var.ATTEMPT + "}"
    for key in (dialplan.ASTDB_DIAL, dialplan.ASTDB_IVR):
        assert f"DB({dialplan.astdb_call_family(attempt)}/{key})=" in DIALPLAN
    number = "${SIM_NUMBER}"
    for key in (dialplan.SIM_KEYS, dialplan.SIM_AUDIO, dialplan.SIM_DELAY, dialplan.SIM_CALLS):
        assert f"({dialplan.sim_family(number)}/{key})" in DIALPLAN


# -- Python spells no dialplan name outside the module ------------------------------------------------


def python_files() -> list[Path]:
    return sorted(p.relative_to(PROJECT_ROOT) for pkg in PACKAGES for p in (PROJECT_ROOT / pkg).rglob("*.py"))


def string_literals(path: Path) -> list[tuple[int, str]]:
    """Every string constant in the code (f-string parts too), docstrings left out."""
    tree = ast.parse((PROJECT_ROOT / path).read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def dialplan_names_in(text: str) -> set[str]:
    """The dialplan's own names a literal spells: variables, contexts, UserEvents, AstDB families."""
    variables = dialplan_variables()
    contexts = set(sections())
    events = set(user_events())
    names = {v for v in re.findall(r"DUECALL_[A-Z_]*[A-Z]", text) if v in variables}
    names |= {c for c in re.findall(r"duecall-[a-z]+(?:-[a-z]+)*", text) if c in contexts}
    names |= {e for e in re.findall(r"DueCall[A-Z]\w*", text) if e in events}
    if re.match(r"/?(duecall|sim)/", text):
        names.add(text.lstrip("/").split("/")[0] + "/")
    return names


def test_python_spells_no_dialplan_name_outside_the_module() -> None:
    stray = [
        f"{path}:{line}: {name}"
        for path in python_files()
        if path != MODULE
        for line, text in string_literals(path)
        for name in sorted(dialplan_names_in(text))
        if (path, name) not in KNOWN
    ]
    assert stray == []


def test_astdb_families_are_never_literals() -> None:
    """{"Family": "duecall"}: the family alone is a word too common to grep for; look at the AMI calls."""
    stray = []
    for path in python_files():
        if path == MODULE:
            continue
        for node in ast.walk(ast.parse((PROJECT_ROOT / path).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values, strict=True):
                    family = isinstance(k, ast.Constant) and k.value == "Family"
                    if family and isinstance(v, ast.Constant | ast.JoinedStr):
                        stray.append(f"{path}:{node.lineno}")
    assert stray == []


def test_the_stray_check_sees_a_literal() -> None:
    """The check itself: a hand-written name in code is found; one in a docstring or comment is not."""
    assert dialplan_names_in('duecall-dial-hangup,s,1 with DUECALL_STAGE from "DueCallIvr"') == {
        "duecall-dial-hangup",
        "DUECALL_STAGE",
        "DueCallIvr",
    }
    assert dialplan_names_in("duecall/1-2") == {"duecall/"}
    assert dialplan_names_in("DUECALL_CONFIG duecall-device DueCallError") == set()

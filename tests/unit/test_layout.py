"""The repository's shape (issue 10): tests split into unit and integration with shared helpers in
tests/support, no test module importing another, no file naming a path outside the repository."""

from __future__ import annotations

import ast
import re
import subprocess

from tests.support.project import PROJECT_ROOT

TESTS = PROJECT_ROOT / "tests"
# The real parts a unit test may not start: these fixtures live in tests/integration/conftest.py.
INTEGRATION_FIXTURES = {"asterisk"}
OUTSIDE = re.compile(r"\.\./shared|/work/|\.library/")


def _imports(path: str) -> set[str]:
    tree = ast.parse((TESTS / path).read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_test_module_imports_another() -> None:
    modules = sorted(str(p.relative_to(TESTS)) for p in TESTS.rglob("*.py"))
    assert any(m.startswith("unit/") for m in modules) and any(m.startswith("integration/") for m in modules)
    offenders = {
        m: sorted(i for i in _imports(m) if i.startswith("tests.") and not i.startswith("tests.support"))
        for m in modules
    }
    assert {m: i for m, i in offenders.items() if i} == {}


def test_support_never_imports_a_test_module() -> None:
    for path in (TESTS / "support").glob("*.py"):
        imported = _imports(str(path.relative_to(TESTS)))
        assert not {i for i in imported if i.startswith("tests.") and not i.startswith("tests.support")}, path


def test_unit_tests_use_no_real_asterisk() -> None:
    for path in (TESTS / "unit").glob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = {a.arg for a in node.args.args}
                assert not args & INTEGRATION_FIXTURES, (
                    f"{path.name}::{node.name} belongs in tests/integration"
                )
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
                marker = node.value.attr == "mark" and node.attr in INTEGRATION_FIXTURES
                assert not marker, f"{path.name}: the {node.attr} marker belongs in tests/integration"


def test_no_file_names_a_path_outside_the_repository() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    offenders = []
    for name in listed:
        path = PROJECT_ROOT / name
        if not path.is_file() or path.suffix in {".wav", ".png", ".zip", ".sqlite3", ".db"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [
            f"{name}: {m.group(0)}" for m in OUTSIDE.finditer(text) if name != "tests/unit/test_layout.py"
        ]
    assert offenders == []

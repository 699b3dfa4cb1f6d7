"""The store is the one door to the database: no code outside `dialer/store/` drives a connection.

The audit reads that run in a thread on a file path (`duecall audit verify`, bundle checks) open
SQLite read-only (`mode=ro`): they cannot write, and a read-only connection sees committed data.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.project import PROJECT_ROOT

PACKAGES = ("dialer", "ivr", "audit", "duecall")
# The audit's checks open a SQLite store's file read-only, through the store (SqliteFile).
READ_ONLY_FILE_READER = "dialer/store/audit_reads.py"


def _modules() -> list[Path]:
    found = []
    for package in PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            if not path.relative_to(PROJECT_ROOT).as_posix().startswith("dialer/store/"):
                found.append(path)
    return found


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_outside_the_store_opens_or_drives_a_database_connection() -> None:
    drivers: dict[str, set[str]] = {}
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        used = _imports(tree) & {"sqlite3", "aiosqlite"}
        if used:
            drivers[path.relative_to(PROJECT_ROOT).as_posix()] = used
        attributes = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert not attributes & {"conn", "write_audited", "_db", "_conn"}, path
    assert drivers == {}  # not even the audit's checks: they read through dialer/store/


def test_the_file_reader_opens_sqlite_read_only() -> None:
    tree = ast.parse((PROJECT_ROOT / READ_ONLY_FILE_READER).read_text(encoding="utf-8"))
    connects = [
        n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func).endswith("connect")
    ]
    assert connects and all("mode=ro" in ast.unparse(c) for c in connects)

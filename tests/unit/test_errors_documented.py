"""The exception tree: every DueCallError is defined in dialer.core.errors, as its docstring draws it."""

from __future__ import annotations

import importlib
import pkgutil
import re

import dialer.core.errors as errors
from dialer.core.errors import DueCallError

PACKAGES = ("duecall", "dialer", "ivr", "audit")
BRANCH = re.compile(r"^(?P<indent>(?:│   |    )*)(?:├── |└── )(?P<name>\w+)")


def documented_tree() -> dict[str, str]:
    """{class name: parent name} as the module docstring draws it."""
    assert errors.__doc__ is not None
    parents: dict[str, str] = {}
    stack = ["DueCallError"]
    for line in errors.__doc__.splitlines():
        if found := BRANCH.match(line):
            depth = len(found["indent"]) // 4 + 1
            del stack[depth:]
            parents[found["name"]] = stack[-1]
            stack.append(found["name"])
    return parents


def every_subclass(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *every_subclass(sub)]
    return found


def test_the_documented_tree_is_the_tree() -> None:
    for package in PACKAGES:  # every module, so that an error defined anywhere is seen
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, f"{package}."):
            if not module.name.endswith("__main__"):  # that one runs the CLI
                importlib.import_module(module.name)
    actual = {c.__name__: c.__mro__[1].__name__ for c in every_subclass(DueCallError)}
    assert documented_tree() == actual
    strays = [
        f"{c.__module__}.{c.__name__}"
        for c in every_subclass(DueCallError)
        if c.__module__ != errors.__name__
    ]
    assert strays == [], "define these in dialer/core/errors.py"

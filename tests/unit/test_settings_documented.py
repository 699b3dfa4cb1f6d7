"""Every setting of the config model is in duecall.toml, the file that documents them."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from dialer.core.config import Settings

TOML = Path(__file__).resolve().parents[2] / "duecall.toml"
SECTION = re.compile(r"^\[([a-z_.]+)\]")
KEY = re.compile(r"^#?\s*([a-z_]+)\s*=")  # a key, set or shown commented out with its default


def documented() -> dict[str, set[str]]:
    keys: dict[str, set[str]] = {}
    section = ""
    for line in TOML.read_text(encoding="utf-8").splitlines():
        if found := SECTION.match(line):
            section = found.group(1)
            keys.setdefault(section, set())
        elif section and (found := KEY.match(line)):
            keys[section].add(found.group(1))
    return keys


def test_every_setting_is_in_duecall_toml() -> None:
    keys = documented()
    missing = []
    for name, info in Settings.model_fields.items():
        section = info.annotation
        if not (isinstance(section, type) and issubclass(section, BaseModel)):
            continue  # retry (checked below) and root (the file's own folder)
        shown = keys.get(name, set())
        missing += [f"[{name}] {field}" for field in section.model_fields if field not in shown]
    assert missing == [], f"settings not documented in {TOML.name}: {missing}"


def test_every_default_retry_rule_is_in_duecall_toml() -> None:
    keys = documented()
    for disposition in Settings().retry:
        assert {"delay", "max_attempts"} <= keys.get(f"retry.{disposition}", set()), disposition

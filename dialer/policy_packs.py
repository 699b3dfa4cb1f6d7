"""Policy packs: a jurisdiction's contact rules as data (dialer/policies/<name>.yaml).

A pack file is a YAML mapping, validated strictly (unknown keys are errors, times are quoted "HH:MM"
strings: unquoted 08:00 is a YAML 1.1 sexagesimal number):

    description: free text
    sources: [citations]
    window: {start: "08:00", end: "21:00"}   # local, end exclusive, no wrap
    max_voice_per_day: 3                     # dialled voice calls per person per local day
    consumer_only: true                      # never anyone but the consumer
    calls_per_7_days: 7                      # Reg F counting, per person per debt
    conversation_bar_days: 7                 # no call for N days after a conversation (day 1 included)
    unknown_zone: block                      # or "region": the caller resolves the region's zones

Errors are `ConfigError`s naming the file and the field.
"""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from dialer.contact_policy import LenderSettings, Pack
from dialer.errors import ConfigError

PACKS_DIR = Path(__file__).resolve().parent / "policies"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")

HHMM = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Count = Annotated[int, Field(ge=1)]


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


class _Window(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    start: HHMM = "08:00"
    end: HHMM = "21:00"

    @model_validator(mode="after")
    def _ordered(self) -> _Window:
        if _clock(self.start) >= _clock(self.end):
            raise ValueError(f"start {self.start} must be before end {self.end} (no wrap past midnight)")
        return self


class _PackFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    description: str = ""
    sources: list[str] = Field(default_factory=list)
    window: _Window = Field(default_factory=_Window)
    max_voice_per_day: Count | None = None
    consumer_only: bool = False
    calls_per_7_days: Count | None = None
    conversation_bar_days: Count | None = None
    unknown_zone: Literal["block", "region"] = "block"


def pack_names(directory: Path = PACKS_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml"))


def load_pack(name: str, lender: LenderSettings | None = None, directory: Path = PACKS_DIR) -> Pack:
    """The pack `name` (dialer/policies/<name>.yaml) with the lender's stricter settings on top."""
    if not _NAME.fullmatch(name):
        raise ConfigError(f"policy pack name {name!r}: lowercase letters, digits and '-' only")
    path = directory / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"unknown policy pack {name!r}: no {path} (known: {', '.join(pack_names(directory))})"
        )
    return load_pack_file(path, lender)


def load_pack_file(path: Path, lender: LenderSettings | None = None) -> Pack:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a policy pack is a mapping of fields, got {type(raw).__name__}")
    try:
        model = _PackFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or '(top)'}: {err['msg']} (got {err['input']!r})"
            for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc
    return Pack(
        name=path.stem,
        window_start=_clock(model.window.start),
        window_end=_clock(model.window.end),
        max_voice_per_day=model.max_voice_per_day,
        consumer_only=model.consumer_only,
        calls_per_7_days=model.calls_per_7_days,
        conversation_bar_days=model.conversation_bar_days,
        unknown_zone=model.unknown_zone,
        lender=lender if lender is not None else LenderSettings(),
    )

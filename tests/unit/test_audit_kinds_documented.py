"""docs/audit.md lists every audit event kind with its record class and fields, exactly."""

from __future__ import annotations

import re
from dataclasses import MISSING, fields

import pytest

import dialer.store.call_events as call_events
import dialer.store.events as events
from dialer.core.models import IvrStep
from dialer.store.call_events import ALL_RECORDS, AmiCallEvent, Originated, call_event, ivr_event
from dialer.store.events import Record, Viewed, web_event
from tests.support.project import PROJECT_ROOT
from tests.support.records import NOW

_ROW = re.compile(r"^\| `(?P<kind>[^`]+)` \| `(?P<record>\w+)` \| (?P<fields>.*) \|$")


def _documented() -> dict[str, tuple[str, list[str]]]:
    """record name -> (kind, ["name?: type", ...]) from the table under 'Every kind'."""
    text = (PROJECT_ROOT / "docs" / "audit.md").read_text(encoding="utf-8")
    section = text.split("### Every kind, its record and its fields", 1)[1].split("\n#", 1)[0]
    found: dict[str, tuple[str, list[str]]] = {}
    for line in section.splitlines():
        m = _ROW.match(line)
        if m is None:
            continue
        cells = [] if m["fields"] == "—" else m["fields"].split("; ")
        assert m["record"] not in found, f"{m['record']} is listed twice"
        found[m["record"]] = (m["kind"], [c.strip("`").replace("\\|", "|") for c in cells])
    return found


def _in_code(record: type[Record]) -> tuple[str, list[str]]:
    shown = []
    for f in fields(record):
        optional = "?" if f.default is not MISSING else ""
        shown.append(f"{f.name}{optional}: {str(f.type).replace(' | Absent', '')}")
    return record.KIND, shown


def test_the_table_lists_exactly_the_record_classes_and_their_fields() -> None:
    documented = _documented()
    assert set(documented) == {r.__name__ for r in ALL_RECORDS}
    for record in ALL_RECORDS:
        assert documented[record.__name__] == _in_code(record), record.__name__


def test_every_record_class_is_in_the_list_of_kinds() -> None:
    defined = {
        v
        for module in (events, call_events)
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Record) and v is not Record
    }
    assert defined == set(ALL_RECORDS)
    kinds = [r.KIND for r in ALL_RECORDS]
    assert len(kinds) == len(set(kinds))  # one record per kind


def test_records_write_the_data_they_always_wrote() -> None:
    assert Viewed("/trail").data() == {"page": "/trail"}  # an absent field is not written
    assert Viewed("/x", range=None).data() == {"page": "/x", "range": None}  # None is null
    assert call_event("originate", {}) == Originated()
    ami = call_event("DueCallAnswer", {"Event": "UserEvent", "Key": "k"})
    assert isinstance(ami, AmiCallEvent) and ami.event_kind() == "call.answer"
    assert ami.data() == {"Event": "UserEvent", "Key": "k"}
    step = ivr_event(IvrStep(NOW, "menu", "key", {"digit": "2", "barge_in": False}))
    assert (step.event_kind(), step.data()) == ("ivr.key", {"node": "menu", "digit": "2", "barge_in": False})


def test_a_field_or_kind_no_record_has_is_refused() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'secret'"):
        web_event("audit.view", {"page": "/calls", "secret": "x"})
    with pytest.raises(KeyError, match=r"audit\.delete"):
        web_event("audit.delete", {})
    with pytest.raises(KeyError, match=r"ivr\.dance"):
        ivr_event(IvrStep(NOW, "menu", "dance", {}))

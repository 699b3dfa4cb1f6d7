"""Call state machine and disposition classification (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dialer.calls import Call, CallState, DialReport, IllegalTransition, IvrReport, classify
from dialer.models import Attempt, Disposition

AT = datetime(2026, 11, 28, 12, tzinfo=UTC)


def new_call() -> Call:
    return Call(Attempt(7, 1, 1, "+12025550101", 1, AT, "/tmp/r/7"), "abcd-7")


@pytest.mark.parametrize(
    ("dial", "ivr", "reason", "expected"),
    [
        (DialReport("ANSWER", "16"), IvrReport("done", "HUMAN", "", "1"), "", Disposition.ANSWERED),
        (DialReport("ANSWER", "16"), IvrReport("menu", "", "", ""), "", Disposition.ANSWERED),
        (DialReport("ANSWER", "16"), IvrReport("prompt", "", "", ""), "", Disposition.HUNG_UP_EARLY),
        (DialReport("ANSWER", "16"), IvrReport("answered", "", "", ""), "", Disposition.HUNG_UP_EARLY),
        (DialReport("ANSWER", "16"), IvrReport("machine", "MACHINE", "", ""), "", Disposition.MACHINE),
        (DialReport("NOANSWER", "19"), None, "3", Disposition.NO_ANSWER),
        (DialReport("CANCEL", "16"), None, "", Disposition.NO_ANSWER),
        (DialReport("BUSY", "17"), None, "5", Disposition.BUSY),
        (DialReport("CONGESTION", "34"), None, "8", Disposition.FAILED),
        (DialReport("CHANUNAVAIL", "1"), None, "0", Disposition.FAILED),
        (None, None, "5", Disposition.BUSY),
        (None, None, "", Disposition.UNKNOWN),
    ],
)
def test_classify(dial: DialReport | None, ivr: IvrReport | None, reason: str, expected: Disposition) -> None:
    assert classify(dial, ivr, reason) is expected


def test_answered_call_completes_when_both_reports_arrived() -> None:
    call = new_call()
    call.originate_sent(AT)
    call.on_message({"Event": "UserEvent", "UserEvent": "DueCallAnswer", "Attempt": "abcd-7"}, AT)
    assert call.state is CallState.ANSWERED
    call.on_message(
        {"Event": "UserEvent", "UserEvent": "DueCallDial", "DialStatus": "ANSWER", "Cause": "16"}, AT
    )
    assert not call.complete and call.settling
    call.on_message(
        {"Event": "UserEvent", "UserEvent": "DueCallIvr", "Stage": "done", "Amd": "HUMAN", "Digits": "1"}, AT
    )
    assert call.complete
    result = call.finish(AT)
    assert result.disposition is Disposition.ANSWERED
    assert result.digits == "1" and result.answered_at == AT
    assert [kind for _, kind, _ in result.events] == [
        "originate",
        "DueCallAnswer",
        "DueCallDial",
        "DueCallIvr",
    ]
    assert call.state is CallState.ENDED


def test_unanswered_call_completes_on_dial_report() -> None:
    call = new_call()
    call.originate_sent(AT)
    call.on_message({"Event": "OriginateResponse", "Response": "Failure", "Reason": "5"}, AT)
    assert call.settling and not call.complete
    call.on_message(
        {"Event": "UserEvent", "UserEvent": "DueCallDial", "DialStatus": "BUSY", "Cause": "17"}, AT
    )
    assert call.complete
    assert call.finish(AT).disposition is Disposition.BUSY


def test_astdb_facts_fill_in_missed_events() -> None:
    call = new_call()
    call.apply_astdb("ANSWER,16", "menu,HUMAN,2", AT)
    assert call.complete
    result = call.finish(AT, "reconciled")
    assert result.disposition is Disposition.ANSWERED
    assert result.digits == "2" and result.note == "reconciled"


def test_ended_call_takes_no_more_transitions() -> None:
    call = new_call()
    call.finish(AT)
    with pytest.raises(IllegalTransition):
        call.originate_sent(AT)

"""Call state machine and disposition classification (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dialer.campaign.calls import (
    Call,
    CallState,
    DialReport,
    IllegalTransition,
    IvrReport,
    classify,
    parse_ivr,
)
from dialer.core.models import Attempt, Disposition

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
        # Our side cut the call: never the borrower's hang-up, never a normal ending.
        (DialReport("ANSWER", "16"), IvrReport("cut", "", "", "", "", "SUCCESS"), "4", Disposition.CUT),
        (DialReport("ANSWER", "16"), IvrReport("cut", "HUMAN", "", "1"), "4", Disposition.CUT),
        # Asterisk killed and restarted: answered (Reason 4), then nothing at all.
        (None, None, "4", Disposition.CUT),
        # The Originate timed out as the borrower answered: DialStatus ANSWER, no IVR report.
        (DialReport("ANSWER", "16"), None, "0", Disposition.CUT),
        (DialReport("ANSWER", "16"), None, "", Disposition.CUT),
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


@pytest.mark.parametrize(
    ("ivr", "expected"),
    [
        (IvrReport("prompt", "", "", ""), Disposition.CUT),
        (IvrReport("menu", "", "", ""), Disposition.CUT),
        (IvrReport("answered", "HUMAN", "", ""), Disposition.CUT),
        (IvrReport("done", "", "", "1"), Disposition.ANSWERED),  # it had ended before the stop
        (IvrReport("machine", "MACHINE", "", ""), Disposition.MACHINE),
    ],
)
def test_asterisk_stopping_cuts_calls_instead_of_blaming_the_borrower(
    ivr: IvrReport, expected: Disposition
) -> None:
    dial = DialReport("ANSWER", "16")  # what `core stop now` reports: like a normal hang-up
    assert classify(dial, ivr, "4", asterisk_stopped=True) is expected
    # Ringing when Asterisk stopped: Dial was cancelled, not unanswered.
    assert classify(DialReport("CANCEL", "16"), None, "", asterisk_stopped=True) is Disposition.CUT


def test_answered_event_without_any_end_is_cut() -> None:
    assert classify(None, None, "", answered=True) is Disposition.CUT


def test_every_astdb_field_is_recovered() -> None:
    """Issue 9 item 14: the dialplan writes stage, AMD, digits and outcome; all four come back."""
    call = new_call()
    call.apply_astdb("ANSWER,16", "done,HUMAN,1,promise_to_pay", AT)
    assert call.ivr == IvrReport("done", "HUMAN", "", "1", "promise_to_pay")
    assert parse_ivr("done,,1") == IvrReport("done", "", "", "1")  # an older, shorter entry
    assert parse_ivr("") == IvrReport("", "", "", "")


def test_cut_call_notes_who_cut_it() -> None:
    call = new_call()
    call.originate_sent(AT)
    call.on_message({"Event": "UserEvent", "UserEvent": "DueCallAnswer"}, AT)
    call.on_message(
        {"Event": "UserEvent", "UserEvent": "DueCallIvr", "Stage": "cut", "AgiStatus": "SUCCESS"}, AT
    )
    call.on_message({"Event": "UserEvent", "UserEvent": "DueCallDial", "DialStatus": "ANSWER"}, AT)
    result = call.finish(AT)
    assert result.disposition is Disposition.CUT and result.answered_at == AT
    assert "cut by the dialer: the dialer closed the FastAGI session" in result.note


def test_originate_timeout_as_the_borrower_answers_is_not_answered() -> None:
    """Issue 9 items 17/19: DialStatus ANSWER alone never closes a call as answered."""
    call = new_call()
    call.originate_sent(AT)
    call.on_message({"Event": "OriginateResponse", "Response": "Failure", "Reason": "0"}, AT)
    call.on_message({"Event": "UserEvent", "UserEvent": "DueCallDial", "DialStatus": "ANSWER"}, AT)
    assert not call.complete and call.settling  # waits a few seconds for an IVR report
    result = call.finish(AT, "no final event from Asterisk")
    assert result.disposition is Disposition.CUT and result.answered_at is None
    assert "the IVR side never ran" in result.note


def test_refused_originate_is_not_placed() -> None:
    call = new_call()
    call.originate_sent(AT)
    call.not_placed = True
    assert call.finish(AT).disposition is Disposition.NOT_PLACED

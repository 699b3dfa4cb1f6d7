"""The dialplan contract: every name Python shares with asterisk/conf/extensions.conf, once.

The dialer originates the borrower's channel (the rendered trunk) into `duecall-ivr`, exten `s`,
with channel variables (`Var`) and `DIAL_HANGUP_PUSH`, which makes `duecall-dial-hangup` that
channel's hangup handler: it runs however the channel ends, even one that never rang. The dialplan
reports each call's end in AstDB (`duecall/<key>/dial`, `duecall/<key>/ivr`) and as UserEvents
(`Event`, with the headers in `Header`); `DUECALL_STAGE` tells how far the answered call got
(`Stage`). docs/number-plan.md describes the contract;
tests/unit/test_dialplan_names.py checks every name here is in extensions.conf.
"""

from __future__ import annotations

import enum


class Context(enum.StrEnum):
    DIAL_HANGUP = "duecall-dial-hangup"  # the originated channel's hangup handler: the dial result
    IVR = "duecall-ivr"  # runs once the borrower answered
    SIM = "duecall-sim"  # the simulated borrowers (the demo's and the tests' trunk)


IVR_EXTEN = "s"  # the extension the Originate sends the answered call to, in Context.IVR

# The Originate `Variable` that pushes the dial-result hangup handler onto the originated channel.
# Quoted: AMI splits a Variable header at commas outside quotes (manager.c, man_do_variable_value).
DIAL_HANGUP_PUSH = f'CHANNEL(hangup_handler_push)="{Context.DIAL_HANGUP},s,1"'


class Var(enum.StrEnum):
    """Channel variables. The Originate sets the first ones; the IVR sets STAGE and OUTCOME."""

    ATTEMPT = "DUECALL_ATTEMPT"  # the dialer's call key: <database id>-<attempt id>
    AMD = "DUECALL_AMD"  # "yes": run answering-machine detection
    RECORDING = "DUECALL_RECORDING"  # the recording's path, without .wav
    PROMPT = "DUECALL_PROMPT"  # the one prompt played without the IVR
    AGI_PORT = "DUECALL_AGI_PORT"  # the dialer's FastAGI port ("": no IVR)
    AGI_SECRET = "DUECALL_AGI_SECRET"  # the secret the FastAGI session shows
    # The limited-content message to leave on an answering machine: a rendered prompt's path
    # without .wav; unset or "": hang up on a machine without a message (the pack forbids it).
    VOICEMAIL = "DUECALL_VOICEMAIL"
    STAGE = "DUECALL_STAGE"  # how far the answered side got: a Stage
    OUTCOME = "DUECALL_OUTCOME"  # what the borrower chose: an Outcome value


class Stage(enum.StrEnum):
    """DUECALL_STAGE values."""

    ANSWERED = "answered"  # the borrower answered, nothing played yet
    PROMPT = "prompt"  # the first prompt is playing
    MENU = "menu"  # the first prompt was heard
    DONE = "done"  # the script (or the broadcast) ended
    MACHINE = "machine"  # AMD heard an answering machine (no message left, or not to its end)
    VOICEMAIL = "voicemail"  # an answering machine, and the message was played to its end
    CUT = "cut"  # our side ended the FastAGI session before the script did


# A hangup in these stages is the borrower hanging up early.
EARLY_STAGES = frozenset({Stage.ANSWERED, Stage.PROMPT})


class Event(enum.StrEnum):
    """The UserEvent names the dialplan sends over AMI."""

    ANSWER = "DueCallAnswer"  # the borrower answered
    DIAL = "DueCallDial"  # the originated channel hung up (answered or not)
    IVR = "DueCallIvr"  # the answered call ended


class Header(enum.StrEnum):
    """The headers of those UserEvents."""

    ATTEMPT = "Attempt"  # the call key, in every one
    ANSWERED_AT = "AnsweredAt"  # DueCallAnswer: the dialplan's clock, seconds since the epoch
    DIAL_STATUS = (
        "DialStatus"  # DueCallDial: ANSWER, or from the cause: BUSY, NOANSWER, CONGESTION, CHANUNAVAIL
    )
    CAUSE = "Cause"  # DueCallDial: HANGUPCAUSE of the originated channel
    STAGE = "Stage"  # DueCallIvr: DUECALL_STAGE
    AMD = "Amd"  # DueCallIvr: AMDSTATUS
    AMD_CAUSE = "AmdCause"  # DueCallIvr: AMDCAUSE
    DIGITS = "Digits"  # DueCallIvr: the key pressed without the IVR
    OUTCOME = "Outcome"  # DueCallIvr: DUECALL_OUTCOME
    AGI_STATUS = "AgiStatus"  # DueCallIvr: AGISTATUS


# AstDB: the dialplan's facts about a call, under duecall/<call key>/<key>.
ASTDB_FAMILY = "duecall"
ASTDB_DIAL = "dial"  # "DialStatus,HANGUPCAUSE" (as in DueCallDial)
ASTDB_IVR = "ivr"  # "stage,AMDSTATUS,digits,outcome,AGISTATUS"


def astdb_call_family(key: str) -> str:
    """The AstDB family holding one call's facts."""
    return f"{ASTDB_FAMILY}/{key}"


# AstDB: what a simulated borrower does, under sim/<number digits>/<key> (extensions.conf, [duecall-sim]).
SIM_FAMILY = "sim"
SIM_KEYS = "keys"  # DTMF to send
SIM_AUDIO = "audio"  # what to say: a sound file's path without extension
SIM_DELAY = "delay"  # seconds before it answers in keys or words
SIM_CALLS = "calls"  # how many calls the number received
SIM_RECORD = "record"  # answering machines: where to record what they hear (a path without extension)


def sim_family(number: str) -> str:
    """The AstDB family of one simulated borrower (E.164 digits, no '+')."""
    return f"{SIM_FAMILY}/{number}"

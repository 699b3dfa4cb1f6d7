"""The audit trail's names for what happened to a call (the `call.*` event kinds)."""

from __future__ import annotations

# The AMI and dialplan names a call's events arrive under, as the trail spells them.
_AUDIT_NAMES = {
    "OriginateResponse": "originate-response",
    "DueCallAnswer": "answer",
    "DueCallDial": "dial-result",
    "DueCallIvr": "ivr-report",
}


def call_audit_kind(kind: str) -> str:
    """The audit trail's name for one of a call's events: what it means, not how it came."""
    return "call." + _AUDIT_NAMES.get(kind, kind)

"""An account's calls and texts in time order, and the texts search's rows, as the page shows them.

Masked unless revealed, like calls: numbers keep their country code and last four digits, names
their first letters. A text's words (sent or received) are masked by `Masker.body`: the
borrower's name and number, and any other run of seven or more digits; amounts and dates stay,
since whether the text said the right amount and due date is what an auditor checks.
"""

from __future__ import annotations

import json
from typing import Any

from audit.masking import Masker, Plain
from audit.search import CallRow
from audit.texts import IN, OUT, AccountTexts, Reply, SentText, TextRow


def _masker(name: str, phone: str, revealed: bool) -> Masker:
    return Plain() if revealed else Masker(name, phone)


def account_timeline(
    account: dict[str, Any], calls: list[CallRow], texts: AccountTexts, revealed: bool
) -> list[dict[str, Any]]:
    """Every call, text, refused text and reply of the account, oldest first."""
    name = str(account.get("name") or "")
    maskers: dict[str, Masker] = {}

    def m(phone: str) -> Masker:  # the text's own number may not be the account's number now
        if phone not in maskers:
            maskers[phone] = _masker(name, phone or str(account.get("phone_e164", "")), revealed)
        return maskers[phone]

    entries = [_call(c, m(c.phone_e164)) for c in calls]
    entries += [_sent(t, m(t.phone)) for t in texts.sent]
    entries += [_reply(r, m(r.phone)) for r in texts.replies]
    entries += [
        {
            "at": r.at,
            "kind": "refused",
            "phone": m(r.phone).text(r.phone),
            "template": r.template,
            "reasons": m(r.phone).data(r.reasons),
            "next_allowed_at": r.next_allowed_at,
        }
        for r in texts.refused
    ]
    return sorted(entries, key=lambda e: str(e["at"]))


def _call(c: CallRow, m: Masker) -> dict[str, Any]:
    return {"at": c.decided_at, "kind": "call", "call": c, "phone": m.text(c.phone_e164)}


def _sent(t: SentText, m: Masker) -> dict[str, Any]:
    states = [
        {
            "at": s.at,
            "state": s.state,
            "previous": s.previous,
            "reason": m.text(s.reason),  # the gateway's words (a report's dates are no number)
            "gateway_id": s.gateway_id,
            "source": s.source,
        }
        for s in t.states
    ]
    return {
        "at": t.at,
        "kind": "text",
        "t": t,
        "phone": m.text(t.phone),
        "text": m.body(t.text),
        "reasons": m.data(t.reasons),
        "states": states,
    }


def _reply(r: Reply, m: Masker) -> dict[str, Any]:
    return {"at": r.at, "kind": "reply", "r": r, "phone": m.text(r.phone), "text": m.body(r.text)}


def text_rows(rows: list[TextRow], revealed: bool) -> list[dict[str, Any]]:
    """The search's rows, masked."""
    shown = []
    for r in rows:
        m = _masker(r.name, r.phone, revealed)
        shown.append(
            {
                "row": r,
                "account": m.text(r.account_id),
                "name": m.text(r.name),
                "phone": m.text(r.phone),
                "text": m.body(r.text),
                "detail": _detail(r, m),
            }
        )
    return shown


def _detail(r: TextRow, m: Masker) -> str:
    if r.direction in (OUT, IN):
        return m.text(r.detail)  # the gateway's words; a reply's outcome
    try:
        reasons = json.loads(r.detail)
    except (TypeError, ValueError, RecursionError):
        return ""
    if not isinstance(reasons, list):
        return ""
    return "; ".join(
        f"{x.get('rule', '')}: {m.text(str(x.get('detail', '')))}" for x in reasons if isinstance(x, dict)
    )

"""What each effectiveness metric counts: its numerator and its denominator, in words.

One definition per metric, used by the reports' tables, their CSV headers, the operations page's
hover text and docs/reports.md (a test checks the docs list every one with these words). The
counting itself is the store's (aggregate queries); these are the words it must agree with.
Account-level rates count an account once however many calls or texts it had.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    title: str
    numerator: str
    denominator: str  # "" for a count


METRICS: tuple[Metric, ...] = (
    Metric("attempts", "Calls placed", "calls placed (an Originate Asterisk accepted)", ""),
    Metric("accounts_attempted", "Accounts attempted", "accounts with at least one call placed", ""),
    Metric(
        "contact_rate",
        "Contact rate",
        "accounts on which a person answered at least one call (not a machine)",
        "accounts attempted",
    ),
    Metric(
        "right_party_rate",
        "Right-party contact rate",
        "accounts on which the borrower confirmed who they are on at least one call",
        "accounts attempted",
    ),
    Metric(
        "promise_rate",
        "Promise-to-pay rate",
        "accounts with a right-party contact that promised to pay (on a call or by a text's answer)",
        "accounts with a right-party contact",
    ),
    Metric(
        "promise_kept_rate",
        "Promise kept rate",
        "promises paid in full by the end of their day",
        "promises whose day has passed (kept, partially kept or broken)",
    ),
    Metric(
        "cure_rate",
        "Cure rate",
        "accounts late at the period's start and current (nothing overdue) at its end",
        "accounts late at the period's start",
    ),
    Metric(
        "recovery_rate",
        "Recovery rate",
        "amount paid during the period on accounts late at its start",
        "amount overdue on those accounts at the period's start",
    ),
    Metric(
        "entry_rate",
        "Entry rate (入催率)",
        "accounts due in the period still unpaid on their first day late",
        "accounts due in the period",
    ),
    Metric(
        "roll_rate",
        "Roll rate",
        "accounts in a bucket at the month's start that are in the next bucket at its end",
        "accounts in that bucket at the month's start",
    ),
    Metric(
        "sms_delivered_rate",
        "SMS delivered rate",
        "texts the carrier reported delivered",
        "texts handed to the gateway (not those it never took)",
    ),
    Metric(
        "sms_reply_rate",
        "SMS reply rate",
        "accounts that answered a text (an answer the text asked for, or words for a person)",
        "accounts texted",
    ),
    Metric("sms_opt_out_rate", "SMS opt-out rate", "accounts that replied STOP (or 退订)", "accounts texted"),
    Metric(
        "calls_per_right_party",
        "Calls per right-party contact",
        "calls placed",
        "right-party contacts (calls on which the borrower confirmed who they are)",
    ),
)
BY_KEY = {m.key: m for m in METRICS}


def hover(metric: Metric) -> str:
    """The words shown on hover: what is divided by what."""
    if not metric.denominator:
        return f"{metric.title}: {metric.numerator}"
    return f"{metric.title}: {metric.numerator} / {metric.denominator}"

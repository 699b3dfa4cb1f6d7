"""Retry rules as data: what happens to an account after each disposition."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from dialer.core.config import RetryRule
from dialer.core.models import Disposition, TargetState, TargetUpdate
from dialer.core.vocab import Outcome

# A refused Originate placed no call: the account is tried again this soon, not counted.
NOT_PLACED_DELAY = timedelta(minutes=1)


def after_attempt(
    disposition: Disposition,
    attempts: int,
    rules: Mapping[Disposition, RetryRule],
    now: datetime,
    outcome: str = "",
) -> TargetUpdate:
    """`attempts` counts every attempt so far on this account in this campaign, this one included.

    A disposition without a rule is final. A rule's `max_attempts` is the total
    number of attempts allowed when the latest one ended this way. A cut call on which
    the borrower had already chosen something (`outcome`, e.g. a promise to pay) is final
    too: calling again would ask them the same thing.
    """
    rule = rules.get(disposition)
    if disposition is Disposition.ANSWERED or rule is None:
        return TargetUpdate(TargetState.DONE, now, f"final: {disposition}")
    if disposition is Disposition.CUT and outcome and outcome != Outcome.NO_RESPONSE:
        return TargetUpdate(TargetState.DONE, now, f"final: cut after the borrower chose {outcome}")
    if attempts >= rule.max_attempts:
        return TargetUpdate(
            TargetState.EXHAUSTED, now, f"{attempts} attempts, limit {rule.max_attempts} after {disposition}"
        )
    return TargetUpdate(TargetState.PENDING, now + rule.delay, f"retry after {disposition}")


def not_placed(now: datetime, why: str) -> TargetUpdate:
    """Asterisk refused the Originate: back to pending, the attempt not counted."""
    return TargetUpdate(
        TargetState.PENDING, now + NOT_PLACED_DELAY, f"not placed ({why}): not counted, tried again"
    )

"""Retry rules as data: what happens to an account after each disposition."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from dialer.config import RetryRule
from dialer.models import Disposition, TargetState
from dialer.store import TargetUpdate


def after_attempt(
    disposition: Disposition, attempts: int, rules: Mapping[Disposition, RetryRule], now: datetime
) -> TargetUpdate:
    """`attempts` counts every attempt so far on this account in this campaign, this one included.

    A disposition without a rule is final. A rule's `max_attempts` is the total
    number of attempts allowed when the latest one ended this way.
    """
    rule = rules.get(disposition)
    if disposition is Disposition.ANSWERED or rule is None:
        return TargetUpdate(TargetState.DONE, now, f"final: {disposition}")
    if attempts >= rule.max_attempts:
        return TargetUpdate(
            TargetState.EXHAUSTED, now, f"{attempts} attempts, limit {rule.max_attempts} after {disposition}"
        )
    return TargetUpdate(TargetState.PENDING, now + rule.delay, f"retry after {disposition}")

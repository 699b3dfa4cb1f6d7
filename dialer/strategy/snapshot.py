"""What the store knows about one account at one moment, for the strategy and for the policy.

`duecall run` reads one per account each time it decides (dialer/store/snapshots.py) and the dry
run (`duecall campaign plan`) reads the same and then adds the contacts it simulates: both decide
from exactly these facts, so the plan shows what the run will do.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialer.core.messages import PastMessage
from dialer.core.models import PastAttempt, Preferences
from dialer.strategy.decide import AccountView, HistoryView


@dataclass(frozen=True, slots=True)
class Snapshot:
    account: AccountView  # the account, its payments, its promises and imported columns
    history: HistoryView  # our contacts with the account and what the borrower said (the strategy)
    calls: tuple[PastAttempt, ...]  # the number's calls (and texts) in the policy's window
    texts: tuple[PastMessage, ...]  # the number's texts in the policy's window
    opted_out: frozenset[str]  # the channels the number opted out of ("voice", "sms")
    prefs: Preferences
    arm: str | None = None  # the champion/challenger arm the account was assigned, if any

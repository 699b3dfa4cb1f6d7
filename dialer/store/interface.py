"""The store as the dialer, the IVR wiring and the audit code see it: one interface, two backends.

`SqliteStore` (dialer/store/sqlite.py) implements it today; a PostgreSQL backend (several dialer
machines on one campaign, issue 15) implements the same methods: `claim` then takes a row lock on
the target and an advisory lock on the phone number instead of SQLite's single writer.

Every method that writes is one transaction, with the audit events of what it wrote appended in
that same transaction. Reads see committed data only, never another coroutine's open write.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from dialer.core.messages import TextStore
from dialer.core.models import (
    Account,
    AccountRecord,
    Attempt,
    CallResult,
    Campaign,
    Decision,
    Preferences,
    RejectedRow,
    Target,
    TargetState,
    TargetUpdate,
)
from dialer.core.vocab import CampaignState
from dialer.store.accounts import ImportCounts
from dialer.store.attempts import Decide
from dialer.store.audit_reads import AuditReading
from dialer.store.auditors import StoredAuditor
from dialer.store.campaigns import CampaignStatus
from dialer.store.chain import AuditEvent
from dialer.store.db import Row
from dialer.store.evidence import RecordingFacts
from dialer.store.ivr import IvrProgress
from dialer.store.leases import OwnedAttempt
from dialer.store.live import LiveState
from dialer.store.outcomes import CureRow, CurveRow, EntryRow, PromiseRow, RollRow
from dialer.store.payments import AccountPayments, NewPayment, PaymentCounts
from dialer.store.reports import FunnelRow, HourRow
from dialer.strategy.arms import ArmAssignment, Stratum
from dialer.strategy.snapshot import Snapshot


class Reads(Protocol):
    """Read-only queries in the backend's SQL, for the audit page's composed searches."""

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...


class Store(Reads, AuditReading, TextStore, Protocol):
    async def close(self) -> None: ...

    async def instance_id(self) -> str: ...

    async def schema_version(self) -> int: ...

    # -- accounts and imports
    async def start_import(self, file: str, now: datetime) -> int: ...

    async def upsert_accounts(self, records: Sequence[AccountRecord], now: datetime) -> ImportCounts: ...

    async def add_rejects(self, import_id: int, rejects: Sequence[RejectedRow]) -> None: ...

    async def import_batch(
        self,
        import_id: int,
        batch: int,
        records: Sequence[AccountRecord],
        rejects: Sequence[RejectedRow],
        now: datetime,
        actor: str = "operator",
    ) -> ImportCounts: ...

    async def finish_import(self, import_id: int, now: datetime, actor: str = "operator") -> None: ...

    async def fail_import(
        self, import_id: int, reason: str, now: datetime, actor: str = "operator"
    ) -> None: ...

    async def rejects(self, import_id: int) -> list[tuple[int, str]]: ...

    async def account(self, account_id: str) -> Account | None: ...

    async def count_accounts(self) -> int: ...

    async def account_columns(self, account_pks: Sequence[int]) -> dict[int, dict[str, str]]: ...

    # -- payments and their imports
    async def start_payment_import(self, file: str, now: datetime) -> int: ...

    async def accounts_named(self, account_ids: Sequence[str]) -> dict[str, Account]: ...

    async def payment_import_batch(
        self,
        import_id: int,
        batch: int,
        payments: Sequence[NewPayment],
        rejects: Sequence[RejectedRow],
        now: datetime,
        actor: str = "operator",
    ) -> PaymentCounts: ...

    async def finish_payment_import(self, import_id: int, now: datetime, actor: str = "operator") -> None: ...

    async def fail_payment_import(
        self, import_id: int, reason: str, now: datetime, actor: str = "operator"
    ) -> None: ...

    async def payment_rejects(
        self, import_id: int, after: int = 0, limit: int = 500
    ) -> list[tuple[int, RejectedRow]]: ...

    async def account_payments(self, account_id: str) -> AccountPayments | None: ...

    # -- champion/challenger arms (inserted once, never changed)
    async def save_arms(
        self, campaign_id: int, assignments: Sequence[ArmAssignment], now: datetime, actor: str = "operator"
    ) -> int: ...

    async def arms(self, campaign_id: int) -> dict[int, str]: ...

    async def arm_counts(self, campaign_id: int) -> dict[Stratum, Counter[str]]: ...

    # -- preferences and opt-outs
    async def set_preferences(
        self, phone_e164: str, prefs: Preferences, now: datetime, actor: str = "operator"
    ) -> None: ...

    async def preferences(self, phone_e164: str) -> Preferences: ...

    async def opt_out(
        self,
        phone_e164: str,
        channel: str,
        now: datetime,
        source: str,
        *,
        actor: str = "",
        attempt_id: int | None = None,
    ) -> None: ...

    async def opted_out(self, phone_e164: str) -> set[str]: ...

    # -- campaigns and targets
    async def create_campaign(self, name: str, now: datetime, actor: str = "operator") -> Campaign: ...

    async def campaign(self, name: str) -> Campaign | None: ...

    async def add_targets(
        self, campaign_id: int, now: datetime, account_ids: Sequence[str] | None = None
    ) -> int: ...

    async def set_strategy(
        self, campaign: Campaign, file: str, sha256: str, seed: int | None, now: datetime, actor: str
    ) -> Campaign: ...

    async def due_targets(
        self, campaign_id: int, now: datetime, limit: int, channel: str | None = "voice"
    ) -> list[Target]: ...

    async def route_target(
        self, target: Target, channel: str | None, next_at: datetime, note: str
    ) -> None: ...

    async def stop_target(
        self, target: Target, reason: str, to_person: bool, now: datetime, actor: str
    ) -> None: ...

    async def snapshots(
        self,
        accounts: Sequence[Account],
        policy_since: datetime,
        arms: Mapping[int, str] | None = None,
        columns: Mapping[int, Mapping[str, str]] | None = None,
    ) -> list[Snapshot]: ...

    async def campaign_accounts(self, campaign_id: int) -> list[Account]: ...

    async def next_due_at(self, campaign_id: int) -> datetime | None: ...

    async def count_targets(self, campaign_id: int, states: Iterable[TargetState]) -> int: ...

    async def status(self, campaign: Campaign, upcoming: int = 10) -> CampaignStatus: ...

    # -- a campaign's state (start, pause, resume) and its live figures
    async def set_campaign_state(
        self,
        campaign_id: int,
        state: CampaignState,
        now: datetime,
        actor: str,
        *,
        expected: CampaignState | None = None,
    ) -> Campaign: ...

    async def campaign_state(self, campaign_id: int) -> CampaignState: ...

    async def live_state(self, campaign_id: int, now: datetime, upcoming: int = 10) -> LiveState: ...

    # -- reports
    async def refresh_report_rollups(self, campaign_id: int) -> None: ...

    async def refresh_promise_verdicts(self, campaign_id: int, today: date) -> None: ...

    async def funnel(self, campaign_id: int, by: str = "") -> list[FunnelRow]: ...

    async def contacts_by_hour(self, campaign_id: int) -> list[HourRow]: ...

    # -- reports: the money (dialer/store/outcomes.py)
    async def promise_verdicts(self, campaign_id: int, today: date, by: str = "") -> list[PromiseRow]: ...

    async def cures(self, campaign_id: int, start: date, end: date, by: str = "") -> list[CureRow]: ...

    async def entries(self, campaign_id: int, start: date, end: date, by: str = "") -> list[EntryRow]: ...

    async def roll_matrix(
        self, campaign_id: int, months: int, today: date | None = None
    ) -> list[RollRow]: ...

    async def curves(self, campaign_id: int, max_days: int, today: date | None = None) -> list[CurveRow]: ...

    async def recovered_by_arm(
        self, campaign_id: int, since: date | None, currency: str | None = None
    ) -> dict[str, list[int]]: ...

    async def recovered_by_currency(
        self, campaign_id: int, since: date | None
    ) -> dict[str, dict[str, list[int]]]: ...

    async def fill_payment_days(self) -> int: ...

    # -- attempts and calls
    async def claim(
        self,
        target: Target,
        now: datetime,
        decide: Decide,
        recording_for: Callable[[int, datetime], str],
        dialer_id: str,
        history_since: datetime,
        steered: bool = False,
        step: str = "",
    ) -> Attempt | Decision: ...

    async def defer(
        self, target: Target, decision: Decision, now: datetime, actor: str, steered: bool = False
    ) -> None: ...

    async def finish_attempt(
        self,
        attempt: Attempt,
        result: CallResult,
        update: TargetUpdate,
        actor: str = "dialer",
        recordings: Sequence[RecordingFacts] | None = None,
        takeover: bool = False,
    ) -> bool: ...

    async def closed_attempts(self, attempt_ids: Iterable[int]) -> set[int]: ...

    async def open_attempts(self, campaign_id: int, dialer_id: str = "") -> list[Attempt]: ...

    # -- dialer leases (several dialers on one campaign)

    async def renew_lease(self, dialer_id: str, holder: str, now: datetime, lease_seconds: float) -> str: ...

    async def foreign_open_attempts(self, campaign_id: int, dialer_id: str) -> list[OwnedAttempt]: ...

    async def attempts_for(self, campaign_id: int) -> list[dict[str, Any]]: ...

    async def events_for(self, attempt_id: int) -> list[tuple[str, str, dict[str, str]]]: ...

    # -- IVR progress
    async def save_ivr_progress(self, progress: Sequence[IvrProgress]) -> None: ...

    async def saved_ivr_progress(self, attempt_id: int) -> IvrProgress: ...

    async def ivr_steps(self, attempt_id: int) -> list[tuple[str, str, dict[str, Any]]]: ...

    # -- texts (and those of TextStore)
    async def inbox(self, everything: bool = False) -> list[dict[str, Any]]: ...

    async def messages_in(self, batch: str | None = None) -> list[dict[str, Any]]: ...

    # -- recordings
    async def add_recordings(
        self,
        attempt: Attempt,
        found: Sequence[RecordingFacts],
        now: datetime,
        actor: str,
        answered: bool = True,
    ) -> None: ...

    async def unsealed(self, campaign_id: int, dialer_id: str = "") -> list[Attempt]: ...

    async def purgeable(self, called_before: datetime) -> list[tuple[int, str, str]]: ...

    async def mark_purged(
        self, attempt_id: int, path: str, sha256: str, now: datetime, actor: str, reason: str
    ) -> None: ...

    # -- auditors
    async def auditor(self, name: str) -> StoredAuditor | None: ...

    async def auditors(self) -> list[StoredAuditor]: ...

    async def add_auditor(
        self, name: str, role: str, password_hash: str, now: datetime, actor: str
    ) -> bool: ...

    async def disable_auditor(self, name: str, now: datetime, actor: str) -> bool: ...

    async def set_auditor_password(
        self, name: str, password_hash: str, now: datetime, actor: str
    ) -> bool: ...

    async def rehash_auditor_password(self, name: str, password_hash: str) -> None: ...

    # -- the audit trail
    async def audit(self, events: Sequence[AuditEvent]) -> None: ...

    async def config_hashes(self) -> dict[str, str]: ...

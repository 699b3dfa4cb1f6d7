"""What the campaign engine needs from the IVR, as Protocols: the engine never imports `ivr`.

`ivr.service.IvrService` implements `IvrPort`; the application layer (duecall/) builds one and
hands it to the `Dialer`. Attributes are read-only properties, so the IVR's own richer types fit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

from dialer.core.models import Account


class IvrStepView(Protocol):
    """One step the IVR took on a call (a prompt, a key, speech, the outcome)."""

    @property
    def at(self) -> datetime: ...
    @property
    def node(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def detail(self) -> Mapping[str, Any]: ...


class IvrOutcomeView(Protocol):
    @property
    def value(self) -> str: ...


class IvrResultView(Protocol):
    """How the IVR flow ended (or how far it got while the call runs)."""

    @property
    def outcome(self) -> IvrOutcomeView: ...
    @property
    def promised_date(self) -> date | None: ...
    @property
    def right_party(self) -> bool | None: ...
    @property
    def steps(self) -> Sequence[IvrStepView]: ...


class ScriptView(Protocol):
    @property
    def name(self) -> str: ...


class PreparedCall(Protocol):
    """The IVR's state for one call the engine registered."""

    @property
    def script(self) -> ScriptView: ...
    @property
    def account(self) -> Account: ...
    @property
    def result(self) -> IvrResultView | None: ...
    @property
    def first_prompt_at(self) -> datetime | None: ...


class PromptStats(Protocol):
    """The prompt cache's counters, for the run summary."""

    @property
    def hits(self) -> int: ...
    @property
    def joined(self) -> int: ...
    @property
    def misses(self) -> int: ...


class VoicemailView(Protocol):
    """The rendered message for answering machines (12 CFR 1006.2(j) limited content)."""

    @property
    def script(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def playback(self) -> str: ...  # the file Asterisk plays, without .wav


class AgiServerPort(Protocol):
    """The FastAGI server the dialplan connects answered calls to."""

    @property
    def ready(self) -> asyncio.Event: ...
    @property
    def port(self) -> int: ...
    def serve(self) -> Coroutine[Any, Any, None]: ...


class IvrPort(Protocol):
    """The IVR as the engine drives it: render, register, serve, then take each call's result."""

    @property
    def prompts(self) -> PromptStats: ...
    @property
    def server(self) -> AgiServerPort: ...
    async def start(self) -> None: ...
    # `script`: a script's name (its file's stem, as a strategy step names it); None: the account's
    # locale's. An unknown name raises a DueCallError naming it.
    async def render_account(self, account: Account, script: str | None = None) -> dict[str, str]: ...
    async def render_voicemail(self, account: Account, script: str | None = None) -> VoicemailView | None: ...
    def register(
        self,
        key: str,
        account: Account,
        fields: dict[str, str],
        recordings: Path,
        attempt_id: int,
        script: str | None = None,
    ) -> None: ...
    def agi_secret(self, key: str) -> str: ...
    def peek(self, key: str) -> PreparedCall | None: ...
    def take(self, key: str) -> PreparedCall | None: ...


@dataclass(frozen=True, slots=True)
class TextSent:
    """What became of a text the strategy asked for."""

    state: str  # a MessageState value, "refused" (the policy) or "skipped" (already sent in its batch)
    reason: str = ""
    retry_at: datetime | None = None  # refused: when the policy would allow one (None: not known)


class TextPort(Protocol):
    """The SMS channel as the engine drives it (duecall/texts.py implements it over sms/)."""

    async def send(self, account: Account, message: str, batch: str, campaign_id: int, step: str) -> TextSent:
        """Render the account's text `message` (its locale's template file) and send it through
        the policy and the gateway; the store has the row (counted) before the gateway is asked."""
        ...

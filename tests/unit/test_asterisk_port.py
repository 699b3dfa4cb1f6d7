"""The AMI port check before a start: a port an Asterisk just killed still holds is waited for."""

from __future__ import annotations

import socket
import threading

import pytest

from dialer.asterisk import host
from dialer.core.errors import AsteriskSetupError


def _listener() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def test_a_port_released_within_the_grace_is_free() -> None:
    # Was: a restart right after `kill -9` of Asterisk failed "already in use by an unknown process".
    sock, port = _listener()
    threading.Timer(0.5, sock.close).start()
    host._check_port_free(port)  # returns once the listener is gone, no error


def test_a_port_held_past_the_grace_names_the_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host, "PORT_RELEASE_SECONDS", 0.3)
    sock, port = _listener()
    try:
        with pytest.raises(AsteriskSetupError, match=f"AMI port {port} is already in use"):
            host._check_port_free(port)
    finally:
        sock.close()

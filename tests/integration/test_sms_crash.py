"""A text batch killed with SIGKILL in mid-flight, then run again, through the real Kannel: no
account is texted twice, none is left out, and every row whose gateway answer was lost is
counted and reconciled, never re-sent (issue 12, items 3 and 8)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from dialer.core.clock import SystemClock
from dialer.core.config import Settings
from dialer.store import SqliteStore
from duecall import texts
from sms import kannel
from tests.support.config import make_settings
from tests.support.project import daytime_zone
from tests.support.records import borrower

PORTS = {"admin_port": 13540, "smsbox_port": 13541, "sendsms_port": 13553, "fake_port": 13560}
RECEIVER = 13570
ACCOUNTS = 300


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    s = make_settings(
        tmp_path,
        sms={"state_dir": str(tmp_path / "state"), **PORTS, "receiver_port": RECEIVER, "concurrency": 4},
    )
    kannel.start(s.sms, s.path(s.sms.state_dir))
    try:
        yield s
    finally:
        kannel.stop(s.sms, s.path(s.sms.state_dir))


class Sink(threading.Thread):
    """The handsets: every outbound text Kannel's fake SMSC delivers, counted per number."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        import socket

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.settimeout(0.2)
        self.per_phone: Counter[str] = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        buffer = b""
        while not self.stop.is_set():
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                self.per_phone[urllib.parse.unquote(line.decode().split(" ")[1])] += 1


async def _prepare(settings: Settings) -> None:
    store = await SqliteStore.open(settings.path(settings.store.path))
    now = SystemClock().now()
    zone = daytime_zone(now)
    records = [borrower(f"A{i:03d}", f"+1202555{i:04d}", zone) for i in range(ACCOUNTS)]
    await store.upsert_accounts(records, now)
    campaign = await store.create_campaign("texts", now)
    await store.add_targets(campaign.id, now)
    await store.close()


def _send(settings: Settings) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "duecall", "--config", str(settings.root / "duecall.toml")]
    command += ["sms", "send", "texts", "--message", "due_today", "--batch", "b1"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _rows(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


async def test_a_killed_batch_run_again_texts_everyone_exactly_once(settings: Settings) -> None:
    await _prepare(settings)
    sink = Sink(settings.sms.fake_port)
    sink.start()
    time.sleep(0.3)
    db = settings.path(settings.store.path)
    first = _send(settings)
    deadline = time.monotonic() + 60
    while _rows(db) < ACCOUNTS // 3 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.01)
    assert first.poll() is None, (
        f"the batch ended before it could be killed: {first.stdout.read() if first.stdout else ''}"
    )
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    if first.stdout is not None:
        first.stdout.close()
    killed_at = _rows(db)
    assert 0 < killed_at < ACCOUNTS

    second = _send(settings)
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out

    # Rows whose answer the kill lost: reconciled as unknown (counted, not re-sent).
    store = await SqliteStore.open(db)
    try:
        built = texts.build(settings, store, SystemClock(), "test")
        await built.sender.reconcile(after=timedelta(0))
        await built.gateway.aclose()
        rows = await store.messages_in("b1")
    finally:
        await store.close()
    await asyncio.sleep(1.0)  # the last texts reach the handsets
    sink.stop.set()
    sink.join(5)
    sink.sock.close()

    counted = Counter(r["account_id"] for r in rows if r["state"] != "not_sent")
    assert sorted(counted) == [f"A{i:03d}" for i in range(ACCOUNTS)]  # nobody left out
    assert set(counted.values()) == {1}  # nobody texted twice by DueCall
    assert max(sink.per_phone.values()) == 1  # and no handset got two
    states = Counter(r["state"] for r in rows)
    assert states.keys() <= {"submitted", "accepted", "delivered", "unknown"}, states
    # Every text a handset got has a row; a row may be 'unknown' whether or not its text left.
    assert sum(sink.per_phone.values()) <= len(rows)
    assert sum(sink.per_phone.values()) >= len(rows) - states["unknown"]

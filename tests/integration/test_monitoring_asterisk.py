"""`duecall run` against the real Asterisk serves its figures while it dials (issue 14 item 5)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx2
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from dialer.asterisk.host import AmiCredentials
from duecall.cli import main
from tests.support.borrowers import borrowers_csv
from tests.support.config import make_settings
from tests.support.project import daytime_zone


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Scraper(threading.Thread):
    """Scrapes every 0.1 s while the run lasts; keeps the largest value seen of each sample."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.seen: dict[str, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        with httpx2.Client(timeout=2) as client:
            while not self.done.wait(0.1):
                try:
                    reply = client.get(self.url)
                except httpx2.TransportError:
                    continue  # not up yet, or already down
                for family in text_string_to_metric_families(reply.text):
                    for s in family.samples:
                        key = s.name + "".join(f",{k}={v}" for k, v in sorted(s.labels.items()))
                        self.seen[key] = max(self.seen.get(key, 0.0), s.value)


@pytest.mark.asterisk
def test_a_run_serves_its_figures(asterisk: AmiCredentials, work_dir: Path) -> None:
    port = _free_port()
    make_settings(work_dir, metrics={"port": port, "refresh": "0.2s"})
    cfg = str(work_dir / "duecall.toml")
    path = borrowers_csv(work_dir / "in.csv", [("M1", "+12025550101", daytime_zone())])
    runner = CliRunner()
    for args in (["accounts", "import", str(path)], ["campaign", "create", "mon"]):
        assert runner.invoke(main, ["--config", cfg, *args]).exit_code == 0
    scraper = Scraper(port)
    scraper.start()
    try:
        result = runner.invoke(main, ["--config", cfg, "-v", "run", "mon", "--exit-when-idle"])
    finally:
        scraper.done.set()
        scraper.join(5)
    assert result.exit_code == 0, result.output
    seen = scraper.seen
    assert seen.get("duecall_ami_connected") == 1, sorted(seen)
    assert seen.get("duecall_calls_in_flight", 0) >= 1
    assert "duecall_event_loop_lag_seconds" in seen
    assert seen.get("duecall_metrics_refresh_errors_total") == 0
    with socket.socket() as s:  # the endpoint is gone with the run
        assert s.connect_ex(("127.0.0.1", port)) != 0

"""The SMS commands as an operator runs them: `sms up`, `sms serve` until SIGTERM, `sms messages`,
`sms inbox`, `sms down` (issue 12); `sms send` runs in tests/integration/test_sms_crash.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from duecall.cli import main
from sms import kannel
from tests.support.config import make_settings

PORTS = {"admin_port": 13800, "smsbox_port": 13801, "sendsms_port": 13813, "fake_port": 13820}
RECEIVER = 13830


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_serve_receives_until_sigterm_and_the_lists_print(tmp_path: Path) -> None:
    s = make_settings(
        tmp_path, sms={"state_dir": str(tmp_path / "state"), **PORTS, "receiver_port": RECEIVER}
    )
    config = str(tmp_path / "duecall.toml")
    runner = CliRunner()
    up = runner.invoke(main, ["--config", config, "sms", "up"])
    assert up.exit_code == 0, up.output
    serve = subprocess.Popen(
        [sys.executable, "-m", "duecall", "--config", config, "sms", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        secret = kannel.receiver_secret(s.sms, s.path(s.sms.state_dir))
        base = f"http://127.0.0.1:{RECEIVER}/sms"
        deadline = time.monotonic() + 20
        while True:
            try:
                status = _status(f"{base}/wrong/mo?from=%2B12025550101&text=STOP")
                break
            except OSError:
                assert time.monotonic() < deadline and serve.poll() is None, "the receiver never listened"
                time.sleep(0.1)
        assert status == 404  # no secret, no page
        assert _status(f"{base}/{secret}/mo?from=%2B12025550101&text=hello%20there&ref=r1") == 200
        assert _status(f"{base}/{secret}/dlr/7?type=99") == 400
        serve.send_signal(signal.SIGTERM)
        out, _ = serve.communicate(timeout=20)
        assert serve.returncode == 0, out
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.communicate()
        runner.invoke(main, ["--config", config, "sms", "down"])
    inbox = runner.invoke(main, ["--config", config, "sms", "inbox"])
    assert inbox.exit_code == 0 and "hello there" in inbox.output and "for_person" in inbox.output, (
        inbox.output
    )
    listed = runner.invoke(main, ["--config", config, "sms", "messages"])
    assert listed.exit_code == 0 and "state" in listed.output, listed.output

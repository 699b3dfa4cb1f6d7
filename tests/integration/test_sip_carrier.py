"""The dialer over a real PJSIP trunk: our own Asterisk, the trunk rendered from [carrier], sipp as
the carrier on loopback (issue 16 part 3).

Each number's last four digits pick what sipp does (tests/support/sipp/carrier_uas.xml): it
answers with RTP audio and presses 1 as an RFC 4733 event, rings until our ring timeout, or
refuses with 480, 408, 486, 503 or 404. The real dialer runs one campaign over them; every
disposition is checked, and sipp's own trace shows each number got exactly one call.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialer.asterisk.host import AmiCredentials, provision, start, stop
from dialer.asterisk.trunk import TRUNK_FILE
from dialer.core.clock import ShiftedClock
from dialer.core.config import Settings
from dialer.core.models import Disposition
from duecall.runtime import dial
from tests.support import sipp
from tests.support.config import make_settings
from tests.support.project import PROJECT_ROOT, STATE_DIR, daytime_zone
from tests.support.sim import attempts, prepare

pytestmark = pytest.mark.asterisk

HELPER_STATE = STATE_DIR / "helper-sip"  # this file's own Asterisk: never the suite's one on 5038
AMI_PORT = 5151
PJSIP_PORT = 5160
CARRIER = {
    "host": sipp.HOST,
    "port": sipp.SIP_PORT,
    "bind": "127.0.0.1",
    "bind_port": PJSIP_PORT,
    "qualify_frequency": 0,  # no OPTIONS: sipp's scenario answers INVITEs only
}
BEHAVIOURS = {
    # last four digits: (disposition, digits pressed)
    "0101": (Disposition.ANSWERED, "1"),  # 200 OK, audio, RFC 4733 "1"
    "0120": (Disposition.NO_ANSWER, ""),  # 180, our ring timeout cancels
    "0121": (Disposition.NO_ANSWER, ""),  # 480 Temporarily Unavailable
    "0122": (Disposition.NO_ANSWER, ""),  # 408 Request Timeout
    "0130": (Disposition.BUSY, ""),  # 486 Busy Here
    "0140": (Disposition.FAILED, ""),  # 503 Service Unavailable: congestion
    "0142": (Disposition.FAILED, ""),  # 404 Not Found: not in service
}

INVITE = re.compile(r"^INVITE sip:\+?(\d+)@")
CALL_ID = re.compile(r"^Call-ID:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


def carrier_settings(work_dir: Path) -> Settings:
    return make_settings(
        work_dir,
        asterisk={"state_dir": str(HELPER_STATE), "ami_port": AMI_PORT},
        dialer={"trunk": "PJSIP/{number}@carrier", "amd": False, "ring_timeout": "3s"},
        carrier=CARRIER,
    )


@pytest.fixture(scope="module")
def sip_asterisk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AmiCredentials]:
    """Our own Asterisk with the trunk rendered from [carrier] (the same settings the test uses)."""
    settings = carrier_settings(tmp_path_factory.mktemp("sip-settings"))
    assert settings.carrier is not None
    install = provision(PROJECT_ROOT, HELPER_STATE)
    # kill_strays=False: the suite's Asterisk (5038) runs in the same chroot and must stay up.
    creds = start(install, PROJECT_ROOT, HELPER_STATE, AMI_PORT, kill_strays=False, carrier=settings.carrier)
    try:
        yield creds
    finally:
        stop(HELPER_STATE)


@pytest.fixture
def carrier(work_dir: Path) -> Iterator[sipp.SippRun]:
    with sipp.carrier(work_dir) as run:
        yield run


async def test_every_sip_answer_ends_in_its_disposition_with_one_invite_each(
    sip_asterisk: AmiCredentials, carrier: sipp.SippRun, work_dir: Path
) -> None:
    settings = carrier_settings(work_dir)
    accounts = [(f"S{k}", f"+1202555{k}", daytime_zone()) for k in BEHAVIOURS]
    await prepare(settings, work_dir, accounts)
    summary = await dial(settings, "test", ShiftedClock(datetime.now(UTC)), timedelta(0))
    rows = await attempts(settings)
    got = {str(r["account_id"])[1:]: (r["disposition"], r["digits"]) for r in rows}
    assert got == BEHAVIOURS
    assert summary.placed == len(BEHAVIOURS) == len(rows)
    assert all(r["state"] == "ended" for r in rows)
    sipp.stop(carrier)  # its trace is complete once it has quit
    assert carrier.invites() == {f"1202555{k}": 1 for k in BEHAVIOURS}
    # Our ring timeout cancelled the call that only rang; we hung up the answered one.
    assert requests(carrier, "CANCEL") == ["12025550120"]
    assert requests(carrier, "BYE") == ["12025550101"]


def requests(run: sipp.SippRun, method: str) -> list[str]:
    """The numbers whose calls got a `method` request (matched by Call-ID: an in-dialog request goes
    to the Contact, which names no number)."""
    number_of: dict[str, str] = {}
    wanted: list[str] = []
    for message in run.received():
        call_id = CALL_ID.search(message)
        invite = INVITE.match(message)
        if call_id and invite:
            number_of[call_id.group(1)] = invite.group(1)
        elif call_id and message.startswith(f"{method} "):
            wanted.append(call_id.group(1))
    return [number_of.get(call_id, "?") for call_id in wanted]


def test_trunk_is_rendered_private_from_the_settings(sip_asterisk: AmiCredentials) -> None:
    rendered = HELPER_STATE / "asterisk" / "etc" / TRUNK_FILE
    assert stat.S_IMODE(rendered.stat().st_mode) == 0o600
    text = rendered.read_text()
    assert f"bind = 127.0.0.1:{PJSIP_PORT}" in text
    assert f"contact = sip:{sipp.HOST}:{sipp.SIP_PORT}" in text
    assert "type = auth" not in text  # no credentials given: no auth, no registration

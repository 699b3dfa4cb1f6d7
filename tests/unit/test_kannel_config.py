"""Kannel's rendered configuration (issue 12, item 2): loopback only, secrets in, bad values out."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from dialer.core.config import SmppLink, SmsSettings
from dialer.core.errors import SmsGatewayError
from sms import kannel


def conf(settings: SmsSettings, tmp_path: Path) -> str:
    return kannel.render_config(
        settings, kannel.layout(settings, tmp_path), "pw-123", "http://127.0.0.1:8472/sms/s"
    )


def test_every_listener_is_on_loopback(tmp_path: Path) -> None:
    text = conf(SmsSettings(), tmp_path)
    for key in ("admin-interface", "smsbox-interface", "sendsms-interface", "box-allow-ip", "user-allow-ip"):
        assert f'{key} = "127.0.0.1"' in text, key
    assert text.count('connect-allow-ip = "127.0.0.1"') == 2  # both fake SMSC ports
    assert 'admin-password = "pw-123"' in text and 'password = "pw-123"' in text
    assert 'get-url = "http://127.0.0.1:8472/sms/s/mo?' in text
    assert 'dlr-storage = "sqlite3"' in text


def test_a_carrier_link_is_one_smpp_group(tmp_path: Path) -> None:
    secret = tmp_path / "smpp-password"
    secret.write_text("carrier-pw\n", encoding="utf-8")
    link = SmppLink(host="smpp.example", system_id="lender", password_file=secret)
    text = conf(SmsSettings(smsc="smpp", smpp=link), tmp_path)
    assert 'smsc = "smpp"' in text and 'smsc-password = "carrier-pw"' in text
    assert 'smsc = "fake"' not in text and 'default-smsc = "carrier"' in text


def test_smpp_without_its_link_or_password_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"needs an \[sms.smpp\] section"):
        SmsSettings(smsc="smpp")
    link = SmppLink(host="smpp.example", system_id="lender", password_file=tmp_path / "missing")
    with pytest.raises(SmsGatewayError, match="cannot read the SMPP password"):
        conf(SmsSettings(smsc="smpp", smpp=link), tmp_path)


def test_a_value_that_would_break_the_file_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "smpp-password"
    secret.write_text('pw"\ngroup = core\n', encoding="utf-8")  # an injected group
    link = SmppLink(host="smpp.example", system_id="lender", password_file=secret)
    with pytest.raises(SmsGatewayError, match="may not hold quotes or line ends"):
        conf(SmsSettings(smsc="smpp", smpp=link), tmp_path)

"""[carrier] settings and the pjsip_trunk.conf rendered from them (dialer/asterisk/trunk.py)."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from dialer.asterisk.host import AsteriskInstall, prepare_files
from dialer.asterisk.trunk import TRUNK_FILE, render_trunk, write_trunk
from dialer.core.config import CarrierSettings, load_settings
from dialer.core.errors import ConfigError
from tests.support.config import write_config
from tests.support.project import PROJECT_ROOT


def sections(text: str) -> dict[str, list[dict[str, str]]]:
    """pjsip.conf text as {name: [{key: value}, ...]} (a name may have several types)."""
    found: dict[str, list[dict[str, str]]] = {}
    current: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            current = {}
            found.setdefault(line.strip("[]"), []).append(current)
        else:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return found


def of_type(text: str, name: str, kind: str) -> dict[str, str]:
    [section] = [s for s in sections(text)[name] if s["type"] == kind]
    return section


def load(tmp_path: Path, carrier: dict[str, Any]) -> CarrierSettings:
    settings = load_settings(write_config(tmp_path / "duecall.toml", {"carrier": carrier}))
    assert settings.carrier is not None
    return settings.carrier


def test_no_carrier_section_means_no_trunk(tmp_path: Path) -> None:
    assert load_settings(write_config(tmp_path / "duecall.toml", {"dialer": {"amd": False}})).carrier is None


def test_ip_trunk_has_transport_aor_endpoint_identify_and_no_auth(tmp_path: Path) -> None:
    carrier = load(tmp_path, {"host": "sip.carrier.example", "bind": "127.0.0.1", "bind_port": 5160})
    text = render_trunk(carrier, None)
    assert of_type(text, "carrier-transport", "transport") == {
        "type": "transport",
        "protocol": "udp",
        "bind": "127.0.0.1:5160",
    }
    assert of_type(text, "carrier", "aor")["contact"] == "sip:sip.carrier.example:5060"
    endpoint = of_type(text, "carrier", "endpoint")
    assert endpoint["transport"] == "carrier-transport" and endpoint["aors"] == "carrier"
    assert endpoint["dtmf_mode"] == "rfc4733"
    assert (endpoint["disallow"], endpoint["allow"]) == ("all", "ulaw,alaw")
    assert "outbound_auth" not in endpoint
    assert of_type(text, "carrier-identify", "identify")["match"] == "sip.carrier.example"
    assert set(sections(text)) == {"carrier-transport", "carrier", "carrier-identify"}


def test_credentials_add_auth_and_registration_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "sip.secret").write_text("s3cr;et\n")
    base = {"host": "10.0.0.9", "port": 5080, "username": "acme", "password_file": "sip.secret"}
    carrier = load(tmp_path, base)
    etc = tmp_path / "etc"
    etc.mkdir()
    text = write_trunk(etc, carrier, tmp_path).read_text()
    auth = of_type(text, "carrier-auth", "auth")
    assert (auth["username"], auth["password"]) == ("acme", r"s3cr\;et")  # `;` escaped, not a comment
    assert of_type(text, "carrier", "endpoint")["outbound_auth"] == "carrier-auth"
    assert "carrier-registration" not in sections(text)
    registered = render_trunk(load(tmp_path, {**base, "registration": True}), "pw")
    reg = of_type(registered, "carrier-registration", "registration")
    assert reg["server_uri"] == "sip:10.0.0.9:5080"
    assert reg["client_uri"] == "sip:acme@10.0.0.9"
    assert reg["outbound_auth"] == "carrier-auth"


def test_tcp_transport_reaches_the_contact(tmp_path: Path) -> None:
    text = render_trunk(load(tmp_path, {"host": "10.0.0.9", "transport": "tcp"}), None)
    assert of_type(text, "carrier-transport", "transport")["protocol"] == "tcp"
    assert of_type(text, "carrier", "aor")["contact"] == "sip:10.0.0.9:5060;transport=tcp"


@pytest.mark.parametrize(
    ("carrier", "named"),
    [
        ({"port": 5060}, "carrier.host"),
        ({"host": "sip carrier"}, "carrier.host"),
        ({"host": "x.example", "port": 0}, "carrier.port"),
        ({"host": "x.example", "bind": "localhost"}, "carrier.bind"),
        ({"host": "x.example", "bind_port": 70000}, "carrier.bind_port"),
        ({"host": "x.example", "transport": "tls"}, "carrier.transport"),
        ({"host": "x.example", "codecs": ["opus"]}, "carrier.codecs"),
        ({"host": "x.example", "codecs": []}, "carrier.codecs"),
        ({"host": "x.example", "dtmf_mode": "rfc2833"}, "carrier.dtmf_mode"),
        ({"host": "x.example", "username": "a;b", "password_file": "/p"}, "carrier.username"),
        ({"host": "x.example", "username": "acme"}, "password_file"),
        ({"host": "x.example", "registration": True}, "registration"),
        ({"host": "x.example", "secret": "pw"}, "carrier.secret"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(
    tmp_path: Path, carrier: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write_config(tmp_path / "duecall.toml", {"carrier": carrier}))
    assert named in str(error.value)


@pytest.mark.parametrize("content", ["", "two words", "line\nbreak", "[section]"])
def test_unusable_password_file_is_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / "sip.secret").write_text(content)
    carrier = load(tmp_path, {"host": "x.example", "username": "acme", "password_file": "sip.secret"})
    with pytest.raises(ConfigError, match=r"carrier\.password_file"):
        write_trunk(tmp_path, carrier, tmp_path)


def test_missing_password_file_is_refused(tmp_path: Path) -> None:
    carrier = load(tmp_path, {"host": "x.example", "username": "acme", "password_file": "nope"})
    with pytest.raises(ConfigError, match=r"carrier\.password_file: cannot read"):
        write_trunk(tmp_path, carrier, tmp_path)


def _install() -> AsteriskInstall:
    return AsteriskInstall(
        "system", Path("/"), "22.0.0", Path("/usr/lib/asterisk/modules"), Path("/usr/share/asterisk")
    )


def test_prepare_files_renders_the_trunk_private_over_a_hand_written_one(tmp_path: Path) -> None:
    carrier = load(tmp_path, {"host": "10.0.0.9"})
    lay = prepare_files(_install(), PROJECT_ROOT, tmp_path / "state", 5151, carrier)
    rendered = lay.etc / TRUNK_FILE
    assert stat.S_IMODE(rendered.stat().st_mode) == 0o600
    assert rendered.read_text() == render_trunk(carrier, None)
    assert '#tryinclude "pjsip_trunk.conf"' in (lay.etc / "pjsip.conf").read_text()


def test_prepare_files_without_carrier_keeps_the_config_as_written(tmp_path: Path) -> None:
    lay = prepare_files(_install(), PROJECT_ROOT, tmp_path / "state", 5151)
    hand_written = PROJECT_ROOT / "asterisk" / "conf" / TRUNK_FILE
    if hand_written.exists():
        assert (lay.etc / TRUNK_FILE).read_bytes() == hand_written.read_bytes()
    else:
        assert not (lay.etc / TRUNK_FILE).exists()

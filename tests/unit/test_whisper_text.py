"""What the Whisper backend hands the matcher: normalised text and a 0..1 confidence (no model)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from ivr.asr_whisper import confidence, normalise, whisper_language


@dataclass
class Segment:
    text: str
    avg_logprob: float
    no_speech_prob: float = 0.1
    tokens: list[int] = field(default_factory=lambda: [1, 2])


@pytest.mark.parametrize(
    ("text", "language", "phrases", "expected"),
    [
        (" Yes.", "en", ["yes", "no"], "yes"),
        (" Stop calling!", "en", ["stop calling", "stop"], "stop calling"),
        (" Don't call me.", "en", ["don't call me"], "don't call me"),  # the phrase as written
        (" I'd already paid.", "en", ["pay"], "id already paid"),
        (" 停止。", "zh", ["停止"], "停止"),
        (" 別再打了", "zh", ["别再打了"], "别再打了"),  # Traditional -> Simplified
        ("不要 再打了", "zh", ["不要再打了"], "不要再打了"),
        ("停止来电", "zh", ["停止 来电"], "停止 来电"),  # the phrase's own spacing
        ("對不起，不小心", "zh", ["是"], "对不起不小心"),
        (" ...", "en", ["yes"], ""),
    ],
)
def test_normalised_for_matching(text: str, language: str, phrases: list[str], expected: str) -> None:
    assert normalise(text, language, phrases) == expected


def test_confidence_is_the_geometric_mean_token_probability() -> None:
    assert confidence([Segment(" yes", -0.2)]) == pytest.approx(math.exp(-0.2))
    # weighted by tokens (+1 for end-of-text): (-0.2 * 3 + -1.0 * 5) / 8
    assert confidence([Segment("a", -0.2), Segment("b", -1.0, tokens=[1, 2, 3, 4])]) == pytest.approx(
        math.exp(-0.7)
    )


def test_what_whisper_calls_silence_has_no_confidence() -> None:
    assert confidence([Segment(" you", -1.7, no_speech_prob=0.7)]) == 0.0
    assert confidence([Segment(" no", -0.5, no_speech_prob=0.7)]) == pytest.approx(math.exp(-0.5))
    assert confidence([]) == 0.0


@pytest.mark.parametrize(("given", "code"), [("en-US", "en"), ("zh-CN", "zh"), ("zh", "zh"), ("ko_KR", "ko")])
def test_whisper_language_codes(given: str, code: str) -> None:
    assert whisper_language(given) == code

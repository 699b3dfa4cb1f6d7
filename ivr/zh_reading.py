"""Mandarin prompts as numbered pinyin for espeak-ng's ``cmn-latn-pinyin`` voice, read as people say them.

After `numbers_to_hanzi` (ivr.spoken: 两千, 二〇二六年), each run of Hanzi goes through three passes:

1. pypinyin 0.55 reads every character, from its phrase dictionary where a word matches;
2. our phrase overrides (``ivr/zh_phrases.yaml``) replace that where pypinyin is wrong (还款 hai2)
   or its word cutting misses the phrase (到期日为 is cut 到期|日|为, so 为 would be wei4);
3. 一 and 不 take their tone from the next syllable over the whole run, across pypinyin's words:
   pypinyin's own ``tone_sandhi`` works inside its words only (一笔 stays yi1) and leaves 一次 yi1.

Every syllable then carries its tone digit, so espeak-ng has nothing left to guess; it applies the
3-3 sandhi itself ("ni3 hao3" -> n'i35 X'Au214), so that one is not written here.

A neural voice is given the text itself (ivr.tts); this reading is for espeak-ng. Pure: no I/O
beyond reading the overrides file shipped in the package, once.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pypinyin import Style, lazy_pinyin
from pypinyin.constants import PHRASES_DICT, RE_HANS
from pypinyin.seg.mmseg import seg

from ivr.spoken import numbers_to_hanzi

# Where a syllable's reading came from: pypinyin's phrase dictionary, our overrides, the 一/不
# rules, or pypinyin's reading of the character alone (the one to distrust for a polyphone).
Source = Literal["phrase", "override", "rule", "char"]
_SYLLABLE = re.compile(r"^[a-z]{1,6}[1-5]$")


@dataclass(frozen=True)
class Syllable:
    char: str
    pinyin: str  # numbered: "huan2"; neutral tone 5; ü written v
    source: Source


@dataclass(frozen=True)
class Readings:
    """The overrides file: phrase readings, the polyphones to watch, their accepted defaults."""

    phrases: Mapping[str, tuple[str, ...]]
    polyphones: frozenset[str]
    defaults: Mapping[str, str]
    longest: int  # characters in the longest phrase


def _is_hanzi(text: str) -> bool:
    return bool(RE_HANS.match(text))


def _phrase_entry(where: str, phrase: object, reading: object) -> tuple[str, tuple[str, ...]]:
    if not isinstance(phrase, str) or not _is_hanzi(phrase):
        raise ValueError(f"{where}: phrase {phrase!r} is not a run of Chinese characters")
    syllables = tuple(reading.split()) if isinstance(reading, str) else ()
    bad = [s for s in syllables if not _SYLLABLE.match(s)]
    if len(syllables) != len(phrase) or bad:
        raise ValueError(
            f"{where}: {phrase}: {reading!r} must be {len(phrase)} numbered pinyin syllable(s) "
            f"like 'huan2 kuan3'" + (f" (not {', '.join(bad)})" if bad else "")
        )
    return phrase, syllables


def parse_readings(data: Any, where: str) -> Readings:
    """Check the overrides file's content; ValueError names the file (`where`) and the entry."""
    if not isinstance(data, dict) or set(data) - {"phrases", "polyphones", "defaults"}:
        raise ValueError(f"{where}: expected a mapping of phrases, polyphones and defaults")
    phrases = data.get("phrases") or {}
    defaults = data.get("defaults") or {}
    polyphones = data.get("polyphones") or ""
    if not isinstance(phrases, dict) or not isinstance(defaults, dict) or not isinstance(polyphones, str):
        raise ValueError(f"{where}: phrases and defaults are mappings, polyphones a string of characters")
    if polyphones and not _is_hanzi(polyphones):
        raise ValueError(f"{where}: polyphones must be Chinese characters only")
    entries = dict(_phrase_entry(f"{where}: phrases", p, r) for p, r in phrases.items())
    accepted: dict[str, str] = {}
    for char, reading in defaults.items():
        _, (syllable,) = _phrase_entry(f"{where}: defaults", char, reading)
        if char not in polyphones:
            raise ValueError(f"{where}: defaults: {char} is not listed in polyphones")
        accepted[char] = syllable
    return Readings(entries, frozenset(polyphones), accepted, max(map(len, entries), default=0))


def load_readings(path: Path) -> Readings:
    """Read and check an overrides file (YAML, loaded safely)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    return parse_readings(data, str(path))


@functools.cache
def shipped_readings() -> Readings:
    """The overrides shipped with the package (``ivr/zh_phrases.yaml``), read once."""
    source = resources.files("ivr").joinpath("zh_phrases.yaml")
    return parse_readings(yaml.safe_load(source.read_text(encoding="utf-8")), "ivr/zh_phrases.yaml")


# -- the passes ----------------------------------------------------------------------------------


def _pypinyin(run: str) -> list[Syllable]:
    """pypinyin's reading of a Hanzi run, word by word as pypinyin cuts it, with its source."""
    out: list[Syllable] = []
    for word in seg.cut(run):
        source: Source = "phrase" if len(word) > 1 and word in PHRASES_DICT else "char"
        readings = lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True)
        if len(readings) != len(word):  # not expected for RE_HANS characters; read them one by one
            readings = [lazy_pinyin(c, style=Style.TONE3, neutral_tone_with_five=True)[0] for c in word]
        out += [Syllable(c, p, source) for c, p in zip(word, readings, strict=True)]
    return out


def _override(run: str, syllables: list[Syllable], readings: Readings) -> list[Syllable]:
    """Our phrases over pypinyin's reading: left to right, the longest phrase first."""
    out, i = list(syllables), 0
    while i < len(run):
        for size in range(min(readings.longest, len(run) - i), 1, -1):
            phrase = run[i : i + size]
            if phrase in readings.phrases:
                pinyin = readings.phrases[phrase]
                out[i : i + size] = [Syllable(c, p, "override") for c, p in zip(phrase, pinyin, strict=True)]
                i += size
                break
        else:
            i += 1
    return out


# 一 keeps tone 1 after these (第一, 初一, 周一, 按一: an ordinal, a date, a key's name) ...
_YI_ORDINAL_BEFORE = frozenset("第初周按拨")
# ... and next to a digit or 十 (十一, 二十一万, 二〇二一年, 一一), and before a date's 月/日/号.
_DIGITS = frozenset("〇零一二三四五六七八九十")
_YI_DATE_AFTER = frozenset("月日号")
_UNITS = frozenset("百千万亿")


def _tone(s: Syllable) -> str:
    """The citation tone of a syllable (一 and 不 by their own, before any change)."""
    if s.char == "一":
        return "1"
    if s.char == "不":
        return "4"
    return s.pinyin[-1]


def _yi(prev: Syllable | None, nxt: Syllable | None, before: str, base: Syllable) -> str:
    """一 (yi) by its neighbours: yi1 when counted or named, else yi2 before tone 4, yi4 before others."""
    if (
        nxt is None
        or (prev is not None and prev.char in _YI_ORDINAL_BEFORE)
        or before.endswith(("星期", "礼拜"))
    ):
        return "yi1"
    if prev is not None and prev.char in _DIGITS and not (prev.char in "零〇" and nxt.char in _UNITS):
        return "yi1"  # 十一, 二〇二一: a digit, not a count of a unit (but 零一万 counts)
    if nxt.char in _DIGITS or nxt.char in _YI_DATE_AFTER:
        return "yi1"
    if prev is not None and prev.char == "万" and nxt.char not in _UNITS:
        return "yi1"  # 万一 "in case" (but 一万一千 counts a thousand)
    if (base.source == "phrase" and base.pinyin == "yi5") or (prev is not None and prev.char == nxt.char):
        return "yi5"  # pypinyin's neutral 一 in a phrase; 看一看
    return "yi2" if _tone(nxt) == "4" or nxt.char == "个" else "yi4"


def _bu(nxt: Syllable | None, base: Syllable) -> str:
    if nxt is None:
        return "bu4"
    if base.source == "phrase" and base.pinyin == "bu5":
        return "bu5"  # 差不多
    return "bu2" if _tone(nxt) == "4" else "bu4"


def _sandhi(run: str, syllables: list[Syllable]) -> list[Syllable]:
    """一 and 不 over the whole run; a phrase override is left as written."""
    out = list(syllables)
    for i, s in enumerate(syllables):
        if s.source == "override" or s.char not in "一不":
            continue
        prev = syllables[i - 1] if i else None
        nxt = syllables[i + 1] if i + 1 < len(syllables) else None
        pinyin = _yi(prev, nxt, run[max(0, i - 2) : i], s) if s.char == "一" else _bu(nxt, s)
        out[i] = Syllable(s.char, pinyin, "rule")
    return out


def _read_run(run: str) -> list[Syllable]:
    readings = shipped_readings()
    return _sandhi(run, _override(run, _pypinyin(run), readings))


def _runs(text: str) -> Iterator[tuple[bool, str]]:
    """(is Hanzi, run) in order; Hanzi as pypinyin knows them (〇 included)."""
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or _is_hanzi(text[i]) != _is_hanzi(text[start]):
            yield _is_hanzi(text[start]), text[start:i]
            start = i


# -- the reading ---------------------------------------------------------------------------------

_PUNCTUATION = str.maketrans(
    {
        "，": ",",
        "、": ",",
        "；": ";",
        "：": ":",
        "。": ".",
        "！": "!",
        "？": "?",
        "（": "(",
        "）": ")",
        "“": '"',
        "”": '"',
        "‘": "'",
        "’": "'",
        "—": ",",
        "…": ".",
        "　": " ",
    }
)


def syllables(text: str) -> list[Syllable]:
    """Every Hanzi of `text` (numbers spelt out first) with its reading and where it came from."""
    return [s for is_hanzi, run in _runs(numbers_to_hanzi(text)) if is_hanzi for s in _read_run(run)]


def _join(parts: list[str]) -> str:
    text = " ".join(part.strip() for part in parts if part.strip())
    text = re.sub(r"\s+([,.;:!?)])", r"\1", text)
    text = re.sub(r"\(\s+", "(", text)
    return re.sub(r"\s+", " ", text).strip()


def zh_reading(text: str) -> str:
    """Chinese text as numbered pinyin for espeak-ng's ``cmn-latn-pinyin`` voice.

    Numbers become Hanzi numerals first (两千, 二〇二六年), polyphones are read by phrase, 一 and
    不 change tone over the sentence; neutral tone is 5 ("de5"), ü is v ("lv4"), full-width
    punctuation becomes ASCII so espeak pauses on it, other ASCII is kept.
    """
    parts: list[str] = []
    for is_hanzi, run in _runs(numbers_to_hanzi(text)):
        if is_hanzi:
            parts += [s.pinyin for s in _read_run(run)]
        else:
            parts.append(run.translate(_PUNCTUATION))
    return _join(parts)


def unresolved_polyphones(text: str) -> list[str]:
    """The polyphones of `text` read by pypinyin's single-character default, which may be wrong.

    Each as ``"为 wei4 in 到期日为十二月"``; empty when every one is read by a phrase, or is the
    default the overrides file accepts for it.
    """
    readings = shipped_readings()
    found = syllables(text)
    hanzi = "".join(s.char for s in found)
    return [
        f"{s.char} {s.pinyin} in {hanzi[max(0, i - 3) : i + 4]}"
        for i, s in enumerate(found)
        if s.char in readings.polyphones and s.source == "char" and readings.defaults.get(s.char) != s.pinyin
    ]

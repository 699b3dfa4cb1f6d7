"""Amounts, dates and digit strings as a locale speaks them.

Pure functions: no I/O. The output is the text of a prompt, handed to espeak-ng (Mandarin by way
of `ivr.zh_reading`) or to a neural voice, so each form was chosen by what a listener expects and
what espeak-ng 1.51 actually pronounces (checked with ``espeak-ng -x``):

- en-US keeps digits with thousands separators ("1,234 dollars and 50 cents"): espeak reads
  them as American English cardinals ("one thousand two hundred thirty four"). Dates are words
  ("December first, twenty twenty-six"): espeak reads "December 1, 2026" as "December one, two
  thousand twenty six".
- zh-CN is Hanzi throughout, as money is said: "人民币两千二百三十四元五角", "二〇二六年十二月一日".
  两, not 二, counts 千/万/亿 (两千, 一万两千, 两亿), leads an amount's 百 (两百, 两百万) and
  is a count of exactly 2 before 元/角/分 and other measure words (两元, 两角); 二 stays in and
  after 十 (二十, 十二万), before 百 inside a number (一千二百) and in dates and ordinals (二月, 第二期).
- ko-KR is Hangul throughout ("백이십삼만 사천 원", "이천이십육년 십이월 일일"): espeak reads
  digits in Sino-Korean but pauses between them and says 육월/십월 for 유월/시월.

Supported locales: zh-CN, ko-KR, en-US (any other ``en-*`` follows en-US rules).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

import cn2an  # type: ignore[import-untyped]
import iso4217
from num2words import num2words  # type: ignore[import-untyped]

Rules = Literal["zh", "en", "ko"]

_EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_EN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# Telephone style: 幺 for 1 (yao1), as Chinese operators read numbers, so 1 and 7 (yi1/qi1) don't blur.
_ZH_PHONE_DIGITS = "零幺二三四五六七八九"
# A year is read digit by digit, 〇 for 0 as it is written (二〇二六年).
_ZH_YEAR_DIGITS = "〇一二三四五六七八九"
# 공 for 0, as Koreans read telephone numbers.
_KO_DIGITS = "공일이삼사오육칠팔구"
_KO_MONTHS = ("일", "이", "삼", "사", "오", "유", "칠", "팔", "구", "시", "십일", "십이")

# (singular major, plural major, singular minor, plural minor) as an English speaker says them.
_EN_CURRENCY: dict[str, tuple[str, str, str, str]] = {
    "USD": ("dollar", "dollars", "cent", "cents"),
    "CAD": ("Canadian dollar", "Canadian dollars", "cent", "cents"),
    "AUD": ("Australian dollar", "Australian dollars", "cent", "cents"),
    "EUR": ("euro", "euros", "cent", "cents"),
    "GBP": ("pound", "pounds", "penny", "pence"),
    "CNY": ("yuan", "yuan", "fen", "fen"),
    "KRW": ("won", "won", "", ""),
    "JPY": ("yen", "yen", "", ""),
}
# Foreign currencies in Chinese are read as a decimal number: "一千二百三十四点五美元".
_ZH_CURRENCY = {"USD": "美元", "EUR": "欧元", "HKD": "港元", "JPY": "日元", "KRW": "韩元", "GBP": "英镑"}
# (major, minor) in Korean; minor empty when the currency has no minor unit.
_KO_CURRENCY = {"KRW": ("원", ""), "USD": ("달러", "센트"), "EUR": ("유로", "센트"), "JPY": ("엔", "")}


def rules_for(locale: str) -> Rules:
    """The rule set of a BCP 47 tag (``zh_CN`` accepted); ValueError names an unsupported one."""
    tag = locale.replace("_", "-")
    lowered = tag.lower()
    if lowered == "zh-cn":
        return "zh"
    if lowered == "ko-kr":
        return "ko"
    if lowered == "en" or lowered.startswith("en-"):
        return "en"
    raise ValueError(f"locale {locale!r} is not supported for speech (supported: zh-CN, en-US, ko-KR)")


# -- amounts -------------------------------------------------------------------------------------


def _exponent(currency: str) -> int:
    try:
        exponent = iso4217.Currency(currency.upper()).exponent
    except ValueError:
        raise ValueError(f"currency {currency!r} is not an ISO 4217 code") from None
    if exponent is None:
        raise ValueError(f"currency {currency!r} has no minor unit (not money)")
    return int(exponent)


def _split(amount_minor: int, currency: str) -> tuple[int, int, int]:
    """(major, minor, exponent) of a non-negative amount."""
    if amount_minor < 0:
        raise ValueError(f"amount {amount_minor} is negative")
    exponent = _exponent(currency)
    major, minor = divmod(amount_minor, 10**exponent)
    return major, minor, exponent


def spoken_amount(amount_minor: int, currency: str, locale: str) -> str:
    """An amount in minor units (cents, fen; won for KRW) as the locale says it."""
    code = currency.upper()
    major, minor, exponent = _split(amount_minor, code)
    rules = rules_for(locale)
    if rules == "zh":
        return _zh_amount(major, minor, exponent, code)
    if rules == "ko":
        return _ko_amount(major, minor, code)
    return _en_amount(major, minor, code)


def _unsupported(code: str, locale: str) -> ValueError:
    return ValueError(f"currency {code} has no spoken form for {locale}")


def _other_currency(major: int, minor: int, code: str) -> str:
    """A currency without its own wording: the number, then ISO 4217's English name."""
    exponent = _exponent(code)
    number = f"{major:,}.{minor:0{exponent}d}" if minor else f"{major:,}"
    return f"{number} {iso4217.Currency(code).currency_name}"


def currency_name(code: str, locale: str) -> str:
    """The currency's name for the {currency} field: the locale's word where we have one."""
    code = code.upper()
    rules = rules_for(locale)
    if rules == "zh":
        return "人民币" if code == "CNY" else _ZH_CURRENCY.get(code, " ".join(code))
    if rules == "ko" and code in _KO_CURRENCY:
        return _KO_CURRENCY[code][0]
    return str(iso4217.Currency(code).currency_name)


def _digits_and_code(major: int, minor: int, code: str) -> str:
    """Any other currency: the number as digits (the voice reads them in its language) and the code."""
    exponent = _exponent(code)
    number = f"{major}.{minor:0{exponent}d}" if minor else str(major)
    return f"{number} {' '.join(code)}"


def _en_amount(major: int, minor: int, code: str) -> str:
    if code not in _EN_CURRENCY:
        return _other_currency(major, minor, code)
    one, many, cent, cents = _EN_CURRENCY[code]
    whole = f"{major:,} {one if major == 1 else many}"
    if not minor:
        return whole
    part = f"{minor} {cent if minor == 1 else cents}"
    return part if major == 0 else f"{whole} and {part}"


# 两 for a 2 that counts 千/万/亿 (not 十二万: the 2 belongs to 十); cn2an writes 二 everywhere.
_LIANG = re.compile(r"(?<!十)二(?=[千万亿])")


def _liang(numeral: str) -> str:
    """cn2an's numeral with 两 where people say it: 两千, 一万两千, 两亿, and a leading 两百."""
    numeral = _LIANG.sub("两", numeral)
    return "两" + numeral[1:] if numeral.startswith("二百") else numeral


def zh_cardinal(value: int | str) -> str:
    """A number (digits, optional decimals) as a Chinese numeral: 2200 -> 两千二百, 2.5 -> 二点五."""
    return _liang(str(cn2an.an2cn(str(value), "low")))


def zh_count(value: int) -> str:
    """A number before a measure word (元, 角, 笔, 天): 2 is 两 (两元), else `zh_cardinal`."""
    return "两" if value == 2 else zh_cardinal(value)


def _zh_amount(major: int, minor: int, exponent: int, code: str) -> str:
    if code != "CNY":
        if code not in _ZH_CURRENCY:
            return _digits_and_code(major, minor, code)
        if not minor:
            return zh_count(major) + _ZH_CURRENCY[code]
        return zh_cardinal(f"{major}.{minor:0{exponent}d}".rstrip("0")) + _ZH_CURRENCY[code]
    jiao, fen = divmod(minor, 10)
    if not minor:
        return f"人民币{zh_count(major)}元整"
    text = f"{zh_count(major)}元" if major else ""
    if jiao:
        text += f"{zh_count(jiao)}角"
    if fen:
        text += ("零" if major and not jiao else "") + f"{zh_count(fen)}分"
    return "人民币" + text


def _ko_number(value: int) -> str:
    return str(num2words(value, lang="ko"))


def _ko_amount(major: int, minor: int, code: str) -> str:
    if code not in _KO_CURRENCY:
        return _digits_and_code(major, minor, code)
    unit, cent = _KO_CURRENCY[code]
    if not minor:
        return f"{_ko_number(major)} {unit}"
    part = f"{_ko_number(minor)} {cent}"
    return part if major == 0 else f"{_ko_number(major)} {unit} {part}"


# -- dates ---------------------------------------------------------------------------------------


def spoken_date(d: date, locale: str) -> str:
    """A calendar date as the locale says it."""
    rules = rules_for(locale)
    if rules == "zh":
        year = "".join(_ZH_YEAR_DIGITS[int(c)] for c in str(d.year))
        return f"{year}年{zh_cardinal(d.month)}月{zh_cardinal(d.day)}日"
    if rules == "ko":
        return f"{_ko_number(d.year)}년 {_KO_MONTHS[d.month - 1]}월 {_ko_number(d.day)}일"
    day = num2words(d.day, lang="en", to="ordinal")
    year = num2words(d.year, lang="en", to="year")
    return f"{_EN_MONTHS[d.month - 1]} {day}, {year}"


# -- digit strings -------------------------------------------------------------------------------

_GROUP_SEPARATORS = frozenset(" -./()")
_PLUS = {"zh": "加", "en": "plus", "ko": "플러스"}


def _digit_groups(number: str) -> list[str]:
    """Runs of digits; spaces, dashes, dots, slashes and brackets separate groups."""
    groups: list[str] = []
    current = ""
    for char in number.strip().removeprefix("+"):
        if char.isascii() and char.isdigit():
            current += char
        elif char in _GROUP_SEPARATORS:
            if current:
                groups.append(current)
            current = ""
        else:
            raise ValueError(f"{number!r} is not a number to read digit by digit (found {char!r})")
    if current:
        groups.append(current)
    if not groups:
        raise ValueError(f"{number!r} has no digits")
    return groups


def spoken_digits(number: str, locale: str) -> str:
    """A callback or reference number read digit by digit, with a pause between its groups."""
    rules = rules_for(locale)
    groups = _digit_groups(number)
    if rules == "zh":
        words = ["".join(_ZH_PHONE_DIGITS[int(c)] for c in group) for group in groups]
        text = "，".join(words)
    elif rules == "ko":
        text = ", ".join("".join(_KO_DIGITS[int(c)] for c in group) for group in groups)
    else:
        text = ", ".join(" ".join(_EN_DIGITS[int(c)] for c in group) for group in groups)
    if number.strip().startswith("+"):
        text = _PLUS[rules] + (" " if rules != "zh" else "") + text
    return text


# -- numbers inside Chinese text -----------------------------------------------------------------

# Thousands-grouped or plain numbers, optional decimals, optional percent sign.
_NUMBER = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(%?)")
# A four-digit number before 年 is a year, read digit by digit (2026年); 2年 and 10年 are counts.
_YEAR = re.compile(r"(?<!\d)\d{4}(?=\s*年)")
# A digit run longer than this (or with a leading zero) is an identifier, read digit by digit.
_LONGEST_CARDINAL = 9
# Measure words a count of 2 is said 两 before (2笔 -> 两笔); not 月/日/号 (二月, 二日) nor after 第.
_MEASURE_WORDS = frozenset("元角分块毛个笔次期天年周位条项种张家份岁点倍小")


def _zh_numeral(match: re.Match[str]) -> str:
    whole, fraction, percent = match.group(1).replace(",", ""), match.group(2) or "", match.group(3)
    if (
        not fraction
        and not percent
        and (len(whole) > _LONGEST_CARDINAL or (len(whole) > 1 and whole[0] == "0"))
    ):
        return "".join(_ZH_PHONE_DIGITS[int(c)] for c in whole)
    if percent:
        return "百分之" + zh_cardinal(whole + fraction)
    text, start, end = match.string, match.start(), match.end()
    counted = end < len(text) and text[end] in _MEASURE_WORDS and text[start - 1 : start] not in ("第", "按")
    return zh_count(int(whole)) if counted and not fraction else zh_cardinal(whole + fraction)


def numbers_to_hanzi(text: str) -> str:
    """Arabic numbers inside Chinese text as Hanzi numerals: years and long runs digit by digit."""
    text = _YEAR.sub(lambda m: "".join(_ZH_YEAR_DIGITS[int(c)] for c in m.group()), text)
    return _NUMBER.sub(_zh_numeral, text)

"""Amounts, dates and digit strings as each locale speaks them (Mandarin readings: test_zh_reading.py)."""

from __future__ import annotations

from datetime import date

import pytest

from ivr.spoken import (
    currency_name,
    numbers_to_hanzi,
    rules_for,
    spoken_amount,
    spoken_date,
    spoken_digits,
    zh_cardinal,
)


@pytest.mark.parametrize(
    ("amount_minor", "currency", "locale", "expected"),
    [
        (123450, "CNY", "zh-CN", "人民币一千二百三十四元五角"),
        (123456, "CNY", "zh-CN", "人民币一千二百三十四元五角六分"),
        (123400, "CNY", "zh-CN", "人民币一千二百三十四元整"),
        (123406, "CNY", "zh-CN", "人民币一千二百三十四元零六分"),
        (50, "CNY", "zh-CN", "人民币五角"),
        (7, "CNY", "zh-CN", "人民币七分"),
        (0, "CNY", "zh-CN", "人民币零元整"),
        (1000000, "CNY", "zh-CN", "人民币一万元整"),
        (1001000, "CNY", "zh-CN", "人民币一万零一十元整"),
        (123450, "cny", "zh_CN", "人民币一千二百三十四元五角"),
        (123450, "USD", "zh-CN", "一千二百三十四点五美元"),
        (123450, "USD", "en-US", "1,234 dollars and 50 cents"),
        (100, "USD", "en-US", "1 dollar"),
        (101, "USD", "en-US", "1 dollar and 1 cent"),
        (5, "USD", "en-US", "5 cents"),
        (0, "USD", "en-US", "0 dollars"),
        (1234567805, "USD", "en-US", "12,345,678 dollars and 5 cents"),
        (123450, "GBP", "en-GB", "1,234 pounds and 50 pence"),
        (1234000, "KRW", "en-US", "1,234,000 won"),
        (1234000, "KRW", "ko-KR", "백이십삼만 사천 원"),
        (1230000, "KRW", "ko-KR", "백이십삼만 원"),
        (10000, "KRW", "ko-KR", "만 원"),
        (11000, "KRW", "ko-KR", "만 천 원"),
        (100000000, "KRW", "ko-KR", "일억 원"),
        (0, "KRW", "ko-KR", "영 원"),
        (123450, "USD", "ko-KR", "천이백삼십사 달러 오십 센트"),
    ],
)
def test_spoken_amount(amount_minor: int, currency: str, locale: str, expected: str) -> None:
    assert spoken_amount(amount_minor, currency, locale) == expected


# Mandarin money as it is said (issue 11: 2,000 was read 二千). 两 counts 千/万/亿 and leads 百;
# 二 stays in 十 and before an inner 百; 零 once per gap; 元/角/分 counted like measure words.
@pytest.mark.parametrize(
    ("amount_minor", "expected"),
    [
        (200000, "人民币两千元整"),
        (220000, "人民币两千二百元整"),
        (2200000, "人民币两万两千元整"),
        (1200000, "人民币一万两千元整"),
        (2000000000, "人民币两千万元整"),
        (20000000000, "人民币两亿元整"),
        (22000000000, "人民币两亿两千万元整"),
        (220000000000, "人民币二十二亿元整"),  # 二十, and the 2 after 十 stays 二
        (1200000000, "人民币一千二百万元整"),
        (120000000, "人民币一百二十万元整"),
        (20000, "人民币两百元整"),  # the common spoken form for money: 两百 leading ...
        (25000, "人民币两百五十元整"),
        (120000, "人民币一千二百元整"),  # ... 二百 inside a number
        (22000, "人民币两百二十元整"),
        (2000, "人民币二十元整"),
        (1200, "人民币十二元整"),
        (200, "人民币两元整"),
        (20, "人民币两角"),
        (2, "人民币两分"),
        (222, "人民币两元两角两分"),
        (202, "人民币两元零两分"),
        (100500, "人民币一千零五元整"),
        (101000, "人民币一千零一十元整"),
        (1000005, "人民币一万元零五分"),
        (10050000, "人民币十万零五百元整"),
        (10000100, "人民币十万零一元整"),
        (1000010000, "人民币一千万零一百元整"),
        (10001000000, "人民币一亿零一万元整"),
    ],
)
def test_zh_amounts_say_liang_and_ling_as_people_do(amount_minor: int, expected: str) -> None:
    assert spoken_amount(amount_minor, "CNY", "zh-CN") == expected


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (2, "二"),
        (12, "十二"),
        (20, "二十"),
        (200, "两百"),
        (202, "两百零二"),
        (2000, "两千"),
        (2002, "两千零二"),
        (20000, "两万"),
        (120000, "十二万"),
        (220000, "二十二万"),
        (2200000, "两百二十万"),
        (200000000, "两亿"),
        ("2.25", "二点二五"),
        ("2000.5", "两千点五"),
    ],
)
def test_zh_cardinal(number: int | str, expected: str) -> None:
    assert zh_cardinal(number) == expected


def test_foreign_amount_in_chinese_counts_two_with_liang() -> None:
    assert spoken_amount(200, "USD", "zh-CN") == "两美元"
    assert spoken_amount(200050, "USD", "zh-CN") == "两千点五美元"


@pytest.mark.parametrize(
    ("amount_minor", "currency", "locale", "spoken"),
    [
        (123450, "INR", "en-US", "1,234.50 Indian Rupee"),
        (123450, "BRL", "ko-KR", "1234.50 B R L"),
        (150, "CHF", "zh-CN", "1.50 C H F"),
    ],
)
def test_other_currencies_are_spoken_by_number_and_name(
    amount_minor: int, currency: str, locale: str, spoken: str
) -> None:
    assert spoken_amount(amount_minor, currency, locale) == spoken


@pytest.mark.parametrize(
    ("amount_minor", "currency", "locale", "message"),
    [
        (100, "USD", "fr-FR", "fr-FR"),
        (100, "XYZ", "en-US", "XYZ"),
        (100, "XAU", "en-US", "no minor unit"),
        (-1, "USD", "en-US", "negative"),
    ],
)
def test_spoken_amount_rejects(amount_minor: int, currency: str, locale: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spoken_amount(amount_minor, currency, locale)


@pytest.mark.parametrize(
    ("day", "locale", "expected"),
    [
        (date(2026, 12, 1), "zh-CN", "二〇二六年十二月一日"),
        (date(2026, 2, 22), "zh-CN", "二〇二六年二月二十二日"),  # 二 in dates, never 两
        (date(2030, 11, 10), "zh-CN", "二〇三〇年十一月十日"),
        (date(2001, 1, 31), "zh-CN", "二〇〇一年一月三十一日"),
        (date(2026, 12, 1), "en-US", "December first, twenty twenty-six"),
        (date(2026, 3, 22), "en-US", "March twenty-second, twenty twenty-six"),
        (date(2026, 12, 1), "ko-KR", "이천이십육년 십이월 일일"),
        (date(2026, 6, 10), "ko-KR", "이천이십육년 유월 십일"),
        (date(2026, 10, 31), "ko-KR", "이천이십육년 시월 삼십일일"),
    ],
)
def test_spoken_date(day: date, locale: str, expected: str) -> None:
    assert spoken_date(day, locale) == expected


@pytest.mark.parametrize(
    ("number", "locale", "expected"),
    [
        ("400-812-3123", "zh-CN", "四零零，八幺二，三幺二三"),
        ("95588", "zh-CN", "九五五八八"),
        ("1 800 555 0199", "en-US", "one, eight zero zero, five five five, zero one nine nine"),
        ("+1 (800) 555-0199", "en-US", "plus one, eight zero zero, five five five, zero one nine nine"),
        ("010-1234-5678", "ko-KR", "공일공, 일이삼사, 오육칠팔"),
        ("+82 2 1588 0000", "ko-KR", "플러스 팔이, 이, 일오팔팔, 공공공공"),
    ],
)
def test_spoken_digits(number: str, locale: str, expected: str) -> None:
    assert spoken_digits(number, locale) == expected


@pytest.mark.parametrize("number", ["", "  -  ", "12a4", "１２３"])
def test_spoken_digits_rejects(number: str) -> None:
    with pytest.raises(ValueError):
        spoken_digits(number, "en-US")


@pytest.mark.parametrize(
    ("locale", "rules"), [("zh-CN", "zh"), ("zh_CN", "zh"), ("en-US", "en"), ("en-AU", "en"), ("ko-KR", "ko")]
)
def test_rules_for(locale: str, rules: str) -> None:
    assert rules_for(locale) == rules


@pytest.mark.parametrize("locale", ["zh-TW", "ko", "ja-JP", "", "fr-FR"])
def test_rules_for_names_unsupported_locale(locale: str) -> None:
    with pytest.raises(ValueError, match=repr(locale)):
        rules_for(locale)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026年12月1日", "二〇二六年十二月一日"),
        ("您有2000元到期", "您有两千元到期"),
        ("欠款22,000元", "欠款两万两千元"),
        ("共2笔，第2期", "共两笔，第二期"),  # a count of 2 is 两, an ordinal 二
        ("2天内", "两天内"),
        ("2月2日", "二月二日"),
        ("按2", "按二"),  # a key's name
        ("10年", "十年"),  # a count of years, not a year
        ("2.5%", "百分之二点五"),
        ("2000.5元", "两千点五元"),
        ("共3期", "共三期"),
        ("欠款1,234.5元", "欠款一千二百三十四点五元"),
        ("利率5.5%", "利率百分之五点五"),
        ("电话13812345678", "电话幺三八幺二三四五六七八"),
        ("编号0012", "编号零零幺二"),
    ],
)
def test_numbers_to_hanzi(text: str, expected: str) -> None:
    assert numbers_to_hanzi(text) == expected


@pytest.mark.parametrize(
    ("code", "locale", "name"),
    [
        ("CNY", "zh-CN", "人民币"),
        ("USD", "zh-CN", "美元"),
        ("KRW", "ko-KR", "원"),
        ("USD", "en-US", "US Dollar"),
    ],
)
def test_currency_names(code: str, locale: str, name: str) -> None:
    assert currency_name(code, locale) == name

"""Amounts, dates and digit strings as each locale speaks them; Hanzi to numbered pinyin."""

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
    to_pinyin,
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
        (date(2026, 12, 1), "zh-CN", "2026年12月1日"),
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
        ("2026年12月1日", "二零二六年十二月一日"),
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
    ("text", "expected"),
    [
        ("你好", "ni3 hao3"),
        ("您好，这是我的电话。", "nin2 hao3, zhe4 shi4 wo3 de5 dian4 hua4."),
        ("请按时还款", "qing3 an4 shi2 huan2 kuan3"),
        ("本期应还金额", "ben3 qi1 ying1 huan2 jin1 e2"),
        ("您还需还款吗？", "nin2 hai2 xu1 huan2 kuan3 ma5?"),
        ("绿色", "lv4 se4"),
        ("2026年12月1日", "er4 ling2 er4 liu4 nian2 shi2 er4 yue4 yi1 ri4"),
        ("人民币五角", "ren2 min2 bi4 wu3 jiao3"),
        ("共3期", "gong4 san1 qi1"),
        ("请拨打APP客服", "qing3 bo1 da3 APP ke4 fu2"),
    ],
)
def test_to_pinyin(text: str, expected: str) -> None:
    assert to_pinyin(text) == expected


def test_to_pinyin_output_is_ascii() -> None:
    amount, due = spoken_amount(123456, "CNY", "zh-CN"), spoken_date(date(2026, 12, 1), "zh-CN")
    text = f"您的应还金额为{amount}，请于{due}前还款！"
    assert to_pinyin(text).isascii()


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

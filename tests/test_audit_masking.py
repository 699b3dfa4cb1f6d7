"""Masking names and numbers (pure functions)."""

from __future__ import annotations

from audit.masking import Masker, Plain, mask_name, mask_phone


def test_phone_keeps_country_code_and_last_four() -> None:
    assert mask_phone("+8613912341234") == "+86 •••••••1234"
    assert mask_phone("+12025550101") == "+1 ••••••0101"
    assert mask_phone("+447911123456") == "+44 ••••••3456"
    assert mask_phone("+821012345678") == "+82 ••••••5678"


def test_phone_odd_input_never_shows_more_than_four_digits() -> None:
    assert mask_phone("12345") == "+1 ••••"  # parses as +1, the rest is too short to show anything
    assert mask_phone("") == ""
    assert mask_phone("+999 123456789") == "••••••••6789"  # no such country code


def test_names_keep_the_first_character_of_each_word() -> None:
    assert mask_name("张伟") == "张•"
    assert mask_name("欧阳娜娜") == "欧•••"
    assert mask_name("Wei Zhang") == "W•• Z••••"
    assert mask_name("  Ana   Souza ") == "A•• S••••"
    assert mask_name("김민준") == "김••"
    assert mask_name("J") == "J•"
    assert mask_name("") == ""


def test_masker_masks_text_and_nested_data() -> None:
    m = Masker("Wei Zhang", "+12025550101")
    assert m.text("Are you Wei Zhang? Call 12025550101.") == "Are you W•• Z••••? Call +1 ••••••0101."
    assert m.text("Is this Mr Zhang?") == "Is this Mr Z••••?"
    data = {"phone": "+12025550101", "reasons": [{"rule": "window", "detail": "Wei: ok"}], "n": 3}
    assert m.data(data) == {
        "phone": "+1 ••••••0101",
        "reasons": [{"rule": "window", "detail": "W••: ok"}],
        "n": 3,
    }
    cjk = Masker("张伟", "+8613912341234")
    assert cjk.text("请问您是张伟本人吗？") == "请问您是张•本人吗？"
    assert Plain().data(data) == data and Plain().text("Wei Zhang") == "Wei Zhang"

"""Masking names and numbers (pure functions)."""

from __future__ import annotations

import json
from dataclasses import replace

from audit.bundle import event_entry
from audit.masking import Masker, Plain, mask_name, mask_phone
from dialer.store.chain import StoredEvent, canonical


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


HOSTILE_NAME = 'Zoë "Ace" O\'Hara\\Jr'
PHONE = "+12025550188"


def _stored(data: dict[str, object], account_id: str) -> StoredEvent:
    return StoredEvent(
        7, "2025-03-01T14:00:00Z", "ivr.prompt", "ivr", 1, 1, account_id, canonical(data), "", ""
    )


def test_names_with_quotes_and_backslashes_are_masked_in_bundle_events() -> None:
    """Masking JSON text missed them: JSON writes `"` as `\\"` and `\\` as `\\\\`."""
    m = Masker(HOSTILE_NAME, PHONE)
    event = _stored(
        {"text": f"Are you {HOSTILE_NAME}? Call {PHONE[1:]}.", "note": {"who": [HOSTILE_NAME]}}, "A9"
    )
    entry = event_entry(event, m, masked=True)
    shown = json.dumps(entry, ensure_ascii=False) + entry["data"] + str(json.loads(entry["data"]))
    for secret in ['"Ace"', "Ace", "O'Hara\\Jr", "Hara", "2025550188"]:
        assert secret not in shown, secret
    assert entry["data_masked"] is True
    assert json.loads(entry["data"])["note"] == {"who": [mask_name(HOSTILE_NAME)]}


def test_an_account_id_that_is_the_phone_number_is_masked() -> None:
    m = Masker("Ana Souza", PHONE)
    for account_id in (PHONE, PHONE[1:], "2025550188", f"acct-{PHONE}"):
        entry = event_entry(_stored({"digit": "2"}, account_id), m, masked=True)
        assert "2025550188" not in str(entry["account_id"]) and "0188" in str(entry["account_id"])
        assert entry["data_masked"] is True  # the header changed: its hash could not be re-checked
    plain = event_entry(_stored({"digit": "2"}, "A1"), m, masked=True)
    assert plain["account_id"] == "A1" and plain["data_masked"] is False


def test_an_unmasked_entry_is_exactly_as_hashed_and_a_masked_one_has_no_hashes() -> None:
    event = replace(_stored({"number": PHONE}, "A1"), prev_hash="a" * 64, hash="b" * 64)
    assert event_entry(event, Plain(), masked=False)["hash"] == "b" * 64
    masked = event_entry(event, Masker("Ana", PHONE), masked=True)
    assert "hash" not in masked and "prev_hash" not in masked
    assert json.loads(masked["data"]) == {"number": "+1 ••••••0188"}

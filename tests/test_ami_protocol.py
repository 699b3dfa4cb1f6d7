"""AMI wire format: parsing and encoding, pure."""

from __future__ import annotations

import pytest

from dialer.ami_protocol import AmiParser, encode_action, parse_block

BANNER = b"Asterisk Call Manager/9.0.0\r\n"


def test_banner_then_messages_in_any_chunking() -> None:
    stream = (
        BANNER + b"Response: Success\r\nActionID: a1\r\nMessage: Authentication accepted\r\n\r\n"
        b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"
    )
    for size in (1, 2, 7, 64, len(stream)):
        parser = AmiParser()
        messages = []
        for start in range(0, len(stream), size):
            messages += parser.feed(stream[start : start + size])
        assert parser.banner == "Asterisk Call Manager/9.0.0"
        assert messages == [
            {"Response": "Success", "ActionID": "a1", "Message": "Authentication accepted"},
            {"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"},
        ]


def test_utf8_split_across_reads_survives() -> None:
    name = "张三李四王五".encode()
    stream = BANNER + b"Event: UserEvent\r\nCallerIDName: " + name + b"\r\n\r\n"
    cut = len(BANNER) + 30 + 1  # inside the first Chinese character
    parser = AmiParser()
    messages = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
    assert messages[0]["CallerIDName"] == "张三李四王五"


def test_repeated_keys_are_kept() -> None:
    message = parse_block("Response: Success\r\nOutput: line one\r\nOutput: line two")
    assert message["Output"] == "line one\nline two"


def test_value_with_colon_and_empty_value() -> None:
    message = parse_block("Event: UserEvent\r\nData: a: b\r\nDigits: ")
    assert message == {"Event": "UserEvent", "Data": "a: b", "Digits": ""}


def test_encode_action_repeats_list_values() -> None:
    data = encode_action("Originate", {"ActionID": "x", "Variable": ["A=1", "B=张"]})
    assert data == "Action: Originate\r\nActionID: x\r\nVariable: A=1\r\nVariable: B=张\r\n\r\n".encode()


@pytest.mark.parametrize("bad", ["a\r\nAction: Hangup", "line\nbreak"])
def test_encode_action_refuses_header_injection(bad: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        encode_action("Originate", {"CallerID": bad})

"""AMI wire format, pure: bytes in, messages out; actions in, bytes out.

Messages are blocks of `Key: Value` lines ended by a blank line (CRLF). Bytes
are decoded incrementally so a multi-byte UTF-8 character split across two TCP
reads (a Chinese name) survives, which panoramisk 1.4 gets wrong.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping, Sequence

Message = dict[str, str]
BANNER_PREFIX = "Asterisk Call Manager/"
_END = "\r\n\r\n"


class AmiParser:
    """Feed it bytes as they arrive; it returns the complete messages."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self.banner: str | None = None

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += self._decoder.decode(data)
        if self.banner is None:
            if "\r\n" not in self._buffer:
                return []
            self.banner, self._buffer = self._buffer.split("\r\n", 1)
        blocks = self._buffer.split(_END)
        self._buffer = blocks.pop()
        return [m for m in (parse_block(b) for b in blocks) if m]


def parse_block(block: str) -> Message:
    """One message. A repeated key (Command's `Output:`) keeps every value, joined by newlines."""
    message: Message = {}
    for line in block.split("\r\n"):
        key, sep, value = line.partition(":")
        if not sep:
            continue  # stray line: AMI never sends one inside a well-formed block
        key = key.strip()
        value = value[1:] if value.startswith(" ") else value
        message[key] = f"{message[key]}\n{value}" if key in message else value
    return message


def encode_action(action: str, headers: Mapping[str, str | Sequence[str]]) -> bytes:
    """Serialise an action. Values with CR or LF are refused: they would inject headers."""
    lines = [f"Action: {action}"]
    for key, value in headers.items():
        values = [value] if isinstance(value, str) else list(value)
        for item in values:
            if "\r" in item or "\n" in item or "\r" in key or "\n" in key:
                raise ValueError(f"AMI header {key!r} contains a line break")
            lines.append(f"{key}: {item}")
    return ("\r\n".join(lines) + _END).encode("utf-8")


def is_event(message: Message) -> bool:
    return "Event" in message


def is_response(message: Message) -> bool:
    return "Response" in message

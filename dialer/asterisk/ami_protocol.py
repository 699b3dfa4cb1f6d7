"""AMI wire format, pure: bytes in, messages out; actions in, bytes out.

Messages are blocks of `Key: Value` lines ended by a blank line (CRLF). The parser works on
bytes and decodes each message only once it is complete, so a multi-byte UTF-8 character split
across two TCP reads (a Chinese name) survives, which panoramisk 1.4 gets wrong.

It runs in linear time: each read is appended once and only the new bytes (plus the three
before them) are searched for the end of a message. Lines and messages are bounded: a peer
that sends more than `MAX_LINE` bytes without a line break, or more than `MAX_MESSAGE` bytes
without a blank line, raises `AmiProtocolError` and the connection must be dropped. Asterisk's
own messages are a few hundred bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Message = dict[str, str]
BANNER_PREFIX = "Asterisk Call Manager/"
MAX_LINE = 16 * 1024  # bytes in one line (the banner or one header)
MAX_MESSAGE = 64 * 1024  # bytes in one message, its lines together
_EOL = b"\r\n"
_END = b"\r\n\r\n"


class AmiProtocolError(ValueError):
    """The peer broke a bound of the wire format: the connection cannot be trusted any more."""


class AmiParser:
    """Feed it bytes as they arrive; it returns the complete messages."""

    def __init__(self, max_line: int = MAX_LINE, max_message: int = MAX_MESSAGE) -> None:
        self.max_line = max_line
        self.max_message = max_message
        self.banner: str | None = None
        self._buffer = bytearray()  # the message (or banner) not complete yet
        self._line_start = 0  # where its last, unfinished line starts in `_buffer`

    def feed(self, data: bytes) -> list[Message]:
        """The messages `data` completes. Raises AmiProtocolError when a bound is passed."""
        new_from = max(0, len(self._buffer) - 3)  # a terminator may straddle two reads
        self._buffer += data
        if self.banner is None:
            if not self._take_banner():
                return []
            new_from = 0  # what is left came after the banner's line break: all of it is new
        messages, consumed = self._take_messages(new_from)
        self._check_bounds(0 if consumed else new_from)  # after a message's end, all is new
        return messages

    def _take_banner(self) -> bool:
        end = self._buffer.find(_EOL)  # bounded: a banner longer than max_line is refused
        if end < 0:
            self._check_line(len(self._buffer), "banner")
            return False
        self._check_line(end, "banner")
        self.banner = self._buffer[:end].decode("utf-8", errors="replace")
        del self._buffer[: end + 2]
        return True

    def _take_messages(self, new_from: int) -> tuple[list[Message], bool]:
        """The messages ended in the new bytes, and whether any block was taken off the buffer."""
        messages: list[Message] = []
        start, search = 0, new_from
        while (end := self._buffer.find(_END, search)) >= 0:
            if end - start > self.max_message:
                raise AmiProtocolError(f"message of {end - start} bytes (limit {self.max_message})")
            block = self._buffer[start:end].decode("utf-8", errors="replace")
            if message := parse_block(block, self.max_line):
                messages.append(message)
            start = search = end + 4
        if start:
            del self._buffer[:start]  # once per read; bytearray drops a prefix cheaply
            self._line_start = 0
        return messages, start > 0

    def _check_bounds(self, new_from: int) -> None:
        """Bounds on the unfinished message, looking only at the bytes just read."""
        if len(self._buffer) > self.max_message:
            raise AmiProtocolError(
                f"more than {self.max_message} bytes without the blank line that ends a message"
            )
        last_eol = self._buffer.rfind(_EOL, max(0, new_from - 1))
        if last_eol >= 0:
            self._line_start = last_eol + 2
        self._check_line(len(self._buffer) - self._line_start, "line")

    def _check_line(self, length: int, what: str) -> None:
        if length > self.max_line:
            raise AmiProtocolError(f"{what} longer than {self.max_line} bytes")


def parse_block(block: str, max_line: int = MAX_LINE) -> Message:
    """One message. A repeated key (Command's `Output:`) keeps every value, joined by newlines."""
    message: Message = {}
    repeated: dict[str, list[str]] = {}
    for line in block.split("\r\n"):
        if len(line) > max_line:  # characters, each at least one byte: never a false alarm
            raise AmiProtocolError(f"line longer than {max_line} bytes")
        key, sep, value = line.partition(":")
        if not sep:
            continue  # stray line: AMI never sends one inside a well-formed block
        key = key.strip()
        value = value[1:] if value.startswith(" ") else value
        if key in message:
            repeated.setdefault(key, [message[key]]).append(value)
        message[key] = value
    for key, values in repeated.items():  # joined once: linear however many Output lines
        message[key] = "\n".join(values)
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
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def is_event(message: Message) -> bool:
    return "Event" in message


def is_response(message: Message) -> bool:
    return "Response" in message

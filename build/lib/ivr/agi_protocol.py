"""AGI wire format, pure: environment lines in, a dict out; reply lines in, `AgiReply` out.

What Asterisk 22 (res/res_agi.c) sends over a FastAGI socket:
- first the environment: `agi_<name>: <value>` lines ended by a blank line;
- then one reply per command: `200 result=<r>[ (<data>)][ key=value...]` (GOSUB adds free text:
  `200 result=0 Gosub complete`), or `510 ...`, `511 ...`,
  a multi-line `520-...` usage block ended by `520 End of proper usage.`, and for some commands
  a `100 result=0 Trying...` line before the `200`;
- `HANGUP` on a line of its own when the channel hangs up and `AGISIGHUP` is not `no`: it answers
  no command, so it is skipped (panoramisk 1.4 takes it for the current reply and shifts every
  later one by one).
Arguments are quoted the way res_agi's `parse_args` unquotes them: double quotes, backslash escapes.

Whatever connects to the FastAGI port may send anything, so every size is bounded (line, lines per
environment and per reply, environment bytes) and every parse is linear in the line's length: no
regular expression here can backtrack over a line (a 64 KiB reply once took 11.6 s to parse).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Bounds on what a peer may send. Asterisk's own lines are far shorter: a reply carries at most a
# 1 KiB variable value (res_agi's GET VARIABLE buffer), an environment about 25 short lines plus
# the AGI() arguments.
MAX_LINE_BYTES = 8 * 1024  # one environment or reply line, without its newline
MAX_ENV_LINES = 200
MAX_ENV_BYTES = 64 * 1024
MAX_REPLY_LINES = 200  # lines making up one reply: `100 Trying`, `HANGUP`, a `520-` usage block
MAX_COMMAND_BYTES = 2047  # res_agi reads a command into a 2048-byte buffer (AGI_BUF_LEN)
UNSOLICITED_HANGUP = "HANGUP"

_ENV_LINE = re.compile(r"agi_[a-z0-9_]+\Z")
_STATUS = re.compile(r"(?P<code>[0-9]{3})(?P<sep>[ -])(?P<rest>.*)\Z", re.DOTALL)
_RESULT = re.compile(r"result=(?P<result>\S*)(?P<tail>.*)\Z", re.DOTALL)
_WORD = re.compile(r"\S+")
_PAIR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=\S*")  # one `key=value` word (matched whole)


class AgiParseError(ValueError):
    """Asterisk (or whatever connected) sent something that is not AGI."""


class AgiLimitError(AgiParseError):
    """The peer sent more than a bound allows (lines, bytes): drop it, do not read on."""


@dataclass(frozen=True, slots=True)
class AgiReply:
    code: int
    result: str  # as sent: "49", "-1", "" (GET DATA timed out with no digits), "1" ...
    data: str = ""  # the parenthesised part: "timeout", "dtmf", "hangup", a variable's value ...
    endpos: int | None = None
    extra: dict[str, str] = field(default_factory=dict)  # any other key=value words
    message: str = ""  # text of a reply without result= (510/511/520, the 520 usage) or after it

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def result_int(self) -> int | None:
        try:
            return int(self.result)
        except ValueError:
            return None


# ---------------------------------------------------------------- environment


def parse_env_line(line: str) -> tuple[str, str]:
    """One `agi_name: value` line (without its newline). Anything else is refused."""
    key, sep, value = line.partition(":")
    if not sep or not _ENV_LINE.match(key):
        raise AgiParseError(f"not an AGI environment line: {line[:80]!r}")
    return key, value[1:] if value.startswith(" ") else value


def add_env_line(env: dict[str, str], line: str) -> None:
    """Add one `agi_*: value` line to `env`, refusing an environment that never ends."""
    if len(env) >= MAX_ENV_LINES:
        raise AgiLimitError(f"more than {MAX_ENV_LINES} environment lines")
    key, value = parse_env_line(line)
    env[key] = value


def parse_environment(block: str) -> dict[str, str]:
    """The whole environment block; a blank line (or the end of the text) ends it."""
    env: dict[str, str] = {}
    for line in block.replace("\r\n", "\n").split("\n"):
        if not line:
            break
        add_env_line(env, line)
    return env


def env_args(env: dict[str, str]) -> list[str]:
    """agi_arg_1 .. agi_arg_n, in order, up to the first one missing."""
    args: list[str] = []
    while f"agi_arg_{len(args) + 1}" in env:
        args.append(env[f"agi_arg_{len(args) + 1}"])
    return args


# ---------------------------------------------------------------- replies


def parse_reply(line: str) -> AgiReply:
    """One complete single-line reply (`200 result=...`, `510 ...`, `511 ...`, `100 ...`)."""
    match = _STATUS.match(line.rstrip("\r\n"))
    if match is None or match["sep"] != " ":
        raise AgiParseError(f"not an AGI reply: {line[:120]!r}")
    code, rest = int(match["code"]), match["rest"]
    result = _RESULT.match(rest)
    if result is None:
        if code == 200:
            raise AgiParseError(f"200 reply without result=: {line[:120]!r}")
        return AgiReply(code, "", message=rest.strip())
    return _with_tail(code, result["result"], result["tail"], line)


def _with_tail(code: int, result: str, tail: str, line: str) -> AgiReply:
    """What follows `result=<r>`: ` (data)` and/or ` key=value` words, or free text."""
    data, pairs, message = "", "", ""
    if (with_data := _split_data(tail)) is not None:
        data, pairs = with_data
    elif _only_pairs(tail):
        pairs = tail
    else:
        message = tail.strip()  # `100 result=0 Trying...`, `200 result=0 Gosub complete`
    extra = dict(word.split("=", 1) for word in pairs.split())
    endpos_text = extra.pop("endpos", None)
    endpos = _int_or_none(endpos_text, line)
    return AgiReply(code, result, data, endpos, extra, message)


def _split_data(tail: str) -> tuple[str, str] | None:
    """` (data) k=v k=v`: (data, the pairs' text), or None if the tail is not of that shape.

    The data ends at the last `)` after which only `key=value` words follow (GET VARIABLE's value
    may itself hold parentheses). Walks the words once from the right: linear, where the regular
    expression it replaces backtracked to every `)` and re-scanned the rest of the line each time.
    """
    words = [m.span() for m in _WORD.finditer(tail)]
    if not words or tail[words[0][0]] != "(":
        return None
    opened = words[0][0]
    for i in range(len(words) - 1, -1, -1):
        start, end = words[i]
        if tail[end - 1] == ")" and end - 1 > opened:
            return tail[opened + 1 : end - 1], tail[end:]
        if i == 0 or _PAIR.fullmatch(tail, start, end) is None:
            return None
    return None


def _only_pairs(tail: str) -> bool:
    """Nothing but ` key=value` words (or blanks)."""
    if not tail or tail.isspace():
        return True
    return tail[0].isspace() and all(_PAIR.fullmatch(word) for word in tail.split())


def _int_or_none(text: str | None, line: str) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise AgiParseError(f"endpos is not a number: {line[:120]!r}") from None


class ReplyAssembler:
    """Feed it reply lines as they arrive; it returns each final reply once complete.

    Skips unsolicited `HANGUP` lines (sets `hangup_seen`) and `100 ... Trying...` progress lines
    (the current reply's are in `progress`), and joins a `520-` usage block into one
    `AgiReply(code=520, message=<usage>)`. A reply of more than MAX_REPLY_LINES lines raises
    AgiLimitError, so a peer cannot grow a reply (or the progress list) without end.
    """

    def __init__(self) -> None:
        self.hangup_seen = False
        self.progress: list[AgiReply] = []
        self._usage: list[str] | None = None
        self._lines = 0  # lines of the reply being assembled

    def feed(self, line: str) -> AgiReply | None:
        if self._lines == 0:
            self.progress = []
        self._lines += 1
        if self._lines > MAX_REPLY_LINES:
            raise AgiLimitError(f"a reply of more than {MAX_REPLY_LINES} lines")
        reply = self._feed(line.rstrip("\r\n"))
        if reply is not None:
            self._lines = 0
        return reply

    def _feed(self, line: str) -> AgiReply | None:
        if self._usage is not None:
            return self._feed_usage(line)
        if line.strip() == UNSOLICITED_HANGUP:
            self.hangup_seen = True
            return None
        if line.startswith("520-"):
            self._usage = [line[4:]]
            return None
        reply = parse_reply(line)
        if reply.code == 100:
            self.progress.append(reply)
            return None
        return reply

    def _feed_usage(self, line: str) -> AgiReply | None:
        assert self._usage is not None
        if line.startswith("520 "):
            usage, self._usage = self._usage, None
            return AgiReply(520, "", message="\n".join([*usage, line[4:]]).strip())
        self._usage.append(line)
        return None


# ---------------------------------------------------------------- commands


def quote(arg: str) -> str:
    """One argument, double-quoted; `"` and `\\` escaped; CR/LF refused (they would end the command)."""
    if "\r" in arg or "\n" in arg:
        raise ValueError(f"AGI argument contains a line break: {arg[:80]!r}")
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_command(words: str, *args: str) -> str:
    """`words` (e.g. `STREAM FILE`) unquoted, then every argument quoted; no newline."""
    if "\r" in words or "\n" in words:
        raise ValueError(f"AGI command contains a line break: {words[:80]!r}")
    line = " ".join([words, *(quote(a) for a in args)])
    try:
        encoded = line.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. from text decoded with surrogateescape
        raise ValueError(f"AGI command is not valid Unicode text: {line[:80]!r}") from None
    if len(encoded) > MAX_COMMAND_BYTES:
        raise ValueError(f"AGI command longer than {MAX_COMMAND_BYTES} bytes: {line[:80]!r}...")
    return line


def digit_of(result: str) -> str | None:
    """STREAM FILE / WAIT FOR DIGIT / RECORD FILE (dtmf) result: ASCII code -> the key, 0 -> None."""
    code = int(result)
    if code == 0:
        return None
    if code < 0:
        raise ValueError(f"negative result {code} is not a key")
    return chr(code)

"""The AGI wire format, pure. Every reply line below was recorded from the real Asterisk 22.10.1
(the project's chroot) over FastAGI, by the sessions in tests/integration/test_agi.py and a probe script
around them; the command that produced it is in the comment."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.agi_protocol import (
    MAX_ENV_LINES,
    MAX_REPLY_LINES,
    AgiLimitError,
    AgiParseError,
    AgiReply,
    ReplyAssembler,
    build_command,
    digit_of,
    env_args,
    parse_env_line,
    parse_environment,
    parse_reply,
    quote,
)

# The environment block Asterisk sent for `AGI(agi://127.0.0.1:37593/live,k1)` on a Local channel.
ENVIRONMENT = (
    "agi_network: yes\n"
    "agi_network_script: live\n"
    "agi_request: agi://127.0.0.1:37593/live\n"
    "agi_channel: Local/12025550101@duecall-sim-00000012;1\n"
    "agi_language: en\n"
    "agi_type: Local\n"
    "agi_uniqueid: 1795856173.130\n"
    "agi_version: 22.10.1+dfsg+~cs6.17.60671434-1\n"
    "agi_callerid: unknown\n"
    "agi_calleridname: unknown\n"
    "agi_callingpres: 67\n"
    "agi_callingani2: 0\n"
    "agi_callington: 0\n"
    "agi_callingtns: 0\n"
    "agi_dnid: unknown\n"
    "agi_rdnis: unknown\n"
    "agi_context: duecall-agi-test\n"
    "agi_extension: s\n"
    "agi_priority: 3\n"
    "agi_enhanced: 0.0\n"
    "agi_accountcode: \n"
    "agi_threadid: 140174094022336\n"
    "agi_arg_1: k1\n"
    "\n"
)

# STREAM FILE demo-congrats "0123456789#*", the simulated borrower pressed 1 (ASCII 49)
BARGE_IN = "200 result=49 endpos=28160"
# STREAM FILE demo-congrats "", the 0160 borrower hung up 3 s in
HUNG_UP_PLAYING = "200 result=-1 endpos=24960"
# STREAM FILE vm-goodbye "", played to the end
PLAYED = "200 result=0 endpos=7040"
# STREAM FILE nosuchfile "" on a live channel: the same shape as a hangup
MISSING_FILE = "200 result=-1 endpos=0"
# GET DATA beep 1000 3, nothing pressed
GET_DATA_TIMEOUT = "200 result= (timeout)"
# GET DATA beep 3000 3, the borrower pressed 0, 0, 7 (max digits reached)
GET_DATA_DIGITS = "200 result=007"
# GET DATA demo-congrats 3000 3 while the borrower hung up; also GET DATA of a missing file
GET_DATA_FAILED = "200 result=-1"
# WAIT FOR DIGIT 300, nothing pressed
WAIT_NOTHING = "200 result=0"
# RECORD FILE <path> wav "#" 5000 0 s=2, ended by # after the borrower's "hello"
RECORD_DTMF = "200 result=35 (dtmf) endpos=4800"
# RECORD FILE <path> wav "#" 1500 0 s=1, the time limit
RECORD_TIMEOUT = "200 result=1 (timeout) endpos=0"
# RECORD FILE <path> wav "#" 20000 0 BEEP, the 0160 borrower hung up
RECORD_HANGUP = "200 result=-1 (hangup) endpos=320"
# RECORD FILE /nonexistent/dir/x wav "#" 1500 0
RECORD_WRITEFILE = "200 result=-1 (writefile)"
# GET VARIABLE FOO after SET VARIABLE FOO "a \"b\" (c) \\ d"
GET_VARIABLE = '200 result=1 (a "b" (c) \\ d)'
GET_VARIABLE_UNSET = "200 result=0"
# FOO BAR
UNKNOWN = "510 Invalid or unknown command"
# CHANNEL STATUS after the borrower hung up (Asterisk 22 wording)
DEAD = "511 Command Not Permitted on a dead channel or intercept routine"
# EXEC NoSuchApp ""
NO_APP = "200 result=-2"
# GOSUB duecall-agi-test-sub s 1
GOSUB = ["100 result=0 Trying...", "200 result=0 Gosub complete"]
# GOSUB nosuchctx s 1
GOSUB_MISSING = "200 result=-1 Gosub label not found"
# STREAM FILE (no arguments)
USAGE = [
    "520-Invalid command syntax.  Proper usage follows:",
    "Send the given file, allowing playback to be interrupted by the given digits, if any. Returns "
    "<literal>0</literal> if playback completes without a digit being pressed, or the ASCII numerical "
    "value of the digit if one was pressed, or <literal>-1</literal> on error or if the channel was "
    "disconnected. If musiconhold is playing before calling stream file it will be automatically stopped "
    "and will not be restarted after completion.",
    "It sets the following channel variables upon completion:",
    "<variable>PLAYBACKSTATUS</variable>: The status of the playback attempt as a text string.",
    "    <value>SUCCESS</value>",
    "    <value>FAILED</value>",
    "520 End of proper usage.",
]
# NOOP with AGISIGHUP=yes, after the 0160 borrower hung up: the unsolicited line comes first
SIGHUP_THEN_REPLY = ["HANGUP", "200 result=0"]


# ---------------------------------------------------------------- environment


def test_environment_block() -> None:
    env = parse_environment(ENVIRONMENT)
    assert env["agi_network_script"] == "live"
    assert env["agi_uniqueid"] == "1795856173.130"
    assert env["agi_channel"] == "Local/12025550101@duecall-sim-00000012;1"
    assert env["agi_accountcode"] == ""
    assert env_args(env) == ["k1"]


def test_environment_stops_at_the_blank_line() -> None:
    assert parse_environment("agi_arg_1: a\n\nagi_arg_2: b\n") == {"agi_arg_1": "a"}


def test_env_values_keep_colons_and_spaces() -> None:
    assert parse_env_line("agi_request: agi://127.0.0.1:4573/ivr?x=1") == (
        "agi_request",
        "agi://127.0.0.1:4573/ivr?x=1",
    )
    assert parse_env_line("agi_calleridname: Wang  Fang ") == ("agi_calleridname", "Wang  Fang ")


@pytest.mark.parametrize("line", ["GET / HTTP/1.1", "Host: example", "agi_arg_1 no colon", ""])
def test_non_agi_lines_are_refused(line: str) -> None:
    with pytest.raises(AgiParseError):
        parse_env_line(line)


def test_args_stop_at_the_first_gap() -> None:
    assert env_args({"agi_arg_1": "a", "agi_arg_2": "", "agi_arg_4": "d"}) == ["a", ""]
    assert env_args({}) == []


# ---------------------------------------------------------------- replies


def test_barge_in() -> None:
    reply = parse_reply(BARGE_IN)
    assert reply == AgiReply(200, "49", "", 28160, {}, "")
    assert digit_of(reply.result) == "1"


def test_played_to_the_end() -> None:
    reply = parse_reply(PLAYED)
    assert (reply.result, reply.endpos, digit_of(reply.result)) == ("0", 7040, None)


def test_minus_one_with_endpos() -> None:
    for line in (HUNG_UP_PLAYING, MISSING_FILE):
        reply = parse_reply(line)
        assert (reply.result, reply.result_int, reply.data) == ("-1", -1, "")
    assert parse_reply(HUNG_UP_PLAYING).endpos == 24960
    assert parse_reply(MISSING_FILE).endpos == 0


def test_get_data() -> None:
    assert parse_reply(GET_DATA_TIMEOUT) == AgiReply(200, "", "timeout")
    assert parse_reply(GET_DATA_DIGITS) == AgiReply(200, "007")
    failed = parse_reply(GET_DATA_FAILED)
    assert (failed.result, failed.endpos) == ("-1", None)


def test_wait_for_digit_nothing() -> None:
    assert digit_of(parse_reply(WAIT_NOTHING).result) is None


def test_record_file_replies() -> None:
    dtmf = parse_reply(RECORD_DTMF)
    assert (dtmf.data, digit_of(dtmf.result), dtmf.endpos) == ("dtmf", "#", 4800)
    assert (parse_reply(RECORD_TIMEOUT).data, parse_reply(RECORD_TIMEOUT).endpos) == ("timeout", 0)
    hangup = parse_reply(RECORD_HANGUP)
    assert (hangup.result, hangup.data, hangup.endpos) == ("-1", "hangup", 320)
    assert parse_reply(RECORD_WRITEFILE) == AgiReply(200, "-1", "writefile")


def test_get_variable_value_with_parentheses_and_quotes() -> None:
    assert parse_reply(GET_VARIABLE).data == 'a "b" (c) \\ d'
    assert parse_reply(GET_VARIABLE_UNSET) == AgiReply(200, "0")


def test_error_codes() -> None:
    assert parse_reply(UNKNOWN) == AgiReply(510, "", message="Invalid or unknown command")
    dead = parse_reply(DEAD)
    assert (dead.code, dead.ok) == (511, False)
    assert dead.message.startswith("Command Not Permitted on a dead channel")
    assert parse_reply(NO_APP).result_int == -2


def test_free_text_after_result() -> None:
    assert parse_reply(GOSUB_MISSING) == AgiReply(200, "-1", message="Gosub label not found")


def test_extra_pairs_are_kept() -> None:
    reply = parse_reply("200 result=1 (speech) endpos=0 results=1 score0=900")
    assert (reply.data, reply.endpos, reply.extra) == ("speech", 0, {"results": "1", "score0": "900"})


@pytest.mark.parametrize(
    "line", ["", "HELLO", "200", "200result=1", "200 ok", "20 result=1", "200 result=1 endpos=abc"]
)
def test_garbage_is_refused(line: str) -> None:
    with pytest.raises(AgiParseError):
        parse_reply(line)


# ---------------------------------------------------------------- the reply stream


def feed_all(lines: list[str]) -> tuple[ReplyAssembler, list[AgiReply]]:
    assembler = ReplyAssembler()
    replies = [r for r in (assembler.feed(line + "\n") for line in lines) if r is not None]
    return assembler, replies


def test_unsolicited_hangup_is_skipped() -> None:
    assembler, replies = feed_all(SIGHUP_THEN_REPLY)
    assert replies == [AgiReply(200, "0")]
    assert assembler.hangup_seen


def test_hangup_does_not_shift_later_replies() -> None:
    """panoramisk 1.4's bug: the HANGUP line became the reply, and every later reply moved by one."""
    _, replies = feed_all([GET_DATA_FAILED, "HANGUP", DEAD, "HANGUP", DEAD])
    assert [r.code for r in replies] == [200, 511, 511]


def test_trying_precedes_the_reply() -> None:
    assembler, replies = feed_all(GOSUB)
    assert replies == [AgiReply(200, "0", message="Gosub complete")]
    assert assembler.progress == [AgiReply(100, "0", message="Trying...")]


def test_usage_block_is_one_reply() -> None:
    _, replies = feed_all([*USAGE, NO_APP])
    assert len(replies) == 2
    usage = replies[0]
    assert usage.code == 520
    assert usage.message.startswith("Invalid command syntax.  Proper usage follows:\nSend the given file")
    assert usage.message.endswith("End of proper usage.")
    assert replies[1].result == "-2"


def test_crlf_line_ends_are_accepted() -> None:
    _, replies = feed_all([BARGE_IN + "\r"])
    assert replies[0].endpos == 28160


# ---------------------------------------------------------------- commands


def test_quote() -> None:
    assert quote("demo-congrats") == '"demo-congrats"'
    assert quote("") == '""'
    assert quote('a "b" (c) \\ d') == '"a \\"b\\" (c) \\\\ d"'


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "\n"])
def test_line_breaks_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        quote(bad)
    with pytest.raises(ValueError):
        build_command(f"NOOP{bad}")


def test_build_command() -> None:
    assert build_command("STREAM FILE", "demo-congrats", "") == 'STREAM FILE "demo-congrats" ""'
    assert build_command("HANGUP") == "HANGUP"
    with pytest.raises(ValueError):
        build_command("SET VARIABLE", "X", "y" * 3000)


def unquote(text: str) -> list[str]:
    """res_agi.c parse_args(), transcribed: how Asterisk splits a command line into words."""
    words: list[str] = []
    current: list[str] | None = None
    quoted = escaped = False
    for char in text:
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and current is None:
                current = []
                words.append("")
            continue
        if char in " \t" and not quoted and not escaped:
            if current is not None:
                words[-1] = "".join(current)
            current = None
            continue
        if char == "\\" and not escaped:
            escaped = True
            continue
        if current is None:
            current = []
            words.append("")
        current.append(char)
        escaped = False
    if current is not None:
        words[-1] = "".join(current)
    return words


TEXT = st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",))


@given(st.lists(st.text(alphabet=TEXT, max_size=20), max_size=4))
def test_quoting_round_trips_through_asterisks_parser(args: list[str]) -> None:
    assert unquote(build_command("EXEC", *args)) == ["EXEC", *args]


def test_text_that_is_not_unicode_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="not valid Unicode text"):
        build_command("EXEC", "Playback", "\ud800")


def test_digit_of() -> None:
    assert [digit_of(r) for r in ("0", "49", "35", "42", "65")] == [None, "1", "#", "*", "A"]
    with pytest.raises(ValueError):
        digit_of("-1")
    with pytest.raises(ValueError):
        digit_of("")


# ---------------------------------------------------------------- bounds and linear time (issue 9, item 6)

# The reply parser before issue 9: these regular expressions backtracked to every `)` and re-scanned
# the rest of the line each time (a 64 KiB line: 11.8 s). Kept here as the reference the linear
# parser must agree with.
_OLD_DATA_TAIL = re.compile(
    r"\s*\((?P<data>.*)\)(?P<pairs>(?:\s+[A-Za-z_][A-Za-z0-9_]*=\S*)*)\s*\Z", re.DOTALL
)
_OLD_PAIRS = re.compile(r"(?:\s+[A-Za-z_][A-Za-z0-9_]*=\S*)*\s*\Z")
_OLD_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\S*)")


def old_tail(tail: str) -> tuple[str, dict[str, str], str]:
    """(data, pairs, message) as the old regular expressions read a reply's tail."""
    if (with_data := _OLD_DATA_TAIL.match(tail)) is not None:
        return with_data["data"], dict(_OLD_PAIR.findall(with_data["pairs"])), ""
    if _OLD_PAIRS.match(tail):
        return "", dict(_OLD_PAIR.findall(tail)), ""
    return "", {}, tail.strip()


TAIL = st.text(alphabet=st.sampled_from(list("()= \tab_1\u00a0!")), max_size=30)


@given(TAIL)
def test_the_linear_parser_reads_every_tail_as_the_old_one_did(tail: str) -> None:
    line = "200 result=1" + (" " if tail[:1] not in ("", " ", "\t", "\u00a0") else "") + tail
    reply = parse_reply(line)
    rest = line[len("200 result=1") :]
    data, pairs, message = old_tail(rest)
    pairs.pop("endpos", None)
    assert (reply.data, reply.extra, reply.message) == (data, pairs, message)


def test_a_backtracking_line_parses_in_linear_time() -> None:
    """64 KiB (longer than the server reads) and 8 KiB: 11.8 s and 0.2 s with the old regexes."""
    for repeat in (13100, 1600):
        line = "200 result=0 (" + ") a=b" * repeat + " !"
        # This thread's CPU time: neither a busy machine nor another thread of the test process
        # (a speech or server thread left by an earlier test) may fail it.
        started = time.thread_time()
        reply = parse_reply(line)
        assert time.thread_time() - started < 0.1
        assert (reply.data, reply.message) == ("", line[len("200 result=0 ") :])


def test_a_reply_of_too_many_lines_is_refused() -> None:
    assembler = ReplyAssembler()
    for _ in range(MAX_REPLY_LINES - 1):
        assert assembler.feed("100 result=0 Trying...") is None
    assert assembler.feed("200 result=0") == AgiReply(200, "0")
    assert len(assembler.progress) == MAX_REPLY_LINES - 1  # the last reply's, not every reply's
    for endless in (["100 result=0 Trying..."], ["520-usage"] + ["more usage"] * 10):
        assembler = ReplyAssembler()
        with pytest.raises(AgiLimitError, match=f"a reply of more than {MAX_REPLY_LINES} lines"):
            for i in range(MAX_REPLY_LINES + 1):
                assembler.feed(endless[min(i, len(endless) - 1)])


def test_an_endless_environment_is_refused() -> None:
    block = "".join(f"agi_x{i}: v\n" for i in range(MAX_ENV_LINES + 1))
    with pytest.raises(AgiLimitError, match=f"more than {MAX_ENV_LINES} environment lines"):
        parse_environment(block)

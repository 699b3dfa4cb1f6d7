"""What an inbound text is taken to be (issue 12, item 5): an opt-out, an answer, or for a person.

Pure: no store, no gateway. The receiver writes what this returns.

- OPT_OUT: the whole message is opt-out keywords, with nothing around them but courtesy words
  (`COURTESY`), punctuation, symbols (emoji) and spaces: "Stop. Thank you", "STOP!!", "请退订",
  "退订，谢谢", "T退订". Case, width (ＳＴＯＰ) and punctuation (。！，) do not matter.
- ANSWER: the whole message, normalised the same way, is a reply the last template asked for
  (`"1": promise_to_pay`). An opt-out wins over an answer.
- FOR_PERSON: everything else, including "STOP this terrible bill", "don't stop", an empty
  text, and any text over `MAX_CLASSIFIED` characters (no keyword message is that long; the
  cap bounds the work for a hostile 1 MB text). A person reads it: revocation in other words
  still binds within the legal period (TCPA: 10 business days).

A miss keeps texting someone who said stop, a false alarm only stops texts: every keyword counts
in every locale, and a keyword with only courtesy around it opts out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dialer.core.vocab import Outcome, ReplyKind

MAX_CLASSIFIED = 200  # characters; a keyword with courtesy around it is far shorter

# The whole-message opt-out keywords: the TCPA's words, the carriers' (STOPALL), China's
# (退订, TD, T as in 回T退订), and Korean 수신거부. Matched as words (Chinese: as characters).
OPT_OUT_KEYWORDS: tuple[str, ...] = (
    "STOP",
    "STOPALL",
    "STOP ALL",
    "QUIT",
    "END",
    "REVOKE",
    "OPT OUT",
    "OPTOUT",
    "CANCEL",
    "UNSUBSCRIBE",
    "退订",
    "TD",
    "T",
    "取消",
    "取消订阅",
    "拒收",
    "수신거부",
)

# Words that add nothing to a keyword: thanks, please, greetings, "ok", "now", and the Chinese
# echo of the instruction (回复, 我要). Any other word sends the text to a person.
COURTESY: tuple[str, ...] = (
    "please",
    "pls",
    "plz",
    "thanks",
    "thank you",
    "thankyou",
    "thank u",
    "thx",
    "ty",
    "ok",
    "okay",
    "hi",
    "hello",
    "now",
    "请",
    "谢谢",
    "谢谢你",
    "谢谢您",
    "多谢",
    "感谢",
    "好的",
    "你好",
    "您好",
    "麻烦",
    "麻烦了",
    "我要",
    "回",
    "回复",
    "감사합니다",
    "고맙습니다",
    "부탁합니다",
    "부탁드립니다",
)

# Chinese is written without spaces ("请退订谢谢"): each Han character is a token of its own.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_TOKEN = re.compile(f"[{_HAN}]|[^{_HAN}]+")


@dataclass(frozen=True, slots=True)
class Classified:
    kind: ReplyKind
    outcome: Outcome | None = None  # OPT_OUT for an opt-out, the asked outcome for an answer
    keyword: str = ""  # the keyword as OPT_OUT_KEYWORDS writes it, or the template's reply key
    normalised: str = ""  # the words compared ('' for a text over MAX_CLASSIFIED)


def classify(text: str, asked: Mapping[str, Outcome] | None = None) -> Classified:
    """`asked`: the `replies` of the last template sent to this number (None: nothing asked)."""
    if len(text) > MAX_CLASSIFIED:
        return Classified(ReplyKind.FOR_PERSON)
    words = normalised_words(text)
    normal = " ".join(words)
    keyword = _opt_out_keyword(_tokens(words))
    if keyword:
        return Classified(ReplyKind.OPT_OUT, Outcome.OPT_OUT, keyword, normal)
    answer = _answer(normal, asked or {})
    if answer:
        return Classified(ReplyKind.ANSWER, answer[1], answer[0], normal)
    return Classified(ReplyKind.FOR_PERSON, normalised=normal)


def normalised_words(text: str) -> list[str]:
    """NFKC (ＳＴＯＰ, ！), case folded, every decimal digit as ASCII (１, ١), marks dropped; the
    runs of letters and digits between everything else (punctuation, spaces, emoji, controls)."""
    words: list[str] = []
    current: list[str] = []
    for char in unicodedata.normalize("NFKC", text).casefold():
        category = unicodedata.category(char)
        if category == "Nd":
            current.append(str(unicodedata.decimal(char)))
        elif category[0] in "LN":
            current.append(char)
        elif category[0] != "M":  # a mark left over after NFKC (S̷T̷O̷P̷) is dropped, not a break
            _flush(current, words)
    _flush(current, words)
    return words


def _flush(current: list[str], words: list[str]) -> None:
    if current:
        words.append("".join(current))
        current.clear()


def _tokens(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(token for word in words for token in _TOKEN.findall(word))


def _vocabulary() -> dict[tuple[str, ...], str]:
    """Token sequence -> the keyword it is ('' for a courtesy word)."""
    vocabulary = {_tokens(normalised_words(word)): "" for word in COURTESY}
    vocabulary.update({_tokens(normalised_words(word)): word for word in OPT_OUT_KEYWORDS})
    return vocabulary


_VOCABULARY = _vocabulary()
_LONGEST = max(len(entry) for entry in _VOCABULARY)


def _opt_out_keyword(tokens: tuple[str, ...]) -> str:
    """The first keyword when the tokens are wholly keywords and courtesy words with one keyword
    at least, else ''. found[i]: how tokens[:i] can be read (None: not at all)."""
    found: list[str | None] = [""] + [None] * len(tokens)
    for start in range(len(tokens)):
        so_far = found[start]
        if so_far is None:
            continue
        for end in range(start + 1, min(start + _LONGEST, len(tokens)) + 1):
            word = _VOCABULARY.get(tokens[start:end])
            if word is not None and not found[end]:
                found[end] = so_far or word
    return found[-1] or ""


def _answer(normal: str, asked: Mapping[str, Outcome]) -> tuple[str, Outcome] | None:
    """The asked reply the text is, unless two replies that read the same mean different things."""
    matches = [
        (key, outcome)
        for key, outcome in asked.items()
        if normal and len(key) <= MAX_CLASSIFIED and " ".join(normalised_words(key)) == normal
    ]
    if len({outcome for _, outcome in matches}) != 1:
        return None
    return matches[0]

"""How a text travels: GSM-7 when every character is in the GSM 03.38 alphabet, else UCS-2, and
how many segments that makes (what the carrier bills and the handset joins).

One GSM-7 message holds 160 septets (an extension character such as `{` or `€` takes two); a
concatenated one 153 per segment (the header takes 7). UCS-2 holds 70 UTF-16 units, 67 per
segment; a character outside the BMP (an emoji) takes two units.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import gsm0338  # type: ignore[import-untyped]  # noqa: F401  # registers the "gsm03.38" codec

SINGLE = {"gsm-7": 160, "ucs-2": 70}
PART = {"gsm-7": 153, "ucs-2": 67}


class Coding(enum.StrEnum):
    GSM7 = "gsm-7"
    UCS2 = "ucs-2"


@dataclass(frozen=True, slots=True)
class Encoded:
    coding: Coding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int

    def describe(self) -> str:
        what = "septets" if self.coding is Coding.GSM7 else "UCS-2 units"
        plural = "s" if self.segments != 1 else ""
        return f"{self.coding}, {self.units} {what}, {self.segments} segment{plural}"


def encoded(text: str) -> Encoded:
    try:
        sizes = [len(c.encode("gsm03.38")) for c in text]
        coding = Coding.GSM7
    except UnicodeEncodeError:
        sizes = [len(c.encode("utf-16-be")) // 2 for c in text]
        coding = Coding.UCS2
    units = sum(sizes)
    if units <= SINGLE[coding]:
        return Encoded(coding, units, 1)
    return Encoded(coding, units, _parts(sizes, PART[coding]))


def _parts(sizes: list[int], room: int) -> int:
    """Segments when no character (an escape pair, a surrogate pair) is split between two."""
    parts, used = 1, 0
    for size in sizes:
        if used + size > room:
            parts, used = parts + 1, 0
        used += size
    return parts

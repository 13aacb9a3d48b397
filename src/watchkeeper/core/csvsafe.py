"""CSV cells that a spreadsheet will not run as formulas (CSV injection).

Exports carry data that endpoints or clients typed (device names reported by an agent, contact
names), and a cell starting with = + - @ (or a tab/CR that hides one) is evaluated by Excel
and LibreOffice. We prefix such cells with an apostrophe, which spreadsheets show as text,
and our importers remove that prefix again so an export re-imports unchanged.
"""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in FORMULA_STARTS else text


def unescape_cell(text: str) -> str:
    """Undo safe_cell() on a value read back from one of our exports."""
    if text[:1] == "'" and text[1:2] in FORMULA_STARTS and text[1:2] != "":
        return text[1:]
    return text

"""Reading dates and amounts the way people write them in spreadsheets (docs/inventory.md,
"Import").

Each value's notation is detected on its own, and a column's unambiguous values decide how
its ambiguous ones are read; what stays ambiguous is reported as such, never guessed:

- dates: ISO (`2024-03-04`), a month name (`4 Mar 2024`, `Mar 4, 2024`, `04-Mar-24`, parsed
  by python-dateutil), dotted European (`04.03.2024`, always day first), and slash or dash
  forms (`03/04/2024`), whose order is known from the value itself when a part is above 12,
  else from the other slash values of the same column when those all agree, else it is
  ambiguous; Excel day serials;
- amounts: a currency symbol or ISO code before or after the number (`€`, `$`, `CHF`,
  `USD`), and the separators of the value (`1,234.56`, `1.234,56`, `1'234.50`, `1 234,56`,
  `542,50`) decide its notation, parsed and validated with Babel; a value such as `1,234`
  (thousands or decimal?) is read from the column's other values, else ambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from babel.numbers import NumberFormatError, get_group_symbol, list_currencies, parse_decimal
from dateutil import parser as dateparser

MONTH_RE = re.compile(r"[A-Za-z]{3,9}")
ISO_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
                    r"(?:Z|[+-]\d{2}:?\d{2})?)?")
DOTTED_RE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{2}|\d{4})\.?")
YEAR_FIRST_RE = re.compile(r"(\d{4})[./](\d{1,2})[./](\d{1,2})")
SLASH_RE = re.compile(r"(\d{1,2})([/-])(\d{1,2})\2(\d{2}|\d{4})")
SERIAL_RE = re.compile(r"\d{5}(\.\d+)?")


class Ambiguous(ValueError):
    """The value can be read in more than one way; `options` maps each reading's notation
    to its value."""

    def __init__(self, text: str, options: dict[str, object]):
        self.options = options
        readings = " or ".join(str(v) for v in options.values())
        super().__init__(f"{text!r} is ambiguous: {readings}")


# --- Dates ------------------------------------------------------------------------------

def _year(text: str) -> int:
    year = int(text)
    return year + 2000 if len(text) == 2 and year < 70 else (
        year + 1900 if len(text) == 2 else year)


def date_notation(text: str) -> str:
    """'iso', 'named', 'dotted', 'slash-dmy', 'slash-mdy', 'slash' (order unknown from the
    value), 'serial', or '' (not a date notation we know)."""
    text = text.strip()
    if ISO_RE.fullmatch(text) or YEAR_FIRST_RE.fullmatch(text):
        return "iso"
    if DOTTED_RE.fullmatch(text):
        return "dotted"
    m = SLASH_RE.fullmatch(text)
    if m:
        a, b = int(m[1]), int(m[3])
        if a > 12 and b <= 12:
            return "slash-dmy"
        if b > 12 and a <= 12:
            return "slash-mdy"
        return "slash"
    if SERIAL_RE.fullmatch(text):
        return "serial"
    if MONTH_RE.search(text):
        return "named"
    return ""


def column_date_order(values: list[str]) -> str:
    """The day/month order the slash values of a column show ('dmy', 'mdy'), or '' when they
    show none or both."""
    seen = {date_notation(v) for v in values if v and v.strip()}
    orders = {n[-3:] for n in seen if n in ("slash-dmy", "slash-mdy")}
    return orders.pop() if len(orders) == 1 else ""


def parse_date(text: str, order: str = "") -> date:
    """One date. `order` ('dmy'/'mdy') reads an ambiguous slash value (the column's
    evidence, or a person's decision); without it such a value raises Ambiguous."""
    text = text.strip()
    kind = date_notation(text)
    if kind == "iso":
        m = ISO_RE.fullmatch(text) or YEAR_FIRST_RE.fullmatch(text)
        return _date(int(m[1]), int(m[2]), int(m[3]), text)
    if kind == "dotted":
        m = DOTTED_RE.fullmatch(text)
        return _date(_year(m[3]), int(m[2]), int(m[1]), text)
    if kind.startswith("slash"):
        m = SLASH_RE.fullmatch(text)
        a, b, year = int(m[1]), int(m[3]), _year(m[4])
        if kind == "slash-dmy" or (kind == "slash" and (order == "dmy" or a == b)):
            return _date(year, b, a, text)
        if kind == "slash-mdy" or (kind == "slash" and order == "mdy"):
            return _date(year, a, b, text)
        raise Ambiguous(text, {"dmy": _date(year, b, a, text), "mdy": _date(year, a, b, text)})
    if kind == "serial":
        serial = float(text)
        if 20000 <= serial <= 80000:  # 1954 .. 2119: an Excel day count
            return date(1899, 12, 30) + timedelta(days=int(serial))
        raise ValueError(f"{text!r} is not a date")
    if kind == "named":
        try:
            parsed = dateparser.parse(text, default=None, fuzzy=False)
        except (ValueError, OverflowError, TypeError):
            parsed = None
        # A month name fixes the order; a value without a full day, month and year is not
        # a date (dateutil would fill the gaps from today).
        if parsed is not None and re.search(r"\d{4}|\d{1,2}\D+\d{2}$", text) and \
                len(re.findall(r"\d+", text)) >= 2:
            return parsed.date()
    raise ValueError(f"{text!r} is not a date")


def _date(year: int, month: int, day: int, text: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"{text!r} is not a date") from None


# --- Amounts ----------------------------------------------------------------------------

# Symbols read as one currency. A bare "$" is the US dollar (as Babel's en_US has it);
# other dollars carry their prefix (CA$, A$, ...) or an ISO code.
SYMBOLS = {
    "$": "USD", "us$": "USD", "ca$": "CAD", "c$": "CAD", "a$": "AUD", "au$": "AUD",
    "nz$": "NZD", "hk$": "HKD", "s$": "SGD", "€": "EUR", "£": "GBP", "¥": "JPY",
    "₹": "INR", "r$": "BRL", "zł": "PLN", "kč": "CZK", "fr.": "CHF", "sfr.": "CHF",
    "₩": "KRW", "₽": "RUB", "₺": "TRY", "₪": "ILS", "ft": "HUF", "r": "ZAR",
}
ISO_CODES = frozenset(list_currencies())
_SPACES = "\u00a0\u202f\u2009 "
_CURRENCY_RE = re.compile(r"^\s*(?P<pre>\D*?)\s*(?P<num>[-+]?\d(?:[\d.,'’\s]*\d)?)"
                          r"\s*(?P<post>\D*?)\s*$")
# Babel locale of each separator notation: (thousands, decimal).
LOCALES = {("", "."): "en_US", (",", "."): "en_US", (".", ","): "de_DE", ("", ","): "de_DE",
           ("’", "."): "de_CH", ("\u202f", ","): "fr_FR", ("\u202f", "."): "en_US"}


@dataclass(frozen=True)
class Amount:
    value: Decimal
    currency: str  # ISO 4217, or "" when the cell names none


def currency_of(token: str) -> str:
    token = token.strip()
    if not token:
        return ""
    if token.upper() in ISO_CODES and token.isalpha():
        return token.upper()
    code = SYMBOLS.get(token.lower())
    if code:
        return code
    raise ValueError(f"{token!r} is not a currency")


def amount_notation(number: str) -> tuple[str, str] | None:
    """(thousands separator, decimal separator) the number shows, None if it could be
    either ('1,234', '1.234'), or ('', '') for plain digits."""
    n = number.replace("'", "’")
    for space in _SPACES:
        n = n.replace(space, "\u202f")
    marks = [ch for ch in n if ch in ",.’\u202f"]
    if not marks:
        return ("", "")
    last = marks[-1]
    kinds = set(marks)
    if len(kinds) > 1:  # the last separator is the decimal one
        return ("".join(k for k in dict.fromkeys(marks) if k != last)[:1], last)
    if last in "’\u202f":
        return (last, "")
    tail = n.rsplit(last, 1)[1]
    if len(marks) > 1:  # repeated: thousands ('1,234,567', '1.234.567')
        return (last, "")
    if len(tail) != 3:  # '542,50', '12.5': a decimal separator
        return ("", last)
    return None  # '1,234' / '1.234': thousands or three decimals


def parse_amount(text: str, decimal_mark: str = "") -> Amount:
    """One amount with its currency. `decimal_mark` (',' or '.') reads a number that could
    be either (the column's evidence, or a person's decision); without it such a value
    raises Ambiguous."""
    m = _CURRENCY_RE.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not an amount")
    pre, post = m["pre"], m["post"]
    if pre and post:
        raise ValueError(f"{text!r} names a currency twice")
    currency = currency_of(pre or post)
    number = m["num"]
    notation = amount_notation(number)
    if notation is None:
        mark = number.replace("'", "").strip()[-4]
        if decimal_mark in (",", "."):
            notation = ("", mark) if decimal_mark == mark else (mark, "")
        else:
            as_thousands = _babel(number, (mark, ""), text)
            as_decimal = _babel(number, ("", mark), text)
            raise Ambiguous(text, {"thousands": Amount(as_thousands, currency),
                                   "decimal": Amount(as_decimal, currency)})
    return Amount(_babel(number, notation, text), currency)


def _babel(number: str, notation: tuple[str, str], text: str) -> Decimal:
    group, decimal_mark = notation
    n = number.replace("'", "’")
    for space in _SPACES:
        n = n.replace(space, "\u202f")
    locale = LOCALES.get((group, decimal_mark or ("," if group == "." else ".")))
    if locale is None:
        locale = "de_DE" if decimal_mark == "," or group == "." else "en_US"
    if group == "\u202f" and decimal_mark == ",":
        locale = "fr_FR"
    # The grouping must be right ('1,23,4' is refused, not read as 1234). Checked here:
    # Babel's strict mode refuses some valid numbers ("1'000'000.00" in de_CH).
    if group:
        body, _sep, _fraction = n.partition(decimal_mark) if decimal_mark else (n, "", "")
        if not re.fullmatch(r"[-+]?\d{1,3}(" + re.escape(group) + r"\d{3})*", body):
            raise ValueError(f"{text!r} is not an amount")
    # Babel's own symbols of that locale ("'" or "’" for de_CH, depending on CLDR).
    n = n.replace("’", get_group_symbol(locale)) if group == "’" else n
    n = n.replace("\u202f", get_group_symbol(locale)) if group == "\u202f" else n
    try:
        return parse_decimal(n, locale=locale)
    except NumberFormatError:
        raise ValueError(f"{text!r} is not an amount") from None


def column_decimal_mark(values: list[str]) -> str:
    """The decimal separator the unambiguous amounts of a column show (',' or '.'), or ''
    when they show none or both."""
    marks = set()
    for text in values:
        m = _CURRENCY_RE.match(text.strip()) if text else None
        if not m:
            continue
        notation = amount_notation(m["num"])
        if notation is None:
            continue
        group, decimal_mark = notation
        if decimal_mark in (",", "."):
            marks.add(decimal_mark)
        elif group in (",", "."):
            marks.add("." if group == "," else ",")
    return marks.pop() if len(marks) == 1 else ""

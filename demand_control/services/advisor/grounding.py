"""Grounding: a text the advisor wrote may only state numbers, dates and identifiers that appear in the case's
facts. Anything else (a rounded-up quantity, an invented date, a PO number it never saw) rejects the text,
and the deterministic template is used instead. Pure functions, no model and no warehouse."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_MONTH = r"(?P<{g}>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_ISO_DATE = re.compile(r"\b(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?")
_DAY_MONTH = re.compile(r"\b(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH.format(g="m") + r"\b\.?(?:,?\s+(?P<y>\d{4}))?", re.I)
_MONTH_DAY = re.compile(r"\b" + _MONTH.format(g="m") + r"\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(?P<y>\d{4}))?", re.I)
# An identifier: a word starting with a letter and holding a digit, with '-', '_', '/' or '@' inside (SKU-0012,
# PO-7/2, S1@DC1). A word starting with a digit is a figure with its unit ("10/wk", "3σ").
_IDENTIFIER = re.compile(r"(?<![\w/@-])[A-Za-z][\w/@-]*?\d(?:[\w/@-]*[A-Za-z0-9])?")
_NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?%?|(?<![\w.])-?\d+(?:\.\d+)?%?")


@dataclass(frozen=True)
class Grounds:
    """What a grounded text may state: the numbers, (month, day, year) dates and identifiers in the facts."""

    numbers: frozenset[float] = field(default_factory=frozenset)
    dates: frozenset[tuple[int, int, int]] = field(default_factory=frozenset)
    identifiers: frozenset[str] = field(default_factory=frozenset)


def _month(name: str) -> int:
    return _MONTHS[name[:3].lower()]


def _dates_in(text: str) -> tuple[list[tuple[int, int, int | None]], str]:
    """The dates written in `text` as (month, day, year or None), and the text with them blanked out."""
    found: list[tuple[int, int, int | None]] = []

    def iso(match: re.Match[str]) -> str:
        found.append((int(match["m"]), int(match["d"]), int(match["y"])))
        return " "

    def named(match: re.Match[str]) -> str:
        found.append((_month(match["m"]), int(match["d"]), int(match["y"]) if match["y"] else None))
        return " "

    text = _ISO_DATE.sub(iso, text)
    text = _DAY_MONTH.sub(named, text)
    text = _MONTH_DAY.sub(named, text)
    return found, text


def _identifiers_in(text: str) -> tuple[list[str], str]:
    found = _IDENTIFIER.findall(text)
    return found, _IDENTIFIER.sub(" ", text)


def _numbers_in(text: str) -> list[tuple[str, float, int, bool]]:
    """(as written, value, decimals written, is a percentage) for every number left in `text`."""
    out = []
    for match in _NUMBER.finditer(text):
        written = match.group(0)
        plain = written.rstrip("%").replace(",", "")
        decimals = len(plain.split(".")[1]) if "." in plain else 0
        out.append((written, float(plain), decimals, written.endswith("%")))
    return out


def _walk(value: Any) -> Iterable[Any]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _walk(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _walk(item)
    else:
        yield value


def grounds_of(facts: Any) -> Grounds:
    """Every number, date and identifier in `facts` (nested dicts and lists of plain values; numbers and dates
    inside strings count too, so a template sentence's own figures are grounds)."""
    numbers: set[float] = set()
    dates: set[tuple[int, int, int]] = set()
    identifiers: set[str] = set()
    for value in _walk(facts):
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, (int, float, Decimal)):
            if not math.isnan(float(value)):
                numbers.add(float(value))
        elif isinstance(value, (date, datetime)):
            dates.add((value.month, value.day, value.year))
        elif isinstance(value, str):
            found, rest = _dates_in(value)
            dates.update((m, d, y if y is not None else 0) for m, d, y in found)
            ids, rest = _identifiers_in(rest)
            identifiers.update(i.lower() for i in ids)
            numbers.update(v for _, v, _, _ in _numbers_in(rest))
    # A date written without its year ("25 Mar" in a sentence) takes the year of the same day elsewhere in the
    # facts; only a day the facts never give a year for matches any year.
    dated = {(m, d) for m, d, y in dates if y}
    dates = {(m, d, y) for m, d, y in dates if y or (m, d) not in dated}
    return Grounds(frozenset(numbers), frozenset(dates), frozenset(identifiers))


def _number_grounded(value: float, decimals: int, percent: bool, numbers: frozenset[float]) -> bool:
    # A figure may be written rounded to the decimals shown ("1,235" for 1234.6); a percentage may state a
    # share (25% for 0.25) or a figure that is already a percentage.
    tolerance = 0.5 * 10 ** -decimals + 1e-9
    if any(abs(value - fact) <= tolerance for fact in numbers):
        return True
    return percent and any(abs(value - fact * 100) <= tolerance for fact in numbers)


def _date_grounded(when: tuple[int, int, int | None], dates: frozenset[tuple[int, int, int]]) -> bool:
    month, day, year = when
    return any(m == month and d == day and (year is None or y in (0, year)) for m, d, y in dates)


def grounding_problems(text: str, grounds: Grounds) -> list[str]:
    """Why `text` is not grounded in the facts: one line per number, date or identifier it states that the
    facts do not hold. Empty: every figure in it is the case's."""
    problems: list[str] = []
    found_dates, rest = _dates_in(text)
    for month, day, year in found_dates:
        if not _date_grounded((month, day, year), grounds.dates):
            shown = f"{day} {list(_MONTHS)[month - 1].title()}" + (f" {year}" if year else "")
            problems.append(f"date {shown} is not in the case's facts")
    ids, rest = _identifiers_in(rest)
    for identifier in ids:
        if identifier.lower() not in grounds.identifiers:
            problems.append(f"identifier {identifier} is not in the case's facts")
    for written, value, decimals, percent in _numbers_in(rest):
        if not _number_grounded(value, decimals, percent, grounds.numbers):
            problems.append(f"number {written} is not in the case's facts")
    return problems

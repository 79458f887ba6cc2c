"""Where the quotes of a CSV file open and close, to refuse a quote that swallows rows.

The Arrow CSV reader takes a quote that never closes as one value running to the end of
the file: a stray ``"`` on row 5 of 10,000 imports 5 rows and no error. A stray quote that
some later quote closes swallows the rows between into one value just as silently, and
then text follows that closing quote (``she said "hi``). Both are broken CSV; this module
finds them before anything is read, naming the line where the quote opened.

The rules are the reader's (RFC 4180): a quote opens a quoted value only at the start of a
field, ``""`` inside one is a quote, a quote in the middle of an unquoted field is text.
Quoted values may hold delimiters and line breaks. This module only reads text; it must
never decide types or touch the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

_QUOTE = '"'
#: The rest of a quoted value up to its closing quote: quotes inside come in pairs.
_QUOTED_REST = re.compile(r'[^"]*(?:""[^"]*)*"(?!")')
_LINE_END = {"", "\r", "\n", "\r\n"}


@dataclass(frozen=True)
class BrokenQuote:
    """A quoted value that is not valid CSV: ``opened_on`` is its first line."""

    opened_on: int
    closed_on: int | None  # None: it never closes
    after_quote: str = ""  # the text that follows the closing quote

    def message(self, path) -> str:
        if self.closed_on is None:
            return (
                f"{path} line {self.opened_on}: a quote opens a value here and never closes, "
                "so the rest of the file would be one value; close it, or write a quote that "
                'belongs to the text as "" inside a quoted value'
            )
        where = "" if self.closed_on == self.opened_on else f" on line {self.closed_on}"
        return (
            f"{path} line {self.opened_on}: the quoted value opened here closes{where} with "
            f"text after the quote ({self.after_quote[:40]!r}); a stray quote? Quote the whole "
            'value and write each quote inside it as ""'
        )


@lru_cache(maxsize=8)
def _whole_line(delimiter: str) -> re.Pattern:
    """A line of complete fields: quoted ones closed, nothing after a closing quote."""
    d = re.escape(delimiter)
    field = rf'(?:"[^"]*(?:""[^"]*)*"|[^"{d}\r\n][^{d}\r\n]*|)'
    return re.compile(rf"{field}(?:{d}{field})*(?:\r\n|\n|\r)?")


def find_broken_quote(lines: Iterable[str], delimiter: str) -> BrokenQuote | None:
    """The first quoted value that never closes or has text after its closing quote.

    ``lines`` are the file's lines with their line ends (``open(..., newline="")``).
    Lines without a quote, and lines of complete fields, take one test each.
    """
    whole_line = _whole_line(delimiter)
    opened_on = 0  # the line of the open quoted value; 0: none is open
    number = 0
    for number, line in enumerate(lines, start=1):
        if _QUOTE not in line or (not opened_on and whole_line.fullmatch(line)):
            continue
        position = 0
        if opened_on:
            position = _close(line, 0)
            if position < 0:
                continue
            broken = _after_close(line, position, delimiter, opened_on, number)
            if broken:
                return broken
            opened_on = 0
            position += 1
        while position <= len(line):
            if line.startswith(_QUOTE, position):
                closed = _close(line, position + 1)
                if closed < 0:
                    opened_on = number
                    break
                broken = _after_close(line, closed, delimiter, number, number)
                if broken:
                    return broken
                position = closed + 1
                continue
            next_delimiter = line.find(delimiter, position)
            if next_delimiter < 0:
                break
            position = next_delimiter + 1
    if opened_on:
        return BrokenQuote(opened_on, None)
    return None


def _close(line: str, start: int) -> int:
    """The position just after the closing quote of a value open at ``start``, or -1."""
    found = _QUOTED_REST.match(line, start)
    return found.end() if found else -1


def _after_close(
    line: str, position: int, delimiter: str, opened_on: int, number: int
) -> BrokenQuote | None:
    """None when the closing quote at ``position`` ends its field, else what is wrong."""
    rest = line[position:]
    if rest.startswith(delimiter) or rest in _LINE_END:
        return None
    return BrokenQuote(opened_on, number, rest.rstrip("\r\n"))

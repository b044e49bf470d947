"""Where a key is written in a TOML text: the line a config mistake points at.

``tomllib`` gives values without positions, so ``key_line`` reads the text
again, just far enough to know each table header and each ``key = value``.
"""

from __future__ import annotations

import re
import tomllib

Loc = tuple[str | int, ...]
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class Scanner:
    """The statements of a TOML text that tomllib has accepted, with their lines.

    No position comes out of tomllib, so the text is read again here, just
    enough to know each table header and each ``key = value``: strings,
    comments and brackets are skipped by the grammar's own rules. Anything
    unexpected stops the scan (a line is then not told, never a wrong one).
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.line = 1
        # Location → (first line, last line) of the statement that sets it.
        self.keys: dict[Loc, tuple[int, int]] = {}
        # Location → line of its [table] or [[table]] header.
        self.tables: dict[Loc, int] = {}
        # Array-of-tables location → how many of its tables are open so far.
        self._counts: dict[Loc, int] = {}
        # The table the next keys belong to.
        self.table: Loc = ()

    def _peek(self, n: int = 1) -> str:
        return self.text[self.i : self.i + n]

    def _blank(self) -> None:
        """Spaces and tabs on this line."""
        while self._peek() in (" ", "\t"):
            self.i += 1

    def _comment(self) -> None:
        while self.i < len(self.text) and self.text[self.i] != "\n":
            self.i += 1

    def _string(self, *, decode: bool = True) -> str:
        """Past a basic or literal string (one line); its text when ``decode``."""
        quote = self.text[self.i]
        end = self.i + 1
        while self.text[end] != quote:
            if self.text[end] == "\n":
                raise ValueError("line break in a key")
            end += 2 if quote == '"' and self.text[end] == "\\" else 1
        raw = self.text[self.i : end + 1]
        self.i = end + 1
        if not decode:
            return raw
        value = tomllib.loads(f"k = {raw}")["k"]
        assert isinstance(value, str)
        return value

    def _key(self) -> list[str]:
        """A dotted key: its parts, quoted ones unquoted."""
        parts: list[str] = []
        while True:
            self._blank()
            if self._peek() in ('"', "'"):
                parts.append(self._string())
            else:
                match = _BARE_KEY.match(self.text, self.i)
                if match is None:
                    raise ValueError("not a key")
                parts.append(match[0])
                self.i = match.end()
            self._blank()
            if self._peek() != ".":
                return parts
            self.i += 1

    def _multiline(self, quote: str) -> None:
        """Past the closing delimiter of a multi-line string (the opening one is read)."""
        while not self.text.startswith(quote * 3, self.i):
            char = self.text[self.i]
            # In a basic string a backslash takes the next character (a line break too).
            step = 2 if quote == '"' and char == "\\" else 1
            self.line += self.text.count("\n", self.i, self.i + step)
            self.i += step
        self.i += 3
        # Up to two quotes of the content may touch the closing delimiter.
        for _ in range(2):
            if self._peek() == quote:
                self.i += 1

    def _value(self) -> None:
        """Past a value, up to the line break (or end) after it: multi-line arrays,
        inline tables and strings included."""
        depth = 0
        while self.i < len(self.text):
            char = self.text[self.i]
            if char == "\n":
                if depth == 0:
                    return
                self.line += 1
                self.i += 1
            elif char == "#":
                self._comment()
            elif char in "\"'":
                if self._peek(3) == char * 3:
                    self.i += 3
                    self._multiline(char)
                else:
                    self._string(decode=False)
            elif char in "[{":
                depth += 1
                self.i += 1
            elif char in "]}":
                depth -= 1
                self.i += 1
            else:
                self.i += 1

    def _header(self) -> None:
        double = self._peek(2) == "[["
        self.i += 2 if double else 1
        *parents, last = self._key()
        if self._peek(2 if double else 1) != ("]]" if double else "]"):
            raise ValueError("not a table header")
        self.i += 2 if double else 1
        where: Loc = ()
        for part in parents:
            where = (*where, part)
            # A dotted header inside an array of tables is in its latest table.
            if where in self._counts:
                where = (*where, self._counts[where] - 1)
        where = (*where, last)
        if double:
            count = self._counts.get(where, 0)
            self._counts[where] = count + 1
            where = (*where, count)
        self.tables[where] = self.line
        self.table = where

    def scan(self) -> Scanner:
        while self.i < len(self.text):
            char = self.text[self.i]
            if char == "\n":
                self.line += 1
                self.i += 1
            elif char in " \t\r":
                self.i += 1
            elif char == "#":
                self._comment()
            elif char == "[":
                self._header()
                self._value()
            else:
                first = self.line
                parts = self._key()
                if self._peek() != "=":
                    raise ValueError("not a key = value")
                self.i += 1
                self._value()
                self.keys[(*self.table, *parts)] = (first, self.line)
        return self


def key_line(text: str, loc: Loc, *, missing: bool = False) -> int | None:
    """The line (from 1) where ``loc`` is written in ``text``; None when it cannot be told.

    A location inside a value (an item of a list, a key of an inline table)
    is told by its key's line when that value is on one line, or is a list;
    a ``missing`` key by its table's header.
    """
    try:
        found = Scanner(text).scan()
    except (ValueError, IndexError, AssertionError, tomllib.TOMLDecodeError):
        return None
    if loc in found.tables:
        return found.tables[loc]
    for cut in range(len(loc), 0, -1):
        span = found.keys.get(loc[:cut])
        if span is None:
            continue
        rest = loc[cut:]
        first, last = span
        if rest and first != last and not all(isinstance(part, int) for part in rest):
            return None
        # Insurance against a scan gone wrong: the line must show the key.
        key = next(part for part in reversed(loc[:cut]) if isinstance(part, str))
        return first if key in text.split("\n")[first - 1] else None
    if missing and loc[:-1] in found.tables:
        return found.tables[loc[:-1]]
    return None

"""The line a config mistake names: right for every layout TOML allows, or not told at all."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from healthmon.toml_lines import Loc, key_line

# Text that looks like a key, a table or a comment's end, where none of them is.
DECOYS = ["port = 1", "[monitor]", "[[services]]", "# x", "] }", 'a = "b"', "'''", '\\"']
KEYS = st.sampled_from(["port", "url", "name", "interval_ms", "a-b", "x_1"])
QUOTED_KEYS = st.sampled_from(["a b", "é", "x.y", "#"])


def basic(text: str) -> str:
    # As a person writes it: é as é (a key written with escapes is not told a line).
    return json.dumps(text, ensure_ascii=False)


@st.composite
def values(draw: st.DrawFn) -> list[str]:
    """A value's lines as written: one, or several for multi-line strings and lists."""
    decoy = draw(st.sampled_from(DECOYS))
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return [str(draw(st.integers(-5, 70000)))]
    if kind == 1:
        return [basic(decoy + " # still a string")]
    if kind == 2:
        return ["'" + decoy.replace("'", "") + "'"]
    if kind == 3:
        # A multi-line basic string whose lines look like keys and tables.
        return ['"""', decoy, "port = 2", "[web]", '"""']
    if kind == 4:
        return ["'''", decoy.replace("'''", ""), "[[services]]", "'''"]
    if kind == 5:
        # A list spread over lines, a comment that closes nothing among them.
        return ["[", f"  {basic(decoy)},  # ] {{", "  2,", "]"]
    return [f'{{ a = {basic(decoy)}, "b c" = [1, 2] }}']


@dataclass
class Document:
    """A TOML text, and where each key and table in it is written."""

    lines: list[str] = field(default_factory=list)
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    tables: dict[Loc, int] = field(default_factory=dict)

    def add(self, text: str) -> int:
        self.lines.append(text)
        return len(self.lines)


@st.composite
def documents(draw: st.DrawFn) -> Document:
    doc = Document()
    tables: list[Loc] = [()]
    # The keys each table holds already: TOML takes a key once.
    used: dict[Loc, set[str]] = {}
    services = 0
    for _ in range(draw(st.integers(1, 5))):
        if len(tables) > 1 or draw(st.booleans()):
            header = draw(st.sampled_from(["[web]", "[monitor]", "[[services]]", "[ history ]"]))
            if header == "[[services]]":
                table: Loc = ("services", services)
                services += 1
            else:
                table = (header.strip("[] "),)
            if table in tables:
                continue
            tables.append(table)
            doc.tables[table] = doc.add(header + draw(st.sampled_from(["", "  # [web]"])))
        table = tables[-1]
        for _ in range(draw(st.integers(0, 4))):
            for _ in range(draw(st.integers(0, 2))):
                doc.add(draw(st.sampled_from(["", "# port = 9", "   ", "# [[services]]"])))
            key = draw(KEYS | QUOTED_KEYS)
            if key in used.setdefault(table, set()):
                continue
            used[table].add(key)
            written = (
                key if key in ("port", "url", "name", "interval_ms", "a-b", "x_1") else basic(key)
            )
            parts: tuple[str, ...] = (key,)
            if draw(st.booleans()) and written == key:
                # A dotted key: the value lives one table down.
                written, parts = f"{key} . inner", (key, "inner")
            lines = draw(values())
            first = doc.add(f"{written} = {lines[0]}")
            for line in lines[1:]:
                doc.add(line)
            doc.keys[(*table, *parts)] = (first, len(doc.lines))
    return doc


@settings(max_examples=300, deadline=None)
@given(doc=documents())
def test_every_key_and_table_is_found_on_its_own_line(doc: Document) -> None:
    """Whatever the layout (comments, look-alike strings, spread lists), a key's line is right."""
    text = "\n".join(doc.lines) + "\n"
    tomllib.loads(text)
    for loc, (first, last) in doc.keys.items():
        assert key_line(text, loc) == first, (loc, text)
        # Inside a value: its key's line if the value is on it (or is a list), else none.
        inside = key_line(text, (*loc, "a"))
        assert inside == (first if first == last else None), (loc, text)
        assert key_line(text, (*loc, 1)) == first, (loc, text)
    for loc, line in doc.tables.items():
        assert key_line(text, loc) == line, (loc, text)
        # A key the table lacks is told by the table's header.
        assert key_line(text, (*loc, "absent"), missing=True) == line
        assert key_line(text, (*loc, "absent")) is None


@given(text=st.text(max_size=80), loc=st.lists(KEYS, min_size=1, max_size=3))
def test_any_text_gives_a_line_that_shows_the_key_or_none(text: str, loc: list[str]) -> None:
    """On any text at all, a line told is in the text and shows the key; else none is told."""
    line = key_line(text, tuple(loc))
    if line is not None:
        lines = text.split("\n")
        assert 1 <= line <= len(lines)
        assert loc[-1] in lines[line - 1]

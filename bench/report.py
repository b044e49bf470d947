"""The results: a table on the terminal and a JSON file."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from bench.figures import Figure

COLUMNS = ("figure", "loop", "n", "median", "p95", "p99", "max", "target", "met")


def _number(value: float) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _row(figure: Figure) -> tuple[str, ...]:
    met = {True: "yes", False: "NO", None: "—"}[figure.met]
    s = figure.summary
    stats: tuple[str, ...]
    if figure.value is not None:
        stats = ("1", _number(figure.value), "", "", "")
        if s is not None:  # a mean with the spread of its samples
            stats = (
                str(s.n),
                f"{_number(figure.value)} mean",
                *map(_number, (s.p95, s.p99, s.max)),
            )
    elif s is not None:
        stats = (str(s.n), *map(_number, (s.median, s.p95, s.p99, s.max)))
    else:
        stats = ("0", "", "", "", "")
    return (figure.label, figure.loop, *stats, figure.target, met)


def table(figures: Sequence[Figure]) -> str:
    rows = [COLUMNS, *(_row(f) for f in figures)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for index, row in enumerate(rows):
        cells = [
            cell.ljust(w) if i in (0, 1, 7) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append(" | ".join(cells).rstrip())
        if index == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(path: Path, run: dict[str, object], figures: Sequence[Figure]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {**run, "figures": [f.as_dict() for f in figures]}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")

"""Tables as people read them (Markdown, right-aligned numbers) and as programs read them (CSV)."""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Sequence

Cell = str | int | float | None


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    """A GitHub Markdown table: columns of numbers right-aligned, the rest left-aligned."""
    text = [[_text(cell) for cell in row] for row in rows]
    widths = [max([len(header), *(len(row[i]) for row in text)]) for i, header in enumerate(headers)]
    right = [i > 0 and all(_numeric(row[i]) for row in text) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = [cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(cells, widths, right)]
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join("-" * (w - 1) + ":" if r else "-" * w for w, r in zip(widths, right)) + " |"
    return "\n".join([line(headers), rule, *(line(row) for row in text)])


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows([["" if cell is None else cell for cell in row] for row in rows])
    return buffer.getvalue()


def mean_spread(values: Sequence[float], scale: float = 1.0, spec: str = ".2f") -> str:
    """'m' for one value, 'm ± sd' (sample standard deviation) for several, each formatted by `spec`; '' for none."""
    finite = [scale * value for value in values if math.isfinite(value)]
    if not finite:
        return ""
    if len(finite) == 1:
        return format(finite[0], spec)
    return f"{format(statistics.mean(finite), spec)} ± {format(statistics.stdev(finite), spec)}"


def _numeric(cell: str) -> bool:
    return not cell or cell[0].isdigit() or (cell[0] in "+-." and cell[1:2].isdigit())


def _text(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float):
        return f"{cell:.4g}"
    return str(cell)

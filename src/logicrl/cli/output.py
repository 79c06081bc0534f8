"""Console output shared by the commands: tables at their full width and lines that are never wrapped.

A narrow terminal (or ``COLUMNS=50``) would otherwise make rich wrap a path over two lines and squeeze table
cells into ``…``; a pipe gets 80 columns. Both helpers print what a script or a test can search for.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table


def print_line(console: Console, text: str) -> None:
    """``text`` as is: one line however long (paths stay whole), no rich markup (a path may hold ``[``)."""
    console.print(text, soft_wrap=True, markup=False, highlight=False)


def print_table(console: Console, title: str, header: Sequence[str], rows: Sequence[Sequence[str]],
                labels: int = 1) -> None:
    """``rows`` under ``header``, the first ``labels`` columns left-aligned and the others right-aligned; no
    cell is wrapped or cut and the title stays on one line (wider than the terminal if need be)."""
    table = Table(title=title, min_width=len(title))
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i < labels else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    needed = max(sum(widths) + 3 * len(widths) + 1, len(title))
    Console(file=console.file, width=max(console.width, needed)).print(table)

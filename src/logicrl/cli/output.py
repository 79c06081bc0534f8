"""Console output shared by the commands: tables at their full width and lines that are never wrapped.

A narrow terminal (or ``COLUMNS=50``) would otherwise make rich wrap a path over two lines and squeeze table
cells into ``…``; a pipe gets 80 columns. Both helpers print what a script or a test can search for.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table


def plain_console(*, stderr: bool = False) -> Console:
    """A console that prints text as it is: rich markup off, so a run folder named ``grpo[lr=1e-6]``, a config
    value holding ``[/answer]`` or a thinking word like ``[/i]`` is neither eaten nor an error. Style goes in
    as ``rich.text.Text`` (``Text.assemble(("logicrl train", "bold"), ...)``)."""
    return Console(stderr=stderr, markup=False)


def print_line(console: Console, text: str) -> None:
    """``text`` as is: one line however long (paths stay whole), no rich markup (a path may hold ``[``)."""
    console.print(text, soft_wrap=True, markup=False, highlight=False)


def print_table(console: Console, title: str, header: Sequence[str], rows: Sequence[Sequence[str]],
                labels: int = 1) -> None:
    """``rows`` under ``header``, the first ``labels`` columns left-aligned and the others right-aligned; no
    cell is wrapped or cut and the title stays on one line (wider than the terminal if need be). Title, header
    and cells are plain text (no rich markup)."""
    table = Table(title=title, min_width=len(title))
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i < labels else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    needed = max(sum(widths) + 3 * len(widths) + 1, len(title))
    Console(file=console.file, width=max(console.width, needed), markup=False).print(table)

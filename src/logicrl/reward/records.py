"""Puzzle records read to be scored: each one's expected answer checked as it is read."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from logicrl.errors import DataError
from logicrl.puzzles.files import load_located
from logicrl.reward.parse import expected_problem


def checked_records(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """The records of ``paths`` (`logicrl.puzzles.files.load_located`); one whose expected answer the reward
    cannot read (`expected_problem`) is a DataError naming its file and line, before any model loads (it used
    to end a run with a traceback at the first response scored against it)."""
    records = []
    for where, record in load_located(paths):
        if problem := expected_problem(record):
            raise DataError(f"{where}: {problem}; fix or drop the row")
        records.append(record)
    return records

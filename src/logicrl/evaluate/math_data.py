"""Math problem files for ``logicrl eval math``: JSONL, JSON and parquet with the usual field names.

Covers the Logic-RL reference repository's AIME/AMC files and Hugging Face exports of AIME, AMC and
MATH-500-style sets. Field names are matched without regard to case, the first present one wins:

    problem   problem, question
    answer    answer, final_answer, solution (a worked solution: its last ``\\boxed{}`` is the answer)
    id        id, problem_id, unique_id, idx            (default: the row's 0-based position in its file)
    source    source, data_source                       (default: the file's stem, e.g. ``aime_2024``)
    year      year                                      (optional)

A file whose rows lack a usable problem or answer field is a one-line `DataError` naming the fields it has,
raised before any model loads. Each problem becomes a record ``{"id", "quiz", "answer", "source", "year",
"group"}``: ``quiz`` is the prompt text under the key `logicrl.prompts` reads, ``id`` is qualified by the
file's stem (``aime_2024:7``) so that two files never share an id, and ``group`` (``"AIME 2024"``,
``source year``) is the table column the problem counts in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from logicrl.errors import DataError
from logicrl.evaluate.math_check import last_boxed
from logicrl.io import read_rows, read_text_file

PROBLEM_FIELDS = ("problem", "question")
ANSWER_FIELDS = ("answer", "final_answer", "solution")
ID_FIELDS = ("id", "problem_id", "unique_id", "idx")
SOURCE_FIELDS = ("source", "data_source")
YEAR_FIELDS = ("year",)
SUFFIXES = (".jsonl", ".json", ".parquet")


def _field(row: Mapping[str, Any], names: Sequence[str]) -> str | None:
    """The key of ``row`` that matches the first of ``names`` present with a non-empty value (any case)."""
    lowered = {str(key).lower(): key for key in row}
    for name in names:
        key = lowered.get(name)
        if key is not None and row[key] is not None and str(row[key]).strip():
            return key
    return None


def _json_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of a .json file: a list of objects, an object holding one such list (``{"data": [...]}``), or
    one object per line."""
    text = read_text_file(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        yield from read_rows(path)  # JSON lines in a .json file
        return
    if isinstance(data, dict):
        lists = [value for value in data.values() if isinstance(value, list)]
        data = lists[0] if len(lists) == 1 else [data]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a list of problems, got {type(data).__name__}")
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise DataError(f"{path}[{i}]: expected an object, got {type(row).__name__}")
        yield f"{path}[{i}]", row


def file_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(location, row) for each row of a .jsonl, .json or .parquet file."""
    if not path.is_file():
        hint = " (a directory: give the files in it)" if path.is_dir() else ""
        raise DataError(f"{path}: file not found{hint}")
    if path.suffix not in SUFFIXES:
        raise DataError(f"{path}: unsupported file type (use {', '.join(SUFFIXES)})")
    return _json_rows(path) if path.suffix == ".json" else read_rows(path)


def reference_answer(text: str, field: str) -> str:
    """The reference answer of a row: the field as given, or, from a worked ``solution``, its last box."""
    text = str(text).strip()
    if field.lower() == "solution":
        boxed = last_boxed(text)
        if boxed is None:
            raise DataError(f"its '{field}' field holds no \\boxed{{}} answer and there is no answer field")
        return boxed
    return text


def _text(value: Any) -> str:
    """A label field as text: an integral float as its integer (a pandas column with a null stores its years
    as floats: 2024.0 is AIME 2024, not AIME 2024.0)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def load_math_file(path: Path) -> list[dict[str, Any]]:
    """The problems of one file as records (module docstring); DataError on a file without a usable problem
    or answer field (naming the fields it has), an empty file, or two problems under one id."""
    records, seen = [], {}
    for position, (where, row) in enumerate(file_rows(path)):
        problem, answer = _field(row, PROBLEM_FIELDS), _field(row, ANSWER_FIELDS)
        if problem is None or answer is None:
            missing = ("problem (problem/question)" if problem is None
                       else "answer (answer/final_answer/solution)")
            names = PROBLEM_FIELDS if problem is None else ANSWER_FIELDS
            empty = [key for key in row if str(key).lower() in names]
            if empty:  # the field is there, without a value
                raise DataError(f"{where}: its '{empty[0]}' field is empty (null or blank): give every row its "
                                f"{missing.split()[0]}, or leave the row out")
            found = ", ".join(map(str, row)) or "none"
            raise DataError(f"{where}: no usable {missing} field (fields found: {found})")
        if isinstance(row[answer], (list, dict)):  # its Python repr would be the reference
            raise DataError(f"{where}: its '{answer}' field is a {type(row[answer]).__name__}: give the answer as "
                            "one text or number (a set or tuple written in LaTeX, e.g. \\{1, 2\\})")
        try:
            reference = reference_answer(row[answer], answer)
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None
        id_key, source_key, year_key = (_field(row, n) for n in (ID_FIELDS, SOURCE_FIELDS, YEAR_FIELDS))
        raw_id = str(row[id_key]) if id_key else str(position)
        if raw_id in seen:
            raise DataError(f"{where}: id {raw_id!r} is already used by {seen[raw_id]}")
        seen[raw_id] = where
        source = str(row[source_key]).strip() if source_key else path.stem
        year = _text(row[year_key]) if year_key else None
        records.append({"id": f"{path.stem}:{raw_id}", "quiz": str(row[problem]).strip(), "answer": reference,
                        "source": source, "year": year, "group": f"{source} {year}" if year else source})
    if not records:
        raise DataError(f"{path}: no problems in the file")
    return records


def load_math_problems(paths: Sequence[Path], limit: int | None = None) -> list[dict[str, Any]]:
    """The problems of all ``paths`` (the first ``limit`` of each group, when given), in file order."""
    stems: dict[str, Path] = {}
    for path in paths:
        if path.stem in stems and stems[path.stem] != path:
            raise DataError(f"{path} and {stems[path.stem]} have the same name: problem ids would clash "
                            "(rename one)")
        stems[path.stem] = path
    records = [record for path in dict.fromkeys(paths) for record in load_math_file(path)]
    if limit is None:
        return records
    taken: dict[str, int] = {}
    chosen = []
    for record in records:
        taken[record["group"]] = taken.get(record["group"], 0) + 1
        if taken[record["group"]] <= limit:
            chosen.append(record)
    return chosen


def math_group(row: Mapping[str, Any]) -> str:
    """A row's table column: its group (``source year``)."""
    return str(row["group"])


def math_source(row: Mapping[str, Any]) -> str:
    """A row's source (AIME, AMC, …), the column of the pooled table."""
    return str(row["source"])

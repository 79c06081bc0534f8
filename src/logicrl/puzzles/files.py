"""Dataset folders on disk: writing a generated dataset (`write_dataset`), finding the record files of a dataset
directory, a file or the public K&K layout (`dataset_files`), and reading them as checked records
(`load_records`, `load_located`, `load_twins`).

Layout written by `write_dataset` (the Logic-RL layout, one folder per number of people)::

    OUT/3ppl/train.jsonl  OUT/3ppl/train.parquet  OUT/3ppl/test.jsonl  OUT/3ppl/test.parquet
    OUT/4ppl/...
    OUT/manifest.json     (the config and the counts)

or, with ``layout: public``, the public K&K release's layout (`logicrl.puzzles.public`), twins included::

    OUT/test/clean/people3_num100.jsonl  OUT/test/perturbed_leaf/people3_num100.jsonl  ...

Twins that ``logicrl data perturb`` writes (any split, each naming its original by ``original_id``), and the
settings they were made with::

    P/statement.jsonl  P/statement.parquet  P/reorder.jsonl  ...  P/perturb.json

Until the manifest is written, one marked ``incomplete`` stands in its place, and readers refuse the folder.
"""

from __future__ import annotations

import json
import numbers
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logicrl.errors import DataError, UserError
from logicrl.io import (
    atomic_write_bytes,
    atomic_write_text,
    read_rows,
    read_text_file,
    write_parquet_from_jsonl,
)
from logicrl.puzzles.lines import records_jsonl
from logicrl.puzzles.logic import Op
from logicrl.puzzles.perturb import CLEAN_KIND, PUBLIC_KIND_OF, PUBLIC_KINDS
from logicrl.puzzles.public import PUBLIC_FILE, is_public_dir, public_files, public_path, twin_files
from logicrl.puzzles.record import Puzzle
from logicrl.puzzles.render import solution_text_format
from logicrl.puzzles.solver import first_conflict

if TYPE_CHECKING:
    from logicrl.puzzles.dataset import DataConfig

INCOMPLETE = "incomplete"  # the manifest's mark while `write_dataset` writes the files


def _manifest(folder: Path) -> dict[str, Any]:
    """A dataset directory's ``manifest.json``; empty when there is none or it is not logicrl's (not a JSON
    object)."""
    path = Path(folder) / "manifest.json"
    try:
        manifest = json.loads(read_text_file(path)) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}
    return manifest if isinstance(manifest, dict) else {}


def dataset_operators(source: Path) -> tuple[Op, ...] | None:
    """The operators that the dataset holding ``source`` was drawn with, as its manifest's config gives them
    (``source``: a dataset directory, or one of its files in either layout); None when no manifest says."""
    source = Path(source)
    if source.is_file():
        in_ppl = re.fullmatch(r"\d+ppl", source.parent.name)  # ROOT/3ppl/train.jsonl
        in_public = PUBLIC_FILE.match(source.name)  # ROOT/test/clean/people3_num100.jsonl
        source = source.parent.parent if in_ppl else source.parents[2] if in_public else source.parent
    operators = _manifest(source).get("config", {}).get("operators") if source.is_dir() else None
    if not isinstance(operators, list):
        return None
    return tuple(op for op in Op if not op.is_leaf and op.value in operators)  # `DataConfig.level`'s order


def check_complete(path: Path) -> None:
    """Refuse a dataset directory whose files a killed `logicrl data generate` left part-way."""
    if _manifest(path).get(INCOMPLETE, False):
        raise DataError(f"{path}: `logicrl data generate` stopped before it wrote all its files: run the same "
                        "command again to complete it")


def check_dataset_dir(out_dir: Path, config: DataConfig) -> None:
    """Refuse to write over another dataset: files of its levels that this config does not make would stay and
    mix with the new ones. The same config makes the same bytes, so its own folder may be written again; puzzle
    files without a manifest (another tool's, or copied in) are not known to be its own: refused too."""
    if not (Path(out_dir) / "manifest.json").is_file():
        found = sorted([*Path(out_dir).glob("*ppl/*.jsonl"), *Path(out_dir).glob("*ppl/*.parquet")])
        if found or is_public_dir(Path(out_dir)):
            what = f"{found[0].relative_to(out_dir)} ..." if found else "public-layout people*_num*.jsonl files"
            raise UserError(f"{out_dir} holds puzzle files ({what}) but no manifest.json: the new dataset would mix "
                            "with them; choose another --out, or delete those files first")
        return
    old = _manifest(out_dir).get("config", {})  # also a write that was cut short; {} if unreadable: refused
    new = json.loads(json.dumps(config.model_dump(mode="json")))  # as the manifest holds it: string dict keys
    changed = [key for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    if changed:
        raise UserError(f"{out_dir} holds another dataset (its manifest.json differs in {', '.join(changed)}): "
                        f"choose another --out, or delete {out_dir} first")


def write_dataset(out_dir: Path, config: DataConfig, splits: dict[int, dict[str, list]],
                  twins: dict[int, dict[str, dict[str, list]]] | None = None) -> list[Path]:
    """Write every split (and twin set) in every format, then the manifest; returns the files written. Until
    the manifest is written, one marked ``incomplete`` stands in its place: readers refuse a dataset that a
    killed write left part-way (`dataset_files`)."""
    written = []
    started = {"config": config.model_dump(mode="json"), INCOMPLETE: True}
    atomic_write_text(out_dir / "manifest.json", json.dumps(started, indent=2) + "\n")
    for n, by_split in splits.items():
        for split, records in by_split.items():
            if not records:
                continue
            sets = {CLEAN_KIND: records} | {PUBLIC_KIND_OF[k]: t for k, t in (twins or {}).get(n, {})
                                             .get(split, {}).items()}
            for kind, rows in sets.items():
                text = records_jsonl(rows)  # the JSONL file, and the parquet file's way into Arrow
                for fmt in config.formats:
                    if config.layout == "public":
                        path = public_path(out_dir, split, kind, n, len(records), fmt)
                    else:
                        path = out_dir / f"{n}ppl" / f"{split}.{fmt}"
                    if fmt == "jsonl":
                        atomic_write_bytes(path, text)
                    else:
                        write_parquet_from_jsonl(path, text)
                    written.append(path)
    counts = {f"{n}ppl": {s: len(r) for s, r in by.items()} for n, by in splits.items()}
    manifest: dict[str, Any] = {"config": config.model_dump(mode="json"), "counts": counts}
    if twins:
        manifest["twins"] = {f"{n}ppl": {s: {PUBLIC_KIND_OF[k]: len(t) for k, t in by.items()}
                                          for s, by in by_split.items()} for n, by_split in twins.items()}
    atomic_write_text(out_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return written


def dataset_files(path: Path, split: str | None = None, kind: str = CLEAN_KIND) -> list[Path]:
    """The record files under ``path``: the file itself, ``*ppl/{split}.jsonl`` in a dataset dir (parquet when
    no JSONL is there), or ``{split}/{kind}/people*_num*.jsonl`` in the public K&K layout (`public.py`;
    ``kind`` in either naming, ``clean`` by default)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such file or dataset directory")
    check_complete(path)
    public_kind = PUBLIC_KIND_OF.get(kind, kind)
    if public_kind != CLEAN_KIND and public_kind not in PUBLIC_KINDS:
        valid = ", ".join([CLEAN_KIND, *PUBLIC_KINDS])
        raise DataError(f"unknown kind {kind!r} (valid: {valid}, or logicrl's names)")
    if is_public_dir(path):
        files = public_files(path, split, public_kind)
        if not files:
            raise DataError(f"{path}: no {split or '*'}/{public_kind}/people*_num*.jsonl files "
                            "(public K&K layout)")
        return files
    if kind != CLEAN_KIND:
        raise DataError(f"{path}: a logicrl dataset directory holds no twins; make them with `logicrl data "
                        "perturb`, or use the public layout")
    pattern = f"*ppl/{split or '*'}"
    files = list(path.glob(pattern + ".jsonl")) or list(path.glob(pattern + ".parquet"))
    if not files:
        raise DataError(f"{path}: no {pattern}.jsonl or .parquet files (make one with `logicrl data generate`)")
    return sorted(files, key=_by_people_then_name)


def _by_people_then_name(path: Path) -> tuple[int, str]:
    """Sort ``10ppl/`` after ``9ppl/`` (numerically), then by file name."""
    people = path.parent.name.removesuffix("ppl")
    return (int(people) if people.isdigit() else 0, path.name)


def load_records(paths: Iterable[Path], *, check: bool = True) -> list[dict[str, Any]]:
    """All records of the given files (`load_located`, without the locations)."""
    return [record for _, record in load_located(paths, check=check)]


def load_located(paths: Iterable[Path], *, check: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """All records of the given files, each with its location (``file:line``, `logicrl.io.read_rows`); a
    malformed row raises DataError naming file and line.

    A row without an ``id`` (the public K&K release has none) gets its content id (`Puzzle.id`, with
    ``#2``, ``#3``, ... for repeats), so that per-puzzle metrics and paired comparisons never lump
    different puzzles together under ``None``; one without an ``index`` gets its 0-based line in its file.
    Two different puzzles (another quiz or answer) under one explicit id are a DataError, and so (``check``) is
    an answer key that disagrees with itself: a ``solution`` that contradicts the statements, or a
    ``solution_text_format`` (what the reward scores against) that is not the text of ``solution``, ``names``
    and ``knight_knave``.
    """
    records = []
    owners: dict[str, tuple[tuple[Any, Any], str]] = {}  # id -> (what the puzzle is, where it was first)
    for path in paths:
        for position, (where, row) in enumerate(read_rows(path)):
            given = row.get("id")  # the key of every per-puzzle table, link and paired comparison
            if given is not None and (isinstance(given, bool) or not isinstance(given, str | numbers.Integral)):
                raise DataError(f"{where}: 'id' must be text or a whole number, got {given!r}")
            missing = given is None or given == ""  # an id of 0 is an id
            puzzle = None
            if check or missing:
                try:
                    puzzle = Puzzle.from_record(row)
                except (ValueError, KeyError, TypeError) as exc:  # unchecked and unreadable: left as is
                    if check:
                        raise DataError(f"{where}: {exc}") from None
            # the solution must be consistent (unique is not asked of a record; of a logic twin, where it is
            # paired with its original: `perturb.twin_mismatch`)
            if check and puzzle is not None and first_conflict(puzzle.statements, puzzle.solution) >= 0:
                raise DataError(f"{where}: 'solution' contradicts the statements (a knight's statement false or a "
                                "knave's true): the reward would score against a wrong answer; fix or drop the row")
            if check and puzzle is not None:
                _check_answer_text(row, puzzle, where)
            if puzzle is not None and missing:
                row, missing = {**row, "id": _free_id(puzzle.id, owners)}, False
            if puzzle is not None and "index" not in row:
                row = {**row, "index": position}
            if not missing:
                _claim_id(str(row["id"]), (row.get("quiz"), row.get("solution_text_format")), where, owners)
            records.append((where, row))
    return records


def _check_answer_text(row: dict[str, Any], puzzle: Puzzle, where: str) -> None:
    """Refuse a row whose ``solution_text_format``, the answer the reward scores against, is not the one its
    ``solution``, ``names`` and ``knight_knave`` give (`render.solution_text_format`, as every logicrl and public
    record writes it; whitespace around it aside)."""
    expected = solution_text_format(puzzle.solution, puzzle.names, puzzle.roles)
    given = row["solution_text_format"]
    if given.strip() != expected:  # the reward's words (`reward.parse.expected_problem`) for a bad expected answer
        raise DataError(f"{where}: solution_text_format: malformed expected answer {given!r}: the row's 'solution', "
                        f"'names' and 'knight_knave' give {expected!r}, and the reward scores against this text; "
                        "fix or drop the row")


def distinct_by_id(records: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The first record of each id, in order, and how many later records repeat an id (`load_records` gives
    one id only to one puzzle, so a repeat is the same puzzle: perturbed and measured once)."""
    first: dict[str, dict[str, Any]] = {}
    total = 0
    for record in records:
        first.setdefault(str(record["id"]), record)
        total += 1
    return list(first.values()), total - len(first)


def _free_id(base: str, owners: dict[str, Any]) -> str:
    """``base``, or ``base#2``, ``base#3``, ... — the first not yet taken."""
    count, candidate = 1, base
    while candidate in owners:
        count += 1
        candidate = f"{base}#{count}"
    return candidate


def _claim_id(puzzle_id: str, what: tuple[Any, Any], where: str,
              owners: dict[str, tuple[tuple[Any, Any], str]]) -> None:
    first = owners.setdefault(puzzle_id, (what, where))
    if first[0] != what:
        raise DataError(f"{where}: id {puzzle_id!r} is already the id of a different puzzle ({first[1]}); "
                        "ids must be unique")


def load_twins(data: Path, split: str, kinds: Iterable[str], *,
               required: bool = False) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """{kind: (location, record) pairs} (`load_located`) of the twins of ``data`` for the logicrl ``kinds`` that
    have any: the public twins of a public directory or file (`public.twin_files`), else those of a folder
    `logicrl data perturb` wrote (`perturbed_files`); ``required``: a DataError when none of them has any."""
    found = {}
    for kind in kinds:
        files = twin_files(data, split, PUBLIC_KIND_OF[kind]) or perturbed_files(data, kind)
        if files:
            found[kind] = load_located(files)
    if required and not found:
        made = ", ".join(f"{k}.jsonl" for k in kinds)
        public = ", ".join(f"{split}/{PUBLIC_KIND_OF[k]}/" for k in kinds)
        raise DataError(f"{data}: no twins of `logicrl data perturb` ({made}) and no public twins "
                        f"({public}people*_num*.jsonl)")
    return found


def perturbed_files(folder: Path, kind: str) -> list[Path]:
    """The ``kind`` twins `logicrl data perturb` wrote into ``folder``: ``<kind>.jsonl``, else
    ``<kind>.parquet`` (it writes both); empty when there are none."""
    for suffix in (".jsonl", ".parquet"):
        path = Path(folder) / f"{kind}{suffix}"
        if path.is_file():
            return [path]
    return []

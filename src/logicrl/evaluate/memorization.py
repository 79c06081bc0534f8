"""Memorization of logical reasoning (Xie et al. 2024, "On Memorization of Large Language Models in
Logical Reasoning", arXiv 2410.23123): accuracy, consistency ratio and LiMem per perturbation kind.

For a model f and a set D of puzzles, each paired with a perturbed twin that keeps the principle and
the difficulty (`logicrl.puzzles.perturb`):

* Acc(f; D) = share of the puzzles of D that f solves;
* CR(f; D) = consistency ratio = among the puzzles f solves, the share whose perturbed twin f still
  solves: #(original solved and twin solved) / #(original solved);
* LiMem(f; D) = Acc(f; D) · (1 − CR(f; D)), the local-inconsistency memorization score.

Multiplying out, LiMem = #(original solved and twin not solved) / |D|: the share of all puzzles that the
model solves but cannot solve once perturbed. High LiMem with high Acc is memorization; a model that
reasons keeps CR near 1. CR is undefined when no puzzle is solved (reported as None; LiMem is then 0);
with no pairs at all Acc, CR and LiMem are all None.

The twins are those given (`collect_twins`: the public release's, linked to their originals by number of
people and ``index`` within one split, as the public generator numbers them; logicrl's, as `logicrl data
perturb` writes them, by ``original_id``; each checked to be a twin of the puzzle it is linked to, so that
another dataset's twins are refused, not paired with unrelated puzzles), and made by `logicrl.puzzles.perturb`
otherwise; a wording-only twin keeps every other word of its original.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from logicrl.errors import DataError
from logicrl.puzzles.logic import Op
from logicrl.puzzles.perturb import (
    PERTURBATIONS,
    WORDING_KINDS,
    perturb,
    twin_mismatch,
    twin_source,
    undrawable_statement,
)
from logicrl.puzzles.record import Puzzle
from logicrl.puzzles.sampler import ALL_OPERATORS

ALL_PEOPLE = "all"


def make_twins(
    records: Sequence[Mapping[str, Any]], kinds: Iterable[str], seed: int, operators: tuple[Op, ...] = ALL_OPERATORS
) -> tuple[list[dict[str, Any]], dict[str, list[tuple[str, str]]]]:
    """The perturbed twins of ``records`` and, per kind, the ``(original id, twin id)`` pairs; a ``statement``
    twin's new statement uses ``operators`` (the dataset's, `logicrl.puzzles.files.dataset_operators`).

    A puzzle may have no twin of a kind (`logicrl.puzzles.perturb.perturb` returns None: no valid logic-changing
    twin found, or a 1-person puzzle's reorder): it is then left out of that kind's pairs (and so of its Acc, CR
    and LiMem). A wording-only twin keeps every other word of its original's text
    (`logicrl.puzzles.perturb.twin_source`).
    """
    return _made_twins([(str(r["id"]), twin_source(r)[0]) for r in records], kinds, seed, operators)


def _made_twins(
    puzzles: Sequence[tuple[str, Puzzle]], kinds: Iterable[str], seed: int, operators: tuple[Op, ...]
) -> tuple[list[dict[str, Any]], dict[str, list[tuple[str, str]]]]:
    twins: list[dict[str, Any]] = []
    pairs: dict[str, list[tuple[str, str]]] = {}
    for kind in kinds:
        pairs[kind] = []
        for original, puzzle in puzzles:
            if kind == "statement" and (problem := undrawable_statement(puzzle, operators)):
                raise DataError(f"puzzle {original}: no statement twin can be drawn at its level: {problem}")
            twin = perturb(puzzle, kind, seed, operators=operators)
            if twin is not None:  # named after the record's own id: <original id>~<kind>
                record = twin.evolve(original_id=original).to_record(len(twins))
                twins.append(record)
                pairs[kind].append((original, record["id"]))
    return twins, pairs


def link_twins(
    records: Sequence[Mapping[str, Any]], kind: str, twins: Sequence[tuple[str, Mapping[str, Any]]]
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Given twins of one ``kind`` (e.g. a public ``perturbed_leaf`` file), as (location, record) pairs
    (`logicrl.puzzles.files.load_twins`), paired with their originals in ``records``: by ``original_id`` when
    every twin names its original (logicrl's twins, as `logicrl data perturb` writes them), else by (number of
    people, ``index``) (the public release's, which name none); twins of puzzles not in ``records`` are left
    out; twins of none of them (another split's) are a DataError, and so is a twin that is not a ``kind`` twin
    of the puzzle it is linked to (`logicrl.puzzles.perturb.twin_mismatch`: another dataset's at that place).

    Each twin is renamed ``<original id>~<kind>`` (a wording twin has its original's statements, hence its
    content id). Returns the twin records and the ``(original id, twin id)`` pairs, as `make_twins` does.
    """
    by_id = bool(twins) and all(twin.get("original_id") for _, twin in twins)
    original_of = {str(r["id"]): str(r["id"]) for r in records} if by_id else _originals_by_place(records)
    record_of = {str(r["id"]): r for r in records}
    linked: list[dict[str, Any]] = []
    pairs: list[tuple[str, str]] = []
    paired: set[str] = set()
    for where, twin in twins:
        link = _link(twin, by_id)
        original = original_of.get(link)
        if original is None:
            continue
        if original in paired:
            place = f"original_id {link!r}" if by_id else f"{link[0]} people and index {link[1]}"
            raise DataError(f"{where}: two {kind} twins have {place}")
        mismatch = twin_mismatch(Puzzle.from_record(dict(record_of[original])), Puzzle.from_record(dict(twin)),
                                 kind)
        if mismatch:
            by = "original_id" if by_id else "number of people and index"
            raise DataError(f"{where}: not a {kind} twin of {original!r}, the puzzle it is linked to by {by} "
                            f"({mismatch}): the twins belong to another dataset or split; give those of the data "
                            "evaluated (`logicrl data perturb`)")
        paired.add(original)
        twin_id = f"{original}~{kind}"
        linked.append({**twin, "id": twin_id, "original_id": original, "perturbation": kind})
        pairs.append((original, twin_id))
    if twins and not pairs:
        by = "original_id" if by_id else "number of people and index"
        raise DataError(f"none of the {len(twins)} {kind} twins belongs to the {len(records)} puzzles evaluated "
                        f"(linked by {by}): give the twins of the same split or file (`logicrl data perturb`)")
    return linked, pairs


def _link(row: Mapping[str, Any], by_id: bool) -> Any:
    """What links a twin ``row`` to its original: the original's id, or (number of people, ``index``)."""
    return str(row["original_id"]) if by_id else (len(row["names"]), row.get("index"))


def _originals_by_place(records: Sequence[Mapping[str, Any]]) -> dict[Any, str]:
    """{(number of people, ``index``): id} of ``records``; two puzzles at one place are a DataError."""
    original_of: dict[Any, str] = {}
    for record in records:
        key = _link(record, by_id=False)
        if key in original_of:
            raise DataError(f"two puzzles with {key[0]} people have index {key[1]}: twins cannot be linked "
                            "to them by index (give one split)")
        original_of[key] = str(record["id"])
    return original_of


def collect_twins(
    records: Sequence[Mapping[str, Any]], kinds: Iterable[str], seed: int,
    given: Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]], operators: tuple[Op, ...] = ALL_OPERATORS,
) -> tuple[list[dict[str, Any]], dict[str, list[tuple[str, str]]], dict[str, str]]:
    """The twins of every kind: those ``given`` for it (`link_twins`; (location, record) pairs, as
    `logicrl.puzzles.files.load_twins` returns them), else made (`make_twins`, with ``operators``).

    Returns (twin records, kind -> pairs, kind -> where they come from: ``given``, ``made``, or ``made, N
    re-worded`` when N originals' text could not be reproduced, so their wording twins are rendered afresh)."""
    twins: list[dict[str, Any]] = []
    pairs: dict[str, list[tuple[str, str]]] = {}
    sources: dict[str, str] = {}
    puzzles: list[tuple[str, Puzzle]] | None = None
    reworded = 0
    for kind in kinds:
        if kind in given:
            kind_twins, pairs[kind] = link_twins(records, kind, given[kind])
            sources[kind] = "given"
        else:
            if puzzles is None:
                found = [(str(r["id"]), *twin_source(r)) for r in records]
                puzzles = [(i, p) for i, p, _ in found]
                reworded = sum(not exact for _, _, exact in found)
            kind_twins, made = _made_twins(puzzles, [kind], seed, operators)
            pairs[kind] = made[kind]
            sources[kind] = f"made, {reworded} re-worded" if reworded and kind in WORDING_KINDS else "made"
        twins += kind_twins
    return twins, pairs, sources


def twin_of_another_kind(puzzle_id: str, kinds: Collection[str]) -> bool:
    """Whether ``puzzle_id`` is a twin's (``<original id>~<kind>``) of a perturbation kind not in ``kinds``:
    a rescore with fewer ``--kinds`` than the samples were made with leaves its samples as they are."""
    _, sep, kind = puzzle_id.rpartition("~")
    return bool(sep) and kind in PERTURBATIONS and kind not in kinds


def memorization_scores(solved_original: Sequence[bool], solved_twin: Sequence[bool]) -> dict[str, Any]:
    """Acc, CR and LiMem of paired results (``solved_original[i]`` and ``solved_twin[i]`` for pair i).

    Returns ``{"pairs", "acc", "cr", "limem"}``: Acc = s/N, CR = b/s, LiMem = Acc·(1 − CR) with N pairs,
    s originals solved and b pairs solved both times; CR is None and LiMem 0 when s = 0 < N; Acc, CR and
    LiMem are None when N = 0.
    """
    if len(solved_original) != len(solved_twin):
        raise ValueError(f"{len(solved_original)} originals but {len(solved_twin)} twins")
    total = len(solved_original)
    solved = sum(bool(s) for s in solved_original)
    both = sum(bool(s) and bool(t) for s, t in zip(solved_original, solved_twin, strict=True))
    acc = solved / total if total else None
    cr = both / solved if solved else None
    limem = acc * (1.0 - cr) if acc is not None and cr is not None else (0.0 if total else None)
    return {"pairs": total, "acc": acc, "cr": cr, "limem": limem}


def memorization_table(
    solved: Mapping[str, bool], people: Mapping[str, int], pairs: Mapping[str, Sequence[tuple[str, str]]]
) -> dict[str, dict[int | str, dict[str, Any]]]:
    """Per kind, per number of people (and pooled over all, key ``"all"``): `memorization_scores`.

    Args:
        solved: puzzle id -> solved, originals and twins: the first sample's (``sample`` 0, as
            `logicrl.evaluate.compare.first_samples` picks it; the greedy or single one).
        people: original id -> number of people.
        pairs: kind -> (original id, twin id) pairs, as `make_twins` returns.
    """
    table: dict[str, dict[int | str, dict[str, Any]]] = {}
    for kind, kind_pairs in pairs.items():
        levels: dict[int | str, list[tuple[str, str]]] = {}
        for original, twin in kind_pairs:
            levels.setdefault(people[original], []).append((original, twin))
        rows: dict[int | str, dict[str, Any]] = {}
        for level in sorted(levels):
            rows[level] = _scores(levels[level], solved)
        rows[ALL_PEOPLE] = _scores(list(kind_pairs), solved)
        table[kind] = rows
    return table


def _scores(level_pairs: Sequence[tuple[str, str]], solved: Mapping[str, bool]) -> dict[str, Any]:
    return memorization_scores([solved[o] for o, _ in level_pairs], [solved[t] for _, t in level_pairs])

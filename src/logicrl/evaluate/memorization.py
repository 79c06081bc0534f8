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
reasons keeps CR near 1. CR is undefined when no puzzle is solved (reported as None; LiMem is then 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from logicrl.puzzles.perturb import perturb
from logicrl.puzzles.record import Puzzle

ALL_PEOPLE = "all"


def make_twins(
    records: Sequence[Mapping[str, Any]], kinds: Iterable[str], seed: int
) -> tuple[list[dict[str, Any]], dict[str, list[tuple[str, str]]]]:
    """The perturbed twins of ``records`` and, per kind, the ``(original id, twin id)`` pairs.

    A logic-changing kind (``statement``, ``leaf``) may find no valid twin for a puzzle: that puzzle is
    then left out of that kind's pairs (and so of its Acc, CR and LiMem).
    """
    puzzles = [Puzzle.from_record(dict(r)) for r in records]
    twins: list[dict[str, Any]] = []
    pairs: dict[str, list[tuple[str, str]]] = {}
    for kind in kinds:
        pairs[kind] = []
        for puzzle in puzzles:
            twin = perturb(puzzle, kind, seed)
            if twin is not None:
                record = twin.to_record(len(twins))
                twins.append(record)
                pairs[kind].append((puzzle.id, record["id"]))
    return twins, pairs


def memorization_scores(solved_original: Sequence[bool], solved_twin: Sequence[bool]) -> dict[str, Any]:
    """Acc, CR and LiMem of paired results (``solved_original[i]`` and ``solved_twin[i]`` for pair i).

    Returns ``{"pairs", "acc", "cr", "limem"}``: Acc = s/N, CR = b/s, LiMem = Acc·(1 − CR) with N pairs,
    s originals solved and b pairs solved both times; CR is None and LiMem 0 when s = 0.
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
        solved: puzzle id -> solved (the greedy or single sample's ``solved``), originals and twins.
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

"""Shared fixtures of the puzzle tests: a corpus of generated records and the oracles' import path.

The oracles (brute-force solver, text parser, statement strategies) live in brute_force.py beside this
file; pytest runs with --import-mode=importlib, so this folder is put on sys.path for them.

Run: .venv/bin/python -m pytest tests/puzzles -q -p no:randomly --durations=10
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from brute_force import make_records

# (people, depth, width, count): thousands of puzzles at 2..8 people, a few hundred at 10..12,
# a handful at 16. At 2 people only ~400 distinct unique puzzles exist at depth 2 / width 2.
CORPUS_LEVELS: list[tuple[int, int, int, int]] = (
    [(n, d, w, 80) for n in range(2, 9) for d, w in ((2, 2), (2, 3), (3, 2), (3, 3), (4, 4))]
    + [(n, d, w, 50) for n in (10, 11, 12) for d, w in ((2, 2), (3, 3))]
    + [(16, 2, 2, 6)]
)


@pytest.fixture(scope="session")
def corpus() -> list[dict]:
    """Generated records over CORPUS_LEVELS, with random role words and both name pools."""
    records = []
    for k, (n, depth, width, count) in enumerate(CORPUS_LEVELS):
        names = "uncommon" if k % 3 == 0 else "common"
        records += make_records(n, depth, width, count, seed=k, roles="random", names=names)
    return records


@pytest.fixture(scope="session")
def small_corpus(corpus: list[dict]) -> list[dict]:
    """The part of the corpus with at most 8 people (cheap to brute-force step by step)."""
    return [r for r in corpus if r["n_people"] <= 8]

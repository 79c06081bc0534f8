"""Shared fixtures of the evaluation tests: a small dataset on disk and hand-written responses.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/evaluate -q
"""

from __future__ import annotations

from pathlib import Path

import pytest

from logicrl.puzzles.dataset import DataConfig, generate
from logicrl.puzzles.files import dataset_files, load_records, write_dataset

REASONING = "Suppose the first speaker lies; then the second claim contradicts the first, so we go back."


def response_for(record: dict, *, correct: bool = True, opens_think: bool = False) -> str:
    """A well-formed response to ``record`` (the prompt pre-filled ``<think>`` unless ``opens_think``),
    whose answer is right, or wrong in the first person's role."""
    answer = record["solution_text_format"]
    if not correct:
        first, rest = answer.split("\n", 1)
        flipped = first.replace("knight", "@").replace("knave", "knight").replace("@", "knave")
        answer = f"{flipped}\n{rest}"
    head = "<think> " if opens_think else " "
    return f"{head}{REASONING}</think><answer>{answer}</answer>"


@pytest.fixture(scope="session")
def respond():
    """`response_for`, for the test modules (conftest is not importable under --import-mode=importlib)."""
    return response_for


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2- and 3-person puzzles, 4 train and 3 test each, knight/knave roles."""
    out = tmp_path_factory.mktemp("data")
    cfg = DataConfig(people=[2, 3], train=4, test=3, seed=5, formats=["jsonl"])
    write_dataset(out, cfg, generate(cfg))
    return out


@pytest.fixture(scope="session")
def test_records(dataset: Path) -> list[dict]:
    return load_records(dataset_files(dataset, "test"))

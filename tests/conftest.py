"""Fixtures shared across test folders: a small puzzle dataset on disk."""

from __future__ import annotations

import pytest

from logicrl.puzzles.dataset import DataConfig, generate, write_dataset


@pytest.fixture(scope="session")
def puzzle_dir(tmp_path_factory):
    """2- and 3-person puzzles: 12 train + 4 test each."""
    out = tmp_path_factory.mktemp("puzzles")
    config = DataConfig(people=[2, 3], train=12, test=4, seed=0)
    write_dataset(out, config, generate(config))
    return out

"""Fixtures shared across test folders: an isolated model cache, a small puzzle dataset on disk."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from logicrl.puzzles.dataset import DataConfig, generate
from logicrl.puzzles.files import write_dataset

sys.path.insert(0, str(Path(__file__).parent))  # test helpers shared across folders (live_bytes.py)


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory):
    """``$LOGICRL_CACHE`` for the whole session (subprocesses included): an empty temporary folder, so tests
    build the aliases they use and never read or write the user's ``~/.cache/logicrl``."""
    cache = tmp_path_factory.mktemp("logicrl-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOGICRL_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="session")
def puzzle_dir(tmp_path_factory):
    """2- and 3-person puzzles: 12 train + 4 test each."""
    out = tmp_path_factory.mktemp("puzzles")
    config = DataConfig(people=[2, 3], train=12, test=4, seed=0)
    write_dataset(out, config, generate(config))
    return out

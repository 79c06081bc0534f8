"""Records read to be scored: an expected answer the reward cannot read is refused as the file is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from logicrl.cli import app
from logicrl.errors import DataError
from logicrl.puzzles.dataset import DataConfig, generate
from logicrl.reward.records import checked_records
from logicrl.rl.schedule import load_puzzles


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """Three 2-person puzzles; the second's expected answer written as `=` instead of 'is a'."""
    records = generate(DataConfig(people=[2], train=3, test=0, seed=4))[2]["train"]
    records[1] = {**records[1], "solution_text_format": records[1]["solution_text_format"].replace(" is a ", " = ")}
    path = tmp_path / "puzzles.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_an_unreadable_expected_answer_is_refused_with_its_line(broken: Path) -> None:
    with pytest.raises(DataError, match=rf"^{broken}:2: solution_text_format: malformed expected answer"):
        checked_records([broken])
    with pytest.raises(DataError, match=rf"^{broken}:2: solution_text_format"):  # logicrl train and sft read so
        load_puzzles(broken, "train")
    good = broken.with_name("good.jsonl")
    good.write_text("".join(line + "\n" for i, line in enumerate(broken.read_text().splitlines()) if i != 1))
    assert [r["id"] for r in checked_records([good])] == [json.loads(line)["id"] for line in good.read_text().splitlines()]


def test_eval_refuses_it_before_any_model_loads(broken: Path, tmp_path: Path) -> None:
    """It used to generate every earlier chunk, then end with a 70-line traceback at the first response to it."""
    result = CliRunner().invoke(app, ["eval", "-m", "no-such-org/never-loaded", "--data", str(broken),
                                      "--people", "2", "--out", str(tmp_path / "out")])
    assert isinstance(result.exception, DataError) and f"{broken}:2: solution_text_format" in str(result.exception)
    assert not (tmp_path / "out").exists()

"""Reading a run directory: the metric lines, lazy response files, and one-line errors naming file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from logicrl.analysis.run import check_run_dir, load_metrics, load_run_config, read_responses, response_files
from logicrl.errors import DataError


def test_metrics_by_kind(run_dir: Path) -> None:
    metrics = load_metrics(run_dir)
    assert [int(r["step"]) for r in metrics.train] == list(range(1, 11))
    assert [int(r["step"]) for r in metrics.val] == [5, 10]
    steps, kl = metrics.series("kl")
    assert steps == [6, 7, 8, 9, 10] and kl[0] == pytest.approx(0.006)  # missing on steps 1..5
    assert "val/acc/4ppl" in metrics.keys("val") and "time" not in metrics.keys("val")


def test_repeated_step_keeps_the_later_line_and_nan_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text(
        '{"kind": "train", "step": 1, "acc": 0.1}\n{"kind": "train", "step": 1, "acc": 0.3, "kl": NaN}\n'
        '{"kind": "train", "step": 2, "acc": 0.5, "note": "text is dropped", "ok": true}\n')
    metrics = load_metrics(tmp_path)
    assert metrics.series("acc") == ([1, 2], [0.3, 0.5])
    assert metrics.series("kl") == ([], [])
    assert metrics.train[1]["ok"] == 1.0 and "note" not in metrics.train[1]


@pytest.mark.parametrize("content, message", [
    ('{"kind": "train", "step": 1}\n{"kind": "train", "step": 2\n{"kind": "train", "step": 3}\n',
     r"metrics.jsonl:2: not valid JSON: only the last line may be cut"),
    ('{"kind": "train", "step": "3"}\n', r"metrics.jsonl:1: 'step' must be an integer"),
    ('{"step": 3}\n', r"metrics.jsonl:1: metric line has no 'kind'"),
    ("[1, 2]\n", r"metrics.jsonl:1: expected a JSON object"),
    ('{"kind": "info"}\n', r"no 'train' or 'val' metric lines"),
])
def test_malformed_metrics(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "metrics.jsonl").write_text(content)
    with pytest.raises(DataError, match=message):
        load_metrics(tmp_path)


def test_a_cut_last_line_is_dropped_with_a_warning(tmp_path: Path) -> None:
    """What a run killed while logging leaves (and a run still writing may show): the report reads the rest."""
    (tmp_path / "metrics.jsonl").write_text('{"kind": "train", "step": 1, "acc": 0.5}\n{"kind": "train", "st')
    with pytest.warns(UserWarning, match="metrics.jsonl:2: dropping a cut last line"):
        metrics = load_metrics(tmp_path)
    assert metrics.series("acc") == ([1], [0.5])


def test_run_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        check_run_dir(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="file is a file, not a run directory"):
        check_run_dir(tmp_path / "file")
    with pytest.raises(DataError, match="has no metrics.jsonl"):
        check_run_dir(tmp_path)


def test_response_files_sorted_and_filtered(run_dir: Path) -> None:
    (run_dir / "rollouts" / "notes.txt").write_text("ignored")
    (run_dir / "rollouts" / "step_000002.jsonl.tmp").write_text("ignored")
    files = response_files(run_dir)
    assert [s for s, _ in files] == list(range(1, 11)) and files[0][1].name == "step_000001.jsonl"
    assert response_files(run_dir, "missing") == []


def test_responses_stream_and_bad_rows_name_the_line(tmp_path: Path, synthetic) -> None:
    response_row, write_lines = synthetic.response_row, synthetic.write_lines
    path = tmp_path / "step_000004.jsonl"
    bad = {k: v for k, v in response_row(4, 1).items() if k != "reward"}
    write_lines(path, [response_row(4, 0), bad])
    rows = read_responses(path, 4)
    first = next(rows)  # lazy: the good row arrives before the bad one is read
    assert first.reward == 3.0 and first.solved and first.puzzle_id == "p0" and first.length == 100
    with pytest.raises(DataError, match=r"step_000004.jsonl:2: field 'reward' is missing or not int/float"):
        next(rows)
    write_lines(path, [{**response_row(4, 0), "solved": "yes"}])
    with pytest.raises(DataError, match=r":1: field 'solved' is missing or not bool"):
        list(read_responses(path, 4))
    write_lines(path, [{**response_row(4, 0), "length": True}])
    with pytest.raises(DataError, match=r":1: field 'length'"):
        list(read_responses(path, 4))
    for bad_reward in (float("nan"), float("inf")):  # json writes NaN / Infinity, and reads them back
        write_lines(path, [response_row(4, 0), {**response_row(4, 1), "reward": bad_reward}])
        with pytest.raises(DataError, match=r":2: field 'reward' is (nan|inf), not a finite number"):
            list(read_responses(path, 4))


def test_optional_fields_default(tmp_path: Path) -> None:
    path = tmp_path / "step_000007.jsonl"
    row = {"response": "x", "length": 3, "reward": -1, "solved": False, "format_ok": False, "id": None}
    path.write_text(json.dumps(row) + "\n")
    (response,) = read_responses(path, 7)
    assert response.step == 7 and response.puzzle_id == "" and response.n_people is None
    assert response.truncated is False and response.answer_status is None


def test_run_config(run_dir: Path, tmp_path: Path) -> None:
    assert load_run_config(run_dir)["model"]["name"] == "tiny-random"
    assert load_run_config(tmp_path) == {}
    (tmp_path / "config.yaml").write_text("a: [1,\n")
    with pytest.raises(DataError, match="config.yaml: not valid YAML"):
        load_run_config(tmp_path)

"""`logicrl compare RUN…`: two real `logicrl train` runs of the tiny model side by side (files, labels, the
config diff), smoothed curves against a hand computation on hand-written metrics, the eval section from a
`logicrl eval --rescore` directory, and one-line errors with nothing written.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/analysis/test_compare.py -q
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from PIL import Image
from typer.testing import CliRunner

from logicrl.analysis.compare import config_diff, flatten
from logicrl.analysis.plots import auto_window, run_colors, smooth
from logicrl.cli import app
from logicrl.errors import ConfigError, DataError, UserError
from logicrl.evaluate.compare import paired_interval
from logicrl.io import write_jsonl
from logicrl.puzzles.files import dataset_files, load_records
from logicrl.rl.run_log import read_metrics

runner = CliRunner()
REASONING = "Suppose the first speaker lies; then the second claim contradicts the first, so we go back."

TINY = ["--model", "tiny-random", "--steps", "2", "model.device=cpu", "rollout.prompts_per_step=2",
        "rollout.group_size=2", "rollout.max_response_tokens=8", "data.val_puzzles_per_people=1", "val_every=1",
        "threads=1"]


@pytest.fixture(scope="module")
def real_runs(puzzle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two 2-step RL runs of the tiny model that differ in the seed and the learning rate only."""
    root = tmp_path_factory.mktemp("runs")
    runs = []
    for name, seed, lr in (("grpo-a", 0, "1e-3"), ("grpo-b", 1, "2e-3")):
        out = root / name
        result = runner.invoke(app, ["train", "--data", str(puzzle_dir), "--out", str(out), *TINY,
                                     f"seed={seed}", f"optim.lr={lr}"])
        assert result.exit_code == 0, result.output
        runs.append(out)
    return runs[0], runs[1]


def section(page: str, title: str) -> str:
    """The HTML from ``<h2>title`` to the next ``<h2>`` (or the end)."""
    start = page.index(f"<h2>{title}")
    end = page.find("<h2>", start + 4)
    return page[start:] if end < 0 else page[start:end]


def png_sources(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_two_real_runs(real_runs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = real_runs
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", str(a), f"second={b}", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"compare: {out / 'index.html'}" in result.output
    page = (out / "index.html").read_text()
    assert {p.name for p in out.iterdir()} == {"index.html", "comparison.json", "curves_step.png", "curves_time.png"}
    for png in [*png_sources(page), *(p.read_bytes() for p in out.glob("*.png"))]:
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG" and image.size[0] > 500
    assert len(png_sources(page)) == 2
    assert "<td>grpo-a</td>" in page and "<td>second</td>" in page and str(b) in page
    assert "config diff: the runs' configs are equal" not in result.output
    same = runner.invoke(app, ["compare", f"one={a}", f"two={a}", "--out", str(tmp_path / "same")])
    assert same.exit_code == 0 and "config diff: the runs' configs are equal" in same.output, same.output
    # the config diff: exactly the two keys that differ (out_dir is left out by default)
    diff = section(page, "Config diff")
    assert sorted(re.findall(r"<tr><td>([^<]*)</td>", diff)) == ["optim.lr", "seed"]
    assert "<td>0.001</td><td>0.002</td>" in diff and "<td>0</td><td>1</td>" in diff
    assert "model.name" not in diff and "out_dir" in diff  # named as not compared
    assert "<h2>Evaluation" not in page
    summary = json.loads((out / "comparison.json").read_text())
    assert [row["key"] for row in summary["config_diff"]] == ["optim.lr", "seed"]
    assert set(summary["curves"]) == {"reward", "accuracy", "validation accuracy", "response length (tokens)",
                                      "KL to the reference", "entropy"}
    # training time is the running sum of the trainer's time/step
    logged = read_metrics(b, "train")
    reward = summary["curves"]["reward"]["second"]
    assert reward["steps"] == [1, 2] and reward["values"] == [m["reward/mean"] for m in logged]
    assert reward["seconds"] == pytest.approx([logged[0]["time/step"], logged[0]["time/step"]
                                               + logged[1]["time/step"]])
    assert summary["curves"]["validation accuracy"]["grpo-a"]["steps"] == [0, 1, 2]


def hand_run(root: Path, config: dict[str, Any], lines: list[dict[str, Any]]) -> Path:
    root.mkdir(parents=True)
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    write_jsonl(root / "metrics.jsonl", lines)
    return root


def hand_runs(tmp_path: Path) -> tuple[Path, Path]:
    """Run a: reward/mean 1 2 6 3 8 with time/step 1..5; run b: no time/step, `time` stamps 7 s apart."""
    a = hand_run(tmp_path / "a", {"seed": 0, "optim": {"lr": 1e-3, "betas": [0.9, 0.99]}, "out_dir": "a"}, [
        {"kind": "val", "step": 0, "time": 50.0, "val/acc": 0.1},
        *({"kind": "train", "step": s, "time": 100.0 + s, "reward/mean": r, "time/step": float(s)}
          for s, r in zip(range(1, 6), (1.0, 2.0, 6.0, 3.0, 8.0))),
        {"kind": "val", "step": 2, "time": 103.0, "val/acc": 0.5},
        {"kind": "val", "step": 4, "time": 105.0, "val/acc": 0.3},
    ])
    b = hand_run(tmp_path / "b", {"seed": 0, "optim": {"lr": 1e-3, "betas": [0.9, 0.999]}, "out_dir": "b"}, [
        {"kind": "val", "step": 0, "time": 1000.0, "val/acc": 0.2},
        *({"kind": "train", "step": s, "time": 1000.0 + 7 * s, "reward/mean": -float(s)} for s in range(1, 4)),
    ])
    return a, b


def test_smoothed_curves_are_what_is_plotted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """smooth=3, by hand: a's rewards 1 2 6 3 8 -> 1, 1.5, 3, 11/3, 17/3 at 1, 3, 6, 10, 15 s (running sum of
    time/step); its validation 0.1 0.5 0.3 -> 0.1, 0.3, 0.3 at 0, 3 (after step 2), 10 s (after step 4).
    b has no time/step: its times are the stamps minus the first, 7, 14, 21 s."""
    drawn: list[tuple[Axes, str, list[float], list[float]]] = []
    real_plot = Axes.plot

    def recording_plot(self, xs, ys, *args, **kwargs):
        drawn.append((self, kwargs.get("label", ""), list(xs), list(ys)))
        return real_plot(self, xs, ys, *args, **kwargs)

    monkeypatch.setattr(Axes, "plot", recording_plot)
    a, b = hand_runs(tmp_path)
    result = runner.invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "out"), "smooth=3"])
    assert result.exit_code == 0, result.output
    lines = {(ax.get_title(), ax.get_xlabel(), label): (xs, ys) for ax, label, xs, ys in drawn if label}
    reward = [1.0, 1.5, 3.0, 11 / 3, 17 / 3]
    assert lines["reward", "step", "a (smoothed)"] == ([1, 2, 3, 4, 5], pytest.approx(reward))
    assert lines["reward", "training time (s)", "a (smoothed)"] == ([1, 3, 6, 10, 15], pytest.approx(reward))
    assert lines["validation accuracy", "training time (s)", "a (smoothed)"] == (
        [0, 3, 10], pytest.approx([0.1, 0.3, 0.3]))
    assert lines["reward", "training time (s)", "b (smoothed)"] == ([7, 14, 21], pytest.approx([-1, -1.5, -2]))
    assert {title for title, _, _ in lines} == {"reward", "validation accuracy"}  # nothing else was logged
    curves = json.loads((tmp_path / "out" / "comparison.json").read_text())["curves"]
    assert curves["reward"]["a"]["smoothed"] == pytest.approx(reward) and curves["reward"]["a"]["window"] == 3
    assert curves["validation accuracy"]["b"]["seconds"] == [0.0]

    drawn.clear()  # default window: the report's rule, raw below 20 points
    assert runner.invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "raw")]).exit_code == 0
    assert not any("smoothed" in label for _, label, _, _ in drawn)
    assert ([1, 2, 3, 4, 5], [1.0, 2.0, 6.0, 3.0, 8.0]) in [(xs, ys) for _, label, xs, ys in drawn if label == "a"]


def test_a_killed_compares_temporary_files_go_once_stale(tmp_path: Path) -> None:
    """A compare killed mid-write leaves `.NAME.*.tmp`; the next one deletes those over an hour old (a younger one
    may be another compare's, writing now), as report does."""
    a, b = hand_runs(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    stale, fresh = out / ".index.html.a34gapxe.tmp", out / ".curves_time.png.ef5_84un.tmp"
    for leftover in (stale, fresh):
        leftover.write_text("half")
    os.utime(stale, (time.time() - 2 * 3600,) * 2)
    assert runner.invoke(app, ["compare", str(a), str(b), "--out", str(out)]).exit_code == 0
    assert not stale.exists() and fresh.exists() and (out / "index.html").is_file()


def test_a_compare_and_a_report_refuse_each_others_folder(tmp_path: Path) -> None:
    """Both write index.html: `compare A B --out A/report` replaced A's report page (its PNGs left beside the
    comparison), and `report A --out <a compare's folder>` the comparison. Each refuses the other's folder, with
    nothing written; the same command again into its own folder goes on."""
    a, b = hand_runs(tmp_path)
    report, comparison = a / "report", tmp_path / "compare"
    for args in (["report", str(a)], ["compare", str(a), str(b), "--out", str(comparison)]):
        assert runner.invoke(app, args).exit_code == 0  # twice: a rerun into its own folder
        assert runner.invoke(app, args).exit_code == 0
    pages = {folder: (folder / "index.html").read_text() for folder in (report, comparison)}
    refused = {"report": (["report", str(a), "--out", str(comparison)], "a comparison of runs (`logicrl compare`)"),
               "compare": (["compare", str(a), str(b), "--out", str(report)], "a run's report (`logicrl report`)")}
    for args, holds in refused.values():
        result = runner.invoke(app, args)
        assert isinstance(result.exception, UserError) and f"holds {holds}" in str(result.exception)
    assert {folder: (folder / "index.html").read_text() for folder in (report, comparison)} == pages
    assert not (report / "comparison.json").exists() and not (comparison / "report.json").exists()
    result = runner.invoke(app, ["data", "generate", "--people", "3", "--train", "1", "--out", str(report)])
    assert isinstance(result.exception, UserError) and "holds a run's report" in str(result.exception)


def test_brackets_dates_and_wall_clock_runs(tmp_path: Path) -> None:
    """Run names and config values are printed as they are, not as rich markup (``grpo[lr=1e-6]`` lost its
    bracket, so two runs printed as ``grpo``; ``[/answer]`` was a MarkupError after the files were written); a
    YAML date in a config is written as text (comparison.json failed half-way); a run without time/step is
    named on the page as timed by the wall clock."""
    a, b = hand_runs(tmp_path)
    named = {"grpo[lr=1e-6]": a, "grpo[lr=2e-6]": b}
    changes = (("Close with [/answer].", "2024-01-01"), ("Think in [think] tags.", "2024-02-01"))
    for (name, run), (prompt, started) in zip(named.items(), changes, strict=True):
        config = yaml.safe_load((run / "config.yaml").read_text())
        (run / "config.yaml").write_text(yaml.safe_dump({**config, "prompt": prompt}) + f"started: {started}\n")
        run.rename(tmp_path / name)
    out = tmp_path / "out"
    result = runner.invoke(app, ["compare", *(str(tmp_path / name) for name in named), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert re.search(r"key +┃ +grpo\[lr=1e-6\] +┃ +grpo\[lr=2e-6\] +┃", result.output), result.output
    assert "Close with [/answer]." in result.output and "Think in [think] tags." in result.output
    summary = json.loads((out / "comparison.json").read_text())
    assert summary["timed_by_stamps"] == ["grpo[lr=2e-6]"]
    assert {"key": "started", "values": {"grpo[lr=1e-6]": "2024-01-01", "grpo[lr=2e-6]": "2024-02-01"}} in \
        summary["config_diff"]
    page = (out / "index.html").read_text()
    assert "Runs without time/step (grpo[lr=2e-6]): wall-clock time" in page
    assert runner.invoke(app, ["compare", str(tmp_path / "grpo[lr=1e-6]"), f"again={tmp_path / 'grpo[lr=1e-6]'}",
                               "--out", str(tmp_path / "both")]).exit_code == 0
    assert "Runs without time/step" not in (tmp_path / "both" / "index.html").read_text()


def test_run_colours_never_repeat() -> None:
    assert run_colors(3) == ["C0", "C1", "C2"]
    for count in (10, 11, 20, 21, 40):
        colours = [to_hex(c) for c in run_colors(count)]
        assert len(colours) == count and len(set(colours)) == count, count


def test_config_diff() -> None:
    assert flatten({"optim": {"lr": 1, "betas": [0.9]}, "empty": {}, "seed": 0}) == {
        "optim.lr": 1, "optim.betas": [0.9], "empty": {}, "seed": 0}
    configs = {"x": {"seed": 0, "optim": {"lr": 1e-3, "betas": [0.9, 0.99]}, "note": None, "out_dir": "x"},
               "y": {"seed": 0, "optim": {"lr": 1e-3, "betas": [0.9, 0.999]}, "out_dir": "y", "new": {"k": 1}}}
    assert config_diff(configs, ["out_dir"]) == [
        {"key": "optim.betas", "values": {"x": [0.9, 0.99], "y": [0.9, 0.999]}},
        {"key": "note", "values": {"x": None}},  # absent differs from null
        {"key": "new.k", "values": {"y": 1}},
    ]
    assert [row["key"] for row in config_diff(configs, ["optim", "note", "new"])] == ["out_dir"]
    assert config_diff({"x": configs["x"], "z": dict(configs["x"])}, []) == []


def eval_dir_of_two_models(puzzle_dir: Path, out: Path) -> Path:
    """`logicrl eval --rescore` on hand-written samples: `base` answers every test puzzle right, `rl` the
    2-person ones only."""
    def answer(record: dict[str, Any], right: bool) -> str:
        text = record["solution_text_format"]
        flipped = text.replace("knight", "@").replace("knave", "knight").replace("@", "knave")
        return f" {REASONING}</think><answer>{text if right else flipped}</answer>"

    records = load_records(dataset_files(puzzle_dir, "test"))
    for model in ("base", "rl"):
        write_jsonl(out / "samples" / f"{model}.jsonl", [
            {"model": model, "id": r["id"], "n_people": r["n_people"], "sample": 0, "length": 10,
             "truncated": False, "prefilled_think": True,
             "response": answer(r, right=model == "base" or r["n_people"] == 2)} for r in records])
    result = runner.invoke(app, ["eval", "--rescore", "--data", str(puzzle_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_eval_section(puzzle_dir: Path, tmp_path: Path) -> None:
    evaluated = eval_dir_of_two_models(puzzle_dir, tmp_path / "eval")
    a, b = hand_runs(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["compare", str(a), str(b), "--eval", str(evaluated), "--out", str(out)])
    assert result.exit_code == 0, result.output
    evaluation = section((out / "index.html").read_text(), "Evaluation")
    assert "<h3>Accuracy by number of people</h3>" in evaluation
    assert "<tr><td>base</td><td>1.00</td><td>1.00</td><td>1.00</td>" in evaluation
    assert "<tr><td>rl</td><td>1.00</td><td>0.00</td><td>0.50</td>" in evaluation
    assert "Paired difference vs base" in evaluation
    # 4 three-person puzzles, each solved by base and not by rl: Δ = −1, the interval of the table (0, 4, 0, 0)
    low, high = paired_interval(0, 4, 0, 0)
    assert low == pytest.approx(-1.0) and -0.6 < high < -0.3
    assert f"<td>1.00→0.00 -1.00 [{low:+.2f}, {high:+.2f}] (n=4)</td>" in evaluation
    assert "Paired difference vs base" in result.output  # also on the console
    tables = json.loads((out / "comparison.json").read_text())["eval_tables"]
    assert [t["title"] for t in tables] == ["Accuracy by number of people",
                                            "Paired difference vs base (first sample per puzzle; Δ and 95% interval)"]


def test_user_errors_write_nothing(puzzle_dir: Path, tmp_path: Path) -> None:
    a, b = hand_runs(tmp_path)
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "empty-eval").mkdir()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "no-models").mkdir()
    (tmp_path / "no-models" / "results.json").write_text('{"models": {}}')
    one_model = eval_dir_of_two_models(puzzle_dir, tmp_path / "eval")
    (one_model / "compare.json").unlink()
    twin = hand_run(tmp_path / "other" / "a", {}, [{"kind": "train", "step": 1, "acc": 0.5}])
    out = tmp_path / "out"
    cases = [
        ([str(a)], UserError, "give at least two run directories to compare (got 1)"),
        ([], UserError, "give at least two run directories to compare (got 0)"),
        ([str(a), str(tmp_path / "nope")], DataError, "does not exist"),
        ([str(a), str(tmp_path / "not-a-run")], DataError, "has no metrics.jsonl"),
        ([str(a), str(twin)], UserError, "two runs share the label 'a': name them LABEL=DIR"),
        ([str(a), str(b), "--eval", str(tmp_path / "empty-eval")], DataError, "has no results.json"),
        ([str(a), str(b), "--eval", str(tmp_path / "afile")], DataError, "afile is a file, not an eval directory"),
        ([str(a), str(b), "--eval", str(one_model)], DataError, "has no compare.json"),
        ([str(a), str(b), "--eval", str(tmp_path / "no-models")], DataError, "holds no model's results"),
        ([str(a), str(b), "smooth=0"], ConfigError, "smooth"),
        ([str(a), str(b), "smoth=5"], UserError,  # a misspelt key used to read as LABEL=DIR: "run directory 5"
         "'smoth=5': no run directory '5', and 'smoth' is not a config key of compare (keys: smooth,"),
    ]
    for args, kind, message in cases:
        result = runner.invoke(app, ["compare", *args, "--out", str(out)])
        assert isinstance(result.exception, kind), (args, result.output)
        assert message in str(result.exception) and "\n" not in str(result.exception)
        assert not out.exists()
    assert runner.invoke(app, ["compare", str(a), f"b={twin}", "--out", str(out)]).exit_code == 0


def test_console_error_is_one_line_exit_2(tmp_path: Path) -> None:
    code = "from logicrl.cli import main; main()"
    result = subprocess.run([sys.executable, "-c", code, "compare", str(tmp_path), "--out", str(tmp_path / "o")],
                            capture_output=True, text=True, timeout=120, check=False,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 2
    assert result.stderr == "error: give at least two run directories to compare (got 1)\n"


def test_the_default_window_smooths_a_50_step_run() -> None:
    """Raw below 20 points; from 20 on max(5, points // 20): 5 for a 50-step run, 20 for 400 points; and the
    trailing mean of 5 over 0 0 0 0 5 5 is 0, 0, 0, 0, 1, 2 (the first points average fewer)."""
    assert [auto_window(n) for n in (1, 19, 20, 50, 99, 100, 400)] == [1, 1, 5, 5, 5, 5, 20]
    assert smooth([0, 0, 0, 0, 5, 5], 5) == pytest.approx([0, 0, 0, 0, 1, 2])

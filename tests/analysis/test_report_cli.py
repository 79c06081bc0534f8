"""`logicrl report RUN_DIR` through the CLI: files, console summary, options, one-line errors (exit 2)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from logicrl.cli import app
from logicrl.errors import ConfigError, DataError

runner = CliRunner()


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    """The real console entry point in a subprocess (what a user's shell does), with ``env`` added."""
    code = "from logicrl.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_report_default_out(run_dir: Path) -> None:
    result = runner.invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert (run_dir / "report" / "index.html").is_file() and "report:" in result.output
    assert re.search(r"summary +│ +50 │ +0.0% → 100.0% │ +sudden │ +6", result.output), result.output
    assert re.search(r"^\d+ responses \(rollouts\), \d+ bins? of up to \d+ steps$", result.output, re.MULTILINE), result.output


def test_report_refuses_to_write_over_a_run(run_dir: Path) -> None:
    (run_dir / "config.yaml").write_text("steps: 2\n")
    (run_dir / "summary.json").write_text('{"finished": true}')
    result = runner.invoke(app, ["report", str(run_dir), "--out", str(run_dir)])
    assert "holds a run" in str(result.exception)
    assert (run_dir / "summary.json").read_text() == '{"finished": true}'
    (run_dir / "config.yaml").unlink()
    (run_dir / "summary.json").unlink()


def test_report_output_is_whole_in_a_narrow_terminal(run_dir: Path) -> None:
    """A 50-column terminal neither wraps the report's path nor squeezes table cells into "…"."""
    result = run_cli("report", str(run_dir), COLUMNS="50")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"report: {run_dir / 'report' / 'index.html'}" in lines
    assert f"{run_dir}: metrics" in result.stdout and "…" not in result.stdout
    assert re.search(r"summary +│ +50 │ +0.0% → 100.0% │ +sudden │ +6", result.stdout), result.stdout


def test_report_options(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere"
    result = runner.invoke(app, ["report", str(run_dir), "--out", str(out), "--bin", "2",
                                 "--steps-every", "2", "--words", "lies, summary", "aha_window=1",
                                 "examples=2"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "report.json").read_text())
    assert summary["bin_size"] == 2 and summary["files_read"] == 5 and summary["responses"] == 50
    assert [row["word"] for row in summary["words"]] == ["lies", "summary"]
    assert not (run_dir / "report").exists()


def test_missing_run_dir_is_one_line_exit_2(tmp_path: Path) -> None:
    missing = run_cli("report", str(tmp_path / "nope"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: run directory ")
    assert "does not exist" in missing.stderr
    assert missing.stderr.count("\n") == 1
    (tmp_path / "afile").write_text("x")  # no --out: the run directory is named, not its default RUN_DIR/report
    a_file = run_cli("report", str(tmp_path / "afile"))
    assert a_file.returncode == 2 and a_file.stderr == (
        f"error: {tmp_path / 'afile'} is a file, not a run directory (pass the out_dir of `logicrl train`)\n")


def test_bad_inputs_raise_user_errors(run_dir: Path) -> None:
    """The CLI's main() prints these as `error: ...` with exit 2 (checked above on one of them)."""
    with (run_dir / "rollouts" / "step_000003.jsonl").open("a") as f:
        f.write("{broken\n")
    broken = runner.invoke(app, ["report", str(run_dir)])
    assert isinstance(broken.exception, DataError)
    assert "step_000003.jsonl:11: not valid JSON" in str(broken.exception)
    assert not (run_dir / "report").exists()  # nothing written before the data is read
    bad_option = runner.invoke(app, ["report", str(run_dir), "--source", "train"])
    assert isinstance(bad_option.exception, ConfigError) and str(bad_option.exception).startswith("source")
    no_words = runner.invoke(app, ["report", str(run_dir), "--words", " , "])  # an empty table and a plot warning
    assert isinstance(no_words.exception, ConfigError) and "give at least one thinking word" in str(no_words.exception)
    (run_dir / "metrics.jsonl").unlink()
    assert "has no metrics.jsonl" in str(runner.invoke(app, ["report", str(run_dir)]).exception)

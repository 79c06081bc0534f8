"""`logicrl train` through the console entry point: a short real run, resume, and one-line user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from logicrl.rl.run_log import read_metrics


def run_cli(*args: str) -> subprocess.CompletedProcess:
    code = "from logicrl.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          env={"OMP_NUM_THREADS": "1", **__import__("os").environ})


TINY = ["--model", "tiny-random", "model.device=cpu", "rollout.prompts_per_step=2", "rollout.group_size=2",
        "rollout.max_response_tokens=8", "data.val_puzzles_per_people=1", "val_every=1", "threads=1"]


def test_train_then_resume_with_more_steps(puzzle_dir, tmp_path):
    out = tmp_path / "run"
    first = run_cli("train", "--data", str(puzzle_dir), "--out", str(out), "--steps", "1", *TINY)
    assert first.returncode == 0, first.stderr
    assert "final validation" in first.stderr
    again = run_cli("train", "--data", str(puzzle_dir), "--out", str(out), "--steps", "1", *TINY)
    assert again.returncode == 2 and again.stderr.strip().splitlines()[-1].startswith("error: ")
    resumed = run_cli("train", "--resume", str(out), "--steps", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert [m["step"] for m in read_metrics(out, "train")] == [1, 2] and "nothing left" not in resumed.stderr
    finished = run_cli("train", "--resume", str(out))  # it said nothing of being done
    assert finished.returncode == 0
    assert f"note: {out} has finished its 2 steps: nothing left to train\n" in finished.stderr
    assert [m["step"] for m in read_metrics(out, "train")] == [1, 2]


@pytest.mark.parametrize(("args", "message"), [
    (["optim.learning_rate=1"], "unknown config key 'optim.learning_rate'"),
    (["algorithm.advantage=ppo2"], "unknown advantage 'ppo2'"),
    (["rollout.group_size=1", "algorithm.advantage=grpo"], "set rollout.group_size >= 2"),
    (["--data", "/nonexistent/data"], "no such file or dataset directory"),
    (["--model", "/nonexistent/model"], "/nonexistent/model"),
])
def test_user_errors_are_one_line(puzzle_dir, tmp_path, args, message):
    base = ["train", "--out", str(tmp_path / "run"), "--data", str(puzzle_dir), "model.device=cpu"]
    result = run_cli(*base, *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


def test_resume_of_a_directory_without_checkpoints(tmp_path):
    result = run_cli("train", "--resume", str(tmp_path))
    assert result.returncode == 2 and "not a run directory" in result.stderr


def test_resume_applies_allowed_changes_and_refuses_the_rest(puzzle_dir, tmp_path):
    out = tmp_path / "run"
    first = run_cli("train", "--data", str(puzzle_dir), "--out", str(out), "--steps", "2", "save_every=1",
                    "keep_last=3", "optim.lr=1e-5", *TINY)
    assert first.returncode == 0, first.stderr

    refused = run_cli("train", "--resume", str(out), "algorithm.kl_coef=0.1", "reward.correct=5")
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert "algorithm.kl_coef, reward.correct cannot change when resuming" in lines[0]

    # refused before any model is loaded, the run left as it was: a schedule that ends before the checkpoint
    # (it used to be refused later, as "the training data or its order changed", after config.yaml had been
    # rewritten to steps=1), and another run directory given to a resume
    stored = (out / "config.yaml").read_bytes()
    short = run_cli("train", "--resume", str(out), "--steps", "1")
    assert short.returncode == 2, short.stderr
    assert "the run has reached step 2, but it would now end at step 1: give steps=2 or more" in short.stderr
    elsewhere = run_cli("train", "--resume", str(out), "--out", str(tmp_path / "other"))
    assert elsewhere.returncode == 2 and f"--resume continues {out} in place" in elsewhere.stderr
    assert (out / "config.yaml").read_bytes() == stored and not (out / "resumes.jsonl").exists()
    assert not (tmp_path / "other").exists()

    same_data = str(puzzle_dir / ".." / puzzle_dir.name)  # another spelling of the same folder: no change
    resumed = run_cli("train", "--resume", str(out), "--steps", "3", "optim.lr=1e-6", "--data", same_data)
    assert resumed.returncode == 0, resumed.stderr
    lrs = {m["step"]: m["lr"] for m in read_metrics(out, "train")}
    assert lrs == {1: 1e-5, 2: 1e-5, 3: 1e-6}  # the new rate is used, not the optimizer state's
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["optim"]["lr"] == 1e-6 and saved["steps"] == 3
    assert Path(saved["data"]["train"]).is_absolute()
    change = json.loads((out / "resumes.jsonl").read_text().splitlines()[-1])["changed"]
    assert change == {"steps": [2, 3], "optim.lr": [1e-5, 1e-6]}

    # a cut last metrics line and a broken newest checkpoint: resume falls back to step 2 with a warning,
    # and a plain --resume keeps steps=3 from config.yaml
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"kind": "train", "st')
    (out / "checkpoints" / "step_000003" / "trainer_state.pt").write_bytes(b"truncated")
    (out / "summary.json").unlink()
    again = run_cli("train", "--resume", str(out))
    assert again.returncode == 0, again.stderr
    assert "step_000003: cannot be loaded" in again.stderr
    assert [m["step"] for m in read_metrics(out, "train")] == [1, 2, 3]
    assert json.loads((out / "summary.json").read_text())["steps"] == 3

    # every checkpoint broken: --resume and a new run both say how to get out (they used to send to each other)
    for state in (out / "checkpoints").glob("step_*/trainer_state.pt"):
        state.write_bytes(b"truncated")
    stuck = run_cli("train", "--resume", str(out))
    assert stuck.returncode == 2 and f"are broken): delete {out} to start a new run there" in stuck.stderr


def test_report_on_a_real_train_run(puzzle_dir, tmp_path):
    """`logicrl report` reads what `logicrl train` writes: its metrics, rollouts and validation files."""
    out = tmp_path / "run"
    trained = run_cli("train", "--data", str(puzzle_dir), "--out", str(out), "--steps", "2", *TINY)
    assert trained.returncode == 0, trained.stderr
    report = run_cli("report", str(out))
    assert report.returncode == 0, report.stderr
    assert f"report: {out / 'report' / 'index.html'}" in report.stdout.splitlines()
    summary = json.loads((out / "report" / "report.json").read_text())
    assert summary["source"] == "rollouts" and summary["files_read"] == summary["files_total"] == 2
    assert summary["responses"] == 2 * 2 * 2  # steps × prompts_per_step × group_size
    rewards = [m["reward/mean"] for m in read_metrics(out, "train")]
    row = next(row for row in summary["metrics"] if row["metric"] == "reward/mean")
    assert (row["first"], row["last"]) == (rewards[0], rewards[-1])
    assert [row["people"] for row in summary["val_people"]] == [2, 3]  # one held-out puzzle per level


def test_the_final_validation_line_is_one_line_of_json(monkeypatch):
    """Piped output is 80 columns wide: rich wrapped the line, which a script could then not parse."""
    import io

    from rich.console import Console

    import logicrl.cli.train as train_cli

    out = io.StringIO()
    monkeypatch.setattr(train_cli, "console", Console(file=out, width=40, markup=False))
    final = {"val/acc": 0.25, "val/format_ok": 0.875, "val/reward": -1.125, "val/length": 212.0, "val/2ppl/acc": 0.5}
    train_cli._print_final(final)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("final validation: ")
    assert json.loads(lines[0].removeprefix("final validation: ")) == {
        "val/acc": 0.25, "val/format_ok": 0.875, "val/reward": -1.125, "val/length": 212.0}

"""Fail fast: `logicrl train`, `logicrl sft` and `logicrl eval` check the config, the data and the output
folder before they load, build, convert or download any model, and report one line; typed options stay
typed."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from logicrl.cli import main
from logicrl.cli.runs import run_config
from logicrl.config import save_config
from logicrl.evaluate import runner
from logicrl.io import LOCK_FILE, FolderLock
from logicrl.models import loading
from logicrl.rl import policy, sft
from logicrl.rl.config import TrainConfig

NEEDS_PROC = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, list[str]]:
    """`logicrl ARGS` in this process (so that a test can patch what it calls): exit status, stderr lines."""
    monkeypatch.setattr(sys, "argv", ["logicrl", *args])
    with pytest.raises(SystemExit) as done:
        main()
    return done.value.code, capsys.readouterr().err.strip().splitlines()


@pytest.fixture
def fresh_machine(monkeypatch, tmp_path):
    """An empty model cache, as on a fresh machine, where loading, building or converting any model fails
    the test: the default model would print progress bars and take minutes before a user error."""
    cache = tmp_path / "empty-cache"
    monkeypatch.setenv("LOGICRL_CACHE", str(cache))

    def refuse(*args, **kwargs):
        raise AssertionError(f"a model was loaded or built before the inputs were checked: {args}")

    for module in (policy, sft, runner):
        monkeypatch.setattr(module, "load_model_and_tokenizer", refuse)
    monkeypatch.setattr(loading, "_build_cached", refuse)
    return cache


def only_train_split(puzzle_dir, tmp_path):
    """A copy of the dataset without its held-out (test) split."""
    out = tmp_path / "only-train"
    for path in puzzle_dir.glob("*ppl/train.jsonl"):
        (out / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, out / path.parent.name / path.name)
    return out


@pytest.mark.parametrize(("command", "args", "message"), [
    ("train", ["--data", "/nonexistent/data"], "/nonexistent/data: no such file or dataset directory"),
    ("sft", ["--data", "/nonexistent/data"], "/nonexistent/data: no such file or dataset directory"),
    ("train", ["data.people=[7]"], "no train puzzles with 7 people (found: 2, 3)"),
    ("train", ["data.people=[2,7,9]"], "no train puzzles with 7, 9 people (found: 2, 3)"),
    ("train", ["--data", "ONLY_TRAIN"], "no *ppl/test.jsonl or .parquet files"),
    ("sft", ["--data", "ONLY_TRAIN"], "no *ppl/test.jsonl or .parquet files"),
    ("train", ["rollout.prompts_per_step=100"], "cannot fill one batch of 100"),
    ("train", ["--out", "A_FILE"], "a-file is a file, not a folder; choose another out_dir"),
    ("sft", ["--out", "UNDER_A_FILE"], "a-file is a file, not a folder; choose another out_dir"),
    pytest.param("train", ["--out", "/proc/logicrl-run"], "nothing can be written in /proc",
                 marks=NEEDS_PROC),
    ("sft", ["--out", "A_RUN"], "already holds a `logicrl sft` run: continue it with `logicrl sft --resume"),
    ("train", ["--out", "A_RUN"], "already holds a `logicrl sft` run: continue it with `logicrl sft --resume"),
    ("sft", ["--out", "NO_CONFIG"], "holds checkpoints but no config.yaml, so it cannot be resumed: delete it"),
    ("train", ["--out", "A_DATASET"], "holds a dataset (`logicrl data generate`) (manifest.json)"),
    ("train", ["--data", "ONE_FILE"], "is a single file, so it holds no held-out puzzles to validate on: give data.val"),
    ("sft", ["--data", "ONE_FILE"], "is a single file, so it holds no held-out puzzles"),
    ("train", ["--model", "/nonexistent/model"], "model path '/nonexistent/model' does not exist"),
    ("train", ["model.device=gpu"], "unknown device 'gpu': use 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    ("sft", ["model.device=gpu"], "unknown device 'gpu'"),
    ("train", ["optim.betas=[2,3]"], "optim.betas=[2.0, 3.0]: each in [0, 1), e.g. [0.9, 0.999]"),
])
def test_inputs_are_checked_before_any_model_loads(fresh_machine, puzzle_dir, tmp_path, monkeypatch, capsys,
                                                   command, args, message):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-run").mkdir()
    (tmp_path / "a-run" / "checkpoints" / "step_000002").mkdir(parents=True)
    (tmp_path / "a-run" / "checkpoints" / "step_000002" / "trainer_state.pt").write_bytes(b"")
    shutil.copytree(tmp_path / "a-run", tmp_path / "no-config")
    (tmp_path / "a-run" / "config.yaml").write_text("mode: template\nlr: 1.0e-05\n")  # an sft run's keys
    names = {"ONLY_TRAIN": str(only_train_split(puzzle_dir, tmp_path)), "A_FILE": str(tmp_path / "a-file"),
             "A_RUN": str(tmp_path / "a-run"), "UNDER_A_FILE": str(tmp_path / "a-file" / "run"),
             "NO_CONFIG": str(tmp_path / "no-config"), "A_DATASET": str(tmp_path / "a-dataset"),
             "ONE_FILE": str(puzzle_dir / "2ppl" / "train.jsonl")}
    shutil.copytree(puzzle_dir, tmp_path / "a-dataset")
    cpu = [] if any(arg.startswith("model.device=") for arg in args) else ["model.device=cpu"]  # (a key once)
    base = [command, "--out", str(tmp_path / "run"), "--data", str(puzzle_dir), *cpu]
    status, lines = run_main(monkeypatch, capsys, *base, *(names.get(arg, arg) for arg in args))
    assert status == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "run").exists() and not fresh_machine.exists()


@pytest.mark.parametrize("value", ["2025-03-01", "yes", "0123"])
def test_shortcut_options_keep_their_type(value, fresh_machine, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status, lines = run_main(monkeypatch, capsys, "train", "--out", value, "--data", "/nonexistent/data")
    assert status == 2 and lines == ["error: /nonexistent/data: no such file or dataset directory"]
    cfg = run_config(TrainConfig, None, None, None, {"out_dir": Path(value), "data.train": Path(value),
                                                      "model.name": value, "steps": None})
    assert (cfg.out_dir, cfg.data.train, cfg.model.name) == (Path(value), Path(value), value)
    run = tmp_path / "run"  # on resume, the options reach the stored config unretyped too
    save_config(TrainConfig(model={"name": value}, out_dir=run), run / "config.yaml")
    resumed = run_config(TrainConfig, None, run, None, {"model.name": value, "steps": 3})
    assert (resumed.model.name, resumed.steps, resumed.out_dir) == (value, 3, run)


@pytest.mark.parametrize(("args", "message"), [
    (["-m", "tiny-random", "--out", "A_FILE"], "a-file is a file, not a folder; choose another --out"),
    (["-m", "tiny-random", "--out", "SAMPLES_FILE"], "samples is a file, not a folder; choose another --out"),
    pytest.param(["-m", "tiny-random", "--out", "/proc/logicrl-eval"], "nothing can be written in /proc",
                 marks=NEEDS_PROC),
    (["-m", "tiny-random", "--out", "LOCKED"], "locked is in use by another logicrl process (pid 4242)"),
    (["-m", "tiny-random", "-m", "/nonexistent/model"], "model path '/nonexistent/model' does not exist"),
    (["-m", "tiny-random", "--data", "/nonexistent/data"], "no such file or dataset directory"),
])
def test_eval_checks_before_the_first_model_loads(fresh_machine, puzzle_dir, tmp_path, monkeypatch, capsys,
                                                  args, message):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "out-with-a-file" / "samples").parent.mkdir()
    (tmp_path / "out-with-a-file" / "samples").write_text("x")
    names = {"A_FILE": str(tmp_path / "a-file"), "SAMPLES_FILE": str(tmp_path / "out-with-a-file"),
             "LOCKED": str(tmp_path / "locked")}
    held = FolderLock(tmp_path / "locked")  # another eval writing there: a lock of this process, under the
    (tmp_path / "locked" / LOCK_FILE).write_text("4242\n")  # pid another process would have written
    base = ["eval", "--data", str(puzzle_dir), "--out", str(tmp_path / "out"), "--device", "cpu"]
    status, lines = run_main(monkeypatch, capsys, *base, *(names.get(arg, arg) for arg in args))
    assert status == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "out").exists() and not fresh_machine.exists()
    held.release()


@pytest.mark.parametrize("command", [
    ["data", "generate", "--people", "2", "--train", "3", "--test", "1"],
    ["data", "perturb", "PUZZLES"],
    ["verl", "export", "--data", "PUZZLES"],
    ["report", "RUN"],
    ["compare", "RUN", "RUN"],
])
@pytest.mark.parametrize("out", ["UNDER_A_FILE", pytest.param("/proc/logicrl-out", marks=NEEDS_PROC)])
def test_commands_refuse_an_output_folder_that_cannot_be_made(puzzle_dir, tmp_path, monkeypatch, capsys,
                                                             command, out):
    """Every command that writes files names its --out in one line, before any work, when a file stands on
    its path or nothing can be created there (no traceback, nothing written)."""
    (tmp_path / "a-file").write_text("x")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1, "reward/mean": 0.5}\n')
    names = {"PUZZLES": str(puzzle_dir), "RUN": str(run), "UNDER_A_FILE": str(tmp_path / "a-file" / "out")}
    before = sorted(tmp_path.rglob("*"))
    out = names.get(out, out)
    status, lines = run_main(monkeypatch, capsys, *(names.get(a, a) for a in command), "--out", out)
    assert status == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: --out {out}: "), lines
    reason = "nothing can be written in /proc" if out.startswith("/proc") else "is a file, not a folder"
    assert reason in lines[0]
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(("command", "config_class"), [("train", TrainConfig), ("sft", sft.SFTConfig)])
def test_the_overrides_shown_in_help_are_valid_keys(command, config_class):
    """`logicrl sft --help` showed optim.lr=1e-6, which sft refuses (its key is lr)."""
    import re

    from typer.testing import CliRunner

    from logicrl.cli import app
    from logicrl.config import load_config

    words = CliRunner().invoke(app, [command, "--help"], terminal_width=200).output.replace("│", " ").split()
    examples = re.search(r"overrides: [^(]*\(([^)]*)\)", " ".join(words)).group(1).split()
    assert examples and all("=" in example for example in examples)
    load_config(config_class, None, examples)

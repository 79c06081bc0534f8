"""`logicrl experiment`: the research questions' files validate, the plan skips, resumes and resolves runs, and
a two-run experiment on the tiny model runs end to end, then resumes as a no-op."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from logicrl.cli import check_command_line
from logicrl.cli.experiment import check_run_labels, check_runs
from logicrl.config import load_config
from logicrl.errors import ConfigError, UserError
from logicrl.experiment import ExperimentConfig, plan, resolve_args
from logicrl.rl.config import TrainConfig
from logicrl.rl.sft import SFTConfig

ROOT = Path(__file__).resolve().parents[2]
RQ_FILES = sorted((ROOT / "configs" / "rq").glob("*.yaml"))


@pytest.mark.parametrize("path", RQ_FILES, ids=lambda p: p.stem)
def test_every_research_question_file_and_its_runs_validate(path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the files name configs/… relative to the repository
    cfg = load_config(ExperimentConfig, path)
    classes = {"train": TrainConfig, "sft": SFTConfig}
    trained_on: dict[str, list[int]] = {}
    for label in cfg.runs:
        spec = cfg.run(label)
        run = load_config(classes[spec.command], spec.config, spec.overrides,
                          **{"model.name": spec.model, "data.train": spec.data})
        assert run.data.train == (spec.data or run.data.train)
        if getattr(run.data, "schedule", "mixed") != "mixed":  # a curriculum of one level would be the mixed run
            assert len(run.data.people) > 1, (label, run.data.people)
        trained_on[label] = run.data.people
    if cfg.memorization is not None:  # twins of training puzzles every measured run trained on
        measured = cfg.memorization.runs or list(cfg.runs)
        assert len({tuple(trained_on[label]) for label in measured}) == 1, trained_on
    for step in plan(cfg):  # every command of the plan parses, its eval arguments included
        check_command_line(step.args)
    assert len(RQ_FILES) == 10 and {p.name.split(".")[1] for p in RQ_FILES} == {"cpu", "paper"}


def _experiment(tmp_path: Path, **extra) -> ExperimentConfig:
    body = {"question": "q", "out_dir": str(tmp_path / "x"),
            "defaults": {"command": "train", "config": "a.yaml", "data": "d", "overrides": ["steps=2"]},
            "runs": {"cold": {"command": "sft", "config": "s.yaml"},
                     "rl": {"model": "@cold", "overrides": ["optim.lr=1e-6"]},
                     "rl2": {"model": "base"}},
            **extra}
    return ExperimentConfig.model_validate(body)


def finish_runs(cfg: ExperimentConfig, out: Path) -> None:
    """Every run of ``cfg`` finished under ``out``: its folder with a summary.json naming it."""
    for label in cfg.runs:
        (out / label).mkdir(parents=True)
        (out / label / "summary.json").write_text(f'{{"run": "{label}"}}')


def test_plan_fresh_finished_and_interrupted_runs(tmp_path):
    cfg = _experiment(tmp_path, eval={"baseline": "base=tiny", "args": ["--limit", 3]})
    steps = {s.what: s for s in plan(cfg)}
    out = tmp_path / "x"
    assert steps["run cold"].args == ("sft", "--config", "s.yaml", "--out", str(out / "cold"), "--data", "d",
                                      "steps=2")
    assert steps["run rl"].args[-3:] == ("d", "steps=2", "optim.lr=1e-6")  # defaults' overrides first
    assert "--model" in steps["run rl"].args and "@cold" in steps["run rl"].args
    assert steps["eval"].args == ("eval", "-m", "base=tiny", "-m", "cold=@cold", "-m", "rl=@rl", "-m", "rl2=@rl2",
                                  "--out", str(out / "eval"), "--limit", "3")
    assert steps["compare"].args[1:3] == (f"rl={out / 'rl'}", f"rl2={out / 'rl2'}")  # RL runs only
    (out / "cold").mkdir(parents=True)
    (out / "cold" / "summary.json").write_text("{}")
    (out / "rl" / "checkpoints" / "step_000004").mkdir(parents=True)
    (out / "rl" / "checkpoints" / "step_000004" / "trainer_state.pt").write_text("")
    steps = {s.what: s for s in plan(cfg)}
    assert steps["run cold"].skip and steps["run rl"].args == ("train", "--resume", str(out / "rl"))
    assert steps["run rl2"].skip is None and steps["run rl2"].args[0:2] == ("train", "--config")


def test_a_measurement_is_done_only_for_the_arguments_and_runs_it_was_made_from(tmp_path):
    from logicrl.experiment import MEASURED, measurement_record

    cfg = _experiment(tmp_path, eval={"args": ["--limit", 3]})
    out = tmp_path / "x"
    finish_runs(cfg, out)
    (out / "eval").mkdir()
    (out / "eval" / "results.json").write_text("{}")
    step = next(s for s in plan(cfg) if s.what == "eval")
    assert step.skip == f"done ({out / 'eval'})" and step.measures == ("cold", "rl", "rl2")  # no record: as before
    (out / "eval" / MEASURED).write_text(json.dumps(measurement_record(cfg, step.args, step.measures)))
    assert next(s for s in plan(cfg) if s.what == "eval").skip
    (out / "rl" / "summary.json").write_text('{"run": "rl, done again"}')
    step = next(s for s in plan(cfg) if s.what == "eval")
    assert step.skip is None and "it runs again" in step.note
    (out / "rl" / "summary.json").write_text('{"run": "rl"}')
    other = cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"args": ["--limit", "4"]})})
    assert next(s for s in plan(other) if s.what == "eval").note
    assert next(s for s in plan(cfg) if s.what == "eval").skip


def test_a_run_trained_from_another_model_or_a_redone_source_is_refused(tmp_path):
    """rl was trained from @cold: another model in the file, or cold done again (or deleted) since, is refused
    before anything runs (the experiment skipped rl as finished and measured it beside the new cold start)."""
    from logicrl.cli.experiment import _execute
    from logicrl.experiment import STARTED, Step, start_problem, start_record

    cfg, out = _experiment(tmp_path), tmp_path / "x"
    finish_runs(cfg, out)
    (out / "rl" / STARTED).write_text(json.dumps(start_record(cfg, "rl")))
    assert start_problem(cfg, "rl") is None and start_problem(cfg, "rl2") is None  # rl2: no record kept
    other = cfg.model_copy(update={"runs": {**cfg.runs, "rl": cfg.runs["rl"].model_copy(update={"model": "base"})}})
    assert start_problem(other, "rl") == "run rl was started with model '@cold', the experiment now asks for 'base'"
    (out / "cold" / "summary.json").write_text('{"run": "cold, done again"}')
    assert start_problem(cfg, "rl") == "run rl was trained from @cold, which has been deleted or run again since"
    (out / "cold" / "summary.json").unlink()
    assert start_problem(cfg, "rl") == "run rl was trained from @cold, which has been deleted or run again since"
    # a run's step writes its record as it starts, so that a run killed mid-way is held to its model when it
    # resumes (the record was written only once the run succeeded: a killed run resumed from its old model)
    with pytest.raises(UserError, match="run rl2 failed"):
        _execute(Step("run rl2", ("no-such-command",), runs="rl2"), cfg)
    assert json.loads((out / "rl2" / STARTED).read_text()) == {"model": "base", "from": {}}
    moved = cfg.model_copy(update={"runs": {**cfg.runs, "rl2": cfg.runs["rl2"].model_copy(update={"model": "@cold"})}})
    assert start_problem(moved, "rl2") == "run rl2 was started with model 'base', the experiment now asks for '@cold'"
    _execute(Step("run rl2", ("train", "--resume", "x", "--help"), runs="rl2"), moved)  # a resume keeps its record
    assert json.loads((out / "rl2" / STARTED).read_text()) == {"model": "base", "from": {}}
    _execute(Step("run rl2", ("--help",), runs="rl2"), moved)  # a fresh start writes its own
    assert json.loads((out / "rl2" / STARTED).read_text())["model"] == "@cold"


def test_a_baseline_run_redone_makes_the_measurement_stale(tmp_path):
    """eval.baseline=@cold: the measurement depends on cold too, so cold done again measures again."""
    from logicrl.experiment import MEASURED, measurement_record

    cfg, out = _experiment(tmp_path, eval={"baseline": "start=@cold", "runs": ["rl"]}), tmp_path / "x"
    finish_runs(cfg, out)
    (out / "eval").mkdir()
    (out / "eval" / "results.json").write_text("{}")
    step = next(s for s in plan(cfg) if s.what == "eval")
    assert step.measures == ("rl", "cold")
    (out / "eval" / MEASURED).write_text(json.dumps(measurement_record(cfg, step.args, step.measures)))
    assert next(s for s in plan(cfg) if s.what == "eval").skip
    (out / "cold" / "summary.json").write_text('{"run": "cold, done again"}')
    assert next(s for s in plan(cfg) if s.what == "eval").skip is None


def test_a_shared_override_an_sft_run_lacks_names_where_it_came_from(tmp_path, monkeypatch):
    """overrides=[steps=8] goes to every run, and `logicrl sft` has no steps: the error says the key came from
    the experiment's overrides and how to give it to some runs only."""
    from logicrl.cli.experiment import check_runs

    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text("model: {name: tiny-random}\n")
    cfg = ExperimentConfig.model_validate({"question": "q", "out_dir": "x", "overrides": ["steps=8"], "runs": {
        "cold": {"command": "sft", "config": "s.yaml", "data": "d"}}})
    with pytest.raises(ConfigError, match=r"^run cold: unknown config key 'steps' .*\(from the experiment's "
                                          r"overrides=\['steps=8'\], which go to every run: give them to some runs "
                                          r"with runs.LABEL.overrides=\[...\]\)$"):
        check_runs(cfg)


def test_experiment_overrides_come_after_every_run_s_own(tmp_path):
    """`overrides=[steps=8]` shortens every run and keeps the file's other overrides (replacing
    defaults.overrides, as configs/rq/README.md used to suggest, dropped model.dtype=bfloat16 and val_every)."""
    cfg = _experiment(tmp_path, overrides=["steps=8"])
    assert cfg.run("rl").overrides == ["optim.lr=1e-6", "steps=8"]  # each key once, the later source's
    assert load_config(TrainConfig, None, cfg.run("rl").overrides).optim.lr == 1e-6


def test_an_override_of_a_run_the_file_lacks_is_refused(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump({"question": "q", "out_dir": "x", "defaults": {"command": "train",
                                    "config": "c.yaml"}, "runs": {"grpo": {}, "ppo": {}}}))
    check_run_labels(path, ["runs.grpo.overrides=[steps=3]", "out_dir=y", "overrides=[steps=2]"])
    with pytest.raises(ConfigError, match=r"'runs.gpro.overrides=\[steps=3\]': .* has no run 'gpro' "
                                          r"\(runs: grpo, ppo\); add a new run to the file"):
        check_run_labels(path, ["runs.gpro.overrides=[steps=3]"])


def test_model_references_resolve_to_the_last_checkpoint(tmp_path):
    out = tmp_path / "x"
    with pytest.raises(UserError, match="@cold: run .* has no checkpoint yet"):
        resolve_args(("train", "--model", "@cold"), out)
    for step in ("step_000005", "step_000010"):
        (out / "cold" / "checkpoints" / step).mkdir(parents=True)
    last = str(out / "cold" / "checkpoints" / "step_000010")
    assert resolve_args(("train", "--model", "@cold", "x=@y"), out) == ["train", "--model", last, "x=@y"]
    assert resolve_args(("eval", "-m", "c=@cold", "-m", str(out / "cold"), "-m", "hub/id"), out) == [
        "eval", "-m", f"c={last}", "-m", last, "-m", "hub/id"]


@pytest.mark.parametrize(("change", "message"), [
    ({"runs": {"a": {"model": "@b"}, "b": {}}}, "must name an earlier run"),
    ({"runs": {"a": {"command": None}}, "defaults": {"config": "c.yaml"}}, "needs a command and a config"),
    ({"runs": {"a b": {}}}, "run label 'a b'"),
    ({"eval": {"runs": ["nope"]}}, "eval.runs: 'nope' is not a run"),
    ({"runs": {}}, "at least one run"),
    # each of these passed the checks and failed only after every run had trained
    ({"runs": {"a": {}, "eval": {}}}, "run label 'eval' is the folder of the experiment's eval step"),
    ({"runs": {"compare": {}}}, "run label 'compare' is the folder"),
    ({"runs": {"-x": {}}}, "run label '-x': .* starting with a letter or digit"),
    ({"eval": {"runs": ["a", "a"]}}, "eval.runs: a given twice"),
    ({"runs": {"a": {"overrides": ["steps=1", "steps=2"]}}}, r"run 'a': steps given twice \(steps=1, steps=2\)"),
    ({"eval": {"baseline": "a=tiny-random"}}, "eval.baseline: label 'a' is also a measured run's"),
    ({"memorization": {"runs": ["a"], "baseline": "a=@a"}}, "memorization.baseline: label 'a' is also"),
])
def test_malformed_experiments_are_refused(tmp_path, change, message):
    body = {"question": "q", "out_dir": "x", "defaults": {"command": "train", "config": "c.yaml"},
            "runs": {"a": {}}, **change}
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(ConfigError, match=message):
        load_config(ExperimentConfig, path)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "logicrl", *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd, env={"OMP_NUM_THREADS": "1", **__import__("os").environ})


def test_a_two_run_experiment_runs_evals_compares_and_resumes(puzzle_dir, tmp_path):
    tiny = ["model.device=cpu", "rollout.prompts_per_step=2", "rollout.group_size=2",
            "rollout.max_response_tokens=8", "data.val_puzzles_per_people=0", "threads=1", "steps=2"]
    (tmp_path / "rl.yaml").write_text(yaml.safe_dump({"model": {"name": "tiny-random"}}))
    body = {"question": "grpo vs rloo on the tiny model", "out_dir": "out",
            "defaults": {"command": "train", "config": "rl.yaml", "data": str(puzzle_dir), "overrides": tiny},
            "runs": {"grpo": {"overrides": ["algorithm.advantage=grpo"]},
                     "rloo": {"overrides": ["algorithm.advantage=rloo"]}},
            "eval": {"baseline": "start=tiny-random",
                     "args": ["--data", str(puzzle_dir), "--people", "2", "--limit", 2, "--max-tokens", 8]}}
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(body))

    dry = run_cli("experiment", "e.yaml", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "run grpo: logicrl train --config rl.yaml --out out/grpo" in dry.stderr
    assert not (tmp_path / "out").exists()  # a dry run writes nothing

    done = run_cli("experiment", "e.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    for label in ("grpo", "rloo"):
        saved = yaml.safe_load((out / label / "config.yaml").read_text())
        assert saved["algorithm"]["advantage"] == label and saved["steps"] == 2
    results = yaml.safe_load((out / "eval" / "results.json").read_text())
    assert list(results["models"]) == ["start", "grpo", "rloo"]
    assert (out / "compare" / "index.html").is_file()

    again = run_cli("experiment", "e.yaml", cwd=tmp_path)
    assert again.returncode == 0 and again.stderr.count("finished (") == 2, again.stderr
    assert f"== eval: done ({Path('out') / 'eval'})" in again.stderr

    # other eval arguments: the eval runs again, the runs stay as they are
    body["eval"]["args"][-1] = 6  # --max-tokens
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(body))
    remeasured = run_cli("experiment", "e.yaml", cwd=tmp_path)
    assert remeasured.returncode == 0 and remeasured.stderr.count("finished (") == 2, remeasured.stderr
    assert "was measured with other arguments or runs than the experiment now has: it runs again" in remeasured.stderr
    assert yaml.safe_load((out / "eval" / "results.json").read_text())["config"]["max_tokens"] == 6

    # the file changed after the runs: refused in one line, before anything runs; a dry run says the same
    for dry_run in ((), ("--dry-run",)):
        changed = run_cli("experiment", "e.yaml", "runs.rloo.overrides=[algorithm.advantage=grpo]", *dry_run,
                          cwd=tmp_path)
        lines = changed.stderr.strip().splitlines()
        assert changed.returncode == 2 and lines[-1].startswith("error: run rloo was started with algorithm.adv")
        assert ("run grpo: skip, finished" in changed.stderr) == bool(dry_run)  # the plan, then the refusal
    # the experiment folder moved: its runs are found where they are (a resume continues a run in place)
    subprocess.run(["cp", "-r", str(out), str(tmp_path / "moved")], check=True)
    moved = run_cli("experiment", "e.yaml", "out_dir=moved", "--dry-run", cwd=tmp_path)
    assert moved.returncode == 0 and moved.stderr.count("skip, finished") == 2, moved.stderr
    # another model through the run's overrides or its config file: refused too (model.name was never compared)
    (tmp_path / "rl-other.yaml").write_text(yaml.safe_dump({"model": {"name": "smollm2-135m"}}))
    for change in ("runs.rloo.overrides=[algorithm.advantage=rloo,model.name=smollm2-135m]",
                   "defaults.config=rl-other.yaml"):
        changed = run_cli("experiment", "e.yaml", change, "--dry-run", cwd=tmp_path)
        assert changed.returncode == 2, changed.stderr
        assert changed.stderr.strip().splitlines()[-1].startswith(
            "error: run grpo was started with model.name='tiny-random', the experiment now asks for 'smollm2-135m'"
            if change.startswith("defaults") else
            "error: run rloo was started with model.name='tiny-random', the experiment now asks for 'smollm2-135m'")


def test_check_runs_refuses_a_missing_model_before_any_run(puzzle_dir, tmp_path):
    (tmp_path / "rl.yaml").write_text("{}")
    cfg = ExperimentConfig.model_validate({
        "question": "q", "out_dir": str(tmp_path / "out"),
        "defaults": {"command": "train", "config": str(tmp_path / "rl.yaml"), "data": str(puzzle_dir)},
        "runs": {"a": {"model": "tiny-random"}, "b": {"model": str(tmp_path / "missing")}}})
    with pytest.raises(UserError, match="run b: model path .*missing.* does not exist"):
        check_runs(cfg)


@pytest.mark.parametrize(("args", "message"), [
    (["--bogus-flag"], "`logicrl eval -m a=@a -m b=@b --out .*/out/eval --bogus-flag`: No such option: --bogus-flag"),
    (["--limit", "abc"], "Invalid value for '--limit'"),
])
def test_check_runs_parses_the_eval_command_before_any_run(puzzle_dir, tmp_path, args, message):
    """A typo in eval.args used to fail only after every run had trained."""
    (tmp_path / "rl.yaml").write_text("{}")
    cfg = ExperimentConfig.model_validate({
        "question": "q", "out_dir": str(tmp_path / "out"),
        "defaults": {"command": "train", "config": str(tmp_path / "rl.yaml"), "data": str(puzzle_dir)},
        "runs": {"a": {"model": "tiny-random"}, "b": {"model": "tiny-random"}}, "eval": {"args": args}})
    with pytest.raises(UserError, match=message):
        check_runs(cfg)
    check_runs(cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"args": ["--limit", "3"]})}))


def test_a_baseline_that_is_a_run_of_the_experiment_is_checked_when_it_runs(puzzle_dir, tmp_path):
    """eval.baseline=LABEL=@RUN (the cold start the RL runs start from): before any run it has no checkpoint, so
    the early check skips it (it refused with 'run the experiment from the start'); a label that is no run is
    refused when the file is read."""
    (tmp_path / "rl.yaml").write_text("{}")
    body = {"question": "q", "out_dir": str(tmp_path / "out"),
            "defaults": {"command": "train", "config": str(tmp_path / "rl.yaml"), "data": str(puzzle_dir)},
            "runs": {"a": {"model": "tiny-random"}, "b": {"model": "@a"}},
            "eval": {"baseline": "start=@a", "runs": ["b"]}}
    cfg = ExperimentConfig.model_validate(body)
    check_runs(cfg)
    assert next(s for s in plan(cfg) if s.what == "eval").args[:5] == ("eval", "-m", "start=@a", "-m", "b=@b")
    with pytest.raises(ValueError, match=r"eval.baseline: @c is not a run \(a, b\)"):
        ExperimentConfig.model_validate({**body, "eval": {"baseline": "start=@c"}})


def test_a_relative_config_path_is_read_from_the_current_folder(puzzle_dir, tmp_path, monkeypatch):
    (tmp_path / "rl.yaml").write_text("{}")
    cfg = ExperimentConfig.model_validate({
        "question": "q", "out_dir": str(tmp_path / "out"),
        "defaults": {"command": "train", "config": "rl.yaml", "data": str(puzzle_dir)},
        "runs": {"a": {"model": "tiny-random"}}})
    monkeypatch.chdir(puzzle_dir)
    with pytest.raises(ConfigError, match=r"^run a: config file rl.yaml does not exist in .*: the paths in an "
                                          r"experiment file are relative to the folder the command runs in"):
        check_runs(cfg)
    monkeypatch.chdir(tmp_path)
    check_runs(cfg)


def test_check_runs_refuses_a_missing_baseline_before_any_run(puzzle_dir, tmp_path):
    (tmp_path / "rl.yaml").write_text("{}")
    cfg = ExperimentConfig.model_validate({
        "question": "q", "out_dir": str(tmp_path / "out"),
        "defaults": {"command": "train", "config": str(tmp_path / "rl.yaml"), "data": str(puzzle_dir)},
        "runs": {"a": {"model": "tiny-random"}}, "eval": {"baseline": f"base={tmp_path / 'nonexistent'}"}})
    with pytest.raises(UserError, match=r"^eval.baseline: model path .*nonexistent.* does not exist"):
        check_runs(cfg)
    check_runs(cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"baseline": "base=tiny-random"})}))


def test_check_runs_names_the_run_whose_overrides_are_bad(puzzle_dir, tmp_path):
    """The error is run b's override, not its config file's."""
    (tmp_path / "rl.yaml").write_text("{}")
    cfg = ExperimentConfig.model_validate({
        "question": "q", "out_dir": str(tmp_path / "out"),
        "defaults": {"command": "train", "config": str(tmp_path / "rl.yaml"), "data": str(puzzle_dir)},
        "runs": {"a": {"model": "tiny-random"}, "b": {"model": "tiny-random", "overrides": ["optim.bogus=1"]}}})
    with pytest.raises(ConfigError, match=r"^run b: unknown config key 'optim.bogus' \(valid keys: lr,"):
        check_runs(cfg)


def test_check_runs_refuses_an_out_dir_that_cannot_be_made(puzzle_dir, tmp_path):
    (tmp_path / "rl.yaml").write_text("{}")
    (tmp_path / "a-file").write_text("x")
    cfg = ExperimentConfig.model_validate({
        "question": "q", "out_dir": str(tmp_path / "a-file" / "out"),
        "defaults": {"command": "train", "config": str(tmp_path / "rl.yaml"), "data": str(puzzle_dir)},
        "runs": {"a": {"model": "tiny-random"}}})
    with pytest.raises(UserError, match="^out_dir .*a-file/out: .*a-file is a file, not a folder"):
        check_runs(cfg)
    # a dataset or a run as out_dir: the runs would go inside it (accepted, until now)
    for held, what in ((puzzle_dir, "a dataset"), (tmp_path / "run", "a run")):
        (tmp_path / "run").mkdir(exist_ok=True)
        (tmp_path / "run" / "config.yaml").write_text("steps: 2\n")
        with pytest.raises(UserError, match=f"^out_dir {held} holds {what}"):
            check_runs(cfg.model_copy(update={"out_dir": held}))


def test_check_runs_takes_a_run_directory_for_its_last_checkpoint(puzzle_dir, tmp_path):
    """configs/rq/*.cpu.yaml start from ``outputs/credit/cold``, a run directory: the check before the first run
    looks at its last checkpoint, as the run itself will (it used to ask the run directory for a config.json)."""
    (tmp_path / "rl.yaml").write_text("{}")
    cold = tmp_path / "cold"
    for step in ("step_000002", "step_000010"):
        (cold / "checkpoints" / step).mkdir(parents=True)
    cfg = ExperimentConfig.model_validate({
        "question": "q", "out_dir": str(tmp_path / "out"),
        "defaults": {"command": "train", "config": str(tmp_path / "rl.yaml"), "data": str(puzzle_dir)},
        "runs": {"a": {"model": str(cold)}}})
    with pytest.raises(UserError, match="run a: .*step_000010.* config.json"):
        check_runs(cfg)  # the last checkpoint is looked at, and it has no config.json yet
    (cold / "checkpoints" / "step_000010" / "config.json").write_text("{}")
    with pytest.raises(UserError, match="run a: .*step_000010.* has no tokenizer"):
        check_runs(cfg)  # a model saved without its tokenizer would fail when the run loads it
    (cold / "checkpoints" / "step_000010" / "tokenizer_config.json").write_text("{}")
    check_runs(cfg)

"""Experiments: several runs that answer one question, declared in one YAML file (``configs/rq/``).

An experiment file names its runs, each a ``logicrl train`` or ``logicrl sft`` with a config, a starting
model and overrides, then what to measure on their final checkpoints (``logicrl eval``, ``logicrl eval
memorization``) and the comparison page (``logicrl compare``). `plan` turns it into the list of commands
that `logicrl experiment` runs in order; each run is skipped once finished (``summary.json``) and resumed
when it was interrupted, so the experiment resumes like one run.

A run's ``model`` may be ``@LABEL``: the last checkpoint of an earlier run of the same experiment (a cold
start, say); a run directory stands for its last checkpoint too.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from logicrl.config import StrictModel, combine_overrides
from logicrl.errors import ConfigError, UserError
from logicrl.io import read_json_object

FINISHED = "summary.json"


def _texts(values: object) -> object:
    """YAML reads ``[--limit, 100]`` as a string and an int; command-line arguments are all strings."""
    return [str(v) if isinstance(v, int | float) else v for v in values] if isinstance(values, list) else values


class RunSpec(StrictModel):
    """One run; unset keys come from the experiment's ``defaults``."""

    command: Literal["train", "sft"] | None = Field(None, description="`logicrl train` (RL) or `logicrl sft`.")
    config: Path | None = Field(None, description="YAML config of the command.")
    model: str | None = Field(None, description="Starting model: alias, checkpoint, run directory or @LABEL.")
    data: Path | None = Field(None, description="Dataset directory (data.train).")
    overrides: list[str] = Field(default_factory=list, description="key=value, after the defaults' overrides.")

    _strings = field_validator("overrides", mode="before")(_texts)


class Measurement(StrictModel):
    """Final checkpoints measured with one `logicrl eval` command."""

    baseline: str | None = Field(
        None, description="LABEL=MODEL shown first; the paired differences are against it (MODEL may be @RUN).")
    runs: list[str] | None = Field(None, description="Labels of the runs measured (default: all).")
    args: list[str] = Field(default_factory=list, description="Arguments of the eval command (--people 2-3 ...).")

    _strings = field_validator("args", mode="before")(_texts)

    @property
    def baseline_model(self) -> str | None:
        """The model of ``baseline`` (``LABEL=MODEL``, or a bare ``MODEL``): an alias, a path or ``@RUN``."""
        if not self.baseline:
            return None
        label, _, model = self.baseline.partition("=")
        return model or label


STEP_FOLDERS = ("eval", "memorization", "compare")  # OUT/<name>: the measurements' and the comparison's


class ExperimentConfig(StrictModel):
    """A research question as runs + measurements (``configs/rq/README.md``)."""

    question: str = Field(description="What the experiment answers, in one line.")
    out_dir: Path = Field(description="Each run goes to OUT/LABEL; eval, memorization and compare beside them.")
    defaults: RunSpec = Field(default_factory=RunSpec, description="Keys every run shares.")
    runs: dict[str, RunSpec] = Field(description="LABEL -> run, run in this order.")
    overrides: list[str] = Field(default_factory=list, description=(
        "key=value applied to every run after its own overrides (on the command line: overrides=[steps=8])."))
    eval: Measurement | None = None
    memorization: Measurement | None = None
    compare: bool = Field(True, description="`logicrl compare` over the RL runs (two or more).")

    _strings = field_validator("overrides", mode="before")(_texts)

    @model_validator(mode="after")
    def _check_runs(self) -> ExperimentConfig:
        if not self.runs:
            raise ValueError("give at least one run")
        seen: list[str] = []
        for label, run in self.runs.items():
            if not label.replace("-", "").replace("_", "").isalnum() or not label[0].isalnum():
                raise ValueError(f"run label {label!r}: use letters, digits, - and _, starting with a letter or "
                                 "digit")
            if label in STEP_FOLDERS:
                raise ValueError(f"run label {label!r} is the folder of the experiment's {label} step: name the "
                                 "run otherwise")
            try:
                spec = self.run(label)
            except ConfigError as exc:  # a key twice in one of its override lists
                raise ValueError(f"run {label!r}: {exc}") from None
            if spec.command is None or spec.config is None:
                raise ValueError(f"run {label!r} needs a command and a config (in it or in defaults)")
            if spec.model and spec.model.startswith("@") and spec.model[1:] not in seen:
                raise ValueError(f"run {label!r}: model {spec.model} must name an earlier run ({seen or 'none'})")
            seen.append(label)
        for name in ("eval", "memorization"):
            measurement = getattr(self, name)
            measured = (measurement.runs or list(self.runs)) if measurement else []
            for label in measured:
                if label not in self.runs:
                    raise ValueError(f"{name}.runs: {label!r} is not a run ({', '.join(self.runs)})")
            if repeated := sorted({label for label in measured if measured.count(label) > 1}):
                raise ValueError(f"{name}.runs: {', '.join(repeated)} given twice")
            baseline_label, named, _ = (measurement.baseline or "").partition("=") if measurement else ("", "", "")
            if named and baseline_label in measured:
                raise ValueError(f"{name}.baseline: label {baseline_label!r} is also a measured run's: name the "
                                 "baseline otherwise (LABEL=MODEL)")
            baseline = (measurement.baseline_model if measurement else None) or ""
            if baseline.startswith("@") and baseline[1:] not in self.runs:
                raise ValueError(f"{name}.baseline: {baseline} is not a run ({', '.join(self.runs)})")
        return self

    def run(self, label: str) -> RunSpec:
        """The run with the defaults filled in (overrides: the defaults', the run's, then the experiment's)."""
        run, base = self.runs[label], self.defaults
        merged = {key: getattr(run, key) if getattr(run, key) is not None else getattr(base, key)
                  for key in ("command", "config", "model", "data")}
        return RunSpec(**merged, overrides=combine_overrides(base.overrides, run.overrides, self.overrides))


@dataclass(frozen=True)
class Step:
    """One command of the plan. ``args`` may hold ``@LABEL`` (resolved when the step runs); ``skip`` says
    why the step does not run (finished); ``note``, why it runs again. A run's step names the run it ``runs``
    (its `start_record` is written as it starts afresh, kept when it resumes); a measurement names the runs it
    ``measures`` and the ``record`` file where `measurement_record` is kept once it succeeds."""

    what: str
    args: tuple[str, ...]
    skip: str | None = None
    note: str | None = None
    runs: str | None = None
    measures: tuple[str, ...] = ()
    record: Path | None = None

    def text(self) -> str:
        return "logicrl " + shlex.join(self.args)

    @property
    def resumes(self) -> bool:
        """Whether the step resumes a run from its checkpoint (``--resume``)."""
        return "--resume" in self.args


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest ``checkpoints/step_*`` of a run directory, or None."""
    steps = sorted((run_dir / "checkpoints").glob("step_*"))
    return steps[-1] if steps else None


def resolve_model(model: str, out_dir: Path) -> str:
    """``@LABEL`` -> the last checkpoint of OUT/LABEL; a run directory -> its last checkpoint; else as given."""
    run_dir = out_dir / model[1:] if model.startswith("@") else Path(model)
    checkpoint = last_checkpoint(run_dir) if (run_dir / "checkpoints").is_dir() else None
    if model.startswith("@") and checkpoint is None:
        raise UserError(f"{model}: run {run_dir} has no checkpoint yet; run the experiment from the start")
    return str(checkpoint) if checkpoint is not None else model


STARTED = "experiment-run.json"  # in a run's directory: `start_record` of the experiment that ran it


def finished_hash(cfg: ExperimentConfig, label: str) -> str | None:
    """The SHA-256 of run ``label``'s ``summary.json``, None while it has not finished: a run done again
    changes it."""
    path = cfg.out_dir / label / FINISHED
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def start_record(cfg: ExperimentConfig, label: str) -> dict:
    """What run ``label`` was trained from: its model as the file gives it, and for ``@SOURCE`` that run's
    `finished_hash` (kept in its directory, `STARTED`, once it has run)."""
    model = cfg.run(label).model
    source = {model[1:]: finished_hash(cfg, model[1:])} if model and model.startswith("@") else {}
    return {"model": model, "from": source}


def start_problem(cfg: ExperimentConfig, label: str) -> str | None:
    """Why run ``label``, which has run, no longer matches the experiment (None when it does, or when an
    earlier logicrl kept no `start_record`): another model in the file, or its ``@SOURCE`` run done again
    since (it would stand beside the new source as if trained from it)."""
    saved, now = read_json_object(cfg.out_dir / label / STARTED), start_record(cfg, label)
    if not saved or saved == now:
        return None
    if saved.get("model") != now["model"]:
        def named(model: object) -> str:
            return repr(model) if model is not None else "its config's model.name"
        return (f"run {label} was started with model {named(saved.get('model'))}, the experiment now asks for "
                f"{named(now['model'])}")
    return f"run {label} was trained from {now['model']}, which has been deleted or run again since"


def run_step(cfg: ExperimentConfig, label: str) -> Step:
    """The command of one run: skipped when finished, ``--resume`` when it has a checkpoint, else fresh."""
    spec, run_dir = cfg.run(label), cfg.out_dir / label
    what = f"run {label}"
    if (run_dir / FINISHED).is_file():
        return Step(what, (spec.command, "--resume", str(run_dir)), skip=f"finished ({run_dir / FINISHED})")
    checkpoint = last_checkpoint(run_dir)
    if checkpoint is not None and (checkpoint / "trainer_state.pt").is_file():
        return Step(what, (spec.command, "--resume", str(run_dir)), runs=label)
    args = [spec.command, "--config", str(spec.config), "--out", str(run_dir)]
    args += ["--model", spec.model] if spec.model else []
    args += ["--data", str(spec.data)] if spec.data else []
    return Step(what, (*args, *spec.overrides), runs=label)


MEASURED = "experiment.json"  # in a measurement's folder: `measurement_record` of the step that wrote it


def measurement_record(cfg: ExperimentConfig, args: tuple[str, ...], labels: tuple[str, ...]) -> dict:
    """What a measurement's results depend on: its command's arguments and the runs it measures (its baseline
    ``@RUN`` too), each by `finished_hash`: a run done again makes it stale."""
    return {"args": list(args), "runs": {label: finished_hash(cfg, label) for label in labels}}


def _measurement_step(cfg: ExperimentConfig, name: str, subcommand: tuple[str, ...]) -> Step | None:
    """The eval (or memorization) step: skipped when its results are there and were made by these arguments
    from these runs (or by an earlier logicrl that kept no record); run again, with a note, when they were not."""
    measurement: Measurement | None = getattr(cfg, name)
    if measurement is None:
        return None
    labels = tuple(measurement.runs or cfg.runs)
    models = [f"{label}=@{label}" for label in labels]
    if measurement.baseline:
        models.insert(0, measurement.baseline)
    baseline = measurement.baseline_model or ""
    measured = (*labels, baseline[1:]) if baseline.startswith("@") and baseline[1:] not in labels else labels
    out = cfg.out_dir / name
    args = ("eval", *subcommand, *(a for m in models for a in ("-m", m)), "--out", str(out), *measurement.args)
    step = Step(name, args, measures=measured, record=out / MEASURED)
    if not ((out / "results.json").is_file() or (out / "memorization.json").is_file()):
        return step
    earlier = read_json_object(out / MEASURED)
    if not earlier or earlier == measurement_record(cfg, args, measured):
        return replace(step, skip=f"done ({out})")
    return replace(step, note=f"{out} was measured with other arguments or runs than the experiment now has: "
                              "it runs again")


def plan(cfg: ExperimentConfig) -> list[Step]:
    """Every command of the experiment, in order: the runs, eval, memorization, compare."""
    steps = [run_step(cfg, label) for label in cfg.runs]
    steps += [s for s in (_measurement_step(cfg, "eval", ()),
                          _measurement_step(cfg, "memorization", ("memorization",))) if s is not None]
    rl_runs = [label for label in cfg.runs if cfg.run(label).command == "train"]
    if cfg.compare and len(rl_runs) >= 2:
        args = ("compare", *(f"{label}={cfg.out_dir / label}" for label in rl_runs),
                "--out", str(cfg.out_dir / "compare"))
        if cfg.eval is not None:
            args += ("--eval", str(cfg.out_dir / "eval"))
        steps.append(Step("compare", args))
    return steps


def resolve_args(args: tuple[str, ...], out_dir: Path) -> list[str]:
    """The step's arguments with each model (after ``--model``, or ``LABEL=@RUN`` after ``-m``) resolved by
    `resolve_model`: ``@LABEL`` and run directories become checkpoint paths."""
    resolved: list[str] = []
    for arg in args:
        previous = resolved[-1] if resolved else ""
        if previous == "--model":
            arg = resolve_model(arg, out_dir)
        elif previous == "-m":
            label, sep, model = arg.partition("=")
            arg = f"{label}={resolve_model(model, out_dir)}" if sep else resolve_model(arg, out_dir)
        resolved.append(arg)
    return resolved

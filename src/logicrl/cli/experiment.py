"""``logicrl experiment FILE``: the runs of a research question, then their eval and comparison page
(`logicrl.experiment`); a rerun resumes where it stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from logicrl.cli import check_command_line
from logicrl.cli.output import plain_console
from logicrl.cli.runs import check_puzzles
from logicrl.config import load_config, read_yaml
from logicrl.errors import ConfigError, UserError
from logicrl.experiment import (
    STARTED,
    ExperimentConfig,
    Step,
    measurement_record,
    plan,
    resolve_args,
    resolve_model,
    start_problem,
    start_record,
)
from logicrl.io import atomic_write_text, check_not_another_output, check_output_dir
from logicrl.models import ModelNotFoundError, check_model_name

console = plain_console(stderr=True)


def _config_class(command: str) -> type:
    from logicrl.rl.config import TrainConfig
    from logicrl.rl.sft import SFTConfig
    return {"train": TrainConfig, "sft": SFTConfig}[command]


def check_runs(cfg: ExperimentConfig) -> None:
    """Before the first run starts: every run's config validates with its overrides, its model and puzzles
    exist, and a run already started was started with the config the file now asks for (a resume never
    silently ignores a changed experiment file); every command of the plan parses (an eval argument the eval
    command does not take used to fail after hours of runs); a measurement's baseline model exists; and
    ``out_dir`` can take them."""
    check_output_dir(cfg.out_dir, "out_dir")
    check_not_another_output(cfg.out_dir, "out_dir")  # a dataset, a run, an eval: its runs would go inside
    for step in plan(cfg):
        check_command_line(step.args)
    for label in cfg.runs:
        spec, run_dir = cfg.run(label), cfg.out_dir / label
        explicit = {"out_dir": run_dir, "model.name": spec.model, "data.train": spec.data}
        if spec.config is not None and not spec.config.is_absolute() and not spec.config.exists():
            raise ConfigError(f"run {label}: config file {spec.config} does not exist in {Path.cwd()}: the paths "
                              "in an experiment file are relative to the folder the command runs in (configs/rq/'s: "
                              "the repository root)")
        try:
            wanted = load_config(_config_class(spec.command), spec.config, spec.overrides, **explicit)
        except ConfigError as exc:
            shared = [item for item in cfg.overrides if f"'{item.partition('=')[0].strip()}'" in str(exc)]
            hint = (f" (from the experiment's overrides={shared}, which go to every run: give them to some runs "
                    "with runs.LABEL.overrides=[...])") if shared else ""
            raise ConfigError(f"run {label}: {exc}{hint}") from None
        if (run_dir / "config.yaml").is_file():
            # a model the file names is resolved to a checkpoint path when the run starts: `start_problem`
            # compares it as the file gave it; one from the run's config or overrides is compared here. out_dir
            # is where the run is found (a resume continues it in place: an experiment folder may be moved)
            skip = ("out_dir", "model.name") if spec.model else ("out_dir",)
            _check_same(label, wanted.model_dump(mode="json"), read_yaml(run_dir / "config.yaml"), skip=skip)
            if problem := start_problem(cfg, label):
                raise UserError(f"{problem}: restore the file, or delete {label}'s run directory to start it "
                                "again")
            continue
        if spec.model and not spec.model.startswith("@"):
            try:  # a run directory stands for its last checkpoint, as when the run starts
                check_model_name(resolve_model(spec.model, cfg.out_dir))
            except ModelNotFoundError as exc:
                raise UserError(f"run {label}: {exc}") from None
        check_puzzles(wanted.data, held_out=False)
    for name in ("eval", "memorization"):
        measurement = getattr(cfg, name)
        model = measurement.baseline_model if measurement is not None else None
        if model is None or model.startswith("@"):  # @RUN: a run of this experiment, checked when it has run
            continue
        try:  # the runs come first: a missing baseline used to fail only after all of them
            check_model_name(resolve_model(model, cfg.out_dir))
        except ModelNotFoundError as exc:
            raise UserError(f"{name}.baseline: {exc}") from None


def check_run_labels(file: Path, overrides: list[str]) -> None:
    """Refuse an override of ``runs.LABEL...`` for a LABEL the file does not have: a misspelt label would add a
    run of its own (the defaults and that override) instead of changing one."""
    runs = read_yaml(file).get("runs")
    labels = list(runs) if isinstance(runs, dict) else []
    for item in overrides:
        parts = item.partition("=")[0].strip().split(".")
        if parts[0] == "runs" and len(parts) > 1 and parts[1] not in labels:
            raise ConfigError(f"override {item!r}: {file} has no run {parts[1]!r} (runs: {', '.join(labels)}); "
                              "add a new run to the file")


def _check_same(label: str, wanted: dict, saved: dict, prefix: str = "", skip: tuple[str, ...] = ()) -> None:
    """Refuse a run whose saved config differs from the one the file now gives it, at any key but ``skip``."""
    for key in sorted(set(wanted) | set(saved)):
        a, b = wanted.get(key), saved.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            _check_same(label, a, b, f"{prefix}{key}.", skip)
        elif not _same(a, b) and f"{prefix}{key}" not in skip:
            raise UserError(f"run {label} was started with {prefix}{key}={b!r}, the experiment now asks for "
                            f"{a!r}: restore the file, or delete {label}'s run directory to start it again")


def _same(a: object, b: object) -> bool:
    """Equal, or the same path (a run's config.yaml keeps data paths absolute)."""
    if a == b:
        return True
    return isinstance(a, str) and isinstance(b, str) and Path(a).resolve() == Path(b).resolve()


def _execute(step: Step, cfg: ExperimentConfig) -> None:
    """Run one step; a measurement then records what it measured (`measurement_record`)."""
    args = resolve_args(step.args, cfg.out_dir)
    if step.note:
        console.print(f"note: {step.note}", soft_wrap=True)
    console.print(Text.assemble((f"== {step.what}", "bold"), f": logicrl {' '.join(args)}"), soft_wrap=True)
    started = None if step.runs is None else cfg.out_dir / step.runs / STARTED
    if started is not None and (not step.resumes or not started.is_file()):  # before it runs: a run killed
        started.parent.mkdir(parents=True, exist_ok=True)  # mid-way is held to its model when resumed
        atomic_write_text(started, json.dumps(start_record(cfg, step.runs)) + "\n")
    code = subprocess.run([sys.executable, "-m", "logicrl", *args], check=False).returncode
    if code != 0:
        raise UserError(f"{step.what} failed (exit {code}); fix it and run the same `logicrl experiment` "
                        "again: finished runs are kept, an interrupted one resumes")
    if step.record is not None:
        record = measurement_record(cfg, step.args, step.measures)
        atomic_write_text(step.record, json.dumps(record, indent=2) + "\n")


def experiment_cmd(
    file: Annotated[Path, typer.Argument(help="experiment YAML (configs/rq/*.yaml)", show_default=False)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the commands and what is done; run nothing")] = False,
    overrides: Annotated[list[str] | None, typer.Argument(
        help=("overrides of the experiment file: out_dir=..., defaults.model=..., runs.grpo.overrides=[...], "
              "overrides=[steps=8] (after every run's own)"),
        show_default=False)] = None,
) -> None:
    """Several runs that answer one question (configs/rq/), then eval, memorization and `logicrl compare`."""
    check_run_labels(file, overrides or [])
    cfg = load_config(ExperimentConfig, file, overrides)
    steps = plan(cfg)
    console.print(Text.assemble((cfg.question, "bold"), f" → {cfg.out_dir}"), soft_wrap=True)
    if dry_run:
        for step in steps:
            note = f" ({step.note})" if step.note else ""
            console.print(f"{step.what}: {'skip, ' + step.skip if step.skip else step.text() + note}",
                          soft_wrap=True)
        check_runs(cfg)  # after the plan: a refusal the real run would give ends the dry run the same way
        return
    check_runs(cfg)
    for step in steps:
        if step.skip:
            console.print(f"== {step.what}: {step.skip}")
            continue
        _execute(step, cfg)
    console.print(f"done: {cfg.out_dir}")

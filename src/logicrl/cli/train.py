"""``logicrl train`` (RL: REINFORCE++, GRPO, PPO, RLOO) and ``logicrl sft`` (cold start / RFT), resumable."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from logicrl.cli.output import plain_console, print_line
from logicrl.cli.runs import check_puzzles, run_config
from logicrl.errors import UserError
from logicrl.models import ModelNotFoundError, check_model_name, resolve_device
from logicrl.prompts import prompt_drift
from logicrl.rl.checkpoints import check_resume_steps, check_run_dir, list_checkpoints
from logicrl.rl.config import TrainConfig
from logicrl.rl.memory import check_memory, memory_report
from logicrl.rl.schedule import PromptSchedule
from logicrl.rl.sft import SFTConfig, SFTTrainer
from logicrl.rl.trainer import Trainer

console = plain_console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML file with the run's config keys")]
ResumeOpt = Annotated[Path | None, typer.Option(help="continue the run in this directory from its last checkpoint")]
OutOpt = Annotated[Path | None, typer.Option(help="run directory (out_dir)")]
ModelOpt = Annotated[str | None, typer.Option(help="model alias, path or hub id (model.name)")]
DataOpt = Annotated[Path | None, typer.Option(help="dataset directory or file (data.train)")]
Overrides = Annotated[list[str] | None, typer.Argument(help="overrides: section.key=value (optim.lr=1e-6)")]
SFTOverrides = Annotated[list[str] | None, typer.Argument(help="overrides: key=value (lr=1e-5 model.dtype=bfloat16)")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help=(
    "print the memory plan (peak accelerator memory by component) and exit; loads, checks and writes nothing"))]


def _print_final(final: dict[str, float]) -> None:
    if final:
        summary = {k: round(v, 3) for k, v in final.items() if k.count("/") == 1}
        print_line(console, "final validation: " + json.dumps(summary))  # one line a script can parse


def _warn_prompt_drift(cfg: TrainConfig | SFTConfig) -> None:
    if drift := prompt_drift(cfg.model.name, cfg.prompt):
        warnings.warn(drift, stacklevel=2)


def _check_train(cfg: TrainConfig, resume: bool) -> None:
    """What `Trainer` would refuse after loading its models, checked first: the run directory, the model
    name, the puzzles (train, and held-out when validating) and whether they fill the schedule."""
    check_run_dir(cfg.out_dir, resume=resume, command="train")
    resolve_device(cfg.model.device)
    if not resume:
        check_model_name(cfg.model.name)
        _warn_prompt_drift(cfg)
    records = check_puzzles(cfg.data, held_out=bool(cfg.val_every and cfg.data.val_puzzles_per_people))
    schedule = PromptSchedule.build(records, schedule=cfg.data.schedule, batch_size=cfg.rollout.prompts_per_step,
                                    epochs=cfg.data.epochs, seed=cfg.seed, steps=cfg.steps)
    found = list_checkpoints(cfg.out_dir)
    if resume and found:  # the newest checkpoint (Trainer checks again against the one it loads)
        step, checkpoint = found[-1]
        check_resume_steps(checkpoint, step, len(schedule))


def _check_sft(cfg: SFTConfig, resume: bool) -> None:
    """What `SFTTrainer` would refuse after loading its model, checked first: the run directory, the model
    name, the train and held-out puzzles."""
    check_run_dir(cfg.out_dir, resume=resume, command="sft")
    resolve_device(cfg.model.device)
    if not resume:
        check_model_name(cfg.model.name)
        _warn_prompt_drift(cfg)
    check_puzzles(cfg.data, held_out=bool(cfg.data.val_puzzles_per_people))


def _run(trainer_class, cfg, resume: Path | None, check, describe, command: str, dry_run: bool = False) -> None:
    """``check`` the inputs and the memory plan (before any model is loaded, converted or downloaded, and before
    the run directory is made), then build the trainer and fit. ``dry_run``: print the memory plan only."""
    if dry_run:
        text, refusal = memory_report(cfg, command)
        console.print(text + (f"\ndoes not fit: {refusal}" if refusal else ""), soft_wrap=True, markup=False)
        return
    try:
        check(cfg, resume is not None)
        console.print(check_memory(cfg, command), soft_wrap=True, markup=False)
        trainer = trainer_class(cfg, resume=resume is not None)
    except ModelNotFoundError as exc:
        raise UserError(str(exc)) from None
    console.print(describe(trainer), soft_wrap=True)
    if trainer.start_step > len(trainer.schedule):
        console.print(f"note: {cfg.out_dir} has finished its {len(trainer.schedule)} steps: nothing left to train",
                      soft_wrap=True, markup=False)
    _print_final(trainer.fit())


def train_cmd(config: ConfigOpt = None, resume: ResumeOpt = None, out: OutOpt = None, model: ModelOpt = None,
              data: DataOpt = None,
              steps: Annotated[int | None, typer.Option(help="stop after this many steps")] = None,
              dry_run: DryRunOpt = False, overrides: Overrides = None) -> None:
    """RL on puzzles; metrics, rollouts and checkpoints go to the run directory."""
    cfg = run_config(TrainConfig, config, resume, overrides,
                     {"out_dir": out, "model.name": model, "data.train": data, "steps": steps})
    _run(Trainer, cfg, resume, _check_train, command="train", dry_run=dry_run, describe=lambda t: Text.assemble(
        ("logicrl train", "bold"), f": {cfg.algorithm.advantage}, {len(t.schedule)} steps of "
        f"{cfg.rollout.prompts_per_step}×{cfg.rollout.group_size} rollouts, {len(t.val_records)} validation "
        f"puzzles → {cfg.out_dir}"))


def sft_cmd(config: ConfigOpt = None, resume: ResumeOpt = None, out: OutOpt = None, model: ModelOpt = None,
            data: DataOpt = None,
            mode: Annotated[str | None, typer.Option(help="'template' (cold start) or 'rft' (rejection sampling)")] = None,
            dry_run: DryRunOpt = False, overrides: SFTOverrides = None) -> None:
    """Supervised fine-tuning on template reasoning (cold start) or on the model's own solved samples (RFT)."""
    cfg = run_config(SFTConfig, config, resume, overrides,
                     {"out_dir": out, "model.name": model, "data.train": data, "mode": mode})
    _run(SFTTrainer, cfg, resume, _check_sft, command="sft", dry_run=dry_run, describe=lambda t: Text.assemble(
        ("logicrl sft", "bold"), f" ({cfg.mode}): {len(t.examples)} examples, {len(t.schedule)} steps of "
        f"{cfg.batch_size} → {cfg.out_dir}"))

"""``logicrl train`` (RL: REINFORCE++, GRPO, PPO, RLOO) and ``logicrl sft`` (cold start / RFT), resumable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from logicrl.cli.runs import run_config
from logicrl.errors import UserError
from logicrl.models import ModelNotFoundError
from logicrl.rl.config import TrainConfig
from logicrl.rl.sft import SFTConfig, SFTTrainer
from logicrl.rl.trainer import Trainer

console = Console(stderr=True)

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML file with the run's config keys")]
ResumeOpt = Annotated[Optional[Path], typer.Option(help="continue the run in this directory from its last checkpoint")]
OutOpt = Annotated[Optional[Path], typer.Option(help="run directory (out_dir)")]
ModelOpt = Annotated[Optional[str], typer.Option(help="model alias, path or hub id (model.name)")]
DataOpt = Annotated[Optional[Path], typer.Option(help="dataset directory or file (data.train)")]
Overrides = Annotated[Optional[list[str]], typer.Argument(help="overrides: section.key=value (optim.lr=1e-6)")]


def _print_final(final: dict[str, float]) -> None:
    if final:
        summary = {k: round(v, 3) for k, v in final.items() if k.count("/") == 1}
        console.print("final validation: " + json.dumps(summary))


def _run(trainer_class, cfg, resume: Path | None, describe) -> None:
    try:
        trainer = trainer_class(cfg, resume=resume is not None)
    except ModelNotFoundError as exc:
        raise UserError(str(exc)) from None
    console.print(describe(trainer))
    _print_final(trainer.fit())


def train_cmd(config: ConfigOpt = None, resume: ResumeOpt = None, out: OutOpt = None, model: ModelOpt = None,
              data: DataOpt = None,
              steps: Annotated[Optional[int], typer.Option(help="stop after this many steps")] = None,
              overrides: Overrides = None) -> None:
    """RL on puzzles; metrics, rollouts and checkpoints go to the run directory."""
    cfg = run_config(TrainConfig, config, resume, overrides,
                     {"out_dir": out, "model.name": model, "data.train": data, "steps": steps})
    _run(Trainer, cfg, resume, lambda t: (
        f"[bold]logicrl train[/]: {cfg.algorithm.advantage}, {len(t.schedule)} steps of "
        f"{cfg.rollout.prompts_per_step}×{cfg.rollout.group_size} rollouts, {len(t.val_records)} validation "
        f"puzzles → {cfg.out_dir}"))


def sft_cmd(config: ConfigOpt = None, resume: ResumeOpt = None, out: OutOpt = None, model: ModelOpt = None,
            data: DataOpt = None,
            mode: Annotated[Optional[str], typer.Option(help="'template' (cold start) or 'rft' (rejection sampling)")] = None,
            overrides: Overrides = None) -> None:
    """Supervised fine-tuning on template reasoning (cold start) or on the model's own solved samples (RFT)."""
    cfg = run_config(SFTConfig, config, resume, overrides,
                     {"out_dir": out, "model.name": model, "data.train": data, "mode": mode})
    _run(SFTTrainer, cfg, resume, lambda t: (
        f"[bold]logicrl sft[/] ({cfg.mode}): {len(t.examples)} examples, {len(t.schedule)} steps of "
        f"{cfg.batch_size} → {cfg.out_dir}"))

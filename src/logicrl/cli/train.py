"""``logicrl train``: rule-based RL on puzzles (REINFORCE++, GRPO, PPO, RLOO), resumable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from logicrl.config import load_config
from logicrl.errors import UserError
from logicrl.models import ModelNotFoundError
from logicrl.rl.config import TrainConfig
from logicrl.rl.trainer import Trainer, resume_config

console = Console(stderr=True)


def train_cmd(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML file with TrainConfig keys")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="continue the run in this directory from its last checkpoint")] = None,
    out: Annotated[Optional[Path], typer.Option(help="run directory (out_dir)")] = None,
    model: Annotated[Optional[str], typer.Option(help="model alias, path or hub id (model.name)")] = None,
    data: Annotated[Optional[Path], typer.Option(help="dataset directory (data.train)")] = None,
    steps: Annotated[Optional[int], typer.Option(help="stop after this many steps")] = None,
    overrides: Annotated[Optional[list[str]], typer.Argument(help="overrides: section.key=value (optim.lr=1e-6)")] = None,
) -> None:
    """Train a policy with RL on puzzles; metrics, rollouts and checkpoints go to the run directory."""
    explicit = {"out_dir": out, "steps": steps}
    nested = [f"model.name={model}"] * bool(model) + [f"data.train={data}"] * bool(data)
    if resume is not None:
        if config is not None:
            raise UserError("--resume reads the run's own config.yaml; drop --config (overrides are allowed)")
        cfg = resume_config(resume, [*nested, *(overrides or []), *[f"steps={steps}"] * bool(steps)])
    else:
        cfg = load_config(TrainConfig, config, [*nested, *(overrides or [])], **explicit)
    try:
        trainer = Trainer(cfg, resume=resume is not None)
    except ModelNotFoundError as exc:
        raise UserError(str(exc)) from None
    console.print(f"[bold]logicrl train[/]: {cfg.algorithm.advantage}, {len(trainer.schedule)} steps of "
                  f"{cfg.rollout.prompts_per_step}×{cfg.rollout.group_size} rollouts, "
                  f"{len(trainer.val_records)} validation puzzles → {cfg.out_dir}")
    final = trainer.fit()
    if final:
        console.print("final validation: " + json.dumps({k: round(v, 3) for k, v in final.items()
                                                          if k.count("/") == 1}))

"""Shared by the commands that make run directories (``train``, ``sft``): config or resume, then run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from logicrl.config import load_config
from logicrl.errors import UserError
from logicrl.rl.checkpoints import resume_config

T = TypeVar("T")


def run_config(config_class: type[T], config: Path | None, resume: Path | None, overrides: list[str] | None,
               shortcuts: dict[str, Any]) -> T:
    """A fresh run's config (defaults < YAML < options < overrides), or the resumed run's own config.yaml
    with the options and overrides applied. ``shortcuts`` maps dotted keys to option values (None = unset)."""
    dotted = [f"{key}={value}" for key, value in shortcuts.items() if value is not None]
    if resume is None:
        return load_config(config_class, config, [*dotted, *(overrides or [])])
    if config is not None:
        raise UserError("--resume reads the run's own config.yaml; drop --config (overrides are allowed)")
    return resume_config(config_class, resume, [*dotted, *(overrides or [])])

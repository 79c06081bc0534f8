"""Shared by the commands that make run directories (``train``, ``sft``): the config (fresh or resumed), and
the read-only checks that run before any model is loaded, converted or downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from logicrl.config import combine_overrides, exact_override, load_config
from logicrl.errors import UserError
from logicrl.rl.checkpoints import resume_config
from logicrl.rl.config import DataConfig
from logicrl.rl.schedule import load_held_out, load_puzzles

T = TypeVar("T")


def run_config(config_class: type[T], config: Path | None, resume: Path | None, overrides: list[str] | None,
               shortcuts: dict[str, Any]) -> T:
    """A fresh run's config (defaults < YAML < options < overrides), or the resumed run's own config.yaml
    with the options and overrides applied. ``shortcuts`` maps dotted keys to the options' typed values
    (None = unset); YAML never retypes them (``--out 2025-03-01`` stays a path)."""
    given = {key: value for key, value in shortcuts.items() if value is not None}
    if resume is None:
        return load_config(config_class, config, overrides, **given)
    if config is not None:
        raise UserError("--resume reads the run's own config.yaml; drop --config (overrides are allowed)")
    options = [exact_override(key, value) for key, value in given.items()]
    return resume_config(config_class, resume, combine_overrides(options, overrides or []))


def check_puzzles(data: DataConfig, *, held_out: bool) -> list[dict[str, Any]]:
    """The training puzzles, read as the trainers read them (DataError for a missing path, split or number of
    people); with ``held_out``, the validation puzzles are read too."""
    records = load_puzzles(data.train, "train", data.people)
    if held_out:
        load_held_out(data.train, data.val, data.people)
    return records

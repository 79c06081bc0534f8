"""Trainer checkpoints: a Hugging Face model directory plus everything needed to resume exactly.

``RUN_DIR/checkpoints/step_000020/`` holds the policy (safetensors, config, tokenizer, chat template:
``AutoModelForCausalLM.from_pretrained`` loads it), ``trainer_state.pt`` (optimizer, scheduler, KL
coefficient, RNG states, data cursor; tensors and plain values only, read back with
``torch.load(weights_only=True)``), ``trainer_state.json`` (the same cursor, human-readable) and, for PPO,
``critic.safetensors``. The directory is written atomically (`save_pretrained_atomic`); older
checkpoints beyond ``keep_last`` are removed after a new one is in place.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from logicrl.config import load_config, save_config
from logicrl.errors import UserError
from logicrl.models import save_pretrained_atomic

T = TypeVar("T")

STATE_FILE = "trainer_state.pt"
STATE_JSON = "trainer_state.json"


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:06d}"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first."""
    found = []
    for path in (Path(run_dir) / "checkpoints").glob("step_*"):
        if (path / STATE_FILE).is_file() and path.name.removeprefix("step_").isdigit():
            found.append((int(path.name.removeprefix("step_")), path))
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> tuple[int, Path]:
    found = list_checkpoints(run_dir)
    if not found:
        raise UserError(f"{run_dir}: no checkpoint to resume from (checkpoints/step_*/ with {STATE_FILE})")
    return found[-1]


def prepare_run_dir(run_dir: Path, config: Any, *, resume: bool, command: str) -> tuple[int, Path | None]:
    """``(first step, checkpoint to load)``: the latest checkpoint when resuming, else a fresh run directory
    with ``config.yaml`` (refusing a directory that already holds a run)."""
    run_dir = Path(run_dir)
    if resume:
        step, path = latest_checkpoint(run_dir)
        return step + 1, path
    if (run_dir / "metrics.jsonl").exists():
        raise UserError(f"{run_dir} already holds a run: continue it with `logicrl {command} --resume {run_dir}` "
                        "or pick another out_dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.yaml")
    return 1, None


def resume_config(config_class: type[T], run_dir: Path, overrides: list[str] | None = None) -> T:
    """The config a run was started with (``RUN_DIR/config.yaml``) with ``overrides``, pointed at ``run_dir``."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise UserError(f"{run_dir}: not a run directory (no config.yaml)")
    return load_config(config_class, path, [*(overrides or []), f"out_dir={run_dir}"])


def rng_states() -> dict[str, Any]:
    states = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate((3, tuple(int(x) for x in states["python"]), None))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(run_dir: Path, step: int, model: Any, tokenizer: Any, state: dict[str, Any], *,
                    keep_last: int, extra: Callable[[Path], None] | None = None) -> Path:
    """Write checkpoint ``step`` atomically, then prune to the newest ``keep_last``."""
    summary = {k: v for k, v in state.items() if isinstance(v, (int, float, str))}

    def write_state(directory: Path) -> None:
        torch.save({**state, "rng": rng_states()}, directory / STATE_FILE)
        (directory / STATE_JSON).write_text(json.dumps(summary, indent=2) + "\n")
        if extra is not None:
            extra(directory)

    path = save_pretrained_atomic(model, tokenizer, checkpoint_dir(run_dir, step), extra=write_state)
    for _, old in list_checkpoints(run_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def load_state(directory: Path) -> dict[str, Any]:
    """The trainer state of a checkpoint (RNG restored by the caller with `restore_rng`)."""
    return torch.load(Path(directory) / STATE_FILE, weights_only=True, map_location="cpu")

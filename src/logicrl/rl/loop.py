"""What an RL run (`logicrl.rl.trainer.Trainer`) and an SFT run (`logicrl.rl.sft.SFTTrainer`) share: the run
directory and its lock, the device set-up, and the step loop with its validation and checkpoint cadence.

A subclass builds its models, data, optimizers and run log in ``_build`` and provides ``train_step``,
``validate``, ``save`` and the progress bar's label and read-out; `fit` runs

    [validate(0) on a fresh run, when ``validate_first``]
    for step in start_step..N:  train_step(step)
                                validate(step) when there are held-out puzzles and `due`(step, val_every, N)
                                save(step)     when `due`(step, save_every, N)

and records the run's end in the log (`logicrl.rl.run_log`).
"""

from __future__ import annotations

import contextlib
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch
from tqdm import tqdm

from logicrl.engine.allocator import keep_freed_memory
from logicrl.engine.threads import set_cpu_threads
from logicrl.models import compute_autocast, resolve_device, resolve_dtype
from logicrl.rl.checkpoints import checkpoint_dir, prepare_run_dir, record_config
from logicrl.rl.run_log import RunLog
from logicrl.rl.schedule import AdaptiveSchedule, PromptSchedule


def due(step: int, every: int, total: int) -> bool:
    """Whether a cadence of ``every`` steps (0: none) falls on ``step``; the last step always counts."""
    return step == total or bool(every and step % every == 0)


class TrainingLoop(ABC):
    """The shell of a run from its config: ``command`` names it in the run directory (``train`` or ``sft``)."""

    command: ClassVar[str]
    validate_first: ClassVar[bool] = False  # validate the starting model before step 1 of a fresh run
    schedule: PromptSchedule | AdaptiveSchedule
    val_records: list[dict[str, Any]]
    log: RunLog

    def __init__(self, config: Any, *, resume: bool = False, show_progress: bool = True) -> None:
        self.config, self.show_progress = config, show_progress
        self.run_dir = Path(config.out_dir)
        self.start_step, checkpoint, self.run_lock = prepare_run_dir(
            self.run_dir, config, resume=resume, command=self.command)
        with self.run_lock.released_on_error():
            self._build(checkpoint)
            record_config(config, resume=resume)

    @abstractmethod
    def _build(self, checkpoint: Path | None) -> None:
        """Device, models, data (``schedule``, ``val_records``), optimizers (restored from ``checkpoint`` when
        resuming) and the run ``log``."""

    def _setup_device(self) -> None:
        """The device and compute dtype of ``model.*``; on CPU the thread count and the allocator; the torch seed."""
        cfg = self.config
        self.device = resolve_device(cfg.model.device)
        self.compute_dtype = resolve_dtype(cfg.model.dtype, self.device)
        if self.device.type == "cpu":
            set_cpu_threads(cfg.threads)
            keep_freed_memory()
            if self.compute_dtype == torch.float16:  # no fp16 autocast on CPU: said, not silently changed
                warnings.warn("model.dtype=float16 on CPU: the forwards run in float32 (CPUs have no float16 "
                              "autocast here) while the reference is stored in float16; use bfloat16 or float32",
                              stacklevel=2)
        torch.manual_seed(cfg.seed)

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16/fp16 compute over fp32 master weights: on GPU, and on CPU with model.dtype=bfloat16."""
        return compute_autocast(self.device, self.compute_dtype)

    # ------------------------------------------------------------------ what a subclass provides

    @abstractmethod
    def progress_label(self) -> str:
        """The progress bar's label."""

    @abstractmethod
    def progress_postfix(self, metrics: dict[str, float]) -> dict[str, str]:
        """What the progress bar shows of a step's metrics."""

    @abstractmethod
    def train_step(self, step: int) -> dict[str, float]:
        """One optimizer step; logs and returns its metrics."""

    @abstractmethod
    def validate(self, step: int) -> dict[str, float]:
        """Greedy responses to ``val_records``; logs and returns the ``val/*`` metrics."""

    @abstractmethod
    def save(self, step: int) -> Path:
        """The checkpoint of ``step``."""

    # ------------------------------------------------------------------ the loop

    def fit(self) -> dict[str, float]:
        """Train from ``start_step`` to the end of the schedule; return the last validation metrics."""
        cfg = self.config
        total = len(self.schedule)
        last_val: dict[str, float] = self.log.last_values("val")  # a resume after the last checkpoint: its own
        if self.validate_first and self.start_step == 1 and self.val_records:
            last_val = self.validate(0)
        bar = tqdm(total=total, initial=self.start_step - 1, desc=self.progress_label(), unit="step",
                   disable=not self.show_progress)
        try:
            for step in range(self.start_step, total + 1):
                metrics = self.train_step(step)
                bar.update(1)
                bar.set_postfix(self.progress_postfix(metrics))
                if self.val_records and due(step, cfg.val_every, total):
                    last_val = self.validate(step)
                if due(step, cfg.save_every, total):
                    self.save(step)
            self.log.finish(total, checkpoint_dir(self.run_dir, total), last_val)
        finally:
            bar.close()
            self.log.close()
            self.run_lock.release()
        return last_val

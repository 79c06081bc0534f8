"""A run directory's logs: ``metrics.jsonl``, TensorBoard scalars (``tb/``), and per-step sample files.

Layout (the contract `logicrl report` reads; docs/architecture.md)::

    RUN_DIR/metrics.jsonl            {"kind": "train"|"val", "step": int, "time": unix s, "<metric>": float, ...}
    RUN_DIR/tb/                      the same scalars for TensorBoard
    RUN_DIR/rollouts/step_000001.jsonl   every sampled response of a training step
    RUN_DIR/val/step_000010.jsonl        every validation response

On resume `truncate_after(step)` drops lines and files newer than the checkpoint, so the logs of a resumed
run are those of an uninterrupted one.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from logicrl.errors import DataError
from logicrl.io import atomic_write_text, read_appended_jsonl, write_jsonl

METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"  # written last: its presence marks a finished run


def step_file(directory: Path, step: int) -> Path:
    return directory / f"step_{step:06d}.jsonl"


class RunLog:
    """Appends metric lines and writes sample files, and the same scalars to TensorBoard (``RUN_DIR/tb``; train
    metrics tagged ``train/<name>``, validation's as named, ``val/...``) unless ``tensorboard=False``."""

    def __init__(self, run_dir: Path, *, tensorboard: bool = True, purge_step: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.run_dir / METRICS_FILE
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # (imports tensorboard: only where a run logs)

            self._tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=purge_step)

    def metrics(self, kind: str, step: int, values: Mapping[str, float]) -> None:
        line = {"kind": kind, "step": step, "time": round(time.time(), 3), **values}
        with self.metrics_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        if self._tb is not None:
            prefix = "" if kind == "val" else "train/"
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self._tb.add_scalar(prefix + key, value, step)
            self._tb.flush()

    def samples(self, folder: str, step: int, rows: Iterable[Mapping[str, Any]]) -> None:
        write_jsonl(step_file(self.run_dir / folder, step), ({"step": step, **row} for row in rows))

    def finish(self, step: int, checkpoint: Path, final: Mapping[str, float]) -> None:
        """Mark the run finished: ``summary.json`` with the last step, its checkpoint and final validation."""
        summary = {"finished": True, "steps": step, "checkpoint": str(Path(checkpoint).absolute()), "final": dict(final)}
        atomic_write_text(self.run_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")

    def truncate_after(self, step: int) -> None:
        """Forget everything logged after ``step`` (metrics lines, sample files) and the finished mark."""
        (self.run_dir / SUMMARY_FILE).unlink(missing_ok=True)
        if self.metrics_path.is_file():
            kept = [json.dumps(row) for _, row in read_appended_jsonl(self.metrics_path)
                    if row.get("step", 0) <= step]
            atomic_write_text(self.metrics_path, "".join(line + "\n" for line in kept))
        for folder in ("rollouts", "val"):
            for path in (self.run_dir / folder).glob("step_*.jsonl"):
                if int(path.stem.removeprefix("step_")) > step:
                    path.unlink()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()

    def last_values(self, kind: str) -> dict[str, Any]:
        """The metrics of the last ``kind`` line logged (without kind, step and time); empty if none."""
        rows = read_metrics(self.run_dir, kind) if self.metrics_path.is_file() else []
        return {k: v for k, v in rows[-1].items() if k not in ("kind", "step", "time")} if rows else {}


def open_run_log(run_dir: Path, done: int) -> RunLog:
    """The log of a run going on after step ``done``, the step of the checkpoint it resumes from (0: from the
    start). What was logged after that step goes, so the logs are those of an uninterrupted run: from the
    start, everything an earlier start left (it stopped before its first checkpoint), TensorBoard's too."""
    if done == 0:
        shutil.rmtree(Path(run_dir) / "tb", ignore_errors=True)
    log = RunLog(run_dir, purge_step=done + 1 if done else None)
    log.truncate_after(done if done else -1)
    return log


def read_metrics(run_dir: Path, kind: str | None = None) -> list[dict[str, Any]]:
    """The metric lines of a run (optionally only one kind)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    rows = read_appended_jsonl(path)
    return [r for _, r in rows if kind is None or r.get("kind") == kind]

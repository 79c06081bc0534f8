"""Reading a training run directory (the trainer's output), with one-line errors naming file and line.

Layout (written by ``logicrl train``)::

    RUN_DIR/config.yaml                 the resolved TrainConfig
    RUN_DIR/metrics.jsonl               {"kind": "train"|"val", "step": int, "time": s, <metric>: number, ...}
    RUN_DIR/rollouts/step_000001.jsonl  one row per sampled response at that step
    RUN_DIR/val/step_000010.jsonl       validation responses, same row format

Metric lines of other kinds are skipped (forward compatible); when a step is logged twice (a resumed
run) the later line wins. Response files are read lazily, one row at a time, so memory does not grow
with the number of steps.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from logicrl.errors import DataError
from logicrl.io import read_appended_jsonl, read_jsonl, read_text_file

METRIC_KINDS = ("train", "val")
_STEP_FILE = re.compile(r"step_(\d+)\.jsonl")


@dataclass(frozen=True)
class Metrics:
    """Metric lines by kind, each sorted by step: ``{"step": int, "<key>": float, ...}``."""

    train: list[dict[str, float]]
    val: list[dict[str, float]]

    def series(self, key: str, kind: str = "train") -> tuple[list[int], list[float]]:
        """(steps, values) of one metric, skipping lines without it or with a non-finite value."""
        rows = self.train if kind == "train" else self.val
        pairs = [(int(r["step"]), r[key]) for r in rows if key in r and math.isfinite(r[key])]
        return [s for s, _ in pairs], [v for _, v in pairs]

    def keys(self, kind: str = "train") -> list[str]:
        """Metric names present in at least one line of ``kind``, in first-seen order."""
        rows = self.train if kind == "train" else self.val
        return list(dict.fromkeys(k for r in rows for k in r if k not in ("step", "time")))


@dataclass(frozen=True)
class Response:
    """One logged response (a row of rollouts/ or val/); ``reward`` is the total score."""

    step: int
    puzzle_id: str
    n_people: int | None
    sample: int | None
    response: str
    length: int
    truncated: bool
    reward: float
    solved: bool
    format_ok: bool
    answer_status: str | None


def check_run_dir(run_dir: Path) -> None:
    """Raise a DataError unless ``run_dir`` is a directory with a metrics.jsonl."""
    if not run_dir.exists():
        raise DataError(f"run directory {run_dir} does not exist (pass the out_dir of `logicrl train`)")
    if not run_dir.is_dir():
        raise DataError(f"{run_dir} is a file, not a run directory (pass the out_dir of `logicrl train`)")
    if not (run_dir / "metrics.jsonl").is_file():
        raise DataError(f"{run_dir} has no metrics.jsonl: not a `logicrl train` run directory, "
                        "or it has not logged yet")


def load_metrics(run_dir: Path) -> Metrics:
    """Parse metrics.jsonl: numbers kept (booleans as 0/1), other values dropped, one line per step."""
    path = run_dir / "metrics.jsonl"
    by_kind: dict[str, dict[int, dict[str, float]]] = {kind: {} for kind in METRIC_KINDS}
    for lineno, obj in read_appended_jsonl(path):
        kind = obj.get("kind")
        if kind is None:
            raise DataError(f"{path}:{lineno}: metric line has no 'kind' (expected 'train' or 'val')")
        if kind not in METRIC_KINDS:
            continue
        step = obj.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            raise DataError(f"{path}:{lineno}: 'step' must be an integer, got {step!r}")
        by_kind[kind][step] = {k: float(v) for k, v in obj.items() if isinstance(v, (int, float))}
    if not any(by_kind.values()):
        raise DataError(f"{path}: no 'train' or 'val' metric lines yet")
    return Metrics(*(
        [by_kind[kind][step] for step in sorted(by_kind[kind])] for kind in METRIC_KINDS
    ))


def response_files(run_dir: Path, source: str = "rollouts") -> list[tuple[int, Path]]:
    """(step, path) of every ``<source>/step_N.jsonl``, by step; empty when the folder is absent."""
    folder = run_dir / source
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_FILE.fullmatch(p.name))]
    return sorted(found)


def _field(obj: dict[str, Any], key: str, types: tuple[type, ...], where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
        raise DataError(f"{where}: field '{key}' is missing or not {'/'.join(t.__name__ for t in types)}")
    return value


def _finite(obj: dict[str, Any], key: str, where: str) -> float:
    """A number field that must be finite (NaN or inf would spoil every mean it enters)."""
    value = float(_field(obj, key, (int, float), where))
    if not math.isfinite(value):
        raise DataError(f"{where}: field '{key}' is {value}, not a finite number")
    return value


def read_responses(path: Path, step: int) -> Iterator[Response]:
    """Stream the rows of one response file; a row lacking a required field is a file:line error."""
    for lineno, obj in read_jsonl(path):
        where = f"{path}:{lineno}"
        row_step = obj.get("step", step)
        yield Response(
            step=row_step if isinstance(row_step, int) else step,
            puzzle_id="" if obj.get("id") is None else str(obj["id"]),
            n_people=obj.get("n_people") if isinstance(obj.get("n_people"), int) else None,
            sample=obj.get("sample") if isinstance(obj.get("sample"), int) else None,
            response=_field(obj, "response", (str,), where),
            length=_field(obj, "length", (int,), where),
            truncated=bool(obj.get("truncated", False)),
            reward=_finite(obj, "reward", where),
            solved=_field(obj, "solved", (bool,), where),
            format_ok=_field(obj, "format_ok", (bool,), where),
            answer_status=obj.get("answer_status") if isinstance(obj.get("answer_status"), str) else None,
        )


def load_run_config(run_dir: Path) -> dict[str, Any]:
    """The run's config.yaml as a mapping ({} when absent); shown on the page, never validated."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(read_text_file(path))
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return data if isinstance(data, dict) else {}

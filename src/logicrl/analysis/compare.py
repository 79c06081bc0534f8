"""Several training runs side by side (``logicrl compare``): smoothed curves over steps and over training
time, the keys whose config values differ, and the table of an eval directory with paired intervals.

Reads only what ``logicrl train`` and ``logicrl eval`` write (run directories: metrics.jsonl, config.yaml;
an eval directory: results.json, compare.json) and writes one self-contained HTML page, ``curves_step.png``,
``curves_time.png`` and ``comparison.json``, each atomically, ``index.html`` last. Every input is read and
checked before the first file is written.

Smoothing is the report's: a trailing moving average (`plots.smooth`) over ``smooth`` points, by default
`plots.auto_window` (the report's rule). Training time is the running sum of the
trainer's ``time/step`` (generation, scoring and update; validation, checkpoints and pauses between resumes
left out), so a resumed run is not charged for its downtime; a run without ``time/step`` falls back to the
``time`` stamps minus the first.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logicrl.analysis import plots
from logicrl.analysis.config import CompareConfig
from logicrl.analysis.html import render_compare_html
from logicrl.analysis.report import write_page
from logicrl.analysis.run import Metrics, check_run_dir, load_metrics, load_run_config
from logicrl.errors import DataError, UserError
from logicrl.io import read_text_file

if TYPE_CHECKING:
    from logicrl.evaluate.tables import Table

# (panel title, metric kind, metrics.jsonl key): one panel per curve, drawn when any run logged the key.
CURVES: tuple[tuple[str, str, str], ...] = (
    ("reward", "train", "reward/mean"),
    ("accuracy", "train", "acc"),
    ("validation accuracy", "val", "val/acc"),
    ("response length (tokens)", "train", "length/mean"),
    ("KL to the reference", "train", "kl"),
    ("entropy", "train", "entropy"),
)
PLOTS = ("curves_step", "curves_time")
COMPARISON_FILE = "comparison.json"  # every series and table; marks the folder as a comparison's (`io.OUTPUT_MARKS`)


@dataclass(frozen=True)
class RunRef:
    """A run directory and its label on the page (the directory's name, or ``LABEL=DIR``)."""

    label: str
    path: Path


@dataclass(frozen=True)
class Curve:
    """One metric of one run: its points, their training time (None: unknown) and the moving average."""

    steps: list[int]
    seconds: list[float | None]
    values: list[float]
    window: int
    smoothed: list[float]


@dataclass(frozen=True)
class Comparison:
    """Everything the page, the plots and `COMPARISON_FILE` show."""

    runs: list[RunRef]
    configs: dict[str, dict[str, Any]]       # label -> the run's config.yaml
    curves: dict[str, dict[str, Curve]]      # panel title -> label -> curve (runs without the key left out)
    diff: list[dict[str, Any]]               # {"key": dotted key, "values": {label: value}} (absent: no label)
    ignored: list[str]
    stamped: list[str]                       # labels of the runs timed by their `time` stamps (no time/step)
    eval_dir: Path | None
    eval_tables: list[tuple[str, Table]]

    def summary(self) -> dict[str, Any]:
        return {
            "runs": {r.label: str(r.path) for r in self.runs},
            "curves": {title: {label: vars(c) for label, c in by_run.items()} for title, by_run in self.curves.items()},
            "config_diff": self.diff, "ignored": self.ignored, "timed_by_stamps": self.stamped,
            "eval_dir": None if self.eval_dir is None else str(self.eval_dir),
            "eval_tables": [{"title": title, "header": header, "rows": rows}
                            for title, (header, rows) in self.eval_tables],
        }


def run_refs(specs: list[str]) -> list[RunRef]:
    """``DIR`` or ``LABEL=DIR`` per run (a path that exists as given is a directory, even with a ``=``);
    at least two runs, each a run directory, labels unique."""
    refs = []
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label or Path(spec).exists():
            path = spec
            label = Path(spec).resolve().name
        refs.append(RunRef(label, Path(path)))
    if len(refs) < 2:
        raise UserError(f"give at least two run directories to compare (got {len(refs)})")
    for ref in refs:
        check_run_dir(ref.path)
    labels = [r.label for r in refs]
    for ref in refs:
        if labels.count(ref.label) > 1:
            raise UserError(f"two runs share the label {ref.label!r}: name them LABEL=DIR")
    return refs


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (``{"optim": {"lr": 1}}`` -> ``{"optim.lr": 1}``); lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_diff(configs: dict[str, dict[str, Any]], ignore: list[str]) -> list[dict[str, Any]]:
    """The dotted keys whose values differ between the configs (a key one run lacks differs), in first-seen
    order; keys equal to or under an ``ignore`` entry are left out."""
    flat = {label: flatten(config) for label, config in configs.items()}
    keys = dict.fromkeys(k for config in flat.values() for k in config)
    rows = []
    for key in keys:
        if any(key == i or key.startswith(f"{i}.") for i in ignore):
            continue
        if len({_canonical(config, key) for config in flat.values()}) > 1:
            rows.append({"key": key, "values": {label: config[key] for label, config in flat.items()
                                                if key in config}})
    return rows


def _canonical(config: dict[str, Any], key: str) -> str:
    """A value as comparable text; an absent key differs from every value (``null`` included)."""
    return json.dumps(config[key], sort_keys=True, default=str) if key in config else "\0absent"


def times_each_step(metrics: Metrics) -> bool:
    """Whether every train step logged ``time/step`` (the training clock; else the ``time`` stamps)."""
    return bool(metrics.train) and all("time/step" in row for row in metrics.train)


def training_seconds(metrics: Metrics) -> dict[str, dict[int, float]]:
    """kind -> step -> seconds of training by then (see the module docstring); a validation point sits at
    the time of the last train step at or before it (0 before the first)."""
    train, val = metrics.train, metrics.val
    if times_each_step(metrics):
        clock, running = {}, 0.0
        for row in train:
            running += row["time/step"]
            clock[int(row["step"])] = running
        steps = sorted(clock)
        at = {int(row["step"]): bisect_right(steps, int(row["step"])) for row in val}
        return {"train": clock, "val": {step: clock[steps[i - 1]] if i else 0.0 for step, i in at.items()}}
    stamped = [row["time"] for row in (*train, *val) if "time" in row]
    origin = min(stamped, default=0.0)
    return {kind: {int(row["step"]): row["time"] - origin for row in rows if "time" in row}
            for kind, rows in (("train", train), ("val", val))}


def curve(metrics: Metrics, kind: str, key: str, clock: dict[str, dict[int, float]],
          smooth: int | None) -> Curve | None:
    """One metric's curve (None when the run never logged it)."""
    steps, values = metrics.series(key, kind)
    if not values:
        return None
    window = smooth or plots.auto_window(len(values))
    return Curve(steps=steps, seconds=[clock[kind].get(s) for s in steps], values=values, window=window,
                 smoothed=plots.smooth(values, window))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(read_text_file(path))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not readable JSON ({str(exc).splitlines()[0]})") from None


def read_eval_dir(eval_dir: Path) -> list[tuple[str, Table]]:
    """The tables `logicrl eval` printed, rebuilt from its results.json (accuracy by number of people, pass@k
    and maj@k) and, with two or more models, its compare.json (paired differences, 95% intervals)."""
    from logicrl.evaluate.compare import comparison_table  # evaluate.tables imports torch: only with --eval
    from logicrl.evaluate.tables import extra_metrics, metric_table, table2

    if not eval_dir.exists():
        raise DataError(f"eval directory {eval_dir} does not exist (pass the --out of `logicrl eval`)")
    if not eval_dir.is_dir():
        raise DataError(f"{eval_dir} is a file, not an eval directory (pass the --out of `logicrl eval`)")
    path = eval_dir / "results.json"
    if not path.is_file():
        raise DataError(f"{eval_dir} has no results.json: not an output directory of `logicrl eval`")
    summary = _read_json(path)
    try:
        results = {label: {int(n): entry for n, entry in model["by_people"].items()}
                   for label, model in summary["models"].items()}
        tables = [("Accuracy by number of people", table2(results))]
        tables += [(metric, metric_table(results, metric)) for metric in extra_metrics(results)]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise DataError(f"{path}: not the results.json of `logicrl eval` "
                        "(expected models.<label>.by_people.<N>.acc)") from None
    if not results:
        raise DataError(f"{path}: holds no model's results (an evaluation that did not finish?): pass the --out of "
                        "a finished `logicrl eval`")
    if len(results) > 1:
        compare_path = eval_dir / "compare.json"
        if not compare_path.is_file():
            raise DataError(f"{eval_dir} has no compare.json (`logicrl eval` writes it beside results.json "
                            "when it evaluates two or more models)")
        try:
            paired = comparison_table(_read_json(compare_path))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise DataError(f"{compare_path}: not the compare.json of `logicrl eval`") from None
        base = next(iter(results))
        tables.append((f"Paired difference vs {base} (first sample per puzzle; Δ and 95% interval)", paired))
    return tables


def build_comparison(refs: list[RunRef], cfg: CompareConfig | None = None,
                     eval_dir: Path | None = None) -> Comparison:
    """Read every run (and the eval directory) and compute the curves and the config diff."""
    cfg = cfg or CompareConfig()
    curves: dict[str, dict[str, Curve]] = {}
    configs = {}
    stamped = []
    for ref in refs:
        metrics = load_metrics(ref.path)
        if not times_each_step(metrics):
            stamped.append(ref.label)
        configs[ref.label] = load_run_config(ref.path)
        clock = training_seconds(metrics)
        for title, kind, key in CURVES:
            found = curve(metrics, kind, key, clock, cfg.smooth)
            if found is not None:
                curves.setdefault(title, {})[ref.label] = found
    curves = {title: curves[title] for title, _, _ in CURVES if title in curves}
    return Comparison(runs=refs, configs=configs, curves=curves, diff=config_diff(configs, cfg.ignore),
                      ignored=list(cfg.ignore), stamped=stamped, eval_dir=eval_dir,
                      eval_tables=read_eval_dir(eval_dir) if eval_dir is not None else [])


def render_images(comparison: Comparison) -> dict[str, bytes]:
    """Plot name (one of ``PLOTS``) -> PNG bytes; one colour per run, the same in both figures."""
    colors = dict(zip((ref.label for ref in comparison.runs), plots.run_colors(len(comparison.runs)), strict=True))
    images = {f"curves_{axis}": plots.compare_curves_png(comparison.curves, colors, axis)
              for axis in ("step", "time")}
    return {name: png for name, png in images.items() if png is not None}


def write_comparison(comparison: Comparison, out_dir: Path) -> Path:
    """Write the PNGs, `COMPARISON_FILE` and index.html (last) into ``out_dir``; return the page."""
    images = render_images(comparison)
    return write_page(out_dir, images, PLOTS, comparison.summary(), COMPARISON_FILE,
                      render_compare_html(comparison, images))

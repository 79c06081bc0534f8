"""Build a run's report (numbers, tables, examples) and write it: PNGs, report.json and one HTML page.

``build_report`` streams the response files once (one row in memory at a time, plus per-bin sums and a
few examples); ``write_report`` renders the plots and the page and writes each file atomically.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logicrl.analysis import plots
from logicrl.analysis.aggregate import Bin, aggregate, bin_size_for, total
from logicrl.analysis.config import ReportConfig
from logicrl.analysis.examples import Example, ExamplePicker
from logicrl.analysis.features import compile_matchers
from logicrl.analysis.html import render_html
from logicrl.analysis.run import (
    Metrics,
    check_run_dir,
    load_metrics,
    load_run_config,
    read_responses,
    response_files,
)
from logicrl.analysis.tables import (
    behaviours_table,
    length_rows,
    metrics_table,
    mixing_row,
    pearson,
    val_people_table,
    words_table,
)
from logicrl.analysis.trend import Trend
from logicrl.io import atomic_path, atomic_write_text


@dataclass(frozen=True)
class ReportData:
    """Everything the page, the plots and the console summary show."""

    run_dir: Path
    run_config: dict[str, Any]
    cfg: ReportConfig
    metrics: Metrics
    bins: list[Bin]
    bin_size: int
    files_read: int
    files_total: int
    examples: list[Example]
    tables: dict[str, Any]

    @property
    def trends(self) -> dict[str, Trend]:
        return {row["behaviour"]: Trend(row["verdict"], row["rise"], row["jump"], row["aha_step"],
                                        row["suddenness"]) for row in self.tables["behaviours"]}

    def summary(self) -> dict[str, Any]:
        """JSON-able summary (`REPORT_FILE`): the scope of the analysis and every table."""
        return {"run_dir": str(self.run_dir), "source": self.cfg.source, "files_read": self.files_read,
                "files_total": self.files_total, "bin_size": self.bin_size,
                "responses": sum(b.all.n for b in self.bins), **self.tables}


def _tables(metrics: Metrics, bins: list[Bin], cfg: ReportConfig) -> dict[str, Any]:
    pooled = total(bins)
    lengths = length_rows(bins)
    usable = [row for row in lengths if row["n"]]
    return {
        "metrics": metrics_table(metrics),
        "val_people": val_people_table(metrics),
        "words": words_table(bins, pooled, cfg.words),
        "mixing": mixing_row(bins, pooled),
        "behaviours": behaviours_table(bins, pooled, list(cfg.behaviours), cfg.aha_window, cfg.min_rise,
                                       cfg.sudden_share),
        "length": lengths,
        "length_acc_r": pearson([row["length"] for row in usable], [row["acc"] for row in usable]),
    }


def build_report(run_dir: Path, cfg: ReportConfig | None = None) -> ReportData:
    """Read ``run_dir`` (errors are one-line DataErrors naming file:line) and compute the report."""
    cfg = cfg or ReportConfig()
    check_run_dir(run_dir)
    metrics = load_metrics(run_dir)
    files = response_files(run_dir, cfg.source)
    chosen = files[:: cfg.steps_every]
    bin_size = cfg.bin or bin_size_for([step for step, _ in chosen])
    picker = ExamplePicker(cfg.example_chars)
    rows = (r for step, path in chosen for r in read_responses(path, step))
    matchers = compile_matchers(cfg.words, cfg.behaviours, cfg.mixing_threshold)
    bins = aggregate(rows, matchers, bin_size, chosen[0][0] if chosen else 0, on_row=picker.offer)
    return ReportData(run_dir=run_dir, run_config=load_run_config(run_dir), cfg=cfg, metrics=metrics,
                      bins=bins, bin_size=bin_size, files_read=len(chosen), files_total=len(files),
                      examples=picker.examples(cfg.examples), tables=_tables(metrics, bins, cfg))


PLOTS = ("curves", "val_people", "words", "words_score", "mixing", "behaviours", "length")
REPORT_FILE = "report.json"  # every table; marks the folder as a report's (`io.OUTPUT_MARKS`)


def render_images(data: ReportData) -> dict[str, bytes]:
    """Plot name (one of ``PLOTS``) -> PNG bytes, in page order; plots without data are left out."""
    people = [row["people"] for row in data.tables["val_people"]]
    behaviours = list(data.cfg.behaviours)
    images = {
        "curves": plots.curves_png(data.metrics),
        "val_people": plots.val_people_png(data.metrics, people),
        "words": plots.shares_png(data.bins, "words", data.cfg.words, "thinking words (share of responses)"),
        "words_score": plots.with_without_png(data.tables["words"], "word", "reward with vs without a word"),
        "mixing": plots.mixing_png(data.bins),
        "behaviours": plots.shares_png(data.bins, "behaviours", behaviours, "reflective behaviours",
                                       data.trends),
        "length": plots.length_png([row for row in data.tables["length"] if row["n"]]),
    }
    return {name: png for name, png in images.items() if png is not None}


def _json_safe(value: Any) -> Any:
    """NaN/inf become null so a page's summary file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def write_page(out_dir: Path, images: dict[str, bytes], names: tuple[str, ...], summary: dict[str, Any],
               summary_file: str, page_html: str) -> Path:
    """Write ``<name>.png`` for each plot of ``names``, ``summary`` as ``summary_file`` (strict JSON: NaN/inf
    as null, other values JSON lacks, such as a YAML date in a run's config, as text; its name marks the
    folder as this command's, `io.OUTPUT_MARKS`) and index.html (last) into
    ``out_dir``, each atomically; return the page. A plot without data this time (not in ``images``) has its
    PNG from an earlier run removed."""
    for name in names:
        if name in images:
            with atomic_path(out_dir / f"{name}.png") as tmp:
                tmp.write_bytes(images[name])
        else:
            (out_dir / f"{name}.png").unlink(missing_ok=True)
    atomic_write_text(out_dir / summary_file, json.dumps(_json_safe(summary), indent=1, default=str) + "\n")
    page = out_dir / "index.html"
    atomic_write_text(page, page_html)
    return page


def write_report(data: ReportData, out_dir: Path) -> Path:
    """Write ``<plot>.png`` files, `REPORT_FILE` and index.html (last) into ``out_dir``; return the page."""
    images = render_images(data)
    return write_page(out_dir, images, PLOTS, data.summary(), REPORT_FILE, render_html(data, images))

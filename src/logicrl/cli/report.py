"""``logicrl report RUN_DIR``: plots, tables and one HTML page from a training run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from logicrl.analysis.config import ReportConfig
from logicrl.analysis.report import REPORT_FILE, ReportData, build_report, write_report
from logicrl.analysis.run import check_run_dir
from logicrl.cli.output import plain_console, print_line, print_table
from logicrl.config import load_config
from logicrl.io import STALE_TEMP_S, check_not_another_output, check_output_dir, remove_temp_files

console = plain_console()

Opt = typer.Option


def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="run directory of `logicrl train` (holds metrics.jsonl)")],
    out: Annotated[Path | None, Opt(help="output folder (default: RUN_DIR/report)")] = None,
    source: Annotated[str | None, Opt(help="responses to analyse: 'rollouts' or 'val'")] = None,
    bin: Annotated[int | None, Opt("--bin", help="steps pooled per point (default: ≤ 200 points)")] = None,
    steps_every: Annotated[int | None, Opt(help="read only every k-th step file")] = None,
    words: Annotated[str | None, Opt(help="comma-separated thinking words (replace the default)")] = None,
    config: Annotated[Path | None, Opt("--config", "-c", help="YAML file with ReportConfig keys")] = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value (e.g. aha_window=5)")] = None,
) -> None:
    """Training curves, thinking words, language mixing, reflective behaviours, length vs accuracy."""
    word_list = [w.strip() for w in words.split(",") if w.strip()] if words is not None else None
    cfg = load_config(ReportConfig, config, overrides, source=source, bin=bin, steps_every=steps_every,
                      words=word_list)
    check_run_dir(run_dir)  # before the default --out, RUN_DIR/report, is checked
    out = out or run_dir / "report"
    check_output_dir(out)
    check_not_another_output(out, own=REPORT_FILE)
    remove_temp_files(out, older_than_s=STALE_TEMP_S)
    data = build_report(run_dir, cfg)
    page = write_report(data, out)
    print_summary(data)
    print_line(console, f"report: {page}")


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f}%" if percent else f"{value:.3g}"


def print_summary(data: ReportData) -> None:
    """Headline metrics, then words and mixing, then behaviours (pooled over all analysed responses)."""
    stats = ("first", "last", "min", "max")
    print_table(console, f"{data.run_dir}: metrics", ("metric", *stats), [
        (row["metric"], *(_fmt(row[k]) for k in stats)) for row in data.tables["metrics"]
    ])
    if not data.bins:
        print_line(console, f"no response logs in {data.run_dir / data.cfg.source}/")
        return
    responses = sum(b.all.n for b in data.bins)
    bins = f"{len(data.bins)} bin{'s' if len(data.bins) != 1 else ''}"
    console.print(f"{responses} responses ({data.cfg.source}), {bins} of up to {data.bin_size} steps")
    mixing = {"word": "non-Latin script", **data.tables["mixing"]}
    columns = ("feature", "n", "share", "reward with", "without")
    print_table(console, "thinking words, language mixing", columns, [
        (row["word"], str(row["n_with"]), _fmt(row["share"], True), _fmt(row["reward_with"]),
         _fmt(row["reward_without"])) for row in [*data.tables["words"], mixing]
    ])
    print_table(console, "reflective behaviours", ("behaviour", "n", "first → last", "trend", "aha step"), [
        (row["behaviour"], str(row["n_with"]),
         f"{_fmt(row['first_share'], True)} → {_fmt(row['last_share'], True)}", row["verdict"],
         str(row["aha_step"] or "–")) for row in data.tables["behaviours"]
    ])

"""``logicrl compare RUN_A RUN_B …``: training runs side by side — curves, config diff, eval table — as PNGs
and one HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from logicrl.analysis.compare import COMPARISON_FILE, Comparison, build_comparison, run_refs, write_comparison
from logicrl.analysis.config import CompareConfig
from logicrl.cli.output import plain_console, print_line, print_table
from logicrl.config import load_config
from logicrl.errors import UserError
from logicrl.io import STALE_TEMP_S, check_not_another_output, check_output_dir, remove_temp_files

console = plain_console()

Opt = typer.Option


def split_arguments(arguments: list[str]) -> tuple[list[str], list[str]]:
    """(runs, overrides): an argument ``key=value`` whose key is a CompareConfig field (``smooth=5``,
    ``ignore=[out_dir,seed]``) is an override, unless it names an existing path; the rest are ``DIR`` or
    ``LABEL=DIR``. A ``LABEL=DIR`` whose DIR does not exist is a UserError that lists the config keys too (it
    may be a misspelt override)."""
    runs, overrides = [], []
    for argument in arguments:
        key, sep, value = argument.partition("=")
        is_key = sep and key.split(".")[0] in CompareConfig.model_fields and not Path(argument).exists()
        if sep and not is_key and not Path(argument).exists() and not Path(value).exists():
            raise UserError(f"{argument!r}: no run directory {value!r}, and {key!r} is not a config key of compare "
                            f"(keys: {', '.join(CompareConfig.model_fields)}); runs are DIR or LABEL=DIR")
        (overrides if is_key else runs).append(argument)
    return runs, overrides


def compare_cmd(
    runs: Annotated[list[str] | None, typer.Argument(
        help="run directories of `logicrl train` (LABEL=DIR names one), then key=value overrides (smooth=5)",
        show_default=False, metavar="RUN")] = None,
    out: Annotated[Path, Opt(help="output folder")] = Path("outputs/compare"),
    eval_dir: Annotated[Path | None, Opt(
        "--eval", help="output directory of `logicrl eval`: its table and paired intervals")] = None,
    smooth: Annotated[int | None, Opt(help="moving-average window in points (default: the report's)")] = None,
    config: Annotated[Path | None, Opt("--config", "-c", help="YAML file with CompareConfig keys")] = None,
) -> None:
    """Several runs side by side: smoothed curves over steps and training time, config diff, eval table."""
    specs, overrides = split_arguments(runs or [])
    cfg = load_config(CompareConfig, config, overrides, smooth=smooth)
    check_output_dir(out)
    check_not_another_output(out, own=COMPARISON_FILE)
    remove_temp_files(out, older_than_s=STALE_TEMP_S)  # a killed compare's, as report does
    comparison = build_comparison(run_refs(specs), cfg, eval_dir)
    page = write_comparison(comparison, out)
    print_summary(comparison)
    print_line(console, f"compare: {page}")


def print_summary(comparison: Comparison) -> None:
    """The config diff and the eval tables, as on the page."""
    labels = [ref.label for ref in comparison.runs]
    if comparison.diff:
        print_table(console, "config diff", ("key", *labels), [
            (row["key"], *(str(row["values"].get(label, "(absent)")) for label in labels)) for row in comparison.diff
        ])
    else:
        print_line(console, "config diff: the runs' configs are equal")
    for title, (header, rows) in comparison.eval_tables:
        print_table(console, title, header, rows)

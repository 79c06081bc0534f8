"""``logicrl eval math``: accuracy on AIME/AMC-style problems (the paper's out-of-distribution test), checked
by math-verify with a hard time limit per answer, per source and year, with format rate and length.

Writes, like ``logicrl eval``: ``<out>/samples/<label>.jsonl`` (one row per sample, `logicrl.evaluate.
math_eval`), ``table.md``, ``table.csv``, ``results.json`` and, with several models, ``compare.json``.
``--rescore`` checks the saved responses again without a model. See docs/eval.md.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from tqdm import tqdm

from logicrl.cli.eval import (
    RESULT_FILES,
    BatchSize,
    Concurrency,
    ConfigOpt,
    Device,
    Endpoint,
    MaxTokens,
    Models,
    Rescore,
    Samples,
    Seed,
    Temperature,
    Template,
    check_before_loading,
    console,
    eval_app,
    eval_config,
    model_specs,
    start_results,
    warn_unpaired,
    without_limit,
)
from logicrl.cli.output import print_line, print_table
from logicrl.errors import UserError
from logicrl.evaluate.compare import compare_rows, comparison_table
from logicrl.evaluate.math_check import MathChecker
from logicrl.evaluate.math_data import load_math_problems, math_source
from logicrl.evaluate.math_eval import MathEvalConfig, checker_stats, math_results, math_rows
from logicrl.evaluate.metrics import by_puzzle
from logicrl.evaluate.runner import remove_journals, rescored_files
from logicrl.evaluate.tables import (
    Table,
    extra_metrics,
    markdown,
    metric_table,
    results_csv,
    results_json,
    table2,
)
from logicrl.io import FolderLock, atomic_write_text, restored_on_failure

DataFiles = Annotated[list[Path] | None, typer.Option(
    "--data", help="problem file (.jsonl, .json, .parquet) with problem/question and answer fields; "
    "repeatable")]
Preset = Annotated[str | None, typer.Option(
    help="'paper': 1 sample at T=0.8, top-p 0.95, 10,000 new tokens (options you give win)")]
PromptStyle = Annotated[str | None, typer.Option(
    "--prompt", help="logic-rl (think/answer tags, default) or boxed (\\boxed{} instruction)")]
TopP = Annotated[float | None, typer.Option(help="nucleus sampling threshold (default: 1.0)")]
ProblemLimit = Annotated[int | None, typer.Option(help="first N problems per source and year")]
Overrides = Annotated[list[str] | None, typer.Argument(
    help="config overrides, key=value (e.g. top_p=0.95 check_timeout_s=10); keys: MathEvalConfig in "
    "logicrl.evaluate.math_eval")]
CheckTimeout = Annotated[float | None, typer.Option(
    help="hard time limit of one answer check in seconds (default 5)")]


def _require_math_verify() -> None:
    if importlib.util.find_spec("math_verify") is None:
        raise UserError("logicrl eval math needs math-verify: pip install math-verify==0.8.0 (or rerun "
                        "runs/setup.sh)")


@eval_app.command("math")
def math_cmd(
    model: Models = None, data: DataFiles = None,
    out: Annotated[Path, typer.Option(help="output directory")] = Path("outputs/eval-math"),
    preset: Preset = None, prompt: PromptStyle = None, limit: ProblemLimit = None, samples: Samples = None,
    temperature: Temperature = None, top_p: TopP = None, max_tokens: MaxTokens = None, seed: Seed = None,
    batch_size: BatchSize = None, device: Device = None, endpoint: Endpoint = None,
    concurrency: Concurrency = None, template: Template = None, check_timeout: CheckTimeout = None,
    rescore: Rescore = False, config: ConfigOpt = None, overrides: Overrides = None,
) -> None:
    """Math accuracy (AIME/AMC-style) per source and year with format rate and length; pass@k, maj@k."""
    cfg: MathEvalConfig = eval_config(
        MathEvalConfig, config, overrides or [], None, template, preset=preset, prompt_style=prompt,
        limit=limit, samples=samples, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed,
        batch_size=batch_size, device=device, endpoint=endpoint, concurrency=concurrency,
        check_timeout_s=check_timeout)
    if not data:
        raise UserError("give --data: one or more problem files (.jsonl, .json or .parquet)")
    if not rescore:
        cfg.ks(cfg.samples)  # pass_k within the samples, before hours of generation
    else:
        cfg = without_limit(cfg)
    records = load_math_problems(data, cfg.limit)
    specs = model_specs(model, out, rescore, RESULT_FILES[0])
    _require_math_verify()
    check_before_loading(specs, cfg, out, rescore, RESULT_FILES[0])
    with FolderLock(out), restored_on_failure(rescored_files(out, specs, rescore)):  # this command's --out
        config = start_results(cfg, out, RESULT_FILES, specs, rescore, data)
        config.setdefault("prompt_style", cfg.prompt_style)  # no record says: the style the format is judged by
        rows_by_label: dict[str, list[dict]] = {}
        with MathChecker(cfg.check_timeout_s, cfg.check_memory_mb) as checker:
            checker.start()  # a checker that cannot start fails before any model loads
            for spec in specs:
                start = time.perf_counter()
                total = None if rescore else len(records)  # problems answered, or (rescore) answers checked
                with tqdm(total=total, desc=spec.label, unit="ans" if rescore else "pb") as bar:
                    rows = math_rows(spec, records, cfg, out, checker, rescore=rescore, progress=bar.update,
                                     status=bar.set_postfix_str)
                rows_by_label[spec.label] = rows
                stats = checker_stats(rows)
                speed = f" ({stats['per_second']}/s, worst {stats['max_s']}s)" if stats["per_second"] else ""
                verb = "rescored" if rescore else "generated"
                seconds = time.perf_counter() - start
                print_line(console, f"{spec.label}: {verb} {len(rows)} samples in {seconds:.1f}s; "
                           f"checked {stats['checked']} answers{speed}, {stats['timeouts']} timed out")
        _write_results(specs, rows_by_label, cfg, config, out)
        if not rescore:  # the results are written: nothing left to resume (a rescore keeps a generation's)
            remove_journals(out, specs)


def _write_results(specs: list, rows_by_label: dict[str, list[dict]], cfg: MathEvalConfig,
                   config: dict[str, Any], out: Path) -> None:
    """Tables (printed and in table.md), table.csv, results.json (recording ``config``) and, with several models,
    compare.json."""
    warn_unpaired(rows_by_label)
    by_group, by_source, stats = {}, {}, {}
    for label, rows in rows_by_label.items():
        most = max((len(group) for group in by_puzzle(rows).values()), default=1)
        by_group[label], by_source[label] = math_results(rows, cfg.ks(most))
        stats[label] = checker_stats(rows)
    tables: list[tuple[str, Table]] = [("Math accuracy by source and year", table2(by_group)),
                                       ("Math accuracy by source", table2(by_source))]
    tables += [(f"{name} by source", metric_table(by_source, name)) for name in extra_metrics(by_source)]
    tables.append(("Reference substring test (for comparison only; docs/eval.md)",
                   metric_table(by_source, "substring")))
    if len(specs) > 1:
        base = specs[0].label
        comparisons = {f"{s.label} vs {base}": compare_rows(rows_by_label[base], rows_by_label[s.label],
                                                            group=math_source) for s in specs[1:]}
        atomic_write_text(out / "compare.json", json.dumps(comparisons, indent=2) + "\n")
        tables.append((f"Paired difference vs {base} (first sample per problem; Δ and 95% interval)",
                       comparison_table(comparisons)))
    atomic_write_text(out / "table.md", "\n".join(f"### {title}\n\n{markdown(t)}" for title, t in tables))
    atomic_write_text(out / "table.csv", results_csv(by_group))
    names = {s.label: s.name for s in specs}
    summary: dict[str, Any] = results_json(by_group, names, config)
    for label, entry in summary["models"].items():
        entry["by_group"] = entry.pop("by_people")  # source and year
        entry["by_source"] = {source: dict(metrics) for source, metrics in by_source[label].items()}
        entry["checker"] = stats[label]
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2) + "\n")
    for title, table in tables:
        print_table(console, title, *table)
    print_line(console, f"wrote {out}/table.md, table.csv, results.json and samples/")

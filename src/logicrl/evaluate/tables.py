"""Result tables as text: the paper's Table 2 (models × numbers of people), pass@k / maj@k tables, the
memorization table; rendered to Markdown and CSV, and gathered into one JSON-able summary.

A table is ``(header, rows)`` of strings, so the CLI prints the same cells that the files hold.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from logicrl.evaluate.metrics import level_average

Table = tuple[list[str], list[list[str]]]
# per model label: per number of people: metric -> value (see metrics.accuracy_table)
Results = Mapping[str, Mapping[int, Mapping[str, float]]]
# per model label: per perturbation kind: per number of people (or "all"): Acc, CR, LiMem, pairs
MemorizationResults = Mapping[str, Mapping[str, Mapping[int | str, Mapping[str, Any]]]]
MISSING = "–"


def _cell(value: float | None, digits: int = 2) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def level_columns(results: Results) -> list[int]:
    """Every number of people any model has, ascending."""
    return sorted({n for table in results.values() for n in table})


def shared_levels(results: Results) -> list[int]:
    """The numbers of people every model has, ascending: the levels an "Avg." column averages over, so that
    two models' averages are over the same levels."""
    tables = list(results.values())
    return sorted(set(tables[0]).intersection(*tables[1:])) if tables else []


def average_header(results: Results) -> str:
    """``Avg.``, or ``Avg. (2,3)`` naming the levels averaged when some model has levels the others lack."""
    shared = shared_levels(results)
    return "Avg." if shared == level_columns(results) else f"Avg. ({','.join(map(str, shared))})"


def _shared_average(table: Mapping[int, Mapping[str, float]], levels: list[int], metric: str) -> float | None:
    """`level_average` of ``metric`` over ``levels`` only."""
    return level_average({n: table[n] for n in levels}, metric)


def table2(results: Results) -> Table:
    """Accuracy by number of people, as the paper's Table 2, plus the average over levels ("Avg.", the
    unweighted mean of the level columns that every model has: see `average_header`), the format-ok rate and
    the mean response length (tokens), both averaged over the same levels."""
    levels, shared = level_columns(results), shared_levels(results)
    header = ["Model", *map(str, levels), average_header(results), "Format", "Length"]
    rows = []
    for label, table in results.items():
        cells = [_cell(table[n]["acc"]) if n in table else MISSING for n in levels]
        averages = [_cell(_shared_average(table, shared, "acc")),
                    _cell(_shared_average(table, shared, "format_ok")),
                    _cell(_shared_average(table, shared, "length"), 0)]
        rows.append([label, *cells, *averages])
    return header, rows


def extra_metrics(results: Results) -> list[str]:
    """The pass@k (k > 1) and maj@n metrics present in ``results``, in a stable order."""
    names = {m for table in results.values() for entry in table.values() for m in entry
             if m.startswith("maj@") or (m.startswith("pass@") and m != "pass@1")}
    return sorted(names, key=lambda m: (m.split("@")[0] != "pass", int(m.split("@")[1])))


def metric_table(results: Results, metric: str) -> Table:
    """One metric by number of people, a row per model, with the average over the levels every model has."""
    levels, shared = level_columns(results), shared_levels(results)
    header = [f"Model ({metric})", *map(str, levels), average_header(results)]
    rows = []
    for label, table in results.items():
        cells = [_cell(table.get(n, {}).get(metric)) for n in levels]
        rows.append([label, *cells, _cell(_shared_average(table, shared, metric))])
    return header, rows


def results_csv(results: Results) -> str:
    """Long-and-wide CSV: one row per (model, metric), one column per number of people, then ``avg``: the model's
    own average over all its levels (table.md's ``Avg.`` takes the levels every model has, `average_header`)."""
    levels = level_columns(results)
    metrics = ["acc", "format_ok", "length", "reward", "truncated", "puzzles", "n", "pass@1", "substring"]
    metrics += extra_metrics(results)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "metric", *map(str, levels), "avg"])
    for label, table in results.items():
        for metric in metrics:
            if not any(metric in entry for entry in table.values()):
                continue
            values = [table.get(n, {}).get(metric) for n in levels]
            average = level_average(table, metric)
            writer.writerow([label, metric, *["" if v is None else f"{v:.6g}" for v in values],
                             "" if average is None else f"{average:.6g}"])
    return buffer.getvalue()


def results_json(results: Results, names: Mapping[str, str], config: Mapping[str, Any]) -> dict[str, Any]:
    """Everything in one JSON-able dict: the config, and per model its name, per-level metrics, and averages over
    all its own levels (as table.csv's ``avg``; table.md's ``Avg.`` takes the levels every model has)."""
    models = {}
    for label, table in results.items():
        metrics = sorted({m for entry in table.values() for m in entry})
        models[label] = {
            "name": names.get(label, label),
            "by_people": {str(n): dict(entry) for n, entry in table.items()},
            "average": {m: level_average(table, m) for m in metrics},
        }
    return {"config": dict(config), "models": models}


def memorization_json(tables: MemorizationResults, config: Mapping[str, Any]) -> dict[str, Any]:
    """The config and, per model, kind and number of people (as a string key), the scores."""
    models = {label: {kind: {str(people): dict(scores) for people, scores in levels.items()}
                      for kind, levels in kinds.items()}
              for label, kinds in tables.items()}
    return {"config": dict(config), "models": models}


def memorization_rows(tables: MemorizationResults) -> Table:
    """Long table of `memorization.memorization_table` results: Model, Kind, People, Pairs, Acc, CR, LiMem."""
    header = ["Model", "Kind", "People", "Pairs", "Acc", "CR", "LiMem"]
    rows = []
    for label, kinds in tables.items():
        for kind, levels in kinds.items():
            for people, scores in levels.items():
                rows.append([label, kind, str(people), str(scores["pairs"]), _cell(scores["acc"]),
                             _cell(scores["cr"]), _cell(scores["limem"])])
    return header, rows


def markdown(table: Table) -> str:
    """A GitHub Markdown table; numeric columns right-aligned."""
    header, rows = table
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_text(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table[0])
    writer.writerows(table[1])
    return buffer.getvalue()

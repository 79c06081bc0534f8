"""Paired comparison of two models on the same puzzles: the difference of a 0/1 metric with a 95% interval.

For puzzles i = 1..n answered by both models (the first sample of each), with x_i, y_i ∈ {0, 1} (e.g.
solved) for the baseline and the other model, d_i = y_i − x_i:

    Δ = mean(d),   se = sd(d) / √n   (sd with n − 1),   95% interval = Δ ± 1.96·se

the normal interval of a paired mean difference (puzzles are the unit, so the two models' results on the
same puzzle are not treated as independent). With n < 2 the interval is undefined (None).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

Z95 = 1.959964


def first_samples(rows: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Puzzle id → its first sample (``sample`` 0, or the first row seen)."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        key = str(row["id"])
        if key not in chosen or int(row.get("sample", 0)) < int(chosen[key].get("sample", 0)):
            chosen[key] = row
    return chosen


def paired_difference(base: Sequence[float], other: Sequence[float]) -> dict[str, float | int | None]:
    """Means, Δ = mean(other − base), and its 95% normal interval (see module docstring)."""
    n = len(base)
    if n != len(other) or n == 0:
        raise ValueError(f"need the same non-zero number of paired values, got {len(base)} and {len(other)}")
    diffs = [b - a for a, b in zip(base, other)]
    delta = sum(diffs) / n
    low = high = None
    if n >= 2:
        sd = math.sqrt(sum((d - delta) ** 2 for d in diffs) / (n - 1))
        half = Z95 * sd / math.sqrt(n)
        low, high = delta - half, delta + half
    return {"n": n, "base": sum(base) / n, "other": sum(other) / n, "delta": delta, "low": low, "high": high}


def compare_rows(base_rows: Sequence[Mapping[str, Any]], other_rows: Sequence[Mapping[str, Any]],
                 metrics: Sequence[str] = ("solved", "format_ok")) -> dict[str, dict[str, dict[str, Any]]]:
    """``{metric: {"<N>ppl" | "all": paired_difference}}`` over the puzzles both row sets answered."""
    base, other = first_samples(base_rows), first_samples(other_rows)
    shared = sorted(set(base) & set(other), key=lambda key: (int(base[key]["n_people"]), key))
    if not shared:
        raise ValueError("the two models answered no puzzle in common: evaluate them on the same data")
    groups: dict[str, list[str]] = {}
    for key in shared:
        groups.setdefault(f"{int(base[key]['n_people'])}ppl", []).append(key)
    groups["all"] = shared
    return {
        metric: {
            name: paired_difference([float(bool(base[k][metric])) for k in keys],
                                    [float(bool(other[k][metric])) for k in keys])
            for name, keys in groups.items()
        }
        for metric in metrics
    }


def comparison_table(comparisons: Mapping[str, Mapping[str, Mapping[str, Mapping[str, Any]]]]) -> tuple[
        list[str], list[list[str]]]:
    """Rows ``(model vs baseline, metric)``; a cell reads ``0.20→0.31 +0.11 [+0.04, +0.18]``."""
    columns = sorted({g for by_metric in comparisons.values() for groups in by_metric.values() for g in groups},
                     key=lambda g: (g == "all", int(g.removesuffix("ppl")) if g != "all" else 0))
    rows = []
    for label, by_metric in comparisons.items():
        for metric, groups in by_metric.items():
            rows.append([label, metric, *(_cell(groups.get(g)) for g in columns)])
    return ["Model vs baseline", "Metric", *columns], rows


def _cell(result: Mapping[str, Any] | None) -> str:
    if result is None:
        return "–"
    interval = "" if result["low"] is None else f" [{result['low']:+.2f}, {result['high']:+.2f}]"
    return f"{result['base']:.2f}→{result['other']:.2f} {result['delta']:+.2f}{interval} (n={result['n']})"

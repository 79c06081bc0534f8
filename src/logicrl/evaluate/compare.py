"""Paired comparison of two models on the same puzzles: the difference of a 0/1 metric with a 95% interval.

For puzzles i = 1..n answered by both models (the first sample of each), with x_i, y_i ∈ {0, 1} (e.g.
solved) for the baseline and the other model, d_i = y_i − x_i:

    Δ = mean(d),   se = sd(d) / √n   (sd with n − 1),   95% interval = Δ ± t₀.₉₇₅(n − 1)·se

the Student t interval of a paired mean difference (puzzles are the unit, so the two models' results on the
same puzzle are not treated as independent). t₀.₉₇₅(n − 1) is 2.78 at n = 5, 2.09 at n = 20 and tends to
the normal 1.96: at the small ``--limit`` values a quick check uses, 1.96 would make the interval too narrow.
With n < 2 the interval is undefined (None).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_TINY = 1e-300  # keeps the continued fraction's denominators away from 0


def first_samples(rows: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Puzzle id → its first sample (``sample`` 0, or the first row seen)."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        key = str(row["id"])
        if key not in chosen or int(row.get("sample", 0)) < int(chosen[key].get("sample", 0)):
            chosen[key] = row
    return chosen


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes §6.4)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    fraction = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            fraction *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return fraction


def _regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, for a, b > 0 and 0 ≤ x ≤ 1."""
    if x <= 0.0 or x >= 1.0:
        return max(0.0, min(1.0, x))
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (0.5 ≤ p < 1) of Student's t with ``df`` degrees of freedom, to ~1e-12.

    Bisection on the upper tail P(T > t) = I_{df/(df + t²)}(df/2, 1/2) / 2, which falls as t grows."""
    if not 0.5 <= p < 1.0 or df < 1:
        raise ValueError(f"t_quantile needs 0.5 <= p < 1 and df >= 1, got p={p}, df={df}")

    def tail(t: float) -> float:
        return 0.5 * _regularized_beta(df / 2.0, 0.5, df / (df + t * t))

    low, high = 0.0, 1.0
    while tail(high) > 1.0 - p:
        low, high = high, 2.0 * high
    for _ in range(100):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if tail(middle) > 1.0 - p else (low, middle)
        if high - low < 1e-12 * high:
            break
    return 0.5 * (low + high)


def paired_difference(base: Sequence[float], other: Sequence[float]) -> dict[str, float | int | None]:
    """Means, Δ = mean(other − base), and its 95% t interval with n − 1 degrees of freedom (see the module
    docstring)."""
    n = len(base)
    if n != len(other) or n == 0:
        raise ValueError(f"need the same non-zero number of paired values, got {len(base)} and {len(other)}")
    diffs = [b - a for a, b in zip(base, other)]
    delta = sum(diffs) / n
    low = high = None
    if n >= 2:
        sd = math.sqrt(sum((d - delta) ** 2 for d in diffs) / (n - 1))
        half = t_quantile(0.975, n - 1) * sd / math.sqrt(n)
        low, high = delta - half, delta + half
    return {"n": n, "base": sum(base) / n, "other": sum(other) / n, "delta": delta, "low": low, "high": high}


def people_group(row: Mapping[str, Any]) -> str:
    """A puzzle row's comparison column: ``"<N>ppl"``."""
    return f"{int(row['n_people'])}ppl"


def compare_rows(
    base_rows: Sequence[Mapping[str, Any]], other_rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str] = ("solved", "format_ok"),
    group: Callable[[Mapping[str, Any]], str] = people_group,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{metric: {"<N>ppl" | "all": paired_difference}}`` over the puzzles both row sets answered
    (columns: ``group(row)`` of the baseline's row, by default its number of people)."""
    base, other = first_samples(base_rows), first_samples(other_rows)
    shared = sorted(set(base) & set(other), key=lambda key: (_column_order(group(base[key])), key))
    if not shared:
        raise ValueError("the two models answered no puzzle in common: evaluate them on the same data")
    groups: dict[str, list[str]] = {}
    for key in shared:
        groups.setdefault(group(base[key]), []).append(key)
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
    """Rows ``(model vs baseline, metric)``; a cell reads ``0.20→0.31 +0.11 [+0.04, +0.18] (n=100)`` (n: the
    paired puzzles; no interval when n = 1; ``–`` for a column the pair has no puzzle in)."""
    columns = sorted({g for by_metric in comparisons.values() for groups in by_metric.values() for g in groups},
                     key=_column_order)
    rows = []
    for label, by_metric in comparisons.items():
        for metric, groups in by_metric.items():
            rows.append([label, metric, *(_cell(groups.get(g)) for g in columns)])
    return ["Model vs baseline", "Metric", *columns], rows


def _column_order(name: str) -> tuple[bool, float, str]:
    """``2ppl`` < ``10ppl`` < other names (alphabetical) < ``all``."""
    people = name.removesuffix("ppl")
    return name == "all", int(people) if name.endswith("ppl") and people.isdigit() else math.inf, name


def _cell(result: Mapping[str, Any] | None) -> str:
    if result is None:
        return "–"
    interval = "" if result["low"] is None else f" [{result['low']:+.2f}, {result['high']:+.2f}]"
    return f"{result['base']:.2f}→{result['other']:.2f} {result['delta']:+.2f}{interval} (n={result['n']})"

"""Paired comparison of two models on the same puzzles: the difference of a 0/1 metric with a 95% interval.

For the n puzzles answered by both models (the first sample of each), count the paired 2×2 table

    a = both right,   b = only the baseline right,   c = only the other model right,   d = both wrong

with p₁ = (a + c)/n the other model's rate, p₂ = (a + b)/n the baseline's and Δ = p₁ − p₂ = (c − b)/n. The
95% interval is Newcombe's square-and-add (hybrid score) interval for paired proportions (Newcombe 1998,
Stat. Med. 17:2635, method 10) with the correlation estimate Fagerland, Lydersen & Laake recommend (2014,
Stat. Med. 33:2850; their book, 2017, §8.5.4):

    (lᵢ, uᵢ) = the Wilson score interval of pᵢ,   z = 1.959964
    A = ad − bc,   ψ = (A − n/2)/√P if A > n/2,   0 if 0 ≤ A ≤ n/2,   A/√P if A < 0
                   with P = (a + b)(c + d)(a + c)(b + d)   (ψ = 0 when P = 0)
    L = Δ − √((p₁ − l₁)² + (u₂ − p₂)² − 2ψ(p₁ − l₁)(u₂ − p₂))
    U = Δ + √((p₂ − l₂)² + (u₁ − p₁)² − 2ψ(p₂ − l₂)(u₁ − p₁))

Puzzles are the unit, so the two models' results on a puzzle are not treated as independent (ψ carries their
correlation). Unlike the Student t interval on the differences d_i (used here until 2026-12-06), it keeps a
width when the models never disagree (0 of 100 discordant at rates near one half: about ±0.02, not [0, 0]) and
holds its coverage when disagreements are rare (tests/evaluate/test_compare.py checks it exactly, by enumerating
every table).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from statistics import NormalDist
from typing import Any

Z_95 = NormalDist().inv_cdf(0.975)


def first_samples(rows: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Puzzle id → its first sample (``sample`` 0, or the first row seen)."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        key = str(row["id"])
        if key not in chosen or int(row.get("sample", 0)) < int(chosen[key].get("sample", 0)):
            chosen[key] = row
    return chosen


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of k/n: (k + z²/2 ± z·√(k(n − k)/n + z²/4)) / (n + z²)."""
    centre = successes + z * z / 2
    half = z * math.sqrt(successes * (n - successes) / n + z * z / 4)
    return (centre - half) / (n + z * z), (centre + half) / (n + z * z)


def paired_interval(a: int, b: int, c: int, d: int, z: float = Z_95) -> tuple[float, float]:
    """Newcombe's square-and-add interval (L, U) of Δ = (c − b)/n for the paired table (a, b, c, d) of the
    module docstring: a both right, b only the baseline, c only the other model, d neither."""
    n = a + b + c + d
    p1, p2 = (a + c) / n, (a + b) / n
    l1, u1 = wilson_interval(a + c, n, z)
    l2, u2 = wilson_interval(a + b, n, z)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    agreement = a * d - b * c
    psi = 0.0
    if margins and agreement > n / 2:
        psi = (agreement - n / 2) / math.sqrt(margins)
    elif margins and agreement < 0:
        psi = agreement / math.sqrt(margins)
    delta = p1 - p2
    low = delta - _square_and_add(p1 - l1, u2 - p2, psi)
    high = delta + _square_and_add(p2 - l2, u1 - p1, psi)
    return low, high


def _square_and_add(x: float, y: float, psi: float) -> float:
    """√(x² + y² − 2ψxy): with |ψ| ≤ 1 at least |x − y| ≥ 0 (rounding can take it a hair below 0)."""
    return math.sqrt(max(0.0, x * x + y * y - 2 * psi * x * y))


def paired_difference(base: Sequence[int | bool], other: Sequence[int | bool]) -> dict[str, float | int]:
    """Rates, Δ = other − base, and its 95% interval (module docstring) for paired 0/1 results."""
    n = len(base)
    if n != len(other) or n == 0:
        raise ValueError(f"need the same non-zero number of paired values, got {len(base)} and {len(other)}")
    if not {*base, *other} <= {0, 1}:
        raise ValueError("paired values must be 0/1 (or booleans)")
    pairs = list(zip(base, other))
    a, b, c = pairs.count((1, 1)), pairs.count((1, 0)), pairs.count((0, 1))
    low, high = paired_interval(a, b, c, n - a - b - c)
    return {"n": n, "base": (a + b) / n, "other": (a + c) / n, "delta": (c - b) / n, "low": low, "high": high}


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
            name: paired_difference([bool(base[k][metric]) for k in keys],
                                    [bool(other[k][metric]) for k in keys])
            for name, keys in groups.items()
        }
        for metric in metrics
    }


def comparison_table(comparisons: Mapping[str, Mapping[str, Mapping[str, Mapping[str, Any]]]]) -> tuple[
        list[str], list[list[str]]]:
    """Rows ``(model vs baseline, metric)``; a cell reads ``0.20→0.31 +0.11 [+0.04, +0.18] (n=100)`` (n: the
    paired puzzles; ``–`` for a column the pair has no puzzle in; no interval for a compare.json written before
    2026-12-06 at n = 1)."""
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

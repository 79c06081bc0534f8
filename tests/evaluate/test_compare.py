"""Paired comparison: hand-computed Δ and interval, pairing by puzzle id, per-level grouping."""

from __future__ import annotations

import math

import pytest

from logicrl.evaluate.compare import compare_rows, comparison_table, paired_difference, t_quantile


@pytest.mark.parametrize(("df", "quantile"), [  # t₀.₉₇₅ from a printed table (and scipy.stats.t.ppf)
    (1, 12.706205), (2, 4.302653), (4, 2.776445), (9, 2.262157), (29, 2.045230), (199, 1.971957),
    (100_000, 1.959988),
])
def test_t_quantile_matches_the_table(df, quantile):
    assert t_quantile(0.975, df) == pytest.approx(quantile, abs=1e-6)


def test_t_quantile_other_levels_and_errors():
    assert t_quantile(0.5, 3) == pytest.approx(0.0, abs=1e-9)
    assert t_quantile(0.95, 10) == pytest.approx(1.812461, abs=1e-6)
    assert t_quantile(0.995, 1) == pytest.approx(63.656741, abs=1e-5)
    for p, df in ((0.975, 0), (1.0, 3), (0.2, 3)):
        with pytest.raises(ValueError):
            t_quantile(p, df)


def test_paired_difference_by_hand():
    # d = [1, 1, 0, 0, -1]: Δ = 0.2, sd = sqrt(((.8²)·2 + (.2²)·2 + 1.2²)/4) = sqrt(0.7), t₀.₉₇₅(4) = 2.776445
    result = paired_difference([0, 0, 1, 0, 1], [1, 1, 1, 0, 0])
    half = 2.776445 * math.sqrt(0.7) / math.sqrt(5)
    assert result["delta"] == pytest.approx(0.2)
    assert (result["base"], result["other"]) == (pytest.approx(0.4), pytest.approx(0.6))
    assert (result["low"], result["high"]) == (pytest.approx(0.2 - half), pytest.approx(0.2 + half))
    assert paired_difference([1.0], [0.0])["low"] is None
    with pytest.raises(ValueError):
        paired_difference([1.0], [])


def row(pid, people, solved, sample=0, fmt=True):
    return {"id": pid, "n_people": people, "solved": solved, "format_ok": fmt, "sample": sample}


def test_compare_rows_pairs_by_id_and_uses_the_first_sample():
    base = [row("a", 2, False), row("b", 2, False), row("c", 3, True), row("z", 3, True)]
    other = [row("c", 3, True), row("b", 2, True), row("a", 2, False, sample=1), row("a", 2, True, sample=0)]
    result = compare_rows(base, other)
    assert result["solved"]["2ppl"]["delta"] == pytest.approx(1.0)  # a and b both go 0 → 1
    assert result["solved"]["3ppl"]["n"] == 1  # z is not in `other`
    assert result["solved"]["all"]["n"] == 3
    header, rows = comparison_table({"rl vs cold": result})
    assert header == ["Model vs baseline", "Metric", "2ppl", "3ppl", "all"]
    assert rows[0][2].startswith("0.00→1.00 +1.00")
    with pytest.raises(ValueError, match="no puzzle in common"):
        compare_rows([row("x", 2, True)], [row("y", 2, True)])

"""Paired comparison: the interval against a published table and its exact coverage, pairing by puzzle id,
per-level grouping."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from logicrl.evaluate.compare import (
    compare_rows,
    comparison_table,
    paired_difference,
    paired_interval,
    wilson_interval,
)


def test_matches_the_published_reference_table():
    # Cavo et al. (2012) as the worked example of Fagerland, Lydersen & Laake (2017, ch. 8) and their R package
    # contingencytables' tests: 59 both, 6 only the second, 16 only the first, 80 neither → Δ = −0.0621,
    # Newcombe square-and-add 95% CI −0.1186 to −0.0046.
    result = paired_difference([1] * 59 + [0] * 6 + [1] * 16 + [0] * 80, [1] * 65 + [0] * 96)
    assert (result["n"], result["delta"]) == (161, pytest.approx(-10 / 161))
    assert (result["base"], result["other"]) == (pytest.approx(75 / 161), pytest.approx(65 / 161))
    assert (round(result["low"], 4), round(result["high"], 4)) == (-0.1186, -0.0046)


def test_wilson_interval_by_hand():
    # 0 of 10: (z²/2 ± z²/2)/(10 + z²) = [0, z²/(10 + z²)] = [0, 0.27753]; 5 of 10 is symmetric about 0.5
    assert wilson_interval(0, 10) == (pytest.approx(0.0, abs=1e-15), pytest.approx(0.277533, abs=1e-6))
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(1 - high) and low == pytest.approx(0.236593, abs=1e-6)


def _coverage(n: int, probabilities: tuple[float, float, float, float]) -> float:
    """P(L ≤ Δ ≤ U) under the multinomial (a, b, c, d) ~ Mult(n, probabilities), summed over every table."""
    true_delta = probabilities[2] - probabilities[1]
    total = 0.0
    for a in range(n + 1):
        for b in range(n + 1 - a):
            for c in range(n + 1 - a - b):
                counts = (a, b, c, n - a - b - c)
                probability = math.factorial(n) * math.prod(
                    p ** k / math.factorial(k) for p, k in zip(probabilities, counts))
                low, high = paired_interval(*counts)
                total += probability * (low - 1e-12 <= true_delta <= high + 1e-12)
    return total


@pytest.mark.parametrize("probabilities", [  # (both, only base, only other, neither); n = 30
    (0.49, 0.001, 0.009, 0.5),   # rare disagreements, one way (the t interval used before: 0.26)
    (0.48, 0.004, 0.016, 0.5),   # 2% discordant (t interval: 0.45)
    (0.45, 0.01, 0.09, 0.45),    # 10% discordant, Δ = 0.08
    (0.35, 0.15, 0.15, 0.35),    # 30% discordant, Δ = 0
    (0.05, 0.45, 0.45, 0.05),    # negatively correlated models (ad < bc)
    (0.9, 0.02, 0.08, 0.0),      # near the ceiling, nobody fails both (t interval: 0.91)
])
def test_exact_coverage_is_near_95_percent(probabilities):
    assert _coverage(30, probabilities) >= 0.93


@given(st.integers(0, 40), st.integers(0, 40), st.integers(0, 40), st.integers(0, 40))
def test_interval_holds_delta_stays_in_range_and_is_antisymmetric(a, b, c, d):
    assume(a + b + c + d > 0)
    low, high = paired_interval(a, b, c, d)
    delta = (c - b) / (a + b + c + d)
    assert -1 - 1e-12 <= low <= delta <= high <= 1 + 1e-12
    assert high - low > 0  # never [0, 0]: agreement on every puzzle is not certainty
    swapped = paired_interval(a, c, b, d)  # base and other exchanged
    assert swapped == (pytest.approx(-high), pytest.approx(-low))


def test_paired_difference_counts_the_table_and_rejects_bad_input():
    # a = 1 (puzzle 3), b = 1 (puzzle 5), c = 2 (puzzles 1, 2), d = 1 (puzzle 4)
    result = paired_difference([0, 0, 1, 0, 1], [1, 1, 1, 0, 0])
    assert (result["base"], result["other"], result["delta"]) == (0.4, 0.6, pytest.approx(0.2))
    assert (result["low"], result["high"]) == paired_interval(1, 1, 2, 1)
    assert paired_difference([True], [False])["low"] < -0.5  # one puzzle: wide, but an interval
    with pytest.raises(ValueError, match="same non-zero number"):
        paired_difference([1], [])
    with pytest.raises(ValueError, match="0/1"):
        paired_difference([0.5, 1], [1, 1])


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

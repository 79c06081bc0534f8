"""Sudden ("aha") or gradual: one statistic over a share's series across step bins (pure).

For shares s_1..s_T (one per bin) and a window w:

- rise      R = mean(s_{T−w+1..T}) − mean(s_{1..w})            (last w bins vs first w bins)
- jump at t J_t = mean(s_{t..t+w−1}) − mean(s_{t−w..t−1})       (next w bins vs previous w), w < t ≤ T−w+1
- jump      J = max_t J_t, at t* (the first maximum); the "aha" step is the first step of bin t*
- verdict   "too few steps" when T < 2w; "flat" when |R| < min_rise; "falling" when R ≤ −min_rise;
            else "sudden" when J / R ≥ sudden_share, "gradual" otherwise.

A step from level a to level b gives J = R = b − a (J/R = 1); a straight ramp over T bins gives
J/R = w / (T − w), so a long steady rise reads "gradual". Sampling noise also moves J: with n responses
per bin the standard error of J is about sqrt(2·p(1−p)/(n·w)), so read small J with care.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Trend:
    """The verdict and the numbers behind it (None where they are undefined)."""

    verdict: str
    rise: float | None = None
    jump: float | None = None
    step: int | None = None
    suddenness: float | None = None


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def classify_rise(steps: list[int], shares: list[float], window: int = 3, min_rise: float = 0.1,
                  sudden_share: float = 0.5) -> Trend:
    """Apply the module's statistic to ``shares`` observed at ``steps`` (first step of each bin)."""
    if len(steps) != len(shares):
        raise ValueError(f"{len(steps)} steps but {len(shares)} shares")
    count, w = len(shares), window
    if count < 2 * w:
        return Trend("too few steps")
    rise = _mean(shares[-w:]) - _mean(shares[:w])
    jumps = [(_mean(shares[t:t + w]) - _mean(shares[t - w:t]), t) for t in range(w, count - w + 1)]
    jump, at = max(jumps, key=lambda pair: (pair[0], -pair[1]))
    if abs(rise) < min_rise or rise == 0:  # (no change is flat even at min_rise=0)
        return Trend("flat", rise, jump, None, None)
    if rise < 0:
        return Trend("falling", rise, jump, None, None)
    suddenness = jump / rise
    verdict = "sudden" if suddenness >= sudden_share else "gradual"
    return Trend(verdict, rise, jump, steps[at] if verdict == "sudden" else None, suddenness)

"""The report's tables as plain rows (JSON-able dicts), computed from step bins and metrics (pure).

"with"/"without" rows compare the responses showing a feature with the rest of the same responses:
mean reward (total score) and accuracy (share solved) on each side, with both counts, so a mean over
three responses is visibly a mean over three.
"""

from __future__ import annotations

import math
import re
from typing import Any

from logicrl.analysis.aggregate import Bin, Tally
from logicrl.analysis.run import Metrics
from logicrl.analysis.trend import classify_rise

Row = dict[str, Any]

# metrics.jsonl keys summarised on the console and the page (when the run logged them).
HEADLINE_METRICS = ("reward/mean", "acc", "format_ok", "length/mean", "length/clipped", "kl", "entropy",
                    "val/acc", "val/format_ok")

_VAL_PEOPLE = re.compile(r"val/acc/(\d+)ppl")


def with_without(pooled: Tally, having: Tally) -> Row:
    """Counts, share, and mean reward/accuracy of the responses with vs without a feature."""
    without = pooled.minus(having)
    return {
        "n_with": having.n, "n_without": without.n,
        "share": having.n / pooled.n if pooled.n else None,
        "reward_with": having.mean("reward"), "reward_without": without.mean("reward"),
        "acc_with": having.mean("solved"), "acc_without": without.mean("solved"),
    }


def share_series(bins: list[Bin], kind: str, name: str = "") -> list[float]:
    """Per bin share of responses with a feature: ``kind`` is "words", "behaviours" or "mixed"."""
    def tally(b: Bin) -> Tally:
        return b.mixed if kind == "mixed" else getattr(b, kind).get(name, Tally())

    return [b.share(tally(b)) or 0.0 for b in bins]


def _ends(series: list[float]) -> Row:
    return {"first_share": series[0] if series else None, "last_share": series[-1] if series else None}


def words_table(bins: list[Bin], pooled: Bin, words: list[str]) -> list[Row]:
    """One row per thinking word: with vs without over all responses, and its share in the first/last bin."""
    rows = []
    for word in words:
        series = share_series(bins, "words", word)
        rows.append({"word": word, **with_without(pooled.all, pooled.words.get(word, Tally())),
                     **_ends(series)})
    return rows


def mixing_row(bins: list[Bin], pooled: Bin) -> Row:
    """Mixed vs not mixed over all responses, plus the mean non-Latin unit share."""
    series = share_series(bins, "mixed")
    return {**with_without(pooled.all, pooled.mixed),
            "mean_mixing": pooled.mixing_sum / pooled.all.n if pooled.all.n else None, **_ends(series)}


def behaviours_table(bins: list[Bin], pooled: Bin, names: list[str], window: int, min_rise: float,
                     sudden_share: float) -> list[Row]:
    """One row per behaviour: with vs without, and the sudden/gradual verdict of its share (see trend.py)."""
    steps = [b.first for b in bins]
    rows = []
    for name in names:
        series = share_series(bins, "behaviours", name)
        trend = classify_rise(steps, series, window, min_rise, sudden_share)
        rows.append({"behaviour": name, **with_without(pooled.all, pooled.behaviours.get(name, Tally())),
                     **_ends(series), "verdict": trend.verdict, "rise": trend.rise, "jump": trend.jump,
                     "aha_step": trend.step, "suddenness": trend.suddenness})
    return rows


def length_rows(bins: list[Bin]) -> list[Row]:
    """Per bin: accuracy, mean length of all/solved/unsolved responses, share cut at the length cap."""
    return [{
        "first_step": b.first, "last_step": b.last, "n": b.all.n, "acc": b.all.mean("solved"),
        "reward": b.all.mean("reward"), "length": b.all.mean("length"),
        "length_solved": b.solved.mean("length"), "length_unsolved": b.all.minus(b.solved).mean("length"),
        "truncated": b.all.mean("truncated"),
    } for b in bins]


def pearson(xs: list[float], ys: list[float]) -> float | None:
    """Pearson correlation r = cov(x, y) / (σ_x σ_y); None with < 3 points or a constant series."""
    if len(xs) < 3:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else None


def metrics_table(metrics: Metrics) -> list[Row]:
    """First, last, min and max of each headline metric that the run logged."""
    rows = []
    for key in HEADLINE_METRICS:
        kind = "val" if key.startswith("val/") else "train"
        steps, values = metrics.series(key, kind)
        if values:
            rows.append({"metric": key, "points": len(values), "first_step": steps[0], "first": values[0],
                         "last_step": steps[-1], "last": values[-1], "min": min(values), "max": max(values)})
    return rows


def val_people_table(metrics: Metrics) -> list[Row]:
    """Latest validation accuracy and format rate per number of people (keys ``val/acc/<N>ppl``)."""
    rows = []
    for key in metrics.keys("val"):
        if match := _VAL_PEOPLE.fullmatch(key):
            steps, acc = metrics.series(key, "val")
            _, fmt = metrics.series(f"val/format_ok/{match.group(1)}ppl", "val")
            rows.append({"people": int(match.group(1)), "step": steps[-1] if steps else None,
                         "acc": acc[-1] if acc else None, "format_ok": fmt[-1] if fmt else None,
                         "best_acc": max(acc) if acc else None})
    return sorted(rows, key=lambda row: row["people"])

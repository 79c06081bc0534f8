"""Per-step statistics of a batch of scored rollouts (pure functions over the sample rows)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from logicrl.evaluate.metrics import summarize_rows
from logicrl.reward.score import ANSWER_STATUSES


def rollout_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """reward mean/std (population), accuracy, format-ok rate, answer-status shares, response lengths
    (mean, max, share cut at the cap), mean number of people."""
    count = len(rows)
    rewards = [float(r["reward"]) for r in rows]
    mean = sum(rewards) / count
    lengths = [int(r["length"]) for r in rows]
    metrics = {
        "reward/mean": mean,
        "reward/std": math.sqrt(sum((x - mean) ** 2 for x in rewards) / count),
        "acc": sum(bool(r["solved"]) for r in rows) / count,
        "format_ok": sum(bool(r["format_ok"]) for r in rows) / count,
    }
    for status in ANSWER_STATUSES:
        metrics[f"answer/{status}"] = sum(r["answer_status"] == status for r in rows) / count
    metrics.update({
        "length/mean": sum(lengths) / count,
        "length/max": float(max(lengths)),
        "length/clipped": sum(bool(r["truncated"]) for r in rows) / count,
        "people": sum(int(r["n_people"]) for r in rows) / count,
    })
    return metrics


def validation_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """``val/<metric>`` over all rows and ``val/<metric>/<N>ppl`` per number of people."""
    metrics: dict[str, float] = {}
    table = summarize_rows(rows)
    total = sum(row["n"] for row in table.values())
    for key in ("acc", "format_ok", "reward", "length"):
        metrics[f"val/{key}"] = sum(row[key] * row["n"] for row in table.values()) / total
    for people, row in table.items():
        for key in ("acc", "format_ok", "reward", "length"):
            metrics[f"val/{key}/{people}ppl"] = row[key]
    return metrics

"""Pooled audit of sampled responses in the reasoning-by-cases form (the line-by-line check itself is
`logicrl.puzzles.audit.audit_cases`). Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from logicrl.puzzles.audit import audit_cases


def audit_summary(rows: Iterable[Mapping[str, Any]], records: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Pooled audit of sample rows (``id``, ``response``) against their records (by id): the share of check lines
    right, of truth values right, of verdicts right, of role words that are the case's, of case lines in order,
    and checks per response."""
    total = dict.fromkeys(("responses", "cases", "cases_in_order", "checks", "truth_right", "verdict_right",
                           "role_right", "checks_right"), 0)
    for row in rows:
        counts = audit_cases(str(row["response"]), records[str(row["id"])])
        total["responses"] += 1
        for key, value in counts.items():
            total[key] += value
    checks, cases = max(total["checks"], 1), max(total["cases"], 1)
    return {"responses": total["responses"], "checks_per_response": total["checks"] / max(total["responses"], 1),
            "check_acc": total["checks_right"] / checks, "truth_acc": total["truth_right"] / checks,
            "verdict_acc": total["verdict_right"] / checks, "role_acc": total["role_right"] / checks,
            "cases_in_order": total["cases_in_order"] / cases}

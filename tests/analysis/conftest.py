"""A synthetic run directory in the layout of `logicrl train`, with responses crafted so every count is known.

Steps 1..10, 10 responses per step (sample i = 0..9), length 100 + 10·i tokens:

- i = 0 says "Wait," (reward 3, solved)          -> "wait": 10 responses
- i = 1 says "waiting", "checking" and has HTML  -> decoys: match no word; reward −0.5
- i = 2 says "Let me recheck ... think\\n again"  -> "recheck", "think again": 10 each; reward 3, solved
- i = 3 at even steps says "Re-evaluate"          -> "re-evaluate": 5
- i = 9 at steps ≥ 6 writes "所以" (Chinese)      -> mixed: 5 responses, reward −3
- every other response: reward −0.5, not solved
- "In summary," in every response of steps ≥ 6   -> summary share 0 then 1: sudden, aha step 6
- "Alternatively," in samples 1..s−1 at step s    -> exploring alternatives share (s−1)/10: gradual
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

STEPS = 10
PER_STEP = 10
HTML_BAIT = "<script>alert('x')</script> a < b & c \x07"


def response_row(step: int, i: int) -> dict[str, Any]:
    """The crafted response ``i`` of ``step`` (see the module docstring)."""
    parts = ["Zoey is telling the truth."]
    reward, solved = -0.5, False
    if i == 0:
        parts.append("Wait, Oliver lies.")
        reward, solved = 3.0, True
    if i == 1:
        parts.append(f"I am waiting while checking. {HTML_BAIT}")
    if i == 2:
        parts.append("Let me recheck and think\n again.")
        reward, solved = 3.0, True
    if i == 3 and step % 2 == 0:
        parts.append("Re-evaluate Zoey.")
    if i == 9 and step >= 6:
        parts.append("所以 Zoey is a knight.")
        reward = -3.0
    if 1 <= i <= step - 1:
        parts.append("Alternatively, Zoey lies.")
    if step >= 6:
        parts.append("In summary, done.")
    answer = "(1) Zoey is a knight\n(2) Oliver is a knave"
    return {"step": step, "id": f"p{i // 2}", "n_people": 3 + i % 2, "sample": i % 2,
            "response": f"{' '.join(parts)}</think>\n<answer>{answer}</answer>", "length": 100 + 10 * i,
            "truncated": i == 8, "reward": reward, "solved": solved, "format_ok": reward != -3.0,
            "format_reason": None, "answer_status": "correct" if solved else "wrong"}


def train_metrics(step: int) -> dict[str, Any]:
    line = {"kind": "train", "step": step, "time": 1.7e9 + step, "reward/mean": 0.1 * step, "reward/std": 1.0,
            "acc": 0.2, "format_ok": 0.95, "answer/correct": 0.2, "answer/wrong": 0.8,
            "answer/unparseable": 0.0, "answer/missing": 0.0,
            "length/mean": 145.0, "length/max": 190.0, "length/clipped": 0.1,
            "entropy": 1.0 - 0.05 * step, "lr": 1e-6, "people": 3.5}
    if step > 5:
        line["kl"] = 0.001 * step  # keys may be missing on some lines
    return line


def val_metrics(step: int) -> dict[str, Any]:
    return {"kind": "val", "step": step, "time": 1.7e9 + step, "val/acc": 0.1 * step, "val/format_ok": 0.9,
            "val/reward": 0.0, "val/length": 150.0, "val/acc/3ppl": 0.1 * step, "val/format_ok/3ppl": 0.9,
            "val/acc/4ppl": 0.05 * step, "val/format_ok/4ppl": 0.8}


def write_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def build_run(root: Path, steps: int = STEPS) -> Path:
    """Write the synthetic run under ``root`` and return it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump({"model": {"name": "tiny-random"},
                                                      "algorithm": {"advantage": "grpo"}}))
    lines: list[dict[str, Any]] = []
    for step in range(1, steps + 1):
        lines.append(train_metrics(step))
        rows = [response_row(step, i) for i in range(PER_STEP)]
        write_lines(root / "rollouts" / f"step_{step:06d}.jsonl", rows)
        if step % 5 == 0:
            lines.append(val_metrics(step))
            write_lines(root / "val" / f"step_{step:06d}.jsonl", [response_row(step, i) for i in range(2)])
    lines.insert(1, {"kind": "info", "message": "other kinds are skipped"})
    write_lines(root / "metrics.jsonl", lines)
    (root / "checkpoints" / "step_000010").mkdir(parents=True)
    return root


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return build_run(tmp_path / "run")


@pytest.fixture(scope="session")
def synthetic() -> SimpleNamespace:
    """This module's constants and builders, for the test modules (conftest is not importable under
    --import-mode=importlib)."""
    return SimpleNamespace(STEPS=STEPS, PER_STEP=PER_STEP, HTML_BAIT=HTML_BAIT, response_row=response_row,
                           write_lines=write_lines)

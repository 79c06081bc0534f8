"""runs/null_reward.py, the coin-reward control of docs/experiments.md: its run trains on rewards that ignore the
response (3.0 or −0.5 by a hash, at the asked rate), while the rollout rows keep the real verdicts.

Run: .venv/bin/python -m pytest tests/rl/test_null_reward.py
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "runs" / "null_reward.py"


def load_script():
    spec = importlib.util.spec_from_file_location("null_reward", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_coin_ignores_the_response_and_keeps_its_rate():
    coin = load_script().coin
    rows = [{"id": f"kk2-{i}", "sample": s, "length": 40 + s} for i in range(500) for s in range(2)]
    paid = [coin(row, 0.6) for row in rows]
    assert set(paid) == {3.0, -0.5} and abs(paid.count(3.0) / len(paid) - 0.6) < 0.05
    assert coin({**rows[0], "response": "anything"}, 0.6) == paid[0]  # the text plays no part
    assert {coin(row, 0.0) for row in rows} == {-0.5} and {coin(row, 1.0) for row in rows} == {3.0}


def test_a_run_trains_on_the_coin(puzzle_dir, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--p-right", "0.5", "--", "--model", "tiny-random", "--data", str(puzzle_dir),
         "--out", str(out), "--steps", "1", "rollout.prompts_per_step=2", "rollout.group_size=3",
         "rollout.max_response_tokens=8", "val_every=0", "save_every=0", "threads=1"],
        capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in (out / "rollouts" / "step_000001.jsonl").read_text().splitlines()]
    coin = load_script().coin
    assert len(rows) == 6 and all(row["reward"] == coin(row, 0.5) for row in rows)
    assert not any(row["solved"] for row in rows)  # the real verdicts: the tiny model solves nothing

"""A control for RL on the CPU recipe: `logicrl train` with the reward replaced by a coin that ignores the response.

Each response scores 3.0 (the paper's total for a right answer) or −0.5 (a wrong one) by a hash of (puzzle id,
sample, response length), at the rate ``--p-right``; everything else, the advantages included, runs as
`logicrl train` does. What such a run does to greedy validation is what the optimizer's noise alone does at
that batch size and learning rate, the baseline against which a real reward's effect on validation is read
(docs/experiments.md, "Fourth attempt").

Run: .venv/bin/python runs/null_reward.py [--p-right 0.6] -- <logicrl train arguments>
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from types import SimpleNamespace

import logicrl.rl.trainer as trainer_module
from logicrl.cli import app

real_score_generation = trainer_module.score_generation


def coin(row: dict, p_right: float) -> float:
    digest = hashlib.sha256(f"{row['id']}/{row['sample']}/{row['length']}".encode()).digest()
    return 3.0 if int.from_bytes(digest[:8], "big") / 2**64 < p_right else -0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--p-right", type=float, default=0.6, help="share of responses that score 3.0")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then `logicrl train` arguments")
    args = parser.parse_args()

    def coin_scores(records, generation, tokenizer, **kwargs):
        rows, _ = real_score_generation(records, generation, tokenizer, **kwargs)
        for row in rows:
            row["reward"] = coin(row, args.p_right)
        return rows, [SimpleNamespace(total=row["reward"]) for row in rows]

    trainer_module.score_generation = coin_scores
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    sys.argv = ["logicrl", "train", *train_args]
    app()


if __name__ == "__main__":
    main()

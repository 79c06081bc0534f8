"""The update phase alone, with and without skipping the tokens that carry no gradient (issue #15's update).

With no KL term, no entropy bonus and a token-local policy loss, a token whose advantage is 0 adds nothing to
the on-policy loss or its gradient, and in a causal model neither does anything after a response's last
token with A ≠ 0, so the update's forward can stop there (`logicrl.rl.update.gradient_lengths`). Positive-only
updates with check-line credit (the reasoning recipe, configs/cpu-credit-rl.yaml) leave many such tails: a
wrong answer earns nothing past its last right check line.

The script builds the trainer of ``--config`` (default: the reasoning recipe's RL) with ``algorithm.kl_coef=0``
on ``--model`` (its cold start), draws step 1's rollouts once (seed 0), then times ``Trainer._update`` on that
batch twice, each from a fresh trainer: every token ("before": `gradient_lengths` switched off) and the skip
("after"). One untimed update each (their loss and gradient norm must agree to float rounding: printed below
the table), then ``--steps`` timed ones. Columns: the response tokens the policy forward runs (prompts not
counted), seconds, speed-up.

Run:   .venv/bin/python benchmarks/update_skip.py --model outputs/cases/cold/checkpoints/step_000049 \\
           --data outputs/cases/data [--threads 2] [--steps 1] [--dtype float32]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import tempfile
import time
from unittest import mock

import torch

from logicrl.config import load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="the checkpoint RL starts from (the recipe's cold start)")
    parser.add_argument("--data", required=True, help="its dataset directory")
    parser.add_argument("--config", default="configs/cpu-credit-rl.yaml")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1, help="timed updates per case, after one untimed")
    parser.add_argument("--dtype", default="float32", help="model.dtype (bfloat16: CPU autocast)")
    parser.add_argument("--max-new-tokens", type=int, default=0, help="override the cap (smoke runs only)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from logicrl.rl import update
    from logicrl.rl.batch import RolloutBatch
    from logicrl.rl.config import TrainConfig
    from logicrl.rl.trainer import Trainer, draw_seed

    overrides = [f"model.name={args.model}", f"data.train={args.data}", f"model.dtype={args.dtype}",
                 "algorithm.kl_coef=0", "val_every=0", "save_every=0", "log_rollouts=false",
                 f"threads={args.threads}"]
    if args.max_new_tokens:
        overrides.append(f"rollout.max_response_tokens={args.max_new_tokens}")
    drawn = credit = None
    rows = []
    for label, skip in (("before: every response token", False), ("after: stop at the last A ≠ 0", True)):
        config = load_config(TrainConfig, args.config, [*overrides, f"out_dir={tempfile.mkdtemp(prefix='skip-')}"])
        trainer = Trainer(config, show_progress=False)
        if drawn is None:  # step 1's rollouts, generated once
            records = trainer.schedule.batch(0)
            drawn = trainer._sample(records, draw_seed(config.seed, 1, 0), {"time/generate": 0.0, "time/score": 0.0})
            credit, _ = trainer._check_credit(drawn, {r["id"]: r for r in records})
        batch = RolloutBatch.from_generation(drawn.generation, drawn.scores, config.rollout.group_size)
        tokens = int(batch.mask.sum())
        off = mock.patch.object(update, "gradient_lengths", lambda *a, **k: None)  # every token runs
        with contextlib.nullcontext() if skip else off:
            first = trainer._update(copy.deepcopy(batch), 1, {}, credit)
            if skip:
                advantaged = update.compute_advantages(copy.deepcopy(batch), config.algorithm, 0.0, credit)
                lengths = update.gradient_lengths(advantaged, config.algorithm, on_policy=True)
                tokens = tokens if lengths is None else int(lengths.sum())
            seconds = []
            for step in range(2, args.steps + 2):
                start = time.perf_counter()
                trainer._update(copy.deepcopy(batch), step, {}, credit)
                seconds.append(time.perf_counter() - start)
        rows.append((label, tokens, statistics.mean(seconds), first))
        del trainer
    lengths = drawn.generation.response_mask.sum(-1)
    print(f"# update phase, {args.config} with kl_coef=0, {args.model}, {args.dtype}, {args.threads} threads; one "
          f"batch of {len(lengths)} rollouts (mean {lengths.float().mean():.0f} tokens, max {int(lengths.max())}); "
          f"mean of {args.steps} timed updates after one untimed\n")
    print("| policy forward | response tokens | s | speed-up |\n|---|---:|---:|---:|")
    for label, tokens, secs, _ in rows:
        print(f"| {label} | {tokens} | {secs:.2f} | {rows[0][2] / secs:.2f}× |")
    print()
    # float rounding: float32's, or bf16's (8 mantissa bits: matmuls of other widths round differently)
    rtol = 1e-4 if args.dtype == "float32" else 1e-2
    for key in ("policy/loss", "grad_norm"):
        a, b = rows[0][3][key], rows[1][3][key]
        agree = abs(a - b) <= rtol * max(abs(a), abs(b)) + 1e-6
        print(f"{key}: before {a:.8g}, after {b:.8g}: {'agree' if agree else 'DIFFER'} "
              f"(|a−b| ≤ {rtol:g}·max(|a|, |b|) + 1e-6)")


if __name__ == "__main__":
    main()

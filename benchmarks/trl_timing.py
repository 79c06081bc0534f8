"""A `transformers.TrainerCallback` that times each optimizer step of a TRL trainer (shared by the benchmarks
that run TRL beside logicrl: rl_step.py, sft_vs_trl.py). Import it inside the function that builds the TRL
trainer, so a run without TRL installed does not need transformers' trainer module."""

from __future__ import annotations

import time

from transformers import TrainerCallback


class StepTimer(TrainerCallback):
    """``steps``: one dict per optimizer step, ``seconds`` plus a snapshot of ``counts`` (which the caller
    fills during the step, e.g. tokens seen by a collator); ``counts`` is zeroed after each step."""

    def __init__(self, counts: dict[str, int] | None = None) -> None:
        self.steps: list[dict[str, float]] = []
        self.counts = counts if counts is not None else {}

    def on_train_begin(self, _args, _state, _control, **_kw) -> None:
        self.last = time.perf_counter()

    def on_step_end(self, _args, _state, _control, **_kw) -> None:
        now = time.perf_counter()
        self.steps.append({"seconds": now - self.last, **self.counts})
        self.counts.update(dict.fromkeys(self.counts, 0))
        self.last = now

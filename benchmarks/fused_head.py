"""The fused vocabulary head alone (`logicrl.engine.logprobs._FusedHead`), forward and backward, now and at an
earlier commit, side by side in one run.

The update's forward ends in the fused head: per chunk of 512 tokens, logits [512, V] in the compute dtype, their
gradient, and ∂W's product [V, h]. Each row times forward + backward of Σ ℓ + 0.01 · Σ H over ``--tokens``
response tokens at SmolLM2-135M's shape (V = 49,152, h = 576, a float32 weight under bfloat16 autocast, as the
CPU recipes train), best of ``--repeats`` after one untimed call, in a fresh process for each tree, with a pause of
``--gap`` seconds between calls (in a step the rest of the model runs in between, and memory freed by one pass is
no longer hot for the next). Page faults are the process's minor faults over the timed calls, per call.

Two sets of rows: glibc told to keep freed memory (`logicrl.engine.allocator.keep_freed_memory`, as ``logicrl
train``, ``sft`` and ``eval`` run: in this loop alone its heap already hands the same blocks back, so both trees
fault little), and glibc's defaults (a process that does not call it, e.g. a library user's own loop: every tensor
above 32 MiB is a fresh mapping). In a real update the head's tensors are interleaved with the model's, the heap
fragments, and fresh [512, V] and [V, h] tensors fault even with the thresholds raised
(docs/performance.md, "The fused head's tensors once a pass").

The "before" column runs the same code with the source tree of ``--before REV`` (default fdd5c06: a new tensor per
chunk for the logits, their gradient and ∂W's product, and ∂W's bfloat16 product widened whole) first on
PYTHONPATH. The values and gradients are the same bits both ways (compared when the change was made: docs/performance.md).

Run:   .venv/bin/python benchmarks/fused_head.py [--tokens 500 1500 3000] [--repeats 5] [--gap 1] [--before REV]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from child_cases import env_at, installed_env

ROOT = Path(__file__).resolve().parents[1]
VOCABULARY, WIDTH, CHUNK = 49_152, 576, 512

TIMED = """
import json, resource, sys, time
import torch
from logicrl.engine.allocator import keep_freed_memory
from logicrl.engine.logprobs import _FusedHead
tokens, repeats, gap, V, H, chunk, kept = (*map(int, sys.argv[1:3]), float(sys.argv[3]), *map(int, sys.argv[4:8]))
if kept:
    keep_freed_memory()
torch.set_num_threads(2)
generator = torch.Generator().manual_seed(0)
weight = torch.nn.Parameter(torch.randn((V, H), generator=generator) * 0.02)
hidden = torch.randn((tokens, H), generator=generator, requires_grad=True)
targets = torch.randint(0, V, (tokens,), generator=generator)
best, faults = float("inf"), 0
for call in range(repeats + 1):
    weight.grad = hidden.grad = None
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logp, entropy = _FusedHead.apply(hidden, weight, None, targets, 1.0, chunk, True)
    (logp.sum() + 0.01 * entropy.sum()).backward()
    if call:
        best = min(best, time.perf_counter() - start)
        faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    time.sleep(gap)
print(json.dumps({"seconds": best, "faults": faults / repeats}))
"""


def timed(tokens: int, repeats: int, gap: float, kept: bool, env: dict[str, str]) -> dict[str, float]:
    arguments = (tokens, repeats, gap, VOCABULARY, WIDTH, CHUNK, int(kept))
    done = subprocess.run([sys.executable, "-c", TIMED, *map(str, arguments)], check=True,
                          capture_output=True, text=True, env=env, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[500, 1500, 3000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between calls")
    parser.add_argument("--before", default="fdd5c06", help="the earlier commit to compare with")
    args = parser.parse_args()
    env = installed_env(2)
    with tempfile.TemporaryDirectory() as tmp:
        before_env = env_at(args.before, Path(tmp), env)
        print(f"# The fused head, forward + backward (V = {VOCABULARY:,}, h = {WIDTH}, chunks of {CHUNK}, bf16 "
              f"autocast, 2 threads), {datetime.date.today()}, {platform.machine()}, "
              f"1-minute load {os.getloadavg()[0]:.2f}; before = {args.before}")
        print("| glibc malloc | tokens | logicrl (ms) | before (ms) | speed-up | page faults a call | before |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for kept in (True, False):
            for tokens in args.tokens:
                now = timed(tokens, args.repeats, args.gap, kept, env)
                then = timed(tokens, args.repeats, args.gap, kept, before_env)
                print(f"| {'keeping freed memory' if kept else 'defaults'} | {tokens:,} | {now['seconds'] * 1e3:.0f} | "
                      f"{then['seconds'] * 1e3:.0f} | {then['seconds'] / now['seconds']:.2f}× | {now['faults']:,.0f} | "
                      f"{then['faults']:,.0f} |")


if __name__ == "__main__":
    main()

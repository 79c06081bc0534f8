"""The decode step's bfloat16 projections alone: the AMX tile kernel (`logicrl.engine.tile_linear`, tile_linear.c)
against what the engine runs without it, oneDNN's matmul on its pre-packed weight, side by side in one run.

Shapes of SmolLM2-135M (hidden 576, MLP 1,536, 3 KV heads of 64, vocabulary 49,152) as the engine concatenates
them (q/k/v, gate/up), at ``--rows`` rows (16: the RL step's 4 × 4 rollouts). Each call reads another copy of the
weight, ≈ 200 MB of copies cycled, so that every weight comes from memory as in a decode step, where the model's
270 MB do not stay in cache. Microseconds per call and the weight's bytes over that time, the mean of a pass over
the copies after a warm-up pass; the sides alternate, best of ``--repeats`` passes each.

Run:   .venv/bin/python benchmarks/decode_projections.py [--rows 16] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import torch

from logicrl.engine import native, tile_linear
from logicrl.engine.onednn import _onednn, onednn_support

SHAPES = {"q, k, v": (576, 960), "o": (576, 576), "gate, up": (576, 3072), "down": (1536, 576),
          "head": (576, 49152)}  # name → (K, N)
COPIES_BYTES = 200_000_000


def per_call(fn, x, weights) -> float:
    """Mean seconds of ``fn(x, w)`` over ``weights``, one call each."""
    start = time.perf_counter()
    for w in weights:
        fn(x, w)
    return (time.perf_counter() - start) / len(weights)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not tile_linear.tile_linear_works():
        raise SystemExit("error: the AMX kernel does not run here (it needs a CPU with AMX-BF16): "
                         f"{native.unavailable_reason('tile_linear') or 'not an AMX CPU, or its probe failed'}")
    if not onednn_support().bf16:
        raise SystemExit("error: oneDNN's bfloat16 linear ops do not work here; nothing to compare with")
    print(f"# decode projections — {datetime.date.today()}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}, {args.rows} rows, bfloat16, "
          f"best of {args.repeats}")
    print("| projection (K → N) | oneDNN µs | oneDNN GB/s | tiles µs | tiles GB/s | oneDNN ÷ tiles |")
    print("|---|---:|---:|---:|---:|---:|")
    generator = torch.Generator().manual_seed(0)
    for name, (K, N) in SHAPES.items():
        x = torch.randn((args.rows, K), generator=generator).bfloat16()
        raw = [torch.randn((N, K), generator=generator).bfloat16() for _ in range(max(2, COPIES_BYTES // (N * K * 2)))]
        packed = [torch.ops.mkldnn._reorder_linear_weight(w, args.rows) for w in raw]
        tiled = [tile_linear.pack(w) for w in raw]
        del raw
        onednn = tiles = float("inf")
        for _ in range(args.repeats + 1):  # the first pass warms up
            onednn = min(onednn, per_call(_onednn, x, packed))
            tiles = min(tiles, per_call(lambda x, w: w(x), x, tiled))
        gigabytes = N * K * 2 / 1e9
        print(f"| {name} ({K:,} → {N:,}) | {onednn * 1e6:.0f} | {gigabytes / onednn:.1f} | {tiles * 1e6:.0f} | "
              f"{gigabytes / tiles:.1f} | {onednn / tiles:.2f}× |", flush=True)


if __name__ == "__main__":
    main()

"""The decode step's attention alone: the compiled one-pass kernel (`logicrl.engine.attention.native_attention`,
decode_attention.c) against what the engine runs without it, PyTorch's CPU flash kernel on each key set and the
log-sum-exp merge, side by side in one run.

Shapes of SmolLM2-135M (3 KV heads, 3 queries each, head size 64) at 16 rows: C keys that every row shares and T
keys of each row's own (the rest of its prompt, then its response) in a cache as wide as the engine's. Each call
reads another layer's cache of 30, and every 30 calls a 64 MB buffer is written, so that the keys come from memory
as in a decode step and not from a warm cache. Microseconds per call, the mean of ``--calls`` calls after a warm-up;
the two sides alternate by shape.

Run:   .venv/bin/python benchmarks/decode_attention.py [--calls 120] [--threads N]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import torch

from logicrl.engine import native
from logicrl.engine.attention import attend_both, native_attention, reference_attention

LAYERS, ROWS, KV_HEADS, GROUP, HEAD_DIM = 30, 16, 3, 3, 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=120)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if native.library("decode_attention") is None:
        raise SystemExit(f"error: the kernel is not built here: {native.unavailable_reason('decode_attention')}")
    flush = torch.empty(64 << 20, dtype=torch.uint8)
    print(f"# decode attention — {datetime.date.today()}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}, {args.calls} calls per cell")
    print("| dtype | common keys | own keys | PyTorch flash ×2 + merge (µs) | compiled one pass (µs) | speed-up |"
          " largest error vs float64 (PyTorch, ours) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    generator = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16):
        for common_len, own_len in ((180, 60), (180, 190), (60, 400)):
            width = own_len + 64
            q = torch.randn((ROWS, KV_HEADS, GROUP, HEAD_DIM), generator=generator).to(dtype)
            common = tuple(torch.randn((1, KV_HEADS, common_len, HEAD_DIM), generator=generator).to(dtype)
                           for _ in range(2))
            cache = torch.randn((2, LAYERS, ROWS, KV_HEADS, width, HEAD_DIM), generator=generator).to(dtype)
            bias = torch.zeros(ROWS, 1, 1, width, dtype=dtype)
            bias[::2, ..., :5] = float("-inf")  # left padding in every other row
            bias = bias[..., :own_len]
            layer = [(cache[0, i, :, :, :own_len], cache[1, i, :, :, :own_len]) for i in range(LAYERS)]
            timings = {}
            for name, fn in (("torch", attend_both), ("ours", native_attention)):
                for keys, values in layer[:3]:
                    fn(q, common, keys, values, bias, 0.125)
                total = 0.0
                for call in range(args.calls):
                    if call % LAYERS == 0:
                        flush.add_(1)
                    keys, values = layer[call % LAYERS]
                    start = time.perf_counter()
                    fn(q, common, keys, values, bias, 0.125)
                    total += time.perf_counter() - start
                timings[name] = total / args.calls * 1e6
            keys, values = layer[0]
            expected = reference_attention(q, [(*common, None), (keys, values, bias)], 0.125)
            errors = [(fn(q, common, keys, values, bias, 0.125).double() - expected).abs().max().item()
                      for fn in (attend_both, native_attention)]
            print(f"| {str(dtype).removeprefix('torch.')} | {common_len} | {own_len} | {timings['torch']:.0f} | "
                  f"{timings['ours']:.0f} | {timings['torch'] / timings['ours']:.2f}× | "
                  f"{errors[0]:.1e}, {errors[1]:.1e} |", flush=True)


if __name__ == "__main__":
    main()

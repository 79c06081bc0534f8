"""Generation throughput: ``logicrl.engine.decode.generate`` vs plain ``model.generate``, same model and prompts.

Batch of 16 rows, K&K prompts (2-person puzzles from ``logicrl.puzzles``, the Logic-RL chat prompt with the
``<think>`` pre-fill), 128 new tokens, the default model (SmolLM2-135M-Instruct) in float32 on the CPU.
Cases: 16 distinct prompts, and 4 prompts × 4 samples (the RL shape: ``n=4`` for us,
``num_return_sequences=4`` for ``generate``); the 16 distinct prompts once more with the shared prefix lever
off (the chat template and instruction, which every prompt opens with, prefilled once per prompt instead of
once per call: `logicrl.engine.sequences.shared_prefix_length`), with the compiled decode-step kernels off
(`logicrl.engine.native`: PyTorch's ops and oneDNN instead), and with the bfloat16 projections on oneDNN instead
of AMX tiles (`logicrl.engine.tile_linear`: the same as the default row in float32 or on a CPU without AMX).
Every row writes all 128 tokens (``min_new_tokens`` for ``generate``, no stop ids for us) so the token counts match; the last case stops at eos / ``</answer>`` on both
sides (greedy; in bf16 the two sides round apart and write different tokens, so each side's rate is its own
count: ``generate``'s up to each row's first stop id). Columns: tokens/s of ``model.generate``, of our loop
on the model's own forward (``engine="model"``: prefill sharing, early stop), of our default engine, and
the ratio of our default engine's rate to ``generate``'s. Times include the prefill; each cell is the fastest of ``--repeats`` calls
(default 1) after a warm-up, the three sides taking turns, so a slow call on a shared machine does not decide a
ratio.

The process keeps freed memory in glibc's heap (`logicrl.engine.allocator.keep_freed_memory`), as ``logicrl
train``, ``sft`` and ``eval`` do on a CPU; both sides run in it. ``--plain-malloc`` leaves glibc's defaults.

``--dtype bfloat16`` runs every call under CPU bf16 autocast over the float32 weights, as TRL's and
``logicrl train model.dtype=bfloat16`` do: ``model.generate`` then casts weights inside each op, our engine
casts them once per call (its ``dtype`` follows the autocast dtype).

``--levers`` instead adds the levers one at a time on the RL shape (4 prompts × 4 samples, sampled), each
row with the seconds of one call and its gain over the row above: our loop on the model's forward
without and with prefill sharing, then the fast engine with oneDNN switched off (prompts repeated, then
shared), then oneDNN pre-packed weights, then the compiled decode attention, then the compiled elementwise calls,
then the default (also the bfloat16 projections on AMX tiles where the CPU has them).

Run:   .venv/bin/python benchmarks/generation_throughput.py [--threads 1] [--tokens 128] [--model NAME] [--levers]
                                                               [--dtype bfloat16] [--repeats 3] [--plain-malloc]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import time

import torch
from switches import compiled_kernels_lever, shared_prefix_lever

from logicrl.engine import onednn
from logicrl.engine.allocator import keep_freed_memory
from logicrl.engine.decode import generate
from logicrl.engine.sequences import left_pad
from logicrl.evaluate.scoring import stop_token_ids
from logicrl.models import DEFAULT_MODEL, load_model_and_tokenizer
from logicrl.prompts import PromptConfig, encode_prompts
from logicrl.puzzles.dataset import DataConfig
from logicrl.puzzles.dataset import generate as generate_puzzles

STOP_TEXTS = ("</answer>",)


def plain_generate(model, tokenizer, prompts, *, n: int, tokens: int, greedy: bool, stop: bool) -> int:
    """``model.generate`` on the left-padded prompts; returns the number of generated tokens: each row's up to
    and including its first stop id (an upper bound where the pad id is a stop id, as SmolLM2's eos: a row
    stopped by a stop string counts one pad more, which only lowers our ratio)."""
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    stops = stop_token_ids(tokenizer)
    out = model.generate(
        input_ids=ids, attention_mask=mask, max_new_tokens=tokens, min_new_tokens=None if stop else tokens,
        do_sample=not greedy, num_return_sequences=n, pad_token_id=tokenizer.pad_token_id, eos_token_id=stops,
        stop_strings=list(STOP_TEXTS) if stop else None, tokenizer=tokenizer if stop else None,
        **({} if greedy else {"temperature": 1.0, "top_p": 1.0, "top_k": 0}),
    )
    new = out[:, ids.shape[1]:]
    if not stop:
        return new.numel()
    stopped = torch.isin(new, torch.tensor(list(stops) + [tokenizer.pad_token_id]))
    first = torch.where(stopped.any(1), stopped.int().argmax(1) + 1, new.shape[1])
    return int(first.sum())


def our_generate(model, tokenizer, prompts, *, n: int, tokens: int, greedy: bool, stop: bool, engine: str) -> int:
    """`generate` on the same prompts; returns the number of generated tokens."""
    out = generate(
        model, prompts, n=n, max_new_tokens=tokens, pad_token_id=tokenizer.pad_token_id,
        stop_token_ids=stop_token_ids(tokenizer) if stop else (), greedy=greedy, temperature=1.0,
        stop_texts=STOP_TEXTS if stop else (), tokenizer=tokenizer, seed=0, engine=engine,
    )
    return int(out.response_mask.sum())


def timed(fn, *args, **kwargs) -> tuple[float, int | None]:
    """``(seconds, result)`` of one call of ``fn``."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


@contextlib.contextmanager
def onednn_off():
    """The fast engine without oneDNN (its projections fall back to ``F.linear``, MKL on this CPU) nor the compiled
    kernels, which the rows below it add."""
    probe = onednn.onednn_support
    onednn.onednn_support = lambda: onednn.OneDNNSupport(linear=False, bf16=False)
    try:
        with compiled_kernels_lever(False, False, False):
            yield
    finally:
        onednn.onednn_support = probe


@contextlib.contextmanager
def onednn_off_no_prefix():
    """oneDNN off, and the prefix every prompt shares prefilled per prompt (no sharing at all)."""
    with onednn_off(), shared_prefix_lever(False):
        yield


def levers(model, tokenizer, prompts, tokens: int) -> None:
    """Seconds for 4 prompts × 4 samples (sampled, no stops) as the levers are added one by one."""
    repeated = [p for p in prompts for _ in range(4)]
    options = {"tokens": tokens, "greedy": False, "stop": False}
    rows = [
        ("model.generate", lambda: plain_generate(model, tokenizer, prompts, n=4, **options)),
        ("our loop, model forward, no sharing", lambda: our_generate(
            model, tokenizer, repeated, n=1, engine="model", **options)),
        ("+ prefill shared by the 4 samples", lambda: our_generate(
            model, tokenizer, prompts, n=4, engine="model", **options)),
        ("fast engine, no oneDNN, no sharing", lambda: our_generate(
            model, tokenizer, repeated, n=1, engine="fast", **options), onednn_off_no_prefix),
        ("+ prompt prefill and KV shared", lambda: our_generate(
            model, tokenizer, prompts, n=4, engine="fast", **options), onednn_off),
        ("+ oneDNN pre-packed weights", lambda: our_generate(
            model, tokenizer, prompts, n=4, engine="fast", **options),
         lambda: compiled_kernels_lever(False, False, False)),
        ("+ compiled one-pass decode attention", lambda: our_generate(
            model, tokenizer, prompts, n=4, engine="fast", **options), lambda: compiled_kernels_lever(True, False, False)),
        ("+ compiled residual add + norm, rotary + cache write", lambda: our_generate(
            model, tokenizer, prompts, n=4, engine="fast", **options), lambda: compiled_kernels_lever(True, True, False)),
        ("+ bfloat16 projections on AMX tiles (default; no change without AMX or in float32)", lambda: our_generate(
            model, tokenizer, prompts, n=4, engine="fast", **options)),
    ]
    print("| lever | seconds | tokens/s | gain over the row above |")
    print("|---|---:|---:|---:|")
    previous = None
    for label, call, *context in rows:
        with context[0]() if context else contextlib.nullcontext():
            seconds, _ = timed(call)
        gain = "" if previous is None else f"{previous / seconds:.2f}x"
        print(f"| {label} | {seconds:.1f} | {16 * tokens / seconds:.0f} | {gain} |", flush=True)
        previous = seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model alias, path or hub id")
    parser.add_argument("--tokens", type=int, default=128, help="new tokens per row")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--levers", action="store_true", help="add the levers one at a time instead")
    parser.add_argument("--repeats", type=int, default=1, help="calls per cell and side; the fastest counts")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="bfloat16: every call under CPU bf16 autocast (weights stay float32)")
    parser.add_argument("--plain-malloc", action="store_true", help="leave glibc's malloc at its defaults")
    args = parser.parse_args()
    kept = not args.plain_malloc and keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer = load_model_and_tokenizer(args.model, dtype="float32", device="cpu")
    records = generate_puzzles(DataConfig(people=[2], train=16, test=0, seed=0))[2]["train"]
    distinct = encode_prompts(records, tokenizer, PromptConfig())
    print(f"# {datetime.date.today()}  {platform.machine()}  {os.cpu_count()} CPUs  torch {torch.__version__}  "
          f"threads {torch.get_num_threads()}  load {os.getloadavg()[0]:.2f}  model {args.model}  {args.dtype}  "
          f"best of {args.repeats}  freed memory {'kept' if kept else 'returned (glibc defaults)'}")
    print(f"# prompts: {sum(map(len, distinct)) / len(distinct):.0f} tokens on average; {args.tokens} new tokens")
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.dtype == "bfloat16")
    with torch.no_grad(), autocast:
        our_generate(model, tokenizer, distinct[:2], n=1, tokens=4, greedy=True, stop=False, engine="auto")
        plain_generate(model, tokenizer, distinct[:2], n=1, tokens=4, greedy=True, stop=False)
        if args.levers:
            levers(model, tokenizer, distinct[:4], args.tokens)
            return
        cases = [
            ("16 prompts, greedy", distinct, 1, True, False),
            ("16 prompts, sampled t=1", distinct, 1, False, False),
            ("16 prompts, sampled t=1, shared prefix not run once", distinct, 1, False, False),
            ("16 prompts, sampled t=1, no compiled kernels", distinct, 1, False, False),
            ("16 prompts, sampled t=1, projections on oneDNN (no AMX tiles)", distinct, 1, False, False),
            ("4 prompts x 4 samples, sampled t=1", distinct[:4], 4, False, False),
            ("16 prompts, greedy, stop at eos/</answer>", distinct, 1, True, True),
        ]
        print("| case | generate tok/s | ours, engine=model | ours tok/s | ours / generate |")
        print("|---|---:|---:|---:|---:|")
        for label, prompts, n, greedy, stop in cases:
            options = {"n": n, "tokens": args.tokens, "greedy": greedy, "stop": stop}
            ours = loop = plain = float("inf")
            for _ in range(args.repeats):  # the sides take turns, so a slow spell hits all of them
                compiled, tiles = "no compiled" not in label, "no AMX" not in label and "no compiled" not in label
                with shared_prefix_lever("prefix not" not in label), compiled_kernels_lever(compiled, compiled, tiles):
                    seconds, count = timed(our_generate, model, tokenizer, prompts, engine="auto", **options)
                ours = min(ours, seconds)
                loop = min(loop, timed(our_generate, model, tokenizer, prompts, engine="model", **options)[0])
                plain_seconds, plain_count = timed(plain_generate, model, tokenizer, prompts, **options)
                plain = min(plain, plain_seconds)
            # without stops every row has all its tokens; with them each side's own count (greedy in bf16 parts)
            print(f"| {label} | {plain_count / plain:.0f} | {count / loop:.0f} | {count / ours:.0f} | "
                  f"{count / ours / (plain_count / plain):.2f}x |", flush=True)


if __name__ == "__main__":
    main()

"""The decode step's attention over two key sets merged by log-sum-exp (`logicrl.engine.attention`): against a
softmax over their union, and the fast engine with it, with the compiled one-pass kernel and with the
batched-matmul fallback (the kernel alone: tests/engine/test_native.py).

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/engine/test_attention.py -q
"""

from __future__ import annotations

import collections

import pytest
import torch

from logicrl.engine import attention, sequences
from logicrl.engine.decode import generate
from logicrl.models import build_tiny_model

needs_flash = pytest.mark.skipif(not attention.cpu_flash_works(torch.float32),
                                 reason="this PyTorch's CPU flash-attention op fails its probe")


def test_merging_two_softmaxes_by_log_sum_exp_is_the_softmax_of_the_union():
    """By hand: each set's output and ℓ from plain float64 softmaxes; the merge equals one softmax over both."""
    generator = torch.Generator().manual_seed(3)
    q, k_a, v_a = (torch.randn(shape, generator=generator, dtype=torch.float64)
                   for shape in ((2, 3, 4, 8), (2, 3, 7, 8), (2, 3, 7, 8)))
    k_b, v_b = (torch.randn((2, 3, 2, 8), generator=generator, dtype=torch.float64) for _ in range(2))
    s_a, s_b = q @ k_a.transpose(-1, -2), q @ k_b.transpose(-1, -2)
    merged = attention.merge_attention(torch.softmax(s_a, -1) @ v_a, torch.logsumexp(s_a, -1),
                                       torch.softmax(s_b, -1) @ v_b, torch.logsumexp(s_b, -1))
    expected = torch.softmax(torch.cat([s_a, s_b], -1), -1) @ torch.cat([v_a, v_b], 2)
    torch.testing.assert_close(merged.double(), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kernel", ["flash_attention", "matmul_attention"])
def test_each_attention_gives_the_softmax_and_its_log_sum_exp(kernel, dtype):
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(shape, generator=generator) for shape in ((3, 2, 5, 16), (3, 2, 9, 16), (3, 2, 9, 16)))
    bias = torch.zeros(3, 1, 1, 9)
    bias[0, ..., :4] = float("-inf")  # a left-padded prompt
    if kernel == "flash_attention" and not attention.cpu_flash_works(dtype):
        pytest.skip(f"no CPU flash attention in {dtype}")
    out, lse = getattr(attention, kernel)(q.to(dtype), k.to(dtype), v.to(dtype), bias.to(dtype), 0.25)
    scores = q.double() @ k.double().transpose(-1, -2) * 0.25 + bias.double()
    tolerance = 1e-5 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(out.double(), torch.softmax(scores, -1) @ v.double(), atol=tolerance, rtol=0)
    torch.testing.assert_close(lse.double(), torch.logsumexp(scores, -1), atol=tolerance, rtol=0)


SHARED = list(range(40, 40 + sequences.MIN_SHARED_PREFIX))  # long enough to be run and kept once


@needs_flash
@pytest.mark.parametrize("heads", [(4, 2, 64), (3, 1, 192)], ids=["D16-G2", "D64-G3"])  # the kernel unrolls D=64
@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("prompts", [
    [[5, 9, 13, 200, 41, 7], [7, 8], [300, 301, 302, 303]],  # nothing in common: every key is a row's own
    [SHARED + [5, 9, 13, 200], SHARED + [7], SHARED + [300, 301, 302]],  # a common prefix, then own keys
    [[5, 9, 13, 200, 41, 7]],  # one prompt: all its keys are common to its rows
], ids=["distinct", "shared-prefix", "one-prompt"])
def test_the_fast_engine_decodes_the_same_with_each_attention_path(n, prompts, heads, monkeypatch):
    """float32, left-padded prompts of different lengths, n samples per prompt, finished prompts leaving the batch:
    the compiled one-pass kernel (where it is built), the flash calls merged by log-sum-exp and the batched matmuls
    sample the same tokens, with the same log-probs to float rounding; each path runs only where it is chosen.
    Float rounding after 20 tokens of these random layers: the log-probs of the native and the matmul paths part by
    up to 2.5e-5 at hidden size 192 (2.6e-5 with the compiled SiLU product, 2.5e-5 with PyTorch's: measured over
    every case here), so 5e-5."""
    num_heads, num_kv_heads, hidden = heads
    model, tokenizer = build_tiny_model(hidden_size=hidden, num_heads=num_heads, num_kv_heads=num_kv_heads)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # weights with varied greedy continuations (the default tiny model repeats one token)
        for p in model.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
    options = {"n": n, "max_new_tokens": 20, "pad_token_id": tokenizer.pad_token_id, "stop_token_ids": (),
               "seed": 0, "engine": "fast", "temperature": 1.0}
    calls = collections.Counter()
    for name in ("_run_native", "flash_attention"):
        kernel = getattr(attention, name)
        monkeypatch.setattr(attention, name, lambda *args, kernel=kernel, name=name: calls.update([name])
                            or kernel(*args))
    options["stop_token_ids"] = (int(generate(model, prompts, **options).response_ids[0, 4]),)  # row 0 stops
    results, native = {}, attention.native_attention_works(torch.float32)
    for path, switch_off in (("native", None), ("flash", "native_attention_works"), ("matmuls", "cpu_flash_works")):
        if switch_off:
            monkeypatch.setattr(attention, switch_off, lambda dtype: False)
        calls.clear()
        results[path] = generate(model, prompts, **options)
        assert bool(calls["_run_native"]) == (path == "native" and native)
        assert bool(calls["flash_attention"]) == (path == "flash" or path == "native" and not native)
    for path in ("native", "flash"):
        assert torch.equal(results[path].response_ids, results["matmuls"].response_ids), path
        torch.testing.assert_close(results[path].logprobs, results["matmuls"].logprobs, atol=5e-5, rtol=1e-5)
    assert (results["matmuls"].response_mask.sum(-1) < 20).any()  # some rows stopped: the batch shrank on the way

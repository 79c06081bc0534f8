"""The decode step's compiled elementwise calls (`logicrl.engine.fused`, decode_elementwise.c): the rotary with its
cache write against transformers' ``apply_rotary_pos_emb`` bit for bit, the residual add + RMSNorm and the gated
MLP's SiLU product against the PyTorch ops, the fallback where a call does not apply, and the fast engine with and without them.

Run: .venv/bin/python -m pytest tests/engine/test_fused.py -q
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from logicrl.engine import fused, native
from logicrl.engine.decode import generate
from logicrl.models import build_tiny_model

needs_kernels = pytest.mark.skipif(native.library("decode_elementwise") is None,
                                   reason=f"not built here: {native.unavailable_reason('decode_elementwise')}")
DTYPES = st.sampled_from([torch.float32, torch.bfloat16])


def rope(B: int, D: int, generator: torch.Generator, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [B, 1, D] as a rotary embedding makes them (each angle twice), at arbitrary positions."""
    angles = torch.rand((B, 1, D // 2), generator=generator, dtype=torch.float64) * 500
    return tuple(torch.cat([f(angles)] * 2, dim=-1).to(dtype) for f in (torch.cos, torch.sin))


@needs_kernels
@settings(max_examples=60, deadline=None)
@given(dtype=DTYPES, B=st.integers(1, 6), kv_heads=st.integers(1, 3), group=st.integers(1, 4),
       D=st.sampled_from([2, 8, 16, 64, 128]), width=st.integers(1, 6), seed=st.integers(0, 1000))
def test_the_rotary_and_the_cache_write_are_transformers_bit_for_bit(dtype, B, kv_heads, group, D, width, seed):
    """The kernel itself (not through its probe): queries, the written slot, and every other slot untouched."""
    generator = torch.Generator().manual_seed(seed)
    heads, slot = kv_heads * group, seed % width
    qkv = (torch.randn((B, 1, (heads + 2 * kv_heads) * D), generator=generator) * 3).to(dtype)
    cos, sin = rope(B, D, generator, dtype)
    cache = torch.randn((2, B, kv_heads, width, D), generator=generator).to(dtype)
    before = cache.clone()
    q = fused._run_rotary_into_cache(qkv, cos, sin, cache[0, :, :, slot], cache[1, :, :, slot], heads, kv_heads)
    q_ref, k, v = fused.split_heads(qkv, heads, kv_heads, D)
    q_ref, k = fused.apply_rotary()(q_ref, k, cos, sin)
    assert torch.equal(q, q_ref)
    assert torch.equal(cache[0, :, :, slot], k[:, :, 0]) and torch.equal(cache[1, :, :, slot], v[:, :, 0])
    others = [j for j in range(width) if j != slot]
    assert torch.equal(cache[:, :, :, others], before[:, :, :, others])


@needs_kernels
@settings(max_examples=60, deadline=None)
@given(dtype=DTYPES, rows=st.integers(1, 20), E=st.integers(1, 700), add=st.booleans(), seed=st.integers(0, 1000))
def test_the_residual_add_and_rms_norm_are_the_pytorch_ops(dtype, rows, E, add, seed):
    """The sum bit for bit; the norm to float32 rounding of its mean of squares (summed in another order). In
    bfloat16 that may move the normalised value s by one unit in its last place before the product w · s is
    rounded again, so a result may differ by up to two units of its own: |δ| ≤ eps·|w·s| from s, plus one
    rounding step of at most eps·|h| (1.03 eps·|h| was seen, at seed 187 with 16 rows of 179)."""
    generator = torch.Generator().manual_seed(seed)
    x, delta = ((torch.randn((rows, 1, E), generator=generator) * 4).to(dtype) for _ in range(2))
    norm = fused.RMSNorm((torch.rand(E, generator=generator) + 0.5).to(dtype), 1e-6)
    delta = delta if add else None
    y, h = fused._run_add_norm(x, delta, norm)
    y_ref = x if delta is None else x + delta
    assert torch.equal(y, y_ref)
    assert y is x if delta is None else y.data_ptr() not in (x.data_ptr(), delta.data_ptr())  # inputs untouched
    expected = norm(y_ref)
    if dtype == torch.float32:
        torch.testing.assert_close(h, expected, atol=1e-6, rtol=2e-6)
    else:
        ulp = torch.finfo(torch.bfloat16).eps * expected.float().abs().clamp_min(torch.finfo(torch.bfloat16).tiny)
        assert ((h.float() - expected.float()).abs() <= ulp * 2).all()
        assert (h == expected).float().mean() > 0.9


@needs_kernels
@settings(max_examples=60, deadline=None)
@given(dtype=DTYPES, rows=st.integers(1, 20), I=st.integers(1, 200), scale=st.sampled_from([0.1, 4.0, 40.0]),
       seed=st.integers(0, 1000))
def test_the_silu_product_is_the_pytorch_ops(dtype, rows, I, scale, seed):
    """silu(gate) · up against F.silu(gate) * up: in float32 to a few units of float32 rounding (another exp and
    another quotient); in bfloat16 within one unit of the result's last place (the SiLU's float32 value may round
    to the other neighbour once), and nearly always equal; both give 0 (within 1e-30) where the gate is below −87
    (the compiled exp is 0 there, PyTorch's reaches 0 at −88.7). Widths that are not multiples of 16 included."""
    generator = torch.Generator().manual_seed(seed)
    gate_up = (torch.randn((rows, 1, 2 * I), generator=generator) * scale).to(dtype)
    gate, up = gate_up.chunk(2, dim=-1)
    expected = F.silu(gate) * up
    got = fused._run_silu_mul(gate_up)
    assert got.shape == expected.shape and got.dtype == dtype
    if dtype == torch.float32:
        torch.testing.assert_close(got, expected, rtol=4e-6, atol=1e-30)
    else:
        ulp = torch.finfo(torch.bfloat16).eps * expected.float().abs().clamp_min(torch.finfo(torch.bfloat16).tiny)
        assert ((got.float() - expected.float()).abs() <= ulp + 1e-30).all()
        assert (got == expected).float().mean() > 0.95


@needs_kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_silu_product_keeps_infinities_and_nans_as_pytorch_does(dtype):
    gate = torch.tensor([float("inf"), float("-inf"), float("nan"), -100.0, 100.0, 0.0, -0.0, 1.0]).to(dtype)
    gate_up = torch.cat([gate, torch.full_like(gate, 2.0)])[None]
    expected = F.silu(gate) * 2.0
    got = fused._run_silu_mul(gate_up)[0]
    assert torch.equal(got.isnan(), expected.isnan())
    keep = ~expected.isnan()
    torch.testing.assert_close(got[keep], expected[keep], rtol=1e-6, atol=0)


def test_the_gated_mlp_takes_the_silu_call_only_for_silu():
    """SiLU (torch's module or transformers' ACT2FN["silu"]) → `silu_mul`; another activation → its own ops."""
    from transformers.activations import ACT2FN

    assert fused.gated_mlp(torch.nn.SiLU()) is fused.silu_mul is fused.gated_mlp(ACT2FN["silu"])
    gelu = fused.gated_mlp(ACT2FN["gelu"])
    gate_up = torch.randn(3, 1, 8)
    assert gelu is not fused.silu_mul
    assert torch.equal(gelu(gate_up), ACT2FN["gelu"](gate_up[..., :4]) * gate_up[..., 4:])


@needs_kernels
def test_where_a_call_does_not_apply_the_pytorch_ops_run(monkeypatch):
    """A strided x, a cache slot whose rows are not contiguous: the PyTorch path, the same results."""
    assert fused.fused_works(torch.float32)  # its probe runs the kernels once, before the spies
    calls = []
    for name in ("_run_add_norm", "_run_rotary_into_cache", "_run_silu_mul"):
        real = getattr(fused, name)
        monkeypatch.setattr(fused, name, lambda *a, real=real: calls.append(real) or real(*a))
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((4, 1, 32), generator=generator)
    norm = fused.RMSNorm(torch.rand(16, generator=generator) + 0.5, 1e-6)
    _, h = fused.add_norm(x[..., ::2], None, norm)
    torch.testing.assert_close(h, norm(x[..., ::2]), rtol=0, atol=0)
    qkv = torch.randn((2, 1, 4 * 8), generator=generator)
    cos, sin = rope(2, 8, generator, torch.float32)
    cache = torch.zeros(2, 2, 1, 3, 8)
    keys, values = cache[0, :, :, 1].transpose(-1, -2).contiguous().transpose(-1, -2), cache[1, :, :, 1]
    q = fused.rotary_into_cache(qkv, cos, sin, keys, values, 2, 1)
    q_ref, k, v = fused.split_heads(qkv, 2, 1, 8)
    q_ref, k = fused.apply_rotary()(q_ref, k, cos, sin)
    assert torch.equal(q, q_ref) and torch.equal(keys, k[:, :, 0]) and torch.equal(values, v[:, :, 0])
    slots = cache[0, :, :, 2], cache[1, :, :, 2]  # cos and sin of one position for every row: broadcast, not [B, 1, D]
    q = fused.rotary_into_cache(qkv, cos[:1], sin[:1], *slots, 2, 1)
    q_ref, k_ref = fused.apply_rotary()(*fused.split_heads(qkv, 2, 1, 8)[:2], cos[:1], sin[:1])
    assert torch.equal(q, q_ref) and torch.equal(slots[0], k_ref[:, :, 0])
    gate_up = torch.randn((3, 1, 24), generator=generator)
    torch.testing.assert_close(fused.silu_mul(gate_up[..., ::2]), F.silu(gate_up[..., :12:2]) * gate_up[..., 12::2],
                               rtol=0, atol=0)
    assert not calls


@needs_kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_fast_engine_decodes_the_same_with_and_without_the_compiled_calls(dtype, monkeypatch):
    """Greedy in float32: the same tokens, the same log-probs to float rounding. In bfloat16 the norm's last-place
    differences may change a token somewhere, so there the first tokens and most log-probs agree."""
    model, tokenizer = build_tiny_model(hidden_size=192, num_heads=3, num_kv_heads=1)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
    prompts = [[5, 9, 13, 200, 41, 7], [7, 8], [300, 301, 302, 303]]
    options = {"n": 2, "max_new_tokens": 16, "pad_token_id": tokenizer.pad_token_id, "stop_token_ids": (),
               "seed": 0, "engine": "fast", "greedy": True, "dtype": dtype}
    assert fused.fused_works(dtype)
    calls = []
    real = fused._run_rotary_into_cache
    monkeypatch.setattr(fused, "_run_rotary_into_cache", lambda *a: calls.append(1) or real(*a))
    compiled = generate(model, prompts, **options)
    assert calls
    monkeypatch.setattr(fused, "fused_works", lambda dtype: False)
    calls.clear()
    plain = generate(model, prompts, **options)
    assert not calls
    if dtype == torch.float32:
        assert torch.equal(compiled.response_ids, plain.response_ids)
        torch.testing.assert_close(compiled.logprobs, plain.logprobs, atol=1e-5, rtol=1e-5)
    else:
        assert torch.equal(compiled.response_ids[:, :2], plain.response_ids[:, :2])

"""The fused head's softmax work on a chunk of logits (`logicrl.engine.head_softmax`, head_softmax.c): the compiled
statistics and gradient against PyTorch's ops for any shape, dtype and temperature they take, a NaN logit kept
visible, and the fused head's values and gradients the same with and without the compiled calls.

Run: .venv/bin/python -m pytest tests/engine/test_head_softmax.py -q
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from logicrl.engine import head_softmax, native
from logicrl.engine.logprobs import fused_head_logprobs

needs_kernel = pytest.mark.skipif(native.library("head_softmax") is None,
                                  reason=f"not built here: {native.unavailable_reason('head_softmax')}")


def chunk(dtype, n, vocabulary, masked, seed):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn((n, vocabulary), generator=generator) * 5
    if masked:
        logits[0, vocabulary // 2] = float("-inf")
    tokens = torch.randint(0, vocabulary, (n,), generator=generator)
    if masked and vocabulary > 1:
        tokens[0] = (vocabulary // 2 + 1) % vocabulary  # a token the mask leaves visible
    grads = torch.randn((2, n), generator=generator)
    return logits.to(dtype), tokens, grads[0], grads[1]


@needs_kernel
@settings(max_examples=120, deadline=None)
@given(dtype=st.sampled_from([torch.float32, torch.bfloat16]), n=st.integers(1, 6), vocabulary=st.integers(2, 300),
       temperature=st.sampled_from([1.0, 0.7, 1.3]), masked=st.booleans(),
       entropy_grad=st.sampled_from(["none", "zero", "random"]),
       out_dtype=st.sampled_from([torch.float32, torch.bfloat16]), seed=st.integers(0, 1000))
def test_the_compiled_calls_are_pytorchs_ops(dtype, n, vocabulary, temperature, masked, entropy_grad, out_dtype,
                                            seed):
    """lse, ℓ and H to float32 rounding of the logits' scale (against float64: PyTorch's own H, lse − Σ p·z, loses
    more than that to cancellation on a peaked row); the gradient, given the same lse and H, to float32 rounding (as
    float32) or within one bfloat16 rounding of PyTorch's float32 gradient (as bfloat16); vocabularies that are
    not multiples of 16 included."""
    logits, tokens, grad_logp, grad_entropy = chunk(dtype, n, vocabulary, masked, seed)
    grad_entropy = {"none": None, "zero": torch.zeros(n), "random": grad_entropy}[entropy_grad]
    stats = head_softmax._native_stats(logits, tokens, temperature, True)
    z = (logits / temperature if temperature != 1.0 else logits).double()  # divided in the logits' dtype
    lse = torch.logsumexp(z, dim=-1)
    exact = [value.float() for value in (lse, z.gather(-1, tokens[:, None])[:, 0] - lse,
                                         lse - (torch.exp(z - lse[:, None]) * z).nansum(-1))]
    scale = z[torch.isfinite(z)].abs().max()
    for got, want in zip(stats, exact):
        torch.testing.assert_close(got, want, rtol=0, atol=float(1e-6 * (1 + scale)))
    lse, _, entropy = head_softmax._torch_stats(logits, tokens, temperature, True)
    args = (logits, tokens, temperature, lse, entropy, grad_logp, grad_entropy)
    grads = head_softmax._native_grads(*args, out_dtype)
    want = head_softmax._torch_grads(*args, torch.float32)
    assert grads.dtype == out_dtype
    if out_dtype == torch.float32:
        torch.testing.assert_close(grads, want, rtol=1e-5, atol=1e-6)
    else:
        torch.testing.assert_close(grads.float(), want, rtol=2 ** -7, atol=1e-6)


@needs_kernel
def test_a_nan_logit_makes_the_row_nan():
    """A NaN logit must not vanish in a max or a sum (the loss would go on finite while the model is broken)."""
    logits, tokens, _, _ = chunk(torch.float32, 2, 40, False, 0)
    logits[1, 7] = float("nan")
    lse, logp, entropy = head_softmax._native_stats(logits, tokens, 1.0, True)
    assert torch.isfinite(lse[0]) and torch.isnan(lse[1]) and torch.isnan(logp[1]) and torch.isnan(entropy[1])


def test_the_dispatch_takes_pytorchs_ops_where_the_kernel_does_not_apply(monkeypatch):
    calls = []
    monkeypatch.setattr(head_softmax, "_native_stats", lambda *a: calls.append("stats"))
    logits, tokens, _, _ = chunk(torch.float16, 2, 20, False, 0)  # float16: not a dtype the kernel takes
    lse, logp, entropy = head_softmax.softmax_stats(logits, tokens, 1.0, False)
    assert entropy is None and not calls
    torch.testing.assert_close(lse, torch.logsumexp(logits.float(), -1))
    torch.testing.assert_close(logp, logits.float().log_softmax(-1).gather(-1, tokens[:, None])[:, 0])
    monkeypatch.setattr(head_softmax, "head_softmax_works", lambda: False)
    head_softmax.softmax_stats(logits.float(), tokens, 1.0, False)
    assert not calls


@needs_kernel
@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_the_fused_head_gives_the_same_values_and_gradients_with_and_without_the_kernel(monkeypatch, temperature):
    """Under bfloat16 autocast, as training runs it: log-probs, entropy and the gradients of the hidden states and
    of the weight, with the compiled calls and with PyTorch's ops (chunks of 5 over 13 tokens: a partial chunk)."""
    generator = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(24, 101, bias=False)
    hidden = torch.randn((2, 7, 24), generator=generator)
    tokens = torch.randint(0, 101, (2, 7), generator=generator)
    mask = torch.ones(2, 7)
    mask[1, 6] = 0

    def run():
        head.zero_grad()
        x = hidden.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logp, entropy = fused_head_logprobs(head, x, tokens, mask, 5, temperature=temperature, with_entropy=True)
        (logp.sum() + 0.1 * entropy.sum()).backward()
        return logp.detach(), entropy.detach(), x.grad, head.weight.grad.clone()

    assert head_softmax.head_softmax_works()
    compiled = run()
    monkeypatch.setattr(head_softmax, "head_softmax_works", lambda: False)
    plain = run()
    for got, want in zip(compiled, plain):
        torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-3)
    assert plain[2].abs().sum() > 0 and plain[3].abs().sum() > 0


@needs_kernel
def test_the_compiled_gradient_goes_into_the_buffer_it_is_given():
    """``out``: the first n rows of a buffer hold the gradient, the rest untouched; a buffer that does not fit (another
    dtype, fewer rows) is left alone and a new tensor returned."""
    logits, tokens, grad_logp, grad_entropy = chunk(torch.bfloat16, 4, 37, False, 0)
    lse, _, entropy = head_softmax._torch_stats(logits, tokens, 1.0, True)
    args = (logits, tokens, 1.0, lse, entropy, grad_logp, grad_entropy, torch.bfloat16)
    fresh = head_softmax.logit_grads(*args)
    room = torch.full((6, 37), float("nan"), dtype=torch.bfloat16)
    into = head_softmax.logit_grads(*args, out=room)
    assert torch.equal(into, fresh) and into.data_ptr() == room.data_ptr()
    assert torch.isnan(room[4:]).all()
    other = torch.zeros((6, 37))
    assert torch.equal(head_softmax.logit_grads(*args, out=other), fresh) and not other.any()
    short = torch.zeros((3, 37), dtype=torch.bfloat16)  # fewer rows than the gradient has: not written past
    assert torch.equal(head_softmax.logit_grads(*args, out=short), fresh) and not short.any()

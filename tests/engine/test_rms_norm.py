"""The decoder's RMSNorms in training (`logicrl.engine.rms_norm`, rms_norm.c): the compiled forward and backward
against autograd through transformers' formula for any rows and width, under bf16 autocast, with a frozen weight,
the same bits for any number of threads;
`fused_rms_norms` on a model: which modules it routes, what stays untouched (state dict, a bfloat16 model's
norms), and a whole model's loss and gradients against the same model unrouted.

Run: .venv/bin/python -m pytest tests/engine/test_rms_norm.py -q
"""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from logicrl.engine import native, rms_norm
from logicrl.models import TINY_MODEL, build_tiny_model, load_model_and_tokenizer

needs_kernel = pytest.mark.skipif(native.library("rms_norm") is None,
                                  reason=f"not built here: {native.unavailable_reason('rms_norm')}")


def inputs(rows, width, scale, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((rows, width), generator=generator) * scale
    return x, torch.randn(width, generator=generator), torch.randn((rows, width), generator=generator)


def value_and_grads(norm, x, weight, dy, eps, weight_grad=True, autocast=False):
    x, weight = x.clone().requires_grad_(), weight.clone().requires_grad_(weight_grad)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        y = norm(x, weight, eps)
    y.backward(dy)
    return y.detach(), x.grad, weight.grad


@needs_kernel
@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 40), width=st.integers(1, 600), scale=st.sampled_from([1e-3, 1.0, 50.0]),
       eps=st.sampled_from([1e-5, 1e-6]), weight_grad=st.booleans(), autocast=st.booleans(),
       threads=st.sampled_from([1, 2, 3]), seed=st.integers(0, 1000))
def test_the_compiled_passes_are_autograds_through_transformers_formula(rows, width, scale, eps, weight_grad,
                                                                          autocast, threads, seed):
    x, weight, dy = inputs(rows, width, scale, seed)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # dw is summed from one row of partial sums per thread
    try:
        ours = value_and_grads(rms_norm._RMSNorm.apply, x, weight, dy, eps, weight_grad, autocast)  # the kernel itself
    finally:
        torch.set_num_threads(before)
    expected = value_and_grads(rms_norm.plain_rms_norm, x, weight, dy, eps, weight_grad, autocast)
    assert ours[0].dtype == expected[0].dtype == torch.float32  # the residual stream's dtype, under autocast too
    torch.testing.assert_close(ours[0], expected[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours[1], expected[1], rtol=1e-4, atol=1e-5 / scale)
    if weight_grad:
        torch.testing.assert_close(ours[2], expected[2], rtol=1e-4, atol=1e-4)
    else:
        assert ours[2] is None


@needs_kernel
def test_the_weights_gradient_has_the_same_bits_for_any_number_of_threads():
    """A resumed run may pick another thread count (the load decides it): its steps must still give the same bits."""
    x, weight, dy = inputs(300, 576, 1.0, 3)
    before, grads = torch.get_num_threads(), []
    try:
        for threads in (1, 2, 3, 5):
            torch.set_num_threads(threads)
            grads.append(value_and_grads(rms_norm._RMSNorm.apply, x, weight, dy, 1e-5))
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(a, b) for other in grads[1:] for a, b in zip(grads[0], other))


@needs_kernel
def test_it_is_the_compiled_pass_that_runs(monkeypatch):
    """`rms_norm` goes through `_RMSNorm` on float32 CPU tensors, and through the plain ops (bit for bit) where the
    kernel does not apply: a bfloat16 input, a non-contiguous one, the library reported broken."""
    x, weight, _ = inputs(3, 8, 1.0, 0)
    assert type(rms_norm.rms_norm(x, weight.requires_grad_(), 1e-5).grad_fn).__name__ == "_RMSNormBackward"
    for other in (x.bfloat16(), x.t().contiguous().t()):
        w = weight.detach().to(other.dtype)
        assert torch.equal(rms_norm.rms_norm(other, w, 1e-5), rms_norm.plain_rms_norm(other, w, 1e-5))
    monkeypatch.setattr(rms_norm, "rms_norm_works", lambda: False)
    assert type(rms_norm.rms_norm(x, weight, 1e-5).grad_fn).__name__ != "_RMSNormBackward"


def test_fused_rms_norms_routes_the_norms_of_a_model_once_and_leaves_its_weights():
    model = build_tiny_model()[0]
    layers = model.config.num_hidden_layers
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert rms_norm.fused_rms_norms(model) == 2 * layers + 1  # two per layer and the final one
    assert rms_norm.fused_rms_norms(model) == 0  # already routed
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    twin = copy.deepcopy(model)  # the critic's body is a deep copy: its norms must be its own
    norm = twin.model.norm
    assert "forward" in vars(norm) and norm.forward.__self__ is norm


def test_a_loaded_model_keeps_them_through_train_and_eval():
    """transformers ≥ 5 re-kernelizes a model it loaded with its default ``use_kernels`` at every train()/eval(),
    which reset the routed forwards (the policy ran on the plain norms from its first update on, and a resumed
    run's old and new log-probs disagreed); `load_model_and_tokenizer` turns that off."""
    model, _ = load_model_and_tokenizer(TINY_MODEL, dtype="float32", device="cpu")
    routed = rms_norm.fused_rms_norms(model)
    for mode in (True, False, True):
        model.train(mode)
        assert sum("forward" in vars(module) for module in model.modules()) == routed


def loss_and_grads(model, ids, autocast):
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits = model(input_ids=ids).logits
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten())
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


@needs_kernel
@pytest.mark.parametrize("autocast", [False, True])
def test_a_routed_model_trains_as_the_plain_one(autocast):
    """The tiny model's loss and every parameter's gradient (the norms' weights included) with its norms routed,
    against the same model unrouted: float32 rounding apart in float32; under bf16 autocast, where that rounding
    can flip a bf16 rounding downstream, within 1 % of each gradient's largest entry."""
    plain = build_tiny_model()[0]
    routed = copy.deepcopy(plain)
    assert rms_norm.fused_rms_norms(routed)
    ids = torch.randint(0, plain.config.vocab_size, (3, 17), generator=torch.Generator().manual_seed(0))
    (loss, grads), (expected, expected_grads) = loss_and_grads(routed, ids, autocast), loss_and_grads(plain, ids,
                                                                                                       autocast)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    assert grads.keys() == expected_grads.keys() and any("norm" in name for name in grads)
    for name, grad in grads.items():
        expected_grad = expected_grads[name]
        if autocast:  # a float32 rounding apart can flip a bf16 rounding downstream: half a bf16 step of the scale
            assert (grad - expected_grad).abs().max() <= 1e-2 * expected_grad.abs().max(), name
        else:
            torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-5, msg=name)


def test_a_bfloat16_model_keeps_its_own_norms():
    """A bfloat16 base (a LoRA run's frozen weights) is not the kernel's: the same bits as before routing."""
    model = build_tiny_model()[0].to(torch.bfloat16)
    ids = torch.randint(0, model.config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(input_ids=ids).logits
        rms_norm.fused_rms_norms(model)
        assert torch.equal(model(input_ids=ids).logits, before)

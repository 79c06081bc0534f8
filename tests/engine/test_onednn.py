"""oneDNN linears: the once-per-process probe of the private ops, the ``F.linear`` fallback (same tokens and
log-probs without oneDNN), and inputs that oneDNN cannot take (bfloat16 under autocast).

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/engine/test_onednn.py -q
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from logicrl.engine import onednn
from logicrl.engine.decode import generate
from logicrl.engine.logprobs import response_logprobs
from logicrl.engine.onednn import OneDNNSupport, _Linear, onednn_linears
from logicrl.models import build_tiny_model

PROMPTS = [[5, 9, 13, 200, 41], [7, 8], [300, 301, 302, 303]]
needs_onednn = pytest.mark.skipif(not onednn.onednn_support().linear, reason="no working oneDNN linear ops")


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model()[0]


@pytest.fixture
def fresh_probe():
    """An empty probe cache before and after the test, so a patched op never leaves a cached answer behind."""
    onednn.onednn_support.cache_clear()
    yield onednn.onednn_support
    onednn.onednn_support.cache_clear()


def linears(*shapes: tuple[int, int]) -> list[torch.nn.Linear]:
    torch.manual_seed(0)
    return [torch.nn.Linear(k, n) for n, k in shapes]


def routed_to_onednn(y: torch.Tensor) -> bool:
    return y.grad_fn is not None and "OneDNN" in type(y.grad_fn).__name__


@needs_onednn
def test_without_onednn_the_same_tokens_and_logprobs(tiny, monkeypatch):
    options = {"max_new_tokens": 16, "pad_token_id": 0, "stop_token_ids": (), "greedy": True,
               "engine": "fast"}

    def run():
        out = generate(tiny, PROMPTS, **options)
        with torch.no_grad():
            logp, entropy = response_logprobs(tiny, *out.sequences(), out.response_ids, with_entropy=True)
        return out, logp, entropy

    fast, fast_logp, fast_entropy = run()
    assert _Linear([tiny.lm_head], 3).packed is not None
    monkeypatch.setattr(onednn, "onednn_support", lambda: OneDNNSupport(linear=False, bf16=False))
    assert _Linear([tiny.lm_head], 3).packed is None and type(onednn_linears(tiny)).__name__ == "nullcontext"
    plain, plain_logp, plain_entropy = run()
    assert torch.equal(plain.response_ids, fast.response_ids)
    torch.testing.assert_close(plain.logprobs, fast.logprobs, atol=1e-5, rtol=0)
    torch.testing.assert_close(plain_logp, fast_logp, atol=1e-5, rtol=0)
    torch.testing.assert_close(plain_entropy, fast_entropy, atol=1e-5, rtol=0)


@needs_onednn
def test_the_probe_runs_once(tiny, fresh_probe, monkeypatch):
    tried = []
    ops_work = onednn._ops_work
    monkeypatch.setattr(onednn, "_ops_work", lambda dtype: tried.append(dtype) or ops_work(dtype))
    for _ in range(3):
        assert fresh_probe().linear
        _Linear(linears((3, 8)), 2)
        onednn_linears(tiny)
    assert tried == [torch.float32, torch.bfloat16]
    assert fresh_probe.cache_info().misses == 1


def wrong_result(x, weight, bias, *_):
    return torch.zeros(x.shape[0], weight.shape[0], dtype=x.dtype)


def raise_(error: type[Exception]):
    def op(*_):
        raise error("not in this build")
    return op


@pytest.mark.parametrize(("op", "replacement"), [
    ("_linear_pointwise", raise_(RuntimeError)), ("_reorder_linear_weight", raise_(AttributeError)),
    ("_reorder_linear_weight", raise_(NotImplementedError)), ("_linear_pointwise", wrong_result)])
def test_broken_ops_mean_plain_linears(fresh_probe, monkeypatch, op, replacement):
    monkeypatch.setattr(torch.ops.mkldnn, op, replacement)
    assert fresh_probe() == OneDNNSupport(linear=False, bf16=False)
    qkv = linears((3, 8), (2, 8))
    x = torch.randn(4, 8, requires_grad=True)
    fused = _Linear(qkv, 4)
    assert fused.packed is None
    torch.testing.assert_close(fused(x), torch.cat([m(x) for m in qkv], dim=-1), atol=0, rtol=0)
    with onednn_linears(qkv[0]):
        y = F.linear(x, qkv[0].weight, qkv[0].bias)
    assert not routed_to_onednn(y)


@needs_onednn
def test_bfloat16_inputs_under_autocast_take_the_plain_route():
    gate_up, x = linears((8, 16), (8, 16)), torch.randn(3, 16)
    fused = _Linear(gate_up, 3)
    assert fused.packed is not None  # float32 weights, packed for oneDNN
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = torch.cat([m(x) for m in gate_up], dim=-1)
        for inputs in (x, x.bfloat16()):  # oneDNN: "could not create a primitive descriptor" for bf16 · fp32
            y = fused(inputs)
            assert y.dtype == torch.bfloat16 and torch.equal(y, expected)
        with onednn_linears(gate_up[0]):
            y = F.linear(x, gate_up[0].weight, gate_up[0].bias)
        assert not routed_to_onednn(y) and torch.equal(y, expected[:, :8])


@needs_onednn
def test_the_fast_engine_runs_under_bfloat16_autocast(tiny):
    options = {"max_new_tokens": 8, "pad_token_id": 0, "stop_token_ids": (), "greedy": True}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = generate(tiny, PROMPTS, engine="fast", **options)
        plain = generate(tiny, PROMPTS, engine="model", **options)
    assert fast.response_ids.shape == (3, 8) and torch.equal(fast.response_ids, plain.response_ids)

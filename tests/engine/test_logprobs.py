"""Response log-probs against a plain full forward; chunking; oneDNN linears with gradients.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/engine/test_logprobs.py -q
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from logicrl.engine import head_softmax, logprobs
from logicrl.engine.compat import enable_activation_checkpointing
from logicrl.engine.logprobs import fused_head_logprobs, prompt_states, response_logprobs
from logicrl.engine.onednn import onednn_linears
from logicrl.engine.sequences import MIN_SHARED_PREFIX, left_pad, positions_from_mask, shared_prefix_length
from logicrl.models import build_tiny_model

PROMPTS = [[5, 9, 13, 200, 41], [7, 8], [300, 301, 302, 303]]
RESPONSES = [[11, 12, 13, 14], [21, 22, 2], [31]]  # right-padded to 4


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model()[0]


def batch(pad: int = 0):
    prompt_ids, prompt_mask = left_pad(PROMPTS, pad)
    response_ids = torch.tensor([r + [pad] * (4 - len(r)) for r in RESPONSES])
    response_mask = torch.tensor([[1] * len(r) + [0] * (4 - len(r)) for r in RESPONSES])
    ids = torch.cat([prompt_ids, response_ids], 1)
    mask = torch.cat([prompt_mask, response_mask], 1)
    return ids, mask, positions_from_mask(mask), response_ids, response_mask.bool()


def reference(model, ids, mask, positions, response_ids, temperature=1.0):
    """Full forward over every position, log_softmax, then the response tokens picked one by one."""
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits.double() / temperature
    logp = torch.log_softmax(logits, -1)
    P, T = ids.shape[1] - response_ids.shape[1], response_ids.shape[1]
    return torch.stack([logp[:, P + t - 1].gather(-1, response_ids[:, t:t + 1])[:, 0] for t in range(T)], 1)


@pytest.mark.parametrize("onednn", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logprobs_match_a_full_forward(tiny, onednn, temperature):
    ids, mask, positions, response_ids, valid = batch()
    with torch.no_grad():
        logp, ent = response_logprobs(tiny, ids, mask, positions, response_ids, temperature=temperature,
                                      with_entropy=True, onednn=onednn)
        expected = reference(tiny, ids, mask, positions, response_ids, temperature)
    torch.testing.assert_close(logp[valid].double(), expected[valid], atol=1e-5, rtol=0)
    assert ent.shape == logp.shape and (ent[valid] > 0).all()


def test_entropy_is_that_of_the_tempered_distribution(tiny):
    ids, mask, positions, response_ids, valid = batch()
    with torch.no_grad():
        _, ent = response_logprobs(tiny, ids, mask, positions, response_ids, temperature=0.5, with_entropy=True)
        logits = tiny(input_ids=ids, attention_mask=mask, position_ids=positions).logits.double() / 0.5
    p = torch.softmax(logits[:, ids.shape[1] - 5:-1], -1)
    torch.testing.assert_close(ent[valid].double(), -(p * p.log()).sum(-1)[valid], atol=1e-5, rtol=0)


class FixedLogits(torch.nn.Module):
    """A stand-in model whose every position has the same logits (a parameter, so gradients can flow)."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor(logits))

    def forward(self, input_ids, logits_to_keep, **_):
        return SimpleNamespace(logits=self.logits.expand(input_ids.shape[0], logits_to_keep, -1))


@pytest.mark.parametrize("entropy_grad", [True, False])
def test_entropy_is_finite_for_a_minus_inf_logit(entropy_grad):
    # p = softmax([0, ln 3, −inf]) = [1/4, 3/4, 0]: H = −(¼·ln ¼ + ¾·ln ¾) = ln 4 − ¾·ln 3 (the −inf adds 0)
    model = FixedLogits([0.0, math.log(3.0), -math.inf])
    ids, mask, positions, response_ids, valid = batch()
    logp, ent = response_logprobs(model, ids, mask, positions, response_ids.clamp(max=1), with_entropy=True,
                                  onednn=False, entropy_grad=entropy_grad)
    assert ent[valid].tolist() == pytest.approx([math.log(4) - 0.75 * math.log(3)] * int(valid.sum()))
    assert torch.isfinite(logp).all()
    if entropy_grad:
        ent[valid].sum().backward()
        assert torch.isfinite(model.logits.grad).all()


def test_chunked_rows_give_the_same_values(tiny):
    ids, mask, positions, response_ids, _ = batch()
    with torch.no_grad():
        whole, _ = response_logprobs(tiny, ids, mask, positions, response_ids)
        chunked, _ = response_logprobs(tiny, ids, mask, positions, response_ids, batch_size=2)
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=0)


def test_onednn_gradients_match_the_default_ones(tiny):
    ids, mask, positions, response_ids, valid = batch()
    grads = []
    for onednn in (False, True):
        tiny.zero_grad()
        logp, _ = response_logprobs(tiny, ids, mask, positions, response_ids, onednn=onednn, batch_size=2)
        (logp * valid).sum().backward()
        grads.append({name: p.grad.clone() for name, p in tiny.named_parameters()})
    tiny.zero_grad()
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        assert grad.abs().sum() > 0, name  # every weight gets a gradient
        torch.testing.assert_close(grads[1][name], grad, atol=1e-5 * float(grad.abs().max()), rtol=1e-4)


def test_onednn_linears_only_on_cpu_float32(tiny):
    bf16 = build_tiny_model()[0].to(torch.bfloat16)
    assert type(onednn_linears(bf16)).__name__ == "nullcontext"
    x = torch.randn(2, 3, 64, requires_grad=True)
    weight, bias = torch.randn(5, 64, requires_grad=True), torch.randn(5, requires_grad=True)
    with onednn_linears(tiny):
        y = torch.nn.functional.linear(x, weight, bias)
    assert y.grad_fn is not None and "OneDNN" in type(y.grad_fn).__name__
    torch.testing.assert_close(y, x @ weight.T + bias)
    y.sum().backward()
    torch.testing.assert_close(bias.grad, torch.full((5,), 6.0))
    torch.testing.assert_close(x.grad, weight.sum(0).expand(2, 3, 64))
    torch.testing.assert_close(weight.grad, x.sum((0, 1)).expand(5, 64).detach())


def grouped_batch():
    """Two prompts with 3 samples each and a lone prompt, rows interleaved, responses of 1..4 tokens."""
    prompts = [PROMPTS[0], PROMPTS[1], PROMPTS[0], PROMPTS[2], PROMPTS[1], PROMPTS[0], PROMPTS[1]]
    responses = [[11, 12, 13, 14], [21], [15, 16], [31, 32, 33], [22, 23, 24, 25], [17, 2], [26, 27, 28]]
    prompt_ids, prompt_mask = left_pad(prompts, 0)
    response_ids = torch.tensor([r + [0] * (4 - len(r)) for r in responses])
    response_mask = torch.tensor([[1] * len(r) + [0] * (4 - len(r)) for r in responses])
    ids, mask = torch.cat([prompt_ids, response_ids], 1), torch.cat([prompt_mask, response_mask], 1)
    return ids, mask, positions_from_mask(mask), response_ids, response_mask.bool()


@pytest.mark.parametrize("onednn", [False, True])
def test_shared_prompts_give_the_full_forward_values(tiny, onednn):
    ids, mask, positions, response_ids, valid = grouped_batch()
    with torch.no_grad():
        logp, ent = response_logprobs(tiny, ids, mask, positions, response_ids, with_entropy=True, onednn=onednn,
                                      temperature=0.7)
        plain, plain_ent = response_logprobs(tiny, ids, mask, positions, response_ids, with_entropy=True,
                                             onednn=onednn, temperature=0.7, share_prompts=False)
        expected = reference(tiny, ids, mask, positions, response_ids, 0.7)
    torch.testing.assert_close(logp[valid].double(), expected[valid], atol=1e-5, rtol=0)
    torch.testing.assert_close(ent[valid], plain_ent[valid], atol=1e-5, rtol=0)
    torch.testing.assert_close(plain[valid].double(), expected[valid], atol=1e-5, rtol=0)


def test_shared_prompts_give_the_full_forward_gradients(tiny):
    ids, mask, positions, response_ids, valid = grouped_batch()
    grads = []
    for share in (False, True):
        tiny.zero_grad()
        logp, _ = response_logprobs(tiny, ids, mask, positions, response_ids, share_prompts=share)
        (logp * valid * torch.linspace(-1, 2, logp.shape[1])).sum().backward()
        grads.append({name: p.grad.clone() for name, p in tiny.named_parameters()})
    tiny.zero_grad()
    for name, grad in grads[0].items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(grads[1][name], grad, atol=1e-5 * float(grad.abs().max()), rtol=1e-4)


def test_shared_prompts_run_each_prompt_once(tiny):
    ids, mask, positions, response_ids, _ = grouped_batch()
    seen = []
    hook = tiny.get_input_embeddings().register_forward_hook(lambda _m, args, _out: seen.append(args[0].numel()))
    try:
        with torch.no_grad():
            response_logprobs(tiny, ids, mask, positions, response_ids)
    finally:
        hook.remove()
    width = ids.shape[1] - response_ids.shape[1]
    assert seen == [3 * width, len(ids) * (response_ids.shape[1] - 1)]  # 3 distinct prompts, then the responses


def test_a_one_token_response_batch_is_shared_too(tiny):
    ids, mask, positions, response_ids, _ = grouped_batch()
    ids, mask, positions, response_ids = ids[:, :-3], mask[:, :-3], positions[:, :-3], response_ids[:, :1]
    with torch.no_grad():
        logp, _ = response_logprobs(tiny, ids, mask, positions, response_ids)
        expected = reference(tiny, ids, mask, positions, response_ids)
    torch.testing.assert_close(logp.double(), expected, atol=1e-5, rtol=0)


# --- each prompt once per batch, across micro-batches ------------------------------------------------------


MICRO_BATCHES = ([0, 3, 5], [1, 4], [2, 6])  # prompts 0 2 0 | 1 1 | 0 1 of grouped_batch()'s three


def micro_batched(model, inputs, states, **kwargs):
    """`logp_and_grads` over MICRO_BATCHES, each micro-batch's backward on its own, reading the batch's prompt
    ``states`` (then their backward) or running its own prompts (states None)."""
    ids, mask, positions, response_ids, valid = inputs
    weights = torch.linspace(-1, 2, response_ids.shape[1])
    logp = torch.zeros(response_ids.shape)
    ent = torch.zeros(response_ids.shape)
    seen = []
    hook = model.get_input_embeddings().register_forward_hook(lambda _m, args, _out: seen.append(args[0].numel()))
    try:
        model.zero_grad()
        if states is not None:
            states = prompt_states(model, ids[:, :-4], mask[:, :-4], **states)
        for rows in map(torch.tensor, MICRO_BATCHES):
            micro_logp, micro_ent = response_logprobs(
                model, ids[rows], mask[rows], positions[rows], response_ids[rows], with_entropy=True, temperature=0.7,
                prompt=None if states is None else states.rows(rows), **kwargs)
            ((micro_logp + 0.1 * micro_ent) * valid[rows] * weights).sum().backward()
            logp[rows], ent[rows] = micro_logp.detach(), micro_ent.detach()
        if states is not None:
            states.backward()
    finally:
        hook.remove()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return (logp * valid, ent * valid, grads), sum(seen)


@pytest.mark.parametrize("chunk", [None, 2])
def test_prompts_once_per_batch_give_the_full_forward_values_and_gradients(tiny, chunk):
    """Three micro-batches that each hold rows of several prompts, reading prompt states made once for the batch:
    the values and gradients of one forward over every row (`logp_and_grads`), and of micro-batches that run
    their own prompts; with the fused head (chunk 2) the states are hidden states."""
    inputs = grouped_batch()
    whole = logp_and_grads(tiny, inputs, logprob_chunk=chunk)
    once, tokens_once = micro_batched(tiny, inputs, {"hidden": chunk is not None}, logprob_chunk=chunk)
    each, tokens_each = micro_batched(tiny, inputs, None, logprob_chunk=chunk)
    assert_same(whole, once)
    assert_same(whole, each)
    width, responses = inputs[0].shape[1] - 4, len(inputs[0]) * 3
    assert tokens_once == 3 * width + responses  # 3 distinct prompts once, then every row's response
    # each micro-batch's own: 2 and 1 distinct prompts + their rows' responses; [2, 6] repeats none: rows whole
    assert tokens_each == (2 + 1) * width + 5 * 3 + 2 * (width + 4)


def test_prompt_states_are_none_when_no_prompt_repeats(tiny):
    ids, mask, *_ = batch()
    assert prompt_states(tiny, ids[:, :-4], mask[:, :-4]) is None
    grouped, grouped_mask, *_ = grouped_batch()
    states = prompt_states(tiny, grouped[:, :-4], grouped_mask[:, :-4])
    groups = [0, 1, 0, 2, 1, 0, 1]  # grouped_batch()'s rows: the same prompt ↔ the same index
    assert len(set(zip(groups, states.row_prompt.tolist()))) == 3 and states.first.shape[0] == 3
    assert len(states.graph) == 1 + 2 * len(states.kv)  # made with grad on: leaves cut from the prompt forward
    assert all(k.requires_grad and k.is_leaf for k, _ in states.kv) and states.first.is_leaf
    with torch.no_grad():
        plain = prompt_states(tiny, grouped[:, :-4], grouped_mask[:, :-4])
    assert not plain.graph and not plain.first.requires_grad


# --- chunked log-probs and gradient checkpointing ------------------------------------------------------------


def logp_and_grads(model, inputs, **kwargs):
    """(logp, entropy, {name: grad}) of a loss that weighs every position differently, entropy included."""
    ids, mask, positions, response_ids, valid = inputs
    model.zero_grad()
    logp, ent = response_logprobs(model, ids, mask, positions, response_ids, with_entropy=True, temperature=0.7,
                                  **kwargs)
    ((logp + 0.1 * ent) * valid * torch.linspace(-1, 2, logp.shape[1])).sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return logp.detach() * valid, ent.detach() * valid, grads


def assert_same(a, b, atol=1e-5):
    torch.testing.assert_close(a[0], b[0], atol=atol, rtol=0)
    torch.testing.assert_close(a[1], b[1], atol=atol, rtol=0)
    assert a[2].keys() == b[2].keys() and a[2]
    for name, grad in a[2].items():
        torch.testing.assert_close(b[2][name], grad, atol=atol * max(1.0, float(grad.abs().max())), rtol=1e-4)


@pytest.mark.parametrize("share", [False, True])
def test_chunked_logprobs_give_the_same_values_and_gradients(tiny, share):
    inputs = grouped_batch()
    whole = logp_and_grads(tiny, inputs, share_prompts=share, onednn=False)
    for chunk in (1, 3):
        assert_same(whole, logp_and_grads(tiny, inputs, share_prompts=share, onednn=False, logprob_chunk=chunk))
    with torch.no_grad():
        logp, _ = response_logprobs(tiny, *inputs[:4], temperature=0.7, logprob_chunk=3)
    torch.testing.assert_close(logp * inputs[4], whole[0], atol=1e-5, rtol=0)


def test_fused_head_under_bf16_autocast_matches_the_unfused_path(tiny):
    """The trainer's CPU bf16 mode: the fused head's matmuls run in the forward's autocast dtype both ways, as the
    unfused path's do, so values and gradients agree to bf16 rounding (its backward has no autocast context)."""
    inputs = grouped_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        whole = logp_and_grads(tiny, inputs, onednn=False)
        fused = logp_and_grads(tiny, inputs, onednn=False, logprob_chunk=3)
    torch.testing.assert_close(fused[0], whole[0], atol=2e-2, rtol=0)
    torch.testing.assert_close(fused[1], whole[1], atol=2e-2, rtol=0)
    for name, grad in whole[2].items():
        scale = float(grad.abs().max())
        assert float((fused[2][name] - grad).abs().max()) <= 0.05 * scale, name


def test_fused_head_of_a_float16_model_without_autocast_matches_the_unfused_path():
    """model.dtype=float16 on CPU (no float16 autocast there, e.g. a LoRA run's frozen base): the backward's
    matmuls take the head's own dtype, as the unfused path's do; they met a float32 gradient and raised."""
    inputs = grouped_batch()
    half = build_tiny_model()[0].half()  # a model of its own: the fixture is shared
    whole = logp_and_grads(half, inputs, onednn=False)
    fused = logp_and_grads(half, inputs, onednn=False, logprob_chunk=3)
    torch.testing.assert_close(fused[0], whole[0], atol=2e-2, rtol=0)
    for name, grad in whole[2].items():
        assert fused[2][name].dtype == grad.dtype == torch.float16, name
        assert float((fused[2][name] - grad).abs().max()) <= 0.05 * float(grad.abs().max()), name


def test_chunked_logprobs_bound_the_full_vocabulary_tensors():
    """Peak live bytes of forward + backward: the logits' copies span one chunk instead of the whole response."""
    from live_bytes import LiveBytes
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                                         num_key_value_heads=2, intermediate_size=128, vocab_size=8192,
                                         tie_word_embeddings=True, pad_token_id=0))
    rows, P, T = 4, 16, 128
    ids = torch.randint(1, 8192, (rows, P + T), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    peaks = {}
    for chunk in (None, 16):
        tracker = LiveBytes()
        for tensor in (*model.parameters(), ids, mask):
            tracker.add(tensor)
        with tracker:
            logp, ent = response_logprobs(model, ids, mask, positions_from_mask(mask), ids[:, P:], with_entropy=True,
                                          onednn=False, logprob_chunk=chunk)
            (logp.sum() + ent.sum()).backward()
        model.zero_grad(set_to_none=True)
        peaks[chunk] = tracker.peak
    logits = rows * T * 8192 * 4  # one fp32 copy of the response's logits: 16.8 MB
    print(f"peak live bytes, forward + backward: unchunked {peaks[None] / 1e6:.1f} MB, "
          f"chunks of 16 {peaks[16] / 1e6:.1f} MB (one logits copy {logits / 1e6:.1f} MB)")
    assert peaks[None] > 4 * logits and peaks[16] < peaks[None] - 3 * logits


def test_gradient_checkpointing_gives_the_same_values_and_gradients():
    model = build_tiny_model()[0].train()
    inputs = grouped_batch()
    for kwargs in ({}, {"logprob_chunk": 2}):
        plain = logp_and_grads(model, inputs, **kwargs)
        enable_activation_checkpointing(model)
        try:  # on the default oneDNN route, which used to raise CheckpointError in backward
            assert_same(plain, logp_and_grads(model, inputs, **kwargs))
        finally:
            (getattr(model, "activation_checkpointing_disable", None) or model.gradient_checkpointing_disable)()


def test_under_gradient_checkpointing_the_prompts_run_once():
    """Checkpointing turns the cache off: each row then runs whole once, without a prompt forward whose cache is
    dropped (the tokens the embedding sees count the forwards)."""
    model = build_tiny_model()[0]
    enable_activation_checkpointing(model)
    seen = []
    model.get_input_embeddings().register_forward_hook(lambda module, args, out: seen.append(args[0].numel()))
    ids, mask, positions, response_ids, valid = grouped_batch()
    logp, _ = response_logprobs(model.train(), ids, mask, positions, response_ids)
    (logp * valid).sum().backward()
    assert sum(seen) == ids.numel()
    seen.clear()
    with torch.no_grad():  # eval: the shared-prompt path, 3 distinct prompts once + the rows' responses
        response_logprobs(model.eval(), ids, mask, positions, response_ids)
    width = ids.shape[1] - response_ids.shape[1]
    assert sum(seen) == 3 * width + len(ids) * (response_ids.shape[1] - 1)


# --- a prefix shared by every prompt runs once ---------------------------------------------------------------


TEMPLATE = list(range(100, 120))  # 20 tokens every prompt starts with, as a chat template and instruction do


def prefixed_batch(tails=([5, 9, 13], [7], [300, 301, 302, 303, 304], [5, 9]), grouped=False):
    """Distinct prompts TEMPLATE + tail (lengths 21–25, so left padding differs), one response each (or the
    `grouped_batch` layout of three of them)."""
    prompts = [TEMPLATE + list(tail) for tail in tails]
    if grouped:
        prompts = [prompts[i] for i in (0, 1, 0, 2, 1, 0, 1)]
    responses = [[11, 12, 13, 14], [21], [15, 16], [31, 32, 33], [22, 23, 24, 25], [17, 2], [26, 27, 28]]
    responses = responses[:len(prompts)]
    prompt_ids, prompt_mask = left_pad(prompts, 0)
    response_ids = torch.tensor([r + [0] * (4 - len(r)) for r in responses])
    response_mask = torch.tensor([[1] * len(r) + [0] * (4 - len(r)) for r in responses])
    ids, mask = torch.cat([prompt_ids, response_ids], 1), torch.cat([prompt_mask, response_mask], 1)
    return ids, mask, positions_from_mask(mask), response_ids, response_mask.bool()


def test_shared_prefix_length():
    ids, mask = left_pad([TEMPLATE + [1, 2], TEMPLATE + [1, 3, 4], TEMPLATE + [7]], 0)
    assert shared_prefix_length(ids, mask) == 20  # where the tails part
    ids, mask = left_pad([TEMPLATE + [1, 2], TEMPLATE + [1, 2, 4]], 0)
    assert shared_prefix_length(ids, mask) == 21  # capped at the shortest − 1: its last token stays its own
    ids, mask = left_pad([TEMPLATE[:14] + [1, 2], TEMPLATE[:14] + [1, 3]], 0)
    assert shared_prefix_length(ids, mask) == 0  # 15 shared tokens: under MIN_SHARED_PREFIX
    ids, mask = left_pad([TEMPLATE[:15] + [1, 2], TEMPLATE[:15] + [1, 3]], 0)
    assert shared_prefix_length(ids, mask) == MIN_SHARED_PREFIX == 16
    assert shared_prefix_length(ids[:1], mask[:1]) == 0  # one prompt: nothing to share
    assert shared_prefix_length(ids.flip(1), mask.flip(1)) == 0  # right padding: not the layout it reads
    assert shared_prefix_length(ids, mask.float()) == MIN_SHARED_PREFIX  # a float mask reads the same


@pytest.mark.parametrize("onednn", [False, True])
@pytest.mark.parametrize("chunk", [None, 2])
def test_a_shared_prefix_gives_the_full_forward_values_and_gradients(tiny, onednn, chunk):
    """Distinct prompts (nothing repeats) that share a 20-token prefix: values and gradients of the plain
    forward, with the prefix run once and every prompt's rest on its cache."""
    inputs = prefixed_batch()
    plain = logp_and_grads(tiny, inputs, share_prompts=False, onednn=onednn, logprob_chunk=chunk)
    shared = logp_and_grads(tiny, inputs, onednn=onednn, logprob_chunk=chunk)
    assert_same(plain, shared)
    with torch.no_grad():
        expected = reference(tiny, *inputs[:4], temperature=0.7)
    torch.testing.assert_close(shared[0].double(), expected * inputs[4], atol=1e-5, rtol=0)


def test_a_shared_prefix_runs_once(tiny):
    ids, mask, positions, response_ids, _ = prefixed_batch()
    seen = []
    hook = tiny.get_input_embeddings().register_forward_hook(lambda _m, args, _out: seen.append(tuple(args[0].shape)))
    try:
        with torch.no_grad():
            response_logprobs(tiny, ids, mask, positions, response_ids)
    finally:
        hook.remove()
    width = ids.shape[1] - 4
    assert seen == [(1, 20), (4, width - 20), (4, 3)]  # the prefix once, each prompt's rest, the responses


def test_prompts_once_with_a_shared_prefix_across_micro_batches(tiny):
    """The trainer's path: states made once for the batch (repeated prompts that share a prefix too), read by
    three micro-batches, each with its own backward: the values and gradients of one forward over every row."""
    inputs = prefixed_batch(grouped=True)
    whole = logp_and_grads(tiny, inputs, share_prompts=False)
    once, tokens = micro_batched(tiny, inputs, {})
    assert_same(whole, once)
    assert tokens == 20 + 3 * (inputs[0].shape[1] - 4 - 20) + len(inputs[0]) * 3


def test_fused_entropy_is_finite_with_a_minus_inf_logit():
    """A vocabulary entry at logit −inf has p = 0 and adds nothing: the entropy is that of the other five."""
    torch.manual_seed(0)
    head = torch.nn.Linear(4, 6)
    with torch.no_grad():
        head.bias[0] = float("-inf")
    hidden = torch.randn(1, 3, 4)
    _, entropy = fused_head_logprobs(head, hidden, torch.tensor([[1, 2, 3]]), torch.ones(1, 3), 2, with_entropy=True)
    with torch.no_grad():
        logp = torch.log_softmax(head(hidden)[..., 1:], -1)  # the finite five
    torch.testing.assert_close(entropy.detach(), -(logp.exp() * logp).sum(-1), atol=1e-5, rtol=0)


class NewStorages(TorchDispatchMode):
    """The sizes of the storages ops create while the mode is on: outputs whose storage is none of the op's inputs'
    (not views, in-place results or ``out=`` buffers)."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        def storages(tree) -> dict[int, int]:
            return {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
                    for t in tree_leaves(tree) if isinstance(t, torch.Tensor)}

        inputs = storages((args, kwargs))
        out = func(*args, **(kwargs or {}))
        self.sizes += [size for pointer, size in storages(out).items() if pointer not in inputs]
        return out


@pytest.mark.skipif(not head_softmax.head_softmax_works(), reason="the head's compiled softmax is not built here")
def test_the_fused_head_makes_its_chunk_sized_tensors_once_a_pass():
    """Three chunks, forward and backward: one logits buffer for the forward; the backward's logits and their
    gradient, the product ∂W's chunks go through and ∂W itself, once each (a fresh [chunk, V] or [V, h] tensor per
    chunk costs its memory's first touch every time: 658 → 454 ms for 1,500 tokens on the 2-core VM)."""
    generator = torch.Generator().manual_seed(0)
    vocabulary, width, chunk = 4096, 8, 5
    head = torch.nn.Linear(width, vocabulary, bias=False)
    hidden = torch.randn((1, 13, width), generator=generator, requires_grad=True)
    tokens = torch.randint(0, vocabulary, (1, 13), generator=generator)
    with NewStorages() as made:
        logp, _ = fused_head_logprobs(head, hidden, tokens, torch.ones(1, 13), chunk)
        logp.sum().backward()
    large = [size for size in made.sizes if size >= 3 * vocabulary * 4]  # a partial chunk's logits and up
    assert sorted(large) == [chunk * vocabulary * 4] * 3 + [vocabulary * width * 4] * 2


def test_the_weight_gradient_is_widened_a_block_at_a_time(monkeypatch):
    """``total += part`` for a bfloat16 part, a few rows at a time (PyTorch widens the operand into a temporary of
    the total's size): the same sums as one widening add, over blocks that do not divide the rows."""
    generator = torch.Generator().manual_seed(0)
    total = torch.randn((37, 5), generator=generator)
    part = torch.randn((37, 5), generator=generator).to(torch.bfloat16)
    want = total + part.float()
    monkeypatch.setattr(logprobs, "WIDEN_ELEMENTS", 4 * 5)
    blocks = []
    monkeypatch.setattr(torch.Tensor, "__iadd__", lambda self, other: blocks.append(len(other)) or self.add_(other))
    logprobs._widening_add(total, part)
    assert torch.equal(total, want)
    assert blocks == [4] * 9 + [1]

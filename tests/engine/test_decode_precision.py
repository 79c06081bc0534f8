"""Generation in low precision and stop checks every k tokens: weights cast once per call (counted), the KV
cache in the generation dtype, agreement with ``model.generate`` in bfloat16, and the same `Generation`
whatever the stop-check interval.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/engine/test_decode_precision.py -q
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from logicrl.engine import attention, decode
from logicrl.engine.decode import generate
from logicrl.engine.logprobs import response_logprobs
from logicrl.engine.sequences import left_pad
from logicrl.models import build_tiny_model

BF16 = torch.bfloat16
TEXTS = (  # as in test_generation.py: greedy continuations of the tiny model that do not repeat one token
    "A very special island is inhabited only by knights and knaves.",
    "You meet 3 inhabitants: Zoey, Oliver, and Ethan. Zoey said that Oliver is a knave.",
    "So who is a knight",
)


def hf_greedy(model, tokenizer, prompts, max_new_tokens):
    """``model.generate``'s greedy continuations without stops, [B, max_new_tokens]."""
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                         min_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
    return out[:, ids.shape[1]:]


def ours(model, tokenizer, prompts, **kwargs):
    options = {"max_new_tokens": 24, "pad_token_id": tokenizer.pad_token_id, "stop_token_ids": (),
               "tokenizer": tokenizer} | kwargs
    return generate(model, prompts, **options)


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = build_tiny_model()
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    return model, tokenizer, prompts


@pytest.fixture(scope="module")
def peaked():
    model, tokenizer = peaked_tiny_model()
    return model, tokenizer, [tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]


class WeightCasts(TorchDispatchMode):
    """Counts ``aten._to_copy`` (what ``.to(dtype)`` and autocast run) on tensors shaped like a 2-D weight."""

    def __init__(self, model) -> None:
        super().__init__()
        self.shapes, self.count = {tuple(p.shape) for p in model.parameters() if p.dim() == 2}, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._to_copy.default and tuple(args[0].shape) in self.shapes:
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_a_decode_step_casts_no_weight_under_autocast(tiny):
    """The issue's case: a float32 model under bfloat16 autocast. Before, every decode step cast each of the
    15 weights of the tiny model again (autocast does not cache casts of detached weights); now the engine
    copies them once and a step casts none."""
    model, _, _ = tiny
    weights = sum(p.dim() == 2 for p in model.parameters())
    with torch.no_grad(), torch.autocast("cpu", dtype=BF16):
        with WeightCasts(model) as built:
            engine = decode._LlamaEngine(model, 1, 8, BF16)
        engine.prefill(torch.tensor([[5, 6, 7, 8]]), torch.ones(1, 4, dtype=torch.long), 1)
        with WeightCasts(model) as stepped:
            engine.step(torch.tensor([9]), torch.tensor([4]))
    assert built.count == weights and stepped.count == 0


def test_generate_casts_each_weight_once_whatever_the_length(tiny):
    model, tokenizer, prompts = tiny
    counts = []
    for max_new_tokens in (4, 16):
        with torch.autocast("cpu", dtype=BF16), WeightCasts(model) as casts:
            ours(model, tokenizer, prompts, greedy=True, max_new_tokens=max_new_tokens, engine="fast")
        counts.append(casts.count)
    assert counts == [sum(p.dim() == 2 for p in model.parameters())] * 2


def test_kv_cache_and_logits_dtypes(tiny):
    model, tokenizer, prompts = tiny
    engine = decode._LlamaEngine(model, 1, 8, BF16)
    with torch.no_grad():
        logits = engine.prefill(torch.tensor([[5, 6, 7, 8]]), torch.ones(1, 4, dtype=torch.long), 1)
        engine.step(torch.tensor([9]), torch.tensor([4]))
    # on a CPU the caches are bf16 when the flash kernel works in bf16, else float32 (the attention then runs in
    # float32: batched matmuls were slower in bf16 there, logicrl.engine.attention)
    cache = BF16 if attention.cpu_flash_works(BF16) else torch.float32
    assert engine.own_kv.dtype == cache and {t.dtype for kv in engine.common_kv for t in kv} == {cache}
    assert {layer.qkv.parts[0][0].dtype for layer in engine.layers} == {BF16}  # the projections run in bf16
    assert logits.dtype == BF16  # upcast to float32 by the sampler
    out = ours(model, tokenizer, prompts, n=2, seed=0, dtype=BF16, max_new_tokens=6)
    assert out.logprobs.dtype == torch.float32  # sampled from float32 logits


def test_autocast_dtype_is_the_default(tiny):
    """Called under autocast without ``dtype``, generation runs in the autocast dtype (the engine's own
    copy, autocast off inside), exactly as with ``dtype=`` given outside autocast."""
    model, tokenizer, prompts = tiny
    explicit = ours(model, tokenizer, prompts, n=2, seed=4, dtype=BF16)
    with torch.autocast("cpu", dtype=BF16):
        implied = ours(model, tokenizer, prompts, n=2, seed=4)
    assert torch.equal(explicit.response_ids, implied.response_ids)
    assert torch.equal(explicit.logprobs, implied.logprobs)


def peaked_tiny_model():
    """The tiny model with its 2-D weights redrawn at std 0.2 (seed 0): its greedy continuations vary (the
    default tiny model repeats one token, which agrees trivially) and its top-2 logit gaps are ≈ 0.3."""
    model, tokenizer = build_tiny_model()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
    return model, tokenizer


def test_bfloat16_greedy_agrees_with_model_generate_in_bfloat16():
    """A float32 model generating with ``dtype=bfloat16`` against ``model.generate`` on a bfloat16 copy, 3
    rows × 48 greedy tokens. The copy keeps the rotary ``inv_freq`` in float32 as ``from_pretrained(dtype=
    bfloat16)`` does (``.to(bfloat16)`` rounds it, which shifts every logit by up to 0.03 here).

    Tolerance: the first-token logits within 0.0625 (measured: equal), ≥ 60 % of the tokens equal
    (measured: 93.8 % with bfloat16 caches and the flash-kernel attention; 72.9 % with float32 caches and
    batched matmuls, the fallback), and where a
    row first differs the reference's top-2 logits lie within 0.25 (a near-tie that bfloat16 rounding may
    flip; measured: 0.031 and 0.0625). On random weights greedy rows in bfloat16 part at near-ties: HF's own
    forward under autocast agrees with the copy on 54 % only."""
    model, tokenizer = peaked_tiny_model()
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    reference_model = copy.deepcopy(model).to(BF16)
    reference_model.model.rotary_emb.inv_freq = model.model.rotary_emb.inv_freq.clone()
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    reference = reference_model.generate(
        input_ids=ids, attention_mask=mask, max_new_tokens=48, min_new_tokens=48, do_sample=False,
        pad_token_id=tokenizer.pad_token_id, output_logits=True, return_dict_in_generate=True)
    tokens = reference.sequences[:, ids.shape[1]:]
    logits = torch.stack(reference.logits, 1).float()  # [B, T, V]
    with torch.no_grad():
        first = decode._LlamaEngine(model, 3, 1, BF16).prefill(ids, mask, 1).float()
    assert (first - logits[:, 0]).abs().max() <= 0.0625
    out = ours(model, tokenizer, prompts, greedy=True, engine="fast", dtype=BF16, max_new_tokens=48)
    same = out.response_ids == tokens
    assert same.float().mean() >= 0.6, same.float().mean()
    top2 = logits.topk(2, dim=-1).values
    for row in (~same).any(-1).nonzero()[:, 0].tolist():
        step = int((~same[row]).nonzero()[0])
        assert top2[row, step, 0] - top2[row, step, 1] <= 0.25, (row, step)


def test_fp32_generation_is_unchanged_by_the_dtype_argument(tiny):
    model, tokenizer, prompts = tiny
    default = ours(model, tokenizer, prompts, n=2, seed=5, temperature=0.7, top_p=0.9)
    explicit = ours(model, tokenizer, prompts, n=2, seed=5, temperature=0.7, top_p=0.9, dtype=torch.float32)
    assert torch.equal(default.response_ids, explicit.response_ids)
    assert torch.equal(default.logprobs, explicit.logprobs)


def late_tokens(responses, count):
    """``count`` token ids that first appear (in any row) between the 4th and the 20th column."""
    first = {}
    for row in responses.tolist():
        for column, token in enumerate(row):
            first[token] = min(first.get(token, column), column)
    by_column = sorted(first.items(), key=lambda kv: kv[1])
    return [token for token, column in by_column if 3 <= column < 20][:count]


def assert_same_generation(a, b):
    for field in ("prompt_ids", "prompt_mask", "response_ids", "response_mask", "truncated", "logprobs"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field


@pytest.mark.parametrize("engine", ["fast", "model"])
@pytest.mark.parametrize("dtype", [torch.float32, BF16])
def test_stop_checks_every_k_tokens_give_the_same_generation(peaked, engine, dtype):
    """k = 1 (a check, i.e. a host sync, every token) against k = 3 and 8: rows that stop inside a block,
    rows that leave the batch later, stop ids and stop texts; greedy and sampled with a seed."""
    model, tokenizer, prompts = peaked
    run = {"engine": engine, "dtype": dtype}
    cases = [({"greedy": True}, True), ({"n": 3, "seed": 2, "temperature": 0.9, "top_p": 0.95}, True),
             ({"n": 2, "seed": 1}, False)]
    for case, stopping in cases:
        if stopping:  # stop ids and a stop text that end rows at several steps
            free = ours(model, tokenizer, prompts, **run, **case).response_ids
            case |= {"stop_token_ids": late_tokens(free, 2), "stop_texts": [tokenizer.decode(free[-1, 9:11])]}
        every = ours(model, tokenizer, prompts, **run, stop_check_every=1, **case)
        if stopping:  # some rows end inside blocks of 3 and of 8, before a block's last token
            lengths = every.response_lengths[~every.truncated]
            assert len(lengths) >= 2 and (lengths % 3 != 0).any() and (lengths % 8 != 0).any(), lengths
        for k in (3, 8):
            assert_same_generation(every, ours(model, tokenizer, prompts, **run, stop_check_every=k, **case))
    with pytest.raises(ValueError, match="stop_check_every"):
        ours(model, tokenizer, prompts, stop_check_every=0)


def test_bfloat16_sampler_against_float32_scoring(tiny):
    """The sampler's log-probs in bfloat16 are not the float32 trainer's: on the tiny model, 3 prompts × 4
    samples × 64 tokens at t = 1, max |Δ log-prob| ≈ 4.5e-3 (mean ≈ 7e-4), against ≈ 1e-6 for a float32
    sampler (on `peaked_tiny_model`, whose logits are larger: max 0.23, mean 0.03). ``algorithm.tis_cap``
    (truncated importance sampling) corrects the loss for the gap."""
    model, tokenizer, prompts = tiny
    gaps = {}
    for dtype in (torch.float32, BF16):
        out = ours(model, tokenizer, prompts, n=4, seed=0, dtype=dtype, max_new_tokens=64)
        with torch.no_grad():
            logp, _ = response_logprobs(model, *out.sequences(), out.response_ids, onednn=False)
        gaps[dtype] = (out.logprobs - logp)[out.response_mask.bool()].abs().max().item()
    assert gaps[torch.float32] < 1e-4 and 1e-4 < gaps[BF16] < 2e-2, gaps

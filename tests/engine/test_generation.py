"""Generation: the fast engines against ``model.generate`` and against each other, sampling, stops, grouping.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/engine/test_generation.py -q
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from logicrl.engine import decode, sampling
from logicrl.engine.decode import generate
from logicrl.engine.logprobs import response_logprobs
from logicrl.engine.sampling import _Sampler
from logicrl.engine.sequences import left_pad, shared_prefix_length
from logicrl.models import build_tiny_model

TEXTS = (
    "A very special island is inhabited only by knights and knaves.",
    "You meet 3 inhabitants: Zoey, Oliver, and Ethan. Zoey said that Oliver is a knave.",
    "So who is a knight",
)


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = build_tiny_model()
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    return model, tokenizer, prompts


def hf_greedy(model, tokenizer, prompts, max_new_tokens, stop_ids):
    """``model.generate`` greedy continuations, [B, max_new_tokens] (rows stopped early padded with pad)."""
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=list(stop_ids))
    new = out[:, ids.shape[1]:]
    return torch.nn.functional.pad(new, (0, max_new_tokens - new.shape[1]), value=tokenizer.pad_token_id)


def ours(model, tokenizer, prompts, **kwargs):
    options = {"max_new_tokens": 24, "pad_token_id": tokenizer.pad_token_id, "stop_token_ids": (),
               "tokenizer": tokenizer} | kwargs
    return generate(model, prompts, **options)


@pytest.mark.parametrize("engine", ["fast", "model"])
def test_greedy_matches_model_generate(tiny, engine):
    model, tokenizer, prompts = tiny
    eos = [tokenizer.eos_token_id]
    out = ours(model, tokenizer, prompts, greedy=True, engine=engine, stop_token_ids=eos)
    assert torch.equal(out.response_ids, hf_greedy(model, tokenizer, prompts, 24, eos))
    assert out.truncated.all() and out.response_mask.sum() == 3 * 24  # the tiny model never says eos here


@pytest.mark.parametrize("engine", ["fast", "model"])
def test_greedy_with_stop_ids_matches_and_finished_prompts_leave_the_batch(tiny, engine):
    model, tokenizer, prompts = tiny
    free = ours(model, tokenizer, prompts, greedy=True, engine=engine).response_ids
    stop = int(free[1, 5])  # row 1 stops at (or before) its 6th token; rows that never see it must not change
    out = ours(model, tokenizer, prompts, greedy=True, engine=engine, stop_token_ids=[stop])
    expected = hf_greedy(model, tokenizer, prompts, 24, [stop])
    assert torch.equal(out.response_ids, expected[:, :out.response_ids.shape[1]])
    for row, tokens in enumerate(free.tolist()):
        length = tokens.index(stop) + 1 if stop in tokens else 24
        assert int(out.response_lengths[row]) == length and bool(out.truncated[row]) == (stop not in tokens)
    assert int(out.response_lengths[1]) <= 6 and out.response_ids[1, 5 + 1:].eq(tokenizer.pad_token_id).all()


@pytest.mark.parametrize("engine", ["fast", "model"])
def test_a_stopped_row_leaves_the_batch_and_its_siblings_sample_on_unchanged(tiny, engine, monkeypatch):
    """n = 3 samples per prompt: a row that stops leaves the batch at the next multiple of SHRINK_EVERY steps while
    the other rows of its prompt go on, and every row samples what it samples in a run where none stops (its
    seeded draws and its own keys do not depend on the other rows)."""
    model, tokenizer, prompts = tiny
    sampled = {"n": 3, "seed": 3, "temperature": 0.7, "engine": engine}
    free = ours(model, tokenizer, prompts, **sampled).response_ids.tolist()
    stop = free[1][2]  # row 1 (prompt 0's second sample) stops within 3 tokens
    kept = []
    runner = decode._LlamaEngine if engine == "fast" else decode._ModelEngine
    select = runner.select

    def recording(self, rows):
        kept.append(len(rows))
        select(self, rows)

    monkeypatch.setattr(runner, "select", recording)
    out = ours(model, tokenizer, prompts, stop_token_ids=[stop], **sampled)
    lengths = [row.index(stop) + 1 if stop in row else 24 for row in free]
    assert out.response_lengths.tolist() == lengths
    for i, length in enumerate(lengths):
        assert out.response_ids[i, :length].tolist() == free[i][:length], i
    assert lengths[1] <= 3 and (lengths[0] > 8 or lengths[2] > 8)  # a sibling of row 1 decodes past step 8
    assert kept[0] == sum(length > 8 for length in lengths)  # the first shrink keeps the open rows, not prompts


@pytest.mark.parametrize("engine", ["fast", "model"])
def test_on_step_hears_the_tokens_so_far_and_the_rows_still_decoding(tiny, engine):
    model, tokenizer, prompts = tiny
    free = ours(model, tokenizer, prompts, greedy=True, engine=engine).response_ids
    stop = int(free[1, 3])  # row 1 stops within 4 tokens; the others when (if) they meet that token
    heard = []
    out = ours(model, tokenizer, prompts, greedy=True, engine=engine, stop_token_ids=[stop],
               on_step=lambda tokens, rows: heard.append((tokens, rows)))
    lengths, cut = out.response_lengths.tolist(), out.truncated.tolist()
    still = {t: sum(c or n > t for n, c in zip(lengths, cut)) for t in (8, 16)}
    # every SHRINK_EVERY = 8 tokens while some row decodes; none at the cap (24), where the loop ends
    assert heard == [(t, rows) for t, rows in still.items() if rows > 0]
    assert heard[0][1] < 3  # row 1 had stopped


def test_left_padding_gives_each_prompt_its_own_greedy_continuation(tiny):
    model, tokenizer, prompts = tiny
    batch = ours(model, tokenizer, prompts, greedy=True)
    for row, prompt in enumerate(prompts):
        alone = ours(model, tokenizer, [prompt], greedy=True)
        assert torch.equal(batch.response_ids[row], alone.response_ids[0])
        assert batch.prompt_mask[row].sum() == len(prompt) and batch.prompt_ids[row, -len(prompt):].tolist() == prompt


def test_sampling_is_reproducible_and_independent_of_the_other_rows(tiny):
    model, tokenizer, prompts = tiny
    a = ours(model, tokenizer, prompts, n=2, seed=7)
    assert torch.equal(a.response_ids, ours(model, tokenizer, prompts, n=2, seed=7).response_ids)
    assert not torch.equal(a.response_ids, ours(model, tokenizer, prompts, n=2, seed=8).response_ids)
    # rows 4-5 answer prompt 2 in both calls; the rows before them sample other prompts
    b = ours(model, tokenizer, [prompts[2], prompts[2], prompts[2]], n=2, seed=7)
    assert torch.equal(a.response_ids[4:], b.response_ids[4:])


def test_fast_engine_samples_what_the_model_engine_samples(tiny):
    model, tokenizer, prompts = tiny
    fast = ours(model, tokenizer, prompts, n=3, seed=3, temperature=0.7, top_p=0.9, engine="fast")
    plain = ours(model, tokenizer, prompts, n=3, seed=3, temperature=0.7, top_p=0.9, engine="model")
    assert torch.equal(fast.response_ids, plain.response_ids)
    torch.testing.assert_close(fast.logprobs, plain.logprobs, atol=1e-4, rtol=0)


def test_bfloat16_engines_agree():
    model, tokenizer = build_tiny_model()
    model = model.to(torch.bfloat16)
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    fast, plain = (ours(model, tokenizer, prompts, greedy=True, engine=e, max_new_tokens=8) for e in ("fast", "model"))
    assert torch.equal(fast.response_ids, plain.response_ids) and fast.logprobs.dtype == torch.float32


def test_rows_are_grouped_n_per_prompt(tiny):
    model, tokenizer, prompts = tiny
    out = ours(model, tokenizer, prompts, n=3, seed=0)
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    assert torch.equal(out.prompt_ids, ids.repeat_interleave(3, 0)) and torch.equal(out.prompt_mask, mask.repeat_interleave(3, 0))
    greedy = ours(model, tokenizer, prompts, n=3, greedy=True)
    assert torch.equal(greedy.response_ids, ours(model, tokenizer, prompts, greedy=True).response_ids.repeat_interleave(3, 0))


def test_logprobs_are_those_of_a_scoring_forward(tiny):
    model, tokenizer, prompts = tiny
    out = ours(model, tokenizer, prompts, n=2, seed=1, temperature=0.8, stop_token_ids=[tokenizer.eos_token_id])
    with torch.no_grad():
        logp, _ = response_logprobs(model, *out.sequences(), out.response_ids, temperature=0.8, onednn=False)
    valid = out.response_mask.bool()
    torch.testing.assert_close(out.logprobs[valid], logp[valid], atol=1e-4, rtol=0)
    assert out.logprobs[~valid].eq(0).all()


def test_stop_text_ends_the_row_right_after_the_token_that_completes_it(tiny):
    model, tokenizer, prompts = tiny
    free = ours(model, tokenizer, prompts, greedy=True).response_ids[0].tolist()
    stop_text = tokenizer.decode(free[4:7])[1:]  # spans several tokens, starts inside one
    # reference: the shortest prefix whose full decoded text contains the stop text
    expected = next(k for k in range(1, 25) if stop_text in tokenizer.decode(free[:k]))
    out = ours(model, tokenizer, prompts, greedy=True, stop_texts=[stop_text])
    assert int(out.response_lengths[0]) == expected and not out.truncated[0]
    assert out.response_ids[0, :expected].tolist() == free[:expected]
    assert out.response_ids[0, expected:].eq(tokenizer.pad_token_id).all()
    with pytest.raises(ValueError, match="tokenizer"):
        generate(model, prompts, max_new_tokens=4, pad_token_id=0, stop_token_ids=(), stop_texts=["x"])


def test_truncated_flag_and_masks(tiny):
    model, tokenizer, prompts = tiny
    out = ours(model, tokenizer, prompts, max_new_tokens=5, seed=0)
    assert out.truncated.all() and out.response_ids.shape == (3, 5) and out.response_mask.eq(1).all()
    input_ids, _, position_ids = out.sequences()
    assert input_ids.shape == (3, out.prompt_ids.shape[1] + 5) and position_ids[0, -1] == len(prompts[0]) + 4


def test_sampler_follows_the_nucleus_distribution():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    rows = 20_000
    logits = probs.log().expand(rows, 4)
    for top_p, expected in [(1.0, probs), (0.8, torch.tensor([0.625, 0.375, 0.0, 0.0]))]:
        sampler = _Sampler(rows, 1, temperature=1.0, top_p=top_p, greedy=False, seed=0, device=torch.device("cpu"))
        tokens, logp = sampler(logits, torch.arange(rows), 0)
        freq = torch.bincount(tokens, minlength=4).float() / rows
        torch.testing.assert_close(freq, expected, atol=0.015, rtol=0)
        torch.testing.assert_close(logp, probs.log()[tokens])  # log-probs before the top-p cut
    hot = _Sampler(rows, 1, temperature=0.5, top_p=1.0, greedy=False, seed=0, device=torch.device("cpu"))
    sharpened = probs**2 / (probs**2).sum()  # softmax(log p / 0.5) ∝ p²
    freq = torch.bincount(hot(logits, torch.arange(rows), 0)[0], minlength=4).float() / rows
    torch.testing.assert_close(freq, sharpened, atol=0.015, rtol=0)


def test_engine_choice_is_checked(tiny):
    model, tokenizer, prompts = tiny
    with pytest.raises(ValueError, match="engine"):
        ours(model, tokenizer, prompts, engine="turbo")
    model.config.model_type = "gpt2"  # not a Llama-style block any more, as far as the fast engine knows
    try:
        with pytest.raises(ValueError, match="fast engine"):
            ours(model, tokenizer, prompts, engine="fast")
        assert ours(model, tokenizer, prompts, greedy=True).response_ids.shape == (3, 24)  # auto → model engine
    finally:
        model.config.model_type = "llama"


def test_stop_tokens_include_endoftext_when_it_is_also_the_unk_token():
    """SmolLM2's <|endoftext|> (id 0) is its unk token, so the check "not unk" (meant for tokens the vocabulary
    lacks) left it out of the stops."""
    from types import SimpleNamespace

    from logicrl.evaluate.scoring import stop_token_ids

    vocab = {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2, "a": 3}
    smollm2_like = SimpleNamespace(eos_token_id=2, unk_token_id=0, get_vocab=lambda: vocab)
    assert stop_token_ids(smollm2_like) == [0, 2]
    assert stop_token_ids(SimpleNamespace(eos_token_id=None, unk_token_id=3, get_vocab=lambda: {"a": 3})) == []


@pytest.mark.slow
def test_default_model_greedy_matches_model_generate():
    from logicrl.evaluate.scoring import stop_token_ids
    from logicrl.models import DEFAULT_MODEL, load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(DEFAULT_MODEL, dtype="float32", device="cpu")
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    stops = stop_token_ids(tokenizer)
    out = generate(model, prompts, max_new_tokens=48, pad_token_id=tokenizer.pad_token_id, stop_token_ids=stops,
                   greedy=True)
    expected = hf_greedy(model, tokenizer, prompts, 48, stops)
    assert decode._fast_engine_fits(model, 100)
    assert torch.equal(out.response_ids, expected[:, :out.response_ids.shape[1]])


@pytest.mark.parametrize("disabled", [False, True])
def test_a_lora_policy_runs_on_the_fast_engine_and_samples_what_peft_computes(disabled):
    """peft's LoRA layers (random B, so the adapter changes the outputs) are merged per call: the fast engine
    takes them and samples what the model's own forward through peft samples; with the adapter disabled, what
    the base model samples."""
    peft = pytest.importorskip("peft")
    model, tokenizer = build_tiny_model()
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    base = ours(model, tokenizer, prompts, n=2, seed=5, temperature=1.0, engine="model")
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules=[
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    torch.manual_seed(0)
    for name, param in wrapped.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    inner = wrapped.get_base_model()
    assert decode._fast_engine_fits(inner, 64)
    with wrapped.disable_adapter() if disabled else torch.no_grad():
        fast = ours(inner, tokenizer, prompts, n=2, seed=5, temperature=1.0, engine="fast")
        plain = ours(inner, tokenizer, prompts, n=2, seed=5, temperature=1.0, engine="model")
    assert torch.equal(fast.response_ids, plain.response_ids)
    torch.testing.assert_close(fast.logprobs, plain.logprobs, atol=1e-4, rtol=0)
    assert torch.equal(fast.response_ids, base.response_ids) == disabled  # the adapter matters


def test_a_lora_layer_with_a_bias_leaves_the_fast_engine():
    """peft's lora_bias=True adds a bias to B that the merged weight leaves out: the fast engine computed another
    model (log-probs off by up to 0.28, other tokens). Such a layer is not mergeable; "auto" takes the model's
    own forward and samples what peft computes."""
    peft = pytest.importorskip("peft")
    from logicrl.engine.linears import mergeable

    model, tokenizer = build_tiny_model()
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                         lora_bias=True))
    torch.manual_seed(0)
    for name, param in wrapped.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    inner = wrapped.get_base_model()
    layer = inner.model.layers[0].self_attn.q_proj
    assert not mergeable(layer) and not decode._fast_engine_fits(inner, 64)
    with torch.no_grad():
        auto = ours(inner, tokenizer, prompts, seed=5, temperature=1.0)
        plain = ours(inner, tokenizer, prompts, seed=5, temperature=1.0, engine="model")
    assert torch.equal(auto.response_ids, plain.response_ids)
    with pytest.raises(ValueError, match="the fast engine does not support this model"):
        ours(inner, tokenizer, prompts, seed=5, temperature=1.0, engine="fast")


@pytest.mark.parametrize(("prompts", "kwargs", "message"), [
    ([], {}, "at least one prompt"), ([[5, 6], []], {}, "no empty one"),
    ([[5, 6]], {"max_new_tokens": 0}, "max_new_tokens must be at least 1"),  # mismatched shapes
    ([[5, 6]], {"n": 0}, "n and max_new_tokens must be at least 1"),
    ([[5, 6]], {"temperature": 0.0}, "sampling needs temperature > 0"),  # NaN: the last id, every step
    ([[5, 6]], {"temperature": -1.0}, "sampling needs temperature > 0"),  # the inverted distribution
    ([[5, 6]], {"top_p": 0.0}, "0 < top_p <= 1"), ([[5, 6]], {"top_p": 1.5}, "0 < top_p <= 1"),
    ([[5, 6]], {"stop_texts": [""]}, "an empty stop text"),
])
def test_arguments_generate_cannot_use_are_refused(tiny, prompts, kwargs, message):
    model, tokenizer, _ = tiny
    with pytest.raises(ValueError, match=message):
        ours(model, tokenizer, prompts, **kwargs)
    if "temperature" in kwargs:  # greedy decoding does not use them
        assert ours(model, tokenizer, prompts, greedy=True, max_new_tokens=2, **kwargs).response_ids.shape[0] == 1


@pytest.mark.parametrize("engine", ["fast", "model"])
def test_generation_builds_no_autograd_graph(tiny, engine):
    """generate runs under no_grad whatever the caller's mode (a decorator moved onto a helper once made the
    rollouts' log-probs carry a graph, which the trainer's batch then could not deepcopy)."""
    model, tokenizer, prompts = tiny
    assert torch.is_grad_enabled()
    out = ours(model, tokenizer, prompts, seed=1, temperature=1.0, max_new_tokens=4, engine=engine)
    assert not any(tensor.requires_grad for tensor in (out.logprobs, out.response_ids, out.response_mask))


def test_running_past_the_context_warns(tiny):
    model, tokenizer, prompts = tiny
    context = model.config.max_position_embeddings
    long_prompt = (prompts[0] * context)[:context - 1]  # 1 position left, 2 new tokens asked
    with pytest.warns(UserWarning, match=f"exceed the model's context \\({context} positions\\)"):
        ours(model, tokenizer, [long_prompt], greedy=True, max_new_tokens=2)


OPENING = ("A very special island is inhabited only by knights and knaves. Knights always tell the truth, and knaves "
           "always lie. You meet ")
TAILS = ("2 inhabitants: Zoey and Oliver.", "3 inhabitants: Ethan, Mia and Jack. Ethan said that Mia is a knave.",
         "2 inhabitants: Ava and Liam. Ava said that")


@pytest.mark.parametrize("engine", ["fast", "model"])
def test_prompts_that_share_a_prefix_continue_as_model_generate_does(tiny, engine):
    """Prompts that open with the same 20+ tokens (as every K&K prompt opens with the chat template and
    instruction): the fast engine runs the prefix once, and greedy rows still equal ``model.generate``'s; sampled
    log-probs equal a scoring forward's."""
    model, tokenizer, _ = tiny
    prompts = [tokenizer(OPENING + tail, add_special_tokens=False)["input_ids"] for tail in TAILS]
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    assert shared_prefix_length(ids, mask) >= 20 and len({len(p) for p in prompts}) == 3
    seen = []
    hook = model.get_input_embeddings().register_forward_hook(lambda _m, args, _out: seen.append(tuple(args[0].shape)))
    try:
        out = ours(model, tokenizer, prompts, greedy=True, engine=engine, stop_token_ids=[tokenizer.eos_token_id])
    finally:
        hook.remove()
    assert torch.equal(out.response_ids, hf_greedy(model, tokenizer, prompts, 24, [tokenizer.eos_token_id]))
    if engine == "fast":
        prefix = shared_prefix_length(ids, mask)
        assert seen[:2] == [(1, prefix), (3, ids.shape[1] - prefix)]  # the prefix once, then each prompt's rest
    sampled = ours(model, tokenizer, prompts, n=2, seed=1, temperature=0.8, engine=engine)
    with torch.no_grad():
        logp, _ = response_logprobs(model, *sampled.sequences(), sampled.response_ids, temperature=0.8, onednn=False)
    valid = sampled.response_mask.bool()
    torch.testing.assert_close(sampled.logprobs[valid], logp[valid], atol=1e-4, rtol=0)


@settings(max_examples=60, deadline=None)
@given(vocab=st.integers(1, 3 * sampling.BLOCK + 5), zeros=st.floats(0.0, 0.99), seed=st.integers(0, 2**31 - 1))
def test_inverse_cdf_picks_the_index_whose_cdf_interval_holds_the_uniform(vocab, zeros, seed):
    """Against a float64 running sum over the whole row: the pick i has C_{i−1} ≤ u·C_V < C_i (to float32
    rounding of the sums), so its weight is positive; rows of any width, many zero weights."""
    generator = torch.Generator().manual_seed(seed)
    weights = torch.rand(6, vocab, generator=generator) ** 4
    weights[torch.rand(6, vocab, generator=generator) < zeros] = 0.0
    weights[:, torch.randint(vocab, (1,), generator=generator)] = 1e-3  # each row has a positive weight
    u = torch.rand(6, generator=generator)
    u[0] = 1.0 - torch.finfo(torch.float32).eps / 2  # the largest uniform torch.rand draws
    pick = sampling.inverse_cdf(weights, u)
    assert bool((weights.gather(-1, pick[:, None]) > 0).all())
    cdf = weights.double().cumsum(-1)
    point, slack = u.double() * cdf[:, -1], 1e-5 * cdf[:, -1]
    before = torch.where(pick > 0, cdf.gather(-1, (pick - 1).clamp(min=0)[:, None])[:, 0], 0.0)
    assert bool((before <= point + slack).all()) and bool((point < cdf.gather(-1, pick[:, None])[:, 0] + slack).all())


def test_greedy_logprobs_are_the_log_softmax_of_a_scoring_forward(tiny):
    """Greedy decoding reports normalised log-probabilities (log-softmax), as a scoring forward at temperature 1."""
    model, tokenizer, prompts = tiny
    out = ours(model, tokenizer, prompts, greedy=True)
    with torch.no_grad():
        logp, _ = response_logprobs(model, *out.sequences(), out.response_ids, onednn=False)
    valid = out.response_mask.bool()
    torch.testing.assert_close(out.logprobs[valid], logp[valid], atol=1e-4, rtol=0)


def test_a_prompts_rows_sample_alike_in_a_smaller_batch(tiny):
    """Row i's uniforms do not depend on the batch size: prompt 0's two samples are the same alone or with others."""
    model, tokenizer, prompts = tiny
    a = ours(model, tokenizer, prompts, n=2, seed=7)
    b = ours(model, tokenizer, prompts[:1], n=2, seed=7)
    assert torch.equal(a.response_ids[:2, :b.response_ids.shape[1]], b.response_ids)


def test_logprobs_are_zero_after_a_stop(tiny):
    """A row that stops at its third greedy token holds log-prob 0 past its end."""
    model, tokenizer, prompts = tiny
    stop = ours(model, tokenizer, prompts, greedy=True).response_ids[0, 2].item()
    out = ours(model, tokenizer, prompts, greedy=True, stop_token_ids=[stop])
    assert int(out.response_lengths[0]) <= 3 and not bool(out.response_mask.all())
    assert out.logprobs[out.response_mask == 0].eq(0).all()

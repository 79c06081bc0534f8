"""Packed SFT (logicrl.rl.packing): the same loss, gradients and parameters as padded rows, no attention across
examples, and one-line errors for a mis-configured packing.

Run: OMP_NUM_THREADS=1 .venv/bin/pytest -q tests/rl/test_sft_packing.py
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from logicrl.config import load_config
from logicrl.errors import ConfigError
from logicrl.models import build_tiny_model
from logicrl.prompts import PromptConfig, encode_prompts, response_target
from logicrl.rl.packing import pack_examples, pack_rows, packed_logprobs, packed_nll_step
from logicrl.rl.run_log import read_metrics
from logicrl.rl.schedule import load_puzzles
from logicrl.rl.sft import SFTConfig, SFTTrainer, example_batch, example_micro_batches, nll_step, target_ids
from logicrl.rl.update import adamw


@pytest.fixture(scope="module")
def examples(puzzle_dir):
    """(prompt, template target) of the 2- and 3-person training puzzles: lengths vary (≈ 200–600 tokens)."""
    _, tokenizer = build_tiny_model()
    records = load_puzzles(puzzle_dir, "train")
    prompts = encode_prompts(records, tokenizer, PromptConfig())
    targets = target_ids([response_target(r, PromptConfig()) for r in records], tokenizer)
    return list(zip(prompts, targets)), tokenizer.pad_token_id


def padded_loss(model, examples, pad_id, micro_batch_size, backward=True) -> float:
    batch = example_batch([p for p, _ in examples], [t for _, t in examples], pad_id)
    return nll_step(model, batch, micro_batch_size, backward=backward)


def grads(model) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def test_pack_rows_is_best_fit_decreasing():
    assert pack_rows([5, 3, 4, 2, 7], 7) == [[4], [0, 3], [2, 1]]
    assert pack_rows([9, 2], 7) == [[0], [1]]  # longer than the width: a row of its own
    assert pack_rows([2, 2, 2], 6) == [[0, 1, 2]]
    # best fit, not first fit: 1 goes to the row with 1 token free (5 + 4), not to the first that has room (8)
    assert pack_rows([8, 5, 4, 3, 1], 10) == [[0], [1, 2, 4], [3]]


def test_packed_rows_restart_positions_and_label_targets_only():
    packed = pack_examples([([1, 2], [3, 4]), ([5], [6])], [[0, 1], [1]], pad_id=0)
    assert packed.input_ids.tolist() == [[1, 2, 3, 4, 5, 6], [5, 6, 0, 0, 0, 0]]
    assert packed.position_ids.tolist() == [[0, 1, 2, 3, 0, 1], [0, 1, 0, 1, 2, 3]]
    assert packed.segment_ids.tolist() == [[0, 0, 0, 0, 1, 1], [0, 0, -1, -1, -1, -1]]
    assert packed.loss_mask.tolist() == [[False, True, True, False, True, False], [True] + [False] * 5]
    assert packed.labels[packed.loss_mask].tolist() == [3, 4, 6, 6]
    assert packed.tokens == 8


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize(("micro_batch_size", "width"), [(2, 1024), (1, 1500), (8, 700)])
def test_packed_loss_and_gradients_equal_the_padded_ones(examples, attention, micro_batch_size, width):
    examples, pad_id = examples
    batch = examples[:8]
    model, _ = build_tiny_model()
    model.config._attn_implementation = attention
    reference = copy.deepcopy(model)
    expected = padded_loss(reference, batch, pad_id, micro_batch_size=3)
    loss = packed_nll_step(model, batch, micro_batch_size, pad_id, width=width)
    assert loss == pytest.approx(expected, rel=1e-5)
    want = grads(reference)
    for name, grad in grads(model).items():
        torch.testing.assert_close(grad, want[name], rtol=1e-4, atol=1e-7, msg=name)


@pytest.mark.parametrize("micro_batch_size", [1, 3, 4])
def test_length_bucketing_gives_the_same_loss_and_gradients(examples, micro_batch_size):
    examples, pad_id = examples
    batch = example_batch([p for p, _ in examples[:8]], [t for _, t in examples[:8]], pad_id)
    plain, _ = build_tiny_model()
    bucketed = copy.deepcopy(plain)
    expected = nll_step(plain, batch, micro_batch_size)
    assert nll_step(bucketed, batch, micro_batch_size, length_bucketing=True) == pytest.approx(expected, rel=1e-5)
    want = grads(plain)
    for name, grad in grads(bucketed).items():
        torch.testing.assert_close(grad, want[name], rtol=1e-4, atol=1e-7, msg=name)


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_chunked_logprobs_give_the_same_loss_and_gradients(examples, chunk):
    """SFTConfig.logprob_chunk (the default path): the loss from the hidden states through the fused head, chunk
    target tokens at a time, padding skipped, equals the full-logit loss, gradients included."""
    examples, pad_id = examples
    batch = example_batch([p for p, _ in examples[:8]], [t for _, t in examples[:8]], pad_id)
    full, _ = build_tiny_model()
    chunked = copy.deepcopy(full)
    expected = nll_step(full, batch, 3, logprob_chunk=None)
    assert nll_step(chunked, batch, 3, logprob_chunk=chunk) == pytest.approx(expected, rel=1e-5)
    want = grads(full)
    for name, grad in grads(chunked).items():
        torch.testing.assert_close(grad, want[name], rtol=1e-4, atol=1e-7, msg=name)


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_packed_chunked_logprobs_give_the_padded_loss_and_gradients(examples, chunk):
    """SFTConfig.logprob_chunk under packing: the packed rows' target tokens through the fused head, chunk at a
    time, give the padded full-logit loss and gradients."""
    examples, pad_id = examples
    batch = examples[:8]
    padded, _ = build_tiny_model()
    packed = copy.deepcopy(padded)
    expected = padded_loss(padded, batch, pad_id, micro_batch_size=3)
    assert packed_nll_step(packed, batch, 2, pad_id, width=1024, logprob_chunk=chunk) == pytest.approx(expected,
                                                                                                      rel=1e-5)
    want = grads(padded)
    for name, grad in grads(packed).items():
        torch.testing.assert_close(grad, want[name], rtol=1e-4, atol=1e-7, msg=name)


def test_packed_chunks_bound_the_logits(examples, monkeypatch):
    """With logprob_chunk the packed path never projects more than that many tokens at once (it took them all)."""
    from logicrl.engine import logprobs

    examples, pad_id = examples
    model, _ = build_tiny_model()
    widths = []
    logits = logprobs._HeadCast.logits

    def spy(self, hidden, out):
        widths.append(len(hidden))
        return logits(self, hidden, out)

    monkeypatch.setattr(logprobs._HeadCast, "logits", spy)
    packed_nll_step(model, examples[:4], 2, pad_id, width=1024, logprob_chunk=64, backward=False)
    assert widths and max(widths) <= 64


def test_length_bucketing_groups_like_lengths(examples):
    """Longest first, in micro-batches of 4: the 4 longest examples, then the 4 shortest, so fewer padded tokens
    go through the model than in batch order."""
    examples, pad_id = examples
    examples = examples[:8]
    batch = example_batch([p for p, _ in examples], [t for _, t in examples], pad_id)
    totals = [len(p) + len(t) for p, t in examples]
    longest = sorted(range(8), key=lambda i: (-totals[i], i))
    bucketed = example_micro_batches(batch, 4, length_bucketing=True)
    assert [rows.tolist() for rows in bucketed] == [longest[:4], longest[4:]]
    assert [rows.tolist() for rows in example_micro_batches(batch, 3, False)] == [[0, 1, 2], [3, 4, 5], [6, 7]]

    def padded_tokens(chunks):
        return sum(batch.select(rows).model_inputs("cpu")[0].numel() for rows in chunks)

    assert padded_tokens(bucketed) < padded_tokens(example_micro_batches(batch, 4, False))


def test_packing_saves_rows(examples):
    examples, _ = examples
    lengths = [len(p) + len(t) for p, t in examples[:8]]
    rows = pack_rows(lengths, 1024)
    assert sorted(i for row in rows for i in row) == list(range(8))
    assert all(sum(lengths[i] for i in row) <= 1024 for row in rows)
    assert len(rows) <= 5 and all(len(row) > 1 for row in rows[:-1])  # ~500-token examples, two or more a row


def test_parameters_equal_after_two_optimizer_steps(examples):
    examples, pad_id = examples
    padded, _ = build_tiny_model()
    packed = copy.deepcopy(padded)
    optimizers = [adamw(m.parameters(), lr=1e-2) for m in (padded, packed)]
    for batch in (examples[:6], examples[6:12]):
        losses = [padded_loss(padded, batch, pad_id, micro_batch_size=4),
                  packed_nll_step(packed, batch, 2, pad_id, width=1024)]
        assert losses[1] == pytest.approx(losses[0], rel=1e-5)
        for model, optimizer in zip((padded, packed), optimizers):
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    # AdamW moves every element by about lr a step whatever its gradient's size, so an element whose gradient is
    # near zero carries the two paths' rounding (another summation order) at the scale of lr: on an AMD EPYC one
    # element of 8,192 differed by 1.6e-5. atol 1e-4 is 0.5 % of the two steps' 2·lr; a wrong gradient moves
    # elements by up to 2e-2.
    for (name, a), b in zip(padded.named_parameters(), packed.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4, msg=name)
    assert any(not torch.equal(a, b) for a, b in zip(build_tiny_model()[0].parameters(), packed.parameters()))


def test_attention_does_not_cross_examples_in_a_row(examples):
    examples, pad_id = examples
    model, _ = build_tiny_model()
    (prompt_a, target_a), b = examples[0], examples[1]
    vocab = model.config.vocab_size
    changed_a = ([(tok + 7) % (vocab - 3) + 3 for tok in prompt_a], target_a[::-1])

    def logp_of_b(a) -> torch.Tensor:
        packed = pack_examples([a, b], [[0, 1]], pad_id)  # one row: a, then b
        with torch.no_grad():
            logp = packed_logprobs(model, packed)
        return logp[len(a[1]):]  # b's targets come after a's

    with torch.no_grad():  # b alone, unpacked, through the plain model forward
        alone = torch.log_softmax(model(torch.tensor([b[0] + b[1]])).logits[0], -1)
    expected = alone[len(b[0]) - 1:-1].gather(-1, torch.tensor(b[1]).unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(logp_of_b(examples[0]), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logp_of_b(changed_a), logp_of_b(examples[0]), rtol=0, atol=1e-6)


def test_sft_runs_packed_with_the_padded_losses(puzzle_dir, tmp_path):
    def run(out, **changes):
        config = SFTConfig.model_validate({
            "model": {"name": "tiny-random", "device": "cpu"},
            "data": {"train": str(puzzle_dir), "val_puzzles_per_people": 1, "people": [2, 3], "epochs": 1},
            "batch_size": 8, "micro_batch_size": 2, "lr": 3e-3, "max_response_tokens": 1024,
            "out_dir": str(out), "threads": 1, **changes})
        SFTTrainer(config, show_progress=False).fit()
        return [m["loss"] for m in read_metrics(out, "train")], read_metrics(out, "val")[-1]["val/loss"]

    padded, packed = run(tmp_path / "padded"), run(tmp_path / "packed", packing=True)
    assert len(padded[0]) == 3
    assert packed[0] == pytest.approx(padded[0], rel=1e-4) and packed[1] == pytest.approx(padded[1], rel=1e-4)


def test_misconfigured_packing_is_a_one_line_error():
    with pytest.raises(ConfigError, match=r"^packing_length: Input should be greater than or equal to 1$"):
        load_config(SFTConfig, overrides=["packing=true", "packing_length=0"])
    with pytest.raises(ConfigError, match=r"^packing: Input should be a valid boolean"):
        load_config(SFTConfig, overrides=["packing=sometimes"])
    assert load_config(SFTConfig, overrides=["packing=true", "packing_length=2048"]).packing_length == 2048
    flash = SimpleNamespace(config=SimpleNamespace(_attn_implementation="flash_attention_2"))
    with pytest.raises(ValueError, match=r"packing needs attention sdpa or eager \(a 4D mask\), not "
                       r"'flash_attention_2'; set packing=false"):
        packed_logprobs(flash, pack_examples([([1], [2])], [[0]], pad_id=0))


def test_length_bucketing_counts_prompt_tokens():
    """Prompt 1 + target 5 = 6 tokens against prompt 10 + target 3 = 13: the second example is the longer."""
    batch = example_batch([[7], [7] * 10], [[5] * 5, [5] * 3], pad_id=0)
    assert [rows.tolist() for rows in example_micro_batches(batch, 1, True)] == [[1], [0]]

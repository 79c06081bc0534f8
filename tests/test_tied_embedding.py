"""Sparse gradients for a tied input embedding (logicrl.models.tied): the same loss and gradients as the dense
backward, a dense ``.grad`` that fused AdamW steps, and only where the weight is tied and trained.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/test_tied_embedding.py -q
"""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from logicrl.models import build_tiny_model, compute_autocast, sparse_tied_embedding_grad
from logicrl.rl.config import TrainConfig
from logicrl.rl.critic import ValueModel
from logicrl.rl.policy import load_run_models
from logicrl.rl.update import adamw


def accumulated_grads(model, batches, autocast):
    """Σ over ``batches`` of ∂(mean NLL)/∂θ, accumulated by separate backward calls (micro-batches)."""
    model.zero_grad(set_to_none=True)
    losses = []
    for ids in batches:
        with autocast():
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        losses.append(loss.detach())
    return losses, {name: p.grad for name, p in model.named_parameters()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sparse_backward_gives_the_dense_gradient(dtype):
    dense, _ = build_tiny_model(seed=3)
    sparse, _ = build_tiny_model(seed=3)
    assert sparse_tied_embedding_grad(sparse) and not dense.get_input_embeddings().sparse
    generator, vocab = torch.Generator().manual_seed(0), dense.config.vocab_size
    batches = [torch.randint(3, vocab, (2, 11), generator=generator), torch.randint(3, vocab, (3, 7), generator=generator)]
    autocast = lambda: compute_autocast(torch.device("cpu"), dtype)
    expected_losses, expected = accumulated_grads(dense, batches, autocast)
    losses, grads = accumulated_grads(sparse, batches, autocast)
    assert losses == expected_losses  # the forward is untouched
    tied = "model.embed_tokens.weight"
    assert grads[tied].layout == torch.strided and grads[tied] is sparse.lm_head.weight.grad
    for name, grad in expected.items():
        if name == tied:  # the same sum in another order of float additions
            torch.testing.assert_close(grads[name], grad, atol=1e-6, rtol=1e-5)
            assert grad.abs().max() > 1e-3
        else:
            assert torch.equal(grads[name], grad), name
    for model in (dense, sparse):  # fused AdamW and clipping take the dense gradient
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        adamw(model.parameters(), lr=1e-2).step()
    torch.testing.assert_close(sparse.lm_head.weight, dense.lm_head.weight, atol=1e-6, rtol=0)


def test_only_a_tied_trained_embedding_is_switched():
    untied = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                          num_attention_heads=2, tie_word_embeddings=False))
    assert not sparse_tied_embedding_grad(untied) and not untied.get_input_embeddings().sparse
    frozen, _ = build_tiny_model()
    frozen.requires_grad_(False)
    assert not sparse_tied_embedding_grad(frozen) and not frozen.get_input_embeddings().sparse


def test_the_critic_copy_of_a_sparse_policy_keeps_dense_gradients():
    policy, _ = build_tiny_model()
    assert sparse_tied_embedding_grad(policy)
    critic = ValueModel(policy)  # the trainer rebuilds it from the sparse policy at a stage reset
    torch.nn.init.normal_(critic.head.weight, std=0.1)
    ids = torch.randint(3, policy.config.vocab_size, (2, 6), generator=torch.Generator().manual_seed(1))
    critic(ids, torch.ones_like(ids), torch.arange(6).expand(2, 6), 3).sum().backward()
    grad = critic.body.get_input_embeddings().weight.grad
    assert grad.layout == torch.strided and grad.abs().sum() > 0
    adamw(critic.parameters(), lr=1e-3).step()


def test_training_loads_the_policy_with_sparse_embedding_grads(puzzle_dir, tmp_path):
    config = TrainConfig.model_validate({"model": {"name": "tiny-random", "device": "cpu"},
                                         "data": {"train": str(puzzle_dir)}, "out_dir": str(tmp_path / "run")})
    models, _ = load_run_models(config, torch.device("cpu"), torch.float32, None)
    assert models.policy.get_input_embeddings().sparse
    assert not models.ref.get_input_embeddings().sparse  # frozen: no gradient at all

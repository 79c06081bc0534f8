"""The public facade `logicrl.rl.algorithms`: what it exports and the documentation contract.

Run: .venv/bin/python -m pytest tests/rl/test_algorithms.py
Formulas are tested in test_advantages.py, test_kl.py and test_losses.py.
"""

import inspect

import pytest
import torch

from logicrl.rl import algorithms

TENSOR_FUNCTIONS = [
    "aggregate", "discounted_returns", "entropy_from_logits", "gae_advantages", "grpo_advantages",
    "kl_estimate", "kl_loss", "masked_mean", "masked_whiten", "policy_loss", "policy_loss_with_stats",
    "reinforce_pp_advantages", "reinforce_pp_baseline_advantages", "rloo_advantages",
    "token_rewards_from_scores", "value_loss", "value_loss_with_stats", "gspo_loss_with_stats",
    "cispo_loss_with_stats",
]


def test_all_names_are_exported():
    for name in algorithms.__all__:
        assert hasattr(algorithms, name), name
    assert set(TENSOR_FUNCTIONS) <= set(algorithms.__all__)


@pytest.mark.parametrize("name", TENSOR_FUNCTIONS)
def test_tensor_functions_document_shapes_and_source(name):
    doc = inspect.getdoc(getattr(algorithms, name))
    assert doc and "Shapes:" in doc, f"{name} lacks a Shapes: line"
    assert any(s in doc for s in ("arXiv", "http", "veRL")), f"{name} cites no source"


def test_registries_hold_one_name_per_concept():
    assert sorted(algorithms.AGGREGATIONS) == [
        "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm", "token-mean"
    ]
    assert "low_var_kl" not in algorithms.KL_ESTIMATORS and "kl" not in algorithms.KL_ESTIMATORS
    assert "drgrpo" not in algorithms.ADVANTAGE_ESTIMATORS  # Dr.GRPO is grpo with scale_by_std=False


def test_a_reinforce_pp_step_end_to_end():
    """The Logic-RL recipe in miniature: REINFORCE++ advantages, clipped loss, k3 KL loss, one backward, one
    gradient step; the step makes the well-scored responses likelier and the badly scored ones less likely."""
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([3, 4, 2, 1])
    mask = (torch.arange(4) < lengths[:, None]).float()
    scores = torch.tensor([3.0, -1.0, -0.5, 3.0])
    batch = algorithms.AdvantageInputs.from_scores(scores, torch.tensor([0, 0, 1, 1]), mask)
    adv = algorithms.get_advantage_estimator("reinforce_pp")(batch).advantages
    # the token-weighted mean score is (3·3 − 1·4 − 0.5·2 + 3·1) / 10 = 0.7: rows 0, 3 above it, 1, 2 below
    signs = torch.tensor([1.0, -1.0, -1.0, 1.0])[:, None].expand(4, 4)
    assert torch.equal(torch.sign(adv)[mask == 1], signs[mask == 1]) and torch.all(adv[mask == 0] == 0)
    logp = (-torch.rand(4, 4, generator=g)).requires_grad_(True)
    old, ref = logp.detach() - 0.05, logp.detach() + 0.1
    kl = algorithms.kl_loss(logp, ref, mask, kind="k3")
    loss = algorithms.policy_loss(logp, old, adv, mask) + 0.001 * kl
    loss.backward()
    assert torch.isfinite(loss) and torch.all(logp.grad[mask == 0] == 0) and logp.grad.abs().sum() > 0
    moved = ((logp - 0.1 * logp.grad).detach() - logp.detach()) * mask  # one step of gradient descent
    assert (torch.sign(moved.sum(-1)) == torch.sign(scores - 0.7)).all(), moved

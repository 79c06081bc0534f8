"""The policy-loss registry (vanilla, GSPO, CISPO) and the aggregation / KL registries.

GSPO and CISPO are checked against plain-Python loops written from the papers' formulas (value and gradient
per token, on random ragged batches), and by hand on single tokens.

Run: .venv/bin/python -m pytest tests/rl/test_policy_losses.py
"""

from __future__ import annotations

import math

import pytest
import torch

from logicrl.rl import kl as kl_module
from logicrl.rl import losses as losses_module
from logicrl.rl import policy_losses
from logicrl.rl.algorithms import (
    POLICY_LOSSES,
    aggregate,
    cispo_loss_with_stats,
    get_policy_loss,
    gspo_loss_with_stats,
    kl_estimate,
    policy_loss_with_stats,
    register_aggregation,
    register_kl_estimator,
)
from logicrl.rl.config import AlgorithmConfig


def random_batch(seed: int, rows: int = 5, width: int = 7, spread: float = 0.15):
    """ℓ, ℓ_old, per-token A and a ragged mask with one empty row, float64."""
    g = torch.Generator().manual_seed(seed)
    logp = -torch.rand(rows, width, generator=g, dtype=torch.float64) * 2
    old = logp + spread * torch.randn(rows, width, generator=g, dtype=torch.float64)
    adv = torch.randn(rows, width, generator=g, dtype=torch.float64)
    lengths = torch.randint(1, width + 1, (rows,), generator=g)
    lengths[1] = 0
    mask = (torch.arange(width) < lengths[:, None]).double()
    return logp, old, adv, mask


def token_weights(mask, agg):
    """w_it with aggregate(L) = Σ w_it·L_it, written out per mode."""
    rows, width = mask.shape
    n = [sum(mask[i].tolist()) for i in range(rows)]
    total, nonempty = sum(n), sum(1 for k in n if k > 0)
    w = [[0.0] * width for _ in range(rows)]
    for i in range(rows):
        for t in range(width):
            if mask[i, t]:
                w[i][t] = 1 / total if agg == "token-mean" else 1 / (nonempty * n[i])
    return w


def gspo_reference(logp, old, adv, mask, lo, hi, agg):
    """GSPO-token (arXiv 2507.18071 eq. 10–11): s_i = exp(mean_t(ℓ − ℓ_old)), per-token surrogate on s_i with
    gradient s_i·∇ℓ_it where the unclipped term is the active one."""
    w = token_weights(mask, agg)
    loss, grad = 0.0, [[0.0] * mask.shape[1] for _ in range(mask.shape[0])]
    for i in range(mask.shape[0]):
        valid = [t for t in range(mask.shape[1]) if mask[i, t]]
        if not valid:
            continue
        s = math.exp(sum(float(logp[i, t] - old[i, t]) for t in valid) / len(valid))
        for t in valid:
            a = float(adv[i, t])
            unclipped, clipped = -a * s, -a * min(max(s, 1 - lo), 1 + hi)
            loss += w[i][t] * max(unclipped, clipped)
            active = (1 - lo <= s <= 1 + hi) or unclipped > clipped
            grad[i][t] = w[i][t] * (-a * s if active else 0.0)
    return loss, torch.tensor(grad, dtype=torch.float64)


def cispo_reference(logp, old, adv, mask, lo, hi, agg):
    """CISPO (arXiv 2506.13585 eq. 4–5): L_t = −sg(clip(ρ_t, 1 − ε_low, 1 + ε_high))·A_t·ℓ_t."""
    w = token_weights(mask, agg)
    loss, grad = 0.0, [[0.0] * mask.shape[1] for _ in range(mask.shape[0])]
    for i in range(mask.shape[0]):
        for t in range(mask.shape[1]):
            if mask[i, t]:
                weight = min(max(math.exp(float(logp[i, t] - old[i, t])), 1 - lo), 1 + hi)
                loss += w[i][t] * -weight * float(adv[i, t]) * float(logp[i, t])
                grad[i][t] = w[i][t] * -weight * float(adv[i, t])
    return loss, torch.tensor(grad, dtype=torch.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean"])
@pytest.mark.parametrize("fn, reference", [(gspo_loss_with_stats, gspo_reference),
                                           (cispo_loss_with_stats, cispo_reference)])
def test_loss_and_gradient_match_a_loop_reference(fn, reference, agg, seed):
    logp, old, adv, mask = random_batch(seed)
    lo, hi = 0.02, 0.03  # the ratios straddle the clip range, so both branches occur
    logp.requires_grad_(True)
    loss, stats = fn(logp, old, adv, mask, clip_low=lo, clip_high=hi, agg=agg)
    loss.backward()
    expected, grad = reference(logp.detach(), old, adv, mask, lo, hi, agg)
    assert loss.item() == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert torch.allclose(logp.grad, grad, rtol=1e-9, atol=1e-12)
    assert 0.0 < stats["clip_frac"].item() < 1.0
    valid = mask.bool()
    assert stats["approx_kl"].item() == pytest.approx(float((old - logp.detach())[valid].mean()))


def test_gspo_is_the_sequence_level_objective_when_advantages_are_per_response():
    """With A_i on every token and seq-mean-token-mean, GSPO-token equals (1/G) Σ_i max(−A_i s_i, −A_i clip(s_i))
    with s_i = exp(mean_t(ℓ − ℓ_old)) differentiated directly (the paper's eq. 5), in value and gradient."""
    logp, old, _, mask = random_batch(3, spread=0.05)
    adv = torch.tensor([1.0, -2.0, 0.5, -1.0, 2.0], dtype=torch.float64)[:, None] * mask
    lo, hi = 0.01, 0.02
    a = logp.clone().requires_grad_(True)
    gspo_loss_with_stats(a, old, adv, mask, clip_low=lo, clip_high=hi)[0].backward()
    b = logp.clone().requires_grad_(True)
    n = mask.sum(-1)
    keep = n > 0
    s = torch.exp(((b - old) * mask).sum(-1)[keep] / n[keep])
    per_seq = adv[keep, 0]
    sequence_level = torch.maximum(-per_seq * s, -per_seq * s.clamp(1 - lo, 1 + hi)).mean()
    sequence_level.backward()
    assert torch.allclose(a.grad, b.grad, rtol=1e-9, atol=1e-12)


def one_token(fn, ratio, adv, **kw):
    logp = torch.tensor([[math.log(ratio)]], requires_grad=True)
    loss, stats = fn(logp, torch.zeros(1, 1), torch.tensor([[adv]]), torch.ones(1, 1), **kw)
    loss.backward()
    return loss.item(), logp.grad.item(), stats["clip_frac"].item()


@pytest.mark.parametrize("ratio, adv, weight, clipped", [
    (1.5, 1.0, 1.2, True),  # above 1 + ε_high: the weight is capped at 1.2, the gradient survives
    (1.1, -1.0, 1.1, False),  # inside: w = ρ
    (0.01, 1.0, 0.01, False),  # ε_low = 1: no lower bound (the paper's setting)
])
def test_cispo_keeps_the_gradient_of_clipped_tokens_by_hand(ratio, adv, weight, clipped):
    loss, grad, clip_frac = one_token(cispo_loss_with_stats, ratio, adv)  # defaults: ε_low 1, ε_high 0.2
    assert loss == pytest.approx(-weight * adv * math.log(ratio), rel=1e-6)
    assert grad == pytest.approx(-weight * adv, rel=1e-6)  # d(−w·A·ℓ)/dℓ with w constant
    assert clip_frac == float(clipped)
    _, vanilla_grad, _ = one_token(policy_loss_with_stats, ratio, adv, clip_high=0.2)
    if clipped:
        assert vanilla_grad == 0.0  # where PPO drops the token


def test_gspo_clips_the_whole_sequence_with_its_small_default_epsilon():
    """Token ratios e^0.001 and e^−0.0002 give s = e^0.0004 ≈ 1.00040008, just above 1 + 4e-4: with A > 0 the
    whole sequence is clipped (no gradient on either token), whatever each token's own ratio."""
    logp = torch.tensor([[0.001, -0.0002]], dtype=torch.float64, requires_grad=True)
    zeros, mask = torch.zeros(1, 2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64)
    loss, stats = gspo_loss_with_stats(logp, zeros, torch.ones(1, 2, dtype=torch.float64), mask)
    loss.backward()
    assert math.exp(0.0004) > 1.0004
    assert loss.item() == pytest.approx(-1.0004) and torch.all(logp.grad == 0) and stats["clip_frac"].item() == 1.0
    logp.grad = None
    loss, _ = gspo_loss_with_stats(logp, zeros, -torch.ones(1, 2, dtype=torch.float64), mask)
    loss.backward()  # A < 0: the unclipped term is the larger, both tokens get −A·s/2 (seq-mean-token-mean)
    assert torch.allclose(logp.grad, torch.full((1, 2), math.exp(0.0004) / 2, dtype=torch.float64))


def test_the_registry_holds_the_three_losses_and_vanilla_is_the_clipped_loss():
    assert sorted(POLICY_LOSSES) == ["cispo", "gspo", "vanilla"]
    assert get_policy_loss("vanilla").fn is policy_loss_with_stats  # today's numbers, unchanged
    assert get_policy_loss("gspo").clip == (3e-4, 4e-4) and get_policy_loss("gspo").loss_agg == "seq-mean-token-mean"
    logp, old, adv, mask = random_batch(4)
    for name, entry in POLICY_LOSSES.items():
        kwargs = {"clip_low": 0.1, "clip_high": 0.2, "dual_clip": 3.0, "agg": entry.loss_agg or "token-mean",
                  "norm_constant": None}
        loss, stats = entry(logp, old, adv, mask, **kwargs)
        assert loss.dim() == 0 and {"clip_frac", "approx_kl"} <= set(stats), name
    with pytest.raises(ValueError, match=r"unknown policy loss 'ppo'; valid names: \['cispo', 'gspo', 'vanilla'\]"):
        get_policy_loss("ppo")
    with pytest.raises(ValueError, match="already registered"):
        policy_losses.register_policy_loss("gspo", clip=(0.1, 0.1))(gspo_loss_with_stats)


def test_config_validates_the_policy_loss_and_resolves_its_epsilon():
    assert AlgorithmConfig().clip_range() == (0.2, 0.2)
    assert AlgorithmConfig(clip_high=0.28).clip_range() == (0.2, 0.28)
    gspo = AlgorithmConfig(policy_loss="gspo", loss_agg="seq-mean-token-mean")
    assert gspo.clip_range() == (3e-4, 4e-4)
    assert AlgorithmConfig(policy_loss="cispo").clip_range() == (1.0, 0.2)
    with pytest.raises(ValueError, match="unknown policy_loss 'ppo'; choose from vanilla, gspo, cispo"):
        AlgorithmConfig(policy_loss="ppo")
    with pytest.raises(ValueError, match="set algorithm.loss_agg=seq-mean-token-mean"):
        AlgorithmConfig(policy_loss="gspo")


def test_register_aggregation_and_kl_estimator(monkeypatch):
    monkeypatch.setattr(losses_module, "AGGREGATIONS", dict(losses_module.AGGREGATIONS))
    monkeypatch.setattr(kl_module, "KL_ESTIMATORS", dict(kl_module.KL_ESTIMATORS))
    loss, mask = torch.tensor([[1.0, 3.0], [5.0, 0.0]]), torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    register_aggregation("token-sum", lambda values, m, c: (values * m).sum(), per_sequence=False)
    assert aggregate(loss, mask, "token-sum").item() == 9.0
    with pytest.raises(ValueError, match="'token-mean' is already registered"):
        register_aggregation("token-mean", lambda values, m, c: values.sum(), per_sequence=False)
    register_kl_estimator("k2x2", lambda logp, ref: (logp - ref).square())
    assert kl_estimate(torch.tensor([1.0]), torch.tensor([-1.0]), "k2x2").item() == 4.0
    with pytest.raises(ValueError, match="'k3' is already registered"):
        register_kl_estimator("k3", lambda logp, ref: logp)


def test_tis_weights_by_hand():
    """ρ = exp(ℓ_old − ℓ_rollout) = 0.5, 1, 3, 4 (the last on padding): weights min(ρ, 2); stats over valid tokens."""
    old = torch.zeros(1, 4)
    rollout = -torch.tensor([[0.5, 1.0, 3.0, 4.0]]).log()
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    weights, stats = policy_losses.tis_weights(old, rollout, mask, cap=2.0)
    assert weights[0].tolist() == pytest.approx([0.5, 1.0, 2.0, 2.0])
    assert stats["tis/ratio_mean"].item() == pytest.approx((0.5 + 1 + 3) / 3)
    assert stats["tis/clip_frac"].item() == pytest.approx(1 / 3)
    assert stats["tis/log_ratio_abs"].item() == pytest.approx((math.log(2) + 0 + math.log(3)) / 3)
    far, _ = policy_losses.tis_weights(torch.full((1, 1), 10.0), torch.zeros(1, 1), torch.ones(1, 1), cap=1e9)
    assert far.item() == pytest.approx(math.exp(10), rel=1e-5)  # a log ratio of 10 is within the ±20 clamp


@pytest.mark.parametrize("name", ["vanilla", "gspo", "cispo"])
def test_is_weights_multiply_each_token_loss(name):
    """Σ_t w_t·L_t: with weights w the loss is the weighted per-token loss; None and all-ones are the plain loss."""
    logp, old, adv, mask = random_batch(5)
    entry = get_policy_loss(name)
    kwargs = {"clip_low": 0.1, "clip_high": 0.2, "dual_clip": 3.0, "agg": "seq-mean-token-mean", "norm_constant": None}
    plain, _ = entry(logp, old, adv, mask, **kwargs)
    assert torch.equal(entry(logp, old, adv, mask, is_weights=torch.ones_like(logp), **kwargs)[0], plain)
    weights = torch.zeros_like(logp)
    weights[0] = 2.0  # only row 0, doubled
    weighted, _ = entry(logp, old, adv, mask, is_weights=weights, **kwargs)
    row0, _ = entry(logp[:1], old[:1], adv[:1], mask[:1], **kwargs)
    nonempty = int((mask.sum(-1) > 0).sum())
    assert weighted.item() == pytest.approx(2.0 * row0.item() / nonempty, rel=1e-10)

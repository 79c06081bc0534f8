"""Aggregation modes, clipped policy loss (with dual clip), clipped value loss and entropy, by hand.

Run: .venv/bin/python -m pytest tests/rl/test_losses.py
"""

import math

import pytest
import torch

from logicrl.rl.algorithms import (
    AGGREGATIONS,
    aggregate,
    entropy_from_logits,
    masked_mean,
    policy_loss,
    policy_loss_with_stats,
    value_loss,
    value_loss_with_stats,
)

# ---------------------------------------------------------------- aggregation

LOSS = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 0.0], [7.0, 7.0, 7.0]])
MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])  # ragged + one empty row


@pytest.mark.parametrize(
    "mode,expected",
    [
        ("token-mean", 15 / 5),
        ("seq-mean-token-mean", (6 / 3 + 9 / 2) / 2),
        ("seq-mean-token-sum", (6 + 9) / 2),
        ("seq-mean-token-sum-norm", (6 / 3 + 9 / 3) / 2),  # C = T = 3
    ],
)
def test_aggregation_by_hand_on_a_ragged_mask(mode, expected):
    assert aggregate(LOSS, MASK, mode).item() == pytest.approx(expected)


def test_sum_norm_uses_the_given_constant():
    loss = aggregate(LOSS, MASK, "seq-mean-token-sum-norm", norm_constant=5)
    assert loss.item() == pytest.approx((6 / 5 + 9 / 5) / 2)
    with pytest.raises(ValueError, match="norm_constant"):
        aggregate(LOSS, MASK, "seq-mean-token-sum-norm", norm_constant=0)


@pytest.mark.parametrize("mode", sorted(AGGREGATIONS))
def test_aggregation_of_an_empty_mask_is_zero_not_nan(mode):
    assert aggregate(LOSS, torch.zeros(3, 3), mode).item() == 0.0


def test_aggregation_accepts_bool_masks():
    assert aggregate(LOSS, MASK.bool(), "token-mean").item() == pytest.approx(3.0)


def test_unknown_aggregation_lists_valid_modes():
    with pytest.raises(ValueError, match=r"unknown aggregation mode 'mean'.*'seq-mean-token-sum'"):
        aggregate(LOSS, MASK, "mean")


def test_masked_mean():
    assert masked_mean(LOSS, MASK).item() == pytest.approx(3.0)


# ---------------------------------------------------------------- policy loss


def one_token(ratio, adv, **kw):
    """Policy loss and d loss / d ℓ for a single token with ρ = ratio and advantage A = adv."""
    logp = torch.tensor([[math.log(ratio)]], requires_grad=True)
    old, advantages, mask = torch.zeros(1, 1), torch.tensor([[adv]]), torch.ones(1, 1)
    loss, stats = policy_loss_with_stats(logp, old, advantages, mask, **kw)
    loss.backward()
    return loss.item(), logp.grad.item(), stats


@pytest.mark.parametrize(
    "ratio,adv,expected,clipped",
    [
        (1.5, 1.0, -1.2, True),  # A > 0, ρ above 1 + ε: −A·1.2, no gradient
        (0.5, 1.0, -0.5, False),  # A > 0, ρ below 1 − ε: pessimistic term is the unclipped one
        (0.5, -1.0, 0.8, True),  # A < 0, ρ below 1 − ε: −A·0.8, no gradient
        (1.1, -1.0, 1.1, False),  # inside the trust region
        (2.0, -1.0, 2.0, False),  # A < 0, ρ above 1 + ε but below c: unclipped −A·ρ
        (5.0, -1.0, 3.0, True),  # A < 0, ρ > c = 3: dual clip caps at −A·c
    ],
)
def test_policy_loss_clipping_cases_by_hand(ratio, adv, expected, clipped):
    loss, grad, _ = one_token(ratio, adv)
    assert loss == pytest.approx(expected, rel=1e-6)
    # unclipped: d(−A·e^ℓ)/dℓ = −A·ρ; clipped: 0
    assert grad == pytest.approx(0.0 if clipped else -adv * ratio, abs=1e-7)


def test_dual_clip_can_be_disabled_and_must_exceed_one():
    loss, grad, stats = one_token(5.0, -1.0, dual_clip=None)
    assert loss == pytest.approx(5.0) and grad == pytest.approx(5.0)
    assert stats["dual_clip_frac"].item() == 0.0
    with pytest.raises(ValueError, match="dual_clip"):
        one_token(1.0, 1.0, dual_clip=1.0)


@pytest.mark.parametrize(
    "ratio,adv,expected,clipped",
    [
        (1.25, 1.0, -1.25, False),  # A > 0: ρ below 1 + ε_high = 1.28, unclipped
        (1.3, 1.0, -1.28, True),  # above 1.28, clipped
        (0.95, -1.0, 0.95, False),  # A < 0: ρ above 1 − ε_low = 0.9, unclipped
        (0.85, -1.0, 0.9, True),  # below 0.9, clipped
    ],
)
def test_asymmetric_clip_by_hand(ratio, adv, expected, clipped):
    loss, grad, _ = one_token(ratio, adv, clip_low=0.1, clip_high=0.28)
    assert loss == pytest.approx(expected, rel=1e-6)
    assert grad == pytest.approx(0.0 if clipped else -adv * ratio, abs=1e-7)


def test_policy_stats_and_gradient_mask_by_hand():
    ratios = torch.tensor([[1.5, 1.0, 0.5, 5.0], [2.0, 1.0, 1.0, 1.0]])
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0], [-1.0, 1.0, 1.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    logp = ratios.log().requires_grad_(True)
    loss, stats = policy_loss_with_stats(logp, torch.zeros(2, 4), adv, mask)
    # per token: −1.2 (clip), −1.0, 0.8 (clip), 3.0 (dual), 2.0 → token-mean over 5
    assert loss.item() == pytest.approx((-1.2 - 1.0 + 0.8 + 3.0 + 2.0) / 5, rel=1e-6)
    assert stats["clip_frac"].item() == pytest.approx(2 / 5)  # ε-clip on tokens 0 and 2; 3 is dual-capped
    assert stats["dual_clip_frac"].item() == pytest.approx(1 / 5)
    kl = -sum(math.log(r) for r in [1.5, 1.0, 0.5, 5.0, 2.0]) / 5  # mean(ℓ_old − ℓ) over valid tokens
    assert stats["approx_kl"].item() == pytest.approx(kl)
    loss.backward()
    expected_grad = torch.tensor([[0.0, -1.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]]) / 5
    assert torch.allclose(logp.grad, expected_grad, atol=1e-7)
    assert not any(v.requires_grad for v in stats.values())


def test_policy_loss_returns_the_scalar_of_the_stats_version():
    g = torch.Generator().manual_seed(0)
    logp, old, adv = (torch.randn(3, 5, generator=g) for _ in range(3))
    mask = (torch.rand(3, 5, generator=g) > 0.3).float()
    for agg in sorted(AGGREGATIONS):
        loss = policy_loss(logp, old, adv, mask, agg=agg, clip_high=0.28)
        assert loss.dim() == 0
        assert torch.equal(loss, policy_loss_with_stats(logp, old, adv, mask, agg=agg, clip_high=0.28)[0])


def test_policy_ratio_is_clamped_against_overflow():
    loss, grad, _ = one_token(math.exp(80.0), 1.0, dual_clip=None)  # log-ratio 80 → clamp 20 → clipped at 1.2
    assert loss == pytest.approx(-1.2) and grad == 0.0


# ---------------------------------------------------------------- value loss


@pytest.mark.parametrize(
    "v,old,ret,expected,clipped",
    [
        (1.0, 0.0, 2.0, 0.5 * 2.25, True),  # clip v to 0.5: (0.5 − 2)² = 2.25 > (1 − 2)² = 1
        (1.0, 0.0, 0.0, 0.5 * 1.0, False),  # (1 − 0)² = 1 > (0.5 − 0)² = 0.25
        (0.2, 0.0, 1.0, 0.5 * 0.64, False),  # inside the clip range: both terms equal
    ],
)
def test_value_loss_by_hand(v, old, ret, expected, clipped):
    values = torch.tensor([[v]], requires_grad=True)
    old_values, returns, mask = torch.tensor([[old]]), torch.tensor([[ret]]), torch.ones(1, 1)
    loss, stats = value_loss_with_stats(values, old_values, returns, mask)
    assert loss.item() == pytest.approx(expected)
    assert stats["value_clip_frac"].item() == float(clipped)
    loss.backward()
    assert values.grad.item() == pytest.approx(0.0 if clipped else v - ret)


def test_value_loss_respects_mask_and_agg():
    values, old, ret = torch.tensor([[1.0, 9.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    mask = torch.tensor([[1.0, 0.0]])
    assert value_loss(values, old, ret, mask).item() == pytest.approx(0.5)
    assert value_loss(values, old, ret, mask, agg="seq-mean-token-sum-norm").item() == pytest.approx(0.25)


# ---------------------------------------------------------------- entropy


def test_entropy_matches_categorical_and_uniform():
    logits = torch.randn(2, 3, 11, generator=torch.Generator().manual_seed(1))
    expected = torch.distributions.Categorical(logits=logits).entropy()
    assert torch.allclose(entropy_from_logits(logits), expected, atol=1e-6)
    assert entropy_from_logits(torch.zeros(7)).item() == pytest.approx(math.log(7))


def test_entropy_is_stable_for_extreme_and_masked_logits():
    logits = torch.tensor([[1e4, 0.0, -1e4], [0.0, 0.0, -math.inf]], requires_grad=True)
    h = entropy_from_logits(logits)
    assert h[0].item() == pytest.approx(0.0, abs=1e-6)
    assert h[1].item() == pytest.approx(math.log(2))
    h.sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_per_sequence_advantages_must_be_given_per_token():
    """Advantages [B] broadcast against [B, T] to another loss (or failed inside torch): refused by name."""
    logp = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"^advantages must have logp's shape \(2, 3\), got \(2, 1\)"):
        policy_loss(logp, logp, torch.ones(2, 1), torch.ones(2, 3))


def test_the_log_ratio_is_clamped_at_20_not_before():
    """ρ = exp(clamp(ℓ − ℓ_old, ±20)): a log ratio of 10 is taken whole (approx_kl = ℓ_old − ℓ = −10), 30 is cut."""
    for log_ratio, seen in ((10.0, 10.0), (30.0, 20.0)):
        _, stats = policy_loss_with_stats(torch.tensor([[log_ratio]]), torch.zeros(1, 1), torch.ones(1, 1),
                                          torch.ones(1, 1), dual_clip=None)
        assert stats["approx_kl"].item() == pytest.approx(-seen)


def test_the_dual_clip_is_active_only_beyond_its_cap():
    """A < 0 and ρ exactly c = 3: −A·ρ equals the cap, so the cap is not active (dual_clip_frac 0); above it, 1."""
    for ratio, active in ((3.0, 0.0), (3.5, 1.0)):
        _, stats = policy_loss_with_stats(torch.tensor([[ratio]]).log(), torch.zeros(1, 1), -torch.ones(1, 1),
                                          torch.ones(1, 1), dual_clip=3.0)
        assert stats["dual_clip_frac"].item() == active

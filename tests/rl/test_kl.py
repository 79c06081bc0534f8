"""KL estimators, KL placement (reward or loss) and the KL controllers, checked by hand.

Run: .venv/bin/python -m pytest tests/rl/test_kl.py
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from logicrl.rl.algorithms import (
    KL_ESTIMATORS,
    AdaptiveKLController,
    FixedKLController,
    aggregate,
    kl_estimate,
    kl_loss,
    token_rewards_from_scores,
)

D = [0.5, -1.0, 0.0]  # d = ℓ − ℓ_ref


def logps(d):
    ref = torch.tensor([-2.0] * len(d))
    return ref + torch.tensor(d), ref


@pytest.mark.parametrize(
    "kind,expected",
    [
        ("k1", D),
        ("k2", [0.5 * x * x for x in D]),
        ("k3", [math.exp(-x) + x - 1 for x in D]),  # e^(−0.5) − 0.5 = 0.10653; e − 2 = 0.71828; 0
        ("abs", [abs(x) for x in D]),
        ("k3+", [math.exp(-x) + x - 1 for x in D]),
    ],
)
def test_kl_values_by_hand(kind, expected):
    logp, ref = logps(D)
    assert torch.allclose(kl_estimate(logp, ref, kind), torch.tensor(expected), atol=1e-6)


def test_k3_hand_numbers():
    logp, ref = logps([0.5, -1.0])
    assert kl_estimate(logp, ref, "k3").tolist() == pytest.approx([0.1065306597, 0.7182818285], abs=1e-6)


def test_k3_clamps():
    logp, ref = logps([30.0, -30.0, 15.0])
    # d = 30 → clamp to 20: e^(−20) + 19 = 19 → 10; d = −30 → −20: e^20 − 21 → 10; d = 15: 14 + e^(−15) → 10
    assert kl_estimate(logp, ref, "k3").tolist() == [10.0, 10.0, 10.0]
    logp, ref = logps([5.0])
    assert kl_estimate(logp, ref, "k3").item() == pytest.approx(math.exp(-5) + 4)  # inside the clamp


def test_k3_gradient_is_zero_beyond_the_log_ratio_clamp():
    logp = torch.tensor([25.0, 0.5], requires_grad=True)
    kl_estimate(logp, torch.zeros(2), "k3").sum().backward()
    assert logp.grad[0] == 0  # clamped
    assert logp.grad[1].item() == pytest.approx(1 - math.exp(-0.5))  # d/dd (e^(−d) + d − 1)


@settings(max_examples=300, deadline=None)
@given(st.floats(-60, 60, allow_nan=False, width=32), st.floats(-60, 60, allow_nan=False, width=32))
def test_k3_is_never_negative_and_stays_in_its_clamp(a, b):
    for dtype in (torch.float32, torch.float64):
        k3 = kl_estimate(torch.tensor([a], dtype=dtype), torch.tensor([b], dtype=dtype), "k3")
        assert 0.0 <= k3.item() <= 10.0


@settings(max_examples=200, deadline=None)
@given(st.floats(-(2.0**-10), 2.0**-10, allow_nan=False, width=32))
def test_k3_is_never_negative_for_tiny_log_ratios(d):
    ref = torch.tensor([-1.3])
    assert kl_estimate(ref + d, ref, "k3").item() >= 0.0


def test_k3_plus_has_k3_value_and_k2_gradient():
    d = torch.tensor([0.7, -0.4, 2.0])
    lp_plus = d.clone().requires_grad_(True)
    lp_k2 = d.clone().requires_grad_(True)
    plus = kl_estimate(lp_plus, torch.zeros(3), "k3+")
    assert torch.allclose(plus, kl_estimate(d, torch.zeros(3), "k3"))
    plus.sum().backward()
    kl_estimate(lp_k2, torch.zeros(3), "k2").sum().backward()
    assert torch.allclose(lp_plus.grad, d) and torch.allclose(lp_plus.grad, lp_k2.grad)


def test_unknown_kl_kind_lists_valid_kinds():
    assert sorted(KL_ESTIMATORS) == ["abs", "k1", "k2", "k3", "k3+"]
    with pytest.raises(ValueError, match=r"unknown KL estimator 'low_var_kl'.*'k1'.*'k3'"):
        kl_estimate(torch.zeros(1), torch.zeros(1), "low_var_kl")


def test_kl_loss_is_the_aggregated_estimate():
    logp = torch.tensor([[0.5, -1.0, 9.0], [0.2, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    k3 = [math.exp(-0.5) - 0.5, math.e - 2, math.exp(-0.2) - 0.8]
    assert kl_loss(logp, torch.zeros(2, 3), mask).item() == pytest.approx(sum(k3) / 3, abs=1e-6)
    assert torch.equal(kl_loss(logp, torch.zeros(2, 3), mask, kind="k1", agg="seq-mean-token-mean"),
                       aggregate(logp, mask, "seq-mean-token-mean"))


def test_token_rewards_place_score_on_last_valid_token_and_kl_everywhere():
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 1.0]])
    kl = torch.full((4, 3), 2.0)
    r = token_rewards_from_scores(torch.tensor([3.0, -1.0, 5.0, 1.0]), mask, kl=kl, kl_coef=0.1)
    expected = [[-0.2, -0.2, 2.8], [-1.2, 0.0, 0.0], [0.0, 0.0, 0.0], [-0.2, 0.0, 0.8]]
    assert torch.allclose(r, torch.tensor(expected))
    no_kl = token_rewards_from_scores(torch.tensor([3.0]), torch.ones(1, 2))
    assert torch.equal(no_kl, torch.tensor([[0.0, 3.0]]))


def test_token_rewards_reject_bad_shapes():
    with pytest.raises(ValueError):
        token_rewards_from_scores(torch.zeros(2), torch.ones(3, 4))
    with pytest.raises(ValueError, match="kl"):
        token_rewards_from_scores(torch.zeros(2), torch.ones(2, 4), kl=torch.zeros(2, 3), kl_coef=0.1)


def test_fixed_controller_never_moves():
    ctl = FixedKLController(0.001)
    ctl.update(current_kl=50.0, n_steps=1000)
    assert ctl.coef == 0.001


def test_adaptive_controller_by_hand():
    ctl = AdaptiveKLController(init_coef=0.1, target=6.0, horizon=10000)
    ctl.update(current_kl=9.0, n_steps=256)  # 9/6 − 1 = 0.5 → clipped to 0.2; × (1 + 0.2·256/1e4)
    assert ctl.coef == pytest.approx(0.1 * 1.00512)
    ctl.update(current_kl=5.4, n_steps=100)  # 5.4/6 − 1 = −0.1 (inside the clip); × (1 − 0.1·100/1e4)
    assert ctl.coef == pytest.approx(0.1 * 1.00512 * 0.999)
    ctl.update(current_kl=0.0, n_steps=500)  # −1 → −0.2; × (1 − 0.2·500/1e4) = × 0.99
    assert ctl.coef == pytest.approx(0.1 * 1.00512 * 0.999 * 0.99)


@pytest.mark.parametrize("args", [(-0.1, 6.0, 100), (0.1, 0.0, 100), (0.1, 6.0, 0)])
def test_adaptive_controller_rejects_bad_settings(args):
    with pytest.raises(ValueError):
        AdaptiveKLController(*args)


def test_kl_estimate_refuses_shapes_that_would_broadcast():
    with pytest.raises(ValueError, match=r"^ref_logp must have logp's shape \(2, 3\), got \(1, 3\)"):
        kl_estimate(torch.zeros(2, 3), torch.zeros(1, 3), "k3")


def test_an_adaptive_kl_from_a_zero_coefficient_is_refused():
    """The controller multiplies β, so kl_target with kl_coef=0 never moved it off 0, while the reference model
    still ran every step (uses_reference said it could become non-zero)."""
    from logicrl.config import load_config
    from logicrl.errors import ConfigError
    from logicrl.rl.config import TrainConfig

    with pytest.raises(ConfigError, match=r"kl_target adapts β from algorithm.kl_coef by multiplying it"):
        load_config(TrainConfig, None, ["algorithm.kl_coef=0", "algorithm.kl_target=0.05"])
    adaptive = load_config(TrainConfig, None, ["algorithm.kl_coef=0.001", "algorithm.kl_target=0.05"])
    assert adaptive.algorithm.uses_reference
    assert not load_config(TrainConfig, None, ["algorithm.kl_coef=0"]).algorithm.uses_reference

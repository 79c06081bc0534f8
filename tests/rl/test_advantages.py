"""Advantage estimators: hand-computed values, plain-Python loop references, properties, registry.

Run: .venv/bin/python -m pytest tests/rl/test_advantages.py
The loop references below re-state veRL's per-group / per-token loops on Python lists, so the
vectorized code is checked against an independent implementation over (B, T, groups, seed).
"""

import math
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from logicrl.rl.algorithms import (
    ADVANTAGE_ESTIMATORS,
    AdvantageInputs,
    AdvantageOutputs,
    discounted_returns,
    gae_advantages,
    get_advantage_estimator,
    grpo_advantages,
    masked_whiten,
    register_advantage,
    reinforce_pp_advantages,
    reinforce_pp_baseline_advantages,
    rloo_advantages,
    token_rewards_from_scores,
)

# ---------------------------------------------------------------- plain-Python references


def ref_whiten(rows, mask):
    vals = [v for row, mrow in zip(rows, mask) for v, m in zip(row, mrow) if m]
    n = len(vals)
    mu = sum(vals) / n
    var = sum((v - mu) ** 2 for v in vals) / (n - 1)
    sd = math.sqrt(var + 1e-8)
    return [[(v - mu) / sd if m else 0.0 for v, m in zip(row, mrow)] for row, mrow in zip(rows, mask)]


def ref_groups(scores, groups):
    by = {}
    for s, g in zip(scores, groups):
        by.setdefault(g, []).append(s)
    return by


def ref_grpo(scores, groups, mask, scale_by_std=True, eps=1e-6):
    by = ref_groups(scores, groups)
    out = []
    for s, g, mrow in zip(scores, groups, mask):
        xs = by[g]
        if len(xs) == 1:
            mu, sd = 0.0, 1.0
        else:
            mu = sum(xs) / len(xs)
            sd = math.sqrt(sum((x - mu) ** 2 for x in xs) / (len(xs) - 1))
        a = (s - mu) / (sd + eps) if scale_by_std else s - mu
        out.append([a * m for m in mrow])
    return out


def ref_rloo(scores, groups, mask):
    by = ref_groups(scores, groups)
    out = []
    for s, g, mrow in zip(scores, groups, mask):
        xs = by[g]
        a = 0.0 if len(xs) == 1 else s - (sum(xs) - s) / (len(xs) - 1)
        out.append([a * m for m in mrow])
    return out


def ref_returns(rewards, mask, gamma):
    out = []
    for row, mrow in zip(rewards, mask):
        g, rets = 0.0, [0.0] * len(row)
        for t in reversed(range(len(row))):
            g = row[t] + gamma * g
            rets[t] = g
            g *= mrow[t]
        out.append(rets)
    return out


def ref_gae(rewards, values, mask, gamma, lam):
    advs = []
    for r, v, m in zip(rewards, values, mask):
        nxt, run, a = 0.0, 0.0, [0.0] * len(r)
        for t in reversed(range(len(r))):
            delta = r[t] + gamma * nxt - v[t]
            if m[t]:
                run = delta + gamma * lam * run
                nxt = v[t]
            a[t] = run
        advs.append(a)
    returns = [[(a + v) * m for a, v, m in zip(ar, vr, mr)] for ar, vr, mr in zip(advs, values, mask)]
    return ref_whiten(advs, mask), returns


def random_batch(B, T, n_groups, seed):
    rng = random.Random(seed)
    lengths = [rng.randint(1, T) for _ in range(B)]
    mask = [[1.0 if t < n else 0.0 for t in range(T)] for n in lengths]
    scores = [rng.choice([3.0, -0.5, -1.0, -3.0]) + rng.random() for _ in range(B)]
    groups = [rng.randrange(n_groups) * 7 + 100 for _ in range(B)]  # sparse, non-contiguous ids
    values = [[rng.uniform(-1, 1) for _ in range(T)] for _ in range(B)]
    return scores, groups, mask, values


def tensors(scores, groups, mask):
    return torch.tensor(scores), torch.tensor(groups), torch.tensor(mask)


CASES = [(4, 5, 2, 0), (8, 7, 3, 1), (16, 12, 5, 2), (6, 3, 6, 3), (32, 20, 4, 4)]

# ---------------------------------------------------------------- hand-computed values


def test_grpo_by_hand():
    scores, groups = torch.tensor([1.0, 3.0, 2.0, 2.0, 5.0]), torch.tensor([0, 0, 1, 1, 9])
    adv = grpo_advantages(scores, groups, torch.ones(5, 2))
    # group 0: mean 2, unbiased std sqrt(2); group 1: std 0 → 0; group 9 (one response): mean 0, std 1
    expected = [-1 / (math.sqrt(2) + 1e-6), 1 / (math.sqrt(2) + 1e-6), 0.0, 0.0, 5 / (1 + 1e-6)]
    assert torch.allclose(adv[:, 0], torch.tensor(expected))
    assert torch.equal(adv[:, 0], adv[:, 1])


@pytest.mark.parametrize("value", [1.438, 0.1, -0.7, 3.0])
@pytest.mark.parametrize("n", [2, 3, 7, 8])
def test_equal_scores_give_exactly_zero_advantage(value, n):
    # a one-pass float32 mean is an ulp off for 1.438 × 3; divided by (std 0 + 1e-6) that would be ≈ 0.1
    scores, groups, mask = torch.full((n,), value), torch.zeros(n, dtype=torch.long), torch.ones(n, 2)
    assert torch.all(grpo_advantages(scores, groups, mask) == 0)
    assert torch.all(rloo_advantages(scores, groups, mask) == 0)
    assert torch.all(reinforce_pp_baseline_advantages(scores, groups, mask) == 0)


def test_drgrpo_drops_the_std():
    scores, groups = torch.tensor([1.0, 3.0, 2.0, 2.0, 5.0]), torch.tensor([0, 0, 1, 1, 9])
    adv = grpo_advantages(scores, groups, torch.ones(5, 1), scale_by_std=False)
    assert torch.allclose(adv[:, 0], torch.tensor([-1.0, 1.0, 0.0, 0.0, 5.0]))


def test_rloo_by_hand():
    scores, groups = torch.tensor([1.0, 2.0, 6.0, 4.0]), torch.tensor([3, 3, 3, 8])
    adv = rloo_advantages(scores, groups, torch.ones(4, 2))
    # 1 − (2+6)/2, 2 − (1+6)/2, 6 − (1+2)/2; the lone response in group 8 gets 0
    assert torch.allclose(adv[:, 0], torch.tensor([-3.0, -1.5, 4.5, 0.0]))


def test_reinforce_pp_by_hand():
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    rewards = token_rewards_from_scores(torch.tensor([1.0, 2.0]), mask)
    assert torch.equal(rewards, torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]]))
    # γ = 1: returns 1,1,1 | 2,2; mean 1.4; unbiased var (3·0.16 + 2·0.36)/4 = 0.3
    adv = reinforce_pp_advantages(rewards, mask)
    lo, hi = (1 - 1.4) / math.sqrt(0.3 + 1e-8), (2 - 1.4) / math.sqrt(0.3 + 1e-8)
    assert torch.allclose(adv, torch.tensor([[lo, lo, lo], [hi, hi, 0.0]]))


def test_reinforce_pp_discount_by_hand():
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    # γ = 0.5: returns 0.25, 0.5, 1 | 1, 2
    g = [0.25, 0.5, 1.0, 1.0, 2.0]
    mu = sum(g) / 5
    sd = math.sqrt(sum((x - mu) ** 2 for x in g) / 4 + 1e-8)
    w = [(x - mu) / sd for x in g]
    adv = reinforce_pp_advantages(rewards, mask, gamma=0.5)
    assert torch.allclose(adv, torch.tensor([[w[0], w[1], w[2]], [w[3], w[4], 0.0]]))


def test_returns_reset_after_masked_positions():
    # veRL "reset after EOS": a reward at or beyond a masked position never reaches earlier tokens
    rewards = torch.tensor([[0.0, 0.0, 1.0], [1.0, 5.0, 7.0]])
    mask = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert torch.equal(discounted_returns(rewards, mask), torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
    assert torch.allclose(discounted_returns(torch.tensor([[1.0, 2.0, 4.0]]), torch.ones(1, 3), gamma=0.5),
                          torch.tensor([[1.0 + 0.5 * 2.0 + 0.25 * 4.0, 2.0 + 0.5 * 4.0, 4.0]]))


def test_reinforce_pp_baseline_by_hand():
    scores, groups = torch.tensor([3.0, -1.0, 3.0, 3.0]), torch.tensor([0, 0, 1, 1])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    # centred: 2, −2, 0, 0 → tokens 2,2,−2,0,0,0: mean 1/3, unbiased var (2·(5/3)² + (7/3)² + 3·(1/3)²)/5
    toks = [2, 2, -2, 0, 0, 0]
    mu = sum(toks) / 6
    sd = math.sqrt(sum((x - mu) ** 2 for x in toks) / 5 + 1e-8)
    a, b, z = (2 - mu) / sd, (-2 - mu) / sd, -mu / sd
    adv = reinforce_pp_baseline_advantages(scores, groups, mask)
    assert torch.allclose(adv, torch.tensor([[a, a], [b, 0.0], [z, z], [z, 0.0]]))


def test_gae_by_hand():
    rewards, values = torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.25]])
    adv, returns = gae_advantages(rewards, values, torch.ones(1, 2))
    # δ1 = 1 − 0.25 = 0.75 = A1; δ0 = 0 + 0.25 − 0.5 = −0.25, A0 = −0.25 + 0.75 = 0.5; R = A + V = 1, 1
    assert torch.allclose(returns, torch.tensor([[1.0, 1.0]]))
    sd = math.sqrt(2 * 0.125**2 + 1e-8)  # whiten 0.5, 0.75: mean 0.625, unbiased var 0.03125
    assert torch.allclose(adv, torch.tensor([[-0.125 / sd, 0.125 / sd]]))


def test_gae_skips_masked_positions():
    # middle position is an observation token: the running advantage and next value carry over it
    r, v = [[1.0, 5.0, 2.0]], [[0.5, 9.0, 1.0]]
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    _, returns = gae_advantages(torch.tensor(r), torch.tensor(v), mask, gamma=0.9, lam=0.8)
    a2 = 2.0 - 1.0
    a0 = (1.0 + 0.9 * 1.0 - 0.5) + 0.9 * 0.8 * a2
    assert torch.allclose(returns, torch.tensor([[a0 + 0.5, 0.0, a2 + 1.0]]))


# ---------------------------------------------------------------- against the loop references


@pytest.mark.parametrize("B,T,n_groups,seed", CASES)
@pytest.mark.parametrize("scale_by_std", [True, False])
def test_grpo_matches_loop(B, T, n_groups, seed, scale_by_std):
    scores, groups, mask = random_batch(B, T, n_groups, seed)[:3]
    got = grpo_advantages(*tensors(scores, groups, mask), scale_by_std=scale_by_std)
    assert torch.allclose(got, torch.tensor(ref_grpo(scores, groups, mask, scale_by_std)), atol=1e-5)


@pytest.mark.parametrize("B,T,n_groups,seed", CASES)
def test_rloo_matches_loop(B, T, n_groups, seed):
    scores, groups, mask = random_batch(B, T, n_groups, seed)[:3]
    got = rloo_advantages(*tensors(scores, groups, mask))
    assert torch.allclose(got, torch.tensor(ref_rloo(scores, groups, mask)), atol=1e-5)


@pytest.mark.parametrize("B,T,n_groups,seed", CASES)
@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_reinforce_pp_matches_loop(B, T, n_groups, seed, gamma):
    scores, _, mask, values = random_batch(B, T, n_groups, seed)
    rewards = [[x * m * 0.1 for x, m in zip(vr, mr)] for vr, mr in zip(values, mask)]  # dense per-token terms
    for i, mr in enumerate(mask):
        rewards[i][int(sum(mr)) - 1] += scores[i]
    expected = ref_whiten(ref_returns(rewards, mask, gamma), mask)
    got = reinforce_pp_advantages(torch.tensor(rewards), torch.tensor(mask), gamma=gamma)
    assert torch.allclose(got, torch.tensor(expected), atol=1e-5)


@pytest.mark.parametrize("B,T,n_groups,seed", CASES)
def test_reinforce_pp_baseline_matches_loop(B, T, n_groups, seed):
    scores, groups, mask = random_batch(B, T, n_groups, seed)[:3]
    by = ref_groups(scores, groups)
    centred = [s - (sum(by[g]) / len(by[g]) if len(by[g]) > 1 else 0.0) for s, g in zip(scores, groups)]
    expected = ref_whiten([[c * m for m in mr] for c, mr in zip(centred, mask)], mask)
    got = reinforce_pp_baseline_advantages(*tensors(scores, groups, mask))
    assert torch.allclose(got, torch.tensor(expected), atol=1e-5)


@pytest.mark.parametrize("B,T,n_groups,seed", CASES)
@pytest.mark.parametrize("gamma,lam", [(1.0, 1.0), (0.99, 0.95)])
def test_gae_matches_loop(B, T, n_groups, seed, gamma, lam):
    _, _, mask, values = random_batch(B, T, n_groups, seed)
    rng = random.Random(seed)
    mask = [[m if rng.random() > 0.2 or t == 0 else 0.0 for t, m in enumerate(mr)] for mr in mask]  # gaps
    rewards = [[rng.uniform(-0.1, 0.1) * m for m in mr] for mr in mask]
    exp_adv, exp_ret = ref_gae(rewards, values, mask, gamma, lam)
    r, v, m = torch.tensor(rewards), torch.tensor(values), torch.tensor(mask)
    adv, ret = gae_advantages(r, v, m, gamma=gamma, lam=lam)
    assert torch.allclose(adv, torch.tensor(exp_adv), atol=1e-5)
    assert torch.allclose(ret, torch.tensor(exp_ret), atol=1e-5)


# ---------------------------------------------------------------- properties


@st.composite
def grouped_batches(draw, min_group=2):
    n_groups = draw(st.integers(1, 5))
    sizes = [draw(st.integers(min_group, 6)) for _ in range(n_groups)]
    groups = [g for g, n in enumerate(sizes) for _ in range(n)]
    random.Random(draw(st.integers(0, 10**6))).shuffle(groups)
    score = st.floats(-3, 3, allow_nan=False).map(lambda x: round(x, 3))
    scores = [draw(score) for _ in groups]
    T = draw(st.integers(1, 6))
    lengths = [draw(st.integers(1, T)) for _ in groups]
    mask = [[1.0 if t < n else 0.0 for t in range(T)] for n in lengths]
    return torch.tensor(scores), torch.tensor(groups), torch.tensor(mask)


def group_means(adv, groups):
    seq = adv[:, 0]  # every valid response has its first token valid
    return [seq[groups == g].mean().item() for g in groups.unique()]


@settings(max_examples=60, deadline=None)
@given(grouped_batches())
def test_grpo_and_rloo_have_zero_mean_within_each_group(batch):
    scores, groups, mask = batch
    for adv in (
        grpo_advantages(scores, groups, mask),
        grpo_advantages(scores, groups, mask, scale_by_std=False),
        rloo_advantages(scores, groups, mask),
    ):
        assert all(abs(m) < 1e-4 for m in group_means(adv, groups))
        assert torch.all(adv[mask == 0] == 0)


@settings(max_examples=60, deadline=None)
@given(grouped_batches())
def test_baseline_gives_every_group_the_same_mean(batch):
    # centring makes each group's mean 0; the global whitening then shifts every group by the same −μ/σ
    scores, groups, mask = batch
    adv = reinforce_pp_baseline_advantages(scores, groups, mask)
    means = group_means(adv, groups)
    assert max(means) - min(means) < 1e-3 * max(1.0, max(abs(m) for m in means))
    assert torch.all(adv[mask == 0] == 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=40), st.integers(0, 10**6))
def test_whitened_tokens_have_mean_0_and_unit_variance(xs, seed):
    rng = random.Random(seed)
    values = torch.tensor(xs, dtype=torch.float64).reshape(1, -1)
    keep = [1.0 if i < 2 or rng.random() < 0.7 else 0.0 for i in range(len(xs))]
    mask = torch.tensor([keep], dtype=torch.float64)
    out = masked_whiten(values, mask)
    valid = out[mask > 0]
    raw_var = values[mask > 0].var().item()
    assert abs(valid.mean().item()) < 1e-6
    assert valid.var().item() == pytest.approx(raw_var / (raw_var + 1e-8), abs=1e-6)
    assert torch.all(out[mask == 0] == 0)


def test_whiten_degenerate_masks_give_zeros():
    values = torch.tensor([[3.0, 4.0]])
    assert torch.equal(masked_whiten(values, torch.tensor([[1.0, 0.0]])), torch.zeros(1, 2))
    assert torch.equal(masked_whiten(values, torch.zeros(1, 2)), torch.zeros(1, 2))


@pytest.mark.parametrize("name", sorted(ADVANTAGE_ESTIMATORS))
def test_every_estimator_is_zero_on_padding_and_carries_no_grad(name):
    scores, groups, mask, values = random_batch(8, 6, 3, 5)
    vals = torch.tensor(values, requires_grad=True)
    s, g, m = tensors(scores, groups, mask)
    batch = AdvantageInputs.from_scores(s, g, m, values=vals)
    out = get_advantage_estimator(name)(batch)
    assert out.advantages.shape == (8, 6)
    assert torch.all(out.advantages[batch.mask == 0] == 0)
    assert not out.advantages.requires_grad
    assert (out.returns is not None) == ADVANTAGE_ESTIMATORS[name].needs_critic


# ---------------------------------------------------------------- registry and inputs


def test_registry_names_and_critic_flags():
    assert sorted(ADVANTAGE_ESTIMATORS) == ["gae", "grpo", "reinforce_pp", "reinforce_pp_baseline", "rloo"]
    assert {n for n, e in ADVANTAGE_ESTIMATORS.items() if e.needs_critic} == {"gae"}


def test_registry_matches_the_direct_functions():
    scores, groups, mask, values = random_batch(8, 6, 3, 7)
    s, g, m, v = torch.tensor(scores), torch.tensor(groups), torch.tensor(mask), torch.tensor(values)
    batch = AdvantageInputs.from_scores(s, g, m, values=v, gamma=0.9, lam=0.8, scale_by_std=False)
    def run(name):
        return get_advantage_estimator(name)(batch).advantages

    assert torch.equal(run("grpo"), grpo_advantages(s, g, m, scale_by_std=False))
    assert torch.equal(run("rloo"), rloo_advantages(s, g, m))
    assert torch.equal(run("reinforce_pp_baseline"), reinforce_pp_baseline_advantages(s, g, m))
    assert torch.equal(run("reinforce_pp"), reinforce_pp_advantages(batch.token_rewards, m, gamma=0.9))
    adv, ret = gae_advantages(batch.token_rewards, v, m, gamma=0.9, lam=0.8)
    out = get_advantage_estimator("gae")(batch)
    assert torch.equal(out.advantages, adv) and torch.equal(out.returns, ret)


def test_kl_in_reward_reaches_the_group_baseline():
    mask = torch.ones(2, 2)
    kl = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    scores, groups = torch.tensor([1.0, 1.0]), torch.tensor([0, 0])
    batch = AdvantageInputs.from_scores(scores, groups, mask, kl=kl, kl_coef=0.5)
    assert torch.allclose(batch.sequence_scores(), torch.tensor([0.0, 1.0]))  # 1 − 0.5·(1 + 1)
    adv = get_advantage_estimator("grpo")(batch).advantages
    assert adv[0, 0] < 0 < adv[1, 0]


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_advantage("grpo")(lambda batch: AdvantageOutputs(batch.token_rewards))


def test_unknown_estimator_lists_valid_names():
    with pytest.raises(ValueError, match="unknown advantage estimator 'ppo'.*'gae'.*'grpo'.*'rloo'"):
        get_advantage_estimator("ppo")


def test_gae_without_values_raises():
    batch = AdvantageInputs.from_scores(torch.ones(2), torch.tensor([0, 0]), torch.ones(2, 3))
    with pytest.raises(ValueError, match="needs a critic"):
        get_advantage_estimator("gae")(batch)


def test_inputs_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="group_ids"):
        AdvantageInputs(token_rewards=torch.zeros(2, 3), mask=torch.ones(2, 3), group_ids=torch.zeros(3))
    with pytest.raises(ValueError, match="values"):
        AdvantageInputs(token_rewards=torch.zeros(2, 3), mask=torch.ones(2, 3), group_ids=torch.zeros(2),
                        values=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="scores"):
        grpo_advantages(torch.zeros(3), torch.zeros(2), torch.ones(2, 3))
    longer = r"^token_rewards must have the mask's shape \(2, 3\), got \(2, 4\)"  # rewards longer than the mask
    with pytest.raises(ValueError, match=longer):
        gae_advantages(torch.zeros(2, 4), torch.zeros(2, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match=longer):
        reinforce_pp_advantages(torch.zeros(2, 4), torch.ones(2, 3))


@pytest.mark.parametrize("estimator", [grpo_advantages, rloo_advantages, reinforce_pp_baseline_advantages])
def test_integer_scores_are_refused_by_name(estimator):
    """Integer rewards (0/1 accuracy) made a torch dtype error deep inside the group statistics."""
    with pytest.raises(ValueError, match=r"^scores must be a floating-point tensor, got torch.int64"):
        estimator(torch.tensor([1, 0]), torch.tensor([0, 0]), torch.ones(2, 3))

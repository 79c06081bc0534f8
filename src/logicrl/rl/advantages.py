"""Advantage estimators (GRPO, RLOO, REINFORCE++, REINFORCE++-baseline, GAE) and their registry.

Pure tensor functions, no I/O, no gradients (advantages are constants for the policy loss).
Shapes: B responses, T response positions; `mask` [B, T] float 0/1; `group_ids` [B] integer, equal
for the responses to the same prompt. Every estimator returns advantages [B, T] that are zero where
mask is 0. Formulas mirror veRL `verl/trainer/ppo/core_algos.py` and `verl/utils/torch_functional.py`
(masked_whiten); docs/algorithms.md lists where we deliberately differ.

The registry gives every estimator one signature, `estimator(batch: AdvantageInputs) -> AdvantageOutputs`,
and a `needs_critic` flag, so the trainer never branches on an algorithm's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from logicrl.rl.kl import token_rewards_from_scores

WHITEN_EPS = 1e-8  # (x − μ) / sqrt(var + 1e-8), as veRL masked_whiten


def _check(scores: Tensor | None, group_ids: Tensor | None, mask: Tensor, token_rewards: Tensor | None = None) -> None:
    """Raise ValueError unless scores/group_ids are [B], scores floating-point, and mask and token_rewards
    [B, T]."""
    if mask.dim() != 2:
        raise ValueError(f"mask must be [B, T], got shape {tuple(mask.shape)}")
    for name, t in (("scores", scores), ("group_ids", group_ids)):
        if t is not None and tuple(t.shape) != (mask.shape[0],):
            raise ValueError(f"{name} must be [B] = [{mask.shape[0]}], got shape {tuple(t.shape)}")
    if scores is not None and not scores.is_floating_point():
        raise ValueError(f"scores must be a floating-point tensor, got {scores.dtype} (use scores.float())")
    if token_rewards is not None and token_rewards.shape != mask.shape:
        raise ValueError(f"token_rewards must have the mask's shape {tuple(mask.shape)}, "
                         f"got {tuple(token_rewards.shape)}")


def masked_whiten(values: Tensor, mask: Tensor) -> Tensor:
    """Whiten over all valid tokens of the batch: (x − μ) / sqrt(σ² + 1e-8), zero where mask is 0.

    μ = Σ x·m / N, σ² = Σ (x − μ)²·m / (N − 1) (unbiased, Bessel-corrected), N = Σ m. The mean is not
    added back (veRL shift_mean=True). N = 1 gives 0 (x = μ) and N = 0 gives all zeros, where veRL
    raises. Source: veRL torch_functional.masked_whiten / masked_var(unbiased=True).
    Shapes: values, mask [B, T] → [B, T].
    """
    mask = mask.to(values.dtype)
    n = mask.sum().clamp(min=1.0)
    mean = (values * mask).sum() / n
    mean = mean + ((values - mean) * mask).sum() / n  # second pass: exact mean for equal values
    var = ((values - mean).square() * mask).sum() / (n - 1.0).clamp(min=1.0)
    return (values - mean) * torch.rsqrt(var + WHITEN_EPS) * mask


def _group_stats(scores: Tensor, group_ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-response group size n, group mean and unbiased group std, each [B] (std 0 for n = 1).

    The mean gets a second, compensating pass, so a group of equal scores has s − mean = 0 exactly;
    a one-pass float32 mean can be an ulp off, which (s − mean) / (0 + eps) would blow up to ~0.1.
    """
    groups, index = torch.unique(group_ids, return_inverse=True)  # arbitrary ids → dense 0..G−1
    zeros = torch.zeros(groups.numel(), dtype=scores.dtype, device=scores.device)
    count = zeros.index_add(0, index, torch.ones_like(scores))
    mean = zeros.index_add(0, index, scores) / count
    mean = mean + zeros.index_add(0, index, scores - mean[index]) / count
    sq = zeros.index_add(0, index, (scores - mean[index]).square())
    std = torch.sqrt(sq / (count - 1.0).clamp(min=1.0))
    return count[index], mean[index], std[index]


@torch.no_grad()
def grpo_advantages(
    scores: Tensor, group_ids: Tensor, mask: Tensor, *, scale_by_std: bool = True, eps: float = 1e-6
) -> Tensor:
    """GRPO outcome advantage, the same value on every token of a response.

        A_i = (s_i − mean_g) / (std_g + eps)      std unbiased (GRPO, arXiv 2402.03300 §4.1.2)
        A_i =  s_i − mean_g                       scale_by_std=False (Dr.GRPO, arXiv 2503.20783)
    A group of one gets mean 0 and std 1 (so A_i = s_i / (1 + eps)), as veRL does.
    Source: veRL core_algos.compute_grpo_outcome_advantage (norm_adv_by_std_in_grpo).
    Shapes: scores [B], group_ids [B], mask [B, T] → [B, T].
    """
    _check(scores, group_ids, mask)
    count, mean, std = _group_stats(scores, group_ids)
    single = count == 1
    mean = torch.where(single, torch.zeros_like(mean), mean)
    std = torch.where(single, torch.ones_like(std), std)
    adv = (scores - mean) / (std + eps) if scale_by_std else scores - mean
    return adv.unsqueeze(-1) * mask.to(adv.dtype)


@torch.no_grad()
def rloo_advantages(scores: Tensor, group_ids: Tensor, mask: Tensor) -> Tensor:
    """RLOO advantage: each score minus the mean of the other scores in its group.

        A_i = s_i − (1/(n−1)) Σ_{j≠i} s_j = n/(n−1) · (s_i − mean_g)     (RLOO, arXiv 2402.14740)
    A group of one has no other sample, so A_i = 0 (no learning signal). veRL's loop version
    ("rloo") returns s_i there, its vectorized one ("rloo_vectorized") returns 0, as we do.
    Source: veRL core_algos.compute_rloo_outcome_advantage / compute_rloo_vectorized_outcome_advantage.
    Shapes: scores [B], group_ids [B], mask [B, T] → [B, T].
    """
    _check(scores, group_ids, mask)
    count, mean, _ = _group_stats(scores, group_ids)
    adv = (count * scores - count * mean) / (count - 1.0).clamp(min=1.0)
    adv = torch.where(count > 1, adv, torch.zeros_like(adv))
    return adv.unsqueeze(-1) * mask.to(adv.dtype)


def discounted_returns(token_rewards: Tensor, mask: Tensor, gamma: float = 1.0) -> Tensor:
    """Reward-to-go G_t = r_t + γ·m_{t+1}·G_{t+1}, computed right to left.

    On a right-padded response this is G_t = Σ_{k≥t} γ^(k−t) r_k over its valid tokens; the running
    return is reset after a masked position (veRL: "reset after EOS"). Zero where mask is 0.
    Source: veRL core_algos.compute_reinforce_plus_plus_outcome_advantage (its returns loop).
    Shapes: token_rewards, mask [B, T] → [B, T].
    """
    mask = mask.to(token_rewards.dtype)
    returns = torch.zeros_like(token_rewards)
    running = torch.zeros_like(token_rewards[:, 0])
    for t in reversed(range(token_rewards.shape[1])):
        running = token_rewards[:, t] + gamma * running
        returns[:, t] = running
        running = running * mask[:, t]
    return returns * mask


@torch.no_grad()
def reinforce_pp_advantages(token_rewards: Tensor, mask: Tensor, *, gamma: float = 1.0) -> Tensor:
    """REINFORCE++ advantage: per-token return, whitened over every valid token of the batch.

        G_t = Σ_{k≥t} γ^(k−t) r_k,   A_t = (G_t − μ) / sqrt(σ² + 1e-8)    (REINFORCE++, arXiv 2501.03262)
    r_t is the score on the last valid token, minus β·KL_t on every token when KL is in the reward
    (see `token_rewards_from_scores`); μ, σ² (unbiased) are over all valid tokens of the batch.
    Source: veRL core_algos.compute_reinforce_plus_plus_outcome_advantage.
    Shapes: token_rewards, mask [B, T] → [B, T].
    """
    _check(None, None, mask, token_rewards)
    return masked_whiten(discounted_returns(token_rewards, mask, gamma), mask)


@torch.no_grad()
def reinforce_pp_baseline_advantages(scores: Tensor, group_ids: Tensor, mask: Tensor) -> Tensor:
    """REINFORCE++-baseline: subtract the group mean score, broadcast to tokens, whiten over the batch.

        a_i = s_i − mean_g (a group of one keeps s_i),   A_it = whiten(a_i · m_it)
    where whiten is `masked_whiten` over all valid tokens (REINFORCE++, arXiv 2501.03262 §3).
    Source: veRL core_algos.compute_reinforce_plus_plus_baseline_outcome_advantage.
    Shapes: scores [B], group_ids [B], mask [B, T] → [B, T].
    """
    _check(scores, group_ids, mask)
    count, mean, _ = _group_stats(scores, group_ids)
    centered = scores - torch.where(count == 1, torch.zeros_like(mean), mean)
    return masked_whiten(centered.unsqueeze(-1) * mask.to(scores.dtype), mask)


@torch.no_grad()
def gae_advantages(
    token_rewards: Tensor, values: Tensor, mask: Tensor, *, gamma: float = 1.0, lam: float = 1.0
) -> tuple[Tensor, Tensor]:
    """Generalized advantage estimation (GAE, arXiv 1506.02438) for PPO; returns (advantages, returns).

    Right to left over valid tokens, with V_{T} = 0 after the last one:
        δ_t = r_t + γ·V_{t+1} − V_t,   A_t = δ_t + γλ·A_{t+1},   R_t = A_t + V_t
    Masked positions are skipped: the next value and the running A carry over them unchanged (veRL's
    handling of observation tokens). Advantages are then whitened over valid tokens (`masked_whiten`);
    returns are not. Both are zero where mask is 0.
    Source: veRL core_algos.compute_gae_advantage_return.
    Shapes: token_rewards, values, mask [B, T] → ([B, T], [B, T]).
    """
    _check(None, None, mask, token_rewards)
    if values.shape != mask.shape:
        raise ValueError(f"values must have the mask's shape {tuple(mask.shape)}, got {tuple(values.shape)}")
    mask = mask.to(values.dtype)
    next_value = torch.zeros_like(values[:, 0])
    running = torch.zeros_like(values[:, 0])
    advantages = torch.zeros_like(values)
    for t in reversed(range(values.shape[1])):
        delta = token_rewards[:, t] + gamma * next_value - values[:, t]
        m = mask[:, t]
        running = m * (delta + gamma * lam * running) + (1.0 - m) * running
        next_value = m * values[:, t] + (1.0 - m) * next_value
        advantages[:, t] = running
    returns = (advantages + values) * mask
    return masked_whiten(advantages, mask), returns


# ---------------------------------------------------------------- registry


@dataclass(frozen=True)
class AdvantageInputs:
    """Everything any estimator may need, so all estimators share one signature.

    token_rewards  [B, T] score on the last valid token, −β·KL_t on valid tokens when KL is in the reward
    mask           [B, T] float 0/1 response mask
    group_ids      [B]    integer, equal for responses to the same prompt
    values         [B, T] critic values, or None (required by estimators with needs_critic)
    gamma, lam     discount and GAE λ; scale_by_std: GRPO's division by the group std (False = Dr.GRPO)
    eps            GRPO's std epsilon
    Outcome estimators (grpo, rloo, reinforce_pp_baseline) use `sequence_scores()` = Σ_t r_t·m_t, so a
    KL penalty in the reward reaches their group baselines exactly as in veRL.
    """

    token_rewards: Tensor
    mask: Tensor
    group_ids: Tensor
    values: Tensor | None = None
    gamma: float = 1.0
    lam: float = 1.0
    scale_by_std: bool = True
    eps: float = 1e-6

    def __post_init__(self) -> None:
        _check(None, self.group_ids, self.mask)
        for name, t in (("token_rewards", self.token_rewards), ("values", self.values)):
            if t is not None and t.shape != self.mask.shape:
                raise ValueError(
                    f"{name} must have the mask's shape {tuple(self.mask.shape)}, got {tuple(t.shape)}"
                )

    @classmethod
    def from_scores(
        cls, scores: Tensor, group_ids: Tensor, mask: Tensor, *, kl: Tensor | None = None,
        kl_coef: float = 0.0, **options,
    ) -> AdvantageInputs:
        """Build the inputs from scalar scores [B] (and KL [B, T] when KL goes in the reward)."""
        rewards = token_rewards_from_scores(scores, mask, kl=kl, kl_coef=kl_coef)
        return cls(token_rewards=rewards, mask=mask, group_ids=group_ids, **options)

    def sequence_scores(self) -> Tensor:
        """Total reward of each response, Σ_t r_t·m_t [B] (the score, minus β·ΣKL if KL is in the reward)."""
        return (self.token_rewards * self.mask.to(self.token_rewards.dtype)).sum(dim=-1)


class AdvantageOutputs(NamedTuple):
    """advantages [B, T], zero where mask is 0; returns [B, T] value targets (None without a critic)."""

    advantages: Tensor
    returns: Tensor | None = None


@dataclass(frozen=True)
class AdvantageEstimator:
    """A registered estimator, called with AdvantageInputs. `needs_critic`: the trainer runs a value head;
    `needs_groups`: it compares responses to the same puzzle (``rollout.group_size`` must be ≥ 2)."""

    name: str
    fn: Callable[[AdvantageInputs], AdvantageOutputs]
    needs_critic: bool
    needs_groups: bool = False

    def __call__(self, batch: AdvantageInputs) -> AdvantageOutputs:
        if self.needs_critic and batch.values is None:
            raise ValueError(f"advantage estimator {self.name!r} needs a critic: pass values [B, T]")
        return self.fn(batch)


ADVANTAGE_ESTIMATORS: dict[str, AdvantageEstimator] = {}


def register_advantage(name: str, *, needs_critic: bool = False, needs_groups: bool = False):
    """Decorator: register `fn(batch: AdvantageInputs) -> AdvantageOutputs` under `name`.

    Raises ValueError if the name is taken (veRL's advantage registry does the same).
    """

    def decorator(fn: Callable[[AdvantageInputs], AdvantageOutputs]):
        if name in ADVANTAGE_ESTIMATORS:
            raise ValueError(f"advantage estimator {name!r} is already registered")
        ADVANTAGE_ESTIMATORS[name] = AdvantageEstimator(name=name, fn=fn, needs_critic=needs_critic,
                                                        needs_groups=needs_groups)
        return fn

    return decorator


def get_advantage_estimator(name: str) -> AdvantageEstimator:
    """Look up a registered estimator; an unknown name raises ValueError listing the valid names."""
    try:
        return ADVANTAGE_ESTIMATORS[name]
    except KeyError:
        raise ValueError(
            f"unknown advantage estimator {name!r}; valid names: {sorted(ADVANTAGE_ESTIMATORS)}"
        ) from None


# Registered at the bottom, as in style.md §3. Dr.GRPO is "grpo" with scale_by_std=False.
@register_advantage("grpo", needs_groups=True)
def _grpo(batch: AdvantageInputs) -> AdvantageOutputs:
    scores = batch.sequence_scores()
    adv = grpo_advantages(scores, batch.group_ids, batch.mask, scale_by_std=batch.scale_by_std, eps=batch.eps)
    return AdvantageOutputs(adv)


@register_advantage("rloo", needs_groups=True)
def _rloo(batch: AdvantageInputs) -> AdvantageOutputs:
    return AdvantageOutputs(rloo_advantages(batch.sequence_scores(), batch.group_ids, batch.mask))


@register_advantage("reinforce_pp")
def _reinforce_pp(batch: AdvantageInputs) -> AdvantageOutputs:
    return AdvantageOutputs(reinforce_pp_advantages(batch.token_rewards, batch.mask, gamma=batch.gamma))


@register_advantage("reinforce_pp_baseline", needs_groups=True)
def _reinforce_pp_baseline(batch: AdvantageInputs) -> AdvantageOutputs:
    scores = batch.sequence_scores()
    return AdvantageOutputs(reinforce_pp_baseline_advantages(scores, batch.group_ids, batch.mask))


@register_advantage("gae", needs_critic=True)
def _gae(batch: AdvantageInputs) -> AdvantageOutputs:
    adv, returns = gae_advantages(
        batch.token_rewards, batch.values, batch.mask, gamma=batch.gamma, lam=batch.lam
    )
    return AdvantageOutputs(adv, returns)

"""KL estimators, KL controllers, and the two places KL can go: the reward or the loss.

Pure tensor functions plus two tiny stateful controllers, no I/O. With d = ℓ − ℓ_ref (current minus
reference log-prob of the sampled token), Schulman's estimators of KL(π ‖ π_ref)
(http://joschu.net/blog/kl-approx.html) are
    k1 = d            unbiased, high variance, can be negative
    k2 = ½·d²         biased, low variance; its gradient is the unbiased KL gradient on-policy
    k3 = e^(−d) + d − 1   unbiased, low variance, never negative (Logic-RL's choice, as a loss term)
    abs = |d|
    k3+ = value of k3, gradient of k2 (straight-through; veRL "k3+"/"low_var_kl+")

Logic-RL (arXiv 2502.14768) puts β·agg(k3) in the loss (`kl_loss`); classic RLHF/PPO subtracts
β·KL_t from the token rewards (`token_rewards_from_scores`). Source: veRL core_algos.kl_penalty,
kl_penalty_forward, AdaptiveKLController, FixedKLController, ray_trainer.apply_kl_penalty.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from logicrl.rl.losses import aggregate, check_same_shape

KLFn = Callable[[Tensor, Tensor], Tensor]

K3_LOG_RATIO_CLAMP = 20.0  # veRL clamps ℓ_ref − ℓ to ±20 before exp
K3_MAX = 10.0  # veRL clamps k3 to [−10, 10]; k3 ≥ 0, so we clamp to [0, 10]


def _k1(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """k1 = d = ℓ − ℓ_ref."""
    return logp - ref_logp


def _k2(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """k2 = ½·d²."""
    return 0.5 * (logp - ref_logp).square()


def _abs(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """abs = |d|."""
    return (logp - ref_logp).abs()


def _k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """k3 = e^x − x − 1 with x = clamp(ℓ_ref − ℓ, ±20) = −d, clamped to [0, 10].

    Written as expm1(x) − x, which is exact for small |x| where e^x − x − 1 cancels catastrophically
    and could round below 0 in float32.
    """
    x = torch.clamp(ref_logp - logp, min=-K3_LOG_RATIO_CLAMP, max=K3_LOG_RATIO_CLAMP)
    return torch.clamp(torch.expm1(x) - x, min=0.0, max=K3_MAX)


def _k3_straight_through(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """k3+ : forward value k3, backward gradient of k2 (= d), via k2 − sg(k2) + sg(k3)."""
    k2 = _k2(logp, ref_logp)
    return k2 - k2.detach() + _k3(logp, ref_logp).detach()


def kl_estimate(logp: Tensor, ref_logp: Tensor, kind: str) -> Tensor:
    """Per-token KL(π ‖ π_ref) estimate from sampled-token log-probs.

    With d = ℓ − ℓ_ref (Schulman, http://joschu.net/blog/kl-approx.html):
        "k1"  d
        "k2"  ½·d²
        "k3"  e^(−d) + d − 1, d clamped to ±20 and the result to [0, 10]   (veRL "low_var_kl")
        "abs" |d|
        "k3+" value of k3, gradient of k2 (straight-through)               (veRL "low_var_kl+")
    Source: veRL core_algos.kl_penalty / kl_penalty_forward (one name per estimator here, no aliases).
    Shapes: logp, ref_logp [B, T] (any equal shapes) → same shape. Unknown kind: ValueError listing kinds.
    """
    try:
        fn = KL_ESTIMATORS[kind]
    except KeyError:
        raise ValueError(f"unknown KL estimator {kind!r}; valid kinds: {sorted(KL_ESTIMATORS)}") from None
    check_same_shape(logp=logp, ref_logp=ref_logp)
    return fn(logp, ref_logp)


def kl_loss(
    logp: Tensor,
    ref_logp: Tensor,
    mask: Tensor,
    *,
    kind: str = "k3",
    agg: str = "token-mean",
    norm_constant: float | None = None,
) -> Tensor:
    """KL as a loss term (Logic-RL, GRPO): aggregate(kl_estimate(ℓ, ℓ_ref, kind), m, agg).

    The trainer does not call it: `logicrl.rl.update.policy_micro_loss` computes kl_estimate once (its masked
    mean is the logged ``kl``) and adds β·aggregate(kl, m, algorithm.loss_agg) to the policy loss itself, the
    value of β·kl_loss(…, agg=algorithm.loss_agg) (Logic-RL arXiv 2502.14768 uses kind="k3", β = 0.001; GRPO
    arXiv 2402.03300 eq. 4). Source: veRL dp_actor (use_kl_loss, kl_loss_type).
    Shapes: logp, ref_logp, mask [B, T] → scalar.
    """
    return aggregate(kl_estimate(logp, ref_logp, kind), mask, agg, norm_constant=norm_constant)


def token_rewards_from_scores(
    scores: Tensor, mask: Tensor, *, kl: Tensor | None = None, kl_coef: float = 0.0
) -> Tensor:
    """Token-level rewards: the score on each response's last valid token, minus β·KL_t on valid tokens.

        r_it = s_i·[t = last valid position of i] − β·KL_it·m_it,   β = kl_coef

    "Last valid position" is the largest t with m_it = 1 (a row with no valid token gets no score).
    This is KL in the reward (PPO/RLHF, Ziegler et al. arXiv 1909.08593; REINFORCE++ arXiv 2501.03262
    eq. 8); pass kl=None (or kl_coef=0) when KL goes in the loss instead, as in Logic-RL.
    Source: veRL ray_trainer.apply_kl_penalty + reward placement at valid_response_length − 1.
    Shapes: scores [B], mask [B, T], kl [B, T] or None → [B, T].
    """
    if scores.dim() != 1 or mask.dim() != 2 or scores.shape[0] != mask.shape[0]:
        raise ValueError(
            f"expected scores [B] and mask [B, T], got {tuple(scores.shape)} and {tuple(mask.shape)}"
        )
    mask = mask.to(scores.dtype)
    positions = torch.arange(mask.shape[1], device=mask.device)
    last = torch.where(mask > 0, positions, -1).amax(dim=-1)  # [B], −1 for an empty row
    has_token = last >= 0
    rewards = torch.zeros_like(mask)
    rows = torch.arange(mask.shape[0], device=mask.device)[has_token]
    rewards[rows, last[has_token]] = scores[has_token]
    if kl is not None and kl_coef != 0.0:
        if kl.shape != mask.shape:
            raise ValueError(f"kl must have the mask's shape {tuple(mask.shape)}, got {tuple(kl.shape)}")
        rewards = rewards - kl_coef * kl.to(rewards.dtype) * mask
    return rewards


class FixedKLController:
    """Constant KL coefficient β: `coef` never changes; `update` is a no-op.

    Source: veRL core_algos.FixedKLController.
    """

    def __init__(self, coef: float) -> None:
        if coef < 0:
            raise ValueError(f"KL coefficient must be >= 0, got {coef}")
        self.coef = float(coef)

    def update(self, current_kl: float, n_steps: int) -> None:
        """No-op: a fixed coefficient ignores the measured KL."""


class AdaptiveKLController:
    """Adaptive KL coefficient (Ziegler et al. 2019, arXiv 1909.08593, section 2.2).

    After each batch of n_steps samples with measured KL (current_kl):
        e    = clip(current_kl / target − 1, −0.2, 0.2)
        coef ← coef · (1 + e · n_steps / horizon)
    so β grows while KL is above target and shrinks while below. Source: veRL core_algos.AdaptiveKLController.
    """

    def __init__(self, init_coef: float, target: float, horizon: float) -> None:
        if init_coef < 0 or target <= 0 or horizon <= 0:
            raise ValueError(
                f"need init_coef >= 0, target > 0, horizon > 0; got {init_coef}, {target}, {horizon}"
            )
        self.coef = float(init_coef)
        self.target = float(target)
        self.horizon = float(horizon)

    def update(self, current_kl: float, n_steps: int) -> None:
        """Multiply `coef` by 1 + clip(current_kl/target − 1, ±0.2) · n_steps / horizon."""
        error = min(max(float(current_kl) / self.target - 1.0, -0.2), 0.2)
        self.coef *= 1.0 + error * n_steps / self.horizon


KL_ESTIMATORS: dict[str, KLFn] = {}


def register_kl_estimator(name: str, fn: KLFn) -> KLFn:
    """Add ``fn(logp, ref_logp) -> per-token KL estimate`` (same shape) as KL estimator ``name``.

    Raises ValueError if the name is taken (one name per estimator: no aliases)."""
    if name in KL_ESTIMATORS:
        raise ValueError(f"KL estimator {name!r} is already registered")
    KL_ESTIMATORS[name] = fn
    return fn


# Registered at the bottom, as in style.md §3: one name per estimator, one signature (logp, ref_logp).
register_kl_estimator("k1", _k1)
register_kl_estimator("k2", _k2)
register_kl_estimator("k3", _k3)
register_kl_estimator("abs", _abs)
register_kl_estimator("k3+", _k3_straight_through)

"""The policy-loss registry: the clipped PPO loss (``vanilla``), GSPO and CISPO behind one signature.

Every entry is called as

    loss, stats = get_policy_loss(name)(logp, old_logp, advantages, mask, clip_low=..., clip_high=...,
                                        dual_clip=..., agg=..., norm_constant=..., is_weights=None)

with ℓ = logp, ℓ_old = old_logp, A = advantages and m = mask, all [B, T]; `loss` is a scalar and `stats`
detached scalars (each entry returns at least ``clip_frac`` and ``approx_kl`` = mean(ℓ_old − ℓ)). The
properties the trainer and the config read live on the entry, never in lists of names:

    clip         default (ε_low, ε_high) when ``algorithm.clip_low/clip_high`` are unset
    loss_agg     the aggregation its objective is defined with (None: any; the config refuses another)
    token_local  a token's loss reads only its own ℓ, ℓ_old and A, so where A_t = 0 it is 0 with zero
                 gradient (the update may then skip the tokens past a response's last A_t ≠ 0:
                 `logicrl.rl.update.gradient_lengths`); GSPO's sequence ratio reads every token

Formulas and sources are in each function's docstring and in docs/algorithms.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from logicrl.rl.losses import LOG_RATIO_CLAMP, aggregate, masked_mean, policy_loss_with_stats

PolicyLossFn = Callable[..., tuple[Tensor, dict[str, Tensor]]]

GSPO_LOG_RATIO_MAX = 10.0  # veRL clamps GSPO's log s_i,t at 10 before exp


@dataclass(frozen=True)
class PolicyLoss:
    """A registered policy loss and the properties the trainer and the config read (see the module doc)."""

    name: str
    fn: PolicyLossFn
    clip: tuple[float, float]
    loss_agg: str | None = None
    token_local: bool = True

    def __call__(self, logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, *, clip_low: float,
                 clip_high: float, dual_clip: float | None, agg: str, norm_constant: float | None,
                 is_weights: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        return self.fn(logp, old_logp, advantages, mask, clip_low=clip_low, clip_high=clip_high,
                       dual_clip=dual_clip, agg=agg, norm_constant=norm_constant, is_weights=is_weights)


POLICY_LOSSES: dict[str, PolicyLoss] = {}


def register_policy_loss(name: str, *, clip: tuple[float, float], loss_agg: str | None = None,
                         token_local: bool = True):
    """Decorator: register ``fn(logp, old_logp, advantages, mask, *, clip_low, clip_high, dual_clip, agg,
    norm_constant, is_weights) -> (loss, stats)`` under ``name`` (``is_weights``: detached per-token weights that
    multiply the per-token loss, None = 1); ``token_local`` as in the module doc. Raises ValueError if the name
    is taken."""

    def decorator(fn: PolicyLossFn) -> PolicyLossFn:
        if name in POLICY_LOSSES:
            raise ValueError(f"policy loss {name!r} is already registered")
        POLICY_LOSSES[name] = PolicyLoss(name, fn, clip, loss_agg, token_local)
        return fn

    return decorator


def get_policy_loss(name: str) -> PolicyLoss:
    """The registered loss ``name``; an unknown name raises ValueError listing the valid names."""
    try:
        return POLICY_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown policy loss {name!r}; valid names: {sorted(POLICY_LOSSES)}") from None


def gspo_loss_with_stats(
    logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, *, clip_low: float = 3e-4,
    clip_high: float = 4e-4, dual_clip: float | None = None, agg: str = "seq-mean-token-mean",
    norm_constant: float | None = None, is_weights: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """GSPO: the clipped surrogate on a sequence-level ratio, with a per-token gradient (GSPO-token).

    With n_i = Σ_t m_it and d = ℓ − ℓ_old:
        log s_i   = (1/n_i) Σ_t d_it·m_it                s_i = (π(y_i)/π_old(y_i))^(1/|y_i|)
        log s_it  = sg(log s_i) + ℓ_it − sg(ℓ_it)        value s_i, gradient s_i·∇ℓ_it; clamped at 10
        L_it      = max(−A_it·s_it, −A_it·clip(s_it, 1 − ε_low, 1 + ε_high))
    then loss = aggregate(L·w, m, agg) (w = ``is_weights``, default 1). With one advantage per response and agg = seq-mean-token-mean this is
    GSPO's objective (1/G) Σ_i max(−A_i s_i, −A_i clip(s_i)) in value and gradient. ε is small (the paper's
    3e-4 / 4e-4): s_i is a geometric mean. `dual_clip` does not apply.

    Stats: clip_frac (share of valid tokens whose clipped term is the larger), approx_kl = mean(ℓ_old − ℓ).
    Sources: Zheng et al., GSPO, arXiv 2507.18071 (eq. 5–7, 10–11); veRL core_algos.compute_policy_loss_gspo.
    Shapes: logp, old_logp, advantages, mask [B, T] → (scalar, dict of scalars).
    """
    mask = mask.to(logp.dtype)
    log_ratio = (logp - old_logp) * mask
    log_seq = log_ratio.sum(-1) / mask.sum(-1).clamp(min=1.0)  # log s_i
    log_token = logp - logp.detach() + log_seq.detach().unsqueeze(-1)
    ratio = torch.exp(torch.clamp(log_token, max=GSPO_LOG_RATIO_MAX))
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    per_token = torch.maximum(unclipped, clipped)
    if is_weights is not None:
        per_token = per_token * is_weights
    loss = aggregate(per_token, mask, agg, norm_constant=norm_constant)
    return loss, {"clip_frac": masked_mean((clipped > unclipped).to(logp.dtype), mask).detach(),
                  "approx_kl": masked_mean(-log_ratio, mask).detach()}


def cispo_loss_with_stats(
    logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, *, clip_low: float = 1.0,
    clip_high: float = 0.2, dual_clip: float | None = None, agg: str = "token-mean",
    norm_constant: float | None = None, is_weights: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """CISPO: REINFORCE with the clipped, detached importance weight; no token's gradient is dropped.

    With ρ = exp(clamp(ℓ − ℓ_old, ±20)):
        w_t = sg(clip(ρ_t, 1 − ε_low, 1 + ε_high))
        L_t = −w_t·A_t·ℓ_t                              gradient −w_t·A_t·∇ℓ_t on every valid token
    then loss = aggregate(L·w, m, agg) (w = ``is_weights``, default 1; token-mean in the paper). The default ε_low = 1 leaves ρ unbounded
    below (the paper tunes only ε_high; veRL's example sets clip_ratio_low = 10, the same thing). The loss's
    value is not a surrogate of the return, only its gradient is meaningful. `dual_clip` does not apply.

    Stats: clip_frac (share of valid tokens whose weight is clipped), approx_kl = mean(ℓ_old − ℓ).
    Sources: MiniMax-M1, arXiv 2506.13585 (eq. 4–5); veRL core_algos.compute_policy_loss_cispo.
    Shapes: logp, old_logp, advantages, mask [B, T] → (scalar, dict of scalars).
    """
    mask = mask.to(logp.dtype)
    log_ratio = torch.clamp(logp - old_logp, min=-LOG_RATIO_CLAMP, max=LOG_RATIO_CLAMP)
    ratio = torch.exp(log_ratio).detach()
    weight = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    per_token = -weight * advantages * logp
    if is_weights is not None:
        per_token = per_token * is_weights
    loss = aggregate(per_token, mask, agg, norm_constant=norm_constant)
    return loss, {"clip_frac": masked_mean((weight != ratio).to(logp.dtype), mask).detach(),
                  "approx_kl": masked_mean(-log_ratio, mask).detach()}


# Registered at the bottom, as in style.md §3.
register_policy_loss("vanilla", clip=(0.2, 0.2))(policy_loss_with_stats)
register_policy_loss("gspo", clip=(3e-4, 4e-4), loss_agg="seq-mean-token-mean", token_local=False)(gspo_loss_with_stats)
register_policy_loss("cispo", clip=(1.0, 0.2))(cispo_loss_with_stats)


def tis_weights(old_logp: Tensor, rollout_logp: Tensor, mask: Tensor, cap: float) -> tuple[Tensor, dict[str, Tensor]]:
    """Truncated importance sampling between the sampler and the trainer: w_t = min(ρ_t, C), detached, with
    ρ_t = exp(clamp(ℓ_old − ℓ_rollout, ±20)), ℓ_old the trainer's log-prob of the sampled token at rollout time and
    ℓ_rollout the sampler's (which differ by kernels, precision and batching). The policy loss is multiplied by w.

    Stats over valid tokens: tis/ratio_mean, tis/clip_frac (share with ρ > C), tis/log_ratio_abs = mean|ℓ_old −
    ℓ_rollout|. Sources: Yao et al., "Your efficient RL framework secretly brings you off-policy RL training"
    (https://fengyao.notion.site/off-policy-rl, 2025); veRL algorithm.rollout_correction (rollout_is=token,
    rollout_is_threshold). Shapes: old_logp, rollout_logp, mask [B, T] → ([B, T], dict of scalars).
    """
    mask = mask.to(old_logp.dtype)
    log_ratio = torch.clamp(old_logp - rollout_logp, min=-LOG_RATIO_CLAMP, max=LOG_RATIO_CLAMP).detach()
    ratio = torch.exp(log_ratio)
    stats = {"tis/ratio_mean": masked_mean(ratio, mask), "tis/clip_frac": masked_mean((ratio > cap).to(mask.dtype), mask),
             "tis/log_ratio_abs": masked_mean(log_ratio.abs(), mask)}
    return torch.clamp(ratio, max=cap), stats

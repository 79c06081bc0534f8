"""Loss aggregation, the clipped policy loss and the clipped value loss.

Pure tensor functions, no I/O. Notation used in every docstring:
    B responses, T response positions, m the response mask [B, T] (float 0/1),
    ℓ current log-prob, ℓ_old rollout-time log-prob, ρ = exp(ℓ − ℓ_old), A the advantage.

Formulas follow veRL `verl/trainer/ppo/core_algos.py` (agg_loss, compute_policy_loss_vanilla,
compute_value_loss) and `verl/utils/torch_functional.py` (masked_mean);
docs/algorithms.md lists where we deliberately differ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

AggregateFn = Callable[[Tensor, Tensor, "float | None"], Tensor]

LOG_RATIO_CLAMP = 20.0  # |ℓ − ℓ_old| is clamped before exp, as veRL does, so ρ never overflows


@dataclass(frozen=True)
class Aggregation:
    """A registered aggregation mode: ``fn(loss, mask, norm_constant) -> scalar``.

    ``per_sequence``: it averages over non-empty responses (so a micro-batch weighs its share of responses,
    not of tokens: `logicrl.rl.batch.share`); ``uses_norm_constant``: it divides by a constant C that the
    trainer sets to the generation budget (Dr.GRPO)."""

    name: str
    fn: AggregateFn
    per_sequence: bool
    uses_norm_constant: bool = False

    def __call__(self, loss: Tensor, mask: Tensor, norm_constant: float | None) -> Tensor:
        return self.fn(loss, mask, norm_constant)


AGGREGATIONS: dict[str, Aggregation] = {}


def register_aggregation(name: str, fn: AggregateFn, *, per_sequence: bool,
                         uses_norm_constant: bool = False) -> AggregateFn:
    """Add ``fn(loss [B, T], mask [B, T], norm_constant) -> scalar`` as aggregation mode ``name``.

    Raises ValueError if the name is taken (one name per concept, as every registry here)."""
    if name in AGGREGATIONS:
        raise ValueError(f"aggregation mode {name!r} is already registered")
    AGGREGATIONS[name] = Aggregation(name, fn, per_sequence, uses_norm_constant)
    return fn


def get_aggregation(name: str) -> Aggregation:
    """The registered mode ``name``; an unknown name raises ValueError listing the valid modes."""
    try:
        return AGGREGATIONS[name]
    except KeyError:
        raise ValueError(f"unknown aggregation mode {name!r}; valid modes: {sorted(AGGREGATIONS)}") from None


def check_same_shape(**tensors: Tensor) -> None:
    """Raise ValueError unless every tensor has the first one's shape (broadcasting one of them, e.g. per-sequence
    advantages [B, 1] against [B, T], would compute something else without a word)."""
    (first, shape), *rest = ((name, tuple(t.shape)) for name, t in tensors.items())
    for name, other in rest:
        if other != shape:
            raise ValueError(f"{name} must have {first}'s shape {shape}, got {other}")


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of `values` over the positions where `mask` is 1: Σ v·m / max(Σ m, 1).

    Shapes: values and mask broadcastable to each other (typically [B, T]); returns a scalar.
    An all-zero mask gives 0 instead of NaN (veRL adds 1e-8 to the denominator instead).
    """
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


# ---------------------------------------------------------------- aggregation modes


def _token_mean(loss: Tensor, mask: Tensor, norm_constant: float | None) -> Tensor:
    """token-mean: Σ_{i,t} L·m / Σ_{i,t} m (every valid token in the batch weighs the same; DAPO)."""
    return masked_mean(loss, mask)


def _seq_weights(mask: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sequence token counts n_i [B] and the number of non-empty sequences (≥ 1, scalar)."""
    counts = mask.sum(dim=-1)
    n_seqs = (counts > 0).to(mask.dtype).sum().clamp(min=1.0)
    return counts, n_seqs


def _seq_mean_token_mean(loss: Tensor, mask: Tensor, norm_constant: float | None) -> Tensor:
    """seq-mean-token-mean: (1/B') Σ_i (Σ_t L·m / n_i) over the B' non-empty sequences (GRPO paper)."""
    counts, n_seqs = _seq_weights(mask)
    per_seq = (loss * mask).sum(dim=-1) / counts.clamp(min=1.0)
    return per_seq.sum() / n_seqs


def _seq_mean_token_sum(loss: Tensor, mask: Tensor, norm_constant: float | None) -> Tensor:
    """seq-mean-token-sum: (1/B') Σ_i Σ_t L·m over the B' non-empty sequences."""
    _, n_seqs = _seq_weights(mask)
    return (loss * mask).sum() / n_seqs


def _seq_mean_token_sum_norm(loss: Tensor, mask: Tensor, norm_constant: float | None) -> Tensor:
    """seq-mean-token-sum-norm (Dr.GRPO): (1/B') Σ_i Σ_t L·m / C, C = norm_constant or T."""
    constant = float(mask.shape[-1]) if norm_constant is None else float(norm_constant)
    if constant <= 0:
        raise ValueError(f"norm_constant must be > 0, got {constant}")
    _, n_seqs = _seq_weights(mask)
    return (loss * mask).sum() / (n_seqs * constant)


def aggregate(
    loss_per_token: Tensor, mask: Tensor, mode: str, *, norm_constant: float | None = None
) -> Tensor:
    """Reduce a per-token loss [B, T] to a scalar under one of the AGGREGATIONS modes.

    Formulas (L per-token loss, m mask, n_i = Σ_t m_it, B' = number of sequences with n_i > 0):
        token-mean               Σ_{i,t} L·m / Σ_{i,t} m                     (veRL default, DAPO 2503.14476)
        seq-mean-token-mean      (1/B') Σ_i (1/n_i) Σ_t L·m                  (GRPO, arXiv 2402.03300)
        seq-mean-token-sum       (1/B') Σ_i Σ_t L·m
        seq-mean-token-sum-norm  (1/B') Σ_i Σ_t L·m / C                      (Dr.GRPO, arXiv 2503.20783)
    C is `norm_constant`, default T = mask.shape[-1]. Dr.GRPO's C is the generation budget (max new
    tokens): pass it explicitly when batches are padded only to their longest response, or C changes
    from batch to batch (veRL 0.9.1's ``actor.loss_scale_factor``; the trainer passes max_response_tokens).

    Source: veRL core_algos.agg_loss. Shapes: loss_per_token [B, T], mask [B, T] → scalar.
    Raises ValueError naming the valid modes for an unknown `mode`.
    """
    return get_aggregation(mode)(loss_per_token, mask.to(loss_per_token.dtype), norm_constant)


# ---------------------------------------------------------------- policy loss


def policy_loss_with_stats(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = 3.0,
    agg: str = "token-mean",
    norm_constant: float | None = None,
    is_weights: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Clipped surrogate policy loss with dual clip, plus diagnostics.

    Per token, with ρ = exp(clamp(ℓ − ℓ_old, ±20)):
        L_clip = max(−A·ρ, −A·clip(ρ, 1 − clip_low, 1 + clip_high))        (PPO, arXiv 1707.06347;
                                                                             asymmetric ε as DAPO 2503.14476)
        L      = min(L_clip, −A·c) if A < 0 else L_clip, c = dual_clip     (dual-clip PPO, arXiv 1912.09729)
    then loss = aggregate(L·w, m, agg), w = ``is_weights`` (detached per-token weights, e.g. truncated
    importance sampling; None: 1). Clipped tokens get zero gradient. dual_clip=None turns the
    dual clip off; otherwise it must be > 1.

    Stats (detached scalars over valid tokens):
        clip_frac       share of tokens where the ε-clip is active (−A·clip(ρ) > −A·ρ)
        dual_clip_frac  share of tokens where A < 0 and the dual-clip cap is active (L_clip > −A·c), over all
                        valid tokens, not only those with A < 0 (veRL pg_clipfrac_lower)
        approx_kl       mean(ℓ_old − ℓ): k1 estimate of KL(π_old ‖ π) on the rollout samples

    Source: veRL core_algos.compute_policy_loss_vanilla (pg_clipfrac, pg_clipfrac_lower, ppo_kl).
    Shapes: logp, old_logp, advantages, mask [B, T] → (scalar, dict of scalars).
    """
    if dual_clip is not None and dual_clip <= 1.0:
        raise ValueError(f"dual_clip must be > 1 (or None to disable), got {dual_clip}")
    check_same_shape(logp=logp, old_logp=old_logp, advantages=advantages, mask=mask)
    mask = mask.to(logp.dtype)
    log_ratio = torch.clamp(logp - old_logp, min=-LOG_RATIO_CLAMP, max=LOG_RATIO_CLAMP)
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    per_token = torch.maximum(unclipped, clipped)  # max(−A·ρ, −A·clip(ρ, 1−ε_low, 1+ε_high))
    clip_frac = masked_mean((clipped > unclipped).to(logp.dtype), mask)
    if dual_clip is not None:
        cap = -advantages * dual_clip  # −A·c, only binding where A < 0
        capped = torch.minimum(per_token, cap)
        dual_active = (per_token > cap) & (advantages < 0)
        per_token = torch.where(advantages < 0, capped, per_token)
        dual_clip_frac = masked_mean(dual_active.to(logp.dtype), mask)
    else:
        dual_clip_frac = torch.zeros((), dtype=logp.dtype, device=logp.device)
    if is_weights is not None:
        per_token = per_token * is_weights
    loss = aggregate(per_token, mask, agg, norm_constant=norm_constant)
    stats = {
        "clip_frac": clip_frac.detach(),
        "dual_clip_frac": dual_clip_frac.detach(),
        "approx_kl": masked_mean(-log_ratio, mask).detach(),
    }
    return loss, stats


def policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = 3.0,
    agg: str = "token-mean",
    norm_constant: float | None = None,
) -> Tensor:
    """Clipped surrogate policy loss (scalar); see `policy_loss_with_stats` for formula and sources.

    Per token: max(−A·ρ, −A·clip(ρ, 1−ε_low, 1+ε_high)), capped at −A·c where A < 0 (PPO arXiv
    1707.06347, dual clip arXiv 1912.09729), aggregated with `aggregate(·, mask, agg)`.
    Shapes: logp, old_logp, advantages, mask [B, T] → scalar.
    """
    loss, _ = policy_loss_with_stats(
        logp, old_logp, advantages, mask, clip_low=clip_low, clip_high=clip_high,
        dual_clip=dual_clip, agg=agg, norm_constant=norm_constant,
    )
    return loss


# ---------------------------------------------------------------- value loss


def value_loss_with_stats(
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    *,
    clip: float = 0.5,
    agg: str = "token-mean",
    norm_constant: float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Clipped value loss with its clip fraction.

    Per token: ½·max((v − R)², (clip(v, v_old − c, v_old + c) − R)²), c = clip, then
    aggregate(·, m, agg) (the ½ is applied after aggregation, which is the same thing).
    Stats: value_clip_frac = share of valid tokens where the clipped term is the larger one.

    Source: PPO (arXiv 1707.06347) as implemented in veRL core_algos.compute_value_loss.
    Shapes: values, old_values, returns, mask [B, T] → (scalar, dict of scalars).
    """
    mask = mask.to(values.dtype)
    clipped_values = torch.clamp(values, old_values - clip, old_values + clip)
    loss_unclipped = (values - returns) ** 2
    loss_clipped = (clipped_values - returns) ** 2
    per_token = torch.maximum(loss_unclipped, loss_clipped)
    loss = 0.5 * aggregate(per_token, mask, agg, norm_constant=norm_constant)
    clip_frac = masked_mean((loss_clipped > loss_unclipped).to(values.dtype), mask)
    return loss, {"value_clip_frac": clip_frac.detach()}


def value_loss(
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    *,
    clip: float = 0.5,
    agg: str = "token-mean",
    norm_constant: float | None = None,
) -> Tensor:
    """Clipped value loss ½·max((v − R)², (clip(v, v_old ± c) − R)²) aggregated over valid tokens.

    See `value_loss_with_stats` for details. PPO arXiv 1707.06347; veRL core_algos.compute_value_loss.
    Shapes: values, old_values, returns, mask [B, T] → scalar.
    """
    loss, _ = value_loss_with_stats(
        values, old_values, returns, mask, clip=clip, agg=agg, norm_constant=norm_constant
    )
    return loss


# Registered at the bottom, as in style.md §3: one name per mode, one signature (loss, mask, C).
register_aggregation("token-mean", _token_mean, per_sequence=False)
register_aggregation("seq-mean-token-mean", _seq_mean_token_mean, per_sequence=True)
register_aggregation("seq-mean-token-sum", _seq_mean_token_sum, per_sequence=True)
register_aggregation("seq-mean-token-sum-norm", _seq_mean_token_sum_norm, per_sequence=True, uses_norm_constant=True)

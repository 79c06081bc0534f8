"""The optimisation half of an RL step: log-prob passes, advantages, and the PPO-style update.

Loss per mini-batch (aggregated with ``algorithm.loss_agg``, formulas in `logicrl.rl.losses`):

    L = L_pg(ℓ, ℓ_old, A) + β·agg(KL_t(ℓ, ℓ_ref))   [kl_placement = loss]   − c_H·agg(H_t)

L_pg is the registered ``algorithm.policy_loss`` (`logicrl.rl.policy_losses`: vanilla, gspo, cispo).

Each mini-batch is split into micro-batches whose losses are weighted by their share of the mini-batch
(`logicrl.rl.batch.share`), so gradient accumulation gives exactly the mini-batch loss's gradient. When the
update is on-policy (one epoch, one mini-batch) the rollout-time log-probs ℓ_old equal the current ones, so
they are taken from the update's own forward (detached) instead of a separate pass. Where the gradient
cannot reach a response's later tokens (their advantages are 0 and nothing else reads them:
`gradient_lengths`), the forward stops at its last token with A_t ≠ 0.
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from logicrl.engine.logprobs import PromptStates, prompt_states, response_logprobs
from logicrl.rl.advantages import AdvantageInputs, get_advantage_estimator
from logicrl.rl.batch import RolloutBatch, micro_batches, share, token_budget_batches
from logicrl.rl.config import AlgorithmConfig
from logicrl.rl.critic import ValueModel
from logicrl.rl.kl import kl_estimate
from logicrl.rl.losses import aggregate, masked_mean, value_loss_with_stats
from logicrl.rl.policy_losses import get_policy_loss, tis_weights

Autocast = Callable[[], contextlib.AbstractContextManager]


def lr_lambda(schedule: str, warmup: int, total: int, milestones: Sequence[int] = (), gamma: float = 1.0):
    """Multiplier of the peak lr at optimizer step s (0-based): linear warm-up (s + 1) / warmup, then

    constant 1; linear 1 − p; cosine ½ (1 + cos πp), with p = (s − warmup) / (total − warmup);
    multistep γ^#{m ∈ milestones : s ≥ m} (torch's MultiStepLR: ×γ once s optimizer steps are done).
    """
    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        if schedule == "multistep":
            return gamma ** sum(s >= m for m in milestones)
        progress = min(1.0, (s - warmup) / max(1, total - warmup))
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress if schedule == "linear" else 1.0
    return factor


def adamw(parameters, *, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
          weight_decay: float = 0.0) -> torch.optim.AdamW:
    """AdamW, fused on CPU and CUDA: one kernel over all tensors (a SmolLM2 step took 0.13 s instead of 0.71 s
    on one CPU thread)."""
    parameters = list(parameters)
    fused = parameters[0].device.type in ("cpu", "cuda")
    return torch.optim.AdamW(parameters, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                             fused=fused)


def _per_token(fn: Callable[[RolloutBatch, torch.device, tuple | None], Tensor], model, batch: RolloutBatch,
               micro_batch_size: int, micro_batch_tokens: int | None, autocast: Autocast,
               states: PromptStates | None = None) -> Tensor:
    """[B, T] values of ``fn(micro, device, prompt)`` over trimmed micro-batches, no grad, zero on padding;
    ``prompt`` is the micro-batch's rows of the batch's ``states`` (None without)."""
    device = next(model.parameters()).device
    out = torch.zeros_like(batch.mask)
    with torch.no_grad():
        for rows in token_budget_batches(batch.mask.sum(-1), micro_batch_size, micro_batch_tokens):
            micro = batch.select(rows, trim_prompts=states is None)
            with autocast():
                values = fn(micro, device, None if states is None else states.rows(rows))
            out[rows, :micro.mask.shape[1]] = values.float().cpu() * micro.mask
    return out


def batch_logprobs(model, batch: RolloutBatch, *, micro_batch_size: int, temperature: float,
                   micro_batch_tokens: int | None = None, autocast: Autocast = contextlib.nullcontext,
                   logprob_chunk: int | None = None, prompts_once: bool = True) -> Tensor:
    """ℓ [B, T] of every response under ``model`` (no grad; zero on padding). ``prompts_once``: each distinct
    prompt runs once for all micro-batches (`logicrl.engine.logprobs.prompt_states`), not once per micro-batch."""
    states = None
    if prompts_once:
        with torch.no_grad(), autocast():
            states = prompt_states(model, batch.prompt_ids, batch.prompt_mask, hidden=logprob_chunk is not None)

    def logp(micro: RolloutBatch, device: torch.device, prompt: tuple | None) -> Tensor:
        return response_logprobs(model, *micro.model_inputs(device), micro.response_ids.to(device),
                                 temperature=temperature, logprob_chunk=logprob_chunk, prompt=prompt)[0]
    return _per_token(logp, model, batch, micro_batch_size, micro_batch_tokens, autocast, states)


def batch_values(critic: ValueModel, batch: RolloutBatch, *, micro_batch_size: int,
                 micro_batch_tokens: int | None = None, autocast: Autocast = contextlib.nullcontext) -> Tensor:
    """V [B, T] from the critic (no grad; zero on padding)."""
    def values(micro: RolloutBatch, device: torch.device, _: None) -> Tensor:
        return critic(*micro.model_inputs(device), micro.mask.shape[1])
    return _per_token(values, critic, batch, micro_batch_size, micro_batch_tokens, autocast)


def compute_advantages(batch: RolloutBatch, algo: AlgorithmConfig, kl_coef: float,
                       credit: Tensor | None = None) -> RolloutBatch:
    """Fill ``advantages`` (and ``returns`` for GAE) with the configured estimator, plus the per-token ``credit``
    (`logicrl.rl.shaping.check_line_credit`; no part of any baseline) on response tokens; with
    ``algorithm.positive_only`` then max(A_t, 0): only what worked is reinforced, nothing is pushed down.

    With ``kl_placement = reward`` the token rewards carry −β·KL_t(ℓ_old, ℓ_ref) (veRL apply_kl_penalty).
    """
    kl = reward_kl(batch, algo)
    inputs = AdvantageInputs.from_scores(
        batch.scores, batch.group_ids, batch.mask, kl=kl, kl_coef=kl_coef if kl is not None else 0.0,
        values=batch.values, gamma=algo.gamma, lam=algo.lam, scale_by_std=algo.scale_by_std)
    out = get_advantage_estimator(algo.advantage)(inputs)
    batch.advantages, batch.returns = out.advantages, out.returns
    if credit is not None:
        batch.advantages = batch.advantages + credit * batch.mask
    if algo.positive_only:
        batch.advantages = batch.advantages.clamp(min=0.0)
    return batch


def reward_kl(batch: RolloutBatch, algo: AlgorithmConfig) -> Tensor | None:
    """KL_t(ℓ_old, ℓ_ref) on response tokens, what the token rewards carry with ``kl_placement = reward``
    (None otherwise)."""
    if algo.kl_placement != "reward" or batch.ref_logp is None:
        return None
    return kl_estimate(batch.old_logp, batch.ref_logp, algo.kl_estimator) * batch.mask


def sequence_mean(values: Tensor, mask: Tensor) -> float:
    """mean over rows with a token of Σ_t v_it·m_it / Σ_t m_it: each response weighs the same, whatever its
    length (veRL's ``current_kl`` in ``apply_kl_penalty``, the adaptive KL controller's input)."""
    tokens = mask.sum(dim=-1)
    rows = tokens > 0
    return float(((values * mask).sum(dim=-1)[rows] / tokens[rows]).mean()) if rows.any() else 0.0


def gradient_lengths(batch: RolloutBatch, algo: AlgorithmConfig, *, on_policy: bool) -> Tensor | None:
    """Per row, how many response tokens the update's forward has to cover: n_i = 1 + the last t with A_it ≠ 0
    (0: none), or None when every token has to run (also when no row has an A_t ≠ 0: the step then runs as
    usual, so that it still has its statistics).

    A token-local policy loss (`logicrl.rl.policy_losses`: vanilla, CISPO) is 0 with zero gradient where
    A_t = 0, and in a causal model no later token changes an earlier token's log-prob, so the tokens past
    n_i carry no gradient: skipping them leaves the loss and the gradient as they are (up to float rounding;
    a row with n_i = 0 runs no forward at all). That holds only when nothing else reads those tokens:
    on-policy (ℓ_old is the forward's own, so the ratio is 1 and clip_frac and approx_kl are 0 there), no
    reference log-probs (a KL term, or its statistic), no entropy bonus and no importance weights. With
    positive-only updates and check-line credit, 16–29% of a step's response tokens went in the credit
    recipe's first steps (a wrong answer's tail past its last right check line; docs/performance.md).
    """
    if not (on_policy and batch.ref_logp is None and algo.entropy_coef == 0 and algo.tis_cap is None
            and get_policy_loss(algo.policy_loss).token_local):
        return None
    live = (batch.advantages != 0) & (batch.mask > 0)
    return (live * torch.arange(1, live.shape[1] + 1)).amax(-1) if live.any() else None


LOSS_STAT = "policy/loss"  # aggregated as the loss is; every other statistic of a micro-batch is a token mean


def policy_micro_loss(policy, micro: RolloutBatch, algo: AlgorithmConfig, *, kl_coef: float, temperature: float,
                      norm_constant: float | None, on_policy: bool, forward_width: int | None = None,
                      prompt: tuple | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """The loss of one micro-batch (unweighted) and its detached statistics. ``forward_width``: run the
    forward on the first this many response tokens only (`gradient_lengths`); the rest get ℓ = ℓ_old = 0
    (ratio 1, A = 0: no loss, no gradient), and the entropy statistic is the mean over the tokens that ran.
    ``prompt``: the rows' prompts already run (`logicrl.engine.logprobs.PromptStates.rows`)."""
    device = next(policy.parameters()).device
    mask = micro.mask.to(device)
    run = micro if forward_width is None else micro.responses_upto(forward_width)
    logp, ent = response_logprobs(policy, *run.model_inputs(device), run.response_ids.to(device),
                                  temperature=temperature, with_entropy=True, entropy_grad=algo.entropy_coef > 0,
                                  logprob_chunk=algo.logprob_chunk, prompt=prompt)
    entropy = masked_mean(ent.detach(), run.mask.to(device))
    if forward_width is not None:
        logp = F.pad(logp, (0, mask.shape[1] - logp.shape[1]))
    old = logp.detach() if on_policy else micro.old_logp.to(device)
    weights, tis = None, {}
    if algo.tis_cap is not None:
        weights, tis = tis_weights(old, micro.rollout_logp.to(device), mask, algo.tis_cap)
    clip_low, clip_high = algo.clip_range()
    loss, stats = get_policy_loss(algo.policy_loss)(
        logp, old, micro.advantages.to(device), mask, clip_low=clip_low, clip_high=clip_high,
        dual_clip=algo.dual_clip, agg=algo.loss_agg, norm_constant=norm_constant, is_weights=weights)
    stats = {LOSS_STAT: loss.detach(), **{f"policy/{k}": v for k, v in stats.items()}, **tis}
    if micro.ref_logp is not None:
        kl = kl_estimate(logp, micro.ref_logp.to(device), algo.kl_estimator)
        stats["kl"] = masked_mean(kl.detach(), mask)
        if algo.kl_placement == "loss" and kl_coef > 0:
            loss = loss + kl_coef * aggregate(kl, mask, algo.loss_agg, norm_constant=norm_constant)
    stats["entropy"] = entropy
    if algo.entropy_coef > 0:
        loss = loss - algo.entropy_coef * aggregate(ent, mask, algo.loss_agg, norm_constant=norm_constant)
    return loss, stats


def optimise(batch: RolloutBatch, algo: AlgorithmConfig, *, seed: int,
             step_fn: Callable[[RolloutBatch, RolloutBatch], dict[str, Tensor]]) -> dict[str, float]:
    """Run ``update_epochs`` passes over ``batch`` in shuffled mini-batches; ``step_fn(mini, batch)`` does one
    optimizer step. Returns the statistics averaged over optimizer steps."""
    mini_size = algo.mini_batch_size or len(batch)
    totals: dict[str, float] = defaultdict(float)
    count = 0
    for epoch in range(algo.update_epochs):
        generator = torch.Generator().manual_seed(seed * 1000 + epoch)
        order = torch.randperm(len(batch), generator=generator) if mini_size < len(batch) else torch.arange(len(batch))
        for rows in micro_batches(order, mini_size):
            for key, value in step_fn(batch.select(rows), batch).items():
                totals[key] += float(value)
            count += 1
    return {key: value / count for key, value in totals.items()}


def policy_step(policy, optimizer, scheduler, mini: RolloutBatch, algo: AlgorithmConfig, *, kl_coef: float,
                temperature: float, norm_constant: float | None, grad_clip: float, on_policy: bool,
                autocast: Autocast = contextlib.nullcontext) -> dict[str, Tensor]:
    """One optimizer step of the policy on ``mini`` with gradient accumulation over micro-batches; each
    forward stops where `gradient_lengths` says no gradient can come from (micro-batches packed by those
    lengths). With ``algorithm.prompts_once`` each distinct prompt runs once for all micro-batches, forward
    and backward (`logicrl.engine.logprobs.PromptStates`). The statistics are the micro-batches' weighted
    sums, the entropy over the rows that ran: the loss weighted as the loss aggregates (`share` with
    ``loss_agg``), the token statistics (kl, entropy, clip fractions, approx_kl) by their share of the tokens,
    so that they do not depend on how the mini-batch is cut."""
    stats: dict[str, Tensor] = defaultdict(lambda: torch.zeros(()))
    states = None
    if algo.prompts_once:
        with autocast():
            states = prompt_states(policy, mini.prompt_ids, mini.prompt_mask, hidden=algo.logprob_chunk is not None)
    lengths = gradient_lengths(mini, algo, on_policy=on_policy)
    ran = 0.0
    for rows in token_budget_batches(mini.mask.sum(-1) if lengths is None else lengths, algo.micro_batch_size,
                                     algo.micro_batch_tokens):
        if lengths is not None:
            rows = rows[lengths[rows] > 0]  # no token with A ≠ 0: its loss is 0, its gradient too
            if not len(rows):
                continue
        micro = mini.select(rows, trim_prompts=states is None)
        weight, tokens = share(micro, mini, algo.loss_agg), share(micro, mini, "token-mean")
        ran += tokens
        with autocast():
            loss, micro_stats = policy_micro_loss(
                policy, micro, algo, kl_coef=kl_coef, temperature=temperature, norm_constant=norm_constant,
                on_policy=on_policy, forward_width=None if lengths is None else int(lengths[rows].max()),
                prompt=None if states is None else states.rows(rows))
        (loss * weight).backward()
        for key, value in micro_stats.items():
            stats[key] = stats[key] + value.float().cpu() * (weight if key == LOSS_STAT else tokens)
    if states is not None:
        states.backward()
    if lengths is not None and ran > 0:
        stats["entropy"] = stats["entropy"] / ran
    grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), grad_clip)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return {**stats, "grad_norm": grad_norm.detach().float().cpu()}


def critic_step(critic: ValueModel, optimizer, mini: RolloutBatch, algo: AlgorithmConfig, *, grad_clip: float,
                norm_constant: float | None, autocast: Autocast = contextlib.nullcontext) -> dict[str, Tensor]:
    """One optimizer step of the value model on ``mini`` (clipped value loss toward the GAE returns)."""
    device = next(critic.parameters()).device
    stats: dict[str, Tensor] = defaultdict(lambda: torch.zeros(()))
    for rows in token_budget_batches(mini.mask.sum(-1), algo.micro_batch_size, algo.micro_batch_tokens):
        micro = mini.select(rows)
        weight = share(micro, mini, algo.loss_agg)
        mask = micro.mask.to(device)
        with autocast():
            values = critic(*micro.model_inputs(device), mask.shape[1]).float()
        loss, extra = value_loss_with_stats(values, micro.values.to(device), micro.returns.to(device), mask,
                                            clip=algo.value_clip, agg=algo.loss_agg, norm_constant=norm_constant)
        (loss * weight).backward()
        stats["critic/loss"] = stats["critic/loss"] + loss.detach().cpu() * weight
        stats["critic/clip_frac"] = stats["critic/clip_frac"] + extra["value_clip_frac"].cpu() * share(
            micro, mini, "token-mean")  # a token mean
    grad_norm = torch.nn.utils.clip_grad_norm_(critic.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return {**stats, "critic/grad_norm": grad_norm.detach().float().cpu()}

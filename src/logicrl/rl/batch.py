"""`RolloutBatch`: the tensors of one RL step, and micro-batches trimmed to their own padding.

Rows are ``[prompt (left-padded, width P) | response (right-padded, width T)]``. A micro-batch keeps only
the columns its own rows need: prompt columns where some row has a token, response columns up to its
longest response. Per-token tensors ([B, T]: mask, log-probs, advantages, ...) are cut the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from logicrl.engine.sequences import Generation, sequence_inputs
from logicrl.rl.losses import get_aggregation

PER_TOKEN = ("response_ids", "mask", "old_logp", "ref_logp", "values", "advantages", "returns", "rollout_logp")


@dataclass
class RolloutBatch:
    """One step's rollouts. Optional per-token tensors are filled as the step goes on."""

    prompt_ids: Tensor  # [B, P] left-padded
    prompt_mask: Tensor  # [B, P]
    response_ids: Tensor  # [B, T] right-padded
    mask: Tensor  # [B, T] float response mask
    scores: Tensor  # [B] reward totals
    group_ids: Tensor  # [B] one id per puzzle
    old_logp: Tensor | None = None
    ref_logp: Tensor | None = None
    values: Tensor | None = None
    advantages: Tensor | None = None
    returns: Tensor | None = None
    truncated: Tensor | None = None  # [B] bool: cut at the length budget
    rollout_logp: Tensor | None = None  # [B, T] the sampler's log-probs (truncated importance sampling)

    @classmethod
    def from_generation(cls, generation: Generation, scores: Tensor, group_size: int) -> RolloutBatch:
        rows = generation.response_ids.shape[0]
        return cls(
            prompt_ids=generation.prompt_ids, prompt_mask=generation.prompt_mask,
            response_ids=generation.response_ids, mask=generation.response_mask.float(), scores=scores.float(),
            group_ids=torch.arange(rows) // group_size, truncated=generation.truncated,
            rollout_logp=generation.logprobs,
        )

    def __len__(self) -> int:
        return self.response_ids.shape[0]

    def select(self, rows: Tensor, trim_prompts: bool = True) -> RolloutBatch:
        """Rows ``rows``, with padding columns no selected row uses removed (``trim_prompts=False``: response
        columns only, so that the prompts keep the batch's width, as `PromptStates` of the batch need)."""
        prompt_mask = self.prompt_mask[rows]
        used = prompt_mask.any(0).nonzero()
        start = 0 if not trim_prompts else int(used[0]) if len(used) else prompt_mask.shape[1]
        width = max(int(self.mask[rows].sum(-1).max()), 1)
        changes = {"prompt_ids": self.prompt_ids[rows, start:], "prompt_mask": prompt_mask[:, start:],
                   "scores": self.scores[rows], "group_ids": self.group_ids[rows],
                   "truncated": None if self.truncated is None else self.truncated[rows]}
        for name in PER_TOKEN:
            value = getattr(self, name)
            changes[name] = None if value is None else value[rows, :width]
        return replace(self, **changes)

    def responses_upto(self, width: int) -> RolloutBatch:
        """The same rows with only the first ``width`` response columns (prompts unchanged)."""
        return replace(self, **{name: None if getattr(self, name) is None else getattr(self, name)[:, :width]
                                for name in PER_TOKEN})

    def model_inputs(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """``(input_ids, attention_mask, position_ids)`` of prompt + response on ``device``."""
        inputs = sequence_inputs(self.prompt_ids, self.prompt_mask, self.response_ids, self.mask)
        return tuple(t.to(device) for t in inputs)

    def to(self, device: torch.device) -> RolloutBatch:
        moved = {f.name: getattr(self, f.name).to(device) for f in fields(self)
                 if isinstance(getattr(self, f.name), Tensor)}
        return replace(self, **moved)


def micro_batches(rows: Tensor, size: int) -> list[Tensor]:
    """Split a 1-D index tensor into consecutive chunks of at most ``size``."""
    return [rows[i:i + size] for i in range(0, len(rows), size)]


def longest_first(lengths: Tensor) -> Tensor:
    """Row indices by length, longest first; a stable sort, so equal lengths keep their order (and a group's
    samples stay together)."""
    return torch.sort(lengths.long(), descending=True, stable=True).indices


def token_budget_batches(lengths: Tensor, max_rows: int, max_tokens: int | None) -> list[Tensor]:
    """Row indices in micro-batches of at most ``max_rows`` rows whose padded response block
    (rows × longest response) holds at most ``max_tokens`` tokens.

    Rows go longest first (`longest_first`), and each micro-batch takes rows while ``(rows + 1) × its first
    row's length ≤ max_tokens``: one long response no longer makes every row of its micro-batch that long. A row
    longer than the budget goes alone. ``max_tokens=None``: consecutive chunks of ``max_rows`` (`micro_batches`)."""
    if max_tokens is None:
        return micro_batches(torch.arange(len(lengths)), max_rows)
    order = longest_first(lengths)
    chunks, start = [], 0
    while start < len(order):
        width = max(int(lengths[order[start]]), 1)
        size = max(1, min(max_rows, max_tokens // width))
        chunks.append(order[start:start + size])
        start += size
    return chunks


def share(batch: RolloutBatch, of: RolloutBatch, agg: str) -> float:
    """Weight of micro-batch ``batch`` inside mini-batch ``of`` so Σ weight·agg(micro) = agg(mini).

    token-mean averages over tokens (weight = tokens share); the seq-mean modes (``per_sequence``) average
    over responses with at least one token (weight = responses share).
    """
    if not get_aggregation(agg).per_sequence:
        return float(batch.mask.sum() / of.mask.sum().clamp(min=1))
    return float((batch.mask.sum(-1) > 0).sum() / (of.mask.sum(-1) > 0).sum().clamp(min=1))

"""Prompt + response rows as tensors: the `Generation` batch, left padding, position ids and the prefix that a
batch's prompts share.

A row is ``[prompt (left-padded) | response (right-padded)]``, so every prompt ends at the same column
and the response starts right after it; the position ids count the real tokens only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

MIN_SHARED_PREFIX = 16  # tokens: a shorter prefix common to every prompt is not worth a forward of its own


@dataclass
class Generation:
    """A batch of prompt + response rows.

    prompt_ids [B, P] left-padded; prompt_mask [B, P]; response_ids [B, T] right-padded with the pad id;
    response_mask [B, T] float 0/1; truncated [B] bool (hit max_new_tokens without a stop); logprobs
    [B, T] float: log-prob of each response token under the sampling distribution (softmax of
    logits / temperature, before top-p; plain softmax when greedy), 0 on padding.
    """

    prompt_ids: Tensor
    prompt_mask: Tensor
    response_ids: Tensor
    response_mask: Tensor
    truncated: Tensor
    logprobs: Tensor | None = None

    @property
    def response_lengths(self) -> Tensor:
        return self.response_mask.sum(-1).long()

    def sequences(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(input_ids, attention_mask, position_ids)`` of prompt + response, for scoring forwards."""
        return sequence_inputs(self.prompt_ids, self.prompt_mask, self.response_ids, self.response_mask)


def sequence_inputs(prompt_ids: Tensor, prompt_mask: Tensor, response_ids: Tensor,
                    response_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``[prompt (left-padded) | response (right-padded)]`` as ``(input_ids, attention_mask, position_ids)``."""
    input_ids = torch.cat([prompt_ids, response_ids], dim=1)
    attention_mask = torch.cat([prompt_mask, response_mask.to(prompt_mask.dtype)], dim=1)
    return input_ids, attention_mask, positions_from_mask(attention_mask)


def positions_from_mask(mask: Tensor) -> Tensor:
    """Position ids of left-padded rows: ``cumsum(mask) − 1``, 0 on padding. [B, S] → [B, S]."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Token id lists → ``(ids [B, P], mask [B, P])`` padded on the left."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row):] = torch.tensor(list(row), dtype=torch.long)
            mask[i, width - len(row):] = 1
    return ids, mask


def shared_prefix_length(ids: Tensor, mask: Tensor) -> int:
    """Tokens at the start of every prompt of ``ids`` [G, P] (left-padded, with ``mask``) that all G share, such
    as a batch's chat template and system prompt; at most the shortest prompt's length − 1, so that each prompt
    keeps a token of its own (its last one predicts the first response token). 0 for fewer than two prompts, a
    prefix shorter than ``MIN_SHARED_PREFIX`` (not worth a forward of its own) or a mask that is not left padding."""
    G, P = ids.shape
    lengths = mask.sum(1).long()
    shortest = int(lengths.min()) if G else 0
    left_padded = torch.equal(mask.bool(), torch.arange(P, device=mask.device) >= (P - lengths)[:, None])
    if G < 2 or shortest < 2 or not left_padded:
        return 0
    starts = (P - lengths)[:, None] + torch.arange(shortest - 1, device=ids.device)
    heads = ids.gather(1, starts)  # each prompt's first shortest − 1 tokens, left-aligned
    differs = (heads != heads[:1]).any(0).nonzero()
    length = int(differs[0]) if len(differs) else shortest - 1
    return length if length >= MIN_SHARED_PREFIX else 0


def split_shared_prefix(ids: Tensor, mask: Tensor, positions: Tensor, prefix: int) -> tuple[tuple[Tensor, ...],
                                                                                              tuple[Tensor, ...]]:
    """Left-padded prompts [G, P] (``ids``, ``mask``, ``positions``) that share their first ``prefix`` tokens
    (`shared_prefix_length`), split for a forward of the prefix once and of the rest on its KV cache:
    ``((ids, mask, positions) of the prefix [1, L], (ids, mask, positions) of the rest)``. The rest is the
    columns after the first L, [G, P − L]; a prompt's own tokens after the prefix are the last of them, so its
    mask over [prefix keys | these columns] is ``[1 × L | mask[:, :P − L]]`` [G, P] (the padding moves behind
    the prefix; the position ids stay each token's own)."""
    G, P = ids.shape
    start = P - int(mask[0].sum())
    head = slice(start, start + prefix)
    rest_mask = torch.cat([mask.new_ones(G, prefix), mask[:, :P - prefix]], dim=1)
    return (ids[:1, head], mask[:1, head], positions[:1, head]), (ids[:, prefix:], rest_mask, positions[:, prefix:])

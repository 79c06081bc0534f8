"""Packed SFT (``packing=true``): several examples share one row, and the loss stays the padded one.

An example is ``prompt + target`` (n = p + t tokens). The examples of an optimizer batch go into rows of
``width`` tokens, best-fit decreasing (longest first, each into the fullest row it still fits; an example
longer than ``width`` gets a row of its own), so the only padding is at the end of a row that no remaining
example fits. In a row each example keeps its own position ids (0 … n−1, as if it were alone: RoPE sees the
same positions) and a block-diagonal causal mask (`block_causal_mask`) lets a token attend only to earlier
tokens of its own example. Row-end padding forms one more block of its own and predicts nothing.

Only the positions that predict a target token reach the vocabulary projection: the decoder's hidden states
at those N positions go through the output embedding ([N, V] logits, not [rows, width, V]), ``logprob_chunk``
of them at a time when given (`logicrl.engine.logprobs.head_logprobs`, as the padded path).

Loss: the same token mean as `logicrl.rl.sft.nll_step`, over the whole optimizer batch,

    L = −Σ_{i,t} log π(y_it | x_i, y_i<t) / Σ_i |y_i|,

so a micro-batch of rows contributes −Σ_(its target tokens) log π / (the batch's target tokens), and
gradient accumulation over micro-batches gives exactly the gradient of L (tests/rl/test_sft_packing.py:
loss, gradients and parameters after two optimizer steps equal to the padded path's).

Attention: on CPU (``sdpa`` or ``eager``) the mask is a dense additive [rows, 1, width, width] tensor, so a
row costs width² attention whatever its blocks. Hence rows of a bounded width (``packing_length``, 1024 by
default as TRL's ``max_length``), not one row per micro-batch: for SmolLM2 at 1024 tokens the masked
attention is ≈ 4·1024·576·30 ≈ 70 MFLOP a token against ≈ 210 for the linears. Rows as wide as the longest
example would pack almost nothing here: a cold-start prompt alone is ~250 tokens, so two 2–3-person
examples (330–900 tokens) seldom fit in one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from logicrl.engine.logprobs import head_logprobs, token_logprobs
from logicrl.engine.onednn import onednn_linears
from logicrl.rl.batch import micro_batches

Example = tuple[list[int], list[int]]  # (prompt ids, target ids)
MASKED_ATTENTION = ("sdpa", "eager")  # implementations that take a 4D additive mask as given


def pack_rows(lengths: list[int], width: int) -> list[list[int]]:
    """Example indices per row: best-fit decreasing into rows of ``width`` tokens (ties keep input order).
    An example longer than ``width`` gets a row of its own."""
    rows: list[list[int]] = []
    free: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        fits = [r for r in range(len(rows)) if free[r] >= lengths[i]]
        if fits:
            best = min(fits, key=lambda r: free[r])
            rows[best].append(i)
            free[best] -= lengths[i]
        else:
            rows.append([i])
            free.append(width - lengths[i])
    return rows


@dataclass
class PackedRows:
    """Rows of packed examples, right-padded to the widest row."""

    input_ids: Tensor  # [R, W]
    position_ids: Tensor  # [R, W] 0 … n−1 within each example (and within the row-end padding)
    segment_ids: Tensor  # [R, W] the example's index in its row; −1 on row-end padding
    labels: Tensor  # [R, W] the target token position j predicts (that at j + 1), 0 where none
    loss_mask: Tensor  # [R, W] bool: position j predicts a target token

    @property
    def tokens(self) -> int:
        """Non-padding tokens (prompts and targets)."""
        return int((self.segment_ids >= 0).sum())


def pack_examples(examples: list[Example], rows: list[list[int]], pad_id: int) -> PackedRows:
    """The `PackedRows` of ``examples`` laid out as ``rows`` (from `pack_rows`)."""
    width = max(sum(len(examples[i][0]) + len(examples[i][1]) for i in row) for row in rows)
    shape = (len(rows), width)
    ids, positions = torch.full(shape, pad_id, dtype=torch.long), torch.zeros(shape, dtype=torch.long)
    segments, labels = torch.full(shape, -1, dtype=torch.long), torch.zeros(shape, dtype=torch.long)
    loss_mask = torch.zeros(shape, dtype=torch.bool)
    for r, row in enumerate(rows):
        start = 0
        for k, i in enumerate(row):
            prompt, target = examples[i]
            if not prompt:
                raise ValueError("packing needs a non-empty prompt: its last token predicts the first target token")
            n, end = len(prompt) + len(target), start + len(prompt) + len(target)
            ids[r, start:end] = torch.tensor(prompt + target)
            positions[r, start:end] = torch.arange(n)
            segments[r, start:end] = k
            first = start + len(prompt) - 1  # predicts target[0]
            labels[r, first:first + len(target)] = torch.tensor(target)
            loss_mask[r, first:first + len(target)] = True
            start = end
        positions[r, start:] = torch.arange(width - start)
    return PackedRows(ids, positions, segments, labels, loss_mask)


def block_causal_mask(segment_ids: Tensor, dtype: torch.dtype) -> Tensor:
    """Additive mask [R, 1, W, W]: 0 where key k ≤ query q and both are in the same segment, else the dtype's
    minimum (every query sees at least itself, so no softmax row is all masked)."""
    same = segment_ids.unsqueeze(-1) == segment_ids.unsqueeze(-2)  # [R, Wq, Wk]
    causal = torch.ones(same.shape[-2:], dtype=torch.bool, device=segment_ids.device).tril()
    mask = torch.zeros(same.shape, dtype=dtype, device=segment_ids.device)
    return mask.masked_fill_(~(same & causal), torch.finfo(dtype).min).unsqueeze(1)


def packed_logprobs(model, packed: PackedRows, logprob_chunk: int | None = None) -> Tensor:
    """log π of the target tokens [N] (row-major order), from one forward over the packed rows; gradients flow
    when grad is enabled. The vocabulary projection runs at the N target-predicting positions only, all at once,
    or ``logprob_chunk`` of them at a time (`head_logprobs`: the chunk's logits recomputed in backward)."""
    attention = getattr(model.config, "_attn_implementation", None)
    if attention not in MASKED_ATTENTION:
        raise ValueError(f"packing needs attention {' or '.join(MASKED_ATTENTION)} (a 4D mask), not {attention!r}; "
                         "set packing=false")
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    keep = packed.loss_mask.to(device)
    with onednn_linears(model):
        hidden = model.get_decoder()(
            input_ids=packed.input_ids.to(device), position_ids=packed.position_ids.to(device),
            attention_mask=block_causal_mask(packed.segment_ids.to(device), dtype), use_cache=False,
        ).last_hidden_state
        hidden, labels = hidden[keep], packed.labels.to(device)[keep]  # [N, h], [N]
        if logprob_chunk is not None:
            ones = torch.ones_like(labels, dtype=torch.bool)[None]
            return head_logprobs(model.get_output_embeddings(), hidden[None], labels[None], ones, logprob_chunk)[0][0]
        logits = model.get_output_embeddings()(hidden)  # [N, V]
    return token_logprobs(logits, labels)


def packed_nll_step(model, examples: list[Example], micro_batch_size: int, pad_id: int, *,
                    width: int, backward: bool = True, logprob_chunk: int | None = None) -> float:
    """The token-mean NLL of ``examples`` (the value of `logicrl.rl.sft.nll_step` on their padded batch), packed
    into rows of ``width`` tokens, ``micro_batch_size`` rows per forward, ``logprob_chunk`` target tokens per
    vocabulary projection (None: all of a micro-batch's at once); with ``backward``, also accumulate its
    gradient."""
    rows = pack_rows([len(p) + len(t) for p, t in examples], width)
    targets = max(sum(len(t) for _, t in examples), 1)
    total = 0.0
    for chunk in micro_batches(torch.arange(len(rows)), micro_batch_size):
        packed = pack_examples(examples, [rows[int(r)] for r in chunk], pad_id)
        with torch.set_grad_enabled(backward):
            # this micro-batch's part of the batch mean
            loss = -packed_logprobs(model, packed, logprob_chunk).sum() / targets
        if backward:
            loss.backward()
        total += float(loss.detach())
    return total

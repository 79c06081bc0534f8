"""Choosing the next token and noticing the end of a response.

`_Sampler`: argmax (greedy) or inverse-CDF sampling of softmax(logits / temperature) inside the top-p
nucleus (`inverse_cdf`), with one uniform number per row and step drawn from ``seed`` up front, so a row's
tokens do not depend on the other rows (and a resumed run samples the same responses). `_StopCheck`: a
response ends at the first stop token (an end-of-sequence id, kept in the response) or at the first token
whose decoded text completes one of the stop texts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

BLOCK = 1024  # entries per block of `inverse_cdf`'s first level


class _Sampler:
    """Next tokens from logits [B, V]: argmax (greedy), or inverse-CDF sampling of
    softmax(logits / temperature), restricted to the top-p nucleus, with uniform numbers
    ``u[row, step]`` drawn up front from ``seed`` (on the CPU, so every device samples the same)."""

    def __init__(self, rows: int, steps: int, *, temperature: float, top_p: float, greedy: bool,
                 seed: int | None, device: torch.device) -> None:
        self.temperature, self.top_p, self.greedy = temperature, top_p, greedy
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.uniform = None if greedy else torch.rand(rows, steps, generator=generator).to(device)

    def __call__(self, logits: Tensor, rows: Tensor, step: int) -> tuple[Tensor, Tensor]:
        """``(tokens [B], log-probs [B])`` for the rows ``rows`` (global row indices) at ``step``."""
        logits = logits.float()
        if self.greedy:
            tokens = logits.argmax(-1)
            return tokens, logits.gather(-1, tokens[:, None])[:, 0] - logits.logsumexp(-1)
        probs = torch.softmax(logits if self.temperature == 1.0 else logits / self.temperature, dim=-1)
        kept, ids = _nucleus(probs, self.top_p)
        pick = inverse_cdf(kept, self.uniform[rows.to(self.uniform.device), step])
        tokens = pick if ids is None else ids.gather(-1, pick[:, None])[:, 0]
        return tokens, probs.gather(-1, tokens[:, None])[:, 0].log()


def inverse_cdf(weights: Tensor, u: Tensor) -> Tensor:
    """A draw from the distribution ∝ ``weights`` [B, V] (non-negative, some positive in each row) for each
    uniform u [B] in [0, 1): the first index i whose running sum C_i exceeds u·C_V.

    In two levels, so that no row is summed up entry by entry (a running sum over 49,152 entries costs more than
    the rest of the sampler): the running sum over blocks of `BLOCK` weights picks the block b holding that
    point, then the running sum inside b picks the index, at the same relative position
    (u·C_V − C_start(b)) / mass(b), clamped below 1 so that it lands on a positive weight."""
    B, V = weights.shape
    blocks = -(-V // BLOCK)
    grouped = (F.pad(weights, (0, blocks * BLOCK - V)) if V % BLOCK else weights).view(B, blocks, BLOCK)
    mass = grouped.sum(-1)
    ends = mass.cumsum(-1)
    target = u * ends[:, -1]
    block = torch.searchsorted(ends, target[:, None], right=True).clamp(max=blocks - 1)
    block_mass = mass.gather(-1, block)[:, 0]
    inside = (target - (ends.gather(-1, block)[:, 0] - block_mass)) / block_mass.clamp(min=torch.finfo(mass.dtype).tiny)
    inside = inside.clamp(0.0, 1.0 - torch.finfo(mass.dtype).eps)
    running = grouped.gather(1, block[:, :, None].expand(B, 1, BLOCK))[:, 0].cumsum(-1)
    pick = torch.searchsorted(running, (inside * running[:, -1])[:, None], right=True).clamp(max=BLOCK - 1)
    return (block * BLOCK + pick)[:, 0].clamp(max=V - 1)


def _nucleus(probs: Tensor, top_p: float) -> tuple[Tensor, Tensor | None]:
    """Top-p filter: ``(kept probs [B, K], their token ids [B, K] or None when all are kept)``.

    Keeps, per row, the most probable tokens up to and including the one that brings their mass to
    ``top_p``. Sorting the whole vocabulary costs more than a decode step, so candidates come from
    ``topk`` with k growing ×8 until every row's nucleus fits.
    """
    if top_p >= 1.0:
        return probs, None
    k = min(64, probs.shape[-1])
    while True:
        top, ids = probs.topk(k, dim=-1)
        before = top.cumsum(-1) - top  # mass of the more probable tokens
        if k == probs.shape[-1] or bool((before[:, -1] >= top_p).all()):
            return top.masked_fill(before >= top_p, 0.0), ids
        k = min(k * 8, probs.shape[-1])


class _StopCheck:
    """Which rows just ended: the new token is a stop id, or the text of the row's last tokens contains a
    stop text (only a window as long as the longest stop text's UTF-8 bytes, plus 2, is decoded: each
    token holds at least one byte, so a stop text that the newest token completes lies inside it)."""

    def __init__(self, stop_token_ids: Sequence[int], stop_texts: Sequence[str], tokenizer) -> None:
        if stop_texts and tokenizer is None:
            raise ValueError("stop_texts needs the tokenizer")
        self.ids = torch.tensor(sorted(set(stop_token_ids)), dtype=torch.long)
        self.texts, self.tokenizer = tuple(stop_texts), tokenizer
        self.window = max((len(s.encode()) for s in self.texts), default=0) + 2

    def __call__(self, tokens: Tensor, history: Tensor, step: int) -> Tensor:
        """tokens [B] just sampled (CPU), history [B, ≥ step + 1] the rows' tokens so far → ended [B] bool."""
        ended = torch.isin(tokens, self.ids)
        if self.texts:
            window = history[:, max(0, step + 1 - self.window):step + 1].tolist()
            texts = self.tokenizer.batch_decode(window, skip_special_tokens=False)
            ended |= torch.tensor([any(s in text for s in self.texts) for text in texts])
        return ended

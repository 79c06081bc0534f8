"""Per-token log-probabilities (and entropy) of responses under a causal LM, response positions only.

For rows ``[prompt (left-padded) | response (right-padded)]`` of widths P and T, the token at position
P + t is predicted by the logits at P + t − 1, so only the last T + 1 positions need logits:
``logits_to_keep=T + 1`` skips the vocabulary projection over the prompt (the largest tensor of the
forward for short responses). Logits are divided by the sampling temperature first, as veRL does, so the
log-probs are those of the distribution the responses were sampled from.
"""

from __future__ import annotations

import torch
from torch import Tensor


def token_logprobs(logits: Tensor, tokens: Tensor) -> Tensor:
    """log softmax(logits)[token], computed as logit[token] − logsumexp(logits). [B, T, V], [B, T] → [B, T]."""
    logits = logits.float()
    picked = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def entropy(logits: Tensor) -> Tensor:
    """H = logsumexp(z) − Σ softmax(z)·z per position. [B, T, V] → [B, T]."""
    logits = logits.float()
    probs = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(-1)


def response_logits(model, input_ids: Tensor, attention_mask: Tensor, position_ids: Tensor, n_response: int,
                    temperature: float = 1.0) -> Tensor:
    """Logits [B, T, V] that predict the T response tokens (the last T positions of ``input_ids``)."""
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                logits_to_keep=n_response + 1, use_cache=False)
    logits = out.logits[:, :-1, :]
    return logits / temperature if temperature != 1.0 else logits


def response_logprobs(
    model, input_ids: Tensor, attention_mask: Tensor, position_ids: Tensor, response_ids: Tensor, *,
    temperature: float = 1.0, with_entropy: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """``(logp [B, T], entropy [B, T] or None)`` of ``response_ids`` (the last T columns of ``input_ids``).

    Gradients flow when called with grad enabled; wrap in ``torch.no_grad()`` for old/reference passes.
    Values at padded response positions are meaningless: multiply by the response mask.
    """
    logits = response_logits(model, input_ids, attention_mask, position_ids, response_ids.shape[1], temperature)
    logp = token_logprobs(logits, response_ids)
    return logp, (entropy(logits) if with_entropy else None)

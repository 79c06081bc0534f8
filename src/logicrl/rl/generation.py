"""Sampling responses: prompts (token ids) in, a padded batch of responses with masks out.

Rows are grouped: with ``n`` samples per prompt, rows ``i·n … i·n+n−1`` answer prompt ``i``. A response
ends at the first stop token (an end-of-sequence id, kept in the response) or, with ``stop_texts``, at the
first token whose decoded text completes one of them; otherwise it is cut at ``max_new_tokens``
(``truncated``). Everything after the end is padding (``response_mask`` 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Generation:
    """A batch of prompt + response rows.

    prompt_ids [B, P] left-padded; prompt_mask [B, P]; response_ids [B, T] right-padded with the pad id;
    response_mask [B, T] float 0/1; truncated [B] bool (hit max_new_tokens without a stop).
    """

    prompt_ids: Tensor
    prompt_mask: Tensor
    response_ids: Tensor
    response_mask: Tensor
    truncated: Tensor

    @property
    def response_lengths(self) -> Tensor:
        return self.response_mask.sum(-1).long()

    def sequences(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(input_ids, attention_mask, position_ids)`` of prompt + response, for scoring forwards."""
        input_ids = torch.cat([self.prompt_ids, self.response_ids], dim=1)
        attention_mask = torch.cat([self.prompt_mask, self.response_mask.to(self.prompt_mask.dtype)], dim=1)
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        return input_ids, attention_mask, position_ids


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


def response_end(
    tokens: Sequence[int], stop_token_ids: set[int], stop_texts: Sequence[str], tokenizer=None
) -> int | None:
    """Length of the response inside ``tokens`` (stop token included), or None if it never stops."""
    ends = [t + 1 for t, token in enumerate(tokens) if token in stop_token_ids][:1]
    if stop_texts and tokenizer is not None:
        text = tokenizer.decode(list(tokens), skip_special_tokens=False)
        hits = [text.find(s) + len(s) for s in stop_texts if s in text]
        if hits:  # the shortest token prefix whose text reaches the earliest stop text
            limit = min(hits)
            ends += [next(t for t in range(1, len(tokens) + 1)
                          if len(tokenizer.decode(list(tokens[:t]), skip_special_tokens=False)) >= limit)]
    return min(ends) if ends else None


@torch.no_grad()
def generate(
    model,
    prompts: Sequence[Sequence[int]],
    *,
    n: int = 1,
    max_new_tokens: int,
    pad_token_id: int,
    stop_token_ids: Sequence[int],
    temperature: float = 1.0,
    top_p: float = 1.0,
    greedy: bool = False,
    stop_texts: Sequence[str] = (),
    tokenizer=None,
    seed: int | None = None,
) -> Generation:
    """Sample ``n`` responses per prompt (greedy: the same response ``n`` times).

    ``seed`` makes sampling reproducible (the trainer passes one per step, so a resumed run samples the
    same responses). ``stop_texts`` needs ``tokenizer`` (stop strings may span tokens).
    """
    device = next(model.parameters()).device
    rows = [p for p in prompts for _ in range(n)]
    prompt_ids, prompt_mask = left_pad(rows, pad_token_id)
    if seed is not None:
        torch.manual_seed(seed)
    sampling = {} if greedy else {"temperature": temperature, "top_p": top_p, "top_k": 0}
    out = model.generate(
        input_ids=prompt_ids.to(device),
        attention_mask=prompt_mask.to(device),
        max_new_tokens=max_new_tokens,
        do_sample=not greedy,
        pad_token_id=pad_token_id,
        eos_token_id=list(stop_token_ids),
        stop_strings=list(stop_texts) or None,
        tokenizer=tokenizer if stop_texts else None,
        **sampling,
    ).cpu()
    generated = out[:, prompt_ids.shape[1]:]
    stops = set(stop_token_ids)
    lengths, truncated = [], []
    for row in generated.tolist():
        end = response_end(row, stops, stop_texts, tokenizer)
        lengths.append(min(end, max_new_tokens) if end is not None else len(row))
        truncated.append(end is None)
    width = max(max(lengths), 1)
    response_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    response_mask = torch.zeros((len(rows), width))
    for i, length in enumerate(lengths):
        response_ids[i, :length] = generated[i, :length]
        response_mask[i, :length] = 1.0
    return Generation(prompt_ids, prompt_mask, response_ids, response_mask, torch.tensor(truncated))

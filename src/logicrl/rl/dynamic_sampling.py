"""DAPO's dynamic sampling: keep only the puzzles whose responses disagree, draw more until the batch is full.

A group whose ``group_size`` responses all get the same score has zero advantage under every group-baseline
estimator and only dilutes the batch. `fill_batch` drops those groups and calls ``draw(k)`` for the k-th
extra set of puzzles (k = 1, 2, ...) until ``groups`` groups carry signal or ``max_draws`` draws were made;
at the cap the batch is topped up with the dropped groups, first drawn first, so its size never changes.
The trainer makes ``draw(k)`` a pure function of (seed, step, k), so a resumed run draws the same puzzles.
Source: Yu et al., DAPO, arXiv 2503.14476 §3.3; veRL recipe/dapo (filter_groups, max_num_gen_batches).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from logicrl.engine.sequences import Generation


def signal_groups(scores: Tensor, group_size: int) -> Tensor:
    """[G] bool: True where the group's scores are not all equal (max > min).

    Shapes: scores [G·group_size], rows grouped consecutively → [G]."""
    grouped = scores.view(-1, group_size)
    return grouped.amax(-1) > grouped.amin(-1)


def select_rows(generation: Generation, rows: Tensor) -> Generation:
    """The rows ``rows`` of a generation (all of its columns)."""
    pick = (lambda t: None if t is None else t[rows])
    return Generation(pick(generation.prompt_ids), pick(generation.prompt_mask), pick(generation.response_ids),
                      pick(generation.response_mask), pick(generation.truncated), pick(generation.logprobs))


def concat_generations(parts: Sequence[Generation], pad_token_id: int) -> Generation:
    """Stack generations row-wise: prompts left-padded and responses right-padded to the widest part."""
    prompt_width = max(g.prompt_ids.shape[1] for g in parts)
    width = max(g.response_ids.shape[1] for g in parts)

    def left(t: Tensor, value) -> Tensor:
        return F.pad(t, (prompt_width - t.shape[1], 0), value=value)

    def right(t: Tensor, value) -> Tensor:
        return F.pad(t, (0, width - t.shape[1]), value=value)

    logprobs = None if any(g.logprobs is None for g in parts) else torch.cat([right(g.logprobs, 0.0) for g in parts])
    return Generation(torch.cat([left(g.prompt_ids, pad_token_id) for g in parts]),
                      torch.cat([left(g.prompt_mask, 0) for g in parts]),
                      torch.cat([right(g.response_ids, pad_token_id) for g in parts]),
                      torch.cat([right(g.response_mask, 0.0) for g in parts]),
                      torch.cat([g.truncated for g in parts]), logprobs)


@dataclass
class Draw:
    """One round of sampling: its puzzles' generation, sample rows (``group_size`` per puzzle) and scores [B]."""

    generation: Generation
    rows: list[dict[str, Any]]
    scores: Tensor


def fill_batch(draw: Callable[[int], Draw], *, groups: int, group_size: int, max_draws: int,
               pad_token_id: int) -> tuple[Draw, dict[str, float]]:
    """Draw 0, then more while fewer than ``groups`` groups carry signal and fewer than ``max_draws`` draws were
    made; return a batch of exactly ``groups`` groups (signal first, in draw order; then, at the cap, the
    dropped ones) and ``sampling/draws`` and ``sampling/kept_groups`` (groups with signal in the batch)."""
    kept: list[tuple[Draw, int]] = []
    dropped: list[tuple[Draw, int]] = []
    draws = 0
    while draws < max_draws and len(kept) < groups:
        current = draw(draws)
        draws += 1
        signal = signal_groups(current.scores, group_size).tolist()
        kept += [(current, g) for g, s in enumerate(signal) if s]
        dropped += [(current, g) for g, s in enumerate(signal) if not s]
    chosen = (kept + dropped)[:groups]
    parts, rows, scores = [], [], []
    for part, g in chosen:
        index = torch.arange(g * group_size, (g + 1) * group_size)
        parts.append(select_rows(part.generation, index))
        rows += part.rows[g * group_size:(g + 1) * group_size]
        scores.append(part.scores[index])
    batch = Draw(concat_generations(parts, pad_token_id), rows, torch.cat(scores))
    return batch, {"sampling/draws": float(draws), "sampling/kept_groups": float(min(len(kept), groups))}

"""Score shaping on top of the reward: DAPO's length handling (the soft overlong punishment, masking truncated
responses out of the loss), and for responses in the reasoning-by-cases form trace shaping and answer-consistency
shaping (per response) and check-line credit (per token).

Pure functions. L_max = ``rollout.max_response_tokens``, L_cache = ``algorithm.overlong_buffer``.
Source: Yu et al., DAPO, arXiv 2503.14476 §3.4 (eq. 13) and veRL ``recipe/dapo`` (``overlong_buffer``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from logicrl.puzzles.audit import audit_cases, audit_lines, last_case
from logicrl.puzzles.record import Puzzle


def overlong_penalty(lengths: Tensor, max_tokens: int, buffer: int, factor: float = 1.0) -> Tensor:
    """Soft overlong punishment, added to each response's score (DAPO eq. 13, times ``factor``):

        R_length(|y|) = 0                                  |y| ≤ L_max − L_cache
                      = ((L_max − L_cache) − |y|) / L_cache  L_max − L_cache < |y| ≤ L_max
                      = −1                                 |y| > L_max
    so the penalty falls linearly from 0 to −factor over the last L_cache tokens of the budget.
    Source: arXiv 2503.14476 §3.4; veRL recipe/dapo overlong_buffer (len, penalty_factor).
    Shapes: lengths [B] (response tokens) → [B] float.
    """
    if not 0 < buffer <= max_tokens:
        raise ValueError(f"the overlong buffer must be in 1..{max_tokens} tokens, got {buffer}")
    expected = max_tokens - buffer
    return torch.clamp((expected - lengths.float()) / buffer, min=-1.0, max=0.0) * factor


def mask_truncated(mask: Tensor, truncated: Tensor) -> Tensor:
    """Overlong filtering (DAPO §3.4): the loss mask without the responses cut at the length budget.

    m'_it = m_it · (1 − truncated_i). Applied after the advantages, so truncated responses still count in
    their group's baseline but contribute no loss, KL or entropy term and no token to any average.
    Source: arXiv 2503.14476 §3.4 ("overlong filtering"). Shapes: mask [B, T], truncated [B] bool → [B, T].
    """
    return mask * (~truncated.bool()).to(mask.dtype)[:, None]


def trace_check_shaping(responses: Sequence[str], records: Sequence[Mapping[str, Any]], weight: float) -> Tensor:
    """Process shaping for traces by cases (logicrl's, not the paper's reward), added to each response's score:

        s_i = w · (c_i / max(k_i, 1) − 1)

    with k_i the response's check lines and c_i those whose truth value and verdict are both right under their
    case (`logicrl.puzzles.audit.audit_cases`). A trace whose every check is right loses nothing, so the best
    score stays the paper's; one without check lines loses w. Two responses with the same answer then score
    apart when one reasoned with fewer slips, which the outcome reward alone cannot see.
    Shapes: ``responses[i]`` answers ``records[i]`` → [len(responses)] float.
    """
    if len(responses) != len(records):
        raise ValueError(f"{len(responses)} responses for {len(records)} records")
    shares = []
    for response, record in zip(responses, records):
        counts = audit_cases(response, record)
        shares.append(counts["checks_right"] / max(counts["checks"], 1))
    return weight * (torch.tensor(shares, dtype=torch.float32) - 1.0)


def trace_answer_shaping(responses: Sequence[str], answers: Sequence[Mapping[str, str] | None],
                         records: Sequence[Mapping[str, Any]], weight: float) -> Tensor:
    """Consistency shaping for traces by cases (logicrl's, not the paper's reward), added to each response's score:

        s_i = −w · [a case line ∧ a parsed answer ∧ answer_i ≠ the last case line's assignment]

    A trace by cases ends on the case it accepts, so its answer should be that case; a response that names one
    case, checks the roles of another and answers those (the ninth attempt's traces, docs/experiments.md)
    loses w even when the answer is right. Responses without case lines or without a parsed answer are left to the
    reward. ``answers[i]``: person → role word as the reward parsed it (`logicrl.evaluate.scoring`), or None.
    Shapes: ``responses[i]`` answers ``records[i]`` → [len(responses)] float.
    """
    if not len(responses) == len(answers) == len(records):
        raise ValueError(f"{len(responses)} responses, {len(answers)} answers for {len(records)} records")
    values = []
    for response, answer, record in zip(responses, answers, records):
        puzzle = Puzzle.from_record(dict(record))
        case = last_case(response, puzzle)
        parsed = tuple(answer[name] == puzzle.roles.word(True) for name in puzzle.names) \
            if answer and all(name in answer for name in puzzle.names) else None
        values.append(-weight if case is not None and parsed is not None and parsed != case else 0.0)
    return torch.tensor(values, dtype=torch.float32)


def token_texts(decode: Callable[[list[int]], str], ids: Sequence[int]) -> list[str]:
    """Each token's share of the response text, in order, so that ``"".join`` gives ``decode(ids)``: token t's
    text is what decoding it after the tokens before it adds, read with those tokens as context (incremental
    detokenization, as vLLM and transformers' ``TextStreamer`` do). Decoding a token alone loses what depends on
    its neighbours: a SentencePiece decoder drops a lone ``▁word``'s space ("says Oliver" came back
    "saysOliver", so no check line matched), and a character split over byte tokens decodes as U+FFFD; such a
    token gets ``""`` and the token that completes the character holds all of it."""
    texts: list[str] = []
    start = read = 0  # the context window ids[start:read] was decoded already; ids[read:] not yet
    for t in range(len(ids)):
        before = decode(list(ids[start:read])) if read > start else ""
        now = decode(list(ids[start:t + 1]))
        if now.endswith("\ufffd") or len(now) <= len(before) or not now.startswith(before):
            texts.append("")  # an incomplete character (or nothing yet): the next token completes it
            continue
        texts.append(now[len(before):])
        start, read = read, t + 1
    return texts


def first_difference(a: str, b: str) -> int:
    """The index of the first character where ``a`` and ``b`` differ (the shorter length if one is a prefix of
    the other; ``len(a)`` if they are equal)."""
    return next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def check_line_credit(pieces: Sequence[Sequence[str]], records: Sequence[Mapping[str, Any]], weight: float,
                      width: int) -> tuple[Tensor, list[float]]:
    """Per-token credit for traces by cases (logicrl's, not the paper's), added to the advantages. Each check
    line is compared character by character with the line the template trace writes for that speaker under that
    case (`logicrl.puzzles.audit.audit_lines`):

        c_t = +w   if token t lies on the line before its first wrong character (all of it, when the line is right)
              −w   if token t holds the line's first wrong character
               0   otherwise (after the first error, case lines, the answer, other text, and a check line
                   whose speaker was already checked under the same case line: repeats are never paid, or a
                   loop of right lines would out-earn the answer, as it did in a pilot)

    An outcome advantage gives every token of a trace the sign of the whole trace, so a right lookup in a failed
    trace is pushed down and a wrong one in a lucky trace up. Here each lookup is credited on its own, and only
    the first slip of a line is pushed down: what follows it (a verdict that agrees with a wrong value) is
    consistent and gets no credit either way. Lines are read from the tokens' own text (`token_texts`: each token
    decoded in context), so they match the tokens exactly. ``pieces[i]`` are the decoded tokens of response i (which answers ``records[i]``); the credit is
    padded to ``width`` with 0. Returns ([B, width] credit, share of right check lines per response, 0.0 when it
    has none: a response that stops checking has no right line, as `trace_check_shaping` counts it).
    """
    if len(pieces) != len(records):
        raise ValueError(f"{len(pieces)} responses for {len(records)} records")
    credit = torch.zeros(len(pieces), width)
    shares = []
    for i, (row, record) in enumerate(zip(pieces, records)):
        text = "".join(row)
        starts = list(itertools.accumulate((len(p) for p in row), initial=0))  # token t: [starts[t], starts[t+1])
        lines = text.split("\n")  # as audit_lines splits it: its line indices index this list
        line_starts = list(itertools.accumulate((len(line) + 1 for line in lines), initial=0))
        case, paid, checks, right = None, set(), 0, 0  # paid: (case line, expected check line) already credited
        for index, kind, _, expected in audit_lines(text, record):
            raw = lines[index]
            line = raw.strip()
            if kind == "case":
                case = line
                continue
            checks += 1
            right += line == expected
            if expected is not None and (case, expected) in paid:
                continue  # the same speaker again under the same case line: counted, never paid twice
            paid.add((case, expected))
            begin = line_starts[index] + len(raw) - len(raw.lstrip())
            wrong_at = None if line == expected else begin + first_difference(line, expected or "")
            for t in range(min(len(row), width)):
                if starts[t + 1] <= begin or starts[t] >= begin + len(line):
                    continue  # not on this line
                if wrong_at is None or starts[t + 1] <= wrong_at:
                    credit[i, t] = weight
                elif starts[t] <= wrong_at:
                    credit[i, t] = -weight
        shares.append(right / checks if checks else 0.0)
    return credit, shares

"""Generate responses to puzzle records and score them: the step shared by validation and evaluation.

`generate_and_score` returns one flat row per sample (puzzle id, number of people, response, length,
reward breakdown, parsed assignment; see `score_sample`), the format of ``rollouts/step_*.jsonl`` and of
evaluation outputs; `summarize_rows` turns rows into the per-number-of-people table (accuracy = format
right and every role right, as the paper's evaluation).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from logicrl.prompts import END_OF_TURN_TOKENS, PromptConfig, encode_prompts
from logicrl.reward.score import RewardConfig, ScoreBreakdown, score
from logicrl.rl.generation import Generation, generate


def score_generation(
    records: Sequence[Mapping[str, Any]], generation: Generation, tokenizer, *, n: int, prompt: PromptConfig,
    reward: RewardConfig,
) -> tuple[list[dict[str, Any]], list[ScoreBreakdown]]:
    """Decode and score each row of ``generation`` (rows grouped ``n`` per record); return rows and scores."""
    rows, breakdowns = [], []
    lengths = generation.response_lengths.tolist()
    for i, (ids, length) in enumerate(zip(generation.response_ids.tolist(), lengths, strict=True)):
        text = tokenizer.decode(ids[:length], skip_special_tokens=True)
        row, verdict = score_sample(records[i // n], sample=i % n, response=text, length=length,
                                    truncated=bool(generation.truncated[i]),
                                    prefilled_think=prompt.prefilled_think, reward=reward)
        rows.append(row)
        breakdowns.append(verdict)
    return rows, breakdowns


def score_sample(
    record: Mapping[str, Any], *, sample: int, response: str, length: int, truncated: bool,
    prefilled_think: bool, reward: RewardConfig,
) -> tuple[dict[str, Any], ScoreBreakdown]:
    """Score one decoded response to ``record``; return its row and the reward breakdown.

    Row fields: ``id``, ``n_people``, ``sample`` (index among the puzzle's samples), ``response``,
    ``length`` (tokens), ``truncated``, ``reward``, ``solved``, ``format_ok``, ``format_reason``,
    ``answer_status``, ``assignment`` (person -> role word parsed, or None) and ``prefilled_think`` (how the
    response was read, so a later rescoring reads it the same way).
    """
    verdict = score(response, record["solution_text_format"], prefilled_think=prefilled_think,
                    roles=record.get("knight_knave"), question=record.get("quiz"), config=reward)
    row = {
        "id": record.get("id"), "n_people": record.get("n_people", len(record["names"])), "sample": sample,
        "response": response, "length": length, "truncated": truncated,
        "reward": verdict.total, "solved": verdict.solved, "format_ok": verdict.format_ok,
        "format_reason": verdict.format_reason, "answer_status": verdict.answer_status,
        "assignment": verdict.assignment, "prefilled_think": prefilled_think,
    }
    return row, verdict


def generate_and_score(
    model, tokenizer, records: Sequence[Mapping[str, Any]], *, prompt: PromptConfig, reward: RewardConfig,
    max_new_tokens: int, n: int = 1, greedy: bool = True, temperature: float = 1.0, top_p: float = 1.0,
    batch_size: int = 32, stop_texts: Sequence[str] = (), seed: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Sample ``n`` responses per record (greedy by default) in batches of ``batch_size`` rows; score them."""
    prompts = encode_prompts(list(records), tokenizer, prompt)
    per_batch = max(1, batch_size // n)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(records), per_batch):
        chunk = list(records[start:start + per_batch])
        generation = generate(
            model, prompts[start:start + per_batch], n=n, max_new_tokens=max_new_tokens, greedy=greedy,
            temperature=temperature, top_p=top_p, pad_token_id=tokenizer.pad_token_id,
            stop_token_ids=stop_token_ids(tokenizer), stop_texts=stop_texts, tokenizer=tokenizer,
            seed=None if seed is None else seed + start,
        )
        rows += score_generation(chunk, generation, tokenizer, n=n, prompt=prompt, reward=reward)[0]
        if progress:
            progress(len(chunk))
    return rows


def stop_token_ids(tokenizer) -> list[int]:
    """Ids a response stops at: eos, the end-of-turn tokens of `END_OF_TURN_TOKENS` and ``<|endoftext|>``,
    those the vocabulary has."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    for token in (*END_OF_TURN_TOKENS, "<|endoftext|>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id and token_id >= 0:
            ids.add(token_id)
    return sorted(ids)


def summarize_rows(rows: Sequence[Mapping[str, Any]]) -> dict[int, dict[str, float]]:
    """Per number of people: ``n`` samples, ``acc`` (solved share), ``format_ok``, ``reward``, ``length``,
    ``truncated`` (share cut at the length cap)."""
    groups: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[int(row["n_people"])].append(row)
    table = {}
    for people in sorted(groups):
        group = groups[people]
        count = len(group)
        table[people] = {
            "n": count,
            "acc": sum(r["solved"] for r in group) / count,
            "format_ok": sum(r["format_ok"] for r in group) / count,
            "reward": sum(r["reward"] for r in group) / count,
            "length": sum(r["length"] for r in group) / count,
            "truncated": sum(r["truncated"] for r in group) / count,
        }
    return table

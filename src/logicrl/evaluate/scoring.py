"""Generate responses to puzzle records and score them: the step shared by validation and evaluation.

`generate_and_score` returns one flat row per sample (puzzle id, number of people, response, length,
reward breakdown, parsed assignment; see `score_sample`), the format of ``rollouts/step_*.jsonl`` and of
evaluation outputs (`logicrl.evaluate.metrics.summarize_rows` turns them into the per-number-of-people table).
Another task (``logicrl eval math``) passes its own
`Scorer` and keeps the generation, batching and rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from logicrl.engine.decode import generate
from logicrl.engine.sequences import Generation
from logicrl.prompts import END_OF_TURN_TOKENS, PromptConfig, encode_prompts
from logicrl.puzzles.record import people_of
from logicrl.reward.score import DEFAULT_CONFIG, RewardConfig, ScoreBreakdown, score

# Scores one decoded response to a record: ``scorer(record, sample=, response=, length=, truncated=,
# prefilled_think=)`` -> (row, verdict); `score_sample` with a reward config is the puzzles' scorer.
Scorer = Callable[..., tuple[dict[str, Any], Any]]


def resolve_scorer(reward: RewardConfig | None, scorer: Scorer | None) -> Scorer:
    """``scorer`` if given, else the puzzle reward `score_sample` with ``reward`` (default: the paper's)."""
    if scorer is not None:
        return scorer
    return partial(score_sample, reward=reward or DEFAULT_CONFIG)


def score_generation(
    records: Sequence[Mapping[str, Any]], generation: Generation, tokenizer, *, n: int, prompt: PromptConfig,
    reward: RewardConfig | None = None, scorer: Scorer | None = None,
) -> tuple[list[dict[str, Any]], list[ScoreBreakdown]]:
    """Decode and score each row of ``generation`` (rows grouped ``n`` per record); return rows and scores
    (the verdicts of ``scorer``, by default the puzzle reward with ``reward``)."""
    scorer = resolve_scorer(reward, scorer)
    rows, breakdowns = [], []
    lengths = generation.response_lengths.tolist()
    for i, (ids, length) in enumerate(zip(generation.response_ids.tolist(), lengths, strict=True)):
        text = tokenizer.decode(ids[:length], skip_special_tokens=True)
        row, verdict = scorer(records[i // n], sample=i % n, response=text, length=length,
                              truncated=bool(generation.truncated[i]), prefilled_think=prompt.prefilled_think)
        rows.append(row)
        breakdowns.append(verdict)
    return rows, breakdowns


def quiz_digest(record: Mapping[str, Any]) -> str:
    """The puzzle a response answered: the first 12 hex digits of the SHA-1 of its text (``quiz``). An id names
    a place (a twin's is ``<original id>~<kind>`` whatever the seed or source that made it), this the puzzle."""
    return hashlib.sha1(str(record.get("quiz", "")).encode()).hexdigest()[:12]


def score_sample(
    record: Mapping[str, Any], *, sample: int, response: str, length: int, truncated: bool,
    prefilled_think: bool, reward: RewardConfig,
) -> tuple[dict[str, Any], ScoreBreakdown]:
    """Score one decoded response to ``record``; return its row and the reward breakdown.

    Row fields: ``id``, ``quiz_sha1`` (`quiz_digest`: a rescore refuses a puzzle of that id with another text),
    ``n_people``, ``sample`` (index among the puzzle's samples), ``response``, ``length`` (tokens),
    ``truncated``, ``reward``, ``solved``, ``format_ok``, ``format_reason``, ``answer_status``, ``assignment``
    (person -> role word parsed, or None) and ``prefilled_think`` (how the response was read, so a later
    rescoring reads it the same way).
    """
    verdict = score(response, record["solution_text_format"], prefilled_think=prefilled_think,
                    roles=record.get("knight_knave"), question=record.get("quiz"), config=reward)
    row = {
        "id": record.get("id"), "quiz_sha1": quiz_digest(record), "n_people": people_of(record), "sample": sample,
        "response": response, "length": length, "truncated": truncated,
        "reward": verdict.total, "solved": verdict.solved, "format_ok": verdict.format_ok,
        "format_reason": verdict.format_reason, "answer_status": verdict.answer_status,
        "assignment": verdict.assignment, "prefilled_think": prefilled_think,
    }
    return row, verdict


def generate_and_score(
    model, tokenizer, records: Sequence[Mapping[str, Any]], *, prompt: PromptConfig,
    reward: RewardConfig | None = None, max_new_tokens: int, n: int = 1, greedy: bool = True,
    temperature: float = 1.0, top_p: float = 1.0, batch_size: int = 32, stop_texts: Sequence[str] = (),
    seed: int | None = None, progress: Callable[[int], None] | None = None, scorer: Scorer | None = None,
    first_index: int = 0, total: int | None = None, status: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Sample ``n`` responses per record (greedy by default) in batches of ``batch_size`` rows; score them
    with ``scorer`` (default: the puzzle reward with ``reward``).

    The batch that starts at record i samples with seed ``seed + first_index + i``: ``first_index`` is where
    ``records`` start in a longer list cut into chunks of whole batches (a resumed evaluation), so the
    chunks draw what one call over the whole list would. ``status`` hears, while a batch decodes, a line such as
    "batch 2/14: token 2048/8192, 12/50 rows decoding" (progress only moves when a batch ends), counting the
    batches of the whole list (``total`` records; default ``first_index + len(records)``)."""
    scorer = resolve_scorer(reward, scorer)
    prompts = encode_prompts(list(records), tokenizer, prompt)
    per_batch = max(1, batch_size // n)
    rows: list[dict[str, Any]] = []
    batches = -(-(first_index + len(records) if total is None else total) // per_batch)
    for start in range(0, len(records), per_batch):
        chunk = list(records[start:start + per_batch])
        batch = f"batch {(first_index + start) // per_batch + 1}/{batches}"
        on_step = None if status is None else partial(_report_step, status, batch, max_new_tokens, len(chunk) * n)
        generation = generate(
            model, prompts[start:start + per_batch], n=n, max_new_tokens=max_new_tokens, greedy=greedy,
            temperature=temperature, top_p=top_p, pad_token_id=tokenizer.pad_token_id,
            stop_token_ids=stop_token_ids(tokenizer), stop_texts=stop_texts, tokenizer=tokenizer,
            seed=None if seed is None else seed + first_index + start, on_step=on_step,
        )
        rows += score_generation(chunk, generation, tokenizer, n=n, prompt=prompt, scorer=scorer)[0]
        if progress:
            progress(len(chunk))
    return rows


def _report_step(status: Callable[[str], None], batch: str, max_tokens: int, rows: int, tokens: int,
                 open_rows: int) -> None:
    """`generate_and_score`'s status line, every 64 tokens."""
    if tokens % 64 == 0:
        status(f"{batch}: token {tokens}/{max_tokens}, {open_rows}/{rows} rows decoding")


def stop_token_ids(tokenizer) -> list[int]:
    """Ids a response stops at: eos, the end-of-turn tokens of `END_OF_TURN_TOKENS` and ``<|endoftext|>``,
    those the vocabulary has."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    vocab = tokenizer.get_vocab()  # (not convert_tokens_to_ids != unk: SmolLM2's <|endoftext|> is its unk token)
    ids.update(vocab[token] for token in (*END_OF_TURN_TOKENS, "<|endoftext|>") if token in vocab)
    return sorted(ids)

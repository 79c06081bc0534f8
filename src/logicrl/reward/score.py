"""The Logic-RL reward: format ±1 plus answer +2 / −1.5 / −2 (totals 3, −0.5, −1, −3), in two modes.

``strict`` (default) closes the hacks the paper lists: the response must be exactly
``<think>reasoning</think><answer>claims</answer>`` (whitespace between, end-of-text tokens after), the think
block must hold real reasoning, and the answer must be one "Name is a role" claim per person and nothing
else. ``logic-rl`` reproduces the reference reward of the paper's code, ``verl/utils/reward_score/kk.py``
(github.com/Unakar/Logic-RL), number for number, so runs can be compared with the paper.
docs/reward.md lists the hack catalog and where the modes differ.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from logicrl.reward.language import SCRIPTS, language_mixing
from logicrl.reward.parse import (
    THINK_OPEN,
    AnswerVerdict,
    ExpectedAnswer,
    FormatError,
    judge_answer,
    last_answer_block,
    parse_expected,
    role_pair,
    split_blocks,
    tag_error,
    think_error,
)

MODES = ("strict", "logic-rl")
ANSWER_STATUSES = ("correct", "wrong", "unparseable", "missing")


class RewardConfig(BaseModel):
    """The reward's constants. Defaults give the paper's numbers; the trainer builds one from YAML. Every number
    must be finite, as in every config (a NaN reward makes NaN advantages without an error)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    mode: Literal["strict", "logic-rl"] = Field(
        "strict", description="'strict' closes the paper's hacks; 'logic-rl' reproduces kk.py exactly.")
    format_ok: float = Field(1.0, description="Paper's S_format for an exact think/answer structure.")
    format_bad: float = Field(-1.0, description="Paper's S_format for any other structure.")
    correct: float = Field(2.0, description="Every person's role right: the goal, so it outweighs the rest.")
    wrong: float = Field(
        -1.5, description="Parsed but wrong: above unparseable so the model keeps the extractable form.")
    unparseable: float = Field(
        -2.0, description="Unparseable or missing answer, and any answer when the format failed.")
    partial_credit: float = Field(
        0.0, ge=0.0, le=1.0, description=(
            "Shaped variant (not the paper's): a wrong parsed answer earns this share of correct − wrong per "
            "person it gets right, a denser signal for small models; 0 keeps the paper's reward."))
    language_penalty_weight: float = Field(
        0.0, ge=0.0, description="Subtracts weight × share of other-script units; 0 keeps the paper's totals.")
    language_script: str = Field("latin", description="Script of the prompts (K&K puzzles are English).")
    min_think_words: int = Field(
        1, ge=1, description="Fewest words the think block needs; 1 keeps the paper's rule.")
    max_question_copy_share: float = Field(
        0.8, gt=0.0, le=1.0,
        description="Think blocks with at least this share copied from the question fail (strict mode).")
    copy_shingle_words: int = Field(
        5, ge=2, description="Length in words of the runs compared with the question when checking copies.")

    @field_validator("language_script")
    @classmethod
    def _known_script(cls, value: str) -> str:
        if value not in SCRIPTS:
            raise ValueError(f"unknown script {value!r}; choose from {SCRIPTS}")
        return value


DEFAULT_CONFIG = RewardConfig()


@dataclass(frozen=True)
class ScoreBreakdown:
    """One response's reward and why. ``total = format_score + answer_score − language_penalty``.

    ``answer_status`` describes the answer block (the only one, or the last one when the format failed)
    even when the format failed; the answer is then still scored ``unparseable`` (−2), as in the paper.
    ``assignment`` maps each person (as written in the expected answer) to the role word parsed, when the
    answer parsed.
    """

    total: float
    format_ok: bool
    format_reason: str | None
    format_score: float
    answer_status: str
    answer_reason: str | None
    answer_score: float
    assignment: dict[str, str] | None
    language_mixing: float
    language_penalty: float
    mode: str

    @property
    def solved(self) -> bool:
        """Format right and every role right: the paper's accuracy criterion."""
        return self.format_ok and self.answer_status == "correct"

    def to_dict(self) -> dict:
        """Every field as a JSON-able dict (`dataclasses.asdict`; not ``solved``, a property). For callers of
        the library; the rollout and sample rows are built by `logicrl.evaluate.scoring.score_sample`."""
        return asdict(self)


def score(
    response: str,
    solution_text_format: str,
    *,
    prefilled_think: bool = False,
    mode: str | None = None,
    roles: tuple[str, str] | Mapping[str, str] | None = None,
    question: str | None = None,
    config: RewardConfig | None = None,
) -> ScoreBreakdown:
    """Score one generated response against a puzzle's expected answer. Never raises on the text of ``response``.

    Args:
        response: the generated text only (not the prompt).
        solution_text_format: the expected answer, e.g. "(1) Zoey is a knight\\n(2) Oliver is a knave".
        prefilled_think: the prompt ended with ``<think>``, so the response starts inside the think block.
        mode: "strict" or "logic-rl"; None uses ``config.mode``.
        roles: the puzzle's (truthful, lying) role words, or its ``knight_knave`` record field. When None
            they come from the expected answer, completed from ``STANDARD_ROLE_PAIRS`` if only one occurs;
            with no partner known, only the word seen is accepted. Strict mode only.
        question: the puzzle text; strict mode then fails a think block mostly copied from it.
        config: the reward constants; None uses the defaults (the paper's).

    Raises:
        ValueError: unknown mode, or (strict mode) a malformed expected answer or role pair.
        TypeError: a ``response`` that is not text (None, a token list).
    """
    if not isinstance(response, str):
        raise TypeError(f"response must be the generated text (a str), got {type(response).__name__}")
    config = config or DEFAULT_CONFIG
    mode = mode or config.mode
    if mode not in MODES:
        raise ValueError(f"unknown reward mode {mode!r}; choose from {MODES}")
    text = THINK_OPEN + response if prefilled_think else response
    if mode == "strict":
        expected = parse_expected(solution_text_format, role_pair(roles))
        error, verdict = _judge_strict(text, expected, question, config)
    else:
        error, verdict = _judge_logic_rl(text, solution_text_format)
    return _assemble(error, verdict, response, mode, config)


def score_batch(
    responses: Sequence[str],
    expected: str | Sequence[str],
    *,
    prefilled_think: bool = False,
    roles: Sequence[tuple[str, str] | Mapping[str, str] | None] | None = None,
    questions: Sequence[str | None] | None = None,
    mode: str | None = None,
    config: RewardConfig | None = None,
) -> list[ScoreBreakdown]:
    """Score many responses. ``expected`` is one answer for all or one per response; ``roles`` and
    ``questions``, when given, hold one entry per response. Other arguments as in ``score``."""
    n = len(responses)
    expected = [expected] * n if isinstance(expected, str) else list(expected)
    roles = [None] * n if roles is None else list(roles)
    questions = [None] * n if questions is None else list(questions)
    if not len(expected) == len(roles) == len(questions) == n:
        raise ValueError(
            f"score_batch got {n} responses, {len(expected)} expected answers, {len(roles)} role pairs "
            f"and {len(questions)} questions; give one per response")
    return [
        score(r, e, prefilled_think=prefilled_think, mode=mode, roles=p, question=q, config=config)
        for r, e, p, q in zip(responses, expected, roles, questions)
    ]


def _assemble(
    error: FormatError | None, verdict: AnswerVerdict, response: str, mode: str, config: RewardConfig
) -> ScoreBreakdown:
    """Turn a format verdict and an answer verdict into the numbers."""
    format_ok = error is None
    format_score = config.format_ok if format_ok else config.format_bad
    answer_score = config.unparseable
    if format_ok and verdict.status == "correct":
        answer_score = config.correct
    elif format_ok and verdict.status == "wrong":
        # partial credit p: wrong + p·(share of people right)·(correct − wrong); p = 0 is the paper's −1.5
        answer_score = config.wrong + config.partial_credit * verdict.share_right * (config.correct - config.wrong)
    mixing = language_mixing(response, config.language_script)
    penalty = config.language_penalty_weight * mixing
    return ScoreBreakdown(
        total=float(format_score + answer_score - penalty),
        format_ok=format_ok,
        format_reason=None if error is None else str(error.value),
        format_score=float(format_score),
        answer_status=verdict.status,
        answer_reason=verdict.reason,
        answer_score=float(answer_score),
        assignment=verdict.assignment,
        language_mixing=mixing,
        language_penalty=penalty,
        mode=mode,
    )


def _judge_strict(
    text: str, expected: ExpectedAnswer, question: str | None, config: RewardConfig
) -> tuple[FormatError | None, AnswerVerdict]:
    """Strict mode: exact block structure, real reasoning, claims-only answer."""
    blocks = split_blocks(text)
    if blocks.error is not None:
        return blocks.error, judge_answer(last_answer_block(text), expected)
    error = think_error(
        blocks.think or "",
        question=question,
        min_words=config.min_think_words,
        max_copy_share=config.max_question_copy_share,
        shingle_words=config.copy_shingle_words,
    )
    return error, judge_answer(blocks.answer, expected)


# ---------------------------------------------------------------------------------------------------------
# logic-rl mode: the reference kk.py, rule for rule (its prints and the unused answer_reward left out).
# ---------------------------------------------------------------------------------------------------------

_KK_MARKERS = ("Assistant:", "<|im_start|>assistant")
_KK_EXPECTED_LINE = re.compile(r"\b([A-Za-z]+)\b.*?\b(knight|knave)\b", re.IGNORECASE)


@lru_cache(maxsize=4096)
def _kk_expected(solution_text_format: str) -> tuple[tuple[str, str], ...]:
    """kk.py ``parse_solution_text_format``: per line, the first word and the first knight/knave."""
    status: dict[str, str] = {}
    for line in solution_text_format.split("\n"):
        match = _KK_EXPECTED_LINE.search(line.strip())
        if match:
            status[match.group(1)] = match.group(2).lower()
    return tuple(status.items())


@lru_cache(maxsize=4096)
def _kk_claim_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(name)}\b\s+is\s+a\s+\b(knight|knave)\b", re.IGNORECASE)


def _kk_parse_answer(answer: str, names: tuple[str, ...]) -> tuple[dict[str, str] | None, str | None]:
    """kk.py ``parse_model_answer``: the knight/knave substring count must equal the number of people,
    then each name's first "Name is a knight|knave" gives its role."""
    lowered = answer.lower()
    count = lowered.count("knight") + lowered.count("knave")
    if count != len(names):
        return None, f"{count} knight/knave mentions for {len(names)} people"
    status: dict[str, str] = {}
    for name in names:
        match = _kk_claim_pattern(name).search(answer)
        if match is None:
            return None, f"no '{name} is a knight/knave'"
        status[name] = match.group(1).lower()
    return status, None


def _judge_logic_rl(text: str, solution_text_format: str) -> tuple[FormatError | None, AnswerVerdict]:
    """logic-rl mode: kk.py's ``compute_score`` rules.

    kk.py drops everything up to the first "Assistant:" (else "<|im_start|>assistant"); with neither it
    would score the answer −2, since veRL handed it prompt+response. Here a text without a marker is taken
    to be the response itself, so both the response alone and the full decoded text score as in kk.py.
    """
    processed = text
    for marker in _KK_MARKERS:
        if marker in text:
            processed = text.split(marker, 1)[1]
            break
    error = tag_error(processed)
    answer = last_answer_block(processed)
    answer = None if answer is None else answer.strip()
    if not answer:
        return error, AnswerVerdict("missing", None, "no answer block" if answer is None else "empty answer")
    expected = dict(_kk_expected(solution_text_format))
    predicted, reason = _kk_parse_answer(answer, tuple(expected))
    if not predicted:  # kk.py tests truthiness: an empty expected answer never scores
        return error, AnswerVerdict("unparseable", None, reason or "expected answer has no knight/knave")
    status = "correct" if predicted == expected else "wrong"
    right = sum(predicted.get(name) == role for name, role in expected.items()) / len(expected)
    return error, AnswerVerdict(status, predicted, None, right)

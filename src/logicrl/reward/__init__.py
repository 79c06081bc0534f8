"""The rule-based reward of Logic-RL: ``score(response, solution_text_format)`` and its parts.

- ``parse``: the think/answer tag structure, think-block checks, answer claims.
- ``score``: the rule (strict and logic-rl modes), ``RewardConfig``, ``ScoreBreakdown``.
- ``language``: the share of a response written in other scripts (language mixing).
"""

from logicrl.reward.language import dominant_script, language_mixing, language_penalty, script_units
from logicrl.reward.parse import (
    END_OF_TEXT_TOKENS,
    STANDARD_ROLE_PAIRS,
    ExpectedAnswer,
    FormatError,
    parse_claims,
    parse_expected,
    question_copy_share,
    role_pair,
    split_blocks,
    starts_inside_think,
)
from logicrl.reward.score import (
    ANSWER_STATUSES,
    DEFAULT_CONFIG,
    MODES,
    RewardConfig,
    ScoreBreakdown,
    score,
    score_batch,
)

__all__ = [
    "ANSWER_STATUSES",
    "DEFAULT_CONFIG",
    "END_OF_TEXT_TOKENS",
    "MODES",
    "STANDARD_ROLE_PAIRS",
    "ExpectedAnswer",
    "FormatError",
    "RewardConfig",
    "ScoreBreakdown",
    "dominant_script",
    "language_mixing",
    "language_penalty",
    "parse_claims",
    "parse_expected",
    "question_copy_share",
    "role_pair",
    "score",
    "score_batch",
    "script_units",
    "split_blocks",
    "starts_inside_think",
]

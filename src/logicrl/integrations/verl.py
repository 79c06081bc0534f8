"""veRL adapter: ``compute_score`` for ``custom_reward_function`` (veRL's reward signature).

Point veRL at it with (``logicrl verl launch`` does)::

    reward.custom_reward_function.path=pkg://logicrl.integrations.verl
    reward.custom_reward_function.name=compute_score

veRL decodes the response tokens only, so ``solution_str`` is the generated text. With the Logic-RL
prompt (assistant turn pre-filled with ``<think>``) it starts inside the think block; the row's
``extra_info["prefilled_think"]`` says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from logicrl.reward.score import RewardConfig, score


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Mapping[str, Any] | str,
    extra_info: Mapping[str, Any] | None = None,
    **reward_kwargs: Any,
) -> float:
    """Score one veRL rollout with ``logicrl.reward.score``; returns ``ScoreBreakdown.total``.

    Args:
        data_source: the dataset tag veRL passes through; not used (every row is a K&K puzzle).
        solution_str: the decoded response.
        ground_truth: ``{"solution_text_format": ...}`` as in Logic-RL's data (a bare string also works);
            may carry ``knight_knave`` (role words) and ``quiz`` (the question).
        extra_info: optional keys ``prefilled_think`` (bool), ``mode``, ``knight_knave``, ``quiz``; these
            override the same keys of ``ground_truth``.
        reward_kwargs: ``custom_reward_function.reward_kwargs`` from the veRL config: ``prefilled_think``
            (the launcher sets it from ``prompt.prefill``; it overrides the per-row keys) and
            ``RewardConfig`` fields (e.g. ``mode="logic-rl"``).

    ``prefilled_think`` is a fact about the prompt, never guessed from the response (a guess would accept a
    response that opens a second ``<think>`` after the pre-fill): `logicrl verl export` writes it into every
    row's ``extra_info``, the launcher into ``reward_kwargs``. Without it the text is scored as given, as
    kk.py scores its decoded text.
    """
    del data_source
    fields: dict[str, Any] = (
        dict(ground_truth) if isinstance(ground_truth, Mapping) else {"solution_text_format": ground_truth}
    )
    fields.update(extra_info or {})
    prefilled = bool(reward_kwargs.pop("prefilled_think", fields.get("prefilled_think", False)))
    config = RewardConfig(**reward_kwargs) if reward_kwargs else None
    breakdown = score(
        solution_str,
        str(fields["solution_text_format"]),
        prefilled_think=prefilled,
        mode=fields.get("mode"),
        roles=fields.get("knight_knave"),
        question=fields.get("quiz"),
        config=config,
    )
    return breakdown.total

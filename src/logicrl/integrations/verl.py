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

# Keywords veRL's reward loop passes to every custom reward function when a reward model router is set up
# (`verl.experimental.reward_loop.reward_manager.naive`): nothing a rule-based reward reads.
VERL_KEYWORDS = frozenset({"reward_router_address", "reward_model_tokenizer"})
ROW_KEYS = ("prefilled_think", "mode")  # per-row settings that the launcher's reward_kwargs override


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Mapping[str, Any] | str,
    extra_info: Mapping[str, Any] | None = None,
    **reward_kwargs: Any,
) -> dict[str, float]:
    """Score one veRL rollout with ``logicrl.reward.score``.

    Returns ``{"score": total, "acc": 1.0 if solved else 0.0, "format": 1.0 if the format held else 0.0}``. veRL
    trains on ``score`` and reports every key per data source in validation, ``acc`` as its headline
    (``val-core/kk_3ppl/acc/mean@1``: the accuracy on 3-person puzzles); a bare float would be reported under
    ``acc`` too, making the mean reward look like an accuracy.

    Args:
        data_source: the dataset tag veRL passes through; not used (every row is a K&K puzzle).
        solution_str: the decoded response.
        ground_truth: ``{"solution_text_format": ...}`` as in Logic-RL's data (a bare string also works);
            may carry ``knight_knave`` (role words) and ``quiz`` (the question).
        extra_info: optional keys ``prefilled_think`` (bool), ``mode``, ``knight_knave``, ``quiz``; these
            override the same keys of ``ground_truth``.
        reward_kwargs: ``custom_reward_function.reward_kwargs`` from the veRL config: ``prefilled_think``
            (the launcher sets it from ``prompt.prefill``) and ``RewardConfig`` fields (e.g. ``mode="logic-rl"``,
            the launcher's ``reward.mode``); both override the per-row keys. veRL's own `VERL_KEYWORDS` are
            ignored; any other key is a ValueError naming the valid ones.

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
    settings = {key: value for key, value in reward_kwargs.items() if key not in VERL_KEYWORDS}
    fields.update({key: settings.pop(key) for key in ROW_KEYS if key in settings})
    unknown = sorted(set(settings) - set(RewardConfig.model_fields))
    if unknown:
        valid = ", ".join([*ROW_KEYS, *(key for key in RewardConfig.model_fields if key != "mode")])
        raise ValueError(f"unknown reward_kwargs key(s) {', '.join(unknown)} for logicrl's compute_score "
                         f"(valid: {valid})")
    breakdown = score(
        solution_str,
        str(fields["solution_text_format"]),
        prefilled_think=bool(fields.get("prefilled_think", False)),
        mode=fields.get("mode"),
        roles=fields.get("knight_knave"),
        question=fields.get("quiz"),
        config=RewardConfig(**settings) if settings else None,
    )
    return {"score": breakdown.total, "acc": float(breakdown.solved), "format": float(breakdown.format_ok)}

"""TRL adapter: a reward function for ``GRPOTrainer(reward_funcs=...)``.

    from logicrl.integrations.trl import kk_reward
    trainer = GRPOTrainer(model=..., reward_funcs=kk_reward, train_dataset=ds)  # ds has "prompt" and
                                                                              # "solution_text_format"

TRL passes every dataset column to the reward function as a keyword list; this one reads
``solution_text_format`` and, when present, ``knight_knave`` (role words) and ``quiz`` (the question).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from logicrl.reward.parse import THINK_OPEN, starts_inside_think
from logicrl.reward.score import DEFAULT_CONFIG, RewardConfig, score


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or (conversational) a list of message dicts."""
    if isinstance(completion, str):
        return completion
    return "".join(str(message.get("content") or "") for message in completion)


def prompt_prefills_think(prompt: Any) -> bool | None:
    """Whether a TRL prompt ends with ``<think>`` (a string, or messages whose last one is the assistant's);
    None when it cannot be told."""
    if isinstance(prompt, str):
        return prompt.rstrip().endswith(THINK_OPEN)
    if isinstance(prompt, Sequence) and prompt and isinstance(prompt[-1], dict):
        last = prompt[-1]
        return last.get("role") == "assistant" and str(last.get("content") or "").rstrip().endswith(THINK_OPEN)
    return None


class KKReward:
    """A TRL reward function scoring completions with ``logicrl.reward.score`` (one float each).

    Args:
        config: the reward constants and mode; None uses the paper's.
        prefilled_think: force the pre-fill flag; None reads it from each prompt (ends with ``<think>``?),
            and falls back to ``starts_inside_think`` on the completion.
        name: the name TRL logs the reward under (``rewards/<name>/mean``).
    """

    def __init__(
        self, config: RewardConfig | None = None, *, prefilled_think: bool | None = None, name: str = "kk_reward"
    ) -> None:
        self.config = config or DEFAULT_CONFIG
        self.prefilled_think = prefilled_think
        self.__name__ = name

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        solution_text_format: Sequence[str],
        knight_knave: Sequence[Any] | None = None,
        quiz: Sequence[str] | None = None,
        log_extra: Any = None,
        **_: Any,
    ) -> list[float]:
        """Score a batch; ``log_extra`` (given by TRL) receives each answer status and format reason."""
        breakdowns = []
        for i, completion in enumerate(completions):
            text = completion_text(completion)
            breakdowns.append(score(
                text,
                solution_text_format[i],
                prefilled_think=self._prefilled(prompts[i] if prompts else None, text),
                roles=None if knight_knave is None else knight_knave[i],
                question=None if quiz is None else quiz[i],
                config=self.config,
            ))
        if callable(log_extra):
            log_extra("answer_status", [b.answer_status for b in breakdowns])
            log_extra("format_reason", [b.format_reason or "" for b in breakdowns])
        return [b.total for b in breakdowns]

    def _prefilled(self, prompt: Any, text: str) -> bool:
        if self.prefilled_think is not None:
            return self.prefilled_think
        from_prompt = prompt_prefills_think(prompt)
        return starts_inside_think(text) if from_prompt is None else from_prompt


kk_reward = KKReward()
"""The default instance: the paper's constants, strict mode, pre-fill read from the prompts."""

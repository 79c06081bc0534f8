"""TRL adapter: a reward function for ``GRPOTrainer(reward_funcs=...)``.

    from logicrl.integrations.trl import kk_reward
    trainer = GRPOTrainer(model=..., reward_funcs=kk_reward, train_dataset=ds)  # ds has "prompt" and
                                                                              # "solution_text_format"

TRL passes every dataset column to the reward function as a keyword list; this one reads
``solution_text_format`` and, when present, ``knight_knave`` (role words) and ``quiz`` (the question).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from logicrl.reward.parse import THINK_OPEN, message_text, starts_inside_think
from logicrl.reward.score import DEFAULT_CONFIG, RewardConfig, score

# The message fields in which TRL's `parse_response` (transformers 5, a tokenizer with a response template or
# schema, e.g. Qwen3's) puts the think block it cut out of the content, tags removed.
REASONING_FIELDS = ("reasoning_content", "thinking")


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or (conversational) a list of message dicts. A message whose think
    block TRL parsed out into a `REASONING_FIELDS` field is put back together as ``<think>reasoning</think>``
    before its content (the whitespace around the tags, which the parser drops, is not restored)."""
    if isinstance(completion, str):
        return completion
    return "".join(message_text(message, REASONING_FIELDS) for message in completion)


def has_parsed_reasoning(completion: Any) -> bool:
    """Whether TRL parsed a think block out of ``completion`` (then `completion_text` opens it itself)."""
    return not isinstance(completion, str) and any(
        message.get(field) for message in completion for field in REASONING_FIELDS)


def prompt_prefills_think(prompt: Any) -> bool | None:
    """Whether the text TRL generates from starts inside the think block: a string prompt that ends with
    ``<think>``; None when it cannot be told. Conversational prompts say False: ``GRPOTrainer`` renders them with
    ``add_generation_prompt=True``, so a last assistant message ``<think>`` is closed as a turn of its own and the
    completion starts a new one (warned about: use string prompts, e.g. ``logicrl.prompts.prompt_text``, to
    pre-fill). A chat template that opens the think block in its generation prompt (DeepSeek-R1's distills) is
    not seen here either, so give ``KKReward(prefilled_think=True)`` for one."""
    if isinstance(prompt, str):
        return prompt.rstrip().endswith(THINK_OPEN)
    if isinstance(prompt, Sequence) and prompt and isinstance(prompt[-1], dict):
        last = prompt[-1]
        if last.get("role") == "assistant" and str(last.get("content") or "").rstrip().endswith(THINK_OPEN):
            warnings.warn("a conversational TRL prompt ends with an assistant '<think>' message: GRPOTrainer closes "
                          "that turn (add_generation_prompt=True), so the completion does not start inside the "
                          "think block and is scored as such; pass string prompts (logicrl.prompts.prompt_text) "
                          "to pre-fill <think>", stacklevel=3)
        return False
    return None


class KKReward:
    """A TRL reward function scoring completions with ``logicrl.reward.score`` (one float each).

    Args:
        config: the reward constants and mode; None uses the paper's.
        prefilled_think: force the pre-fill flag; None reads it from each prompt (ends with ``<think>``?),
            and falls back to ``starts_inside_think`` on the completion.
        name: the name TRL logs the reward under (``rewards/<name>/mean``), and the prefix of the columns it
            adds to TRL's completions log (``<name>/answer_status``, ``<name>/format_reason``), so that two
            instances in one trainer keep their own.
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
        if len(solution_text_format) != len(completions):
            raise ValueError(f"{self.__name__}: {len(completions)} completions but {len(solution_text_format)} "
                             "solution_text_format values: give one expected answer per completion")
        breakdowns = []
        for i, completion in enumerate(completions):
            text = completion_text(completion)
            opened_here = has_parsed_reasoning(completion)  # the think block's opening tag is in the text
            breakdowns.append(score(
                text,
                solution_text_format[i],
                prefilled_think=not opened_here and self._prefilled(prompts[i] if prompts else None, text),
                roles=None if knight_knave is None else knight_knave[i],
                question=None if quiz is None else quiz[i],
                config=self.config,
            ))
        if callable(log_extra):
            log_extra(f"{self.__name__}/answer_status", [b.answer_status for b in breakdowns])
            log_extra(f"{self.__name__}/format_reason", [b.format_reason or "" for b in breakdowns])
        return [b.total for b in breakdowns]

    def _prefilled(self, prompt: Any, text: str) -> bool:
        if self.prefilled_think is not None:
            return self.prefilled_think
        from_prompt = prompt_prefills_think(prompt)
        return starts_inside_think(text) if from_prompt is None else from_prompt


kk_reward = KKReward()
"""The default instance: the paper's constants, strict mode, pre-fill read from the prompts."""

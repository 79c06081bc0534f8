"""Prompts: the Logic-RL instruction, the quiz, and the ``<think>`` pre-fill, for every stage.

SFT, RL, evaluation and the veRL export all build prompts here, so a model is trained and tested on
the same text. Two templates:

* ``chat`` (instruct models): system message = the instruction, user message = the quiz, then the
  tokenizer's chat template with the generation prompt, then the pre-fill (``<think>``);
* ``plain`` (base models): ``<instruction>\\n\\nUser: <quiz>\\nAssistant: <think>``, the layout of Logic-RL's
  base template (``make_prefix`` in its examples/data_preprocess/kk.py), which has no space after ``User:``
  and its own instruction (see `SYSTEM_PROMPT`).

The response the model writes starts inside the think block when the pre-fill is ``<think>``; the reward
is told so through `PromptConfig.prefilled_think`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from logicrl.config import StrictModel, checkpoint_run_config
from logicrl.puzzles.cot import cases_text, cot_text
from logicrl.puzzles.record import Puzzle

# The instruction, as a system message. Adapted from the two prompts of Logic-RL's code (Xie et al. 2025;
# github.com/Unakar/Logic-RL, examples/data_preprocess/kk.py, make_prefix):
# * the ``base`` prompt with a space after "solves it." (kk.py: "solves it.The"), "the answer" for "the final
#   answer", and "i.e., <answer> (1) Zoey is a knight\n(2) Oliver is a knight </answer>." for "List the identity
#   of each person one by one, for example, <answer> (1) Zoey is a knight\n(2) Oliver is a knight\n(3)... </answer>.";
# * the ``qwen-instruct`` system message from "The assistant first thinks" on, with "and <answer>" for
#   "and<answer>", one space before "Now" for two, "(2) Oliver is a knight" for "(2) ..." and no final newline;
#   that message opens "You are a helpful assistant." instead of "The user asks a question, and the Assistant
#   solves it.", and kk.py writes it in Qwen's chat markup by hand.
SYSTEM_PROMPT = (
    "The user asks a question, and the Assistant solves it. The assistant first thinks about the reasoning "
    "process in the mind and then provides the user with the answer. The reasoning process and answer are "
    "enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning "
    "process here </think><answer> answer here </answer>. Now the user asks you to solve a logical "
    "reasoning problem. After thinking, when you finally reach a conclusion, clearly state the identity of "
    "each character within <answer> </answer> tags. i.e., <answer> (1) Zoey is a knight\n(2) Oliver is a "
    "knight </answer>."
)


class PromptConfig(StrictModel):
    """How a puzzle becomes the model's input."""

    template: Literal["chat", "plain"] = Field(
        "chat", description="'chat': the tokenizer's chat template (instruct models); 'plain': base models.")
    system_prompt: str = Field(
        SYSTEM_PROMPT, description="The instruction (default: SYSTEM_PROMPT, adapted from Logic-RL's).")
    prefill: str = Field("<think>", description="Text the assistant turn starts with ('' for none).")

    @property
    def prefilled_think(self) -> bool:
        """The response starts inside the think block (tell the reward): the pre-fill opens one and does not
        close it (``<think>``, or ``<think> Let me solve this step by step.``)."""
        return self.prefill.rfind("<think>") > self.prefill.rfind("</think>")


def trained_prompt(model: str) -> PromptConfig | None:
    """The prompt a logicrl checkpoint (``RUN/checkpoints/step_N``) was trained with, read from its run's
    ``config.yaml``; None for any other model, or a config that cannot be read."""
    run = checkpoint_run_config(model)
    if run is None:
        return None
    saved = run.get("prompt", {})
    try:
        return PromptConfig.model_validate(saved if isinstance(saved, Mapping) else {})
    except ValueError:
        return None


def prompt_drift(model: str, prompt: PromptConfig) -> str | None:
    """A warning when ``prompt`` differs from the one the logicrl checkpoint ``model`` was trained with (the
    model would see a prompt it was not trained on: another pre-fill, template or instruction), else None."""
    trained = trained_prompt(model)
    if trained is None or trained == prompt:
        return None
    keys = [k for k in PromptConfig.model_fields if getattr(trained, k) != getattr(prompt, k)]
    changes = ", ".join(f"prompt.{k}={getattr(prompt, k)!r} (trained: {getattr(trained, k)!r})" for k in keys)
    return f"{model} was trained with another prompt than this run's: {changes}; set the same prompt.* to match"


def chat_messages(quiz: str, config: PromptConfig) -> list[dict[str, str]]:
    """The conversation before the assistant turn: ``[system, user]`` (no system if its text is empty)."""
    messages = [{"role": "system", "content": config.system_prompt}] if config.system_prompt else []
    return [*messages, {"role": "user", "content": quiz}]


def prompt_text(quiz: str, tokenizer: Any, config: PromptConfig) -> str:
    """The full prompt string for one quiz, ending with the pre-fill; tokenize it without special tokens."""
    if config.template == "plain":
        head = f"{config.system_prompt}\n\n" if config.system_prompt else ""
        return f"{head}User: {quiz}\nAssistant: {config.prefill}"
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "the tokenizer has no chat template: use prompt.template=plain for a base model"
        )
    text = tokenizer.apply_chat_template(chat_messages(quiz, config), tokenize=False, add_generation_prompt=True)
    return text + config.prefill


def encode_prompts(records: list[Mapping[str, Any]], tokenizer: Any, config: PromptConfig) -> list[list[int]]:
    """Token ids of each record's prompt (special tokens come from the template, none are added)."""
    if not records:
        return []  # a fast tokenizer fails on an empty batch
    texts = [prompt_text(str(r["quiz"]), tokenizer, config) for r in records]
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def cases_reasoning(record: Mapping[str, Any]) -> str:
    """Reasoning by cases (`logicrl.puzzles.cot.case_steps`), computed from the record's statements."""
    puzzle = Puzzle.from_record(dict(record))
    return cases_text(puzzle.statements, puzzle.names, puzzle.roles)


# Template reasoning styles for SFT targets (`logicrl.rl.sft.SFTConfig.trace`): record -> the text inside <think>.
TRACES = {"search": cot_text, "cases": cases_reasoning}


def response_target(record: Mapping[str, Any], config: PromptConfig, trace: str = "search") -> str:
    """The supervised response for a record: template reasoning (`TRACES`) in the
    think/answer format.

    ``<think>`` is left out when the prompt already ends with it; the caller appends the end-of-turn token.
    """
    think = TRACES[trace](record)
    body = f"{think}</think><answer>{record['solution_text_format']}</answer>"
    return f" {body}" if config.prefilled_think else f"<think> {body}"


END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>")


def end_of_turn_id(tokenizer: Any, template: str = "chat") -> int:
    """The token that ends a response. ``chat``: the one that closes an assistant turn, a chat end-of-turn token
    the vocabulary has, else eos. ``plain`` (Logic-RL's base-model layout, no chat turns): eos, where HF
    ``generate``, vLLM and veRL stop (a base model's vocabulary may hold ``<|im_end|>`` too, as Qwen2.5's does)."""
    if template == "plain" and tokenizer.eos_token_id is not None:
        return tokenizer.eos_token_id
    vocab = tokenizer.get_vocab()
    for token in END_OF_TURN_TOKENS:
        if token in vocab:
            return vocab[token]
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no end-of-turn or eos token to end SFT targets with")
    return tokenizer.eos_token_id

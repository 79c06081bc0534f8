"""`PromptConfig.prefilled_think`: whether a pre-fill leaves the response inside the think block, as the reward
and the SFT targets need to know."""

from __future__ import annotations

import pytest

from logicrl.prompts import PromptConfig, response_target
from logicrl.puzzles.dataset import DataConfig, generate
from logicrl.reward.score import score


@pytest.mark.parametrize(("prefill", "inside"), [
    ("<think>", True), ("  <think>\n", True),
    ("<think> Let me solve this step by step.", True),  # was False: every response then scored -3
    ("Sure. <think>", True), ("", False), ("Let me think.", False),
    ("<think>quick</think>", False), ("<think>a</think> <think>", True),
])
def test_a_prefill_that_opens_the_think_block_says_so(prefill, inside):
    assert PromptConfig(prefill=prefill).prefilled_think is inside


def test_a_longer_prefill_gets_targets_without_a_second_think_and_full_reward():
    """The SFT target continues the pre-fill (it opened a second <think>) and scores 3 after it."""
    record = generate(DataConfig(people=[2], train=1, test=0, seed=0))[2]["train"][0]
    config = PromptConfig(prefill="<think> Let me solve this step by step.")
    target = response_target(record, config, trace="search")
    assert "<think>" not in target and target.count("</think>") == 1
    assert score(target, record["solution_text_format"], prefilled_think=config.prefilled_think).total == 3.0

"""`PromptConfig.prefilled_think`: whether a pre-fill leaves the response inside the think block, as the reward
and the SFT targets need to know."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from logicrl.models import resolve_model_path
from logicrl.prompts import PromptConfig, prompt_drift, response_target, trained_prompt
from logicrl.puzzles.dataset import DataConfig, generate
from logicrl.reward.score import score
from logicrl.rl.config import TrainConfig
from logicrl.rl.sft import SFTConfig


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


def test_a_checkpoint_used_with_another_prompt_than_it_was_trained_with_is_named(tmp_path):
    """A logicrl checkpoint's run holds its config.yaml: another pre-fill or template at train/eval is said."""
    checkpoint = tmp_path / "run" / "checkpoints" / "step_000010"
    checkpoint.mkdir(parents=True)
    (tmp_path / "run" / "config.yaml").write_text("prompt:\n  prefill: ''\n  template: chat\n")
    assert trained_prompt(str(checkpoint)) == PromptConfig(prefill="")
    assert prompt_drift(str(checkpoint), PromptConfig(prefill="")) is None
    drift = prompt_drift(str(checkpoint), PromptConfig())
    assert drift == (f"{checkpoint} was trained with another prompt than this run's: prompt.prefill='<think>' "
                     "(trained: ''); set the same prompt.* to match")
    # not a logicrl checkpoint, or a run config that cannot be read: nothing to compare with
    assert prompt_drift("HuggingFaceTB/SmolLM2-135M-Instruct", PromptConfig()) is None
    (tmp_path / "run" / "config.yaml").write_text("prompt: [\n")
    assert trained_prompt(str(checkpoint)) is None


def test_train_and_sft_warn_before_loading_when_the_prompt_drifts(puzzle_dir, tmp_path):
    from logicrl.cli import app
    from logicrl.cli.train import _check_sft, _check_train

    checkpoint = tmp_path / "cold" / "checkpoints" / "step_000001"
    shutil.copytree(resolve_model_path("tiny-random"), checkpoint)
    (tmp_path / "cold" / "config.yaml").write_text("prompt:\n  template: plain\n")
    base = {"model": {"name": str(checkpoint)}, "data": {"train": str(puzzle_dir)}}
    for check, config in ((_check_train, TrainConfig), (_check_sft, SFTConfig)):
        cfg = config.model_validate({**base, "out_dir": str(tmp_path / check.__name__)})
        with pytest.warns(UserWarning, match=r"prompt.template='chat' \(trained: 'plain'\)"):
            check(cfg, False)
    with pytest.warns(UserWarning, match=r"prompt.template='chat' \(trained: 'plain'\)"):
        result = CliRunner().invoke(app, ["eval", "-m", str(checkpoint), "--data", str(puzzle_dir), "--limit", "1",
                                          "--max-tokens", "2", "--out", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output

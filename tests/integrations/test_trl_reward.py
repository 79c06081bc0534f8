"""Tests for logicrl.integrations.trl: the reward function alone, and one GRPOTrainer step on CPU with a
tiny random Llama and a character-level tokenizer built here (nothing is downloaded).

Run: .venv/bin/python -m pytest tests/integrations/test_trl_reward.py
"""

import string

import pytest

from logicrl.integrations.trl import KKReward, kk_reward, prompt_prefills_think
from logicrl.reward import RewardConfig

EXPECTED = "(1) Zoey is a knight\n(2) Oliver is a knave"
CLAIMS = "Zoey is a knight, Oliver is a knave"
THINK = "Zoey accuses Oliver, and only Zoey being a knight is consistent."


def test_reward_function_on_plain_and_conversational_completions():
    prompts = ["Solve it.\n<think>", "Solve it.", [{"role": "user", "content": "Solve it."}]]
    completions = [
        f"{THINK}</think><answer>{CLAIMS}</answer>",
        f"<think>{THINK}</think><answer>{CLAIMS}</answer>",
        [{"role": "assistant", "content": f"<think>{THINK}</think><answer>Zoey is a knave, Oliver is a knave</answer>"}],
    ]
    logged = {}
    rewards = kk_reward(prompts=prompts, completions=completions, solution_text_format=[EXPECTED] * 3,
                        completion_ids=None, trainer_state=None, log_extra=logged.__setitem__, log_metric=None)
    assert rewards == [3.0, 3.0, -0.5]
    assert logged["kk_reward/answer_status"] == ["correct", "correct", "wrong"]


def test_two_rewards_in_one_trainer_log_their_own_columns():
    """TRL extends each logged column by every reward function's values: two instances under one column name
    made it twice as long as the batch, and TRL's completions table (a DataFrame) failed."""
    logged = {}
    lenient = KKReward(RewardConfig(mode="logic-rl"), name="kk_logic_rl")
    completion = f"{THINK}</think><answer>{CLAIMS}</answer> ok"  # text after the answer: strict fails it
    for reward in (kk_reward, lenient):
        reward(["Q <think>"], [completion], [EXPECTED], log_extra=logged.__setitem__)
    assert logged == {"kk_reward/answer_status": ["correct"], "kk_reward/format_reason": ["text after </answer>"],
                      "kk_logic_rl/answer_status": ["correct"], "kk_logic_rl/format_reason": [""]}


@pytest.mark.parametrize("field", ["reasoning_content", "thinking"])
def test_a_think_block_that_trl_parsed_out_is_scored_in_place(field):
    """With a response template (Qwen3's, transformers 5) TRL hands the think block over in its own field, tags
    removed; it is put back before the content, and never counted twice with a pre-filled prompt."""
    parsed = [{"role": "assistant", "content": f"<answer>{CLAIMS}</answer>", field: THINK}]
    prefilled = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "<think>"}]
    assert kk_reward([[{"role": "user", "content": "Q"}], prefilled], [parsed, parsed], [EXPECTED] * 2) == [3.0, 3.0]
    assert kk_reward(["Q"], [[{"role": "assistant", "content": f"<answer>{CLAIMS}</answer>"}]], [EXPECTED]) == [-3.0]


def test_one_expected_answer_per_completion():
    with pytest.raises(ValueError, match="^kk_reward: 2 completions but 1 solution_text_format values"):
        kk_reward(["Q", "Q"], ["a", "b"], [EXPECTED])


def test_prefill_read_from_the_prompt():
    assert prompt_prefills_think("Q\n<think>\n")
    assert not prompt_prefills_think("Q")
    assert not prompt_prefills_think([{"role": "user", "content": "Q <think>"}])
    # GRPOTrainer renders messages with add_generation_prompt=True: an assistant "<think>" is a closed turn
    with pytest.warns(UserWarning, match="closes that turn"):
        assert prompt_prefills_think([{"role": "user", "content": "Q"}, {"role": "assistant", "content": "<think>"}]) \
            is False
    # The prompt ends with <think>, so a completion that repeats it has two opening tags.
    doubled = f"<think>{THINK}</think><answer>{CLAIMS}</answer>"
    assert kk_reward(["Q <think>"], [doubled], [EXPECTED]) == [-3.0]
    assert KKReward(prefilled_think=False)(["Q <think>"], [doubled], [EXPECTED]) == [3.0]


def test_optional_columns_and_config():
    completion = f"Q says Zoey and Oliver.</think><answer>{CLAIMS}</answer> ok"
    lenient = KKReward(RewardConfig(mode="logic-rl"), name="kk_logic_rl")
    assert lenient.__name__ == "kk_logic_rl"
    assert lenient(["<think>"], [completion], [EXPECTED]) == [3.0]
    assert kk_reward(["<think>"], [completion], [EXPECTED], knight_knave=[{"knight": "knight", "knave": "knave"}],
                     quiz=["Q says Zoey and Oliver."]) == [-3.0]


def _tiny_model_and_tokenizer():
    from tokenizers import Tokenizer, decoders, models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>"]
    vocab = {token: i for i, token in enumerate(specials + list(string.printable))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<pad>"))
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>")
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=512, pad_token_id=0, eos_token_id=1, bos_token_id=1,
    )
    return LlamaForCausalLM(config), tokenizer


def claims(solution_text_format: str, *, flip: bool = False) -> str:
    """The answer sentence for a solution ("(1) Zoey is a knight\n(2) ..." -> "Zoey is a knight, ..."), with
    every role swapped when ``flip``."""
    swap = {"knight": "knave", "knave": "knight"} if flip else {}
    lines = [line.split(") ", 1)[1] for line in solution_text_format.splitlines()]
    return ", ".join(" ".join(swap.get(word, word) for word in line.split(" ")) for line in lines)


def test_grpo_trainer_one_step_on_cpu(tmp_path):
    """One GRPO step through TRL's own calling convention (prompts, completions and the dataset's columns as
    keyword arguments). The reward function is handed crafted completions in the first two slots of every
    batch, a right and a wrong answer, so the rewards have hand-known values, vary within each group, and the
    step moves the weights (a constant reward would give zero advantages and leave them as they were)."""
    pytest.importorskip("trl")
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    model, tokenizer = _tiny_model_and_tokenizer()
    before = [p.detach().clone() for p in model.parameters()]
    assert tokenizer.decode(tokenizer("Zoey is a knight")["input_ids"]) == "Zoey is a knight"
    dataset = Dataset.from_dict({
        "prompt": ["Who is a knight?\n<think>", "Who is a knave?\n<think>"],
        "solution_text_format": [EXPECTED, "(1) Ava is a knave\n(2) Bo is a knight"],
    })
    calls = []

    class Crafted(KKReward):
        """The real reward on the model's completions, but a right answer in slot 0, a wrong one in slot 1."""

        def __call__(self, prompts, completions, solution_text_format, **kwargs):
            crafted = [f"{THINK}</think><answer>{claims(solution_text_format[i], flip=i == 1)}</answer>"
                       for i in range(2)]
            completions = crafted + list(completions[2:])
            rewards = super().__call__(prompts, completions, solution_text_format, **kwargs)
            calls.append(rewards)
            return rewards

    args = GRPOConfig(
        output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=4, num_generations=4,
        max_completion_length=8, learning_rate=1e-4, logging_steps=1, report_to="none", save_strategy="no",
        use_cpu=True, bf16=False, seed=0, dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, reward_funcs=Crafted(name="kk_reward"),
                          args=args, train_dataset=dataset)
    trainer.train()
    # slot 0 right (format 1 + answer 2), slot 1 wrong (1 − 1.5); the random model cannot find the format (−3)
    assert calls and all(batch == [3.0, -0.5] + [-3.0] * (len(batch) - 2) for batch in calls), calls
    logged = [entry for entry in trainer.state.log_history if "rewards/kk_reward/mean" in entry]
    every = [r for batch in calls for r in batch]
    assert logged and logged[0]["rewards/kk_reward/mean"] == pytest.approx(sum(every) / len(every))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))

"""Tests for logicrl.integrations.verl.compute_score (veRL's custom_reward_function signature).

Run: .venv/bin/python -m pytest tests/integrations/test_verl_reward.py
"""

import pytest

from logicrl.integrations.verl import compute_score


def total(*args, **kwargs) -> float:
    """``compute_score``'s ``score``: the reward veRL trains on."""
    return compute_score(*args, **kwargs)["score"]

EXPECTED = "(1) Zoey is a knight\n(2) Oliver is a knave\n(3) Ethan is a knight"
CLAIMS = "Zoey is a knight, Oliver is a knave, Ethan is a knight"
THINK = "Zoey accuses Oliver; if Zoey is a knight, Ethan is a knight too."
QUESTION = "You meet 3 inhabitants: Zoey, Oliver, and Ethan. Zoey remarked, Oliver is a knave. Who is who?"
RESPONSES = [
    f"{THINK}</think>\n<answer>{CLAIMS}</answer><|im_end|>",  # continues a <think> pre-fill
    f"<think>{THINK}</think>\n<answer>{CLAIMS}</answer>",  # opens its own think block
    f"{THINK}</think>\n<answer>{CLAIMS.replace('knave', 'knight')}</answer>",
    f"{THINK}</think>\n<answer>{CLAIMS}</answer> extra",
    f"<answer>{CLAIMS}</answer>",
    "",
]


# hand-computed totals: pre-filled prompt (the export's default), then a prompt without the pre-fill
PREFILLED = [3.0, -3.0, -0.5, -3.0, -3.0, -3.0]  # [1] opens a second <think> after the pre-fill: -3, as kk.py
NOT_PREFILLED = [-3.0, 3.0, -3.0, -3.0, -3.0, -3.0]


@pytest.mark.parametrize(("response", "prefilled", "not_prefilled"),
                         list(zip(RESPONSES, PREFILLED, NOT_PREFILLED, strict=True)))
def test_compute_score_by_hand(response, prefilled, not_prefilled):
    truth = {"solution_text_format": EXPECTED}
    got = compute_score("kk_logic", response, truth, {"prefilled_think": True})
    assert got == {"score": prefilled, "acc": float(prefilled == 3.0), "format": float(prefilled > -3.0)}
    assert all(type(value) is float for value in got.values())  # veRL averages every key it is given
    assert total("kk_logic", response, truth, {"prefilled_think": False}) == not_prefilled
    assert total("kk_logic", response, truth) == not_prefilled  # no flag: the text is scored as given


def test_the_export_tells_the_reward_whether_it_prefilled():
    from logicrl.integrations.verl_export import verl_row
    from logicrl.prompts import PromptConfig

    record = {"quiz": QUESTION, "names": ["Zoey", "Oliver", "Ethan"], "knight_knave": {"knight": "knight",
              "knave": "knave"}, "solution_text_format": EXPECTED}
    for prompt, expected in ((PromptConfig(), PREFILLED), (PromptConfig(prefill=""), NOT_PREFILLED)):
        row = verl_row(record, "train", 0, prompt)
        truth = row["reward_model"]["ground_truth"]
        assert [total(row["data_source"], r, truth, row["extra_info"]) for r in RESPONSES] == expected


def test_default_prefill_and_explicit_flag():
    response = RESPONSES[0]
    assert total("kk", response, {"solution_text_format": EXPECTED}, {"prefilled_think": True}) == 3.0
    assert total("kk", response, {"solution_text_format": EXPECTED}, {"prefilled_think": False}) == -3.0
    assert total("kk", RESPONSES[1], EXPECTED) == 3.0  # a bare string as ground truth


def test_extra_info_and_reward_kwargs():
    copied = f"{QUESTION}</think><answer>{CLAIMS}</answer>"
    truth = {"solution_text_format": EXPECTED, "prefilled_think": True}
    assert total("kk", copied, truth) == 3.0
    assert total("kk", copied, truth, {"quiz": QUESTION}) == -3.0
    trailing = RESPONSES[3]
    assert total("kk", trailing, truth) == -3.0
    assert total("kk", trailing, truth, {"mode": "logic-rl"}) == 3.0
    assert total("kk", trailing, truth, None, mode="logic-rl") == 3.0
    odd = {"solution_text_format": "(1) Ava is a zorp", "knight_knave": {"knight": "zorp", "knave": "blip"},
           "prefilled_think": True}
    assert total("kk", f"{THINK}</think><answer>Ava is a blip</answer>", odd) == -0.5


def test_prefill_from_reward_kwargs_overrides_the_row():
    """`logicrl verl launch` passes prefilled_think through veRL's reward_kwargs (merged as keywords)."""
    truth = {"solution_text_format": EXPECTED}
    assert total("kk", RESPONSES[1], truth, None, prefilled_think=True) == -3.0  # a second <think>
    assert total("kk", RESPONSES[0], truth, {"prefilled_think": False}, prefilled_think=True) == 3.0
    assert total("kk", RESPONSES[1], truth, None, prefilled_think=False, mode="logic-rl") == 3.0


def test_verl_keywords_are_ignored_and_unknown_keys_are_one_line_errors():
    """veRL's reward loop passes ``reward_router_address`` and ``reward_model_tokenizer`` to every custom reward
    when a reward router exists; a misspelt reward_kwargs key is named with the valid ones."""
    truth = {"solution_text_format": EXPECTED}
    assert total("kk", RESPONSES[0], truth, {"prefilled_think": True}, reward_router_address="host:1",
                 reward_model_tokenizer=object()) == 3.0
    with pytest.raises(ValueError, match=r"^unknown reward_kwargs key\(s\) corect for logicrl's compute_score "
                                         r"\(valid: prefilled_think, mode, format_ok, .*\)$"):
        compute_score("kk", RESPONSES[0], truth, None, corect=5.0)


def test_reward_kwargs_override_the_row_for_every_key():
    """The launcher's reward_kwargs (the run's settings) win over a row's extra_info: pre-fill and mode alike."""
    truth = {"solution_text_format": EXPECTED}
    trailing = RESPONSES[3]  # an answer followed by text: strict -3, logic-rl 3
    assert total("kk", trailing, truth, {"prefilled_think": True, "mode": "strict"}, mode="logic-rl") == 3.0
    assert total("kk", trailing, truth, {"prefilled_think": True, "mode": "logic-rl"}, mode="strict") == -3.0
    assert total("kk", trailing, truth, {"prefilled_think": True, "mode": "logic-rl"}) == 3.0  # the row alone

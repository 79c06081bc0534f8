"""Tests for logicrl.integrations.verl.compute_score (veRL's custom_reward_function signature).

Run: .venv/bin/python -m pytest tests/integrations/test_verl_reward.py
"""

import pytest

from logicrl.integrations.verl import compute_score

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
    assert isinstance(got, float) and got == prefilled
    assert compute_score("kk_logic", response, truth, {"prefilled_think": False}) == not_prefilled
    assert compute_score("kk_logic", response, truth) == not_prefilled  # no flag: the text is scored as given


def test_the_export_tells_the_reward_whether_it_prefilled():
    from logicrl.integrations.verl_export import verl_row
    from logicrl.prompts import PromptConfig

    record = {"quiz": QUESTION, "names": ["Zoey", "Oliver", "Ethan"], "knight_knave": {"knight": "knight",
              "knave": "knave"}, "solution_text_format": EXPECTED}
    for prompt, expected in ((PromptConfig(), PREFILLED), (PromptConfig(prefill=""), NOT_PREFILLED)):
        row = verl_row(record, "train", 0, prompt)
        truth = row["reward_model"]["ground_truth"]
        assert [compute_score(row["data_source"], r, truth, row["extra_info"]) for r in RESPONSES] == expected


def test_default_prefill_and_explicit_flag():
    response = RESPONSES[0]
    assert compute_score("kk", response, {"solution_text_format": EXPECTED}, {"prefilled_think": True}) == 3.0
    assert compute_score("kk", response, {"solution_text_format": EXPECTED}, {"prefilled_think": False}) == -3.0
    assert compute_score("kk", RESPONSES[1], EXPECTED) == 3.0  # a bare string as ground truth


def test_extra_info_and_reward_kwargs():
    copied = f"{QUESTION}</think><answer>{CLAIMS}</answer>"
    truth = {"solution_text_format": EXPECTED, "prefilled_think": True}
    assert compute_score("kk", copied, truth) == 3.0
    assert compute_score("kk", copied, truth, {"quiz": QUESTION}) == -3.0
    trailing = RESPONSES[3]
    assert compute_score("kk", trailing, truth) == -3.0
    assert compute_score("kk", trailing, truth, {"mode": "logic-rl"}) == 3.0
    assert compute_score("kk", trailing, truth, None, mode="logic-rl") == 3.0
    odd = {"solution_text_format": "(1) Ava is a zorp", "knight_knave": {"knight": "zorp", "knave": "blip"},
           "prefilled_think": True}
    assert compute_score("kk", f"{THINK}</think><answer>Ava is a blip</answer>", odd) == -0.5


def test_prefill_from_reward_kwargs_overrides_the_row():
    """`logicrl verl launch` passes prefilled_think through veRL's reward_kwargs (merged as keywords)."""
    truth = {"solution_text_format": EXPECTED}
    assert compute_score("kk", RESPONSES[1], truth, None, prefilled_think=True) == -3.0  # a second <think>
    assert compute_score("kk", RESPONSES[0], truth, {"prefilled_think": False}, prefilled_think=True) == 3.0
    assert compute_score("kk", RESPONSES[1], truth, None, prefilled_think=False, mode="logic-rl") == 3.0

"""Tests for logicrl.reward.score (strict mode): the four outcomes, the hack catalog, config and batch.

Run: .venv/bin/python -m pytest tests/reward/test_score.py
"""

import json
import time

import pytest
from pydantic import ValidationError

from logicrl.reward import RewardConfig, score, score_batch

EXPECTED = "(1) Zoey is a knight\n(2) Oliver is a knave\n(3) Ethan is a knight"
CLAIMS = "(1) Zoey is a knight\n(2) Oliver is a knave\n(3) Ethan is a knight"
WRONG = "(1) Zoey is a knave\n(2) Oliver is a knave\n(3) Ethan is a knight"
QUESTION = (
    "A very special island is inhabited only by knights and knaves. Knights always tell the truth, and "
    "knaves always lie. You meet 3 inhabitants: Zoey, Oliver, and Ethan. Zoey remarked, \"Oliver is a "
    "knave\". Oliver stated, \"Ethan is a knave\". Ethan said, \"Zoey is a knight or Oliver is a knight\". "
    "So who is a knight and who is a knave?"
)
THINK = "If Zoey is a knight, Oliver is a knave, so Ethan is a knight; his claim holds. The other case fails."


def wrap(answer: str, think: str = THINK) -> str:
    return f"<think>{think}</think>\n<answer>{answer}</answer>"


# --- the four outcomes, with their exact totals -----------------------------------------------------------


@pytest.mark.parametrize(("answer", "credit", "total"), [
    (WRONG, 0.5, 1.0 - 1.5 + 0.5 * (2 / 3) * 3.5),  # 2 of 3 people right
    ("(1) Zoey is a knave\n(2) Oliver is a knight\n(3) Ethan is a knave", 0.5, -0.5),  # none right: the paper's
    (WRONG, 0.0, -0.5),  # partial_credit=0 is the paper's reward
    (CLAIMS, 0.5, 3.0),  # a correct answer is unchanged
    ("Zoey: knight, Oliver: knave, Ethan: knight", 0.5, -1.0),  # unparseable: no credit
])
def test_partial_credit(answer, credit, total):
    breakdown = score(wrap(answer), EXPECTED, config=RewardConfig(partial_credit=credit))
    assert breakdown.total == pytest.approx(total)
    logic_rl = score(wrap(answer), EXPECTED, mode="logic-rl", config=RewardConfig(partial_credit=credit))
    assert logic_rl.total == pytest.approx(total)


@pytest.mark.parametrize(
    ("response", "total", "status", "format_ok"),
    [
        pytest.param(wrap(CLAIMS), 3.0, "correct", True, id="correct"),
        pytest.param(wrap(WRONG), -0.5, "wrong", True, id="wrong"),
        pytest.param(wrap("Zoey: knight, Oliver: knave, Ethan: knight"), -1.0, "unparseable", True,
                     id="unparseable"),
        pytest.param(wrap(""), -1.0, "missing", True, id="empty-answer"),
        pytest.param(f"<answer>{CLAIMS}</answer>", -3.0, "correct", False, id="format-fail-correct-answer"),
        pytest.param(f"<answer>{WRONG}</answer>", -3.0, "wrong", False, id="format-fail-wrong-answer"),
        pytest.param("I don't know.", -3.0, "missing", False, id="nothing"),
    ],
)
def test_outcome_totals(response, total, status, format_ok):
    result = score(response, EXPECTED)
    assert (result.total, result.answer_status, result.format_ok) == (total, status, format_ok)
    assert result.total == result.format_score + result.answer_score


def test_prefilled_think():
    response = THINK + "</think>\n<answer>" + CLAIMS + "</answer><|im_end|>"
    assert score(response, EXPECTED, prefilled_think=True).total == 3.0
    assert score(response, EXPECTED).format_reason == "missing <think>"
    doubled = score("<think>" + response, EXPECTED, prefilled_think=True)
    assert doubled.format_reason == "repeated <think>"


# --- the hack catalog: each hack the paper lists must score as a failure ----------------------------------

HACKS = [
    # 1. skipping the think block
    pytest.param(f"<answer>{CLAIMS}</answer>", {}, -3.0, "missing <think>", id="skip-think"),
    pytest.param(f"</think><answer>{CLAIMS}</answer>", {"prefilled_think": True}, -3.0, "empty think block",
                 id="skip-think-prefilled"),
    pytest.param(f"<think></think><answer>{CLAIMS}</answer>", {}, -3.0, "empty think block",
                 id="empty-think"),
    # 2. reasoning inside the answer tags
    pytest.param(wrap("Zoey accuses Oliver, so Zoey is a knight, Oliver is a knave, Ethan is a knight", "ok"),
                 {}, -1.0, None, id="reasoning-in-answer"),
    pytest.param(wrap(CLAIMS + "\nBecause Zoey tells the truth."), {}, -1.0, None,
                 id="justification-after-claims"),
    # 3. guessing repeatedly
    pytest.param(wrap(CLAIMS) + f"<answer>{WRONG}</answer>", {}, -3.0, "repeated <answer>",
                 id="guess-several-answer-blocks"),
    pytest.param(wrap("Zoey is a knight, Zoey is a knave, Oliver is a knave, Ethan is a knight"), {}, -1.0,
                 None, id="guess-several-claims-one-person"),
    pytest.param(wrap("Zoey is a knight or a knave, Oliver is a knave, Ethan is a knight"), {}, -1.0, None,
                 id="guess-both-roles-one-claim"),
    pytest.param(wrap(CLAIMS + "\n" + WRONG), {}, -1.0, None, id="guess-two-lists"),
    # 4. nonsense next to the answer
    pytest.param(wrap(CLAIMS) + " banana", {}, -3.0, "text after </answer>", id="nonsense-after-answer"),
    pytest.param(f"<think>{THINK}</think> banana <answer>{CLAIMS}</answer>", {}, -3.0,
                 "text between </think> and <answer>", id="nonsense-between-blocks"),
    pytest.param("banana " + wrap(CLAIMS), {}, -3.0, "text before <think>", id="nonsense-before-think"),
    pytest.param(wrap(CLAIMS + " banana!!"), {}, -1.0, None, id="nonsense-inside-answer"),
    # 5. a correct answer in an unextractable form
    pytest.param(wrap("Zoey: knight; Oliver: knave; Ethan: knight"), {}, -1.0, None, id="unextractable-colons"),
    pytest.param(wrap("Knights: Zoey, Ethan. Knave: Oliver."), {}, -1.0, None, id="unextractable-grouped"),
    pytest.param(wrap("| Zoey | knight |\n| Oliver | knave |\n| Ethan | knight |"), {}, -1.0, None,
                 id="unextractable-table"),
    pytest.param(wrap("Zoey and Ethan are knights, Oliver is a knave"), {}, -1.0, None,
                 id="unextractable-plural"),
    pytest.param(f"<think>{THINK}</think>{CLAIMS}", {}, -3.0, "missing <answer>", id="answer-without-tags"),
    # 6. thinking again after the answer
    pytest.param(wrap(CLAIMS) + "<think>Wait, let me check again.</think>", {}, -3.0, "repeated <think>",
                 id="think-after-answer"),
    pytest.param(wrap(CLAIMS) + "\nWait, maybe Oliver is a knight.", {}, -3.0, "text after </answer>",
                 id="reconsider-after-answer"),
    # 7. copying the question or placeholder text instead of reasoning
    pytest.param(wrap(CLAIMS, "reasoning process here"), {}, -3.0, "placeholder think block",
                 id="placeholder-reasoning-process-here"),
    pytest.param(wrap(CLAIMS, " ... "), {}, -3.0, "placeholder think block", id="placeholder-ellipsis"),
    pytest.param(wrap(CLAIMS, "Let's think step by step."), {}, -3.0, "placeholder think block",
                 id="placeholder-step-by-step"),
    pytest.param(wrap(CLAIMS, QUESTION), {"question": QUESTION}, -3.0, "think block copies the question",
                 id="copy-question"),
    pytest.param(wrap(CLAIMS, QUESTION + " So the answer follows."), {"question": QUESTION}, -3.0,
                 "think block copies the question", id="copy-question-plus-a-line"),
]


@pytest.mark.parametrize(("response", "kwargs", "total", "format_reason"), HACKS)
def test_hack_scores_as_failure(response, kwargs, total, format_reason):
    result = score(response, EXPECTED, **kwargs)
    assert result.total == total
    assert result.format_reason == format_reason
    assert not result.solved
    if format_reason is None:
        assert result.answer_status == "unparseable"


def test_restating_the_question_then_reasoning_is_fine():
    think = QUESTION + " " + THINK + " " + THINK
    assert score(wrap(CLAIMS, think), EXPECTED, question=QUESTION).total == 3.0


def test_words_like_knights_in_the_think_block_do_not_confuse_it():
    think = "Knights tell the truth, knaves lie. Two knights and one knave fit: Zoey and Ethan are knights."
    assert score(wrap(CLAIMS, think), EXPECTED).total == 3.0


# --- role words ----------------------------------------------------------------------------------------


def test_role_words_come_from_the_expected_answer():
    expected = "(1) Ava is an angel\n(2) Bo is a devil"
    assert score(wrap("Ava is an angel, Bo is a devil"), expected).total == 3.0
    assert score(wrap("Ava is a devil, Bo is a devil"), expected).total == -0.5
    assert score(wrap("Ava is a knight, Bo is a knave"), expected).total == -1.0


def test_single_role_answer_partner_from_standard_pairs_or_roles():
    all_sages = "(1) Ava is a sage\n(2) Bo is a sage"
    assert score(wrap("Ava is a sage, Bo is a fool"), all_sages).total == -0.5
    odd = "(1) Ava is a zorp\n(2) Bo is a zorp"
    assert score(wrap("Ava is a zorp, Bo is a blip"), odd).answer_status == "unparseable"
    assert score(wrap("Ava is a zorp, Bo is a blip"), odd, roles=("zorp", "blip")).total == -0.5
    record_roles = {"knight": "zorp", "knave": "blip"}
    assert score(wrap("Ava is a zorp, Bo is a zorp"), odd, roles=record_roles).total == 3.0


# --- config, breakdown, batch ----------------------------------------------------------------------------


def test_config_changes_the_constants():
    config = RewardConfig(format_ok=0.5, correct=1.0)
    assert score(wrap(CLAIMS), EXPECTED, config=config).total == 1.5
    assert score(wrap(CLAIMS), EXPECTED, config=RewardConfig(mode="logic-rl")).mode == "logic-rl"
    for bad in [{"bogus": 1}, {"language_script": "klingon"}, {"max_question_copy_share": 0}, {"mode": "x"}]:
        with pytest.raises(ValidationError):
            RewardConfig(**bad)


def test_min_think_words():
    config = RewardConfig(min_think_words=5)
    assert score(wrap(CLAIMS, "Zoey honest."), EXPECTED, config=config).format_reason == "think block too short"


def test_language_penalty_is_off_by_default_and_weighted_when_on():
    mixed = wrap(CLAIMS, THINK + " 所以佐伊是骑士。")
    assert score(mixed, EXPECTED).total == 3.0
    result = score(mixed, EXPECTED, config=RewardConfig(language_penalty_weight=1.0))
    assert 0 < result.language_mixing < 1
    assert result.total == pytest.approx(3.0 - result.language_mixing)


def test_breakdown_to_dict_is_json():
    result = score(wrap(CLAIMS), EXPECTED)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["total"] == 3.0 and data["assignment"] == {"Zoey": "knight", "Oliver": "knave", "Ethan": "knight"}
    assert result.solved


def test_score_batch():
    results = score_batch([wrap(CLAIMS), wrap(WRONG)], EXPECTED)
    assert [r.total for r in results] == [3.0, -0.5]
    results = score_batch([wrap(CLAIMS, QUESTION)], [EXPECTED], questions=[QUESTION], roles=[None])
    assert results[0].format_reason == "think block copies the question"
    with pytest.raises(ValueError):
        score_batch([wrap(CLAIMS)], [EXPECTED, EXPECTED])


def test_errors_for_bad_arguments():
    with pytest.raises(ValueError):
        score(wrap(CLAIMS), EXPECTED, mode="lenient")
    with pytest.raises(ValueError):
        score(wrap(CLAIMS), "not an answer")


def test_one_megabyte_responses_complete():
    """Pathological inputs of ~1 MB: a generous bound only, to catch quadratic behaviour."""
    megabyte = 1_000_000
    responses = [
        "<think>" + "Zoey is a knave and " * (megabyte // 20) + "</think><answer>" + CLAIMS + "</answer>",
        "<answer>" * (megabyte // 8),
        "<think>x</think><answer>" + "Zoey is a knight, " * (megabyte // 18) + "</answer>",
        "<think>x</think><answer>" + " " * megabyte + "Zoey</answer>",
        "Zoey" + " " * megabyte + "is a",
        "骑士" * (megabyte // 2),
    ]
    for response in responses:
        for mode in ("strict", "logic-rl"):
            start = time.perf_counter()
            score(response, EXPECTED, mode=mode, question=QUESTION)
            assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize("response", [None, 5, ["<think>"]])
def test_a_response_that_is_not_text_is_a_type_error(response):
    """`score(None, ...)` failed inside the parser with "'NoneType' object has no attribute 'count'"."""
    with pytest.raises(TypeError, match=f"response must be the generated text \\(a str\\), got {type(response).__name__}"):
        score(response, "(1) Zoey is a knight\n(2) Oliver is a knave")

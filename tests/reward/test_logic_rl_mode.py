"""The logic-rl compatibility mode: the same crafted responses scored by both modes, and a differential test
against a plain transcription of the reference rules (Logic-RL, verl/utils/reward_score/kk.py).

Run: .venv/bin/python -m pytest tests/reward/test_logic_rl_mode.py
"""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logicrl.reward import score

EXPECTED = "(1) Zoey is a knight\n(2) Oliver is a knave\n(3) Ethan is a knight"
CLAIMS = "(1) Zoey is a knight\n(2) Oliver is a knave\n(3) Ethan is a knight"
THINK = "Zoey says Oliver is a knave; if Zoey is a knight then Ethan is a knight, which is consistent."


def wrap(answer: str, think: str = THINK) -> str:
    return f"<think>{think}</think>\n<answer>{answer}</answer>"


# (response, strict total, logic-rl total): where the modes agree, and where strict closes a hack kk.py allows.
CASES = [
    pytest.param(wrap(CLAIMS), 3.0, 3.0, id="correct"),
    pytest.param(wrap(CLAIMS.replace("Oliver is a knave", "Oliver is a knight")), -0.5, -0.5, id="wrong"),
    pytest.param(wrap("Zoey: knight, Oliver: knave, Ethan: knight"), -1.0, -1.0, id="unparseable"),
    pytest.param(f"<answer>{CLAIMS}</answer>", -3.0, -3.0, id="no-think"),
    pytest.param(wrap(CLAIMS) + f"<answer>{CLAIMS}</answer>", -3.0, -3.0, id="two-answer-blocks"),
    pytest.param(wrap("zoey IS A Knight, oliver is a KNAVE and ethan is a knight"), 3.0, 3.0, id="case"),
    # kk.py allows these; strict does not.
    pytest.param(wrap(CLAIMS) + "\nHope this helps!", -3.0, 3.0, id="trailing-text"),
    pytest.param("Sure! " + wrap(CLAIMS), -3.0, 3.0, id="text-before-think"),
    pytest.param(f"<think>{THINK}</think>So:<answer>{CLAIMS}</answer>", -3.0, 3.0, id="text-between"),
    pytest.param(wrap(CLAIMS, ""), -3.0, 3.0, id="empty-think"),
    pytest.param(wrap(CLAIMS, "reasoning process here"), -3.0, 3.0, id="placeholder-think"),
    pytest.param(wrap("Since Oliver lies, Zoey is a knight, Oliver is a knave, and so Ethan is a knight"),
                 -1.0, 3.0, id="reasoning-in-answer"),
    pytest.param(wrap("Zoey is a knight, Oliver is a knave, Ethan is a knight, Ethan is a knave"),
                 -1.0, -1.0, id="repeat-guess-count-catches"),
    # kk.py's quirks: role-word substrings anywhere, "is a" only, knight/knave only.
    pytest.param(wrap(CLAIMS + "\n(two knights)"), -1.0, -1.0, id="extra-knights-word"),
    pytest.param(wrap("Zoey is a knight and Ethan is a knight. Oliver is a knave"), 3.0, 3.0, id="prose-order"),
]


@pytest.mark.parametrize(("response", "strict_total", "logic_rl_total"), CASES)
def test_both_modes(response, strict_total, logic_rl_total):
    assert score(response, EXPECTED).total == strict_total
    assert score(response, EXPECTED, mode="logic-rl").total == logic_rl_total


def test_other_role_words_and_articles():
    expected = "(1) Ava is an angel\n(2) Bo is a devil"
    response = wrap("Ava is an angel, Bo is a devil")
    assert score(response, expected).total == 3.0
    assert score(response, expected, mode="logic-rl").total == -1.0  # kk.py knows knight/knave only


def test_full_decoded_text_with_the_assistant_marker():
    prompt = "<|im_start|>user\nSolve it.<|im_end|>\n<|im_start|>assistant\n<think>"
    response = THINK + "</think>\n<answer>" + CLAIMS + "</answer><|im_end|>"
    assert score(prompt + response, EXPECTED, mode="logic-rl").total == 3.0
    assert score(response, EXPECTED, mode="logic-rl", prefilled_think=True).total == 3.0
    assert score("User: hi <think> Assistant: " + wrap(CLAIMS), EXPECTED, mode="logic-rl").total == 3.0


# --- differential test against a transcription of kk.py's rules ---------------------------------------------


def reference_kk(solution_str: str, solution_text_format: str) -> float:
    """kk.py's compute_score rules written out plainly (prints dropped), with one stated change: a text
    without an assistant marker is taken whole instead of failing the answer (see logicrl.reward.score)."""
    processed = solution_str
    if "Assistant:" in solution_str:
        processed = solution_str.split("Assistant:", 1)[1]
    elif "<|im_start|>assistant" in solution_str:
        processed = solution_str.split("<|im_start|>assistant", 1)[1]
    matches = list(re.finditer(r"<answer>(.*?)</answer>", processed, re.DOTALL))
    answer = matches[-1].group(1).strip() if matches else None
    tags = ["<think>", "</think>", "<answer>", "</answer>"]
    positions = [processed.find(t) for t in tags]
    format_ok = all(processed.count(t) == 1 for t in tags) and positions == sorted(positions)
    expected = {}
    for line in solution_text_format.split("\n"):
        match = re.search(r"\b([A-Za-z]+)\b.*?\b(knight|knave)\b", line.strip(), re.IGNORECASE)
        if match:
            expected[match.group(1)] = match.group(2).lower()
    answer_score = -2
    if format_ok and answer:
        predicted = {}
        lowered = answer.lower()
        if lowered.count("knight") + lowered.count("knave") == len(expected):
            for name in expected:
                pattern = rf"\b{re.escape(name)}\b\s+is\s+a\s+\b(knight|knave)\b"
                match = re.search(pattern, answer, re.IGNORECASE)
                if match is None:
                    predicted = None
                    break
                predicted[name] = match.group(1).lower()
        else:
            predicted = None
        if predicted:
            answer_score = 2 if predicted == expected else -1.5
    return (1 if format_ok else -1) + answer_score


FRAGMENTS = [
    "<think>", "</think>", "<answer>", "</answer>", "Assistant:", "<|im_start|>assistant", "\n", " ", ", ",
    "Zoey is a knight", "Oliver is a knave", "Ethan is a knight", "Ethan is a knave", "zoey IS A KNIGHT",
    "knights", "(1) ", "and ", "hmm", "Oliver is an knave", "Zoey  is\na knave",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=24))
def test_logic_rl_mode_equals_the_reference_rules(pieces):
    response = "".join(pieces)
    assert score(response, EXPECTED, mode="logic-rl").total == reference_kk(response, EXPECTED)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/thinkswera Zoyk\n:A")), max_size=80))
def test_logic_rl_mode_equals_the_reference_rules_on_tag_soup(response):
    assert score(response, EXPECTED, mode="logic-rl").total == reference_kk(response, EXPECTED)


def test_logic_rl_marker_order_and_capitalised_expected_roles_follow_kk_py():
    """kk.py looks for "Assistant:" before "<|im_start|>assistant": a ChatML text whose think block says
    "Assistant:" is cut there (its <think> falls before the cut: format fails); and it reads the expected
    answer's role words whatever their case."""
    chatml = ("<|im_start|>user\nWho is who?<|im_end|>\n<|im_start|>assistant\n<think>As the Assistant: Zoey is "
              "honest</think><answer>" + CLAIMS + "</answer>")
    assert score(chatml, EXPECTED, mode="logic-rl").total == reference_kk(chatml, EXPECTED) == -3
    capitalised = EXPECTED.replace("knight", "Knight").replace("knave", "KNAVE")
    assert score(wrap(CLAIMS), capitalised, mode="logic-rl").total == reference_kk(wrap(CLAIMS), capitalised) == 3


def test_logic_rl_cuts_at_the_first_assistant_marker():
    """kk.py splits the decoded text at the first "Assistant:"; one inside the think block stays part of it."""
    text = "User: who is who?\nAssistant: " + wrap(CLAIMS, "Zoey is honest, so Assistant: Oliver lies and Ethan too")
    assert score(text, EXPECTED, mode="logic-rl").total == 3.0


def test_logic_rl_claims_need_the_article_a():
    """kk.py's pattern is "<name> is a (knight|knave)": "is an knight" names nobody, as in kk.py."""
    verdict = score(wrap(CLAIMS.replace("Zoey is a knight", "Zoey is an knight")), EXPECTED, mode="logic-rl")
    assert verdict.answer_status == "unparseable"

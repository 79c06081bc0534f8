"""Tests for logicrl.reward.parse: tag structure, think checks, answer claims, expected answers.

Run: .venv/bin/python -m pytest tests/reward/test_parse.py
"""

import re
from types import MappingProxyType

import pytest

from logicrl.reward.parse import (
    FormatError,
    is_placeholder,
    judge_answer,
    last_answer_block,
    parse_claims,
    parse_expected,
    question_copy_share,
    role_pair,
    split_blocks,
    starts_inside_think,
    think_error,
)

EXPECTED = "(1) Zoey is a knight\n(2) Oliver is a knave\n(3) Ethan is a knight"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("<think>t</think><answer>a</answer>", None),
        ("  \n<think>t</think>\n\n<answer>a</answer>\n<|im_end|>\n<|endoftext|>", None),
        ("<think>t</think><answer>a</answer></s><eos><|eot_id|>", None),
        ("t</think><answer>a</answer>", FormatError.MISSING_THINK_OPEN),
        ("<think>t<answer>a</answer>", FormatError.MISSING_THINK_CLOSE),
        ("<think>t</think>a</answer>", FormatError.MISSING_ANSWER_OPEN),
        ("<think>t</think><answer>a", FormatError.MISSING_ANSWER_CLOSE),
        ("<think><think>t</think><answer>a</answer>", FormatError.REPEATED_THINK_OPEN),
        ("<think>t</think></think><answer>a</answer>", FormatError.REPEATED_THINK_CLOSE),
        ("<think>t</think><answer><answer>a</answer>", FormatError.REPEATED_ANSWER_OPEN),
        ("<think>t</think><answer>a</answer></answer>", FormatError.REPEATED_ANSWER_CLOSE),
        ("<answer>a</answer><think>t</think>", FormatError.TAG_ORDER),
        ("</think><think><answer>a</answer>", FormatError.TAG_ORDER),
        ("x<think>t</think><answer>a</answer>", FormatError.TEXT_BEFORE_THINK),
        ("<think>t</think>x<answer>a</answer>", FormatError.TEXT_BETWEEN_BLOCKS),
        ("<think>t</think><answer>a</answer>x", FormatError.TEXT_AFTER_ANSWER),
        ("<think>t</think><answer>a</answer><|im_end|>x", FormatError.TEXT_AFTER_ANSWER),
    ],
)
def test_split_blocks(text, error):
    blocks = split_blocks(text)
    assert blocks.error == error
    if error is None:
        assert (blocks.think, blocks.answer) == ("t", "a")


def test_last_answer_block_matches_the_reference_regex():
    cases = ["", "<answer>a</answer>", "<answer>a</answer><answer>b</answer>", "<answer><answer>x</answer>",
             "<answer>a</answer><answer>open", "</answer><answer>", "<answer></answer>"]
    for text in cases:
        matches = list(re.finditer(r"<answer>(.*?)</answer>", text, re.DOTALL))
        assert last_answer_block(text) == (matches[-1].group(1) if matches else None)


def test_starts_inside_think():
    assert starts_inside_think("Zoey is ... </think><answer>")
    assert not starts_inside_think("  \n<think>Zoey</think>")


@pytest.mark.parametrize(
    "text", ["reasoning process here", "  Reasoning process here.  ", "...", "…", "Let's think step by step.",
             "<your reasoning here>", "thinking process here " * 50, "TODO"],
)
def test_placeholder_think_blocks(text):
    assert is_placeholder(text)


@pytest.mark.parametrize("text", ["Zoey says Oliver lies.", "I think Zoey is a knight.", "If A then B"])
def test_real_reasoning_is_not_a_placeholder(text):
    assert not is_placeholder(text)


QUESTION = (
    "A very special island is inhabited only by knights and knaves. Knights always tell the truth, and "
    "knaves always lie. You meet 3 inhabitants: Zoey, Oliver, and Ethan. Zoey remarked, \"Oliver is a "
    "knave\". Oliver stated, \"Ethan is a knave\". Ethan said, \"Zoey is a knight or Oliver is a knight\". "
    "So who is a knight and who is a knave?"
)
REASONING = (
    "Suppose Zoey is a knight. Then her claim holds and Oliver lies, so Ethan must be truthful, and Ethan's "
    "disjunction is satisfied because Zoey tells the truth. Checking the other branch leads to a contradiction."
)


def test_question_copy_share():
    assert question_copy_share(QUESTION, QUESTION) == 1.0
    assert question_copy_share(REASONING, QUESTION) < 0.1
    restated = QUESTION + " " + REASONING + " " + REASONING
    assert 0.3 < question_copy_share(restated, QUESTION) < 0.8
    assert question_copy_share("Zoey is a knight", QUESTION) == 0.0  # shorter than a shingle


def test_think_error():
    kwargs = {"question": QUESTION, "min_words": 1, "max_copy_share": 0.8, "shingle_words": 5}
    assert think_error(" \n ", **kwargs) == FormatError.EMPTY_THINK
    assert think_error("reasoning process here", **kwargs) == FormatError.PLACEHOLDER_THINK
    assert think_error(QUESTION, **kwargs) == FormatError.COPIED_QUESTION
    assert think_error(REASONING, **kwargs) is None
    assert think_error("ok", **{**kwargs, "min_words": 3}) == FormatError.SHORT_THINK


@pytest.mark.parametrize(
    "text",
    [
        "(1) Zoey is a knight\n(2) Oliver is a knave",
        "Zoey is a knight, Oliver is a knave.",
        "Zoey is a knight and Oliver is a knave",
        "1. Zoey is a knight; 2) Oliver is a knave",
        "- Zoey is a knight\n- Oliver is a knave",
        "zoey IS A Knight\noliver is an knave",
    ],
)
def test_parse_claims_accepts_listed_forms(text):
    claims, reason = parse_claims(text)
    assert reason is None
    assert [(n.lower(), r.lower()) for n, r in claims] == [("zoey", "knight"), ("oliver", "knave")]


@pytest.mark.parametrize(
    "text",
    ["Zoey: knight", "Zoey is a knight because", "The answer: Zoey is a knight", "Zoey is knight",
     "Zoey is a knight and", "Zoey is a knight2", "**Zoey** is a knight"],
)
def test_parse_claims_rejects_other_words(text):
    _, reason = parse_claims(text)
    assert reason is not None


def test_parse_expected_roles():
    expected = parse_expected(EXPECTED)
    assert expected.names == ("Zoey", "Oliver", "Ethan")
    assert expected.roles == ("knight", "knave")
    assert parse_expected("(1) Ava is an angel\n(2) Bo is an angel").roles == ("angel", "devil")
    assert parse_expected("(1) Ava is a zorp").roles == ("zorp",)  # partner unknown
    assert parse_expected("(1) Ava is a zorp", ("zorp", "blip")).roles == ("zorp", "blip")
    assert parse_expected("(1) Ava is a Zorp\n(2) Bo is a blip").roles == ("zorp", "blip")


@pytest.mark.parametrize(
    "bad", ["", "nonsense", "(1) Ava is a knight\n(2) ava is a knave", "A is a x\nB is a y\nC is a z"]
)
def test_parse_expected_rejects_malformed(bad):
    with pytest.raises(ValueError):
        parse_expected(bad)


def test_parse_expected_rejects_roles_that_do_not_fit():
    with pytest.raises(ValueError):
        parse_expected(EXPECTED, ("sage", "fool"))


def test_role_pair():
    assert role_pair(None) is None
    assert role_pair(("Sage", "Fool")) == ("sage", "fool")
    assert role_pair({"knight": "angel", "knave": "devil", "a_knight": "an angel"}) == ("angel", "devil")
    # any mapping (a read-only view, an OmegaConf DictConfig) is read by its keys' values, not as a pair of keys
    assert role_pair(MappingProxyType({"knight": "angel", "knave": "devil"})) == ("angel", "devil")
    for bad in ["knight", ("a",), ("a", "a"), ("sage", " "), {"x": 1}, 3]:
        with pytest.raises(ValueError):
            role_pair(bad)
    # the mapping form is held to the pair's rules: two different, non-empty words
    for bad in ({"knight": "Sage", "knave": "sage "}, {"knight": "", "knave": "fool"}):
        with pytest.raises(ValueError, match="two different non-empty words"):
            role_pair(bad)


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ("(1) Zoey is a knight\n(2) Oliver is a knave\n(3) Ethan is a knight", "correct"),
        ("Ethan is a knight, Zoey is a knight and Oliver is a knave.", "correct"),
        ("Zoey is a knight\nOliver is a knight\nEthan is a knight", "wrong"),
        ("Zoey is a knight\nOliver is a knave", "unparseable"),  # missing person
        ("Zoey is a knight\nOliver is a knave\nEthan is a knight\nMia is a knave", "unparseable"),  # unknown
        ("Zoey is a knight\nZoey is a knave\nOliver is a knave\nEthan is a knight", "unparseable"),  # twice
        ("Zoey is a knight\nOliver is a sage\nEthan is a knight", "unparseable"),  # not this puzzle's role
        ("Zoey is a knight\nOliver is a knaves\nEthan is a knight", "unparseable"),  # plural
        ("   ", "missing"),
        (None, "missing"),
    ],
)
def test_judge_answer(answer, status):
    verdict = judge_answer(answer, parse_expected(EXPECTED))
    assert verdict.status == status
    assert (verdict.reason is None) == (status in ("correct", "wrong"))


@pytest.mark.parametrize("answer", [
    "O’Neil is a knight, Mary-Ann is a knave",  # a typographic apostrophe: "unknown name 'O’Neil'"
    "o'neil is a knight, MARY-ANN is a knave",
])
def test_names_match_across_apostrophes_and_case(answer):
    assert judge_answer(answer, parse_expected("(1) O'Neil is a knight\n(2) Mary-Ann is a knave")).status == "correct"


def test_a_decomposed_accent_is_the_same_name():
    """NFD text (e + combining accent) was not a claim at all: the combining mark is not a letter."""
    import unicodedata

    expected = parse_expected("(1) Zoë is a knight\n(2) Émile is a knave")
    answer = unicodedata.normalize("NFD", "Zoë is a knight, Émile is a knave")
    assert answer != "Zoë is a knight, Émile is a knave"
    assert judge_answer(answer, expected).status == "correct"


COPY_SOURCE = "alpha beta gamma delta epsilon zeta eta theta"  # 8 words, so 4 shingles of 5


def test_the_think_checks_at_their_boundaries():
    """Each limit is inclusive where the docs say so: a think block of exactly k words still has one shingle,
    exactly ``min_words`` words is enough, and a copied share of exactly ``max_copy_share`` fails."""
    assert question_copy_share("alpha beta gamma delta epsilon", COPY_SOURCE, 5) == 1.0
    assert think_error("Zoey accuses Oliver", question=None, min_words=3, max_copy_share=0.8, shingle_words=5) is None
    assert think_error("Zoey accuses", question=None, min_words=3, max_copy_share=0.8,
                       shingle_words=5) == FormatError.SHORT_THINK
    copied = COPY_SOURCE + " iota kappa"  # 6 shingles, 4 of them (0.8) from the question
    assert question_copy_share(copied, COPY_SOURCE, 5) == 0.8
    assert think_error(copied, question=COPY_SOURCE, min_words=1, max_copy_share=0.8,
                       shingle_words=5) == FormatError.COPIED_QUESTION
    assert think_error(copied, question=COPY_SOURCE, min_words=1, max_copy_share=0.81, shingle_words=5) is None


def test_more_claims_than_people_stop_the_parse():
    verdict = judge_answer("Zoey is a knight, Oliver is a knave, Ethan is a knight, Zoey is a knight",
                           parse_expected(EXPECTED))
    assert (verdict.status, verdict.reason) == ("unparseable", "more than 3 claims")

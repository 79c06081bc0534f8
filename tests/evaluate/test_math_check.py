"""The math answer checker: a catalog of (model output, reference) pairs with the expected verdict of our
checker and of the reference implementation's substring test, final-answer extraction, and the hard time
limit (a check stuck in C code is cut, counted wrong, and the next check still works).

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/evaluate/test_math_check.py -q
"""

from __future__ import annotations

import time

import pytest

from logicrl.evaluate.math_check import (
    MathChecker,
    as_latex,
    boxed_contents,
    extract_answer,
    last_boxed,
    substring_match,
)

# (response, reference, our verdict, the substring test's verdict)
CATALOG = [
    # the substring trap: the reference occurs inside a different number
    ("<think>t</think><answer>197</answer>", "97", "wrong", True),
    ("\\boxed{197}", "97", "wrong", True),
    ("<answer>100</answer>", "10", "wrong", True),
    ("<answer>-5</answer>", "5", "wrong", True),
    ("<answer>10.00001</answer>", "10", "wrong", True),
    ("<answer>1</answer>", "10", "wrong", False),
    # AIME integers with leading zeros (answers are 0-999, often written 097)
    ("<answer>097</answer>", "97", "correct", True),
    ("<answer>97</answer>", "097", "correct", False),
    ("<answer>9</answer>", "009", "correct", False),
    ("<answer>0</answer>", "000", "correct", False),
    ("<answer>97</answer>", "97", "correct", True),
    # where the answer is: only the answer block (or the boxes) count
    ("<think>so it is 97</think><answer>98</answer>", "97", "wrong", True),
    ("<think>so \\boxed{97}</think><answer>98</answer>", "97", "wrong", True),
    ("The answer is 97.", "97", "no_answer", True),
    ("<think>the answer is 97</think>", "97", "no_answer", True),
    ("<answer></answer>", "42", "no_answer", False),
    ("", "42", "no_answer", False),
    ("\\boxed{12", "12", "no_answer", True),
    ("<answer>\\boxed{42}</answer>", "42", "correct", True),
    ("<answer>The answer is 42</answer>", "42", "correct", True),
    ("\\boxed{97.}", "97", "correct", True),
    # two boxed answers: they must agree, or the response hedged
    ("\\boxed{3} or \\boxed{5}", "3", "multiple", True),
    ("\\boxed{5}, no wait, \\boxed{3}", "3", "multiple", True),
    ("\\boxed{12} so again \\boxed{12}", "12", "correct", True),
    ("\\boxed{0.5} that is \\boxed{\\frac12}", "1/2", "correct", False),
    ("<answer> 3 or 5 </answer>", "3", "wrong", True),
    # fractions and decimals
    ("<answer>0.5</answer>", "\\frac12", "correct", False),
    ("<answer>\\frac12</answer>", "0.5", "correct", False),
    ("<answer>\\dfrac{1}{2}</answer>", "\\frac{1}{2}", "correct", False),
    ("<answer>\\tfrac{3}{4}</answer>", "0.75", "correct", False),
    ("<answer>1/2</answer>", "\\frac{1}{2}", "correct", False),
    ("<answer>\\frac{3}{4}</answer>", "3/4", "correct", False),
    ("<answer>\\dfrac{9}{3}</answer>", "3", "correct", True),
    ("<answer>$\\frac{7}{2}$</answer>", "3.5", "correct", False),
    ("<answer>\\frac{1}{2}</answer>", "\\frac{1}{2}", "correct", True),
    # equations, units, thousands separators, currency, degrees
    ("<answer>x = 3</answer>", "3", "correct", True),
    ("<answer>k = 3</answer>", "3", "correct", True),
    ("<answer>5\\text{ cm}</answer>", "5", "correct", True),
    ("<answer>2 \\text{ meters}</answer>", "2", "correct", True),
    ("<answer>90^\\circ</answer>", "90", "correct", True),
    ("<answer>\\$18.90</answer>", "18.90", "correct", True),
    ("<answer>1,000</answer>", "1000", "correct", False),
    # percentages: math-verify takes x% as x or x/100
    ("<answer>5\\%</answer>", "5", "correct", True),
    ("<answer>0.05</answer>", "5\\%", "correct", False),
    ("<answer>50</answer>", "5\\%", "wrong", False),
    # equivalent expressions, radicals, constants
    ("<answer>(x+1)^2</answer>", "x^2+2x+1", "correct", False),
    ("<answer>\\sqrt{8}</answer>", "2\\sqrt{2}", "correct", False),
    ("<answer>\\frac{\\sqrt{2}}{2}</answer>", "\\frac{1}{\\sqrt{2}}", "correct", False),
    ("\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{\\sqrt2}{2}", "correct", False),
    ("<answer>2\\pi</answer>", "2\\pi", "correct", True),
    ("<answer>3.14159</answer>", "\\pi", "wrong", False),
    ("<answer>x^2</answer>", "y^2", "wrong", False),
    ("\\boxed{\\infty}", "\\infty", "correct", True),
    # sets and intervals
    ("<answer>[1,2)</answer>", "[1,2)", "correct", True),
    ("<answer>(1,2)</answer>", "[1,2)", "wrong", False),
    ("<answer>\\{2, 1\\}</answer>", "\\{1,2\\}", "correct", False),
    ("<answer>2, 1</answer>", "1, 2", "correct", False),
    # multiple choice (AMC)
    ("<answer>\\text{(B)}</answer>", "B", "correct", True),
]
PATHOLOGICAL = "<answer>\\boxed{9^{9^{9^{9}}}}</answer>"  # sympy computes the power tower in C: hangs


@pytest.fixture(scope="module")
def checker():
    """One worker for the catalog, with a limit no honest check nears even on a loaded machine."""
    with MathChecker(time_limit_s=60.0) as math_checker:
        yield math_checker


def test_catalog_is_big_enough_and_disagrees_with_the_substring_test() -> None:
    assert len(CATALOG) + 1 >= 40  # + the pathological input below
    pairs = [(status == "correct", substring) for _, _, status, substring in CATALOG]  # (ours, theirs)
    assert sum(ours != theirs for ours, theirs in pairs) >= 20
    assert (True, False) in pairs and (False, True) in pairs  # they disagree both ways


@pytest.mark.parametrize(("response", "reference", "status", "substring"), CATALOG,
                         ids=[f"{i}:{c[1]}" for i, c in enumerate(CATALOG)])
def test_catalog_verdicts(checker: MathChecker, response: str, reference: str, status: str,
                          substring: bool) -> None:
    verdict = checker.check(response, reference)
    assert (verdict.status, verdict.correct) == (status, status == "correct"), verdict
    assert substring_match(response, reference) is substring


def test_votes_group_equal_answers(checker: MathChecker) -> None:
    """Majority votes are parsed answers: spellings of one value vote together, other values do not."""
    spellings = ("\\boxed{0.5}", "\\boxed{\\frac12}", "<answer>1/2</answer>")
    votes = {r: checker.check(r, "1/2").vote for r in spellings}
    assert len(set(votes.values())) == 1, votes
    assert checker.check("<answer>x = 3</answer>", "3").vote == checker.check("\\boxed{3}", "3").vote == "3"
    assert checker.check("\\boxed{0.25}", "1").vote == checker.check("\\boxed{\\frac14}", "1").vote == "1/4"
    # math-verify leaves a percentage and a radical unevaluated: 50\% voted 50*(1/100), apart from 0.5
    assert checker.check("\\boxed{50\\%}", "0.5").vote == checker.check("\\boxed{0.5}", "0.5").vote == "1/2"
    assert checker.check("\\boxed{\\sqrt{8}}", "1").vote == checker.check("\\boxed{2\\sqrt{2}}", "1").vote
    assert checker.check("\\boxed{4}", "3").vote == "4"
    assert checker.check("no answer", "3").vote is None


def test_a_hung_check_is_cut_counted_and_the_checker_recovers() -> None:
    with MathChecker(time_limit_s=1.5) as limited:
        limited.start()
        start = time.perf_counter()
        verdict = limited.check(PATHOLOGICAL, "97")
        elapsed = time.perf_counter() - start
        assert (verdict.status, verdict.correct, verdict.answer) == ("timeout", False, "9^{9^{9^{9}}}")
        assert 1.5 <= verdict.seconds < 1.5 + 10 and elapsed < 1.5 + 10  # cut at the limit, not at the end
        assert "1.5s" in verdict.error and limited.timeouts == 1
        after = limited.check("<answer>97</answer>", "97")  # a fresh worker answers the next check
        assert (after.status, after.correct) == ("correct", True)


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="time_limit_s"):
        MathChecker(time_limit_s=0)


def test_boxes_nested_unclosed_and_fbox() -> None:
    assert boxed_contents("a \\boxed{\\frac{1}{2}} b \\fbox{3} c \\boxed{x") == ["\\frac{1}{2}", "3"]
    assert last_boxed("\\boxed{1} then \\boxed{ {2} }") == "{2}"
    assert last_boxed("no box") is None
    assert boxed_contents("\\boxed{" * 10_000) == []  # unclosed boxes: linear, no answer


def test_extraction_prefers_the_answer_block() -> None:
    assert extract_answer("\\boxed{1}<answer>2</answer>").candidates == ("2",)
    assert extract_answer("<answer>a</answer> <answer>\\boxed{7}</answer>").candidates == ("7",)
    assert extract_answer("<answer>\\boxed{7}</answer>").source == "answer"
    assert extract_answer("so \\boxed{7} \\boxed{7}") == extract_answer("\\boxed{ 7 }")  # one candidate
    assert extract_answer("so \\boxed{7}").source == "boxed"
    assert extract_answer("<answer>  </answer>").candidates == ()


def test_short_answers_are_boxed_prose_and_latex_go_to_math_verify() -> None:
    assert as_latex("[1,2)") == "$\\boxed{[1,2)}$"
    assert as_latex("\\$5") == "$\\boxed{\\$5}$"  # an escaped dollar is a currency sign, not a delimiter
    assert as_latex("the answer is 5") == "the answer is 5"
    assert as_latex("$\\frac12$") == "$\\frac12$"


def test_substring_test_needs_a_reference() -> None:
    assert substring_match("anything", "") is False
    assert substring_match("x197", " 97 ") is True


def test_cleaning_keeps_an_ellipsis_and_drops_a_final_period() -> None:
    """A trailing "..." is part of the answer; a single trailing period is not."""
    assert extract_answer("\\boxed{1, 2, ...}").candidates == ("1, 2, ...",)
    assert extract_answer("\\boxed{97.}").candidates == ("97",)


def test_a_one_word_answer_with_a_unit_is_boxed() -> None:
    """"5 cm" holds one prose word, not the two of prose: a short answer, so it is boxed."""
    assert as_latex("5 cm") == "$\\boxed{5 cm}$"


def test_the_verdict_answer_is_the_first_candidate(checker: MathChecker) -> None:
    """Two boxes: the verdict reports (and grades) the first, 1/2, not the later 0.5."""
    verdict = checker.check("\\boxed{1/2} so \\boxed{0.5}", "1/2")
    assert (verdict.status, verdict.answer) == ("correct", "1/2")

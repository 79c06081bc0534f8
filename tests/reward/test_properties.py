"""Property tests: the reward is total on any string, and the oracle answer tops it for any puzzle.

Run: .venv/bin/python -m pytest tests/reward/test_properties.py
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from logicrl.reward import ANSWER_STATUSES, STANDARD_ROLE_PAIRS, score

EXPECTED = "(1) Zoey is a knight\n(2) Oliver is a knave\n(3) Ethan is a knight"
THINK = "Zoey accuses Oliver; assuming Zoey is a knight makes every statement consistent."

TAG_SOUP = st.lists(
    st.one_of(
        st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", "<|im_end|>", "Assistant:",
                         "<|im_start|>assistant", "Zoey is a knight", " is a ", "knave", "\n", "(1)", "and"]),
        st.text(max_size=12),
    ),
    max_size=30,
).map("".join)


def check_total(response: str) -> None:
    for mode in ("strict", "logic-rl"):
        for prefilled in (False, True):
            result = score(response, EXPECTED, mode=mode, prefilled_think=prefilled, question=EXPECTED)
            assert result.total in (3.0, -0.5, -1.0, -3.0)
            assert result.answer_status in ANSWER_STATUSES
            assert result.format_ok == (result.format_reason is None)
            result.to_dict()


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises_on_arbitrary_text(response):
    check_total(response)


@settings(max_examples=300, deadline=None)
@given(TAG_SOUP)
def test_never_raises_on_tag_soup(response):
    check_total(response)


NAME = st.from_regex(r"[A-Z][a-z]{0,9}", fullmatch=True)
ROLE_WORD = st.from_regex(r"[a-z]{2,9}", fullmatch=True)
ROLES = st.one_of(st.sampled_from(STANDARD_ROLE_PAIRS), st.tuples(ROLE_WORD, ROLE_WORD).filter(lambda p: p[0] != p[1]))


@st.composite
def puzzles(draw):
    """A random solution: distinct names, a role pair, an assignment, and its expected answer text."""
    names = draw(st.lists(NAME, min_size=1, max_size=8, unique_by=str.lower))
    roles = draw(ROLES)
    truth = [roles[draw(st.integers(0, 1))] for _ in names]
    article = lambda role: "an" if role[0] in "aeiou" else "a"
    lines = [f"({i + 1}) {n} is {article(r)} {r}" for i, (n, r) in enumerate(zip(names, truth))]
    return names, roles, truth, "\n".join(lines), lines


@settings(max_examples=200, deadline=None)
@given(puzzles())
def test_oracle_answer_scores_three(puzzle):
    _, roles, _, expected, _ = puzzle
    result = score(f"<think>{THINK}</think>\n<answer>{expected}</answer>", expected, roles=roles)
    assert result.total == 3.0 and result.solved


@settings(max_examples=200, deadline=None)
@given(puzzles(), st.randoms(use_true_random=False), st.sampled_from(["\n", ", ", " and ", ". ", "; "]))
def test_claim_order_and_separators_do_not_matter(puzzle, rng, separator):
    _, roles, _, expected, lines = puzzle
    claims = [line.split(") ", 1)[1] for line in lines]
    rng.shuffle(claims)
    response = f"<think>{THINK}</think><answer>{separator.join(claims)}</answer>"
    assert score(response, expected, roles=roles).total == 3.0


@settings(max_examples=200, deadline=None)
@given(puzzles(), st.data())
def test_changing_one_role_makes_it_wrong(puzzle, data):
    names, roles, truth, expected, _ = puzzle
    flip = data.draw(st.integers(0, len(names) - 1))
    changed = list(truth)
    changed[flip] = roles[1] if truth[flip] == roles[0] else roles[0]
    answer = "\n".join(f"{n} is a {r}" for n, r in zip(names, changed))
    result = score(f"<think>{THINK}</think><answer>{answer}</answer>", expected, roles=roles)
    assert result.total == -0.5 and result.answer_status == "wrong"

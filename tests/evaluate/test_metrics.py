"""pass@k against hand values and a brute force over subsets; majority vote and its ties; the per-level
table."""

from __future__ import annotations

import itertools
import math

import pytest

from logicrl.evaluate.metrics import accuracy_table, default_ks, level_average, majority_vote, pass_at_k


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    """Share of the k-subsets of n samples (the first c correct) that hold a correct sample."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize(("n", "c", "k", "expected"), [
    (1, 1, 1, 1.0), (1, 0, 1, 0.0),
    (4, 1, 1, 0.25),            # c/n
    (4, 1, 2, 0.5),             # 1 - C(3,2)/C(4,2) = 1 - 3/6
    (5, 2, 2, 0.7),             # 1 - C(3,2)/C(5,2) = 1 - 3/10
    (10, 3, 5, 11 / 12),        # 1 - C(7,5)/C(10,5) = 1 - 21/252
    (6, 5, 2, 1.0),             # n - c < k: every pair holds a correct one
    (8, 0, 8, 0.0),
])
def test_pass_at_k_hand_values(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_matches_brute_force_and_binomials() -> None:
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)
                assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_large_n_is_finite_and_monotone() -> None:
    values = [pass_at_k(1000, 3, k) for k in (1, 10, 100, 500)]
    assert values[0] == pytest.approx(0.003) and values == sorted(values) and values[-1] < 1


@pytest.mark.parametrize(("n", "c", "k"), [(3, 4, 1), (3, 1, 0), (3, 1, 4), (2, -1, 1)])
def test_pass_at_k_rejects_impossible_counts(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def vote(assignment: dict | None, solved: bool, format_ok: bool = True) -> dict:
    return {"assignment": assignment, "solved": solved, "format_ok": format_ok}


RIGHT = {"Zoey": "knight", "Oliver": "knave"}
WRONG = {"Zoey": "knave", "Oliver": "knave"}
OTHER = {"Zoey": "knight", "Oliver": "knight"}


def test_majority_vote_winner_decides() -> None:
    assert majority_vote([vote(RIGHT, True), vote(RIGHT, True), vote(WRONG, False)]) == 1.0
    assert majority_vote([vote(WRONG, False), vote(WRONG, False), vote(RIGHT, True)]) == 0.0


def test_majority_vote_ties_score_the_chance_of_a_random_break() -> None:
    assert majority_vote([vote(RIGHT, True), vote(WRONG, False)]) == 0.5
    assert majority_vote([vote(WRONG, False), vote(RIGHT, True)]) == 0.5  # order does not matter
    assert majority_vote([vote(RIGHT, True), vote(WRONG, False), vote(OTHER, False)]) == pytest.approx(1 / 3)
    assert majority_vote([vote(WRONG, False), vote(OTHER, False), vote(RIGHT, True), vote(RIGHT, True),
                          vote(WRONG, False)]) == 0.5


def test_majority_vote_counts_only_well_formed_parsed_answers() -> None:
    # two unformatted votes for the wrong answer do not outvote one formatted right answer
    assert majority_vote([vote(WRONG, False, format_ok=False), vote(WRONG, False, format_ok=False),
                          vote(RIGHT, True)]) == 1.0
    assert majority_vote([vote(None, False), vote(None, False, format_ok=False)]) == 0.0
    assert majority_vote([]) == 0.0


def test_majority_vote_keys_ignore_order_and_case() -> None:
    shuffled = {"oliver": "Knave", "ZOEY": "Knight"}
    assert majority_vote([vote(shuffled, True), vote(RIGHT, True), vote(WRONG, False)]) == 1.0


def row(pid: str, people: int, solved: bool, length: int = 10, assignment: dict | None = None) -> dict:
    return {"id": pid, "n_people": people, "solved": solved, "format_ok": solved or assignment is not None,
            "reward": 3.0 if solved else -3.0, "length": length, "truncated": False,
            "assignment": assignment or (RIGHT if solved else None)}


def test_accuracy_table_by_level_with_pass_at_k_and_majority() -> None:
    rows = [
        # 2 people: puzzle a 3/4 solved, puzzle b 0/4 solved (two well-formed wrong votes tie with nothing)
        row("a", 2, True), row("a", 2, True), row("a", 2, True), row("a", 2, False, assignment=WRONG),
        row("b", 2, False, assignment=WRONG), row("b", 2, False), row("b", 2, False), row("b", 2, False),
        # 3 people: puzzle c 1/4 solved, with a 1-1 tie between the right and a wrong answer
        row("c", 3, True, 20), row("c", 3, False, 20, WRONG), row("c", 3, False, 20), row("c", 3, False, 20),
    ]
    table = accuracy_table(rows, ks=[1, 2, 4])
    two, three = table[2], table[3]
    assert two["puzzles"] == 2 and two["n"] == 8 and two["acc"] == 3 / 8
    assert two["pass@1"] == pytest.approx(3 / 8)
    assert two["pass@2"] == pytest.approx((1.0 + 0.0) / 2)            # a: n-c=1 < 2 -> 1; b: 0
    assert two["pass@4"] == pytest.approx(0.5)
    assert two["maj@4"] == pytest.approx((1.0 + 0.0) / 2)
    assert two["format_ok"] == pytest.approx(5 / 8)
    assert three["acc"] == 0.25 and three["pass@2"] == pytest.approx(0.5) and three["maj@4"] == 0.5
    assert three["length"] == 20
    assert level_average(table, "acc") == pytest.approx((3 / 8 + 1 / 4) / 2)
    assert level_average(table, "missing") is None


def test_accuracy_table_single_sample_has_no_majority_column() -> None:
    table = accuracy_table([row("a", 2, True), row("b", 2, False)], ks=default_ks(1))
    assert table[2]["acc"] == 0.5 and table[2]["pass@1"] == 0.5
    assert not any(key.startswith("maj@") for key in table[2])


def test_truncated_share_and_pass_at_k_over_puzzles_with_enough_samples() -> None:
    """Uneven samples: pass@k averages over the puzzles with at least k samples only (a puzzle of 1 sample has
    no pass@2); `truncated` is the share of samples cut at the cap, its own field (not format_ok)."""
    rows = [row("a", 2, True), {**row("a", 2, False), "truncated": True}, {**row("b", 2, False), "truncated": True}]
    table = accuracy_table(rows, ks=[1, 2])
    assert table[2]["pass@2"] == 1.0  # a only: 1 of 2 right -> 1; b has one sample
    assert table[2]["pass@1"] == 0.25 and table[2]["acc"] == pytest.approx(1 / 3)  # per puzzle vs per sample
    assert table[2]["truncated"] == pytest.approx(2 / 3)
    assert table[2]["format_ok"] == pytest.approx(1 / 3)


def test_default_ks() -> None:
    assert default_ks(1) == [1] and default_ks(6) == [1, 2, 4, 6] and default_ks(8) == [1, 2, 4, 8]

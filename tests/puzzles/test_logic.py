"""logic.py: statement trees, hand truth tables per operator, bitset tables, the JSON form.

Run: .venv/bin/python -m pytest tests/puzzles/test_logic.py -q
"""

from __future__ import annotations

import itertools

import pytest
from brute_force import depth, evaluate, leaves, trees
from hypothesis import given, settings
from hypothesis import strategies as st

from logicrl.puzzles.logic import (
    MAX_BITSET_PEOPLE,
    Op,
    Statement,
    all_assignments,
    assignment_from_index,
    json_depth,
    knight_tables,
    statements_from_json,
    statements_to_json,
)

K0, K1, K2 = Statement.knight(0), Statement.knight(1), Statement.knight(2)
N0, N1 = Statement.knave(0), Statement.knave(1)

# Hand truth tables over two people. Rows are (person 0 is a knight, person 1 is a knight); the
# assignment index is bit 0 = person 0, bit 1 = person 1.
ROWS = [(False, False), (True, False), (False, True), (True, True)]
HAND_TABLES = {
    "knight(0)": (K0, [0, 1, 0, 1]),
    "knight(1)": (K1, [0, 0, 1, 1]),
    "knave(0)": (N0, [1, 0, 1, 0]),
    "knave(1)": (N1, [1, 1, 0, 0]),
    "not knight(0)": (Statement.negation(K0), [1, 0, 1, 0]),
    "not knave(1)": (Statement.negation(N1), [0, 0, 1, 1]),
    "and": (Statement.conjunction(K0, K1), [0, 0, 0, 1]),
    "or": (Statement.disjunction(K0, K1), [0, 1, 1, 1]),
    "->": (Statement.implication(K0, K1), [1, 0, 1, 1]),
    "-> reversed": (Statement.implication(K1, K0), [1, 1, 0, 1]),
    "<=>": (Statement.equivalence(K0, K1), [1, 0, 0, 1]),
    "<=> knave": (Statement.equivalence(K0, N1), [0, 1, 1, 0]),
    "and knave": (Statement.conjunction(K0, N1), [0, 1, 0, 0]),
    "or knaves": (Statement.disjunction(N0, N1), [1, 1, 1, 0]),
}


@pytest.mark.parametrize("name", list(HAND_TABLES))
def test_operator_truth_table_by_hand(name: str) -> None:
    stmt, expected = HAND_TABLES[name]
    assert [stmt.evaluate(row) for row in ROWS] == [bool(v) for v in expected]
    table = stmt.truth_table(2)
    assert [(table >> a) & 1 for a in range(4)] == expected


@pytest.mark.parametrize(
    ("stmt", "true_rows"),
    [
        (Statement.conjunction(K0, K1, K2), {(True, True, True)}),
        (Statement.disjunction(K0, K1, K2), set(itertools.product((True, False), repeat=3)) - {(False,) * 3}),
        (Statement.conjunction(N0, K1, Statement.knave(2)), {(False, True, False)}),
    ],
)
def test_three_operand_and_or(stmt: Statement, true_rows: set) -> None:
    table = stmt.truth_table(3)
    for a in range(8):
        row = tuple(bool((a >> i) & 1) for i in range(3))
        assert bool((table >> a) & 1) == (row in true_rows) == stmt.evaluate(row)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 11])
def test_knight_tables_bits(n: int) -> None:
    tables = knight_tables(n)
    assert len(tables) == n
    assert all_assignments(n) == (1 << (1 << n)) - 1
    for i, table in enumerate(tables):
        assert table < 1 << (1 << n)
        assert all(((table >> a) & 1) == ((a >> i) & 1) for a in range(1 << n))


def test_knight_tables_refuse_too_many_people() -> None:
    with pytest.raises(ValueError, match="limited to 20 people"):
        knight_tables(MAX_BITSET_PEOPLE + 1)


def test_assignment_from_index() -> None:
    assert assignment_from_index(0b101, 3) == (True, False, True)
    assert assignment_from_index(0, 2) == (False, False)
    assert assignment_from_index(6, 4) == (False, True, True, False)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(1, 6))
def test_truth_table_and_evaluate_match_brute_force(data, n: int) -> None:
    tree = data.draw(trees(n, 4))
    stmt = Statement.from_json(tree, n_people=n)
    table = stmt.truth_table(n)
    for a, row in enumerate(itertools.product((False, True), repeat=n)):
        assignment = row[::-1]  # product varies the last position fastest; bit 0 is person 0
        assert assignment == assignment_from_index(a, n)
        expected = evaluate(tree, assignment)
        assert stmt.evaluate(assignment) == expected
        assert bool((table >> a) & 1) == expected


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(2, 8))
def test_json_round_trip_and_structure(data, n: int) -> None:
    tree = data.draw(trees(n, 5))
    stmt = Statement.from_json(tree, n_people=n)
    assert stmt.to_json() == tree
    assert Statement.from_json(stmt.to_json()) == stmt
    # Tuples (the public K&K form, once literal_eval'd) read the same as lists.
    assert Statement.from_json(_to_tuples(tree), n_people=n) == stmt
    assert stmt.depth == depth(tree) == json_depth(tree)
    assert [leaf.to_json() for leaf in stmt.leaves()] == leaves(tree)
    inner = {node[0] for node in _nodes(tree) if node[0] not in ("telling-truth", "lying")}
    assert {op.value for op in stmt.operators()} == inner
    widths = [len(node) - 1 for node in _nodes(tree) if node[0] not in ("telling-truth", "lying")]
    assert stmt.width == max(widths, default=1)
    assert hash(stmt) == hash(Statement.from_json(tree))


def _to_tuples(value):
    return tuple(_to_tuples(v) for v in value) if isinstance(value, list) else value


def _nodes(tree: list) -> list[list]:
    if tree[0] in ("telling-truth", "lying"):
        return [tree]
    return [tree, *(node for child in tree[1:] for node in _nodes(child))]


def test_statements_json_round_trip() -> None:
    obj = [["telling-truth", 1], ["and", ["lying", 0], ["not", ["telling-truth", 1]]]]
    statements = statements_from_json(obj)
    assert statements_to_json(statements) == obj
    assert statements[1] == Statement.conjunction(N0, Statement.negation(K1))


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (["xor", ["telling-truth", 0], ["lying", 1]], "unknown statement operator 'xor'"),
        (["knight", 0], "unknown statement operator"),
        ([], "non-empty list"),
        ("telling-truth", "non-empty list"),
        (None, "non-empty list"),
        (["not", ["telling-truth", 0], ["lying", 1]], "wrong number of operands"),
        (["not"], "wrong number of operands"),
        (["->", ["telling-truth", 0]], "wrong number of operands"),
        (["<=>", ["telling-truth", 0], ["lying", 1], ["lying", 0]], "wrong number of operands"),
        (["and", ["telling-truth", 0]], "wrong number of operands"),
        (["or"], "wrong number of operands"),
        (["telling-truth"], "takes one person index"),
        (["telling-truth", 0, 1], "takes one person index"),
        (["lying", True], "takes one person index"),
        (["telling-truth", False], "takes one person index"),
        (["telling-truth", "0"], "takes one person index"),
        (["telling-truth", 1.0], "takes one person index"),
        (["lying", 2], "out of range for 2 people"),
        (["telling-truth", -1], "out of range"),
        (["and", ["telling-truth", 0], ["lying", 5]], "out of range"),
        (["and", ["telling-truth", 0], "lying"], "non-empty list"),
    ],
)
def test_from_json_rejects_malformed(obj, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Statement.from_json(obj, n_people=2)


def test_statements_from_json_checks_people_against_the_count() -> None:
    with pytest.raises(ValueError, match="out of range"):
        statements_from_json([["telling-truth", 1], ["lying", 2]])
    with pytest.raises(ValueError, match="non-empty list"):
        statements_from_json([])
    with pytest.raises(ValueError, match="non-empty list"):
        statements_from_json({"a": 1})


def test_op_values_are_the_public_tags() -> None:
    assert [op.value for op in Op] == ["telling-truth", "lying", "not", "and", "or", "->", "<=>"]
    assert [op for op in Op if op.is_leaf] == [Op.KNIGHT, Op.KNAVE]

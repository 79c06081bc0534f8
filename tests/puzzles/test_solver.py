"""solver.py: the bitset and search solvers agree with an independent brute force.

Random statement sets (hypothesis) include unsatisfiable ones, several-solution ones and paradoxes
("I am a knave"), so the solvers are checked beyond the unique puzzles the sampler keeps.

Run: .venv/bin/python -m pytest tests/puzzles/test_solver.py -q
"""

from __future__ import annotations

import itertools

import pytest
from brute_force import brute_force_solutions, check_dfs, decided_value, evaluate, statement_sets, trees
from hypothesis import given, settings
from hypothesis import strategies as st

from logicrl.puzzles import solver
from logicrl.puzzles.logic import Statement, statements_from_json
from logicrl.puzzles.solver import (
    consistency_table,
    count_solutions,
    iter_set_bits,
    partial_evaluate,
    prefix_conflicts,
    prefix_leaf_tables,
    prefix_values,
    search_events,
    solve,
    solve_bitset,
    solve_search,
)


@settings(max_examples=400, deadline=None)
@given(statement_sets())
def test_bitset_equals_search_equals_brute_force(trees_json) -> None:
    statements = statements_from_json(trees_json)
    expected = sorted(brute_force_solutions(trees_json))
    assert sorted(solve_bitset(statements)) == expected
    assert sorted(solve_search(statements)) == expected
    assert sorted(solve(statements)) == expected
    assert count_solutions(statements) == len(expected)
    table = consistency_table(statements)
    assert sorted(iter_set_bits(table)) == sorted(_index(a) for a in expected)


def _index(assignment: tuple[bool, ...]) -> int:
    return sum(1 << i for i, knight in enumerate(assignment) if knight)


def test_solver_outcomes_cover_all_kinds() -> None:
    """Hand-made sets: unsatisfiable, several solutions, one solution."""
    paradox = [["lying", 0], ["telling-truth", 1]]  # "I am a knave"
    tautologies = [["telling-truth", 0], ["telling-truth", 1]]  # everyone says "I am a knight"
    classic = [["lying", 1], ["and", ["lying", 0], ["lying", 1]]]  # B: "A and I are knaves"
    for obj, expected in (
        (paradox, []),
        (tautologies, [(True, True), (False, True), (True, False), (False, False)]),
        (classic, [(True, False)]),
    ):
        statements = statements_from_json(obj)
        assert sorted(solve_bitset(statements)) == sorted(expected)
        assert sorted(solve_search(statements)) == sorted(expected)
        assert count_solutions(statements) == len(expected)


@pytest.mark.parametrize("n", [21, 24, 30])
def test_search_beyond_bitset_limit(n: int) -> None:
    """Above 20 people solve() searches: a chain "the next one is a knave" plus "I am a knight"."""
    obj = [["lying", i + 1] for i in range(n - 1)] + [["telling-truth", n - 1]]
    statements = statements_from_json(obj)
    alternating = tuple(i % 2 == 0 for i in range(n))
    expected = {alternating, tuple(not v for v in alternating)}
    assert set(solve(statements)) == expected
    assert count_solutions(statements) == 2
    for assignment in expected:
        assert all(evaluate(s, assignment) == assignment[i] for i, s in enumerate(obj))


def test_iter_set_bits() -> None:
    assert list(iter_set_bits(0)) == []
    assert list(iter_set_bits(0b1011001)) == [0, 3, 4, 6]
    assert list(iter_set_bits(1 << 300)) == [300]


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(2, 6))
def test_partial_evaluate_is_sound_kleene(data, n: int) -> None:
    """A decided three-valued value holds under every completion; full assignments evaluate exactly."""
    tree = data.draw(trees(n, 4))
    partial = data.draw(st.lists(st.sampled_from([True, False, None]), min_size=n, max_size=n))
    stmt = Statement.from_json(tree)
    value = partial_evaluate(stmt, partial)
    known = {i: v for i, v in enumerate(partial) if v is not None}
    if value is not None:
        assert decided_value(tree, known, n) == value
    if len(known) == n:
        assert value == evaluate(tree, partial)


def test_partial_evaluate_short_circuits() -> None:
    k0, k1 = Statement.knight(0), Statement.knight(1)
    assert partial_evaluate(Statement.conjunction(k0, k1), [False, None]) is False
    assert partial_evaluate(Statement.disjunction(k0, k1), [True, None]) is True
    assert partial_evaluate(Statement.implication(k0, k1), [False, None]) is True
    assert partial_evaluate(Statement.implication(k1, k0), [True, None]) is True
    assert partial_evaluate(Statement.implication(k0, k1), [True, None]) is None
    assert partial_evaluate(Statement.equivalence(k0, k1), [True, None]) is None
    assert partial_evaluate(Statement.negation(k1), [True, None]) is None
    assert partial_evaluate(Statement.knave(0), [True, None]) is False


@settings(max_examples=200, deadline=None)
@given(statement_sets(max_people=6))
def test_search_events_are_a_depth_first_search(trees_json) -> None:
    """Events in strict DFS order (index order, knight first); every contradiction is real."""
    n = len(trees_json)
    steps, stack = [], []
    for event in search_events(statements_from_json(trees_json)):
        if event.kind == "solution":
            steps.append(("solution", n, None))
            assert event.assignment == tuple(r for _, r in stack)
            continue
        if event.kind == "backtrack":
            assert event.by == event.person - 1
            steps.append(("backtrack", event.person, None))
            stack = stack[: event.person]
            continue
        steps.append((event.kind, event.person, event.role))
        stack = stack[: event.person]
        if event.kind == "assume":
            stack.append((event.person, event.role))
        else:
            partial = dict(stack) | {event.person: event.role}
            value = decided_value(trees_json[event.by], partial, n)
            assert event.by in partial and value is not None and value != partial[event.by]
    _, solutions = check_dfs(steps)
    assert solutions == sorted(brute_force_solutions(trees_json), reverse=True)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(1, 6))
def test_prefix_values_are_partial_evaluate_on_every_prefix(data, n: int) -> None:
    """Bit 2**L - 1 + a of the (true, false) tables is partial_evaluate's value with people 0..L-1 given by
    the bits of a and the rest unassigned, for every level L and every a; the conflict tables flag exactly
    the assigned speakers whose statement is decided against their role."""
    statements = [Statement.from_json(data.draw(trees(n, 4))) for _ in range(n)]
    leaves = prefix_leaf_tables(n)
    conflicts = prefix_conflicts(statements)
    for level in range(n + 1):
        for roles in itertools.product((False, True), repeat=level):
            bit = (1 << level) - 1 + sum(1 << i for i, knight in enumerate(roles) if knight)
            assignment = [*roles, *[None] * (n - level)]
            for speaker, stmt in enumerate(statements):
                true, false = prefix_values(stmt, leaves)
                value = partial_evaluate(stmt, assignment)
                assert (true >> bit & 1, false >> bit & 1) == (value is True, value is False)
                against = speaker < level and value is not None and value != roles[speaker]
                assert conflicts[speaker] >> bit & 1 == against
    assert all(table < 1 << ((2 << n) - 1) for pair in leaves for table in pair)  # nothing past level N


@settings(max_examples=300, deadline=None)
@given(statement_sets(max_people=8), st.booleans())
def test_search_events_with_prefix_tables_equal_those_without(trees_json, first_solution: bool) -> None:
    """The bit lookups change how the search checks a speaker, never what it finds: the events are those of
    the three-valued evaluation (the path beyond MAX_PREFIX_TABLE_PEOPLE), event for event."""
    statements = statements_from_json(trees_json)
    with_tables = search_events(statements, first_solution)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(solver, "MAX_PREFIX_TABLE_PEOPLE", 0)
        assert search_events(statements, first_solution) == with_tables

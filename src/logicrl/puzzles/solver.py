"""Exact solvers: all assignments consistent with a puzzle's statements.

A puzzle is consistent under an assignment when every speaker's statement is true exactly when
the speaker is a knight: ``AND_i (knight_i <=> S_i)``.

Two solvers, cross-checked in the tests against a third, independent brute force:

* :func:`solve_bitset` evaluates that formula over all ``2**N`` assignments at once with truth-table
  bitsets (logic.py). Exact and fast up to ``MAX_BITSET_PEOPLE`` (20) people.
* :func:`solve_search` is a depth-first search that assigns people in order and prunes as soon as a
  speaker's statement is decided against them (three-valued evaluation). It handles any N whose
  statements prune well, and its trace is the template reasoning of cot.py. Up to
  ``MAX_PREFIX_TABLE_PEOPLE`` people its checks are bit lookups in tables of every partial assignment
  the search can reach (:func:`prefix_conflicts`); beyond, it evaluates the statements as it goes.

:func:`solve` picks the bitset solver up to 20 people and the search above that.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from logicrl.puzzles.logic import (
    MAX_BITSET_PEOPLE,
    Op,
    Statement,
    all_assignments,
    assignment_from_index,
    knight_tables,
)

Assignment = tuple[bool, ...]
MAX_PREFIX_TABLE_PEOPLE = 12  # prefix tables hold 2**(N+1) bits per statement


def speaker_constraint(speaker: int, stmt: Statement, n_people: int) -> int:
    """Bitset of the assignments under which ``knight_speaker == stmt``: ¬(K_speaker ⊕ S)."""
    full = all_assignments(n_people)
    return full ^ (knight_tables(n_people)[speaker] ^ stmt.truth_table(n_people))


def consistency_table(statements: Sequence[Statement]) -> int:
    """Bitset of the assignments under which every speaker i has ``knight_i == S_i``."""
    n = len(statements)
    consistent = all_assignments(n)
    for i, stmt in enumerate(statements):
        consistent &= speaker_constraint(i, stmt, n)
        if not consistent:
            break
    return consistent


def iter_set_bits(bits: int) -> Iterator[int]:
    """Indices of the set bits of ``bits``, lowest first."""
    while bits:
        low = bits & -bits
        yield low.bit_length() - 1
        bits ^= low


def solve_bitset(statements: Sequence[Statement]) -> list[Assignment]:
    """All consistent assignments, via truth tables (N ≤ 20)."""
    n = len(statements)
    return [assignment_from_index(a, n) for a in iter_set_bits(consistency_table(statements))]


def partial_evaluate(stmt: Statement, assignment: Sequence[bool | None]) -> bool | None:
    """Kleene three-valued evaluation: None when the unassigned people leave the value open.

    ``and`` is False when any operand is False, else None when any is None; ``or`` dually; ``a -> b`` is
    True when a is False or b is True; ``<=>`` is None when either side is."""
    op = stmt.op
    if op is Op.KNIGHT:
        return assignment[stmt.person]
    if op is Op.KNAVE:
        value = assignment[stmt.person]
        return None if value is None else not value
    if op is Op.NOT:
        value = partial_evaluate(stmt.children[0], assignment)
        return None if value is None else not value
    if op is Op.AND or op is Op.OR:
        decisive = op is Op.OR  # the operand value that decides the whole: True for or, False for and
        open_operand = False
        for child in stmt.children:
            value = partial_evaluate(child, assignment)
            if value is decisive:
                return decisive
            open_operand = open_operand or value is None
        return None if open_operand else not decisive
    left, right = (partial_evaluate(child, assignment) for child in stmt.children)
    if op is Op.IMPLIES:
        if left is False or right is True:
            return True
        return None if left is None or right is None else False
    return None if left is None or right is None else left == right  # IFF


@functools.lru_cache(maxsize=16)
def prefix_leaf_tables(n_people: int) -> tuple[tuple[int, int], ...]:
    """For each person p, the (true, false) bitsets of "p is a knight" over every prefix assignment.

    A prefix assignment gives roles to people ``0..L-1`` only (L = 0..N); level L takes the ``2**L`` bits
    from ``2**L - 1`` on, and bit ``2**L - 1 + a`` stands for the roles of index ``a`` (bit i = person i is a
    knight). Both bitsets are 0 on the levels where p is unassigned (L ≤ p).
    """
    true = [0] * n_people
    false = [0] * n_people
    for level in range(1, n_people + 1):
        offset, full = (1 << level) - 1, all_assignments(level)
        for person, knight in enumerate(knight_tables(level)):
            true[person] |= knight << offset
            false[person] |= (full ^ knight) << offset
    return tuple(zip(true, false))


def prefix_values(stmt: Statement, leaves: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """(true, false): the prefix assignments (laid out as in `prefix_leaf_tables`) under which
    `partial_evaluate` gives True, and False. Kleene's connectives on bitsets: ``not`` swaps the two,
    ``and`` is true where all operands are and false where any is, ``or`` dually, ``a -> b`` is true where
    a is false or b true and false where a is true and b false, ``<=>`` is decided where both sides are."""
    op = stmt.op
    if op.is_leaf:
        true, false = leaves[stmt.person]
        return (true, false) if op is Op.KNIGHT else (false, true)
    values = [prefix_values(child, leaves) for child in stmt.children]
    if op is Op.NOT:
        return values[0][1], values[0][0]
    trues, falses = [value[0] for value in values], [value[1] for value in values]
    if op is Op.AND:
        return functools.reduce(int.__and__, trues), functools.reduce(int.__or__, falses)
    if op is Op.OR:
        return functools.reduce(int.__or__, trues), functools.reduce(int.__and__, falses)
    (left_true, left_false), (right_true, right_false) = values
    if op is Op.IMPLIES:
        return left_false | right_true, left_true & right_false
    same = (left_true & right_true) | (left_false & right_false)
    return same, (left_true & right_false) | (left_false & right_true)


def prefix_conflicts(statements: Sequence[Statement]) -> list[int]:
    """For each speaker s, the prefix assignments in which s is assigned and `partial_evaluate` decides s's
    statement against s's role: ``(knight_s ∧ false_s) ∨ (knave_s ∧ true_s)``."""
    leaves = prefix_leaf_tables(len(statements))
    conflicts = []
    for speaker, stmt in enumerate(statements):
        true, false = prefix_values(stmt, leaves)
        knight, knave = leaves[speaker]
        conflicts.append((knight & false) | (knave & true))
    return conflicts


class SearchEvent(NamedTuple):
    """One step of the depth-first search, in the order the search takes it.

    kind: "assume" (``person`` is assumed ``role``), "contradiction" (assuming ``role`` for ``person``
    contradicts speaker ``by``'s statement), "backtrack" (all roles of ``person`` failed; go back to
    ``by``) or "solution" (the assignment in ``assignment`` is consistent).
    """

    kind: str
    person: int = -1
    role: bool | None = None  # True = knight
    by: int = -1
    assignment: Assignment = ()


def first_conflict(
    statements: Sequence[Statement], assignment: Sequence[bool | None], speakers: Sequence[int] | None = None
) -> int:
    """Index of the first assigned speaker (of ``speakers``, default all) whose statement is decided
    against their role, or -1."""
    for speaker in range(len(statements)) if speakers is None else speakers:
        role = assignment[speaker]
        if role is None:
            continue
        value = partial_evaluate(statements[speaker], assignment)
        if value is not None and value != role:
            return speaker
    return -1


def watchers(statements: Sequence[Statement]) -> list[list[int]]:
    """For each person p, the speakers whose consistency can change when p is assigned: p itself and
    everyone whose statement mentions p (in index order). A decided statement stays decided as more
    people are assigned, so no one else can come into conflict."""
    mentions = [{leaf.person for leaf in stmt.leaves()} for stmt in statements]
    return [[j for j in range(len(statements)) if j == p or p in mentions[j]] for p in range(len(statements))]


def search_events(statements: Sequence[Statement], first_solution: bool = False) -> list[SearchEvent]:
    """The steps of a depth-first search over roles (knight first), in order; with ``first_solution``, up to
    and including the first "solution" event (the search trace of a unique-solution puzzle).

    People are assigned in index order. After each assumption, every assigned speaker whose statement
    is already decided is checked; a conflict prunes the branch.
    """
    n = len(statements)
    assignment: list[bool | None] = [None] * n
    watching = watchers(statements)
    tables = prefix_conflicts(statements) if n <= MAX_PREFIX_TABLE_PEOPLE else None
    events: list[SearchEvent] = []

    def visit(person: int, index: int) -> bool:
        """Search from ``person`` on, the roles of the people before it being the bits of ``index``; True when
        the search is over (``first_solution`` reached)."""
        for role in (True, False):
            assignment[person] = role
            here = index | role << person
            if tables is None:
                conflict = first_conflict(statements, assignment, watching[person])
            else:
                conflict, bit = -1, (2 << person) - 1 + here  # bit: the prefix assignment of people 0..person
                for speaker in watching[person]:
                    if tables[speaker] >> bit & 1:
                        conflict = speaker
                        break
            if conflict >= 0:
                events.append(SearchEvent("contradiction", person, role, conflict))
                continue
            events.append(SearchEvent("assume", person, role))
            if person + 1 == n:
                events.append(SearchEvent("solution", assignment=tuple(assignment)))  # type: ignore[arg-type]
                if first_solution:
                    return True
            elif visit(person + 1, here):
                return True
        assignment[person] = None
        if person > 0:
            events.append(SearchEvent("backtrack", person, by=person - 1))
        return False

    visit(0, 0)
    return events


def solve_search(statements: Sequence[Statement]) -> list[Assignment]:
    """All consistent assignments, via depth-first search (any N)."""
    return [e.assignment for e in search_events(statements) if e.kind == "solution"]


def solve(statements: Sequence[Statement]) -> list[Assignment]:
    """All consistent assignments: bitsets up to 20 people, search beyond."""
    if len(statements) <= MAX_BITSET_PEOPLE:
        return solve_bitset(statements)
    return solve_search(statements)


def count_solutions(statements: Sequence[Statement]) -> int:
    """Number of consistent assignments (cheap with bitsets: one popcount)."""
    if len(statements) <= MAX_BITSET_PEOPLE:
        return consistency_table(statements).bit_count()
    return len(solve_search(statements))

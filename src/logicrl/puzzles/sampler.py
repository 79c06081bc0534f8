"""Random statement trees and unique-solution puzzles at an exact difficulty level.

The distribution follows the original K&K generator (Xie et al. 2024, arXiv 2410.23123; ported in
reasoning-gym's knights_knaves.py): at each node a die picks a leaf or one of the allowed operators
with equal probability; at depth 1 the node is always a leaf; ``and``/``or`` take 2..width distinct
operands; nobody says "I am a knave" (a paradox on its own). A puzzle is one statement per person,
kept only when exactly one assignment is consistent (rejection sampling, so the kept puzzles follow
the generator's distribution conditioned on uniqueness).

Difficulty level = (number of people, depth, width, operators): depth is the maximum depth of a
statement tree (a leaf has depth 1) and width the maximum number of operands of ``and``/``or``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from logicrl.puzzles.logic import MAX_BITSET_PEOPLE, Op, Statement, all_assignments, assignment_from_index
from logicrl.puzzles.solver import solve, speaker_constraint

ALL_OPERATORS: tuple[Op, ...] = (Op.NOT, Op.AND, Op.OR, Op.IMPLIES, Op.IFF)
MAX_PEOPLE = 30  # beyond this the search solver's pruning is not guaranteed to be fast
MAX_EXPECTED_LEAVES = 1_000  # per statement: deeper or wider levels would take minutes and gigabytes to draw
MAX_ATTEMPTS = 200_000  # draws in a row without a new unique puzzle before a level counts as run out


@dataclass(frozen=True)
class Level:
    """One difficulty level: what the sampler is asked for."""

    n_people: int
    depth: int = 2
    width: int = 2
    operators: tuple[Op, ...] = field(default=ALL_OPERATORS)

    def validate(self) -> None:
        """Raise ValueError with a fix-it message for impossible levels."""
        if not 2 <= self.n_people <= MAX_PEOPLE:
            raise ValueError(f"number of people must be in 2..{MAX_PEOPLE}, got {self.n_people}")
        if self.depth < 1:
            raise ValueError(f"depth must be at least 1 (a leaf has depth 1), got {self.depth}")
        if self.width < 2:
            raise ValueError(f"width must be at least 2 (and/or need two operands), got {self.width}")
        bad = [op for op in self.operators if op.is_leaf]
        if bad:
            raise ValueError("operators lists inner operators only (not, and, or, ->, <=>)")
        if self.depth > 1 and not self.operators:
            raise ValueError("depth > 1 needs at least one operator")
        size = expected_leaves(self)
        if size > MAX_EXPECTED_LEAVES:
            about = f"about {size:.3g}" if math.isfinite(size) else "more than 1e308"
            raise ValueError(f"depth {self.depth} with width {self.width} makes statements of {about} "
                             f"clauses on average (at most {MAX_EXPECTED_LEAVES:,}): lower the depth or the width")


def expected_leaves(level: Level) -> float:
    """The mean number of leaves of one statement drawn at ``level`` (operands need not be distinct here).

    With K = 1 + len(operators) faces of the die, L(1) = 1 and
        L(d) = (1 + Σ_op c_op · L(d − 1)) / K,
    c_not = 1, c_-> = c_<=> = 2, c_and = c_or = (2 + width) / 2 (the operand count is uniform on 2..width),
    capped at 2N − 1 at d = 2 (only that many distinct leaves exist). It grows geometrically with the depth:
    ×1.5 a level at width 2 with every operator. Computed in closed form, so any depth costs the same
    (``inf`` where the mean is beyond a float).
    """
    if level.depth == 1:
        return 1.0
    try:
        and_or = (2 + level.width) / 2
    except OverflowError:  # a width beyond a float: only depth 2 survives it (capped at 2N − 1 below)
        and_or = math.inf

    def operands(and_or: float) -> float:
        return sum(1 if op is Op.NOT else and_or if op in (Op.AND, Op.OR) else 2 for op in level.operators)

    faces = 1 + len(level.operators)
    leaves = (1 + operands(min(and_or, 2 * level.n_people - 1))) / faces  # L(2)
    steps, growth = level.depth - 2, operands(and_or)  # from d = 3 on, L(d) = (1 + growth · L(d − 1)) / K
    if growth == faces:
        return leaves + steps / faces
    # With the fixed point L* = 1 / (K − growth): L(d) = L* + (L(2) − L*) · (growth / K)^(d − 2).
    fixed = 1 / (faces - growth)
    try:
        return fixed + (leaves - fixed) * (growth / faces) ** steps
    except OverflowError:
        return math.inf


class StatementSampler:
    """Draws random statements for one level from a ``random.Random`` stream.

    Every integer is drawn by :meth:`below`, CPython's own algorithm for ``randrange``/``randint``/``choice``,
    so the draws are those of the standard calls; leaves are shared instances (statements are immutable).
    """

    def __init__(self, level: Level, rng: random.Random):
        level.validate()
        self.level = level
        self.rng = rng
        # The die: None stands for "leaf", then each allowed operator, all equally likely.
        self.die: tuple[Op | None, ...] = (None, *level.operators)
        people = range(level.n_people)
        self._leaves = (tuple(Statement(Op.KNAVE, person=p) for p in people),
                        tuple(Statement(Op.KNIGHT, person=p) for p in people))

    def below(self, n: int) -> int:
        """A uniform integer in ``[0, n)``: draws of ``n.bit_length()`` random bits until one is below ``n``.

        This is CPython's ``Random._randbelow``, behind ``randrange(n)``, ``randint(a, b)`` (``a + below(b - a
        + 1)``) and ``choice(seq)`` (``seq[below(len(seq))]``); written out, the stream no longer depends on
        that private method, and each draw skips two layers of calls.
        """
        bits = n.bit_length()
        value = self.rng.getrandbits(bits)
        while value >= n:
            value = self.rng.getrandbits(bits)
        return value

    def leaf(self, speaker: int) -> Statement:
        n = self.level.n_people
        while True:
            person = self.below(n)
            if self.rng.random() < 0.5:
                return self._leaves[True][person]
            if person != speaker:  # "I am a knave" cannot be said by anyone
                return self._leaves[False][person]

    def statement(self, speaker: int, depth: int) -> Statement:
        """A statement of depth ≤ ``depth`` by ``speaker``."""
        op = None if depth == 1 else self.die[self.below(len(self.die))]
        if op is None:
            return self.leaf(speaker)
        if op is Op.NOT:
            return Statement(op, children=(self.statement(speaker, depth - 1),))
        if op is Op.AND or op is Op.OR:
            count = 2 + self.below(self.level.width - 1)
        else:
            count = 2
        return Statement(op, children=self.distinct_operands(speaker, depth - 1, count))

    def distinct_operands(self, speaker: int, depth: int, count: int) -> tuple[Statement, ...]:
        if depth == 1:  # only 2N - 1 distinct leaves exist
            count = min(count, 2 * self.level.n_people - 1)
        operands: list[Statement] = []
        while len(operands) < count:
            candidate = self.statement(speaker, depth)
            if candidate not in operands:
                operands.append(candidate)
        return tuple(operands)

    def puzzle_statements(self) -> tuple[Statement, ...]:
        return tuple(self.statement(i, self.level.depth) for i in range(self.level.n_people))


def sample_unique_puzzle(
    sampler: StatementSampler, seen: set[tuple[Statement, ...]], max_attempts: int = MAX_ATTEMPTS
) -> tuple[tuple[Statement, ...], tuple[bool, ...]]:
    """Draw statements until they have exactly one solution and are not in ``seen``.

    With bitsets (N ≤ 20) the consistent set is narrowed speaker by speaker and a draw is abandoned
    as soon as it is empty; that only skips draws that would be rejected anyway, so the distribution
    is unchanged. Raises RuntimeError when ``max_attempts`` draws in a row fail (the level has run out
    of unique puzzles, or almost none have a unique solution).
    """
    n = sampler.level.n_people
    for _ in range(max_attempts):
        if n <= MAX_BITSET_PEOPLE:
            statements, consistent = _draw_with_bitsets(sampler)
            if consistent.bit_count() != 1 or statements in seen:
                continue
            solution = assignment_from_index(consistent.bit_length() - 1, n)
        else:
            statements = sampler.puzzle_statements()
            if statements in seen:
                continue
            solutions = solve(statements)
            if len(solutions) != 1:
                continue
            solution = solutions[0]
        seen.add(statements)
        return statements, solution
    raise RuntimeError(
        f"no new unique-solution puzzle in {max_attempts} draws for {sampler.level}; "
        "ask for fewer puzzles or raise depth/width"
    )


def _draw_with_bitsets(sampler: StatementSampler) -> tuple[tuple[Statement, ...], int]:
    """One draw of a puzzle, abandoned (consistent set 0) once no assignment can survive."""
    n, depth = sampler.level.n_people, sampler.level.depth
    consistent = all_assignments(n)
    statements = []
    for speaker in range(n):
        stmt = sampler.statement(speaker, depth)
        consistent &= speaker_constraint(speaker, stmt, n)
        if not consistent:
            return (), 0
        statements.append(stmt)
    return tuple(statements), consistent

"""Statement trees of Knights-and-Knaves puzzles and their truth tables.

A statement is a small tree over people ``0..N-1``. Leaves claim that a person is a knight
(``["telling-truth", i]``) or a knave (``["lying", i]``); inner nodes are ``not``, ``and``, ``or``,
``->`` (if-then) and ``<=>`` (iff). The JSON form (nested lists) is the one of the public K&K data,
so records stay readable by other tools.

Truth tables are bitsets: an assignment is an integer ``a`` whose bit ``i`` is 1 when person ``i``
is a knight, and the truth table of a statement over N people is a Python int of ``2**N`` bits whose
bit ``a`` is 1 when the statement holds under assignment ``a``. Python's arbitrary-precision ints
make ``and``/``or``/``not`` a single machine-speed operation over all ``2**N`` assignments at once.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Any

# Largest N for which whole truth tables are built (2**20 bits = 128 KiB per table). Larger puzzles
# go through the backtracking search in solver.py.
MAX_BITSET_PEOPLE = 20


class Op(str, enum.Enum):
    """Statement operators; the value is the JSON tag used in records."""

    KNIGHT = "telling-truth"  # leaf: person is a knight
    KNAVE = "lying"  # leaf: person is a knave
    NOT = "not"
    AND = "and"
    OR = "or"
    IMPLIES = "->"
    IFF = "<=>"

    def __init__(self, value: str) -> None:
        # A plain attribute rather than a property: it is read in every hot loop.
        self.is_leaf = value in ("telling-truth", "lying")


@dataclass(frozen=True, slots=True)
class Statement:
    """One node of a statement tree.

    Leaves carry ``person`` (0-based index into the puzzle's names); inner nodes carry ``children``.
    Instances are immutable and hashable, so whole puzzles can be deduplicated with a set.
    """

    op: Op
    person: int = -1
    children: tuple[Statement, ...] = ()

    # ---- construction helpers -------------------------------------------------------------
    @staticmethod
    def knight(person: int) -> Statement:
        return Statement(Op.KNIGHT, person=person)

    @staticmethod
    def knave(person: int) -> Statement:
        return Statement(Op.KNAVE, person=person)

    @staticmethod
    def negation(child: Statement) -> Statement:
        return Statement(Op.NOT, children=(child,))

    @staticmethod
    def conjunction(*children: Statement) -> Statement:
        return Statement(Op.AND, children=tuple(children))

    @staticmethod
    def disjunction(*children: Statement) -> Statement:
        return Statement(Op.OR, children=tuple(children))

    @staticmethod
    def implication(antecedent: Statement, consequent: Statement) -> Statement:
        return Statement(Op.IMPLIES, children=(antecedent, consequent))

    @staticmethod
    def equivalence(left: Statement, right: Statement) -> Statement:
        return Statement(Op.IFF, children=(left, right))

    # ---- structure --------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Leaves have depth 1; an inner node is one deeper than its deepest child."""
        if self.op.is_leaf:
            return 1
        return 1 + max(child.depth for child in self.children)

    @property
    def width(self) -> int:
        """Largest number of operands of any node in the tree (1 for a leaf)."""
        if self.op.is_leaf:
            return 1
        return max(len(self.children), *(child.width for child in self.children))

    def leaves(self) -> list[Statement]:
        """Atomic claims, left to right."""
        if self.op.is_leaf:
            return [self]
        return [leaf for child in self.children for leaf in child.leaves()]

    def operators(self) -> set[Op]:
        """Inner operators used anywhere in the tree."""
        if self.op.is_leaf:
            return set()
        return {self.op}.union(*(child.operators() for child in self.children))

    # ---- JSON -------------------------------------------------------------------------------
    def to_json(self) -> list:
        """Nested-list form: ``["and", ["telling-truth", 0], ["lying", 1]]``."""
        if self.op.is_leaf:
            return [self.op.value, self.person]
        return [self.op.value, *(child.to_json() for child in self.children)]

    @staticmethod
    def from_json(obj: Any, n_people: int | None = None) -> Statement:
        """Parse the nested-list form; raises ValueError on anything malformed."""
        if not isinstance(obj, (list, tuple)) or not obj:
            raise ValueError(f"statement must be a non-empty list, got {obj!r}")
        try:
            op = Op(obj[0])
        except ValueError:
            valid = ", ".join(o.value for o in Op)
            raise ValueError(f"unknown statement operator {obj[0]!r} (valid: {valid})") from None
        args = obj[1:]
        if op.is_leaf:
            if len(args) != 1 or not isinstance(args[0], int) or isinstance(args[0], bool):
                raise ValueError(f"{op.value!r} takes one person index, got {list(args)!r}")
            if args[0] < 0 or (n_people is not None and args[0] >= n_people):
                raise ValueError(f"person index {args[0]} out of range for {n_people} people")
            return Statement(op, person=args[0])
        arity_ok = {Op.NOT: len(args) == 1, Op.IMPLIES: len(args) == 2, Op.IFF: len(args) == 2}
        if not arity_ok.get(op, len(args) >= 2):
            raise ValueError(f"wrong number of operands ({len(args)}) for {op.value!r}")
        return Statement(op, children=tuple(Statement.from_json(a, n_people) for a in args))

    # ---- semantics --------------------------------------------------------------------------
    def evaluate(self, assignment: tuple[bool, ...] | list[bool]) -> bool:
        """Truth value under one assignment (``assignment[i]`` is True when person i is a knight)."""
        op = self.op
        if op is Op.KNIGHT:
            return bool(assignment[self.person])
        if op is Op.KNAVE:
            return not assignment[self.person]
        values = [child.evaluate(assignment) for child in self.children]
        if op is Op.NOT:
            return not values[0]
        if op is Op.AND:
            return all(values)
        if op is Op.OR:
            return any(values)
        if op is Op.IMPLIES:
            return (not values[0]) or values[1]
        return values[0] == values[1]  # IFF

    def truth_table(self, n_people: int) -> int:
        """Bitset over all ``2**n_people`` assignments: bit ``a`` is set when the statement holds."""
        return _table(self, all_assignments(n_people), knight_tables(n_people))


def _table(stmt: Statement, full: int, knights: tuple[int, ...]) -> int:
    """`Statement.truth_table` by structural recursion: ``full`` is every assignment's bit, ``knights[i]``
    the table of "i is a knight"; NOT is ``full ^ t``, AND/OR fold ``&``/``|``, IMPLIES ``(full ^ a) | b``,
    IFF ``full ^ a ^ b``."""
    op = stmt.op
    if op is Op.KNIGHT:
        return knights[stmt.person]
    if op is Op.KNAVE:
        return full ^ knights[stmt.person]
    first, *rest = stmt.children
    table = _table(first, full, knights)
    if op is Op.NOT:
        return full ^ table
    if op is Op.AND:
        for child in rest:
            table &= _table(child, full, knights)
        return table
    if op is Op.OR:
        for child in rest:
            table |= _table(child, full, knights)
        return table
    other = _table(rest[0], full, knights)
    if op is Op.IMPLIES:
        return (full ^ table) | other
    return full ^ table ^ other  # IFF


@functools.lru_cache(maxsize=64)
def all_assignments(n_people: int) -> int:
    """Bitset with all ``2**n_people`` bits set."""
    return (1 << (1 << n_people)) - 1


@functools.lru_cache(maxsize=64)
def knight_tables(n_people: int) -> tuple[int, ...]:
    """Truth table of "person i is a knight" for each i.

    Within each period of ``2**(i+1)`` assignments, the upper ``2**i`` have bit i set. The period
    pattern ``block`` is repeated across all ``2**N`` bits by multiplying with ``full // period_mask``
    (a number with a 1 at the start of every period).
    """
    if n_people > MAX_BITSET_PEOPLE:
        raise ValueError(
            f"truth tables are limited to {MAX_BITSET_PEOPLE} people ({n_people} asked); "
            "use logicrl.puzzles.solver.solve, which falls back to search"
        )
    full = all_assignments(n_people)
    tables = []
    for i in range(n_people):
        half = 1 << i
        block = ((1 << half) - 1) << half
        period_mask = (1 << (2 * half)) - 1
        tables.append(block * (full // period_mask))
    return tuple(tables)


def assignment_from_index(index: int, n_people: int) -> tuple[bool, ...]:
    """Decode assignment integer ``index`` (bit i = person i is a knight)."""
    return tuple(bool((index >> i) & 1) for i in range(n_people))


def json_depth(obj: list) -> int:
    """`Statement.depth` of a statement in nested-list form, without building it (leaf: ``[tag, person]``)."""
    if len(obj) == 2 and isinstance(obj[1], int):
        return 1
    return 1 + max(json_depth(child) for child in obj[1:])


def statements_to_json(statements: tuple[Statement, ...] | list[Statement]) -> list:
    return [s.to_json() for s in statements]


def statements_from_json(obj: Any) -> tuple[Statement, ...]:
    """Parse a puzzle's list of statements (one per person); validates person indices."""
    if not isinstance(obj, (list, tuple)) or not obj:
        raise ValueError("statements must be a non-empty list (one statement per person)")
    return tuple(Statement.from_json(s, n_people=len(obj)) for s in obj)

"""Perturbed twins of puzzles for the memorization study (Xie et al. 2024, arXiv 2410.23123).

Two kinds change the logic and therefore the answer; both re-solve the puzzle and keep a twin only
when it still has exactly one solution and that solution differs from the original's (a 1-person puzzle,
below the sampler's 2 people, has none):

* ``statement`` — one person's whole statement is replaced by a fresh one of the same level (the dataset's
  operators where the caller knows them, else all);
* ``leaf`` — one atomic claim ("X is a knight") inside one statement is replaced by another.

Four keep the logic and change only the surface (same answer up to wording):

* ``uncommon_names`` — every name replaced by an uncommon one;
* ``roles`` — another pair of role words (sage/fool, ...);
* ``flip_roles`` — the two role words swap meaning: "knaves always tell the truth";
* ``reorder`` — the statements are told in another order (a 1-person puzzle has no other order: no twin).

Each twin links to its original through ``original_id`` and names its ``perturbation``. A wording-only
twin keeps every other word of its original: a record that was not rendered from its own seed (a public
K&K record) is first matched to its exact text (`twin_source`).

The public K&K release names the same kinds differently (`PUBLIC_KINDS`, both ways): ``perturbed_statement``
= statement, ``perturbed_leaf`` = leaf, ``uncommon_name`` = uncommon_names, ``random_pair`` = roles,
``flip_role`` = flip_roles, ``reorder_statement`` = reorder; its unperturbed puzzles are ``clean``.

One deliberate difference: the public ``leaf`` perturbation keeps twins in which a node gets two equal
operands ("Zoey is a knight and Zoey is a knight", about 10% of its leaf twins); logicrl rejects them by
default, since such a twin is easier than its original. ``equal_operands=True`` keeps them, as the public
generator does.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from logicrl.puzzles.logic import Op, Statement
from logicrl.puzzles.names import ROLE_PAIRS, UNCOMMON_NAMES, Roles
from logicrl.puzzles.record import Puzzle, recover_rendering
from logicrl.puzzles.sampler import ALL_OPERATORS, Level, StatementSampler
from logicrl.puzzles.solver import solve

MAX_TRIES = 100  # attempts at a logic-changing twin before the puzzle is skipped
LOGIC_KINDS = ("statement", "leaf")  # twins that change the logic, and so the answer
WORDING_KINDS = ("uncommon_names", "roles", "flip_roles", "reorder")  # twins that keep the logic

CLEAN_KIND = "clean"  # the public release's name for the unperturbed puzzles
PUBLIC_KINDS: dict[str, str] = {  # public kind -> logicrl perturbation
    "perturbed_statement": "statement",
    "perturbed_leaf": "leaf",
    "uncommon_name": "uncommon_names",
    "random_pair": "roles",
    "flip_role": "flip_roles",
    "reorder_statement": "reorder",
}
PUBLIC_KIND_OF: dict[str, str] = {ours: public for public, ours in PUBLIC_KINDS.items()}


def perturbation_name(kind: str) -> str:
    """logicrl's name of a perturbation given in either naming (``perturbed_leaf`` -> ``leaf``)."""
    name = PUBLIC_KINDS.get(kind, kind)
    if name not in PUBLIC_KIND_OF:
        valid = ", ".join(f"{ours} ({public})" for ours, public in PUBLIC_KIND_OF.items())
        raise ValueError(f"unknown perturbation {kind!r} (valid: {valid})")
    return name


def twin_source(record: dict) -> tuple[Puzzle, bool]:
    """The puzzle of a record, ready to be perturbed, and whether it renders the record's own text exactly
    (`record.recover_rendering`); when it does not, wording-only twins are rendered afresh from the seed."""
    puzzle = Puzzle.from_record(dict(record))
    exact = recover_rendering(puzzle, str(record.get("quiz", "")))
    return (exact, True) if exact is not None else (puzzle, False)


def twin_mismatch(original: Puzzle, twin: Puzzle, kind: str) -> str | None:
    """What keeps ``twin`` from being a ``kind`` twin of ``original``, or None, by what each kind keeps (here
    and in the public release alike):

    * every twin has its original's people and, but for ``uncommon_names``, their names;
    * a wording twin has its original's statements and solution (statements name people by position, so an
      ``uncommon_names`` twin's are the original's under the renaming);
    * a logic twin differs in exactly one person's statement and has exactly one solution (the solver's), which
      is not its original's.
    """
    if twin.n_people != original.n_people:
        return f"{twin.n_people} people, its original {original.n_people}"
    if kind != "uncommon_names" and twin.names != original.names:
        return f"the names {', '.join(twin.names)}, its original {', '.join(original.names)}"
    if kind in WORDING_KINDS:
        if twin.statements != original.statements:
            return "other statements than its original"
        return "another solution than its original" if twin.solution != original.solution else None
    changed = sum(a != b for a, b in zip(twin.statements, original.statements))
    if changed != 1:
        return f"{changed} statements changed, not 1"
    solutions = solve(twin.statements)
    if len(solutions) != 1:
        return f"{len(solutions)} solutions, not 1"
    return "its original's solution" if solutions[0] == original.solution else None


def _resolved(puzzle: Puzzle, statements: tuple[Statement, ...], kind: str) -> Puzzle | None:
    """The twin with new statements, if it has one solution and that solution is new."""
    solutions = solve(statements)
    if len(solutions) != 1 or solutions[0] == puzzle.solution:
        return None
    return puzzle.evolve(statements=statements, solution=solutions[0], perturbation=kind, original_id=puzzle.id)


def statement_level(puzzle: Puzzle, operators: tuple[Op, ...] = ALL_OPERATORS) -> Level:
    """The level a ``statement`` twin's new statement is drawn at: the puzzle's, with ``operators`` (a record
    does not store its operator set: the caller knows it, or all are allowed). `Level.validate` refuses one too
    large to draw (a record's depth 40)."""
    return Level(puzzle.n_people, puzzle.depth, max(puzzle.width, 2), operators)


def undrawable_statement(puzzle: Puzzle, operators: tuple[Op, ...] = ALL_OPERATORS) -> str | None:
    """Why no ``statement`` twin's new statement can be drawn at ``puzzle``'s level (`Level.validate`: a record's
    depth 40 with every operator), or None (also for a 1-person puzzle, which has no statement twin at all)."""
    if puzzle.n_people < 2:
        return None
    try:
        statement_level(puzzle, operators).validate()
    except ValueError as exc:
        return str(exc)
    return None


def perturb_statement(puzzle: Puzzle, rng: random.Random,
                      operators: tuple[Op, ...] = ALL_OPERATORS) -> Puzzle | None:
    if puzzle.n_people < 2:
        return None
    sampler = StatementSampler(statement_level(puzzle, operators), rng)
    for _ in range(MAX_TRIES):
        speaker = rng.randrange(puzzle.n_people)
        statements = list(puzzle.statements)
        statements[speaker] = sampler.statement(speaker, puzzle.depth)
        twin = _resolved(puzzle, tuple(statements), "statement")
        if twin:
            return twin
    return None


def replace_leaf(stmt: Statement, target: int, new_leaf: Statement) -> tuple[Statement, int]:
    """Replace the ``target``-th leaf (left to right); returns (new tree, leaves seen)."""
    if stmt.op.is_leaf:
        return (new_leaf if target == 0 else stmt), 1
    children, seen = [], 0
    for child in stmt.children:
        new_child, count = replace_leaf(child, target - seen, new_leaf)
        children.append(new_child)
        seen += count
    return Statement(stmt.op, children=tuple(children)), seen


def operands_distinct(stmt: Statement) -> bool:
    """No node has two equal operands (``X <=> X`` would make the twin easier than its original)."""
    if stmt.op.is_leaf:
        return True
    return len(set(stmt.children)) == len(stmt.children) and all(operands_distinct(c) for c in stmt.children)


def perturb_leaf(puzzle: Puzzle, rng: random.Random, equal_operands: bool = False) -> Puzzle | None:
    """One leaf replaced by a new leaf; ``equal_operands`` keeps twins with a node's operands equal (public)."""
    if puzzle.n_people < 2:
        return None
    sampler = StatementSampler(Level(puzzle.n_people, depth=1, operators=()), rng)  # leaves only: any depth
    for _ in range(MAX_TRIES):
        speaker = rng.randrange(puzzle.n_people)
        stmt = puzzle.statements[speaker]
        leaves = stmt.leaves()
        target = rng.randrange(len(leaves))
        new_leaf = sampler.leaf(speaker)
        if new_leaf == leaves[target]:
            continue
        statements = list(puzzle.statements)
        statements[speaker] = replace_leaf(stmt, target, new_leaf)[0]
        if not equal_operands and not operands_distinct(statements[speaker]):  # as the sampler never does
            continue
        twin = _resolved(puzzle, tuple(statements), "leaf")
        if twin:
            return twin
    return None


def perturb_uncommon_names(puzzle: Puzzle, rng: random.Random) -> Puzzle:
    unused = [n for n in UNCOMMON_NAMES if n not in puzzle.names]
    pool = unused if len(unused) >= puzzle.n_people else list(UNCOMMON_NAMES)
    names = puzzle.names
    while names == puzzle.names:
        names = tuple(rng.sample(pool, puzzle.n_people))
    return puzzle.evolve(names=names, perturbation="uncommon_names", original_id=puzzle.id)


def perturb_roles(puzzle: Puzzle, rng: random.Random) -> Puzzle:
    roles = rng.choice([r for r in ROLE_PAIRS if r != puzzle.roles])
    return puzzle.evolve(roles=roles, perturbation="roles", original_id=puzzle.id)


def perturb_flip_roles(puzzle: Puzzle, rng: random.Random) -> Puzzle:
    flipped = Roles(knight=puzzle.roles.knave, knave=puzzle.roles.knight)
    return puzzle.evolve(roles=flipped, perturbation="flip_roles", original_id=puzzle.id)


def perturb_reorder(puzzle: Puzzle, rng: random.Random) -> Puzzle | None:
    """The statements told in another order; None for one person (no other order to draw)."""
    if puzzle.n_people < 2:
        return None
    order = list(puzzle.order)
    while tuple(order) == puzzle.order:
        rng.shuffle(order)
    return puzzle.evolve(order=tuple(order), perturbation="reorder", original_id=puzzle.id)


@dataclass(frozen=True)
class TwinSettings:
    """What some kinds draw with: ``equal_operands`` (``leaf``) and ``operators`` (``statement``)."""

    equal_operands: bool = False
    operators: tuple[Op, ...] = ALL_OPERATORS


PERTURBATIONS: dict[str, Callable[[Puzzle, random.Random, TwinSettings], Puzzle | None]] = {
    "statement": lambda puzzle, rng, settings: perturb_statement(puzzle, rng, settings.operators),
    "leaf": lambda puzzle, rng, settings: perturb_leaf(puzzle, rng, settings.equal_operands),
    "uncommon_names": lambda puzzle, rng, _: perturb_uncommon_names(puzzle, rng),
    "roles": lambda puzzle, rng, _: perturb_roles(puzzle, rng),
    "flip_roles": lambda puzzle, rng, _: perturb_flip_roles(puzzle, rng),
    "reorder": lambda puzzle, rng, _: perturb_reorder(puzzle, rng),
}


def perturb(puzzle: Puzzle, kind: str, seed: int, *, equal_operands: bool = False,
            operators: tuple[Op, ...] = ALL_OPERATORS) -> Puzzle | None:
    """The ``kind`` twin of ``puzzle``; None when it has none (no valid logic-changing twin was found, or a
    1-person puzzle's ``statement``, ``leaf`` or ``reorder`` twin).

    ``equal_operands`` (``leaf`` only): keep twins whose changed node has two equal operands, as the public
    generator does. ``operators`` (``statement`` only): those the new statement may use, the puzzle's dataset's
    (`DataConfig.operators`); all by default."""
    try:
        fn = PERTURBATIONS[kind]
    except KeyError:
        raise ValueError(f"unknown perturbation {kind!r} (valid: {', '.join(PERTURBATIONS)})") from None
    return fn(puzzle, random.Random(f"{seed}:{kind}:{puzzle.id}"), TwinSettings(equal_operands, operators))

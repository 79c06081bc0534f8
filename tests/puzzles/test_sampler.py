"""sampler.py: the shape of random statements, uniqueness of kept puzzles, levels, determinism.

The headline property: for thousands of generated puzzles (2..8 people, a few hundred at 10..12 and
a handful at 16), the stored ``solution`` is the only solution of the stored ``statements`` according
to an independent brute force (brute_force.py).

Run: .venv/bin/python -m pytest tests/puzzles/test_sampler.py -q
"""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter

import pytest
from brute_force import brute_force_solutions, depth, evaluate, subtrees
from hypothesis import given, settings
from hypothesis import strategies as st

from logicrl.config import load_config
from logicrl.errors import ConfigError
from logicrl.puzzles.dataset import DataConfig, generate, generate_level
from logicrl.puzzles.logic import Op
from logicrl.puzzles.sampler import (
    ALL_OPERATORS,
    MAX_EXPECTED_LEAVES,
    MAX_PEOPLE,
    Level,
    StatementSampler,
    expected_leaves,
    sample_unique_puzzle,
)

INNER = [op.value for op in ALL_OPERATORS]


def test_stored_solution_is_the_unique_solution(corpus: list[dict]) -> None:
    by_n = Counter(r["n_people"] for r in corpus)
    assert sum(c for n, c in by_n.items() if n <= 8) >= 2500
    assert sum(c for n, c in by_n.items() if 10 <= n <= 12) >= 300 and by_n[16] >= 5
    for record in corpus:
        statements = json.loads(record["statements"])
        assert len(statements) == record["n_people"] == len(record["names"])
        assert brute_force_solutions(statements) == [tuple(record["solution"])], record["id"]


def test_no_duplicate_puzzles_within_a_level(corpus: list[dict]) -> None:
    """One level is one stream of distinct puzzles (ids hash the statements, so they are distinct too)."""
    statements = Counter((r["n_people"], r["depth"], r["width"], r["statements"]) for r in corpus)
    assert max(statements.values()) == 1
    ids = Counter((r["n_people"], r["depth"], r["width"], r["id"]) for r in corpus)
    assert max(ids.values()) == 1


def check_shape(tree: list, speaker: int, level: Level) -> None:
    """Sampler guarantees: depth, widths, allowed operators, distinct operands, no self-accusation."""
    allowed = {op.value for op in level.operators}
    assert depth(tree) <= level.depth
    for node in subtrees(tree):
        op, args = node[0], node[1:]
        if op in ("telling-truth", "lying"):
            assert 0 <= args[0] < level.n_people
            assert node != ["lying", speaker], f"speaker {speaker} says they are a knave: {tree}"
            continue
        assert op in allowed
        if op == "not":
            assert len(args) == 1
        elif op in ("and", "or"):
            assert 2 <= len(args) <= level.width
        else:
            assert len(args) == 2
        if op != "not":
            assert len({json.dumps(a) for a in args}) == len(args), f"repeated operand in {node}"


@st.composite
def levels(draw, max_people: int = 8) -> Level:
    ops = draw(st.lists(st.sampled_from(ALL_OPERATORS), min_size=1, max_size=5, unique=True))
    return Level(
        n_people=draw(st.integers(2, max_people)),
        depth=draw(st.integers(1, 5)),
        width=draw(st.integers(2, 4)),
        operators=tuple(ops),
    )


@settings(max_examples=200, deadline=None)
@given(level=levels(), seed=st.integers(0, 2**32))
def test_statement_shape(level: Level, seed: int) -> None:
    sampler = StatementSampler(level, random.Random(seed))
    for _ in range(3):
        statements = sampler.puzzle_statements()
        assert len(statements) == level.n_people
        for speaker, stmt in enumerate(statements):
            check_shape(stmt.to_json(), speaker, level)
    if level.depth == 1:
        assert all(s.op.is_leaf for s in statements)


@settings(max_examples=60, deadline=None)
@given(level=levels(max_people=7), seed=st.integers(0, 2**32))
def test_sample_unique_puzzle(level: Level, seed: int) -> None:
    if level.depth == 1:  # few or no unique puzzles exist with leaves only
        level = Level(level.n_people, 2, level.width, level.operators)
    sampler = StatementSampler(level, random.Random(seed))
    seen: set = set()
    try:
        kept = [sample_unique_puzzle(sampler, seen, max_attempts=5000) for _ in range(3)]
    except RuntimeError as exc:  # e.g. operators=[not] at 2 people: tiny level
        assert "no new unique-solution puzzle" in str(exc)
        return
    assert len(seen) == 3 and {s for s, _ in kept} == seen
    for statements, solution in kept:
        trees = [s.to_json() for s in statements]
        assert brute_force_solutions(trees) == [solution]
        for speaker, tree in enumerate(trees):
            check_shape(tree, speaker, level)


def test_corpus_respects_levels(corpus: list[dict]) -> None:
    for record in corpus:
        level = Level(record["n_people"], record["depth"], record["width"])
        for speaker, tree in enumerate(json.loads(record["statements"])):
            check_shape(tree, speaker, level)


def test_all_operators_appear_and_only_allowed_ones() -> None:
    used = Counter()
    for p in generate_level(DataConfig(people=[5], depth=3, width=3), 5, 200):
        for s in p.statements:
            used.update(op.value for op in s.operators())
    assert set(used) == set(INNER)
    only_or = generate_level(DataConfig(people=[4], depth=3, operators=["or", "not"]), 4, 100)
    used = {op for p in only_or for s in p.statements for op in s.operators()}
    assert used == {Op.OR, Op.NOT}


def test_same_seed_same_puzzles() -> None:
    config = DataConfig(people=[5], depth=3, width=3, roles="random", seed=7)
    first = generate_level(config, 5, 50)
    assert generate_level(config, 5, 50) == first
    assert generate_level(config.model_copy(update={"seed": 8}), 5, 50) != first
    # A longer run starts with the shorter one.
    assert generate_level(config, 5, 60)[:50] == first


@pytest.mark.parametrize(
    ("level", "message"),
    [
        (Level(1), "number of people must be in 2..30, got 1"),
        (Level(MAX_PEOPLE + 1), "number of people must be in 2..30"),
        (Level(3, depth=0), "depth must be at least 1"),
        (Level(3, width=1), "width must be at least 2"),
        (Level(3, operators=(Op.AND, Op.KNIGHT)), "inner operators only"),
        (Level(3, depth=2, operators=()), "needs at least one operator"),
    ],
)
def test_level_validate_errors(level: Level, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        level.validate()
    with pytest.raises(ValueError, match=message):
        StatementSampler(level, random.Random(0))


def test_depth_one_without_operators_is_valid() -> None:
    Level(3, depth=1, operators=()).validate()


def test_expected_leaves_by_hand() -> None:
    # Width 2, every operator: L(2) = (1 + 1 + 2 + 2 + 2 + 2) / 6 = 10/6, then L(3) = (1 + 9 · 10/6) / 6 = 16/6.
    assert expected_leaves(Level(3, depth=1)) == 1
    assert expected_leaves(Level(3, depth=2)) == pytest.approx(10 / 6)
    assert expected_leaves(Level(3, depth=3)) == pytest.approx(16 / 6)
    # and/or with 2..5 operands average 3.5, but 2 people have only 3 distinct leaves: at depth 2 the cap is 3.
    assert expected_leaves(Level(2, depth=2, width=5, operators=(Op.AND,))) == pytest.approx((1 + 3) / 2)


@pytest.mark.parametrize(("n", "depth", "width", "operators"), [
    (3, 3, 2, ALL_OPERATORS), (8, 5, 2, ALL_OPERATORS), (4, 4, 4, ALL_OPERATORS), (6, 4, 3, (Op.AND, Op.OR)),
    (5, 6, 2, (Op.NOT, Op.IMPLIES)),
])
def test_expected_leaves_is_the_sampled_mean(n: int, depth: int, width: int, operators: tuple[Op, ...]) -> None:
    """Operands must be distinct, which the estimate ignores; it stays within 5 % of 4,000 drawn statements."""
    level = Level(n, depth, width, operators)
    sampler = StatementSampler(level, random.Random(1))
    drawn = [len(list(sampler.statement(i % n, depth).leaves())) for i in range(4000)]
    assert sum(drawn) / len(drawn) == pytest.approx(expected_leaves(level), rel=0.05)


def test_levels_too_large_to_draw_are_refused() -> None:
    """Statements grow geometrically with the depth (×1.5 a level at width 2): depth 17 is the last allowed at
    width 2; depth 100 would ask for ~1e17 clauses a statement and used to run out of memory."""
    assert expected_leaves(Level(3, depth=17)) <= MAX_EXPECTED_LEAVES < expected_leaves(Level(3, depth=18))
    Level(3, depth=17).validate()
    for level in (Level(3, depth=18), Level(2, depth=100), Level(8, depth=5, width=60)):
        with pytest.raises(ValueError, match=r"makes statements of about .* clauses on average \(at most 1,000\)"):
            level.validate()
    with pytest.raises(ConfigError, match="depth 100 with width 2 makes statements of about 3.61e"):
        load_config(DataConfig, None, ["depth=100"])


def test_any_depth_is_checked_at_once() -> None:
    """The mean is in closed form: a depth of 10**6 used to take seconds and 10**8 minutes before the error (a
    loop over 10**18 depths would never end). A width beyond a float used to raise OverflowError."""
    with pytest.raises(ValueError, match=r"depth 1000000000000000000 with width 2 makes statements of more than 1e308"):
        Level(3, depth=10**18).validate()
    with pytest.raises(ValueError, match=r"depth 3 with width 1000+ makes statements of more than 1e308 clauses"):
        Level(3, depth=3, width=10**400).validate()
    assert expected_leaves(Level(3, depth=2, width=10**400)) == expected_leaves(Level(3, depth=2, width=9))  # 2N − 1
    with pytest.raises(ValueError, match=r"of about 5e\+17 clauses"):  # -> alone: L(d) = L(2) + (d - 2) / 2
        Level(3, depth=10**18, operators=(Op.IMPLIES,)).validate()
    Level(3, depth=10**18, operators=(Op.NOT,)).validate()  # not alone: one leaf under a chain of nots
    assert expected_leaves(Level(3, depth=10**18, operators=(Op.NOT,))) == 1


def test_exhausted_level_raises_a_clear_error() -> None:
    # Two people, -> only: a few dozen unique-solution puzzles exist.
    expected = r"^only \d\d distinct unique-solution puzzles found for 2 people at depth 2, width 2; 100 asked: "
    with pytest.raises(ValueError, match=expected):
        generate(DataConfig(people=[2], operators=["->"], train=100, test=0))


@pytest.mark.parametrize("n", [2, 3, 4])
def test_no_puzzle_of_single_claims_has_one_solution(n: int) -> None:
    """Why depth 1 and operators [not] alone are refused: every puzzle of single (or negated) claims about one
    person, self-references included ("I am a knight"; nobody says "I am a knave"), has 0 or several solutions."""
    def claims(speaker: int) -> list:
        leaves = [["telling-truth", p] for p in range(n)] + [["lying", p] for p in range(n) if p != speaker]
        return leaves + [["not", leaf] for leaf in leaves]

    counts = Counter(len(brute_force_solutions(list(puzzle)))
                     for puzzle in itertools.product(*(claims(s) for s in range(n))))
    assert 1 not in counts and sum(counts.values()) == ((4 * n - 2) ** n)
    for change in ({"depth": 1}, {"operators": ["not"]}, {"operators": ["not", "not"], "depth": 4}):
        with pytest.raises(ValueError, match=r"every statement one claim or its negation, and no such puzzle has "
                                             r"exactly one solution"):
            DataConfig(people=[n], **change)


def test_exhausting_a_level_finds_every_unique_puzzle() -> None:
    """2 people, ``and`` only, depth 2: enumerate every possible puzzle; the sampler finds all of them."""
    def speaker_statements(speaker: int) -> list[list]:
        leaves = [["telling-truth", 0], ["telling-truth", 1], ["lying", 1 - speaker]]
        return leaves + [["and", a, b] for a in leaves for b in leaves if a != b]

    unique = [
        (s0, s1)
        for s0 in speaker_statements(0)
        for s1 in speaker_statements(1)
        if len(brute_force_solutions([s0, s1])) == 1
    ]
    assert unique
    # Each kept puzzle is unique and distinct (tested above), so "only K" means all K were found.
    config = DataConfig(people=[2], depth=2, operators=["and"], train=len(unique) + 1, test=0)
    expected = f"only {len(unique)} distinct unique-solution puzzles found for 2 people"
    with pytest.raises(ValueError, match=expected):
        generate(config)


def test_sample_unique_puzzle_gives_up_after_max_attempts() -> None:
    sampler = StatementSampler(Level(2, depth=1), random.Random(0))
    with pytest.raises(RuntimeError, match="no new unique-solution puzzle in 100 draws"):
        sample_unique_puzzle(sampler, set(), max_attempts=100)


def test_beyond_bitsets_the_search_path_keeps_unique_puzzles() -> None:
    """22 people: sample_unique_puzzle goes through solve() (search) instead of the bitsets."""
    sampler = StatementSampler(Level(22, depth=2, width=2), random.Random(3))
    seen: set = set()
    statements, solution = sample_unique_puzzle(sampler, seen)
    assert len(solution) == 22 and seen == {statements}
    trees = [s.to_json() for s in statements]
    assert all(evaluate(tree, solution) == solution[i] for i, tree in enumerate(trees))


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**64), sizes=st.lists(st.integers(1, 2**70), min_size=1, max_size=40))
def test_below_draws_what_randrange_draws(seed: int, sizes: list[int]) -> None:
    """`StatementSampler.below` consumes the stream as `randrange` does (so a seed keeps its puzzles), also
    between other calls on the same stream (`random()`, as `leaf` makes)."""
    sampler = StatementSampler(Level(3), random.Random(seed))
    reference = random.Random(seed)
    for n in sizes:
        assert sampler.below(n) == reference.randrange(n)
        assert sampler.rng.random() == reference.random()

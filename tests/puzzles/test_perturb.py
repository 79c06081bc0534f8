"""perturb.py: twins for the memorization study keep or change the answer as promised.

Logic-changing twins (statement, leaf) are re-solved by the independent brute force: exactly one
solution, different from the original's. Surface twins keep the statements and the solution. Every
twin's text goes through the same round trip as the originals (test_render.py's parser).

Run: .venv/bin/python -m pytest tests/puzzles/test_perturb.py -q
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from brute_force import brute_force_solutions, depth, leaves, make_records, parse_quiz, quiz_body, subtrees

from logicrl.puzzles.logic import Statement
from logicrl.puzzles.names import ROLE_PAIRS, UNCOMMON_NAMES, Roles
from logicrl.puzzles.perturb import PERTURBATIONS, perturb, replace_leaf, twin_mismatch
from logicrl.puzzles.record import Puzzle
from logicrl.puzzles.render import SPEECH_TEMPLATES

KINDS = list(PERTURBATIONS)


@pytest.fixture(scope="module")
def originals() -> list[Puzzle]:
    records = []
    for n in range(2, 8):
        records += make_records(n, 2 + n % 2, 2 + n % 3, 12, seed=n, roles="random")
    return [Puzzle.from_record(r) for r in records]


@pytest.fixture(scope="module")
def twins(originals: list[Puzzle]) -> dict[str, list[tuple[Puzzle, Puzzle]]]:
    out: dict[str, list] = {kind: [] for kind in KINDS}
    for i, original in enumerate(originals):
        for kind in KINDS:
            twin = perturb(original, kind, seed=i)
            if twin is not None:
                out[kind].append((original, twin))
    return out


def trees_of(puzzle: Puzzle) -> list[list]:
    return [s.to_json() for s in puzzle.statements]


def test_kinds() -> None:
    assert KINDS == ["statement", "leaf", "uncommon_names", "roles", "flip_roles", "reorder"]
    with pytest.raises(ValueError, match="unknown perturbation 'shuffle'"):
        perturb(Puzzle.from_record(make_records(3, 2, 2, 1)[0]), "shuffle", seed=0)


@pytest.mark.parametrize("kind", KINDS)
def test_every_twin_links_to_its_original(kind: str, twins, originals) -> None:
    pairs = twins[kind]
    # Surface twins always exist; logic twins may be skipped, but rarely.
    assert len(pairs) >= (len(originals) if kind not in ("statement", "leaf") else 0.8 * len(originals))
    for original, twin in pairs:
        assert twin.original_id == original.id and twin.perturbation == kind
        assert twin.id == f"{original.id}~{kind}"
        record = twin.to_record(0)
        assert record["original_id"] == original.id and record["perturbation"] == kind
        order, parsed = parse_quiz(record, SPEECH_TEMPLATES)
        assert order == list(twin.order) and parsed == trees_of(twin)
        assert brute_force_solutions(parsed) == [twin.solution]
        assert Puzzle.from_record(record) == twin


@pytest.mark.parametrize("kind", ["statement", "leaf"])
def test_logic_twins_change_the_unique_solution(kind: str, twins) -> None:
    for original, twin in twins[kind]:
        solutions = brute_force_solutions(trees_of(twin))
        assert solutions == [twin.solution] and twin.solution != original.solution
        changed = [i for i, (a, b) in enumerate(zip(original.statements, twin.statements)) if a != b]
        assert len(changed) == 1
        speaker = changed[0]
        new = twin.statements[speaker].to_json()
        assert depth(new) <= original.depth
        assert ["lying", speaker] not in subtrees(new)
        assert (twin.names, twin.roles, twin.order) == (original.names, original.roles, original.order)


def test_leaf_twin_differs_in_exactly_one_leaf(twins) -> None:
    for original, twin in twins["leaf"]:
        (speaker,) = [i for i, (a, b) in enumerate(zip(original.statements, twin.statements)) if a != b]
        old, new = original.statements[speaker].to_json(), twin.statements[speaker].to_json()
        assert _shape(old) == _shape(new)
        old_leaves, new_leaves = leaves(old), leaves(new)
        assert sum(a != b for a, b in zip(old_leaves, new_leaves)) == 1


def _shape(tree: list):
    if tree[0] in ("telling-truth", "lying"):
        return "leaf"
    return [tree[0], *(_shape(child) for child in tree[1:])]


@pytest.mark.parametrize("kind", ["uncommon_names", "roles", "flip_roles", "reorder"])
def test_surface_twins_keep_the_logic(kind: str, twins) -> None:
    for original, twin in twins[kind]:
        assert twin.statements == original.statements and twin.solution == original.solution


def test_uncommon_names(twins) -> None:
    for original, twin in twins["uncommon_names"]:
        assert set(twin.names) <= set(UNCOMMON_NAMES) and len(set(twin.names)) == original.n_people
        assert not set(twin.names) & set(original.names)


def test_roles(twins) -> None:
    for original, twin in twins["roles"]:
        assert twin.roles in ROLE_PAIRS and twin.roles != original.roles


def test_flip_roles(twins) -> None:
    for original, twin in twins["flip_roles"]:
        assert twin.roles == Roles(original.roles.knave, original.roles.knight)
        record = twin.to_record(0)
        truthful = original.roles.plural(False).capitalize()
        lying = original.roles.plural(True)
        assert f"{truthful} always tell the truth, and {lying} always lie." in record["quiz"]
        for line, knight in zip(record["solution_text_format"].split("\n"), twin.solution):
            word = original.roles.knave if knight else original.roles.knight
            assert line.endswith(f" {word}")


def test_reorder(twins) -> None:
    for original, twin in twins["reorder"]:
        assert twin.order != original.order and sorted(twin.order) == list(range(original.n_people))
        order, _ = parse_quiz(twin.to_record(0), SPEECH_TEMPLATES)
        assert order == list(twin.order)
        # Each speaker keeps their sentence; only the order of the sentences changes.
        words = sorted(quiz_body(twin.to_record(0)).split(" "))
        assert words == sorted(quiz_body(original.to_record(0)).split(" "))


@pytest.mark.parametrize("kind", KINDS)
def test_perturbation_is_deterministic(kind: str, originals) -> None:
    for original in originals[::10]:
        assert perturb(original, kind, seed=5) == perturb(original, kind, seed=5)


def test_perturbation_is_the_same_in_another_process(originals, tmp_path) -> None:
    """The same seed gives the same twins in processes with different string hashing (PYTHONHASHSEED): a draw
    seeded from ``hash()`` of the id would pass the test above and differ between runs."""
    records = [original.to_record(i) for i, original in enumerate(originals[::4])]
    (tmp_path / "originals.json").write_text(json.dumps(records))
    code = ("import json, sys\n"
            "from logicrl.puzzles.perturb import PERTURBATIONS, perturb\n"
            "from logicrl.puzzles.record import Puzzle\n"
            "puzzles = [Puzzle.from_record(r) for r in json.load(open(sys.argv[1]))]\n"
            "twins = [perturb(p, kind, 3) for kind in PERTURBATIONS for p in puzzles]\n"
            "print(json.dumps([t and t.to_record(0) for t in twins]))\n")
    runs = [subprocess.run([sys.executable, "-c", code, str(tmp_path / "originals.json")], capture_output=True,
                           text=True, timeout=120, check=True, env={**os.environ, "PYTHONHASHSEED": hash_seed})
            for hash_seed in ("1", "2")]
    here = [t and t.to_record(0) for t in (perturb(Puzzle.from_record(r), kind, 3) for kind in KINDS
                                             for r in records)]
    assert json.loads(runs[0].stdout) == json.loads(runs[1].stdout) == json.loads(json.dumps(here))


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "flip_roles"])
def test_another_seed_draws_other_twins(kind: str, originals) -> None:
    """The seed is part of every draw: seeds 0 and 1 give another twin for most puzzles (a draw seeded from the
    kind and the puzzle alone passed every other test). A 2-person puzzle has one other order, so its reorder
    twin is the same for any seed; a flip_roles twin is the same for any seed by construction."""
    other = [perturb(original, kind, seed=0) != perturb(original, kind, seed=1) for original in originals]
    assert sum(other) > len(originals) / 2


def test_statement_twins_draw_statements_like_the_originals(twins, originals) -> None:
    """The new statement of a statement twin is drawn at the puzzle's level, as the originals' statements: about
    as many of several leaves (a sampler forced to single leaves passed every other test), and every operator the
    originals use (one restricted to ``and`` passed too)."""
    new = [next(b for a, b in zip(original.statements, twin.statements) if a != b)
           for original, twin in twins["statement"]]
    old = [statement for original in originals for statement in original.statements]
    share = [sum(len(s.leaves()) > 1 for s in statements) / len(statements) for statements in (new, old)]
    assert abs(share[0] - share[1]) < 0.15, share
    assert set().union(*(s.operators() for s in new)) == set().union(*(s.operators() for s in old))


@pytest.mark.parametrize("kind", KINDS)
def test_every_twin_made_passes_the_pair_check(kind: str, twins) -> None:
    """`twin_mismatch` (what given twins are checked with) accepts every twin the perturbations make."""
    assert all(twin_mismatch(original, twin, kind) is None for original, twin in twins[kind])


def test_the_pair_check_refuses_what_no_perturbation_makes(twins) -> None:
    """A twin of another puzzle, a leaf twin identical to its original, one with several solutions or with its
    original's: each refused with what is wrong (a crafted leaf twin with 8 solutions was accepted)."""
    (a, reordered), (b, _) = twins["reorder"][:2]
    assert twin_mismatch(a, reordered, "reorder") is None
    assert twin_mismatch(b, reordered, "reorder") == (f"the names {', '.join(a.names)}, its original "
                                                       f"{', '.join(b.names)}")
    assert twin_mismatch(b.evolve(names=a.names), reordered, "reorder") == "other statements than its original"
    assert twin_mismatch(a, a.evolve(names=tuple(reversed(a.names))), "uncommon_names") is None  # a renaming
    original, leaf = twins["leaf"][0]
    assert twin_mismatch(original, leaf, "leaf") is None
    assert twin_mismatch(original, original, "leaf") == "0 statements changed, not 1"
    assert twin_mismatch(original, leaf, "reorder") == "other statements than its original"
    # three people who each say "I am a knight": any assignment is consistent
    eight = Puzzle(tuple(Statement.knight(i) for i in range(3)), (True,) * 3, ("A", "B", "C"), Roles(), 0,
                   (0, 1, 2), 1, 1)
    one_changed = eight.evolve(statements=(Statement.knave(1), *eight.statements[1:]), solution=(False, True, True))
    assert len(brute_force_solutions(trees_of(eight))) == 8
    assert twin_mismatch(one_changed, eight, "leaf") == "8 solutions, not 1"
    same = original.evolve(statements=(Statement.conjunction(original.statements[0], original.statements[0]),
                                       *original.statements[1:]))
    assert twin_mismatch(original, same, "statement") == "its original's solution"


def test_replace_leaf() -> None:
    stmt = Statement.from_json(["and", ["telling-truth", 0], ["or", ["lying", 1], ["telling-truth", 2]]])
    new_leaf = Statement.knave(2)
    for target, expected in (
        (0, ["and", ["lying", 2], ["or", ["lying", 1], ["telling-truth", 2]]]),
        (1, ["and", ["telling-truth", 0], ["or", ["lying", 2], ["telling-truth", 2]]]),
        (2, ["and", ["telling-truth", 0], ["or", ["lying", 1], ["lying", 2]]]),
    ):
        tree, seen = replace_leaf(stmt, target, new_leaf)
        assert tree.to_json() == expected and seen == 3
    assert json.dumps(replace_leaf(stmt, 3, new_leaf)[0].to_json()) == json.dumps(stmt.to_json())


def test_leaf_twins_keep_operands_distinct() -> None:
    for n in (5, 8):
        for record in make_records(n, 2, 2, 60, seed=n):
            twin = perturb(Puzzle.from_record(record), "leaf", seed=0)
            for stmt in twin.statements if twin else ():
                for node in subtrees(stmt.to_json()):
                    if node[0] not in ("telling-truth", "lying", "not"):
                        assert len({json.dumps(a) for a in node[1:]}) == len(node) - 1, node


def test_uncommon_names_twin_of_a_large_uncommon_puzzle() -> None:
    n = 26
    chain = tuple([Statement.knave(i + 1) for i in range(n - 1)] + [Statement.knight(n - 1)])
    puzzle = Puzzle(chain, tuple(i % 2 == 0 for i in range(n)), UNCOMMON_NAMES[:n], Roles(), 0,
                    tuple(range(n)), 1, 2)
    twin = perturb(puzzle, "uncommon_names", seed=0)
    assert set(twin.names) <= set(UNCOMMON_NAMES) and len(set(twin.names)) == n and twin.names != puzzle.names

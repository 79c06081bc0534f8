"""record.py: the record fields, Puzzle <-> record round trip, ids, and reading foreign statements.

Run: .venv/bin/python -m pytest tests/puzzles/test_record.py -q
"""

from __future__ import annotations

import json
import re

import pytest
from brute_force import brute_force_solutions, make_records

from logicrl.puzzles.logic import Statement
from logicrl.puzzles.names import Roles
from logicrl.puzzles.record import REQUIRED_FIELDS, Puzzle, parse_statements_field, people_of
from logicrl.puzzles.render import SPEECH_TEMPLATES

PUBLIC_FIELDS = ["quiz", "names", "knight_knave", "solution", "solution_text", "solution_text_format",
                 "cot_head", "cot_repeat_steps", "cot_foot", "statements", "index"]
OUR_FIELDS = ["n_people", "depth", "width", "seed", "id", "order"]

# A row in the style of the public K&K data: statements as a Python tuple literal.
PUBLIC_ROW = {
    "quiz": "A very special island is inhabited only by knights and knaves. ...",
    "names": ["Zoey", "Oliver"],
    "knight_knave": {"knight": "knight", "knave": "knave", "a_knight": "a knight", "a_knave": "a knave",
                     "Knight": "Knight", "Knave": "Knave"},
    "solution": [False, False],
    "solution_text": "Zoey is a knave and Oliver is a knave.",
    "solution_text_format": "(1) Zoey is a knave\n(2) Oliver is a knave",
    "cot_head": "Let's think step by step...",
    "cot_repeat_steps": [],
    "cot_foot": "This leads to a feasible solution.",
    "statements": "(('telling-truth', 1), ('and', ('lying', 0), ('telling-truth', 1)))",
    "index": 0,
}


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return make_records(4, 3, 3, 30, seed=11, roles="random") + make_records(7, 2, 2, 30, seed=12)


def test_record_fields_and_types(records: list[dict]) -> None:
    for i, record in enumerate(records[:30]):
        assert set(PUBLIC_FIELDS + OUR_FIELDS) <= set(record)
        assert "perturbation" not in record and "original_id" not in record
        n = record["n_people"]
        assert record["index"] == i
        assert isinstance(record["statements"], str) and len(json.loads(record["statements"])) == n
        assert all(isinstance(v, bool) for v in record["solution"]) and len(record["solution"]) == n
        assert record["order"] == list(range(n))
        assert re.fullmatch(r"kk4-[0-9a-f]{12}", record["id"])
        assert json.loads(json.dumps(record)) == record  # plain JSON types only


def test_puzzle_record_round_trip(records: list[dict]) -> None:
    for record in records:
        puzzle = Puzzle.from_record(record)
        assert puzzle.to_record(record["index"]) == record  # re-rendered exactly (seed fixes templates)
        assert Puzzle.from_record(json.loads(json.dumps(record))) == puzzle


def test_id_hashes_statements_not_surface(records: list[dict]) -> None:
    puzzle = Puzzle.from_record(records[0])
    assert puzzle.evolve(names=("A", "B", "C", "D"), roles=Roles("sage", "fool"), seed=1).id == puzzle.id
    other = Puzzle.from_record(records[1])
    assert other.id != puzzle.id
    twin = puzzle.evolve(perturbation="reorder", original_id=puzzle.id, order=(3, 2, 1, 0))
    assert twin.id == f"{puzzle.id}~reorder"
    record = twin.to_record(0)
    assert record["perturbation"] == "reorder" and record["original_id"] == puzzle.id
    assert Puzzle.from_record(record) == twin


def test_public_row_with_tuple_statements_loads() -> None:
    puzzle = Puzzle.from_record(PUBLIC_ROW)
    assert puzzle.statements == (
        Statement.knight(1),
        Statement.conjunction(Statement.knave(0), Statement.knight(1)),
    )
    assert puzzle.solution == (False, False) and puzzle.order == (0, 1)
    assert brute_force_solutions([s.to_json() for s in puzzle.statements]) == [puzzle.solution]
    assert puzzle.depth == 2 and puzzle.width == 2
    # Without the role field the roles default to knight/knave.
    bare = {k: v for k, v in PUBLIC_ROW.items() if k != "knight_knave"}
    assert Puzzle.from_record(bare).roles == Roles()


@pytest.mark.parametrize(
    "value",
    [
        '[["telling-truth",1],["lying",0]]',
        [["telling-truth", 1], ["lying", 0]],
        (("telling-truth", 1), ("lying", 0)),
        "  (('telling-truth', 1), ('lying', 0))  ",
    ],
)
def test_parse_statements_field_forms(value) -> None:
    assert parse_statements_field(value) == (Statement.knight(1), Statement.knave(0))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("__import__('os').system('true')", "neither JSON nor a K&K tuple literal"),
        ("[['telling-truth', 1]", "neither JSON nor"),
        ("(('telling-truth', 1),", "neither JSON nor"),
        ("(" * 2000 + ")" * 2000, "nests too deeply|neither JSON nor"),
        ("[" * 5000 + "]" * 5000, "nests too deeply|neither JSON nor"),
        ('[["telling-truth",2],["lying",0]]', "out of range for 2 people"),
        ("42", "non-empty list"),
        ("[]", "non-empty list"),
        ('[["xor",0],["lying",0]]', "unknown statement operator"),
    ],
)
def test_parse_statements_field_errors(value, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_statements_field(value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"solution": [True]}, "'solution' must be a list of 2 booleans"),
        ({"solution": [True, False, True]}, "'solution' must be a list of 2 booleans"),
        ({"solution": [1, 0]}, "'solution' must be a list of 2 booleans"),
        ({"solution": "[true, false]"}, "'solution' must be a list of 2 booleans"),
        ({"names": ["Zoey"]}, "'names' must be a list of 2 strings"),
        ({"names": ["Zoey", 3]}, "'names' must be a list of 2 strings"),
        ({"statements": "nonsense"}, "'statements' is neither JSON nor"),
        ({"quiz": None}, "'quiz' must be non-empty text, got None"),  # the prompt would read "None"
        ({"quiz": " "}, "'quiz' must be non-empty text"),
        ({"solution_text_format": ["Zoey is a knight"]}, "'solution_text_format' must be non-empty text"),
        ({"n_people": "two"}, "'n_people' must be 2, the number of statements and names, got 'two'"),
        ({"n_people": 3}, "'n_people' must be 2"),
        ({"n_people": True}, "'n_people' must be 2"),
        ({"seed": "abc"}, "'seed' must be a whole number, got 'abc'"),
        ({"seed": 1.5}, r"'seed' must be a whole number, got 1\.5"),  # int() would have cut it to 1
        ({"seed": "7"}, "'seed' must be a whole number, got '7'"),
        ({"seed": True}, "'seed' must be a whole number, got True"),
        ({"depth": float("inf")}, "'depth' must be a whole number, got inf"),
        ({"depth": [2]}, r"'depth' must be a whole number, got \[2\]"),
        ({"depth": 0}, r"^'depth' must be at least 1 \(a leaf has depth 1\), got 0$"),
        ({"depth": -2}, r"^'depth' must be at least 1 \(a leaf has depth 1\), got -2$"),
        ({"width": 0}, r"^'width' must be at least 1 \(a leaf has width 1\), got 0$"),
    ],
)
def test_from_record_errors_name_the_field(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Puzzle.from_record(PUBLIC_ROW | change)


def test_whole_numbers_written_as_floats_are_read() -> None:
    """A JSON writer that prints every number with a point (``"seed": 7.0``) wrote whole numbers all the same."""
    puzzle = Puzzle.from_record(PUBLIC_ROW | {"seed": 7.0, "depth": 2.0})
    assert (puzzle.seed, puzzle.depth) == (7, 2) and isinstance(puzzle.seed, int)


def test_null_optional_numbers_are_absent() -> None:
    """parquet writes a field that some rows lack as null: such a row reads as one without the field."""
    nulls = Puzzle.from_record(PUBLIC_ROW | {"seed": None, "depth": None, "width": None})
    assert nulls == Puzzle.from_record(PUBLIC_ROW) and (nulls.seed, nulls.depth, nulls.width) == (0, 2, 2)


def test_from_record_missing_fields() -> None:
    expected = r"missing field\(s\) quiz, names, solution, solution_text_format, statements"
    with pytest.raises(ValueError, match=expected):
        Puzzle.from_record({"foo": 1})
    assert REQUIRED_FIELDS == ("quiz", "names", "solution", "solution_text_format", "statements")


@pytest.mark.parametrize("order", [[0, 0], [0, 5], [1]])
def test_from_record_rejects_a_bad_order(order: list[int]) -> None:
    with pytest.raises(ValueError, match="order"):
        Puzzle.from_record(PUBLIC_ROW | {"order": order})


@pytest.mark.parametrize("roles", [{"knight": "knight"}, {"knight": "knight", "knave": "knight"}])
def test_from_record_checks_the_role_words(roles: dict) -> None:
    with pytest.raises(ValueError, match="knight_knave"):
        Puzzle.from_record(PUBLIC_ROW | {"knight_knave": roles})


def test_from_record_rejects_duplicate_names() -> None:
    with pytest.raises(ValueError, match="names"):
        Puzzle.from_record(PUBLIC_ROW | {"names": ["Zoey", "Zoey"]})


def test_n_people_true_is_refused() -> None:
    """n_people=True equals 1 in Python but is no count: the record is refused, naming n_people."""
    record = {"quiz": "q", "names": ["A"], "solution": [True], "solution_text_format": "(1) A is a knight",
              "statements": '[["telling-truth",0]]', "n_people": True}
    with pytest.raises(ValueError, match="n_people"):
        Puzzle.from_record(record)


def test_n_people_null_is_read_as_absent() -> None:
    """Parquet writes null for a key some rows lack: `people_of` read it as absent, `from_record` refused it."""
    assert Puzzle.from_record(PUBLIC_ROW | {"n_people": None}) == Puzzle.from_record(PUBLIC_ROW)


def test_more_than_30_people_are_refused() -> None:
    """A puzzle beyond the sampler's 30 people loaded, then `data perturb` failed on it with a traceback."""
    for n, ok in ((30, True), (31, False)):
        record = {"quiz": "q", "names": [f"P{i}" for i in range(n)], "solution": [True] * n,
                  "solution_text_format": "x", "statements": json.dumps([["telling-truth", i] for i in range(n)])}
        if ok:
            assert Puzzle.from_record(record).n_people == 30
        else:
            with pytest.raises(ValueError, match="^a puzzle has at most 30 people, got 31 statements$"):
                Puzzle.from_record(record)


def test_a_template_index_past_the_last_template_is_refused() -> None:
    """Template indices run 0 .. len(SPEECH_TEMPLATES) - 1: len(SPEECH_TEMPLATES) itself is refused."""
    record = {**make_records(2, 2, 2, 1, seed=3)[0], "templates": [len(SPEECH_TEMPLATES), 0]}
    with pytest.raises(ValueError, match="templates"):
        Puzzle.from_record(record)


def test_people_of_reads_n_people_and_falls_back_to_the_names_when_absent_or_null():
    names = ["A", "B", "C"]
    assert people_of({"n_people": 5, "names": names}) == 5  # the field wins: the record's checks are elsewhere
    assert people_of({"n_people": "4", "names": names}) == 4
    assert people_of({"names": names}) == 3
    assert people_of({"n_people": None, "names": names}) == 3  # parquet's missing value


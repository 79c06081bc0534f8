"""render.py: the quiz text parses back to the stored statements (the text round trip).

brute_force.py holds a recursive-descent parser written from the grammar in render.py's docstring.
For thousands of puzzles (2..12 people, depth 2..4, width 2..4, random role words, both name pools)
each speaker's sentence is cut out of the quiz with the speech templates, parsed back to a tree, and
compared with the record's ``statements``; the parsed trees are re-solved by brute force too.

Run: .venv/bin/python -m pytest tests/puzzles/test_render.py -q
"""

from __future__ import annotations

import json
import re

import pytest
from brute_force import (
    ParseError,
    brute_force_solutions,
    make_records,
    parse_quiz,
    parse_statement,
    quiz_body,
    split_speech,
    trees,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from logicrl.puzzles.logic import Statement, statements_from_json
from logicrl.puzzles.names import COMMON_NAMES, ROLE_PAIRS, UNCOMMON_NAMES, Roles, with_article
from logicrl.puzzles.render import (
    SPEECH_TEMPLATES,
    list_names,
    quiz_text,
    solution_text,
    solution_text_format,
    statement_text,
)

NAMES = ("Zoey", "Oliver", "Ethan", "Aurora")
K = Statement.knight
N = Statement.knave


def check_round_trip(record: dict, resolve: bool = True) -> None:
    order, parsed = parse_quiz(record, SPEECH_TEMPLATES)
    assert order == record["order"]
    assert parsed == json.loads(record["statements"])
    if resolve:
        assert brute_force_solutions(parsed) == [tuple(record["solution"])]
    check_answer_texts(record)


def check_answer_texts(record: dict) -> None:
    names, roles = record["names"], record["knight_knave"]
    lines = record["solution_text_format"].split("\n")
    assert len(lines) == len(names)
    claims = []
    for i, (line, name, knight) in enumerate(zip(lines, names, record["solution"]), start=1):
        m = re.fullmatch(r"\((\d+)\) ([A-Z][a-z]+) is (a|an) ([a-z]+)", line)
        assert m, line
        role = roles["knight"] if knight else roles["knave"]
        assert m.groups() == (str(i), name, "an" if role[0] in "aeiou" else "a", role)
        claims.append(f"{name} is {m.group(3)} {role}")
    # The public form, also for two people ("A is a knight, and B is a knave."): the public evaluator splits
    # solution_text on commas.
    expected = ", ".join(claims[:-1]) + ", and " + claims[-1]
    assert record["solution_text"] == expected + "."


def test_round_trip_over_the_corpus(corpus: list[dict]) -> None:
    for record in corpus:
        check_round_trip(record, resolve=record["n_people"] <= 8)


@settings(max_examples=120, deadline=None)
@given(
    n=st.integers(2, 12),
    depth=st.integers(2, 4),
    width=st.integers(2, 4),
    roles=st.sampled_from(["random", *(str(r) for r in ROLE_PAIRS), "truther/liar"]),
    names=st.sampled_from(["common", "uncommon"]),
    seed=st.integers(0, 2**31),
)
def test_round_trip_random_levels(n: int, depth: int, width: int, roles: str, names: str, seed: int) -> None:
    count = 8 if n <= 8 else 2
    for record in make_records(n, depth, width, count, seed=seed, roles=roles, names=names):
        check_round_trip(record, resolve=n <= 8)
        pool = COMMON_NAMES if names == "common" else UNCOMMON_NAMES
        assert set(record["names"]) <= set(pool) and len(set(record["names"])) == n
        if roles != "random":
            assert str(Roles.from_record(record["knight_knave"])) == roles


@settings(max_examples=200, deadline=None)
@given(data=st.data(), template=st.integers(0, len(SPEECH_TEMPLATES) - 1))
def test_every_template_parses_back(data, template: int) -> None:
    """Each speech template, each kind of first word (name, "it", "if", parenthesis)."""
    roles = data.draw(st.sampled_from(ROLE_PAIRS))
    order = data.draw(st.permutations(range(3)))
    statements = [data.draw(trees(3, 4)) for _ in range(3)]
    quiz = quiz_text(statements_from_json(statements), NAMES[:3], roles, [template] * 3, order)
    record = {"quiz": quiz, "names": list(NAMES[:3]), "knight_knave": roles.to_record()}
    assert parse_quiz(record, SPEECH_TEMPLATES) == (list(order), statements)


@pytest.mark.parametrize(
    ("stmt", "text"),
    [
        (K(0), "Zoey is a knight"),
        (N(1), "Oliver is a knave"),
        (Statement.negation(K(2)), "Ethan is not a knight"),
        (Statement.negation(Statement.negation(N(0))), "it is not the case that Zoey is not a knave"),
        (Statement.negation(Statement.conjunction(K(0), K(1))),
         "it is not the case that (Zoey is a knight and Oliver is a knight)"),
        (Statement.conjunction(K(0), Statement.disjunction(N(1), Statement.negation(K(2))), K(3)),
         "Zoey is a knight and (Oliver is a knave or Ethan is not a knight) and Aurora is a knight"),
        (Statement.implication(Statement.negation(K(0)), N(1)),
         "if Zoey is not a knight then Oliver is a knave"),
        (Statement.equivalence(Statement.implication(K(0), K(1)), N(2)),
         "(if Zoey is a knight then Oliver is a knight) if and only if Ethan is a knave"),
        (Statement.disjunction(Statement.conjunction(K(0), K(1)), Statement.conjunction(N(2), N(3))),
         "(Zoey is a knight and Oliver is a knight) or (Ethan is a knave and Aurora is a knave)"),
    ],
)
def test_statement_text_by_hand(stmt: Statement, text: str) -> None:
    assert statement_text(stmt, NAMES, Roles()) == text
    assert parse_statement(text, NAMES, "knight", "knave") == stmt.to_json()


def test_role_words_and_articles() -> None:
    angel = Roles("angel", "devil")
    assert statement_text(K(0), NAMES, angel) == "Zoey is an angel"
    altruist = Roles("altruist", "egoist")
    assert statement_text(Statement.negation(N(1)), NAMES, altruist) == "Oliver is not an egoist"
    assert with_article("hero") == "a hero" and with_article("egoist") == "an egoist"
    assert Roles("hero", "villain").plural(True) == "heroes"
    quiz = quiz_text([N(1), K(0)], NAMES[:2], Roles("hero", "villain"), [0, 0])
    assert quiz.startswith("A very special island is inhabited only by heroes and villains. "
                           "Heroes always tell the truth, and villains always lie. You meet 2 inhabitants: ")
    assert quiz.endswith("So who is a hero and who is a villain?")


def test_quiz_text_by_hand() -> None:
    quiz = quiz_text([N(1), Statement.conjunction(K(0), K(1))], NAMES[:2], Roles(), [0, 2], order=[1, 0])
    assert quiz == (
        "A very special island is inhabited only by knights and knaves. Knights always tell the truth, "
        "and knaves always lie. You meet 2 inhabitants: Zoey and Oliver. "
        'Oliver said, "Zoey is a knight and Oliver is a knight." Zoey said that Oliver is a knave. '
        "So who is a knight and who is a knave?"
    )


def test_indirect_speech_is_not_capitalised_and_quotes_are() -> None:
    stmt = [Statement.negation(Statement.conjunction(K(0), K(1))), Statement.implication(K(0), N(0))]
    quiz = quiz_text(stmt, NAMES[:2], Roles(), [0, 2])
    assert "Zoey said that it is not the case that (" in quiz
    assert 'Oliver said, "If Zoey is a knight then Zoey is a knave."' in quiz


def test_list_names() -> None:
    assert list_names(["A", "B"]) == "A and B"
    assert list_names(["A", "B", "C"]) == "A, B, and C"


def test_answer_texts_by_hand() -> None:
    sol, names = (True, False, True), NAMES[:3]
    assert solution_text(sol, names, Roles()) == "Zoey is a knight, Oliver is a knave, and Ethan is a knight."
    assert solution_text(sol[:2], names[:2], Roles()) == "Zoey is a knight, and Oliver is a knave."
    assert solution_text_format(sol, names, Roles("angel", "devil")) == (
        "(1) Zoey is an angel\n(2) Oliver is a devil\n(3) Ethan is an angel"
    )


def test_parser_rejects_ambiguous_or_foreign_text() -> None:
    """The oracle itself must fail on text outside the grammar (else the round trip proves nothing)."""
    for bad in (
        "Zoey is a knight and Oliver is a knight or Ethan is a knave",  # mixed chain, no parentheses
        "(Zoey is a knight) and Oliver is a knave",  # needless parentheses
        "Zoey is an knight",
        "Zoey is a knight then",
        "Mallory is a knight",
    ):
        with pytest.raises(ParseError):
            parse_statement(bad, NAMES, "knight", "knave")


def test_names_and_roles_tables() -> None:
    for pool in (COMMON_NAMES, UNCOMMON_NAMES):
        assert len(set(pool)) == len(pool) >= 30
        assert all(re.fullmatch(r"[A-Z][a-z]+", name) for name in pool)
    assert not set(COMMON_NAMES) & set(UNCOMMON_NAMES)
    words = {w for r in ROLE_PAIRS for w in (r.knight, r.knave)}
    assert not {n.lower() for n in COMMON_NAMES + UNCOMMON_NAMES} & words
    assert Roles.parse("sage/fool") == Roles("sage", "fool")
    for bad in ("sage", "Sage/fool", "sage/sage", "a/b/c", "sage/fo ol"):
        with pytest.raises(ValueError, match="role words must look like"):
            Roles.parse(bad)
    rec = Roles("angel", "devil").to_record()
    assert rec == {"knight": "angel", "knave": "devil", "a_knight": "an angel", "a_knave": "a devil",
                   "Knight": "Angel", "Knave": "Devil"}
    assert Roles.from_record(rec) == Roles("angel", "devil")


def test_random_templates_vary() -> None:
    """The records use several templates (a regression to one fixed phrasing would go unnoticed)."""
    records = make_records(4, 2, 2, 50, seed=1)
    used = {k for r in records for _, _, k in split_speech(quiz_body(r), SPEECH_TEMPLATES)}
    assert used == set(range(len(SPEECH_TEMPLATES)))


def test_a_role_starting_with_u_takes_an():
    """"umpire" starts with a vowel: "an umpire"."""
    assert Roles("umpire", "fool").with_article(True) == "an umpire"

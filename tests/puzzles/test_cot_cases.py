"""cot.case_steps: reasoning by cases is a true account of checking assignments in order.

Each line is parsed with regexes and re-checked with the independent brute-force evaluator: the cases come
in the fixed order, every claim is the speaker's statement, every clause note and verdict is its real truth
value, a case stops at its first contradiction, and the case without one is the record's solution.

Run: .venv/bin/python -m pytest tests/puzzles/test_cot_cases.py -q
"""

from __future__ import annotations

import itertools
import json
import re

import pytest
from brute_force import evaluate, make_records, parse_statement

from logicrl.prompts import PromptConfig, response_target
from logicrl.puzzles.cot import CASES_HEAD, case_steps
from logicrl.puzzles.logic import statements_from_json
from logicrl.puzzles.names import Roles
from logicrl.reward import score

CASE = re.compile(r"Case (\d+): (.+)\.")
CHECK = re.compile(r"([A-Z][a-z]+), (?:a|an) ([a-z]+), says (.+): (true|false)\. (OK|Contradiction)\.")
NOTE = re.compile(r" \((true|false)\)")


def replay(record: dict, steps: list[str]) -> tuple[bool, ...]:
    """Check every line against brute force; return the assignment of the case without a contradiction."""
    names, roles = record["names"], record["knight_knave"]
    statements = json.loads(record["statements"])
    order = list(itertools.product((True, False), repeat=len(names)))
    lines = iter(steps)
    for number, assignment in enumerate(order, start=1):
        m = CASE.fullmatch(next(lines))
        assert m and int(m[1]) == number
        assert m[2] == ", ".join(f"{n} {roles['knight' if a else 'knave']}" for n, a in zip(names, assignment))
        for speaker, statement in enumerate(statements):
            line = next(lines)
            if line == f"Case {number} has no contradiction.":
                assert speaker == len(statements)
                return assignment
            m = CHECK.fullmatch(line)
            assert m, line
            assert m[1] == names[speaker] and m[2] == roles["knight" if assignment[speaker] else "knave"]
            claim = NOTE.sub("", m[3])
            assert parse_statement(claim, names, roles["knight"], roles["knave"]) == statement, line
            clauses = re.findall(r"([A-Z][a-z]+ is (?:not )?(?:a|an) [a-z]+) \((true|false)\)", m[3])
            for clause, value in clauses:
                tree = parse_statement(clause, names, roles["knight"], roles["knave"])
                assert evaluate(tree, assignment) == (value == "true"), line
            truth = evaluate(statement, assignment)
            assert m[4] == str(truth).lower(), line
            assert (m[5] == "OK") == (truth == assignment[speaker]), line
            if m[5] == "Contradiction":
                break
        else:
            assert next(lines) == f"Case {number} has no contradiction."
            return assignment
    raise AssertionError("no case without a contradiction")


def test_cases_replay_to_the_solution() -> None:
    for n in (2, 3, 4, 5):
        for record in make_records(n, 2, 2, 30, seed=n, roles="random"):
            statements = statements_from_json(json.loads(record["statements"]))
            roles = Roles(record["knight_knave"]["knight"], record["knight_knave"]["knave"])
            steps = case_steps(statements, record["names"], roles)
            assert replay(record, steps) == tuple(record["solution"])
            assert steps[-1].endswith("has no contradiction.")  # nothing after the first consistent case


def test_cases_two_person_example_by_hand() -> None:
    """Zoey: "Oliver is a knave"; Oliver: "Zoey is a knave and Oliver is a knave" (Oliver lies)."""
    statements = statements_from_json([["lying", 1], ["and", ["lying", 0], ["lying", 1]]])
    assert case_steps(statements, ["Zoey", "Oliver"], Roles()) == [
        "Case 1: Zoey knight, Oliver knight.",
        "Zoey, a knight, says Oliver is a knave: false. Contradiction.",
        "Case 2: Zoey knight, Oliver knave.",
        "Zoey, a knight, says Oliver is a knave: true. OK.",
        "Oliver, a knave, says Zoey is a knave (false) and Oliver is a knave (true): false. OK.",
        "Case 2 has no contradiction.",
    ]


def test_cases_without_a_solution_raise() -> None:
    """Zoey: "Oliver is a knave"; Oliver: "Zoey is a knight and Oliver is a knave": no assignment works."""
    statements = statements_from_json([["lying", 1], ["and", ["telling-truth", 0], ["lying", 1]]])
    with pytest.raises(ValueError, match="no consistent assignment"):
        case_steps(statements, ["Zoey", "Oliver"], Roles())


def test_cases_target_earns_the_full_reward() -> None:
    for record in make_records(3, 2, 2, 20, seed=7):
        target = response_target(record, PromptConfig(), "cases")
        assert target.startswith(f" {CASES_HEAD}\n")
        verdict = score(target, record["solution_text_format"], prefilled_think=True,
                        roles=record["knight_knave"], question=record["quiz"])
        assert verdict.total == 3.0, verdict.format_reason or verdict.answer_reason

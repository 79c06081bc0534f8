"""Audit a response written in the reasoning-by-cases form (`logicrl.puzzles.cot.case_steps`).

A trace by cases can be checked line by line against the puzzle, so it shows whether a model's reasoning got
better, not only its answers. For every check line ``Name, a role, says …: true|false. OK|Contradiction.`` under
the latest ``Case k: …`` line, the audit evaluates the speaker's real statement under that case's assignment:

    truth right    the line's true/false is the statement's value under the case
    verdict right  OK exactly when that value agrees with the speaker's role in the case (a knight's
                   statement must be true, a knave's false)
    role right     the line's role word ("Zoey, a knave, …") is the speaker's role in the case (a trace that
                   names one case and checks the roles of another gets it wrong)

and a case line is *in order* when it is the k-th assignment of the fixed order (all knights first, the last
person changing fastest). Lines that are not case or check lines are ignored. Pure functions, no I/O; the
trainer's trace shaping and check-line credit (`logicrl.rl.shaping`) use it, and
`logicrl.analysis.cases.audit_summary` pools it over sample rows, a library function for results scripts
(results/credit/bf16-100/trace_audit.py) that no command calls.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from typing import Any

from logicrl.puzzles.cot import check_line
from logicrl.puzzles.record import Puzzle

CASE_LINE = re.compile(r"Case (\d+): (.+)\.")
CHECK_LINE = re.compile(r"(\S+), (?:a|an) (\S+), says .+: (true|false)\. (OK|Contradiction)\.")


def audit_lines(response: str,
                record: Mapping[str, Any]) -> Iterator[tuple[int, str, dict[str, bool], str | None]]:
    """``(line index, kind, verdicts, expected)`` for each case or check line of ``response`` (lines split at
    ``"\n"``): kind ``"case"`` with ``{"in_order"}``, or ``"check"`` with ``{"truth_right", "verdict_right"}`` and
    the line the template trace writes for that speaker under that case (`logicrl.puzzles.cot.check_line`). A
    check line whose speaker or role words do not belong to the puzzle, or that comes before any case line, has
    all False and no expected line."""
    puzzle = Puzzle.from_record(dict(record))
    names = list(puzzle.names)
    words = {puzzle.roles.word(True): True, puzzle.roles.word(False): False}
    order = list(itertools.product((True, False), repeat=len(names)))
    assignment: tuple[bool, ...] | None = None
    for index, line in enumerate(part.strip() for part in response.split("\n")):
        if m := CASE_LINE.fullmatch(line):
            assignment = parse_cast(m[2], names, words)
            number = int(m[1])
            yield index, "case", {"in_order": assignment is not None and 1 <= number <= len(order)
                                  and order[number - 1] == assignment}, None
        elif m := CHECK_LINE.fullmatch(line):
            if assignment is None or m[1] not in names:
                yield index, "check", {"truth_right": False, "verdict_right": False, "role_right": False}, None
                continue
            speaker = names.index(m[1])
            truth = puzzle.statements[speaker].evaluate(assignment)
            yield index, "check", {"truth_right": m[3] == str(truth).lower(),
                                   "verdict_right": (m[4] == "OK") == (truth == assignment[speaker]),
                                   "role_right": words.get(m[2]) == assignment[speaker]}, \
                check_line(puzzle.statements[speaker], speaker, assignment, names, puzzle.roles)


def audit_cases(response: str, record: Mapping[str, Any]) -> dict[str, int]:
    """Counts for one response (`audit_lines` summed): ``cases``, ``cases_in_order``, ``checks``,
    ``truth_right``, ``verdict_right``, ``role_right`` and ``checks_right`` (truth and verdict right)."""
    counts = dict.fromkeys(("cases", "cases_in_order", "checks", "truth_right", "verdict_right", "role_right",
                            "checks_right"), 0)
    for _, kind, verdicts, _ in audit_lines(response, record):
        if kind == "case":
            counts["cases"] += 1
            counts["cases_in_order"] += verdicts["in_order"]
        else:
            counts["checks"] += 1
            counts["truth_right"] += verdicts["truth_right"]
            counts["verdict_right"] += verdicts["verdict_right"]
            counts["role_right"] += verdicts["role_right"]
            counts["checks_right"] += verdicts["truth_right"] and verdicts["verdict_right"]
    return counts


def last_case(response: str, puzzle: Puzzle) -> tuple[bool, ...] | None:
    """The assignment (True = knight, in the puzzle's name order) of the last case line of ``response`` that
    names every person, or None if it has none (``puzzle``: `Puzzle.from_record` of the response's record)."""
    names, words = list(puzzle.names), {puzzle.roles.word(True): True, puzzle.roles.word(False): False}
    cases = [parse_cast(m[2], names, words) for part in response.split("\n")
             if (m := CASE_LINE.fullmatch(part.strip()))]
    return next((case for case in reversed(cases) if case is not None), None)


def parse_cast(text: str, names: list[str], words: dict[str, bool]) -> tuple[bool, ...] | None:
    """``"Zoey knight, Oliver knave"`` → (True, False) in the puzzle's name order; None if it is not a full cast."""
    roles: dict[str, bool] = {}
    for part in text.split(", "):
        name, _, word = part.partition(" ")
        if name not in names or word not in words or name in roles:
            return None
        roles[name] = words[word]
    return tuple(roles[n] for n in names) if len(roles) == len(names) else None

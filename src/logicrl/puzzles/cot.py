"""Template reasoning (the ``cot_*`` fields): the solver's search written out step by step.

The chain follows the depth-first search of solver.search_events up to the first solution:
each person is assumed a knight, then a knave; an assumption that makes some speaker's statement
contradict their role is rejected with the reason; when both roles of a person fail, the search
goes back to the previous person. These texts are SFT targets for a cold start, so they state only
what the search actually checked, in the order it checked it.

Example (2 people)::

    Let's think step by step, by considering whether each person is lying and if that leads to
    contradiction. Assume Zoey is a knight. Oliver cannot be a knight, because Zoey, a knight, said
    that Oliver is a knave, which would then be false. Assume Oliver is a knave. This leads to a
    feasible solution.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from logicrl.puzzles.logic import Statement
from logicrl.puzzles.names import Roles
from logicrl.puzzles.render import is_simple, statement_text
from logicrl.puzzles.solver import SearchEvent, search_events

COT_HEAD = (
    "Let's think step by step, by considering whether each person is lying and if that leads to "
    "contradiction."
)
COT_FOOT = "This leads to a feasible solution."


def search_trace(statements: Sequence[Statement]) -> list[SearchEvent]:
    """The search events up to and including the first solution."""
    return search_events(statements, first_solution=True)


def step_text(
    event: SearchEvent,
    statements: Sequence[Statement],
    names: Sequence[str],
    roles: Roles,
    assumed: dict[int, bool],
    claims: dict[int, str],
) -> str | None:
    """One sentence for one search event (None for events that need no sentence)."""
    if event.kind == "assume":
        return f"Assume {names[event.person]} is {roles.with_article(bool(event.role))}."
    if event.kind == "contradiction":
        speaker = event.by
        speaker_role = event.role if speaker == event.person else assumed[speaker]
        if speaker not in claims:
            claims[speaker] = statement_text(statements[speaker], names, roles)
        claim = claims[speaker]
        truth = "false" if speaker_role else "true"
        head = f"{names[event.person]} cannot be {roles.with_article(bool(event.role))}, because"
        if speaker == event.person:
            return f"{head} their own claim that {claim} would then be {truth}."
        return (
            f"{head} {names[speaker]}, {roles.with_article(bool(speaker_role))}, said that {claim}, "
            f"which would then be {truth}."
        )
    if event.kind == "backtrack":
        return (
            f"We have exhausted all possibilities for {names[event.person]}, "
            f"so let us go back and reconsider {names[event.by]}."
        )
    return None


def cot_steps(statements: Sequence[Statement], names: Sequence[str], roles: Roles) -> list[str]:
    """The ``cot_repeat_steps`` field: one sentence per search step."""
    steps = []
    assumed: dict[int, bool] = {}
    claims: dict[int, str] = {}  # speaker -> statement text, rendered once
    for event in search_trace(statements):
        text = step_text(event, statements, names, roles, assumed, claims)
        if event.kind == "assume":
            assumed[event.person] = bool(event.role)
        if text:
            steps.append(text)
    return steps


def cot_text(record: dict) -> str:
    """Head, steps and foot joined: the reasoning an SFT target puts inside ``<think>``."""
    return " ".join([record["cot_head"], *record["cot_repeat_steps"], record["cot_foot"]])


CASES_HEAD = "Let's check the cases one by one until one has no contradiction."


def case_steps(statements: Sequence[Statement], names: Sequence[str], roles: Roles) -> list[str]:
    """Template reasoning by cases (`logicrl sft`'s ``trace: cases``): a shorter, more regular trace than the
    search.

    Assignments are tried in order (all knights first, the last person changing fastest). For each, every
    speaker's statement is evaluated under the assignment, clause by clause, and checked against the
    speaker's role (a knight's statement must be true, a knave's false); the first failure ends the case.
    Every step is a lookup in the line above it, so a small model can carry it out::

        Case 1: Zoey knight, Oliver knight.
        Zoey, a knight, says Oliver is a knave: false. Contradiction.
        Case 2: Zoey knight, Oliver knave.
        Zoey, a knight, says Oliver is a knave: true. OK.
        Oliver, a knave, says Zoey is a knight (true) and Oliver is a knave (true): true. Contradiction.
    """
    steps = []
    for number, assignment in enumerate(itertools.product((True, False), repeat=len(names)), start=1):
        cast = ", ".join(f"{name} {roles.word(role)}" for name, role in zip(names, assignment))
        steps.append(f"Case {number}: {cast}.")
        for speaker, statement in enumerate(statements):
            steps.append(check_line(statement, speaker, assignment, names, roles))
            if statement.evaluate(assignment) != assignment[speaker]:
                break
        else:
            steps.append(f"Case {number} has no contradiction.")
            return steps
    raise ValueError("the statements have no consistent assignment")


def check_line(statement: Statement, speaker: int, assignment: Sequence[bool], names: Sequence[str],
               roles: Roles) -> str:
    """The check line of `case_steps` for ``speaker``'s ``statement`` under ``assignment``: the claim with each
    clause's value (compound statements), the statement's value and the verdict (OK when it agrees with the
    speaker's role)."""
    truth = statement.evaluate(assignment)
    note = None if is_simple(statement) else (lambda clause: f" ({str(clause.evaluate(assignment)).lower()})")
    claim = statement_text(statement, names, roles, note)
    verdict = "OK" if truth == assignment[speaker] else "Contradiction"
    return (f"{names[speaker]}, {roles.with_article(assignment[speaker])}, says {claim}: "
            f"{str(truth).lower()}. {verdict}.")


def cases_text(statements: Sequence[Statement], names: Sequence[str], roles: Roles) -> str:
    """Head and case steps joined: the reasoning by cases inside ``<think>``."""
    return "\n".join([CASES_HEAD, *case_steps(statements, names, roles)])

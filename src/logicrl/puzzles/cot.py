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

from collections.abc import Sequence

from logicrl.puzzles.logic import Statement
from logicrl.puzzles.names import Roles
from logicrl.puzzles.render import statement_text
from logicrl.puzzles.solver import SearchEvent, search_events

COT_HEAD = (
    "Let's think step by step, by considering whether each person is lying and if that leads to "
    "contradiction."
)
COT_FOOT = "This leads to a feasible solution."


def search_trace(statements: Sequence[Statement]) -> list[SearchEvent]:
    """The search events up to and including the first solution."""
    trace = []
    for event in search_events(statements):
        trace.append(event)
        if event.kind == "solution":
            break
    return trace


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

"""cot.py: the template reasoning is a true, complete account of a depth-first search.

Each ``cot_repeat_steps`` sentence is parsed with regexes; a DFS stack is replayed from the text alone
(no engine code); every "X cannot be R because Y said S" is re-checked by brute force over the
people not yet assumed (S really is decided against Y's role), and the assumptions standing at the end
spell out the record's solution.

Run: .venv/bin/python -m pytest tests/puzzles/test_cot.py -q
"""

from __future__ import annotations

import json
import re

from brute_force import check_dfs, decided_value, make_records, parse_statement

from logicrl.puzzles.cot import COT_FOOT, COT_HEAD, cot_steps, cot_text, search_trace
from logicrl.puzzles.logic import statements_from_json
from logicrl.puzzles.names import Roles

ROLE = r"(?:a|an) ([a-z]+)"
ASSUME = re.compile(rf"Assume ([A-Z][a-z]+) is {ROLE}\.")
OTHER = re.compile(rf"([A-Z][a-z]+) cannot be {ROLE}, because ([A-Z][a-z]+), {ROLE}, said that (.+), "
                   r"which would then be (true|false)\.")
OWN = re.compile(rf"([A-Z][a-z]+) cannot be {ROLE}, because their own claim that (.+) "
                 r"would then be (true|false)\.")
BACK = re.compile(r"We have exhausted all possibilities for ([A-Z][a-z]+), so let us go back and reconsider "
                  r"([A-Z][a-z]+)\.")


def replay(record: dict) -> list[tuple[int, bool]]:
    """Check every step of the record's reasoning; return the assumptions standing at the end."""
    names, roles = record["names"], record["knight_knave"]
    statements = json.loads(record["statements"])
    n = len(names)

    def person(name: str) -> int:
        assert name in names, f"{name!r} is not in the puzzle"
        return names.index(name)

    def role(word: str) -> bool:
        assert word in (roles["knight"], roles["knave"]), word
        return word == roles["knight"]

    steps: list[tuple[str, int, bool | None]] = []
    stack: list[tuple[int, bool]] = []  # assumptions standing (people are assumed in index order)
    for step in record["cot_repeat_steps"]:
        capitalised = set(re.findall(r"\b[A-Z][a-z]*\b", step)) - {"Assume", "We"}
        assert capitalised <= set(names), step
        if m := ASSUME.fullmatch(step):
            who = person(m[1])
            steps.append(("assume", who, role(m[2])))
            stack = stack[:who] + [(who, role(m[2]))]
        elif m := BACK.fullmatch(step):
            who, back_to = person(m[1]), person(m[2])
            assert back_to == who - 1, step
            steps.append(("backtrack", who, None))
            stack = stack[:who]
        else:
            if m := OTHER.fullmatch(step):
                who, who_role, speaker, said_role, claim, verdict = m.groups()
            else:
                m = OWN.fullmatch(step)
                assert m, f"unparseable step: {step!r}"
                who, who_role, claim, verdict = m.groups()
                speaker, said_role = who, who_role
            who, speaker = person(who), person(speaker)
            steps.append(("contradiction", who, role(who_role)))
            stack = stack[:who]
            partial = dict(stack) | {who: role(who_role)}
            assert partial.get(speaker) == role(said_role), step  # the speaker's role is the assumed one
            tree = parse_statement(claim, names, roles["knight"], roles["knave"])
            assert tree == statements[speaker], step
            value = decided_value(tree, partial, n)
            assert value is not None and value != partial[speaker], f"not a contradiction: {step!r}"
            assert verdict == ("true" if value else "false"), step
    standing, _ = check_dfs(steps)  # strict DFS order: nothing skipped, nothing out of turn
    assert standing == stack
    return stack


def test_reasoning_replays_to_the_solution(small_corpus: list[dict]) -> None:
    kinds = {"assume": 0, "other": 0, "own": 0, "back": 0}
    for record in small_corpus:
        assert record["cot_head"] == COT_HEAD and record["cot_foot"] == COT_FOOT
        stack = replay(record)
        assert sorted(p for p, _ in stack) == list(range(record["n_people"]))
        assert tuple(dict(stack)[i] for i in range(record["n_people"])) == tuple(record["solution"])
        for step in record["cot_repeat_steps"]:
            for kind, rx in (("assume", ASSUME), ("other", OTHER), ("own", OWN), ("back", BACK)):
                kinds[kind] += bool(rx.fullmatch(step))
    assert min(kinds.values()) > 50, kinds  # every kind of step is exercised


def test_reasoning_at_ten_to_twelve_people(corpus: list[dict]) -> None:
    for record in [r for r in corpus if 10 <= r["n_people"] <= 12][::10]:
        stack = replay(record)
        assert tuple(dict(stack)[i] for i in range(record["n_people"])) == tuple(record["solution"])


def test_steps_follow_the_search_trace() -> None:
    """One sentence per assume/contradiction/backtrack event, stopping at the first solution."""
    for record in make_records(5, 3, 3, 40, seed=3, roles="random"):
        statements = statements_from_json(json.loads(record["statements"]))
        trace = search_trace(statements)
        assert trace[-1].kind == "solution" and sum(e.kind == "solution" for e in trace) == 1
        assert trace[-1].assignment == tuple(record["solution"])
        assert len(record["cot_repeat_steps"]) == len(trace) - 1
        for event, step in zip(trace, record["cot_repeat_steps"]):
            expected = {"assume": "Assume ", "backtrack": "We have exhausted"}.get(event.kind, "cannot be")
            assert expected in step


def test_two_person_example_by_hand() -> None:
    """Zoey: "Oliver is a knave"; Oliver: "Zoey is a knave and Oliver is a knave" (Oliver lies)."""
    statements = statements_from_json([["lying", 1], ["and", ["lying", 0], ["lying", 1]]])
    steps = cot_steps(statements, ["Zoey", "Oliver"], Roles())
    assert steps == [
        "Assume Zoey is a knight.",
        "Oliver cannot be a knight, because Zoey, a knight, said that Oliver is a knave, "
        "which would then be false.",
        "Assume Oliver is a knave.",
    ]
    record = {"cot_head": COT_HEAD, "cot_repeat_steps": steps, "cot_foot": COT_FOOT}
    assert cot_text(record) == " ".join([COT_HEAD, *steps, COT_FOOT])


def test_own_claim_by_hand() -> None:
    """Ann: "I am a fool and Bob is a sage"; Bob: "Ann is a sage". Both are fools."""
    statements = statements_from_json([["and", ["lying", 0], ["telling-truth", 1]], ["telling-truth", 0]])
    roles = Roles("sage", "fool")
    steps = cot_steps(statements, ["Ann", "Bob"], roles)
    assert steps[0] == (
        "Ann cannot be a sage, because their own claim that Ann is a fool and Bob is a sage "
        "would then be false."
    )
    record = {"names": ["Ann", "Bob"], "knight_knave": roles.to_record(),
              "statements": json.dumps([s.to_json() for s in statements]), "cot_repeat_steps": steps}
    assert dict(replay(record)) == {0: False, 1: False}

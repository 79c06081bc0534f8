"""Small fixtures in the public K&K release's format, written by the tests themselves (no public file is
copied or downloaded): the public generator's text for depth-2 statements, ``statements`` as a Python tuple
literal, no ``id``, the public folder names ``{split}/{kind}/people{N}_num{M}.jsonl``.

The text is rendered here independently of logicrl's renderer, from the public format's rules: a quoted
statement is not capitalised and its full stop sits outside the quotes (except in ``said, "…."``), an
implication reads "If X then Y", two names are listed "A, and B", and the answer text is comma-separated.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

from brute_force import brute_force_solutions

PUBLIC_TEMPLATES = [
    "{name} said that {content}.",
    "{name} told you that {content}.",
    '{name} said, "{content}."',
    '{name} stated, "{content}".',
    'According to {name}, "{content}".',
    'In {name}\'s words: "{content}".',
    '{name} remarked, "{content}".',
    '"{content}," {name} declared.',
    '{name} was heard saying, "{content}".',
    "{name} expressed that {content}.",
    '"{content}" - {name}.',
    'As {name} put it, "{content}".',
    '{name} asserted: "{content}".',
    '"{content}," {name} mentioned.',
    '{name} commented, "{content}".',
    'In a statement by {name}: "{content}".',
    '{name} noted, "{content}".',
    '"{content}," {name} claimed.',
]


def _article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _claim(node: tuple, names: Sequence[str], roles: tuple[str, str], negated: bool = False) -> str:
    kind, person = node
    role = roles[0] if kind == "telling-truth" else roles[1]
    return f"{names[person]} is {'not ' if negated else ''}{_article(role)}"


def content(node: tuple, names: Sequence[str], roles: tuple[str, str]) -> str:
    """A depth ≤ 2 statement as the public generator words it."""
    op = node[0]
    if op == "not":
        return _claim(node[1], names, roles, negated=True)
    if op in ("and", "or"):
        return f" {op} ".join(_claim(child, names, roles) for child in node[1:])
    if op == "->":
        return f"If {_claim(node[1], names, roles)} then {_claim(node[2], names, roles)}"
    if op == "<=>":
        return f"{_claim(node[1], names, roles)} if and only if {_claim(node[2], names, roles)}"
    return _claim(node, names, roles)


def sentence(statements: tuple, speaker: int, names: Sequence[str], roles: tuple[str, str],
             template: int) -> str:
    return PUBLIC_TEMPLATES[template].format(name=names[speaker],
                                             content=content(statements[speaker], names, roles))


def public_record(statements: tuple, names: Sequence[str], templates: Sequence[int], index: int,
                  roles: tuple[str, str] = ("knight", "knave"), order: Sequence[int] | None = None) -> dict:
    """One public-format record (its unique solution found by the brute force)."""
    (solution,) = brute_force_solutions(json.loads(json.dumps(statements)))
    knight, knave = roles
    n = len(names)
    intro = (f"A very special island is inhabited only by {knight}s and {knave}s. {knight.capitalize()}s "
             f"always tell the truth, and {knave}s always lie. You meet {n} inhabitants: "
             + ", ".join(names[:-1]) + ", and " + names[-1] + ".")
    said = [sentence(statements, i, names, roles, templates[i]) for i in (order or range(n))]
    question = f"So who is {_article(knight)} and who is {_article(knave)}?"
    claims = [f"{name} is {_article(knight if k else knave)}" for name, k in zip(names, solution)]
    return {
        "quiz": " ".join([intro, *said, question]),
        "names": list(names),
        "knight_knave": {"knight": knight, "knave": knave, "a_knight": _article(knight),
                         "a_knave": _article(knave), "Knight": knight.capitalize(), "Knave": knave.capitalize()},
        "solution": list(solution),
        "solution_text": ", ".join(claims[:-1]) + ", and " + claims[-1] + ".",
        "solution_text_format": "\n".join(f"({i}) {c}" for i, c in enumerate(claims, start=1)),
        "cot_head": "Let's think step by step, by considering whether each person is lying and if that leads "
                    "to contradiction.",
        "cot_repeat_steps": ["(placeholder step)"],
        "cot_foot": "This leads to a feasible solution.",
        "statements": repr(statements),
        "index": index,
    }


def random_records(statement_sets: Sequence[tuple], seed: int = 0, start: int = 0) -> list[dict]:
    """Public-format records of the given statement sets: random names and templates, indices from
    ``start`` (the public generator numbers test first, then train)."""
    rng = random.Random(seed)
    pool = ["Zoey", "Oliver", "Ethan", "Aurora", "Samuel", "Grace", "Henry", "Mia", "Lucas"]
    records = []
    for i, statements in enumerate(statement_sets):
        n = len(statements)
        records.append(public_record(statements, rng.sample(pool, n), [rng.randrange(18) for _ in range(n)],
                                     start + i))
    return records


def write_public(root: Path, split: str, kind: str, n_people: int, records: Sequence[dict],
                 num: int | None = None) -> Path:
    """``root/{split}/{kind}/people{N}_num{M}.jsonl`` (M: the clean file's count, as the release names
    twin files after their originals' file)."""
    path = root / split / kind / f"people{n_people}_num{len(records) if num is None else num}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def tuples(trees: Sequence) -> tuple:
    """JSON statement trees (lists) -> the public tuple form."""
    def walk(node):
        return tuple(walk(x) for x in node) if isinstance(node, list) else node
    return tuple(walk(t) for t in trees)

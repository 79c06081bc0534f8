"""Puzzle text in the public K&K form, and the answer texts.

Statement grammar (what the round-trip test parses back into the tree):

* ``Name is a knight`` / ``Name is a knave``                         leaves
* ``Name is not a knight`` / ``Name is not a knave``                 ``not`` of a leaf
* ``it is not the case that (X)``                                    ``not`` of a compound
* ``X and Y and Z`` / ``X or Y``                                     and / or
* ``if X then Y``                                                    ->
* ``X if and only if Y``                                             <=>

Operands that are compound (anything but a leaf or a negated leaf) are wrapped in parentheses,
so every text has exactly one reading. Inside direct quotes the first letter is capitalised.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from logicrl.puzzles.logic import Op, Statement
from logicrl.puzzles.names import Roles

# Phrasings of "Name says X" from the public K&K generator; "{content}" is the statement text.
SPEECH_TEMPLATES: tuple[str, ...] = (
    "{name} said that {content}.",
    "{name} told you that {content}.",
    '{name} said, "{Content}."',
    '{name} stated, "{Content}."',
    'According to {name}, "{Content}."',
    'In {name}\'s words: "{Content}."',
    '{name} remarked, "{Content}."',
    '"{Content}," {name} declared.',
    '{name} was heard saying, "{Content}."',
    "{name} expressed that {content}.",
    '"{Content}" - {name}.',
    'As {name} put it, "{Content}."',
    '{name} asserted: "{Content}."',
    '"{Content}," {name} mentioned.',
    '{name} commented, "{Content}."',
    'In a statement by {name}: "{Content}."',
    '{name} noted, "{Content}."',
    '"{Content}," {name} claimed.',
)


def is_simple(stmt: Statement) -> bool:
    """Leaves and negated leaves read as one clause and need no parentheses."""
    return stmt.op.is_leaf or (stmt.op is Op.NOT and stmt.children[0].op.is_leaf)


def statement_text(stmt: Statement, names: Sequence[str], roles: Roles) -> str:
    """The English reading of a statement tree (see the module docstring for the grammar)."""
    op = stmt.op
    if op.is_leaf:
        return f"{names[stmt.person]} is {roles.with_article(op is Op.KNIGHT)}"
    if op is Op.NOT and stmt.children[0].op.is_leaf:
        leaf = stmt.children[0]
        return f"{names[leaf.person]} is not {roles.with_article(leaf.op is Op.KNIGHT)}"
    parts = [operand_text(child, names, roles) for child in stmt.children]
    if op is Op.NOT:
        return f"it is not the case that {parts[0]}"
    if op is Op.AND:
        return " and ".join(parts)
    if op is Op.OR:
        return " or ".join(parts)
    if op is Op.IMPLIES:
        return f"if {parts[0]} then {parts[1]}"
    return f"{parts[0]} if and only if {parts[1]}"


def operand_text(stmt: Statement, names: Sequence[str], roles: Roles) -> str:
    text = statement_text(stmt, names, roles)
    return text if is_simple(stmt) else f"({text})"


def list_names(names: Sequence[str]) -> str:
    """"Zoey and Oliver", "Zoey, Oliver, and Ethan"."""
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return ", ".join(names[:-1]) + ", and " + names[-1]


def choose_templates(rng: random.Random, n_people: int) -> list[int]:
    """One speech template per speaker (indices into SPEECH_TEMPLATES)."""
    return [rng.randrange(len(SPEECH_TEMPLATES)) for _ in range(n_people)]


def quiz_text(
    statements: Sequence[Statement],
    names: Sequence[str],
    roles: Roles,
    templates: Sequence[int],
    order: Sequence[int] | None = None,
) -> str:
    """The full puzzle text. ``order`` lists speakers in the order their statements are told."""
    intro = (
        f"A very special island is inhabited only by {roles.plural(True)} and {roles.plural(False)}. "
        f"{roles.plural(True).capitalize()} always tell the truth, and {roles.plural(False)} always lie. "
        f"You meet {len(names)} inhabitants: {list_names(names)}."
    )
    said = []
    for speaker in order if order is not None else range(len(statements)):
        content = statement_text(statements[speaker], names, roles)
        template = SPEECH_TEMPLATES[templates[speaker]]
        said.append(template.format(name=names[speaker], content=content, Content=capitalize(content)))
    question = f"So who is {roles.with_article(True)} and who is {roles.with_article(False)}?"
    return " ".join([intro, *said, question])


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def solution_text(solution: Sequence[bool], names: Sequence[str], roles: Roles) -> str:
    """"Zoey is a knight, Oliver is a knave, and Ethan is a knight." """
    claims = [f"{name} is {roles.with_article(is_knight)}" for name, is_knight in zip(names, solution)]
    if len(claims) == 2:
        return f"{claims[0]} and {claims[1]}."
    return ", ".join(claims[:-1]) + ", and " + claims[-1] + "."


def solution_text_format(solution: Sequence[bool], names: Sequence[str], roles: Roles) -> str:
    """"(1) Zoey is a knight\\n(2) Oliver is a knave" — the answer form the reward expects."""
    return "\n".join(
        f"({i}) {name} is {roles.with_article(is_knight)}"
        for i, (name, is_knight) in enumerate(zip(names, solution), start=1)
    )

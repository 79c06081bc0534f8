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

Two styles (``STYLES``): ``logicrl`` (the default, above) and ``public``, the exact text of the public K&K
generator (Xie et al. 2024), used to re-render public records word for word (`record.recover_rendering`).
The public text differs in small ways: a quoted statement is not capitalised and its full stop sits outside
the quotes (``Zoey said, "Oliver is a knave".``; one template keeps it inside), an implication always
reads "If X then Y" (capitalised, also mid-sentence), two names are listed as "Zoey, and Oliver", and plurals
only add an "s" ("heros"). The answer texts are the same in both styles: ``solution_text`` is the public
one, with a comma for two people too, so the public evaluator (which splits it on commas) can read it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

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

# The same templates as the public generator writes them (style "public"): the quoted statement is not
# capitalised, and the full stop is outside the quotes except in the third template.
PUBLIC_SPEECH_TEMPLATES: tuple[str, ...] = (
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
)

STYLES = ("logicrl", "public")


def is_simple(stmt: Statement) -> bool:
    """Leaves and negated leaves read as one clause and need no parentheses."""
    return stmt.op.is_leaf or (stmt.op is Op.NOT and stmt.children[0].op.is_leaf)


def statement_text(stmt: Statement, names: Sequence[str], roles: Roles,
                   note: Callable[[Statement], str] | None = None, *, public: bool = False) -> str:
    """The English reading of a statement tree (see the module docstring for the grammar).

    ``note(clause)``, if given, is appended to every simple clause (a leaf or a negated leaf), e.g. its
    truth value under an assumed assignment in template reasoning. ``public``: the public generator's
    wording ("If X then Y", capitalised).
    """
    op = stmt.op
    if is_simple(stmt):
        leaf = stmt if op.is_leaf else stmt.children[0]
        negation = "" if op.is_leaf else "not "
        text = f"{names[leaf.person]} is {negation}{roles.with_article(leaf.op is Op.KNIGHT)}"
        return text + note(stmt) if note else text
    parts = [operand_text(child, names, roles, note, public=public) for child in stmt.children]
    if op is Op.NOT:
        return f"it is not the case that {parts[0]}"
    if op is Op.AND:
        return " and ".join(parts)
    if op is Op.OR:
        return " or ".join(parts)
    if op is Op.IMPLIES:
        return f"{'If' if public else 'if'} {parts[0]} then {parts[1]}"
    return f"{parts[0]} if and only if {parts[1]}"


def operand_text(stmt: Statement, names: Sequence[str], roles: Roles,
                 note: Callable[[Statement], str] | None = None, *, public: bool = False) -> str:
    text = statement_text(stmt, names, roles, note, public=public)
    return text if is_simple(stmt) else f"({text})"


def list_names(names: Sequence[str], *, public: bool = False) -> str:
    """"Zoey and Oliver", "Zoey, Oliver, and Ethan" (``public``: "Zoey, and Oliver" for two)."""
    if len(names) == 2 and not public:
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
    style: str = "logicrl",
) -> str:
    """The full puzzle text. ``order`` lists speakers in the order their statements are told; ``style`` is
    ``logicrl`` or ``public`` (the public generator's exact text, see the module docstring)."""
    if style not in STYLES:
        raise ValueError(f"unknown text style {style!r} (valid: {', '.join(STYLES)})")
    public = style == "public"
    knights, knaves = (role_plural(roles, k, public) for k in (True, False))
    intro = (
        f"A very special island is inhabited only by {knights} and {knaves}. "
        f"{knights.capitalize()} always tell the truth, and {knaves} always lie. "
        f"You meet {len(names)} inhabitants: {list_names(names, public=public)}."
    )
    said = []
    speech = PUBLIC_SPEECH_TEMPLATES if public else SPEECH_TEMPLATES
    for speaker in order if order is not None else range(len(statements)):
        content = statement_text(statements[speaker], names, roles, public=public)
        template = speech[templates[speaker]]
        said.append(template.format(name=names[speaker], content=content, Content=capitalize(content)))
    question = f"So who is {roles.with_article(True)} and who is {roles.with_article(False)}?"
    return " ".join([intro, *said, question])


def role_plural(roles: Roles, is_knight: bool, public: bool) -> str:
    """The public generator only adds an "s" ("heros"); logicrl spells irregular plurals ("heroes")."""
    return roles.word(is_knight) + "s" if public else roles.plural(is_knight)


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def solution_text(solution: Sequence[bool], names: Sequence[str], roles: Roles) -> str:
    """"Zoey is a knight, Oliver is a knave, and Ethan is a knight." — the public form, also for two people
    ("Zoey is a knight, and Oliver is a knave."): the public evaluator splits this text on commas."""
    claims = [f"{name} is {roles.with_article(is_knight)}" for name, is_knight in zip(names, solution)]
    return ", ".join(claims[:-1]) + ", and " + claims[-1] + "."


def solution_text_format(solution: Sequence[bool], names: Sequence[str], roles: Roles) -> str:
    """"(1) Zoey is a knight\\n(2) Oliver is a knave" — the answer form the reward expects."""
    return "\n".join(
        f"({i}) {name} is {roles.with_article(is_knight)}"
        for i, (name, is_knight) in enumerate(zip(names, solution), start=1)
    )

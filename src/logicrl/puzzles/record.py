"""The puzzle record: a superset of the public K&K record, and its validation.

Fields (JSONL and parquet alike): ``quiz, names, knight_knave, solution, solution_text,
solution_text_format, cot_head, cot_repeat_steps, cot_foot, statements, index`` (the public K&K
ones) plus ``n_people, depth, width, seed, id, order`` and, in perturbed sets, ``perturbation`` and
``original_id``. ``statements`` is a JSON string of nested lists (one per person, see logic.py);
``seed`` fixes the speech templates, so a record can be re-rendered exactly; ``order`` is the order
in which the statements are told. A record whose text was not made from its seed (a public K&K record, or
a twin of one) also stores ``templates`` (one speech template index per person) and ``style`` (``public``:
the public generator's wording, see render.py); `recover_rendering` finds both from the text.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import numbers
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from logicrl.puzzles.cot import COT_FOOT, COT_HEAD, cot_steps
from logicrl.puzzles.logic import Statement, statements_from_json, statements_to_json
from logicrl.puzzles.names import Roles
from logicrl.puzzles.render import (
    PUBLIC_SPEECH_TEMPLATES,
    SPEECH_TEMPLATES,
    STYLES,
    capitalize,
    choose_templates,
    quiz_text,
    solution_text,
    solution_text_format,
    statement_text,
)
from logicrl.puzzles.sampler import MAX_PEOPLE

REQUIRED_FIELDS = ("quiz", "names", "solution", "solution_text_format", "statements")


def people_of(record: Mapping[str, Any]) -> int:
    """A record's number of people: its ``n_people``, or, where that is absent or null, its number of names."""
    return int(record.get("n_people") or len(record["names"]))


@dataclass(frozen=True)
class Puzzle:
    """Everything a record is rendered from."""

    statements: tuple[Statement, ...]
    solution: tuple[bool, ...]
    names: tuple[str, ...]
    roles: Roles
    seed: int
    order: tuple[int, ...]
    depth: int
    width: int
    perturbation: str | None = None
    original_id: str | None = None
    templates: tuple[int, ...] | None = None  # speech template per person; None: drawn from ``seed``
    style: str = "logicrl"  # text style (render.STYLES)

    @property
    def n_people(self) -> int:
        return len(self.statements)

    @functools.cached_property
    def statements_json(self) -> str:
        return json.dumps(statements_to_json(self.statements), separators=(",", ":"))

    @property
    def id(self) -> str:
        """Stable content id: number of people + hash of the statements (names excluded)."""
        digest = hashlib.sha1(self.statements_json.encode()).hexdigest()[:12]
        base = f"kk{self.n_people}-{digest}"
        return f"{self.original_id}~{self.perturbation}" if self.perturbation else base

    def evolve(self, **changes: Any) -> Puzzle:
        return replace(self, **changes)

    @property
    def quiz(self) -> str:
        """The puzzle text, rendered from the statements, names, roles, templates, order and style."""
        templates = self.templates or choose_templates(random.Random(self.seed), self.n_people)
        return quiz_text(self.statements, self.names, self.roles, templates, self.order, self.style)

    def to_record(self, index: int) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": self.id,
            "index": index,
            "quiz": self.quiz,
            "names": list(self.names),
            "knight_knave": self.roles.to_record(),
            "solution": list(self.solution),
            "solution_text": solution_text(self.solution, self.names, self.roles),
            "solution_text_format": solution_text_format(self.solution, self.names, self.roles),
            "cot_head": COT_HEAD,
            "cot_repeat_steps": cot_steps(self.statements, self.names, self.roles),
            "cot_foot": COT_FOOT,
            "statements": self.statements_json,
            "n_people": self.n_people,
            "depth": self.depth,
            "width": self.width,
            "seed": self.seed,
            "order": list(self.order),
        }
        if self.templates is not None:
            record["templates"] = list(self.templates)
        if self.style != "logicrl":
            record["style"] = self.style
        if self.perturbation:
            record["perturbation"] = self.perturbation
            record["original_id"] = self.original_id
        return record

    @staticmethod
    def from_record(record: dict[str, Any]) -> Puzzle:
        """Rebuild the puzzle of a record; raises ValueError naming the bad field."""
        missing = [f for f in REQUIRED_FIELDS if f not in record]
        if missing:
            raise ValueError(f"missing field(s) {', '.join(missing)} — not a K&K puzzle record")
        for field in ("quiz", "solution_text_format"):  # the prompt, and the answer the reward compares with
            if not isinstance(record[field], str) or not record[field].strip():
                raise ValueError(f"'{field}' must be non-empty text, got {record[field]!r}")
        statements = parse_statements_field(record["statements"])
        n = len(statements)
        names = record["names"]
        if not isinstance(names, list) or len(names) != n or not all(isinstance(x, str) for x in names):
            raise ValueError(f"'names' must be a list of {n} strings (one per statement)")
        if len(set(names)) != n:
            raise ValueError("'names' has duplicates; every person needs a distinct name")
        if n > MAX_PEOPLE:  # the solver's search and the sampler go no further
            raise ValueError(f"a puzzle has at most {MAX_PEOPLE} people, got {n} statements")
        people = record.get("n_people")  # null where parquet stored a missing key (as `people_of` reads it)
        if people is not None and (people != n or isinstance(people, bool)):  # readers group and batch by it
            raise ValueError(f"'n_people' must be {n}, the number of statements and names, got {people!r}")
        solution = record["solution"]
        if not isinstance(solution, list) or len(solution) != n or not all(isinstance(x, bool) for x in solution):
            raise ValueError(f"'solution' must be a list of {n} booleans (true = knight)")
        roles = Roles.from_record(record["knight_knave"]) if record.get("knight_knave") else Roles()
        order = tuple(record.get("order") or range(n))
        if sorted(order) != list(range(n)):
            raise ValueError(f"'order' must be a permutation of 0..{n - 1}, got {list(order)}")
        templates = record.get("templates")
        if templates is not None:
            count = len(SPEECH_TEMPLATES)
            if (not isinstance(templates, list) or len(templates) != n
                    or not all(isinstance(t, int) and 0 <= t < count for t in templates)):
                raise ValueError(f"'templates' must be a list of {n} template indices in 0..{count - 1}")
            templates = tuple(templates)
        style = record.get("style") or "logicrl"
        if style not in STYLES:
            raise ValueError(f"'style' must be one of {', '.join(STYLES)}, got {style!r}")
        depth = _whole(record, "depth", max(s.depth for s in statements))
        width = _whole(record, "width", max(s.width for s in statements))
        if depth < 1:  # the level the puzzle was drawn at: its twins are drawn there too (perturb.py)
            raise ValueError(f"'depth' must be at least 1 (a leaf has depth 1), got {depth}")
        if width < 1:
            raise ValueError(f"'width' must be at least 1 (a leaf has width 1), got {width}")
        return Puzzle(
            statements=statements,
            solution=tuple(solution),
            names=tuple(names),
            roles=roles,
            seed=_whole(record, "seed", 0),
            order=order,
            depth=depth,
            width=width,
            perturbation=record.get("perturbation"),
            original_id=record.get("original_id"),
            templates=templates,
            style=style,
        )


def _whole(record: dict[str, Any], field: str, default: int) -> int:
    """``record[field]`` as an int; ``default`` when it is absent or null (as parquet writes a missing value). A
    JSON number with nothing after the point (``2.0``) is whole; ``1.5``, text and booleans are not."""
    value = record.get(field)
    if value is None:
        return default
    whole = (isinstance(value, numbers.Integral) and not isinstance(value, bool)  # numpy's integers are Integral
             or isinstance(value, float) and value.is_integer())
    if not whole:  # a value error of the record, as every other field's
        raise ValueError(f"'{field}' must be a whole number, got {value!r}")
    return int(value)


def recover_rendering(puzzle: Puzzle, quiz: str) -> Puzzle | None:
    """``puzzle`` set up to render ``quiz`` word for word, or None when no style and templates do.

    A record made by logicrl renders its own text from its ``seed``. A public K&K record has no seed: its
    style, speech template per person and the order in which the statements are told are read from its text
    (each person's sentence is located in ``quiz``), then the whole text is rendered again and compared. So
    a wording-only twin (other names, role words, order) changes only that part of the text.
    """
    if puzzle.quiz == quiz:
        return puzzle
    for style, speech in (("public", PUBLIC_SPEECH_TEMPLATES), ("logicrl", SPEECH_TEMPLATES)):
        found = [_locate(puzzle, speaker, quiz, speech, public=style == "public")
                 for speaker in range(puzzle.n_people)]
        if None in found:
            continue
        order = tuple(sorted(range(puzzle.n_people), key=lambda s: found[s][0]))  # type: ignore[index]
        candidate = puzzle.evolve(templates=tuple(f[1] for f in found), order=order,  # type: ignore[index]
                                  style=style)
        if candidate.quiz == quiz:
            return candidate
    return None


def _locate(puzzle: Puzzle, speaker: int, quiz: str, speech: tuple[str, ...],
            public: bool) -> tuple[int, int] | None:
    """(position in ``quiz``, template index) of the speaker's sentence, or None."""
    content = statement_text(puzzle.statements[speaker], puzzle.names, puzzle.roles, public=public)
    name = puzzle.names[speaker]
    for k, template in enumerate(speech):
        position = quiz.find(" " + template.format(name=name, content=content, Content=capitalize(content)))
        if position >= 0:
            return position, k
    return None


def parse_statements_field(value: Any) -> tuple[Statement, ...]:
    """Statements from a record: our JSON string, a decoded list, or the public K&K Python repr."""
    try:
        return statements_from_json(decode_statements_field(value))
    except RecursionError:
        raise ValueError("'statements' nests too deeply") from None


def decode_statements_field(value: Any) -> Any:
    """The nested lists of a record's ``statements`` (not validated): our JSON string, a decoded list, or the
    public K&K Python repr, which is read with ``ast.literal_eval`` (literals only, never code)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("[") else ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            raise ValueError(f"'statements' is neither JSON nor a K&K tuple literal ({exc})") from None
    return _tuples_to_lists(value)


def _tuples_to_lists(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_tuples_to_lists(v) for v in value]
    return value

"""Names and role words used in puzzle text.

COMMON_NAMES is the list of the public K&K data (Xie et al. 2024); UNCOMMON_NAMES serves the
"uncommon names" perturbation of the memorization study. ROLE_PAIRS are the K&K role vocabularies
(first word = truth-teller). All names are single capitalised words and no name is a role word, so
answers stay parseable as "Name is a role".
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

COMMON_NAMES: tuple[str, ...] = (
    "Emma", "Liam", "Olivia", "Noah", "Ava", "Ethan", "Sophia", "Mason", "Isabella", "William",
    "Mia", "James", "Charlotte", "Benjamin", "Amelia", "Lucas", "Harper", "Henry", "Evelyn",
    "Alexander", "Abigail", "Michael", "Emily", "Daniel", "Elizabeth", "Jacob", "Sofia", "Logan",
    "Avery", "Jackson", "Ella", "Sebastian", "Scarlett", "Jack", "Grace", "Aiden", "Chloe", "Owen",
    "Victoria", "Samuel", "Riley", "Matthew", "Aria", "Joseph", "Lily", "Luke", "Aurora", "David",
    "Zoey", "Oliver", "Penelope",
)  # fmt: skip

UNCOMMON_NAMES: tuple[str, ...] = (
    "Zephyrine", "Thaddeus", "Isolde", "Lysander", "Ottoline", "Peregrine", "Seraphina", "Barnaby",
    "Clementine", "Evander", "Philippa", "Ignatius", "Wilhelmina", "Cassius", "Rosalind", "Leopold",
    "Marguerite", "Alaric", "Guinevere", "Ambrose", "Henrietta", "Caspian", "Eulalia", "Florian",
    "Ottilie", "Cornelius", "Araminta", "Benedict", "Perpetua", "Lucius", "Temperance", "Octavius",
    "Ximena", "Bartholomew", "Leocadia", "Evadne", "Hieronymus", "Philomena", "Tiberius", "Zenobia",
    "Anselm", "Drusilla", "Gideon", "Hyacinth", "Orion", "Persephone", "Quentin", "Rowena",
    "Sylvester", "Theodora", "Ulysses",
)  # fmt: skip


@dataclass(frozen=True)
class Roles:
    """The two role words of a puzzle: ``knight`` tells the truth, ``knave`` lies."""

    knight: str = "knight"
    knave: str = "knave"

    def word(self, is_knight: bool) -> str:
        return self.knight if is_knight else self.knave

    def with_article(self, is_knight: bool) -> str:
        """"a knight", "an angel"."""
        return self.articled[is_knight]

    @functools.cached_property
    def articled(self) -> tuple[str, str]:
        """(knave, knight) with their articles, made once: rendering asks for them for every clause."""
        return with_article(self.knave), with_article(self.knight)

    def plural(self, is_knight: bool) -> str:
        word = self.word(is_knight)
        return PLURALS.get(word, word + "s")

    def to_record(self) -> dict[str, str]:
        """The public K&K ``knight_knave`` field."""
        return {
            "knight": self.knight,
            "knave": self.knave,
            "a_knight": self.with_article(True),
            "a_knave": self.with_article(False),
            "Knight": self.knight.capitalize(),
            "Knave": self.knave.capitalize(),
        }

    @staticmethod
    def from_record(value: Any) -> Roles:
        """Role words from a record's ``knight_knave`` field; ValueError when malformed."""
        if not isinstance(value, dict) or not all(isinstance(value.get(k), str) for k in ("knight", "knave")):
            raise ValueError("'knight_knave' must map 'knight' and 'knave' to role words")
        if value["knight"] == value["knave"]:
            raise ValueError(f"'knight_knave' uses {value['knight']!r} for both roles")
        return Roles(knight=value["knight"], knave=value["knave"])

    @staticmethod
    def parse(text: str) -> Roles:
        """"sage/fool" -> Roles("sage", "fool")."""
        parts = text.split("/")
        if len(parts) != 2 or not all(p.isalpha() and p.islower() for p in parts) or parts[0] == parts[1]:
            raise ValueError(f"role words must look like 'knight/knave' (two lowercase words), got {text!r}")
        return Roles(*parts)

    def __str__(self) -> str:
        return f"{self.knight}/{self.knave}"


ROLE_PAIRS: tuple[Roles, ...] = (
    Roles("knight", "knave"),
    Roles("pioneer", "laggard"),
    Roles("saint", "sinner"),
    Roles("hero", "villain"),
    Roles("angel", "devil"),
    Roles("altruist", "egoist"),
    Roles("sage", "fool"),
)

PLURALS = {"hero": "heroes"}
NAME_POOLS = {"common": COMMON_NAMES, "uncommon": UNCOMMON_NAMES}  # the data config's `names`


def role_choices(roles: str) -> tuple[Roles, ...]:
    """The role pairs a puzzle's roles come from, given the data config's `roles`: every pair of `ROLE_PAIRS` for
    ``random`` (one is drawn per puzzle), else the one pair it names (``knight/knave``)."""
    return ROLE_PAIRS if roles == "random" else (Roles.parse(roles),)


def with_article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word

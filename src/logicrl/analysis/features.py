"""Per-response features: thinking words, reflective behaviours and language mixing (pure functions).

- A thinking word or phrase is present when it occurs as a whole word, case-insensitively: "check"
  matches "Check!" but not "checking" or "recheck"; spaces in a phrase match any whitespace run.
- A behaviour is present when any of its regexes matches (case-insensitive).
- Mixing is ``logicrl.reward.language_mixing(text)``, the share of letter units outside the Latin script;
  the response counts as *mixed* when that share exceeds the threshold (default 0: any non-Latin unit).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from logicrl.reward.language import language_mixing


def word_pattern(phrase: str) -> re.Pattern[str]:
    """Whole-word, case-insensitive regex for a literal phrase (lookarounds, so "re-evaluate?" works too)."""
    body = r"\s+".join(re.escape(part) for part in phrase.split())
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class Features:
    """What one response shows: words and behaviours present, its non-Latin share, and whether it is mixed."""

    words: frozenset[str]
    behaviours: frozenset[str]
    mixing: float
    mixed: bool


@dataclass(frozen=True)
class Matchers:
    """Compiled patterns; build once per report with :func:`compile_matchers`."""

    words: dict[str, re.Pattern[str]]
    behaviours: dict[str, re.Pattern[str]]
    mixing_threshold: float

    def __call__(self, text: str) -> Features:
        mixing = language_mixing(text)
        return Features(
            words=frozenset(w for w, p in self.words.items() if p.search(text)),
            behaviours=frozenset(b for b, p in self.behaviours.items() if p.search(text)),
            mixing=mixing,
            mixed=mixing > self.mixing_threshold,
        )


def compile_matchers(words: Iterable[str], behaviours: Mapping[str, Iterable[str]],
                     mixing_threshold: float = 0.0) -> Matchers:
    """One regex per word; one alternation ``(?:p1)|(?:p2)|...`` per behaviour."""
    return Matchers(
        words={w: word_pattern(w) for w in words},
        behaviours={
            name: re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
            for name, patterns in behaviours.items()
        },
        mixing_threshold=mixing_threshold,
    )

"""Language mixing: how much of a response is written in scripts other than a given one (the reward passes
``reward.language_script``, default ``latin``: the K&K prompts are English).

The Logic-RL paper (Xie et al. 2025) reports that responses mixing languages (e.g. Chinese inside an
English answer) score worse; the reward can penalise mixing (off by default). Here the measure is a share of
*units*: a run of letters of one alphabetic script (a word) is one unit, and each CJK character (Han,
kana, Hangul) is one unit, since CJK text has no spaces and one character carries about a word. Digits,
punctuation and symbols are not counted. Everything is regex counting, linear in the text length.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Character ranges per script (Unicode blocks; Latin skips the × and ÷ signs of Latin-1).
SCRIPT_RANGES: dict[str, str] = {
    "latin": "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff",
    "cjk": "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    "\U00020000-\U0002ebef",
    "cyrillic": "\u0400-\u052f",
    "greek": "\u0370-\u03ff\u1f00-\u1fff",
    "arabic": "\u0600-\u06ff\u0750-\u077f",
    "hebrew": "\u0590-\u05ff",
    "devanagari": "\u0900-\u097f",
    "thai": "\u0e00-\u0e7f",
}
SCRIPTS = (*SCRIPT_RANGES, "other")

_UNIT_PATTERNS = {
    name: re.compile(f"[{ranges}]" if name == "cjk" else f"[{ranges}]+") for name, ranges in SCRIPT_RANGES.items()
}
# Letters of any other script, one unit per run.
_OTHER = re.compile("(?:(?![" + "".join(SCRIPT_RANGES.values()) + r"])[^\W\d_])+")


def script_units(text: str) -> dict[str, int]:
    """Count units per script (see the module docstring), including ``"other"`` for unlisted scripts."""
    if text.isascii():  # O(1) in CPython; the common case skips the other scripts' passes
        return {name: len(_UNIT_PATTERNS["latin"].findall(text)) if name == "latin" else 0 for name in SCRIPTS}
    counts = {name: len(pattern.findall(text)) for name, pattern in _UNIT_PATTERNS.items()}
    counts["other"] = len(_OTHER.findall(text))
    return counts


@lru_cache(maxsize=512)
def dominant_script(text: str) -> str | None:
    """The script with the most units in ``text`` (e.g. a prompt), or None when it has no letters."""
    counts = script_units(text)
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] > 0 else None


def language_mixing(text: str, script: str = "latin") -> float:
    """Share of units of ``text`` written outside ``script`` (0.0 for text without letters).

    >>> language_mixing("Zoey is a knight")
    0.0
    >>> language_mixing("Zoey 是骑士")  # one Latin word, three Han characters
    0.75
    """
    if script not in SCRIPTS:
        raise ValueError(f"unknown script {script!r}; choose from {SCRIPTS}")
    if text.isascii() and script == "latin":  # every letter is Latin: skip the counting
        return 0.0
    counts = script_units(text)
    total = sum(counts.values())
    return 0.0 if total == 0 else (total - counts[script]) / total


def language_penalty(text: str, weight: float, script: str = "latin") -> float:
    """The non-negative amount to subtract from the reward: ``weight × language_mixing(text, script)``."""
    return 0.0 if weight == 0 else weight * language_mixing(text, script)

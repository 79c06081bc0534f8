"""`ReportConfig`: what ``logicrl report`` measures in a run directory, each field documented once.

The default thinking words are the Logic-RL paper's (Xie et al. 2025, §4, "thinking" tokens); the
behaviour patterns are ours (docs/report.md lists them). Words are literal phrases matched on word
boundaries, case-insensitively; behaviour patterns are regular expressions (never executed as code).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from logicrl.config import StrictModel

THINKING_WORDS: tuple[str, ...] = (
    "wait", "verify", "yet", "re-evaluate", "reevaluate", "recheck", "check", "think again",
)

# One entry per reflective behaviour: regexes (case-insensitive), any match marks the response.
BEHAVIOUR_PATTERNS: dict[str, tuple[str, ...]] = {
    "self-reflection": (
        r"\bwait\b", r"\bhmm+\b", r"\bon second thought", r"\bre-?(?:consider|think|evaluate|examine)",
        r"\blet me think again\b", r"\bi (?:made|make) a mistake\b",
        r"\bthat(?:'s| is) (?:wrong|incorrect)\b",
        r"\blooking back\b",
    ),
    "verification": (
        r"\bverif(?:y|ies|ied|ying|ication)\b", r"\bdouble[- ]check", r"\bre-?check",
        r"\bcheck (?:if|whether|that)\b",
        r"\blet(?:'s| us| me) check\b", r"\bconfirm(?:s|ed|ing)?\b", r"\bsanity check\b",
    ),
    "exploring alternatives": (
        r"\balternatively\b", r"\banother (?:possibility|option|case|approach|way)\b", r"\bwhat if\b",
        r"\bon the other hand\b", r"\b(?:the )?other case\b", r"\bsuppose instead\b",
        r"\blet(?:'s| us| me) try\b", r"\bcase 2\b",
    ),
    "summary": (
        r"\bin summary\b", r"\bto summari[sz]e\b", r"\bsummari[sz]ing\b", r"\bin conclusion\b",
        r"\bto conclude\b", r"\bputting (?:it|this|everything) (?:all )?together\b", r"\boverall\b",
        r"\bthe final answer\b",
    ),
}


class ReportConfig(StrictModel):
    """Options of one report; ``logicrl report --config x.yaml key=value`` sets them."""

    source: Literal["rollouts", "val"] = Field(
        "rollouts", description="Responses to analyse: training rollouts/ or validation val/.")
    bin: int | None = Field(
        None, ge=1, description="Pool this many consecutive steps into one point (default: ≤ 200 points).")
    steps_every: int = Field(1, ge=1, description="Read only every k-th response file (long runs).")
    words: list[str] = Field(list(THINKING_WORDS), description="Thinking words/phrases (word boundaries).")
    behaviours: dict[str, list[str]] = Field(
        {name: list(p) for name, p in BEHAVIOUR_PATTERNS.items()},
        description="Reflective behaviour -> regexes (case-insensitive).")
    mixing_threshold: float = Field(
        0.0, ge=0.0, lt=1.0, description="A response is mixed when its non-Latin unit share exceeds this.")
    aha_window: int = Field(3, ge=1, description="w: bins averaged on each side of a candidate 'aha' step.")
    min_rise: float = Field(0.1, ge=0.0, le=1.0, description="Smallest total rise of a share that counts.")
    sudden_share: float = Field(
        0.5, gt=0.0, le=1.0, description="A rise is sudden when one window jump holds this much of it.")
    examples: int = Field(6, ge=0, description="Example responses on the page.")
    example_chars: int = Field(3000, ge=100, description="Characters shown per example (the rest is cut).")

    @field_validator("words")
    @classmethod
    def _words(cls, words: list[str]) -> list[str]:
        cleaned = [w.strip() for w in words]
        if not cleaned:
            raise ValueError("give at least one thinking word")
        if not all(cleaned):
            raise ValueError("thinking words must be non-empty")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("thinking words repeat")
        return cleaned

    @model_validator(mode="after")
    def _patterns_compile(self) -> ReportConfig:
        for name, patterns in self.behaviours.items():
            if not patterns:
                raise ValueError(f"behaviour {name!r} has no patterns")
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"behaviour {name!r}: bad regex {pattern!r} ({exc})") from None
        return self


class CompareConfig(StrictModel):
    """Options of ``logicrl compare RUN…``; ``--config x.yaml key=value`` sets them."""

    smooth: int | None = Field(
        None, ge=1, description="Trailing moving-average window in points (default: the report's rule).")
    ignore: list[str] = Field(
        ["out_dir"], description="Config keys (and the keys under them) left out of the config diff.")

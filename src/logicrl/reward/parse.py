"""Parsing for the reward: the think/answer tag structure, the think-block checks, and the answer claims.

Everything here is a pure function of strings, linear in the input length (``str.count``/``str.find`` and
anchored regexes without ambiguous nested quantifiers), and never raises on a response. Only a malformed *expected*
answer (a data error) raises ``ValueError``.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from logicrl.puzzles.names import ROLE_PAIRS

THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE = "<think>", "</think>", "<answer>", "</answer>"
TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)

# End-of-text markers a decoder may leave after the answer when special tokens are not skipped.
END_OF_TEXT_TOKENS = (
    "<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>", "<eos>", "<|end_of_text|>", "<end_of_turn>",
    "<|end▁of▁sentence|>", "<pad>",
)
_TRAILER = re.compile("(?:\\s|" + "|".join(re.escape(t) for t in END_OF_TEXT_TOKENS) + ")*")

# Role pairs (truthful, lying) of the puzzle engine, as plain tuples.
STANDARD_ROLE_PAIRS = tuple((roles.knight, roles.knave) for roles in ROLE_PAIRS)

# Text that stands in for reasoning: the Logic-RL system prompt's own example ("<think> reasoning process
# here </think>") and its usual variants. A think block whose words all come from these phrases fails.
PLACEHOLDER_PHRASES = (
    "reasoning process here", "thinking process here", "thought process here", "your reasoning here",
    "your reasoning", "your thinking", "reasoning here", "thinking here", "thoughts here", "answer here",
    "insert reasoning here", "let's think step by step", "think step by step", "step by step",
    "reasoning process", "thinking process", "reasoning", "thinking", "thoughts", "think", "todo", "tbd",
    "placeholder", "lorem ipsum", "etc",
)


class FormatError(StrEnum):
    """Why a response fails the strict format; the value is the ``format_reason`` string."""

    MISSING_THINK_OPEN = "missing <think>"
    MISSING_THINK_CLOSE = "missing </think>"
    MISSING_ANSWER_OPEN = "missing <answer>"
    MISSING_ANSWER_CLOSE = "missing </answer>"
    REPEATED_THINK_OPEN = "repeated <think>"
    REPEATED_THINK_CLOSE = "repeated </think>"
    REPEATED_ANSWER_OPEN = "repeated <answer>"
    REPEATED_ANSWER_CLOSE = "repeated </answer>"
    TAG_ORDER = "tags out of order"
    TEXT_BEFORE_THINK = "text before <think>"
    TEXT_BETWEEN_BLOCKS = "text between </think> and <answer>"
    TEXT_AFTER_ANSWER = "text after </answer>"
    EMPTY_THINK = "empty think block"
    PLACEHOLDER_THINK = "placeholder think block"
    SHORT_THINK = "think block too short"
    COPIED_QUESTION = "think block copies the question"


_MISSING = dict(zip(TAGS, list(FormatError)[0:4]))
_REPEATED = dict(zip(TAGS, list(FormatError)[4:8]))


# ---------------------------------------------------------------------------------------------------------
# Tag structure
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blocks:
    """The think and answer blocks of a response, or the first reason the structure is not exact."""

    think: str | None
    answer: str | None
    error: FormatError | None


def tag_error(text: str) -> FormatError | None:
    """Check the tag rule shared by both modes: each of the four tags exactly once, in order."""
    for tag in TAGS:
        count = text.count(tag)
        if count != 1:
            return _MISSING[tag] if count == 0 else _REPEATED[tag]
    positions = [text.find(tag) for tag in TAGS]
    if positions != sorted(positions):
        return FormatError.TAG_ORDER
    return None


def split_blocks(text: str) -> Blocks:
    """Split ``text`` into exactly ``<think>T</think><answer>A</answer>``.

    Allowed around the blocks: whitespace before ``<think>`` and between the blocks; whitespace and
    end-of-text tokens (``END_OF_TEXT_TOKENS``) after ``</answer>``. Anything else is a format error.
    """
    error = tag_error(text)
    if error is not None:
        return Blocks(None, None, error)
    p_think, p_think_end, p_answer, p_answer_end = (text.find(tag) for tag in TAGS)
    if text[:p_think].strip():
        return Blocks(None, None, FormatError.TEXT_BEFORE_THINK)
    if text[p_think_end + len(THINK_CLOSE) : p_answer].strip():
        return Blocks(None, None, FormatError.TEXT_BETWEEN_BLOCKS)
    tail_start = p_answer_end + len(ANSWER_CLOSE)
    if _TRAILER.match(text, tail_start).end() != len(text):
        return Blocks(None, None, FormatError.TEXT_AFTER_ANSWER)
    think = text[p_think + len(THINK_OPEN) : p_think_end]
    answer = text[p_answer + len(ANSWER_OPEN) : p_answer_end]
    return Blocks(think, answer, None)


def last_answer_block(text: str) -> str | None:
    """Content of the last ``<answer>…</answer>`` pair, as ``re.finditer(r"<answer>(.*?)</answer>", DOTALL)``
    would find it, but in linear time (that regex is quadratic on many unclosed ``<answer>`` tags)."""
    last, pos = None, 0
    while True:
        start = text.find(ANSWER_OPEN, pos)
        if start < 0:
            return last
        end = text.find(ANSWER_CLOSE, start + len(ANSWER_OPEN))
        if end < 0:
            return last
        last, pos = text[start + len(ANSWER_OPEN) : end], end + len(ANSWER_CLOSE)


def message_text(message: Mapping[str, Any], reasoning_fields: Iterable[str]) -> str:
    """The text of a chat message whose think block a reasoning parser cut out of the content into one of
    ``reasoning_fields`` (tags removed): ``<think>reasoning</think>content``; the content alone when none holds
    any (the whitespace around the tags, which the parser drops, is not restored)."""
    content = str(message.get("content") or "")
    reasoning = next((message[field] for field in reasoning_fields if message.get(field)), None)
    return content if reasoning is None else f"{THINK_OPEN}{reasoning}{THINK_CLOSE}{content}"


def starts_inside_think(response: str) -> bool:
    """Guess whether a decoded response continues a prompt pre-filled with ``<think>``.

    True unless the response opens its own think block (first non-space text is ``<think>``). Used by the
    adapters when the prompt is not at hand; a response that repeats the pre-filled tag is thereby
    forgiven that one redundant tag, and any other placement of ``<think>`` still fails the format.
    """
    return not response.lstrip().startswith(THINK_OPEN)


# ---------------------------------------------------------------------------------------------------------
# Think-block checks
# ---------------------------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")
_PLACEHOLDER_WORDS = sorted({w for phrase in PLACEHOLDER_PHRASES for w in re.findall(r"[^\W_]+", phrase)})
# The first word that is not a placeholder word; real reasoning has one at once, so this is O(1) in practice.
_REAL_WORD = re.compile(r"\b(?!(?:" + "|".join(_PLACEHOLDER_WORDS) + r")\b)[^\W_]+", re.IGNORECASE)


def is_placeholder(think: str) -> bool:
    """True when every word of the think block comes from ``PLACEHOLDER_PHRASES`` (or it has no words)."""
    return _REAL_WORD.search(think) is None


_PUNCTUATION_TO_SPACE = str.maketrans({c: " " for c in string.punctuation})


def _copy_words(text: str) -> list[str]:
    """Lower-cased words split on whitespace and ASCII punctuation (4× faster than a regex)."""
    return text.lower().translate(_PUNCTUATION_TO_SPACE).split()


@lru_cache(maxsize=512)
def _shingles(text: str, k: int) -> frozenset[tuple[str, ...]]:
    words = _copy_words(text)
    return frozenset(zip(*(words[j:] for j in range(k))))


def question_copy_share(think: str, question: str, k: int = 5) -> float:
    """Share of the think block's words covered by a ``k``-word run that also occurs in the question.

    0.0 when the think block has fewer than ``k`` words. Linear: one pass over the think words with a set
    of the question's ``k``-word shingles (cached per question).
    """
    words = _copy_words(think)
    if len(words) < k:
        return 0.0
    question_shingles = _shingles(question, k)
    shingles = zip(*(words[j:] for j in range(k)))  # the k-word runs, built in C
    hits = [i for i, shingle in enumerate(shingles) if shingle in question_shingles]
    covered, covered_until = 0, 0  # words [.., covered_until) are already counted
    for i in hits:
        covered += i + k - max(i, covered_until)
        covered_until = i + k
    return covered / len(words)


def think_error(
    think: str, *, question: str | None, min_words: int, max_copy_share: float, shingle_words: int
) -> FormatError | None:
    """Reject a think block that is empty, a placeholder, too short, or mostly a copy of the question."""
    if not think.strip():
        return FormatError.EMPTY_THINK
    if is_placeholder(think):
        return FormatError.PLACEHOLDER_THINK
    if min_words > 1 and len(_WORD.findall(think)) < min_words:
        return FormatError.SHORT_THINK
    if question and question_copy_share(think, question, shingle_words) >= max_copy_share:
        return FormatError.COPIED_QUESTION
    return None


# ---------------------------------------------------------------------------------------------------------
# Answer claims
# ---------------------------------------------------------------------------------------------------------

# One claim: optional numbering or bullet, "<Name> is a/an <role>". Names are letter words, optionally
# joined by an apostrophe or hyphen (O'Neil, Mary-Ann).
_CLAIM = re.compile(
    r"(?:(?:\(\d{1,3}\)|\d{1,3}[.):]|[-*•])[ \t]*)?"
    r"(?P<name>[^\W\d_]+(?:['’-][^\W\d_]+)*)\s+is\s+an?\s+(?P<role>[^\W\d_]+)\b",
    re.IGNORECASE,
)
# Between claims: whitespace, commas, semicolons and full stops, plus at most one "and" (tried only when
# no claim starts there, so a person named "And" still parses).
_SEPARATOR = re.compile(r"[\s,;.]*")
_AND = re.compile(r"and\b[\s,;.]*", re.IGNORECASE)


def _snippet(text: str, pos: int, width: int = 30) -> str:
    piece = text[pos : pos + width]
    return piece + ("…" if len(text) > pos + width else "")


def parse_claims(text: str, max_claims: int | None = None) -> tuple[list[tuple[str, str]], str | None]:
    """Split ``text`` into ``(name, role)`` claims; return them and the reason it failed (None if it did not).

    The text must consist of claims and separators only; any other word ends the parse with a reason.
    Stops early once more than ``max_claims`` claims were read.
    """
    claims: list[tuple[str, str]] = []
    pos, end = _SEPARATOR.match(text).end(), len(text)
    while pos < end:
        match = _CLAIM.match(text, pos)
        if match is None and (joiner := _AND.match(text, pos)) is not None:
            match = _CLAIM.match(text, joiner.end())
        if match is None:
            return claims, f"not a claim: {_snippet(text, pos)!r}"
        claims.append((match["name"], match["role"]))
        if max_claims is not None and len(claims) > max_claims:
            return claims, f"more than {max_claims} claims"
        pos = _SEPARATOR.match(text, match.end()).end()
    return claims, None


@dataclass(frozen=True)
class ExpectedAnswer:
    """The solution of one puzzle: names in order, their role words, and the role words accepted."""

    names: tuple[str, ...]
    truth: tuple[str, ...]
    roles: tuple[str, ...]

    def as_dict(self) -> dict[str, str]:
        """``{name: role}`` in the puzzle's order."""
        return dict(zip(self.names, self.truth))


def role_pair(value: object) -> tuple[str, str] | None:
    """Normalise a role-pair description to ``(truthful, lying)`` lower-case words, or None.

    Accepts a 2-sequence (``("sage", "fool")``) or a K&K record's ``knight_knave`` mapping
    (``{"knight": "sage", "knave": "fool", ...}``).
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        if "knight" not in value or "knave" not in value:
            raise ValueError(f"role mapping needs 'knight' and 'knave' keys, got {sorted(value)}")
        value = (value["knight"], value["knave"])
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError(f"roles must be a pair of words, got {value!r}")
    items = [str(v).strip().lower() for v in value]
    if len(items) != 2 or items[0] == items[1] or not all(items):
        raise ValueError(f"roles must be two different non-empty words, got {value!r}")
    return items[0], items[1]


def _infer_roles(seen: list[str], roles: tuple[str, str] | None) -> tuple[str, ...]:
    if roles is not None:
        unknown = [r for r in seen if r not in roles]
        if unknown:
            raise ValueError(f"expected answer uses {unknown}, not among the roles {roles}")
        return roles
    if len(seen) > 2:
        raise ValueError(f"expected answer uses more than two role words: {seen}")
    for pair in STANDARD_ROLE_PAIRS:
        if set(seen) <= set(pair):
            return pair
    return tuple(seen)  # partner unknown: only the words seen are accepted


def expected_problem(record: Mapping[str, Any]) -> str | None:
    """Why the reward cannot score against ``record``'s expected answer (its ``solution_text_format`` with its
    ``knight_knave`` roles), or None: checked when puzzles are read, not when the first response to one is
    scored, after hours of generation."""
    try:
        parse_expected(str(record.get("solution_text_format", "")), role_pair(record.get("knight_knave")))
    except ValueError as exc:
        return f"solution_text_format: {exc}"
    return None


@lru_cache(maxsize=4096)
def parse_expected(solution_text_format: str, roles: tuple[str, str] | None = None) -> ExpectedAnswer:
    """Parse a puzzle's ``solution_text_format`` ("(1) Zoey is a knight\\n(2) Oliver is a knave").

    Role words come from ``roles`` when given; otherwise from the answer itself, completed to a standard
    pair when only one word occurs. Raises ``ValueError`` on a malformed expected answer.
    """
    claims, reason = parse_claims(solution_text_format)
    if reason is not None or not claims:
        raise ValueError(f"malformed expected answer ({reason or 'no claims'}): {solution_text_format!r}")
    names = tuple(name for name, _ in claims)
    if len({n.lower() for n in names}) != len(names):
        raise ValueError(f"expected answer names someone twice: {solution_text_format!r}")
    truth = tuple(role.lower() for _, role in claims)
    seen = list(dict.fromkeys(truth))
    return ExpectedAnswer(names, truth, _infer_roles(seen, roles))


@dataclass(frozen=True)
class AnswerVerdict:
    """How an answer block reads against the expected answer."""

    status: str  # "correct" | "wrong" | "unparseable" | "missing"
    assignment: dict[str, str] | None
    reason: str | None
    share_right: float = 0.0  # share of people whose role is right (1.0 when correct, 0.0 unless parsed)


def _name_key(name: str) -> str:
    """A name as answers are matched to the puzzle's: composed (NFC: a decomposed ``Zoë`` is the same name),
    case-folded, the typographic apostrophe as the plain one (``O’Neil`` is ``O'Neil``)."""
    return unicodedata.normalize("NFC", name).casefold().replace("’", "'")


def judge_answer(answer: str | None, expected: ExpectedAnswer) -> AnswerVerdict:
    """Strict answer rule: one claim per person in the puzzle's role words, and nothing else."""
    if answer is None or not answer.strip():
        return AnswerVerdict("missing", None, "no answer block" if answer is None else "empty answer block")
    claims, reason = parse_claims(unicodedata.normalize("NFC", answer), max_claims=len(expected.names))
    if reason is not None:
        return AnswerVerdict("unparseable", None, reason)
    canonical = {_name_key(name): name for name in expected.names}
    assignment: dict[str, str] = {}
    for name, role in claims:
        key, role_word = canonical.get(_name_key(name)), role.lower()
        if key is None:
            return AnswerVerdict("unparseable", None, f"unknown name {name!r}")
        if role_word not in expected.roles:
            return AnswerVerdict("unparseable", None, f"{role!r} is not a role word of this puzzle")
        if key in assignment:
            return AnswerVerdict("unparseable", None, f"{key} is named twice")
        assignment[key] = role_word
    missing = [n for n in expected.names if n not in assignment]
    if missing:
        return AnswerVerdict("unparseable", None, f"no claim for {', '.join(missing)}")
    ordered = {n: assignment[n] for n in expected.names}
    truth = expected.as_dict()
    right = sum(ordered[n] == truth[n] for n in expected.names) / len(expected.names)
    return AnswerVerdict("correct" if right == 1.0 else "wrong", ordered, None, right)

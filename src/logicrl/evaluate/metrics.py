"""Accuracy metrics over scored samples: unbiased pass@k, majority vote, and the per-level table.

Pure functions on plain rows (the dicts of `logicrl.evaluate.scoring`); a sample counts as correct only
when ``solved`` (the format right and every role right), as in the paper's evaluation.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

# summary column -> the row field it averages
SUMMARY_COLUMNS = {"acc": "solved", "format_ok": "format_ok", "reward": "reward", "length": "length",
                   "truncated": "truncated"}


def people_level(row: Mapping[str, Any]) -> int:
    """A puzzle row's table column: its number of people."""
    return int(row["n_people"])


def summarize_rows(
    rows: Sequence[Mapping[str, Any]], level: Callable[[Mapping[str, Any]], Hashable] = people_level
) -> dict[Any, dict[str, float]]:
    """Per level (number of people by default, or ``level(row)``): ``n`` samples, ``acc`` (solved share),
    ``format_ok``, ``reward`` (when the rows have one), ``length``, ``truncated`` (share cut at the length
    cap)."""
    groups: dict[Any, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[level(row)].append(row)
    table = {}
    for key in sorted(groups):
        group = groups[key]
        count = len(group)
        entry: dict[str, float] = {"n": count}
        for name, field in SUMMARY_COLUMNS.items():
            if field != "reward" or all("reward" in r for r in group):  # math rows have no reward
                entry[name] = sum(r[field] for r in group) / count
        table[key] = entry
    return table


# A sample's vote for majority voting: a hashable answer, or None for no vote.
Vote = Callable[[Mapping[str, Any]], Hashable | None]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one puzzle with ``c`` correct among ``n`` samples (Chen et al. 2021, eq. 1).

    pass@k = 1 − C(n−c, k) / C(n, k): the chance that a random k-subset of the n samples holds a correct
    one. Computed as the product 1 − ∏_{i=n−c+1}^{n} (1 − k/i), which never forms the (huge)
    binomials; it is 1 when n − c < k.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def default_ks(samples: int) -> list[int]:
    """The k values reported for ``samples`` responses per puzzle: powers of 2 up to it, and itself."""
    return sorted({*(2**i for i in range(samples.bit_length()) if 2**i <= samples), samples})


def _vote_key(assignment: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """An order-free, case-free key of a parsed assignment (person -> role word)."""
    return tuple(sorted((name.lower(), role.lower()) for name, role in assignment.items()))


def assignment_vote(row: Mapping[str, Any]) -> Hashable | None:
    """A puzzle sample's vote: its parsed assignment, if the format is right (a correct answer needs it)."""
    return _vote_key(row["assignment"]) if row.get("format_ok") and row.get("assignment") else None


def majority_vote(samples: Sequence[Mapping[str, Any]], vote: Vote = assignment_vote) -> float:
    """Majority-vote correctness of one puzzle's samples, in [0, 1].

    Votes are ``vote(row)`` (default: the parsed assignments of the samples whose format is right); None is
    no vote. The most frequent vote wins; a tie between t votes is broken uniformly at random, so the score
    is 1/t when the correct one (a vote cast by a ``solved`` sample) is among the tied leaders (the
    expectation, independent of sample order), else 0. No vote at all scores 0.
    """
    votes: Counter[Hashable] = Counter()
    correct: set[Hashable] = set()
    for row in samples:
        key = vote(row)
        if key is not None:
            votes[key] += 1
            if row["solved"]:
                correct.add(key)
    if not votes:
        return 0.0
    top = max(votes.values())
    leaders = [key for key, count in votes.items() if count == top]
    return sum(key in correct for key in leaders) / len(leaders)


def by_puzzle(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Rows grouped by puzzle id, in first-seen order."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[str(row["id"])].append(row)
    return dict(groups)


def accuracy_table(
    rows: Sequence[Mapping[str, Any]], ks: Sequence[int] = (), *,
    level: Callable[[Mapping[str, Any]], Hashable] = people_level, vote: Vote = assignment_vote,
) -> dict[Any, dict[str, float]]:
    """Per number of people (or ``level(row)``): `summarize_rows`' columns (``n`` samples, ``acc``,
    ``format_ok``, ``reward``, ``length``, ``truncated``) plus ``puzzles``, ``pass@k`` for each k in ``ks``
    (mean of `pass_at_k` over the puzzles with at least k samples only; absent when none has; pass@1 = acc
    when every puzzle has the same number of samples) and,
    with more than one sample per puzzle, ``maj@n`` (mean `majority_vote` with ``vote``, n = the most
    samples any puzzle has)."""
    table = summarize_rows(rows, level)
    levels: dict[Any, list[list[Mapping[str, Any]]]] = defaultdict(list)
    for group in by_puzzle(rows).values():
        levels[level(group[0])].append(group)
    for people, groups in levels.items():
        entry = table[people]
        entry["puzzles"] = len(groups)
        for k in ks:
            usable = [g for g in groups if len(g) >= k]
            if usable:
                scores = [pass_at_k(len(g), sum(r["solved"] for r in g), k) for g in usable]
                entry[f"pass@{k}"] = sum(scores) / len(scores)
        most = max(len(g) for g in groups)
        if most > 1:
            entry[f"maj@{most}"] = sum(majority_vote(g, vote) for g in groups) / len(groups)
    return table


def level_average(table: Mapping[Any, Mapping[str, float]], metric: str) -> float | None:
    """Unweighted mean of ``metric`` over the levels that have it (the paper's "Avg." column)."""
    values = [entry[metric] for entry in table.values() if metric in entry]
    return sum(values) / len(values) if values else None

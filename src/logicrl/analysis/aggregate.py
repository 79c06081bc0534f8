"""Streaming tallies of logged responses per step bin: totals, and per feature "with" vs "without".

A bin pools the responses of ``bin_size`` consecutive steps: bin ``b = (step − first_step) // bin_size``;
its x position on the plots is the middle of the steps it actually holds. For a feature f (a thinking
word, a behaviour, or language mixing) a bin keeps the tally of the responses showing f; the tally of
those without f is ``all − with``. Everything is sums, so memory is O(bins × features), not O(responses).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from logicrl.analysis.features import Features, Matchers
from logicrl.analysis.run import Response


@dataclass
class Tally:
    """Sums over a set of responses: count, reward, solved, format-ok, tokens, truncated."""

    n: int = 0
    reward: float = 0.0
    solved: int = 0
    format_ok: int = 0
    length: int = 0
    truncated: int = 0

    def add(self, r: Response) -> None:
        self.n += 1
        self.reward += r.reward
        self.solved += r.solved
        self.format_ok += r.format_ok
        self.length += r.length
        self.truncated += r.truncated

    def merge(self, other: Tally) -> None:
        for name in ("n", "reward", "solved", "format_ok", "length", "truncated"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def minus(self, other: Tally) -> Tally:
        """The tally of the responses in ``self`` but not in ``other`` (``other`` ⊆ ``self``)."""
        return Tally(*(getattr(self, k) - getattr(other, k)
                       for k in ("n", "reward", "solved", "format_ok", "length", "truncated")))

    def mean(self, name: str) -> float | None:
        """Mean per response of one sum (``"reward"``, ``"solved"`` = accuracy, ...); None if empty."""
        return getattr(self, name) / self.n if self.n else None


@dataclass
class Bin:
    """Everything known about the responses of one step bin."""

    first: int
    last: int
    all: Tally = field(default_factory=Tally)
    solved: Tally = field(default_factory=Tally)  # the solved responses only (their lengths)
    words: dict[str, Tally] = field(default_factory=dict)
    behaviours: dict[str, Tally] = field(default_factory=dict)
    mixed: Tally = field(default_factory=Tally)
    mixing_sum: float = 0.0

    @property
    def x(self) -> float:
        return (self.first + self.last) / 2

    def add(self, r: Response, f: Features) -> None:
        self.first, self.last = min(self.first, r.step), max(self.last, r.step)
        self.all.add(r)
        if r.solved:
            self.solved.add(r)
        for word in f.words:
            self.words.setdefault(word, Tally()).add(r)
        for name in f.behaviours:
            self.behaviours.setdefault(name, Tally()).add(r)
        if f.mixed:
            self.mixed.add(r)
        self.mixing_sum += f.mixing

    def merge(self, other: Bin) -> None:
        self.first, self.last = min(self.first, other.first), max(self.last, other.last)
        self.all.merge(other.all)
        self.solved.merge(other.solved)
        for mine, theirs in ((self.words, other.words), (self.behaviours, other.behaviours)):
            for key, tally in theirs.items():
                mine.setdefault(key, Tally()).merge(tally)
        self.mixed.merge(other.mixed)
        self.mixing_sum += other.mixing_sum

    def share(self, tally: Tally) -> float | None:
        """Share of this bin's responses that ``tally`` counts."""
        return tally.n / self.all.n if self.all.n else None


def bin_size_for(steps: list[int], max_points: int = 200) -> int:
    """Smallest bin size that keeps the number of bins ≤ ``max_points``: ⌈(last − first + 1) / max_points⌉."""
    if not steps:
        return 1
    span = max(steps) - min(steps) + 1
    return max(1, -(-span // max_points))


def aggregate(rows: Iterable[Response], matchers: Matchers, bin_size: int, first_step: int,
              on_row: Callable[[int, Response, Features], None] | None = None) -> list[Bin]:
    """Tally responses into bins, in step order (empty bins are left out); ``on_row(bin, row, features)``
    sees every row on the way (e.g. to pick examples)."""
    bins: dict[int, Bin] = {}
    for r in rows:
        f = matchers(r.response)
        index = (r.step - first_step) // bin_size
        bins.setdefault(index, Bin(first=r.step, last=r.step)).add(r, f)
        if on_row is not None:
            on_row(index, r, f)
    return [bins[i] for i in sorted(bins)]


def total(bins: list[Bin]) -> Bin:
    """All bins pooled into one."""
    pooled = Bin(first=bins[0].first if bins else 0, last=bins[0].last if bins else 0)
    for b in bins:
        pooled.merge(b)
    return pooled

"""A handful of example responses, picked while streaming (constant memory).

Picks, in this order of priority: the highest- and lowest-scoring response of the latest step bin and of
the first step bin, the first response that mixes scripts, and the response showing the most reflective
behaviours (ties: the later one). Ties in score keep the first seen. A response picked twice is shown once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from logicrl.analysis.features import Features
from logicrl.analysis.run import Response


@dataclass(frozen=True)
class Example:
    """A response to show: why it was picked, its row, its features, and its text cut to ``chars``."""

    label: str
    response: Response
    features: Features
    text: str
    cut: bool


class ExamplePicker:
    """Feed every (bin index, response, features); read :meth:`examples` at the end."""

    def __init__(self, chars: int) -> None:
        self.chars = chars
        self.first_bin: int | None = None
        self.last_bin: int | None = None
        self.slots: dict[str, tuple[Response, Features]] = {}

    def _keep(self, slot: str, r: Response, f: Features, better: Callable[[Response, Features], bool]
              ) -> None:
        """Store (r, f) in ``slot`` when the slot is empty or ``better(held response, held features)``."""
        held = self.slots.get(slot)
        if held is None or better(*held):
            self.slots[slot] = (r, f)

    def offer(self, bin_index: int, r: Response, f: Features) -> None:
        if self.first_bin is None:
            self.first_bin = bin_index
        if bin_index != self.last_bin:  # a new latest bin: forget the previous latest picks
            self.last_bin = bin_index
            for slot in ("latest step, highest reward", "latest step, lowest reward"):
                self.slots.pop(slot, None)
        for where in ("first", "latest") if bin_index == self.first_bin else ("latest",):
            self._keep(f"{where} step, highest reward", r, f, lambda held, _: r.reward > held.reward)
            self._keep(f"{where} step, lowest reward", r, f, lambda held, _: r.reward < held.reward)
        if f.mixed:
            self._keep("first response mixing scripts", r, f, lambda *_: False)
        if f.behaviours:
            self._keep("most reflective behaviours", r, f,
                       lambda _, held: len(f.behaviours) >= len(held.behaviours))  # ties: the later

    def examples(self, limit: int) -> list[Example]:
        order = ("latest step, highest reward", "latest step, lowest reward", "first step, highest reward",
                 "first step, lowest reward", "first response mixing scripts", "most reflective behaviours")
        picked: list[Example] = []
        seen: set[int] = set()
        for label in order:
            if label in self.slots and id(self.slots[label][0]) not in seen and len(picked) < limit:
                r, f = self.slots[label]
                seen.add(id(r))
                picked.append(Example(label, r, f, r.response[: self.chars], len(r.response) > self.chars))
        return picked

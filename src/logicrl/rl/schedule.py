"""Which puzzles each RL step sees: a curriculum by number of people, or one shuffled mix.

The order is a pure function of (records, schedule, batch size, epochs, seed), so the data cursor of a
checkpoint is just the step number: a resumed run sees the same next batch. Batches never straddle two
curriculum stages; an incomplete last batch of a stage (or of an epoch) is dropped, as veRL's
dataloader does with ``drop_last``.

* ``curriculum`` (Logic-RL §3): stages ordered by number of people, fewest first; each stage makes
  ``epochs`` passes over its puzzles, shuffled per pass.
* ``mixed``: every pass shuffles all puzzles together.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logicrl.errors import DataError
from logicrl.puzzles.dataset import dataset_files, load_records


def people_of(record: Mapping[str, Any]) -> int:
    return int(record.get("n_people") or len(record["names"]))


def load_puzzles(path: Path, split: str, people: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Records of ``split`` under ``path`` (a dataset dir or a file), restricted to ``people`` if given."""
    records = load_records(dataset_files(Path(path), split))
    if people:
        records = [r for r in records if people_of(r) in set(people)]
        if not records:
            raise DataError(f"{path}: no {split} puzzles with {list(people)} people")
    if not records:
        raise DataError(f"{path}: the {split} split is empty")
    return records


def held_out_split(path: Path) -> str:
    """The split that validation reads under ``path``: ``val`` when the dataset has one, else ``test``.

    A dataset made with ``logicrl data generate --val N`` keeps its test split for the final evaluation only,
    so that choosing checkpoints or settings never looks at the puzzles a result is reported on."""
    path = Path(path)
    return "val" if path.is_dir() and any(path.glob("*ppl/val.*")) else "test"


def validation_subset(records: Sequence[dict[str, Any]], per_people: int) -> list[dict[str, Any]]:
    """The first ``per_people`` records of each number of people (file order: deterministic)."""
    taken: dict[int, int] = {}
    subset = []
    for record in records:
        n = people_of(record)
        if taken.get(n, 0) < per_people:
            taken[n] = taken.get(n, 0) + 1
            subset.append(record)
    return subset


def _shuffled(indices: list[int], seed: int, salt: str) -> list[int]:
    rng = random.Random(f"{seed}:{salt}")
    out = list(indices)
    rng.shuffle(out)
    return out


def _chunks(indices: list[int], size: int) -> list[list[int]]:
    return [indices[i:i + size] for i in range(0, len(indices) - size + 1, size)]


@dataclass(frozen=True)
class PromptSchedule:
    """``batches[step]`` = indices into ``records`` of the puzzles used at that (0-based) step;
    ``stage_starts``: the 1-based step at which each curriculum stage begins (``(1,)`` for a mix)."""

    records: list[dict[str, Any]]
    batches: list[list[int]]
    stage_starts: tuple[int, ...] = (1,)

    @classmethod
    def build(cls, records: list[dict[str, Any]], *, schedule: str, batch_size: int, epochs: int, seed: int,
              steps: int | None = None) -> PromptSchedule:
        """Order the records; with ``steps`` beyond the given epochs, further epochs are added (mixed) or
        the last stage repeats (curriculum)."""
        if schedule not in ("curriculum", "mixed"):
            raise ValueError(f"unknown schedule {schedule!r}; choose curriculum or mixed")
        batches: list[list[int]] = []
        starts: dict[int, int] = {}
        if schedule == "mixed":
            everything = list(range(len(records)))
            epoch = 0
            while epoch < epochs or (steps is not None and len(batches) < steps):
                batches += _chunks(_shuffled(everything, seed, f"mixed:{epoch}"), batch_size)
                epoch += 1
                if not batches:
                    break
        else:
            stages: dict[int, list[int]] = {}
            for i, record in enumerate(records):
                stages.setdefault(people_of(record), []).append(i)
            for n in sorted(stages):
                starts[n] = len(batches) + 1
                for epoch in range(epochs):
                    batches += _chunks(_shuffled(stages[n], seed, f"{n}ppl:{epoch}"), batch_size)
            last = max(stages)
            if steps is not None and steps < starts[last]:
                reached = max(n for n in starts if starts[n] <= steps)
                raise DataError(
                    f"steps={steps} ends in the {reached}-person stage of the curriculum (stages start at steps "
                    f"{', '.join(f'{n} people: {start}' for n, start in starts.items())}); raise steps to at least "
                    f"{starts[last]}, train on fewer numbers of people, or use data.schedule=mixed")
            epoch = epochs
            while steps is not None and batches and len(batches) < steps:
                batches += _chunks(_shuffled(stages[last], seed, f"{last}ppl:{epoch}"), batch_size)
                epoch += 1
        if not batches:
            raise DataError(
                f"{len(records)} puzzles cannot fill one batch of {batch_size} "
                "(lower rollout.prompts_per_step or add puzzles)")
        batches = batches[:steps] if steps else batches
        return cls(records, batches, tuple(sorted({s for s in starts.values() if s <= len(batches)})) or (1,))

    def __len__(self) -> int:
        return len(self.batches)

    def stage_span(self, step: int) -> tuple[int, int]:
        """``(first, last)`` 1-based steps of the stage that ``step`` belongs to."""
        first = max(start for start in self.stage_starts if start <= step)
        later = [start for start in self.stage_starts if start > step]
        return first, (later[0] - 1 if later else len(self.batches))

    def batch(self, step: int) -> list[dict[str, Any]]:
        return [self.records[i] for i in self.batches[step]]

    def extra_batch(self, step: int, draw: int, size: int, seed: int) -> list[dict[str, Any]]:
        """Dynamic sampling's ``draw``-th extra puzzles (draw ≥ 1) at the 1-based ``step``: ``size`` distinct
        puzzles of the step's stage, drawn with ``random.Random(f"{seed}:extra:{step}:{draw}")``. A pure function
        of (records, order, seed, step, draw): the data cursor stays the step number."""
        first, last = self.stage_span(step)
        pool = sorted({i for batch in self.batches[first - 1:last] for i in batch})
        rng = random.Random(f"{seed}:extra:{step}:{draw}")
        return [self.records[i] for i in rng.sample(pool, min(size, len(pool)))]

    def fingerprint(self) -> str:
        """A hash of the whole order (puzzle ids per step): a resume checks the data did not change."""
        digest = hashlib.sha1()
        for batch in self.batches:
            digest.update(",".join(str(self.records[i].get("id", i)) for i in batch).encode() + b";")
        return digest.hexdigest()[:16]

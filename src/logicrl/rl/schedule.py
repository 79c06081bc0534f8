"""Which puzzles each RL step sees: a curriculum by number of people, or one shuffled mix.

The order is a pure function of (records, schedule, batch size, epochs, seed), so the data cursor of a
checkpoint is just the step number: a resumed run sees the same next batch. Batches never straddle two
curriculum stages; an incomplete last batch of a stage (or of an epoch) is dropped, as veRL's
dataloader does with ``drop_last``.

* ``curriculum`` (Logic-RL §3): stages ordered by number of people, fewest first; each stage makes
  ``epochs`` passes over its puzzles, shuffled per pass.
* ``mixed``: every pass shuffles all puzzles together.
* ``adaptive`` (`AdaptiveSchedule`, reasoning-gym's K&K curriculum): the level (number of people) follows the
  rolling training accuracy, so the order is a pure function of the data, the seed and the rewards seen; its
  state (level, window, per-level cursors) is checkpointed.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logicrl.errors import DataError
from logicrl.puzzles.files import dataset_files
from logicrl.puzzles.public import is_public_dir, splits_of
from logicrl.puzzles.record import people_of
from logicrl.reward.records import checked_records


def load_puzzles(path: Path, split: str, people: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Records of ``split`` under ``path`` (a dataset dir or a file), restricted to ``people`` if given: each of
    them must be there (DataError naming those missing and those found)."""
    records = checked_records(dataset_files(Path(path), split))
    if people:
        found = {people_of(r) for r in records}
        missing = [n for n in people if n not in found]
        if missing:
            raise DataError(f"{path}: no {split} puzzles with {', '.join(map(str, missing))} people "
                            f"(found: {', '.join(map(str, sorted(found))) or 'none'})")
        records = [r for r in records if people_of(r) in set(people)]
    if not records:
        raise DataError(f"{path}: the {split} split is empty")
    return records


def held_out_split(path: Path) -> str:
    """The split that validation reads under ``path``: ``val`` when the dataset has one, else ``test``.

    A dataset made with ``logicrl data generate --val N`` keeps its test split for the final evaluation only,
    so that choosing checkpoints or settings never looks at the puzzles a result is reported on; in either
    layout (``*ppl/val.*``, or the public layout's ``val/``)."""
    path = Path(path)
    if not path.is_dir():
        return "test"
    has_val = "val" in splits_of(path) if is_public_dir(path) else any(path.glob("*ppl/val.*"))
    return "val" if has_val else "test"


def load_held_out(train: Path, val: Path | None, people: Sequence[int] | None,
                  per_people: int | None = None) -> list[dict[str, Any]]:
    """The held-out puzzles validation reads: the `held_out_split` of ``val``, default ``train``, with ``people``
    people; the first ``per_people`` of each number of people (`validation_subset`), all if None. A single file
    given as ``train`` with no ``val`` has no held-out split: every split of a file is the file, so validation
    would score the training puzzles; a DataError says so."""
    if val is None and Path(train).is_file():
        raise DataError(f"{train} is a single file, so it holds no held-out puzzles to validate on: give "
                        "data.val=FILE_OR_DATASET, or turn validation off (data.val_puzzles_per_people=0)")
    source = val or train
    records = load_puzzles(source, held_out_split(source), people)
    return records if per_people is None else validation_subset(records, per_people)


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


def _by_people(records: Sequence[Mapping[str, Any]]) -> dict[int, list[int]]:
    """Indices of ``records`` per number of people, in file order."""
    levels: dict[int, list[int]] = {}
    for i, record in enumerate(records):
        levels.setdefault(people_of(record), []).append(i)
    return levels


BATCH_KEY = "rollout.prompts_per_step"  # the batch size's config key in `logicrl train` (SFT's: batch_size)


def _levels(records: Sequence[Mapping[str, Any]], batch_size: int, schedule: str,
            batch_key: str = BATCH_KEY) -> dict[int, list[int]]:
    """`_by_people`, for a schedule that trains level by level: a DataError when a level cannot fill one batch
    (a curriculum skipped it without a word, or looped for ever topping up its last stage)."""
    levels = _by_people(records)
    short = [f"{n} people: {len(p)}" for n, p in sorted(levels.items()) if len(p) < batch_size]
    if short:
        raise DataError(f"data.schedule={schedule} needs a batch of {batch_size} puzzles at every level "
                        f"({', '.join(short)}); lower {batch_key} or add puzzles")
    return levels


def _extra_puzzles(records: list[dict[str, Any]], pool: Sequence[int], *, seed: int, step: int, draw: int,
                   size: int) -> list[dict[str, Any]]:
    """Dynamic sampling's ``draw``-th extra puzzles at ``step``: ``size`` distinct puzzles of ``pool``, drawn
    with ``random.Random(f"{seed}:extra:{step}:{draw}")``."""
    rng = random.Random(f"{seed}:extra:{step}:{draw}")
    return [records[i] for i in rng.sample(list(pool), min(size, len(pool)))]


def _ids_digest(records: list[dict[str, Any]]) -> str:
    return hashlib.sha1(",".join(str(r.get("id", i)) for i, r in enumerate(records)).encode()).hexdigest()[:16]


def _chunks(indices: list[int], size: int) -> list[list[int]]:
    return [indices[i:i + size] for i in range(0, len(indices) - size + 1, size)]


@dataclass(frozen=True)
class PromptSchedule:
    """``batches[step]`` = indices into ``records`` of the puzzles used at that (0-based) step;
    ``stage_starts``: the 1-based step at which each curriculum stage begins (``(1,)`` for a mix);
    ``stage_pools``: the indices each stage draws from (its level's puzzles; every puzzle for a mix)."""

    records: list[dict[str, Any]]
    batches: list[list[int]]
    stage_starts: tuple[int, ...] = (1,)
    stage_pools: tuple[tuple[int, ...], ...] = ()

    @classmethod
    def build(cls, records: list[dict[str, Any]], *, schedule: str, batch_size: int, epochs: int, seed: int,
              steps: int | None = None, adaptive: Mapping[str, Any] | None = None,
              batch_key: str = BATCH_KEY) -> PromptSchedule | AdaptiveSchedule:
        """Order the records; with ``steps`` beyond the given epochs, further epochs are added (mixed) or
        the last stage repeats (curriculum). ``adaptive`` returns an `AdaptiveSchedule` (``adaptive``: its
        ``up``, ``down``, ``window``; default 0.7, 0.3, 10). Each epoch leaves out its last partial batch (as
        veRL's loader does); ``batch_key`` names the batch size in the errors."""
        if schedule == "adaptive":
            return AdaptiveSchedule.build(records, batch_size=batch_size, epochs=epochs, seed=seed, steps=steps,
                                          **(adaptive or {}))
        if schedule not in ("curriculum", "mixed"):
            raise ValueError(f"unknown schedule {schedule!r}; choose curriculum, mixed or adaptive")
        batches: list[list[int]] = []
        starts: dict[int, int] = {}
        pools = {0: tuple(range(len(records)))}
        if schedule == "mixed":
            everything = list(range(len(records)))
            epoch = 0
            while epoch < epochs or (steps is not None and len(batches) < steps):
                batches += _chunks(_shuffled(everything, seed, f"mixed:{epoch}"), batch_size)
                epoch += 1
                if not batches:
                    break
        else:
            stages = _levels(records, batch_size, "curriculum", batch_key)
            pools = {n: tuple(stages[n]) for n in stages}
            for n in sorted(stages):
                starts[n] = len(batches) + 1
                for epoch in range(epochs):
                    batches += _chunks(_shuffled(stages[n], seed, f"{n}ppl:{epoch}"), batch_size)
            last = max(stages)
            check_curriculum_steps(steps, starts)
            epoch = epochs
            while steps is not None and batches and len(batches) < steps:
                batches += _chunks(_shuffled(stages[last], seed, f"{last}ppl:{epoch}"), batch_size)
                epoch += 1
        if not batches:
            raise DataError(
                f"{len(records)} puzzles cannot fill one batch of {batch_size} (lower {batch_key} or add puzzles)")
        batches = batches[:steps] if steps else batches
        kept = sorted((start, n) for n, start in starts.items() if start <= len(batches)) or [(1, 0)]
        return cls(records, batches, tuple(start for start, _ in kept), tuple(pools[n] for _, n in kept))

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
        puzzles of the step's stage (its level's, or any for a mix), drawn with
        ``random.Random(f"{seed}:extra:{step}:{draw}")``. A pure function of (records, seed, step, draw), whatever
        ``steps`` cut the order to: the data cursor stays the step number."""
        first, _ = self.stage_span(step)
        pool = self.stage_pools[self.stage_starts.index(first)]
        return _extra_puzzles(self.records, pool, seed=seed, step=step, draw=draw, size=size)

    def fingerprint(self, steps: int | None = None) -> str:
        """A hash of the order of the first ``steps`` steps (default all; puzzle ids per step): a resume checks
        the data did not change."""
        digest = hashlib.sha1()
        for batch in self.batches[:steps]:
            digest.update(",".join(str(self.records[i].get("id", i)) for i in batch).encode() + b";")
        return digest.hexdigest()[:16]

    def pool_fingerprint(self) -> str:
        """A hash of every puzzle the order draws from (ids in file order): a curriculum's later stages do not
        show in the steps already trained, so a resume checks them here."""
        return _ids_digest(self.records)

    def observe(self, solved: int, total: int) -> dict[str, float]:
        """A static order ignores the accuracy (the interface of `AdaptiveSchedule.observe`)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}  # the data cursor is the step number

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


def adaptive_move(window: Sequence[tuple[int, int]], size: int, up: float, down: float) -> int:
    """+1 (up a level), −1 (down) or 0, from ``window``: ``(solved, responses)`` per step at the current level,
    the newest last. Only a full window (``size`` steps) decides; its accuracy is Σ solved / Σ responses over
    the last ``size`` steps: ≥ ``up`` moves up, ≤ ``down`` moves down (reasoning-gym's K&K thresholds 0.7, 0.3).
    The caller keeps the level within its range."""
    if len(window) < size:
        return 0
    recent = window[-size:]
    accuracy = sum(s for s, _ in recent) / max(1, sum(n for _, n in recent))
    return 1 if accuracy >= up else -1 if accuracy <= down else 0


class AdaptiveSchedule:
    """``data.schedule=adaptive``: start at the fewest people; after each step `observe` the step's accuracy and
    move up a level when the rolling accuracy of the last ``window`` steps at this level is ≥ ``up``, down when
    it is ≤ ``down``, never past the lowest or highest level. A level change empties the window, so the next
    decision is made on ``window`` steps at the new level.

    A level's puzzles come in passes: pass p is its puzzles shuffled with ``f"{seed}:{n}ppl:{p}"`` (the
    curriculum's shuffle), cut into batches (the last partial one dropped); ``cursors[n]`` counts the batches
    level n has given, so a level revisited continues where it stopped. The state (level, window, cursors) is
    small and checkpointed (`state_dict`); everything else is a pure function of (records, seed, batch size).
    Length: ``steps``, else the static curriculum's (``epochs`` passes of every level)."""

    stage_starts: tuple[int, ...] = (1,)  # no stages: level changes depend on the rewards

    def __init__(self, records: list[dict[str, Any]], pools: dict[int, list[int]], *, batch_size: int, seed: int,
                 steps: int, up: float, down: float, window: int) -> None:
        self.records, self.pools, self.batch_size, self.seed, self.steps = records, pools, batch_size, seed, steps
        self.up, self.down, self.window_size = up, down, window
        self.levels = sorted(pools)
        self.level = self.levels[0]
        self.window: list[tuple[int, int]] = []
        self.cursors = {n: 0 for n in self.levels}

    @classmethod
    def build(cls, records: list[dict[str, Any]], *, batch_size: int, epochs: int, seed: int,
              steps: int | None = None, up: float = 0.7, down: float = 0.3, window: int = 10) -> AdaptiveSchedule:
        pools = _levels(records, batch_size, "adaptive")
        length = steps or epochs * sum(len(p) // batch_size for p in pools.values())
        return cls(records, pools, batch_size=batch_size, seed=seed, steps=length, up=up, down=down, window=window)

    def __len__(self) -> int:
        return self.steps

    def stage_span(self, step: int) -> tuple[int, int]:
        return 1, self.steps

    def batch(self, step: int) -> list[dict[str, Any]]:
        """The current level's next batch (``step`` is not needed: the cursor moves in `observe`)."""
        pool, cursor = self.pools[self.level], self.cursors[self.level]
        per_pass = len(pool) // self.batch_size
        order = _shuffled(pool, self.seed, f"{self.level}ppl:{cursor // per_pass}")
        start = (cursor % per_pass) * self.batch_size
        return [self.records[i] for i in order[start:start + self.batch_size]]

    def extra_batch(self, step: int, draw: int, size: int, seed: int) -> list[dict[str, Any]]:
        """Dynamic sampling's extra puzzles: ``size`` distinct puzzles of the current level, drawn with
        ``random.Random(f"{seed}:extra:{step}:{draw}")``."""
        return _extra_puzzles(self.records, self.pools[self.level], seed=seed, step=step, draw=draw, size=size)

    def observe(self, solved: int, total: int) -> dict[str, float]:
        """Record a step at the current level (``solved`` of ``total`` responses), advance its cursor and move
        the level if the window says so; return ``curriculum/level`` (the people of this step) and
        ``curriculum/rolling_acc`` (the accuracy over the window, this step included)."""
        level = self.level
        self.cursors[level] += 1
        self.window = [*self.window, (int(solved), int(total))][-self.window_size:]
        rolling = sum(s for s, _ in self.window) / max(1, sum(n for _, n in self.window))
        index = self.levels.index(level)
        moved = min(max(index + adaptive_move(self.window, self.window_size, self.up, self.down), 0),
                    len(self.levels) - 1)
        if moved != index:
            self.level, self.window = self.levels[moved], []
        return {"curriculum/level": float(level), "curriculum/rolling_acc": rolling}

    def state_dict(self) -> dict[str, Any]:
        return {"level": self.level, "window": [list(w) for w in self.window],
                "cursors": [[n, self.cursors[n]] for n in self.levels]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.level = int(state["level"])
        self.window = [(int(s), int(n)) for s, n in state["window"]]
        self.cursors = {int(n): int(c) for n, c in state["cursors"]}

    def fingerprint(self, steps: int | None = None) -> str:
        """A hash of the puzzle pool (ids per level, in file order) and of the settings that order it: with the
        checkpointed state they fix every later batch, so a resume refuses changed data."""
        digest = hashlib.sha1(f"adaptive:{self.batch_size}:{self.seed}:{self.up}:{self.down}:{self.window_size};"
                              .encode())
        for n in self.levels:
            ids = ",".join(str(self.records[i].get("id", i)) for i in self.pools[n])
            digest.update(f"{n}:{ids};".encode())
        return digest.hexdigest()[:16]

    def pool_fingerprint(self) -> str:
        """`fingerprint` covers the pool already."""
        return self.fingerprint()


def check_curriculum_steps(steps: int | None, starts: dict[int, int]) -> None:
    """Refuse a step budget that ends a curriculum before its last stage (``starts``: number of people → the
    step its stage starts at): a DataError naming the stage it ends in and the steps the last one needs. The
    trainer and `logicrl verl launch` both check it, so one config runs the same stages under either."""
    last = max(starts)
    if steps is not None and steps < starts[last]:
        reached = max(n for n in starts if starts[n] <= steps)
        raise DataError(
            f"steps={steps} ends in the {reached}-person stage of the curriculum (stages start at steps "
            f"{', '.join(f'{n} people: {start}' for n, start in starts.items())}); raise steps to at least "
            f"{starts[last]}, train on fewer numbers of people, or use data.schedule=mixed")

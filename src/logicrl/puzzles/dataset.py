"""Datasets of puzzle records: generation into train/test splits, loading, statistics.

Layout written by :func:`write_dataset` (the Logic-RL layout, one folder per number of people)::

    OUT/3ppl/train.jsonl  OUT/3ppl/train.parquet  OUT/3ppl/test.jsonl  OUT/3ppl/test.parquet
    OUT/4ppl/...
    OUT/manifest.json     (the config and the counts)

Train and test of one number of people come from one stream of unique puzzles, so no puzzle is in
both. Everything derives from the seed: the same config gives the same bytes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from logicrl.config import StrictModel
from logicrl.errors import DataError, UserError
from logicrl.io import atomic_write_text, read_rows, write_jsonl, write_parquet
from logicrl.puzzles.logic import Op
from logicrl.puzzles.names import COMMON_NAMES, ROLE_PAIRS, UNCOMMON_NAMES, Roles
from logicrl.puzzles.record import Puzzle
from logicrl.puzzles.sampler import MAX_PEOPLE, Level, StatementSampler, sample_unique_puzzle


class DataConfig(StrictModel):
    """What ``logicrl data generate`` makes."""

    people: list[int] = Field(default=[3, 4, 5, 6, 7], description="numbers of people, one split each")
    train: int = Field(default=900, ge=0, description="training puzzles per number of people")
    test: int = Field(default=100, ge=0, description="held-out puzzles per number of people")
    val: int = Field(default=0, ge=0, description=(
        "validation puzzles per number of people, for choosing checkpoints and settings; drawn after "
        "test, so adding them leaves train and test unchanged"))
    depth: int = Field(default=2, ge=1, description="max depth of a statement tree (leaf = 1)")
    width: int = Field(default=2, ge=2, description="max operands of and/or")
    operators: list[str] = Field(default=[op.value for op in Op if not op.is_leaf])
    roles: str = Field(default="knight/knave", description="'knight/knave', another pair, or 'random'")
    names: Literal["common", "uncommon"] = "common"
    seed: int = 0
    formats: list[Literal["jsonl", "parquet"]] = ["jsonl", "parquet"]

    @field_validator("people", mode="before")
    @classmethod
    def _parse_people(cls, value: Any) -> Any:
        return parse_people(value) if isinstance(value, (str, int)) else value

    @field_validator("people")
    @classmethod
    def _check_people(cls, value: list[int]) -> list[int]:
        for n in value:
            if not 2 <= n <= MAX_PEOPLE:
                raise ValueError(f"number of people must be in 2..{MAX_PEOPLE}, got {n}")
        return value

    @field_validator("roles")
    @classmethod
    def _check_roles(cls, value: str) -> str:
        if value != "random":
            Roles.parse(value)
        return value

    @field_validator("operators")
    @classmethod
    def _check_operators(cls, value: list[str]) -> list[str]:
        inner = [op.value for op in Op if not op.is_leaf]
        for name in value:
            if name not in inner:
                raise ValueError(f"unknown operator {name!r} (valid: {', '.join(inner)})")
        return value

    def level(self, n_people: int) -> Level:
        ops = tuple(op for op in Op if op.value in self.operators)
        return Level(n_people, self.depth, self.width, ops)


def parse_people(text: str | int) -> list[int]:
    """"3-7" -> [3..7]; "2,4,8" -> [2, 4, 8]; 5 -> [5]."""
    out: list[int] = []
    for part in str(text).split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            out.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
        except ValueError:
            raise ValueError(f"people must look like '3-7' or '2,4,8', got {text!r}") from None
    return out


def generate_level(
    config: DataConfig, n_people: int, count: int, progress: Callable[[int], None] | None = None
) -> list[Puzzle]:
    """``count`` distinct unique-solution puzzles with ``n_people`` people, fully determined by the seed."""
    level = config.level(n_people)
    stream = random.Random(f"logicrl:{config.seed}:{n_people}:{level.depth}:{level.width}:{config.operators}")
    sampler = StatementSampler(level, stream)
    name_pool = COMMON_NAMES if config.names == "common" else UNCOMMON_NAMES
    seen: set = set()
    puzzles = []
    for _ in range(count):
        try:
            statements, solution = sample_unique_puzzle(sampler, seen)
        except RuntimeError:
            raise UserError(
                f"only {len(puzzles)} distinct unique-solution puzzles found for {n_people} people at "
                f"depth {level.depth}, width {level.width}; ask for fewer or raise depth/width"
            ) from None
        seed = stream.getrandbits(32)
        look = random.Random(seed)
        roles = look.choice(ROLE_PAIRS) if config.roles == "random" else Roles.parse(config.roles)
        puzzles.append(
            Puzzle(statements, solution, tuple(look.sample(name_pool, n_people)), roles, seed,
                   tuple(range(n_people)), level.depth, level.width)
        )
        if progress:
            progress(1)
    return puzzles


def generate(config: DataConfig, progress: Callable[[int], None] | None = None) -> dict[int, dict[str, list]]:
    """{n_people: {"train": [records], "test": [records], "val": [records] (only when asked)}}."""
    splits = {}
    held_out = config.train + config.test
    for n in config.people:
        puzzles = generate_level(config, n, held_out + config.val, progress)
        records = [p.to_record(i) for i, p in enumerate(puzzles)]
        splits[n] = {"train": records[: config.train], "test": records[config.train : held_out]}
        if config.val:
            splits[n]["val"] = records[held_out:]
    return splits


def write_dataset(out_dir: Path, config: DataConfig, splits: dict[int, dict[str, list]]) -> list[Path]:
    """Write every split in every format, then the manifest; returns the files written."""
    written = []
    for n, by_split in splits.items():
        for split, records in by_split.items():
            if not records:
                continue
            for fmt in config.formats:
                path = out_dir / f"{n}ppl" / f"{split}.{fmt}"
                (write_jsonl if fmt == "jsonl" else write_parquet)(path, records)
                written.append(path)
    manifest = {
        "config": config.model_dump(mode="json"),
        "counts": {f"{n}ppl": {s: len(r) for s, r in by.items()} for n, by in splits.items()},
    }
    atomic_write_text(out_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return written


def dataset_files(path: Path, split: str | None = None) -> list[Path]:
    """The record files under ``path``: the file itself, or ``*ppl/{split}.jsonl`` in a dataset dir
    (parquet when no JSONL is there)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such file or dataset directory")
    pattern = f"*ppl/{split or '*'}"
    files = list(path.glob(pattern + ".jsonl")) or list(path.glob(pattern + ".parquet"))
    if not files:
        raise DataError(f"{path}: no {pattern}.jsonl or .parquet files (make one with `logicrl data generate`)")
    return sorted(files, key=_by_people_then_name)


def _by_people_then_name(path: Path) -> tuple[int, str]:
    """Sort ``10ppl/`` after ``9ppl/`` (numerically), then by file name."""
    people = path.parent.name.removesuffix("ppl")
    return (int(people) if people.isdigit() else 0, path.name)


def load_records(paths: Iterable[Path], *, check: bool = True) -> list[dict[str, Any]]:
    """All records of the given files; a malformed row raises DataError naming file and line."""
    records = []
    for path in paths:
        for where, row in read_rows(path):
            if check:
                try:
                    Puzzle.from_record(row)
                except (ValueError, KeyError, TypeError) as exc:
                    raise DataError(f"{where}: {exc}") from None
            records.append(row)
    return records


def summarize(records: Sequence[dict[str, Any]]) -> dict[int, dict[str, float]]:
    """Per number of people: count, knight share, mean/max statement depth, mean quiz length."""
    by_n: dict[int, list[Puzzle]] = {}
    quiz_chars: dict[int, list[int]] = {}
    for record in records:
        puzzle = Puzzle.from_record(record)
        by_n.setdefault(puzzle.n_people, []).append(puzzle)
        quiz_chars.setdefault(puzzle.n_people, []).append(len(record["quiz"]))
    table = {}
    for n in sorted(by_n):
        puzzles = by_n[n]
        depths = [s.depth for p in puzzles for s in p.statements]
        knights = [k for p in puzzles for k in p.solution]
        table[n] = {
            "puzzles": len(puzzles),
            "knight_share": sum(knights) / len(knights),
            "mean_depth": sum(depths) / len(depths),
            "max_depth": max(depths),
            "mean_quiz_chars": sum(quiz_chars[n]) / len(quiz_chars[n]),
            "max_quiz_chars": max(quiz_chars[n]),
        }
    return table

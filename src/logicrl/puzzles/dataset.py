"""Datasets of puzzle records: the config of ``logicrl data generate`` (`DataConfig`, `PRESETS`), generation into
train/test/val splits and twins, and the summary table. Writing and reading the files: `logicrl.puzzles.files`.

Train and test of one number of people come from one stream of unique puzzles, so no puzzle is in
both; test is drawn first, as the public generator does, so a test split never depends on the train count: a
test set made on its own (``--train 0``) is the test split of every dataset of the same seed and level, never
its training puzzles (``test_first=false``: train first, the order of datasets made before 2026-12-06).
Everything derives from the seed: the same config gives the same bytes.
"""

from __future__ import annotations

import functools
import itertools
import random
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from logicrl.config import StrictModel
from logicrl.errors import UserError
from logicrl.parallel import Workers, usable_cores
from logicrl.puzzles import compiled
from logicrl.puzzles.lines import RecordFacts, RecordLines
from logicrl.puzzles.logic import Op
from logicrl.puzzles.names import NAME_POOLS, Roles, role_choices
from logicrl.puzzles.perturb import PUBLIC_KIND_OF, perturb, perturbation_name
from logicrl.puzzles.record import Puzzle
from logicrl.puzzles.sampler import MAX_PEOPLE, Level, StatementSampler, sample_unique_puzzle

T = TypeVar("T")


def parse_people(text: str | int) -> list[int]:
    """"3-7" -> [3..7]; "2,4,8" -> [2, 4, 8]; 5 -> [5]."""
    out: list[int] = []
    for part in str(text).split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ValueError(f"people must look like '3-7' or '2,4,8', got {text!r}") from None
        if last < first:
            raise ValueError(f"people range {part.strip()!r} is empty: write the smaller number first "
                             f"('{last}-{first}')")
        if last > MAX_PEOPLE:  # refused before the range is built: '2-10000000000' would fill the memory
            raise people_out_of_range(last)
        out.extend(range(first, last + 1))
    return out


def people_out_of_range(got: int) -> ValueError:
    return ValueError(f"number of people must be in 2..{MAX_PEOPLE}, got {got}")


def _people_value(value: Any) -> Any:
    return parse_people(value) if isinstance(value, (str, int)) else value


def _some_distinct_people(value: list[int]) -> list[int]:
    if not value:
        raise ValueError("no numbers of people: give at least one, e.g. '3-7' or [3, 4]")
    twice = sorted({n for n in value if value.count(n) > 1})
    if twice:  # a level listed twice would be drawn, evaluated or trained on twice, and weigh double
        raise ValueError(f"{', '.join(map(str, twice))} people listed more than once")
    return value


# Numbers of people as a config value: a list, or the CLI's '3-7' / '2,4,8' / 5 (in YAML and overrides too),
# each number once.
PeopleList = Annotated[list[int], BeforeValidator(_people_value), AfterValidator(_some_distinct_people)]


class DataConfig(StrictModel):
    """What ``logicrl data generate`` makes."""

    people: PeopleList = Field(default=[3, 4, 5, 6, 7], description="numbers of people, one split each")
    train: int | dict[int, int] = Field(default=900, description=(
        "training puzzles per number of people, or {people: count} (the paper preset: 200 for 2, else 1000)"))
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
    test_first: bool = Field(default=True, description=(
        "draw test before train, as the public generator does, so that the test split of a seed does not depend "
        "on the train count (false: train first, the order before 2026-12-06; a manifest records which)"))
    style: Literal["logicrl", "public"] = Field(default="logicrl", description=(
        "text style: logicrl's, or the public generator's exact wording (render.py)"))
    layout: Literal["logicrl", "public"] = Field(default="logicrl", description=(
        "'logicrl': NNppl/{split}.jsonl; 'public': {split}/{kind}/peopleN_numM.jsonl (the K&K release's)"))
    perturb: list[str] = Field(default=[], description=(
        "perturbation kinds whose twins are written next to the puzzles (layout public only)"))
    leaf_equal_operands: bool = Field(default=False, description=(
        "leaf twins may give a node two equal operands, as the public generator's do (~10% of them)"))
    cap: bool = Field(default=False, description=(
        "a level with fewer unique puzzles than asked keeps those it has (with a warning) instead of failing"))
    workers: int | None = Field(default=None, ge=1, exclude=True, description=(
        "processes that render records and twins while the puzzles are drawn (default: the cores this process "
        "may use, at most one per 100 puzzles); the files are the same for any number, so the manifest leaves "
        "it out"))

    @field_validator("people")
    @classmethod
    def _check_people(cls, value: list[int]) -> list[int]:
        bad = [n for n in value if not 2 <= n <= MAX_PEOPLE]
        if bad:  # the end of a range as the user wrote it ('2-100': 100, not 31; '0-3': 0)
            raise people_out_of_range(max(bad) if max(bad) > MAX_PEOPLE else min(bad))
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
        """Known operators, as a set in `Op`'s order: ``[or, and]`` is ``[and, or]``, the same level and stream."""
        inner = [op.value for op in Op if not op.is_leaf]
        for name in value:
            if name not in inner:
                raise ValueError(f"unknown operator {name!r} (valid: {', '.join(inner)})")
        return [name for name in inner if name in value]

    @field_validator("formats")
    @classmethod
    def _check_formats(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("no file formats: give at least one, e.g. [jsonl] or [jsonl, parquet]")
        return value

    @field_validator("train")
    @classmethod
    def _check_train(cls, value: int | dict[int, int]) -> int | dict[int, int]:
        counts = value.values() if isinstance(value, dict) else [value]
        if any(c < 0 for c in counts):
            raise ValueError("Input should be greater than or equal to 0")  # pydantic's own words for ge=0
        return value

    @field_validator("perturb", mode="before")
    @classmethod
    def _parse_perturb(cls, value: Any) -> Any:
        return [k.strip() for k in value.split(",") if k.strip()] if isinstance(value, str) else value

    @field_validator("perturb")
    @classmethod
    def _check_perturb(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(perturbation_name(kind) for kind in value))  # a kind named twice: once

    @model_validator(mode="after")
    def _check_counts_and_layout(self) -> DataConfig:
        if isinstance(self.train, dict):
            missing = [n for n in self.people if n not in self.train]
            if missing:
                raise ValueError(f"train gives no count for {', '.join(map(str, missing))} people")
        if self.perturb and self.layout != "public":
            raise ValueError("twins (perturb) are written in the public layout only: add layout=public")
        for n in self.people:
            self.level(n).validate()
        if self.depth == 1 or set(self.operators) == {"not"}:
            # A statement is then one claim, perhaps negated: speaker a knight <=> (not) X a knight. Swapping every
            # knight and knave keeps each such equivalence, so every solution comes with its mirror image.
            what, fix = (("depth 1 makes", "use depth 2 or more") if self.depth == 1 else
                         ("operators [not] alone make", "add and, or, -> or <=>"))
            raise ValueError(f"{what} every statement one claim or its negation, and no such puzzle has exactly one "
                             f"solution (swapping every knight and knave keeps each statement as true as its "
                             f"speaker is truthful): {fix}")
        return self

    def train_count(self, n_people: int) -> int:
        return self.train[n_people] if isinstance(self.train, dict) else self.train

    def total(self) -> int:
        """Puzzles asked for, over all numbers of people (twins not counted)."""
        return sum(self.train_count(n) + self.test + self.val for n in self.people)

    def level(self, n_people: int) -> Level:
        ops = tuple(op for op in Op if op.value in self.operators)
        return Level(n_people, self.depth, self.width, ops)


PRESETS: dict[str, dict[str, Any]] = {
    # The shape of the public K&K release (Xie et al. 2024), which Logic-RL evaluates on: 2..8 people at
    # depth 2, width 2; 100 test puzzles per level, drawn first; train 200 (2 people: only 399 unique puzzles
    # exist) and 1,000; the six perturbations, with the public leaf rule; JSONL in the public layout.
    "paper": {
        "people": list(range(2, 9)), "train": {2: 200, **dict.fromkeys(range(3, 9), 1000)}, "test": 100,
        "val": 0, "depth": 2, "width": 2, "test_first": True, "style": "public", "layout": "public",
        "formats": ["jsonl"],
        "perturb": list(PUBLIC_KIND_OF), "leaf_equal_operands": True,
    },
}


RECORD_CHUNK = 100  # puzzles (or records, for twins) per task handed to a worker


def default_workers(config: DataConfig) -> int:
    """``config.workers``, or the usable cores, at most one per `RECORD_CHUNK` puzzles (a small set: no fork); one
    where the compiled writer makes every level and no twins are asked (the workers would have nothing to do)."""
    if config.workers:
        return config.workers
    if not config.perturb and all(compiled_level(config, n) for n in config.people):
        return 1
    return min(usable_cores(), -(-config.total() // RECORD_CHUNK))


def generate_level(
    config: DataConfig, n_people: int, count: int, progress: Callable[[int], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[Puzzle]:
    """``count`` distinct unique-solution puzzles with ``n_people`` people, fully determined by the seed.

    A level that holds fewer is a UserError saying how many were found, or with ``config.cap`` a warning
    (``warn``, default `warnings.warn`) and that many puzzles."""
    return list(iter_level(config, n_people, count, progress, warn))


def iter_level(
    config: DataConfig, n_people: int, count: int, progress: Callable[[int], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Iterator[Puzzle]:
    """`generate_level`'s puzzles one by one, as they are drawn."""
    level = config.level(n_people)
    stream = level_stream(config, level)
    sampler = StatementSampler(level, stream)
    name_pool, pairs = NAME_POOLS[config.names], role_choices(config.roles)
    seen: set = set()
    for made in range(count):
        try:
            statements, solution = sample_unique_puzzle(sampler, seen)
        except RuntimeError:
            _run_out(config, level, made, count, warn)
            return
        seed = stream.getrandbits(32)
        look = random.Random(seed)
        roles = look.choice(pairs) if config.roles == "random" else pairs[0]  # a fixed pair draws nothing
        yield Puzzle(statements, solution, tuple(look.sample(name_pool, n_people)), roles, seed,
                     tuple(range(n_people)), level.depth, level.width, style=config.style)
        if progress:
            progress(1)


def level_stream(config: DataConfig, level: Level) -> random.Random:
    """The random stream a level's puzzles are drawn from: a function of the seed and the level alone."""
    return random.Random(f"logicrl:{config.seed}:{level.n_people}:{level.depth}:{level.width}:{config.operators}")


def _run_out(config: DataConfig, level: Level, made: int, count: int, warn: Callable[[str], None] | None) -> None:
    """A level that held ``made`` of the ``count`` puzzles asked: a UserError, or with ``config.cap`` a warning."""
    found = (f"only {made} distinct unique-solution puzzles found for {level.n_people} people at "
             f"depth {level.depth}, width {level.width}")
    if not config.cap:
        raise UserError(f"{found}; {count} asked: ask for fewer, raise depth/width, or set cap=true "
                        f"(--cap) to keep the {made}")
    (warn or warnings.warn)(f"{found}; {count} asked: keeping {made} (cap)")


def compiled_level(config: DataConfig, n_people: int) -> bool:
    """Whether the compiled record writer makes this level's records (`logicrl.puzzles.compiled`)."""
    return compiled.library() is not None and compiled.supports(n_people, config.depth, config.width, config.roles)


def level_lines(config: DataConfig, n_people: int, count: int,
                warn: Callable[[str], None] | None = None) -> RecordLines:
    """The records of `iter_level`'s ``count`` puzzles, numbered from 0, as the compiled writer makes them (the same
    bytes as ``jsonl_bytes(records_of(list(iter_level(...)), 0))``); a short level as `generate_level` treats it."""
    level = config.level(n_people)
    level.validate()
    lines = compiled.level_records(level_stream(config, level), n_people, level.depth, level.width, level.operators,
                                   count, names=config.names, roles=config.roles, style=config.style)
    if len(lines) < count:
        _run_out(config, level, len(lines), count, warn)
    return lines


def records_of(puzzles: Sequence[Puzzle], start: int) -> list[dict[str, Any]]:
    """The records of ``puzzles``, numbered (``index``) from ``start``."""
    return [puzzle.to_record(start + i) for i, puzzle in enumerate(puzzles)]


def generate(config: DataConfig, progress: Callable[[int], None] | None = None,
             warn: Callable[[str], None] | None = None, workers: Workers | None = None,
             lines: bool = False) -> dict[int, dict[str, Sequence[dict[str, Any]]]]:
    """{n_people: {"train": [records], "test": [records], "val": [records] (only when asked)}}.

    One stream per level, cut in draw order: train, test, val (``test_first``: test, train, val). Records are
    numbered (``index``) in draw order. A capped level (``config.cap``) comes up short in the last splits.
    A level the compiled writer takes (`compiled_level`) is made by it, in this process: with ``lines`` its splits
    are `RecordLines` (JSONL text, decoded where read), else lists of records. Otherwise this process draws the
    puzzles (one stream: in order) and ``workers`` render their records meanwhile, in chunks of `RECORD_CHUNK`,
    collected in order. The records are the same either way, and for any number of workers.
    """
    workers = workers or Workers(1)
    pending: dict[int, tuple[dict[str, int], Callable[[], Sequence[dict[str, Any]]]]] = {}
    for n in config.people:  # every level is drawn before any record is waited for
        counts = {"train": config.train_count(n), "test": config.test, "val": config.val}
        if compiled_level(config, n):
            made = level_lines(config, n, sum(counts.values()), warn)
            if progress:
                progress(len(made))
            pending[n] = counts, functools.partial(_as_asked, made, lines)
        else:
            puzzles = iter_level(config, n, sum(counts.values()), progress, warn)
            pending[n] = counts, functools.partial(_collected, [workers.submit(records_of, chunk, start)
                                                                for start, chunk in _chunks(puzzles, RECORD_CHUNK)])
    splits = {}
    for n, (counts, collect) in pending.items():
        records = collect()
        drawn, start = {}, 0
        for split in ("test", "train", "val") if config.test_first else ("train", "test", "val"):
            drawn[split], start = records[start:start + counts[split]], start + counts[split]
        splits[n] = {"train": drawn["train"], "test": drawn["test"]}
        if config.val:
            splits[n]["val"] = drawn["val"]
    return splits


def _as_asked(made: RecordLines, lines: bool) -> Sequence[dict[str, Any]]:
    return made if lines else list(made)


def _collected(results: list[Callable[[], list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    return [record for result in results for record in result()]


def twins_of(records: Sequence[dict[str, Any]], kinds: Sequence[str], seed: int, equal_operands: bool,
             operators: tuple[Op, ...]) -> dict[str, list[dict[str, Any]]]:
    """{kind: twin records} of ``records``: each twin keeps its original's ``index``; a logic-changing kind may
    skip a puzzle (`perturb` gives None); a statement twin's new statement uses ``operators`` only."""
    puzzles = [(r["index"], Puzzle.from_record(r)) for r in records]
    twins = {}
    for kind in kinds:
        made = [(i, perturb(p, kind, seed, equal_operands=equal_operands, operators=operators)) for i, p in puzzles]
        twins[kind] = [t.to_record(i) for i, t in made if t is not None]
    return twins


def generate_twins(config: DataConfig, splits: dict[int, dict[str, list]],
                   progress: Callable[[int], None] | None = None,
                   workers: Workers | None = None) -> dict[int, dict[str, dict[str, list]]]:
    """{n_people: {split: {kind: twin records}}} for ``config.perturb``; a twin keeps its original's
    ``index`` (the public link) and is named ``<original id>~<kind>``; logic-changing kinds may skip one; a
    statement twin draws its new statement with ``config.operators``, as the puzzles were.
    ``workers`` make them in chunks of `RECORD_CHUNK` records, collected in order (the same twins whatever
    their number)."""
    workers = workers or Workers(1)
    pending = [(n, split, len(chunk), workers.submit(twins_of, chunk, config.perturb, config.seed,
                                                     config.leaf_equal_operands, config.level(n).operators))
               for n, by_split in splits.items() for split, records in by_split.items()
               for _, chunk in _chunks(records, RECORD_CHUNK)]
    twins = {n: {split: {kind: [] for kind in config.perturb} for split in by_split} for n, by_split in splits.items()}
    for n, split, size, result in pending:
        for kind, made in result().items():
            twins[n][split][kind].extend(made)
        if progress:
            progress(size * len(config.perturb))
    return twins


def _chunks(items: Iterable[T], size: int) -> Iterator[tuple[int, list[T]]]:
    """(start, the next ``size`` items) until ``items`` runs out."""
    iterator, start = iter(items), 0
    while chunk := list(itertools.islice(iterator, size)):
        yield start, chunk
        start += len(chunk)


def summarize(facts: Iterable[RecordFacts]) -> dict[int, dict[str, float]]:
    """Per number of people: count, knight share, mean/max statement depth, mean quiz length, from the records'
    `RecordFacts` (`lines.facts_of`)."""
    by_n: dict[int, list[RecordFacts]] = {}
    for fact in facts:
        by_n.setdefault(fact.people, []).append(fact)
    table = {}
    for n in sorted(by_n):
        rows = by_n[n]
        statements = n * len(rows)
        table[n] = {
            "puzzles": len(rows),
            "knight_share": sum(row.knights for row in rows) / statements,
            "mean_depth": sum(row.depth_sum for row in rows) / statements,
            "max_depth": max(row.depth_max for row in rows),
            "mean_quiz_chars": sum(row.quiz_chars for row in rows) / len(rows),
            "max_quiz_chars": max(row.quiz_chars for row in rows),
        }
    return table

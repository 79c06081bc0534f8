"""``logicrl data``: generate, perturb, show and summarise puzzle datasets."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from tqdm import tqdm

from logicrl.cli.output import plain_console
from logicrl.config import load_config
from logicrl.errors import DataError, UserError
from logicrl.io import (
    FolderLock,
    atomic_write_bytes,
    atomic_write_text,
    check_not_another_output,
    check_output_dir,
    import_in_background,
    jsonl_bytes,
    read_json_object,
    write_parquet_from_jsonl,
)
from logicrl.parallel import Workers
from logicrl.puzzles.dataset import PRESETS, DataConfig, default_workers, generate, generate_twins, summarize
from logicrl.puzzles.files import (
    check_dataset_dir,
    dataset_files,
    dataset_operators,
    distinct_by_id,
    load_located,
    write_dataset,
)
from logicrl.puzzles.lines import RecordFacts, facts_of
from logicrl.puzzles.logic import Op
from logicrl.puzzles.perturb import (
    CLEAN_KIND,
    PERTURBATIONS,
    PUBLIC_KIND_OF,
    perturb,
    twin_source,
    undrawable_statement,
)
from logicrl.puzzles.public import is_public_dir, kinds_in
from logicrl.puzzles.record import Puzzle, people_of
from logicrl.puzzles.sampler import ALL_OPERATORS

data_app = typer.Typer(help="Make, perturb and inspect Knights-and-Knaves puzzle datasets.", no_args_is_help=True)
console = plain_console()

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML file with DataConfig keys")]
Overrides = Annotated[list[str] | None, typer.Argument(help="config overrides, key=value (e.g. depth=3)")]


@data_app.command("generate")
def generate_cmd(
    out: Annotated[Path, typer.Option(help="output directory (one NNppl/ folder per number of people)")] = Path(
        "outputs/data"
    ),
    people: Annotated[str | None, typer.Option(help="numbers of people: '3-7' or '2,4,8'")] = None,
    train: Annotated[int | None, typer.Option(help="training puzzles per number of people")] = None,
    test: Annotated[int | None, typer.Option(help="held-out puzzles per number of people")] = None,
    val: Annotated[int | None, typer.Option(help="validation puzzles per number of people (default 0)")] = None,
    depth: Annotated[int | None, typer.Option(help="max statement depth (a leaf is 1)")] = None,
    width: Annotated[int | None, typer.Option(help="max operands of and/or")] = None,
    roles: Annotated[str | None, typer.Option(help="'knight/knave', another pair, or 'random'")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed (same seed, same bytes)")] = None,
    preset: Annotated[str | None, typer.Option(help=(
        "start from a preset: 'paper' = the public K&K release's shape (2-8 people, test 100 drawn first, "
        "train 200/1000, the six twin kinds, public layout)"))] = None,
    cap: Annotated[bool | None, typer.Option(
        "--cap", help="keep what a level holds when it has fewer unique puzzles than asked (warns)")] = None,
    workers: Annotated[int | None, typer.Option(help=(
        "processes that render records and twins (default: the cores this process may use, at most one per "
        "100 puzzles); the output is the same for any number"))] = None,
    config: ConfigOpt = None,
    overrides: Overrides = None,
) -> None:
    """Generate unique-solution puzzles as train/test (and val) splits (JSONL + parquet)."""
    base: dict = {}
    if preset is not None:
        if preset not in PRESETS:
            raise UserError(f"unknown preset {preset!r} (valid: {', '.join(PRESETS)})")
        if config is not None:
            raise UserError("give --preset or --config, not both (put the preset's keys in the file)")
        base = PRESETS[preset]
    given = {"people": people, "train": train, "test": test, "val": val, "depth": depth, "width": width,
             "roles": roles, "seed": seed, "cap": cap, "workers": workers}
    options = {**base, **{k: v for k, v in given.items() if v is not None}}  # options win over the preset
    cfg = load_config(DataConfig, config, overrides, **options)
    if not cfg.total():  # it would write a manifest and no puzzle
        raise UserError("nothing to generate: train, test and val are 0 for every number of people; ask for "
                        "some puzzles (--train, --test or --val)")
    check_output_dir(out)
    check_not_another_output(out, own="manifest.json")
    check_dataset_dir(out, cfg)
    total = cfg.total()
    workers = default_workers(cfg)  # loads the compiled record writer (`cc --version`) before the thread below
    if "parquet" in cfg.formats:
        import_in_background("pyarrow.json", "pyarrow.parquet")  # while the puzzles are drawn
    with Workers(workers) as pool:  # forked before tqdm starts its monitor thread
        with tqdm(total=total, desc="puzzles", unit="pz", disable=total < 2000) as bar:
            splits = generate(cfg, progress=bar.update, warn=_warn, workers=pool, lines=True)
        made = sum(len(r) for by in splits.values() for r in by.values())
        if not made:  # cap kept none at any level: the folder would get a manifest and no puzzle
            raise UserError(f"no unique-solution puzzle found for any of {', '.join(map(str, cfg.people))} people "
                            f"at depth {cfg.depth}, width {cfg.width} (cap): nothing written; raise depth or width, "
                            "or allow more operators")
        twin_count = made * len(cfg.perturb)
        with tqdm(total=twin_count, desc="twins", unit="pz", disable=twin_count < 2000) as bar:
            twins = generate_twins(cfg, splits, progress=bar.update, workers=pool) if cfg.perturb else None
    with FolderLock(out):  # one writer at a time; checked again, since another may have written it meanwhile
        check_dataset_dir(out, cfg)
        written = write_dataset(out, cfg, splits, twins)
    console.print(f"wrote {made} puzzles to {out}/ ({len(written)} files + manifest.json)")
    if twins:
        counts = Counter()
        for by_split in twins.values():
            for by_kind in by_split.values():
                counts.update({PUBLIC_KIND_OF[k]: len(t) for k, t in by_kind.items()})
        console.print("twins: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print_stats([fact for by in splits.values() for records in by.values() for fact in facts_of(records)])


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


PERTURB_RECORD = "perturb.json"  # what `data perturb` made the twins in its --out from


def check_same_twins(out: Path, made_with: dict[str, Any]) -> None:
    """Refuse an ``out`` whose twins `data perturb` made from other settings (`PERTURB_RECORD`): the kinds of two
    runs (another seed, source or split) would mix there, and `eval memorization --twins` reads them as one set."""
    earlier = read_json_object(out / PERTURB_RECORD)
    changed = [key for key in made_with if key in earlier and earlier[key] != made_with[key]]
    if changed:
        raise UserError(f"--out {out} holds twins made with another {', '.join(changed)} ({PERTURB_RECORD}): "
                        f"choose another --out, or delete {out} first")


@data_app.command("perturb")
def perturb_cmd(
    source: Annotated[Path, typer.Argument(help="a .jsonl/.parquet file or a dataset directory")],
    out: Annotated[Path, typer.Option(help="output directory: one <kind>.jsonl/.parquet per kind")],
    kinds: Annotated[str, typer.Option(help="comma-separated: " + ",".join(PERTURBATIONS))] = ",".join(PERTURBATIONS),
    split: Annotated[str, typer.Option(help="split to read from a dataset directory")] = "train",
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    equal_operands: Annotated[bool, typer.Option(
        help="leaf twins may give a node two equal operands, as the public generator's do")] = False,
) -> None:
    """Write perturbed twins of each puzzle (memorization study); each links to its original by id. The
    settings go to ``perturb.json``: another seed, source or split into the same --out is refused. A statement
    twin's new statement uses the operators of the source dataset's config (its manifest.json), or every
    operator when there is none (a record does not name them)."""
    given = [k.strip() for k in kinds.split(",") if k.strip()]
    known = {**{k: k for k in PERTURBATIONS}, **{public: ours for ours, public in PUBLIC_KIND_OF.items()}}
    unknown = [k for k in given if k not in known]
    valid = ", ".join(f"{ours} ({public})" for ours, public in PUBLIC_KIND_OF.items())
    if unknown:
        raise UserError(f"unknown perturbation(s) {', '.join(unknown)} (valid: {valid})")
    if not given:
        raise UserError(f"--kinds names no perturbation: give one or more of {valid}, comma-separated")
    wanted = list(dict.fromkeys(known[k] for k in given))  # a kind named twice (in either naming) runs once
    check_output_dir(out)
    check_not_another_output(out)  # twins written into a dataset's root (--out SOURCE) or a run's folder
    made_with = {"source": str(source.resolve()), "split": split, "seed": seed, "equal_operands": equal_operands}
    check_same_twins(out, made_with)
    located = puzzle_located(source, split)
    records, repeats = distinct_by_id(record for _, record in located)  # one twin of a kind per original id
    if repeats:
        _warn(f"{repeats} puzzle(s) of {source} repeat an earlier one (same id); each puzzle gets one twin of a kind")
    where_of: dict[str, str] = {}
    for where, record in located:
        where_of.setdefault(str(record["id"]), where)
    found = [(str(record["id"]), *twin_source(record)) for record in records]
    operators = dataset_operators(source) or ALL_OPERATORS
    if "statement" in wanted:
        _check_statement_levels(found, where_of, operators)
    reworded = sum(not exact for _, _, exact in found)
    if reworded:
        _warn(f"the text of {reworded} puzzle(s) could not be reproduced; their wording twins are rendered afresh")
    texts = {}  # every twin is made before anything is written: an error leaves the --out as it was
    for kind in wanted:
        made = ((original, perturb(p, kind, seed, equal_operands=equal_operands, operators=operators))
                for original, p, _ in tqdm(found, desc=kind, disable=len(found) < 500))
        # each twin names its original by the record's own id, which `eval memorization --twins` links it by
        kept = [twin.evolve(original_id=original) for original, twin in made if twin is not None]
        texts[kind] = len(kept), jsonl_bytes([twin.to_record(i) for i, twin in enumerate(kept)])
    atomic_write_text(out / PERTURB_RECORD, json.dumps(made_with, indent=2) + "\n")
    for kind, (count, text) in texts.items():
        atomic_write_bytes(out / f"{kind}.jsonl", text)
        write_parquet_from_jsonl(out / f"{kind}.parquet", text)
        console.print(f"{kind:>15}: {count}/{len(found)} twins -> {out / kind}.jsonl")


def _check_statement_levels(found: list[tuple[str, Puzzle, bool]], where_of: dict[str, str],
                            operators: tuple[Op, ...]) -> None:
    """Refuse, naming its file and line, a puzzle whose level no statement can be drawn at (a record's depth 40
    with every operator: `Level.validate`); a 1-person puzzle has no statement twin at all."""
    for original, puzzle, _ in found:
        if problem := undrawable_statement(puzzle, operators):
            raise DataError(f"{where_of[original]}: no statement twin can be drawn at this puzzle's level: {problem}")


@data_app.command("show")
def show_cmd(
    source: Annotated[Path, typer.Argument(help="a .jsonl/.parquet file or a dataset directory")],
    n: Annotated[int, typer.Option("-n", min=1, help="number of records")] = 2,
    split: Annotated[str, typer.Option(help="split to read from a dataset directory")] = "test",
    kind: Annotated[str, typer.Option(help="public layout: clean or a twin kind (either naming)")] = "clean",
    cot: Annotated[bool, typer.Option(help="also print the template reasoning")] = False,
) -> None:
    """Print a few records: the quiz, the answer and (optionally) the template reasoning."""
    for record in puzzle_records(source, split, kind)[:n]:
        console.rule(f"{record.get('id', '?')}  ({people_of(record)} people)")
        console.print(record["quiz"], markup=False)
        console.print("answer", style="bold")
        console.print(record["solution_text_format"], markup=False)
        if cot and record.get("cot_repeat_steps"):
            console.print("template reasoning", style="bold")
            console.print(" ".join(record["cot_repeat_steps"]), markup=False)


@data_app.command("stats")
def stats_cmd(
    source: Annotated[Path, typer.Argument(help="a .jsonl/.parquet file or a dataset directory")],
    split: Annotated[str | None, typer.Option(help="only this split (default: all)")] = None,
    kind: Annotated[str, typer.Option(help="public layout: clean or a twin kind (either naming)")] = "clean",
) -> None:
    """Counts, knight share, statement depth and text lengths per number of people."""
    records = puzzle_records(source, split, kind)
    print_stats(facts_of(records), Counter(r.get("perturbation") for r in records if r.get("perturbation")))
    if source.is_dir() and is_public_dir(source):
        kinds = kinds_in(source, split)
        console.print("public K&K layout; twin kinds: " + (", ".join(kinds) or "none") + " (see --kind)")


def puzzle_records(source: Path, split: str | None, kind: str = CLEAN_KIND) -> list[dict]:
    """The records of ``source`` (`dataset_files`, `load_records`); a DataError when it holds none."""
    return [record for _, record in puzzle_located(source, split, kind)]


def puzzle_located(source: Path, split: str | None, kind: str = CLEAN_KIND) -> list[tuple[str, dict]]:
    """`puzzle_records` with each record's location (``file:line``, `load_located`)."""
    records = load_located(dataset_files(source, split, kind))
    if not records:
        which = [] if source.is_file() else [f"{split or 'every'} split"] + ([] if kind == CLEAN_KIND else [f"{kind} twins"])
        where = f" ({', '.join(which)})" if which else ""
        raise DataError(f"no puzzles in {source}{where}: give a file or split that holds some")
    return records


def print_stats(facts: Sequence[RecordFacts], perturbed: Counter | None = None) -> None:
    table = Table(title=f"{len(facts)} puzzles")
    for col in ("people", "puzzles", "knight share", "mean depth", "max depth", "mean quiz chars", "max quiz chars"):
        table.add_column(col, justify="right")
    for n, row in summarize(facts).items():
        table.add_row(str(n), str(row["puzzles"]), f"{row['knight_share']:.3f}", f"{row['mean_depth']:.2f}",
                      str(row["max_depth"]), f"{row['mean_quiz_chars']:.0f}", str(row["max_quiz_chars"]))
    console.print(table)
    if perturbed:
        console.print("perturbations: " + ", ".join(f"{k} {v}" for k, v in sorted(perturbed.items())))

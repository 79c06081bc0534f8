"""``logicrl data``: generate, perturb, show and summarise puzzle datasets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from logicrl.config import load_config
from logicrl.errors import UserError
from logicrl.io import write_jsonl, write_parquet
from logicrl.puzzles.dataset import DataConfig, dataset_files, generate, load_records, summarize, write_dataset
from logicrl.puzzles.perturb import PERTURBATIONS, perturb
from logicrl.puzzles.record import Puzzle

data_app = typer.Typer(help="Make, perturb and inspect Knights-and-Knaves puzzle datasets.", no_args_is_help=True)
console = Console()

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML file with DataConfig keys")]
Overrides = Annotated[Optional[list[str]], typer.Argument(help="config overrides, key=value (e.g. depth=3)")]


@data_app.command("generate")
def generate_cmd(
    out: Annotated[Path, typer.Option(help="output directory (one NNppl/ folder per number of people)")] = Path(
        "outputs/data"
    ),
    people: Annotated[Optional[str], typer.Option(help="numbers of people: '3-7' or '2,4,8'")] = None,
    train: Annotated[Optional[int], typer.Option(help="training puzzles per number of people")] = None,
    test: Annotated[Optional[int], typer.Option(help="held-out puzzles per number of people")] = None,
    val: Annotated[Optional[int], typer.Option(help="validation puzzles per number of people (default 0)")] = None,
    depth: Annotated[Optional[int], typer.Option(help="max statement depth (a leaf is 1)")] = None,
    width: Annotated[Optional[int], typer.Option(help="max operands of and/or")] = None,
    roles: Annotated[Optional[str], typer.Option(help="'knight/knave', another pair, or 'random'")] = None,
    seed: Annotated[Optional[int], typer.Option(help="random seed (same seed, same bytes)")] = None,
    config: ConfigOpt = None,
    overrides: Overrides = None,
) -> None:
    """Generate unique-solution puzzles as train/test (and val) splits (JSONL + parquet)."""
    cfg = load_config(DataConfig, config, overrides, people=people, train=train, test=test, val=val, depth=depth,
                      width=width, roles=roles, seed=seed)
    total = len(cfg.people) * (cfg.train + cfg.test + cfg.val)
    with tqdm(total=total, desc="puzzles", unit="pz", disable=total < 2000) as bar:
        splits = generate(cfg, progress=bar.update)
    written = write_dataset(out, cfg, splits)
    console.print(f"wrote {total} puzzles to {out}/ ({len(written)} files + manifest.json)")
    print_stats([r for by in splits.values() for recs in by.values() for r in recs])


@data_app.command("perturb")
def perturb_cmd(
    source: Annotated[Path, typer.Argument(help="a .jsonl/.parquet file or a dataset directory")],
    out: Annotated[Path, typer.Option(help="output directory: one <kind>.jsonl/.parquet per kind")],
    kinds: Annotated[str, typer.Option(help="comma-separated: " + ",".join(PERTURBATIONS))] = ",".join(PERTURBATIONS),
    split: Annotated[str, typer.Option(help="split to read from a dataset directory")] = "train",
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """Write perturbed twins of each puzzle (memorization study); each links to its original by id."""
    wanted = [k.strip() for k in kinds.split(",") if k.strip()]
    unknown = [k for k in wanted if k not in PERTURBATIONS]
    if unknown:
        raise UserError(f"unknown perturbation(s) {', '.join(unknown)} (valid: {', '.join(PERTURBATIONS)})")
    records = load_records(dataset_files(source, split))
    puzzles = [Puzzle.from_record(r) for r in records]
    for kind in wanted:
        twins = [perturb(p, kind, seed) for p in tqdm(puzzles, desc=kind, disable=len(puzzles) < 500)]
        kept = [t.to_record(i) for i, t in enumerate(t for t in twins if t is not None)]
        write_jsonl(out / f"{kind}.jsonl", kept)
        write_parquet(out / f"{kind}.parquet", kept)
        console.print(f"{kind:>15}: {len(kept)}/{len(puzzles)} twins -> {out / kind}.jsonl")


@data_app.command("show")
def show_cmd(
    source: Annotated[Path, typer.Argument(help="a .jsonl/.parquet file or a dataset directory")],
    n: Annotated[int, typer.Option("-n", help="number of records")] = 2,
    split: Annotated[str, typer.Option(help="split to read from a dataset directory")] = "test",
    cot: Annotated[bool, typer.Option(help="also print the template reasoning")] = False,
) -> None:
    """Print a few records: the quiz, the answer and (optionally) the template reasoning."""
    for record in load_records(dataset_files(source, split))[:n]:
        console.rule(f"{record.get('id', '?')}  ({record.get('n_people', len(record['names']))} people)")
        console.print(record["quiz"], markup=False)
        console.print("[bold]answer[/bold]")
        console.print(record["solution_text_format"], markup=False)
        if cot and record.get("cot_repeat_steps"):
            console.print("[bold]template reasoning[/bold]")
            console.print(" ".join(record["cot_repeat_steps"]), markup=False)


@data_app.command("stats")
def stats_cmd(
    source: Annotated[Path, typer.Argument(help="a .jsonl/.parquet file or a dataset directory")],
    split: Annotated[Optional[str], typer.Option(help="only this split (default: all)")] = None,
) -> None:
    """Counts, knight share, statement depth and text lengths per number of people."""
    print_stats(load_records(dataset_files(source, split)))


def print_stats(records: list[dict]) -> None:
    table = Table(title=f"{len(records)} puzzles")
    for col in ("people", "puzzles", "knight share", "mean depth", "max depth", "mean quiz chars", "max quiz chars"):
        table.add_column(col, justify="right")
    for n, row in summarize(records).items():
        table.add_row(str(n), str(row["puzzles"]), f"{row['knight_share']:.3f}", f"{row['mean_depth']:.2f}",
                      str(row["max_depth"]), f"{row['mean_quiz_chars']:.0f}", str(row["max_quiz_chars"]))
    console.print(table)
    perturbed = Counter(r.get("perturbation") for r in records if r.get("perturbation"))
    if perturbed:
        console.print("perturbations: " + ", ".join(f"{k} {v}" for k, v in sorted(perturbed.items())))

"""Puzzle generation speed: logicrl vs reasoning-gym's knights_knaves, one core, same difficulty.

Both sides make valid unique-solution puzzles with text and answer at depth 2 / width 2 (the K&K
defaults) for N = 2..8 and 12 people (16 for logicrl only: reasoning-gym's brute force over 2**16
assignments per candidate is out of reach). Columns:

* logicrl record/s — ``generate_level`` + ``Puzzle.to_record``: quiz, answers, template reasoning (CoT)
  and all record fields, in Python (what ``logicrl data generate`` does without a C compiler);
* logicrl compiled/s — the same records as JSONL text from the compiled record writer (``dataset.level_lines``,
  puzzles/kk_records.c): what ``logicrl data generate`` does where a C compiler is (— where it is not built);
* logicrl text/s — ``generate_level`` + quiz text + answer text only: the same work as a
  reasoning-gym item (question + answer), for a like-for-like ratio;
* reasoning-gym/s — ``create_dataset("knights_knaves", n_people=N, depth_constraint=2,
  width_constraint=2, size=K, seed=S)``, iterating the items (each item is generated on access).

Each cell is timed ``--repeats`` times for about ``--budget / repeats`` seconds each and the best run is
reported (least disturbed by other processes). At 2 people only ~400 distinct unique puzzles exist and
logicrl never repeats one within a level, so both sides are capped at 300 puzzles per run there
(reasoning-gym does not deduplicate across items). reasoning-gym raises IndexError when an item finds
no unique puzzle in 1000 draws; such items are counted as failures and not as puzzles.

Run:   .venv/bin/python benchmarks/puzzle_generation.py            (about 2 minutes)
       .venv/bin/python benchmarks/puzzle_generation.py --quick    (smoke run, ~15 s)
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import random
import time
from collections.abc import Callable

from logicrl.puzzles.dataset import DataConfig, compiled_level, generate_level, level_lines
from logicrl.puzzles.render import choose_templates, quiz_text, solution_text_format

N2_CAP = 300  # below the ~400 distinct unique puzzles at 2 people, depth 2, width 2


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def header() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return (
        f"{datetime.datetime.now().isoformat(timespec='seconds')} | {os.cpu_count()} CPUs ({cpu}), "
        f"pinned to {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} | "
        f"Python {platform.python_version()} | logicrl {version('logicrl')} | "
        f"reasoning-gym {version('reasoning-gym')} | numpy {version('numpy')}"
    )


# ---- one timed run of each generator: returns (puzzles made, failures, seconds) -----------------


def logicrl_run(n: int, count: int, seed: int, mode: str) -> tuple[int, int, float]:
    """``mode``: "record" (Python records), "text" (quiz and answer only) or "compiled" (the compiled writer's)."""
    config = DataConfig(people=[n], depth=2, width=2, seed=seed)
    start = time.perf_counter()
    if mode == "compiled":
        return len(level_lines(config, n, count)), 0, time.perf_counter() - start
    text_only = mode == "text"
    puzzles = generate_level(config, n, count)
    for i, p in enumerate(puzzles):
        if text_only:
            templates = choose_templates(random.Random(p.seed), n)
            quiz_text(p.statements, p.names, p.roles, templates, p.order)
            solution_text_format(p.solution, p.names, p.roles)
        else:
            p.to_record(i)
    return len(puzzles), 0, time.perf_counter() - start


def reasoning_gym_run(n: int, seconds: float, cap: int, seed: int) -> tuple[int, int, float]:
    import reasoning_gym

    dataset = reasoning_gym.create_dataset(
        "knights_knaves", n_people=n, depth_constraint=2, width_constraint=2, size=cap, seed=seed
    )
    made = failed = 0
    start = time.perf_counter()
    for idx in range(cap):
        try:
            item = dataset[idx]
            assert item["question"] and item["answer"]
            made += 1
        except IndexError:  # no unique puzzle in 1000 draws
            failed += 1
        if time.perf_counter() - start >= seconds:
            break
    return made, failed, time.perf_counter() - start


def best_rate(run: Callable[[int], tuple[int, int, float]], repeats: int) -> tuple[float, int, int]:
    """Best puzzles/s over ``repeats`` runs (seeds 1..repeats), total puzzles and failures."""
    best, total, failures = 0.0, 0, 0
    for r in range(repeats):
        made, failed, elapsed = run(r + 1)
        best = max(best, made / elapsed if elapsed > 0 else 0.0)
        total += made
        failures += failed
    return best, total, failures


def logicrl_cell(n: int, seconds: float, repeats: int, mode: str) -> tuple[float, int, int]:
    """Calibrate a count that takes about ``seconds / repeats`` per run, then time it."""
    made, _, elapsed = logicrl_run(n, 20, seed=0, mode=mode)
    count = max(20, int(made / elapsed * seconds / repeats))
    if n == 2:
        count = min(count, N2_CAP)
    return best_rate(lambda s: logicrl_run(n, count, s, mode), repeats)


def rg_cell(n: int, seconds: float, repeats: int) -> tuple[float, int, int]:
    cap = N2_CAP if n == 2 else 100_000
    return best_rate(lambda s: reasoning_gym_run(n, seconds / repeats, cap, seed=s), repeats)


def fmt(rate: float | None) -> str:
    if rate is None:
        return "—"
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.2f}"


def ratio(ours: float, theirs: float | None) -> str:
    if not theirs:
        return "—"
    r = ours / theirs
    return f"{r:.1f}×" if r < 10 else f"{r:,.0f}×"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer people counts, short budgets")
    parser.add_argument("--budget", type=float, default=4.0, help="seconds per cell (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per cell; the best is kept")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU core")
    args = parser.parse_args()
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    people = [2, 4, 8, 12] if args.quick else [2, 3, 4, 5, 6, 7, 8, 12, 16]
    budget = 0.6 if args.quick else args.budget
    repeats = 1 if args.quick else args.repeats

    print(header())
    print(f"depth 2, width 2; best of {repeats} run(s), ~{budget:g} s per cell; one process, one core\n")
    print("| N | logicrl record/s | logicrl compiled/s | logicrl text/s | reasoning-gym/s | ratio (record) | "
          "ratio (compiled) | ratio (text) |")
    print("|---|---|---|---|---|---|---|---|")
    notes = []
    for n in people:
        record, _, _ = logicrl_cell(n, budget, repeats, mode="record")
        fast = logicrl_cell(n, budget, repeats, mode="compiled")[0] if compiled_level(DataConfig(), n) else None
        text, _, _ = logicrl_cell(n, budget, repeats, mode="text")
        if n <= 12:
            rg, rg_total, rg_failed = rg_cell(n, budget, repeats)
            if rg_failed:
                failed = f"reasoning-gym failed {rg_failed} item(s) (no unique puzzle in 1000 draws)"
                notes.append(f"N={n}: {failed}")
            if n >= 10:
                notes.append(f"N={n}: reasoning-gym made {rg_total} puzzle(s) in ~{budget:g} s")
        else:
            rg = None
        cells = [str(n), fmt(record), fmt(fast), fmt(text), fmt(rg), ratio(record, rg),
                 ratio(fast, rg) if fast else "—", ratio(text, rg)]
        print("| " + " | ".join(cells) + " |", flush=True)
    for note in notes:
        print(f"\n- {note}", end="")
    print()


if __name__ == "__main__":
    main()

"""Command-line start-up and end-to-end puzzle generation: logicrl's CLI against reasoning-gym, and against
logicrl before its commands loaded lazily, side by side in one run.

Rows (best wall time of ``--repeats`` fresh processes each, so every row pays Python's start-up):

* ``logicrl --help`` and ``logicrl data generate --help``: what a user waits for before anything happens;
* ``data generate``: ``logicrl data generate --people 8 --train K --test 0`` (records with quiz, answers and
  template reasoning, written as JSONL + parquet) against a ``python -c`` that makes K reasoning-gym
  ``knights_knaves`` items at 8 people, depth 2 / width 2 (the same difficulty) and iterates them; a second row
  writes the JSONL file alone (``formats=[jsonl]``), what the parquet file and pyarrow's import cost; a third makes
  the records in Python (``LOGICRL_NATIVE=0``), what the compiled record writer buys.

A second table measures the worker processes alone: the same commands with ``--workers 1`` and with the default
(one worker per usable core, at most one per 100 puzzles), at K puzzles of 8 people with the records made in Python
(the compiled record writer forks no worker) and for ``--preset paper`` (7 levels, 6,900 puzzles and their twins of
6 kinds, ≈ 160 MB of JSONL; the workers make the twins).

The "before" column runs the same commands with the source tree of an earlier commit first on PYTHONPATH
(``--before REV``, default b2aa4f5: every command imported torch and transformers at start-up).

Run:   .venv/bin/python benchmarks/cli_startup.py [--repeats 5] [--count 50] [--before REV]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from child_cases import env_at, installed_env

from logicrl.parallel import usable_cores

ROOT = Path(__file__).resolve().parents[1]
RG_CODE = ("import sys, reasoning_gym\n"
           "ds = reasoning_gym.create_dataset('knights_knaves', n_people=8, depth_constraint=2, width_constraint=2,"
           " size=int(sys.argv[1]), seed=0)\n"
           "made = 0\n"
           "for i in range(len(ds)):\n"
           "    try:\n        ds[i]; made += 1\n"
           "    except IndexError:\n        pass\n")


def best_time(command: list[str], repeats: int, env: dict[str, str]) -> float:
    """The fastest of ``repeats`` runs of ``command`` in a fresh process (it must succeed)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env, cwd=ROOT)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--count", type=int, default=50, help="puzzles at 8 people (default 50)")
    parser.add_argument("--before", default="b2aa4f5", help="the earlier commit to compare with")
    args = parser.parse_args()
    env = installed_env(1)
    # Start-up as a user's machine sees it: modules read from their cached bytecode (the first run writes it). A shell
    # with PYTHONDONTWRITEBYTECODE set (some sandboxes set it) would compile every module of the source tree each run.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as tmp:
        old_src = Path(tmp) / "before"
        old_src.mkdir()
        before_env = env_at(args.before, old_src, env)
        cli = [sys.executable, "-m", "logicrl"]

        def generate(run: str, *overrides: str) -> list[str]:  # a fresh output directory per run
            return [*cli, "data", "generate", "--people", "8", "--train", str(args.count), "--test", "0",
                    "--seed", "0", "--out", str(Path(tmp) / run), *overrides]

        rows = []
        for label, command in (("logicrl --help", [*cli, "--help"]),
                               ("logicrl data generate --help", [*cli, "data", "generate", "--help"])):
            now, before = best_time(command, args.repeats, env), best_time(command, args.repeats, before_env)
            rows.append((label, now, before, None))
        peer = best_time([sys.executable, "-c", RG_CODE, str(args.count)], args.repeats, env)
        for label, overrides, extra in (
                (f"data generate, {args.count} puzzles at 8 people", (), {}),
                ("the same, JSONL only (`formats=[jsonl]`: no pyarrow, no parquet)", ("formats=[jsonl]",), {}),
                ("the same as the first, records made in Python (`LOGICRL_NATIVE=0`)", (), {"LOGICRL_NATIVE": "0"})):
            row = len(rows)  # in the folder names: each row's runs write fresh folders
            now = min(best_time(generate(f"now{row}-{k}", *overrides), 1, {**env, **extra})
                      for k in range(args.repeats))
            before = min(best_time(generate(f"before{row}-{k}", *overrides), 1, {**before_env, **extra})
                         for k in range(args.repeats))
            rows.append((label, now, before, peer))
        levers = []
        for label, command, extra in (
                (f"data generate, {args.count} puzzles at 8 people, records made in Python (`LOGICRL_NATIVE=0`)",
                 generate, {"LOGICRL_NATIVE": "0"}),
                ("data generate --preset paper (the twins)", lambda run, *more: [
                    *cli, "data", "generate", "--preset", "paper", "--out", str(Path(tmp) / run), *more], {})):
            times = [min(best_time(command(f"lever{len(levers)}-{workers}-{k}", *flag), 1, {**env, **extra})
                         for k in range(args.repeats)) for workers, flag in (("1", ("--workers", "1")), ("N", ()))]
            levers.append((label, *times))
    print(f"# CLI start-up — {datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, best of {args.repeats} fresh processes, OMP_NUM_THREADS=1, "
          "bytecode cached")
    print(f"| command | logicrl (s) | logicrl at {args.before} (s) | speed-up | reasoning-gym (s) | logicrl ÷ peer |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, now, before, peer in rows:
        ratio = f"{peer / now:.2f}× faster" if peer else "—"
        print(f"| {label} | {now:.2f} | {before:.2f} | {before / now:.1f}× | "
              f"{f'{peer:.2f}' if peer else '—'} | {ratio} |")
    print(f"\n# Worker processes alone (`--workers`; default here: {usable_cores()}); reasoning-gym runs in one "
          "process, so the last column compares one process with one")
    print("| command | `--workers 1` (s) | default (s) | speed-up | reasoning-gym ÷ `--workers 1` |")
    print("|---|---:|---:|---:|---:|")
    for index, (label, one, default) in enumerate(levers):
        alone = f"{peer / one:.2f}× faster" if index == 0 else "—"  # the first row is the peer's command
        print(f"| {label} | {one:.2f} | {default:.2f} | {one / default:.2f}× | {alone} |")


if __name__ == "__main__":
    main()

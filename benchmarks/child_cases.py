"""Shared by the benchmarks that run each case in a child process of their own, so that peak RSS is per case
(rl_step.py, sft_vs_trl.py): the child prints one ``RESULT {json}`` line; the parent runs it and reads it."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # ru_maxrss is in KiB on Linux


def report(result: dict) -> None:
    """The child's answer to `run_child` (with its peak RSS)."""
    print("RESULT " + json.dumps({**result, "peak_rss_gb": peak_rss_gb()}), flush=True)


def run_child(script: str, case: str, flags: list[str]) -> dict:
    """``python SCRIPT --child CASE FLAGS…`` → the dict it `report`ed; exits with its stderr if it failed."""
    out = subprocess.run([sys.executable, script, "--child", case, *flags], capture_output=True, text=True,
                         check=False)
    result = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode or not result:
        raise SystemExit(f"{case} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(result[-1][len("RESULT "):])


def make_data(out: str, people: str, puzzles: int) -> None:
    """``puzzles`` training puzzles per number of ``people`` ("2" or "2,3") with ``logicrl data generate``."""
    subprocess.run([str(Path(sys.executable).with_name("logicrl")), "data", "generate", "--people", people,
                    "--train", str(puzzles), "--test", "4", "--seed", "0", "--out", out], check=True,
                   capture_output=True)


def add_case_arguments(parser, cases: dict[str, str], default_model: str | None) -> None:
    """The options every such benchmark takes: threads, which cases, the model, and the child's own two."""
    import argparse
    import os

    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--cases", default=",".join(cases), help=f"comma-separated, from {list(cases)}")
    parser.add_argument("--model", default=default_model)
    parser.add_argument("--child", choices=list(cases), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)

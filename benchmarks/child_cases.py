"""Shared by the benchmarks that run each case in a child process of their own, so that peak RSS is per case
(rl_step.py, sft_vs_trl.py): the child prints one ``RESULT {json}`` line; the parent runs it and reads it. Also the
environments and "before" trees of cli_startup.py and fused_head.py (`installed_env`, `env_at`)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # ru_maxrss is in KiB on Linux


def report(result: dict) -> None:
    """The child's answer to `run_child` (with its peak RSS)."""
    print("RESULT " + json.dumps({**result, "peak_rss_gb": peak_rss_gb()}), flush=True)


TCMALLOC = "_tcmalloc"  # a case named CASE_tcmalloc is CASE with gperftools' tcmalloc as the child's malloc
NO_TCMALLOC = "the *_tcmalloc cases need gperftools' tcmalloc (Debian/Ubuntu: apt install libtcmalloc-minimal4)"


def base_case(case: str) -> str:
    """The case a ``*_tcmalloc`` case runs (the case itself otherwise)."""
    return case.removesuffix(TCMALLOC)


def run_child(script: str, case: str, flags: list[str]) -> dict:
    """``python SCRIPT --child CASE FLAGS…`` → the dict it `report`ed; exits with its stderr if it failed. A
    ``*_tcmalloc`` case runs its `base_case` with tcmalloc preloaded (``LD_PRELOAD``,
    `logicrl.engine.allocator.tcmalloc_library`)."""
    env = None
    if case.endswith(TCMALLOC):
        from logicrl.engine.allocator import tcmalloc_library

        library = tcmalloc_library()
        if library is None:
            raise SystemExit(f"{case}: {NO_TCMALLOC}")
        env = {**os.environ, "LD_PRELOAD": library}
    out = subprocess.run([sys.executable, script, "--child", base_case(case), *flags], capture_output=True,
                         text=True, check=False, env=env)
    result = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode or not result:
        raise SystemExit(f"{case} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(result[-1][len("RESULT "):])


def installed_env(threads: int) -> dict[str, str]:
    """This process's environment with ``threads`` OpenMP threads and no PYTHONPATH: the installed tree's code."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    env.pop("PYTHONPATH", None)
    return env


def env_at(rev: str, folder: Path, env: dict[str, str]) -> dict[str, str]:
    """``env`` with the ``src`` tree of commit ``rev`` (extracted into ``folder``) first on PYTHONPATH: the code as it
    was then, for a benchmark's "before" column."""
    archive = subprocess.run(["git", "archive", rev, "src"], check=True, capture_output=True,
                             cwd=Path(__file__).resolve().parents[1])
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return {**env, "PYTHONPATH": str(folder / "src")}


def make_data(out: str, people: str, puzzles: int) -> None:
    """``puzzles`` training puzzles per number of ``people`` ("2" or "2,3") with ``logicrl data generate``."""
    subprocess.run([str(Path(sys.executable).with_name("logicrl")), "data", "generate", "--people", people,
                    "--train", str(puzzles), "--test", "4", "--seed", "0", "--out", out], check=True,
                   capture_output=True)


def add_case_arguments(parser, cases: dict[str, str], default_model: str | None) -> None:
    """The options every such benchmark takes: threads, which cases, the model, and the child's own two."""
    import argparse

    from logicrl.engine.allocator import tcmalloc_library

    def case_list(text: str) -> str:
        unknown = sorted(set(text.split(",")) - set(cases))
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown cases {unknown}; choose from {list(cases)}")
        if TCMALLOC in text and tcmalloc_library() is None:
            raise argparse.ArgumentTypeError(NO_TCMALLOC)
        return text

    runnable = [case for case in cases if not case.endswith(TCMALLOC) or tcmalloc_library()]
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--cases", type=case_list, default=",".join(runnable),
                        help=f"comma-separated, from {list(cases)} (default: all that run here)")
    parser.add_argument("--model", default=default_model)
    parser.add_argument("--child", choices=list(cases), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)

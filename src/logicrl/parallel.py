"""CPU-bound pure functions across processes: how many cores this process may use, and a pool of forked
workers whose results come back in the order they were asked for (so the output does not depend on the
number of workers).

No torch here: ``logicrl data`` uses it, and must start in a fraction of a second.
"""

from __future__ import annotations

import math
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

if TYPE_CHECKING:
    from multiprocessing.pool import Pool

T = TypeVar("T")


def cpu_quota(cpu_max: str) -> int | None:
    """Cores allowed by a cgroup v2 ``cpu.max`` line (``"200000 100000"`` → 2, rounded up; ``"max …"`` → None)."""
    fields = cpu_max.split()
    if not fields or fields[0] == "max":
        return None
    period = int(fields[1]) if len(fields) > 1 else 100_000
    return max(1, math.ceil(int(fields[0]) / period))


def usable_cores() -> int:
    """The cores this process may run on: its affinity set, capped by the cgroup's ``cpu.max`` quota. The
    default intra-op thread count of ``logicrl train``/``sft`` and worker count of ``logicrl data generate``
    (deterministic: it does not depend on the load)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota = cpu_quota(Path("/sys/fs/cgroup/cpu.max").read_text())
    except (OSError, ValueError):
        quota = None
    return min(cores, quota) if quota else cores


class Workers:
    """``workers`` forked processes for pure, CPU-bound functions of picklable arguments; with ``workers`` ≤ 1, or
    where the platform does not fork (Windows; macOS, where forking is unsafe), every call runs at once in this
    process (and raises there). Use it as a context manager, and create it before any thread is started (forking
    a process that runs threads can deadlock).

    ``submit(fn, *args)`` returns a function that waits for and returns ``fn(*args)`` (re-raising its error), so
    callers collect results in the order they asked for them while the workers run ahead. ``fn`` must be defined
    at module level (it is pickled by name).
    """

    def __init__(self, workers: int):
        self.pool: Pool | None = None
        if workers > 1 and sys.platform not in ("darwin", "win32"):
            import multiprocessing  # here: a run that never forks does not pay for its import

            # Ctrl-C reaches this process, which stops the workers (no traceback from each)
            self.pool = multiprocessing.get_context("fork").Pool(workers, initializer=_ignore_interrupts)

    def submit(self, fn: Callable[..., T], *args: Any) -> Callable[[], T]:
        if self.pool is None:
            value = fn(*args)
            return lambda: value
        return self.pool.apply_async(fn, args).get

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.pool is not None:
            self.pool.terminate()  # results were all collected, or an error is on its way up
            self.pool.join()


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)

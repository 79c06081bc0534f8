"""CPU threads: how many cores this process may use, how many other processes keep busy, and torch's
intra-op thread count, from ``sched_getaffinity``, the cgroup's ``cpu.max`` and ``/proc/stat``.

Why it matters (docs/performance.md, Threads): an OpenMP thread that shares its core with a busy process
stalls every parallel region, so the default is the cores this process may run on, not ``os.cpu_count()``.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch


def cpu_quota(cpu_max: str) -> int | None:
    """Cores allowed by a cgroup v2 ``cpu.max`` line (``"200000 100000"`` → 2, rounded up; ``"max …"`` → None)."""
    fields = cpu_max.split()
    if not fields or fields[0] == "max":
        return None
    period = int(fields[1]) if len(fields) > 1 else 100_000
    return max(1, math.ceil(int(fields[0]) / period))


def usable_cores() -> int:
    """The cores this process may run on: its affinity set, capped by the cgroup's ``cpu.max`` quota. The
    default intra-op thread count of ``logicrl train``/``sft`` (deterministic: it does not depend on the load)."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota = cpu_quota(Path("/sys/fs/cgroup/cpu.max").read_text())
    except (OSError, ValueError):
        quota = None
    return min(cores, quota) if quota else cores


def busy_cores(interval_s: float = 0.25, cpus: Sequence[int] | None = None) -> float:
    """Cores of ``cpus`` (default: this process's affinity set) kept busy by other processes, from two reads
    of the per-CPU lines of ``/proc/stat`` ``interval_s`` apart (this process sleeps in between, so it is not
    counted); 0.0 where there is no ``/proc/stat``."""
    wanted = {f"cpu{c}" for c in (os.sched_getaffinity(0) if cpus is None else cpus)}

    def ticks() -> tuple[int, int]:
        total = idle = 0
        with open("/proc/stat") as stat:
            for line in stat:
                name, *values = line.split()
                if name in wanted:
                    numbers = [int(v) for v in values]
                    total, idle = total + sum(numbers), idle + numbers[3] + numbers[4]  # idle + iowait
        return total, idle

    try:
        total, idle = ticks()
        time.sleep(interval_s)
        total2, idle2 = ticks()
    except (OSError, ValueError, IndexError):
        return 0.0
    return (1 - (idle2 - idle) / max(total2 - total, 1)) * len(wanted)


def set_cpu_threads(threads: int | None) -> int:
    """Set torch's intra-op threads to ``threads`` (default: `usable_cores`) and return the number. Warns when
    other processes keep some of those cores busy: an OpenMP thread that shares its core with a busy process
    stalls every parallel region (docs/performance.md)."""
    chosen = threads or usable_cores()
    torch.set_num_threads(chosen)
    busy = busy_cores() if threads is None else 0.0
    if busy >= 0.5:
        warnings.warn(
            f"other processes keep {busy:.1f} of the {chosen} cores busy, and threads that share a busy core stall; "
            f"set threads={max(1, chosen - round(busy))} for this run", stacklevel=2)
    return chosen

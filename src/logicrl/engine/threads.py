"""CPU threads: how many other processes keep this process's cores busy (``/proc/stat``), and torch's intra-op
thread count (default: `logicrl.parallel.usable_cores`, from ``sched_getaffinity`` and the cgroup's ``cpu.max``).

Why it matters (docs/performance.md, Threads): an OpenMP thread that shares its core with a busy process
stalls every parallel region, so the default is the cores this process may run on, not ``os.cpu_count()``.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence

import torch

from logicrl.parallel import usable_cores


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

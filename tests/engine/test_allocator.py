"""glibc's malloc told to keep freed memory: a tensor freed and made again lands on pages it already touched."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from logicrl.engine import allocator

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")

# Each round makes a 40 MiB tensor, writes it and frees it: above the largest mmap threshold glibc chooses by itself
# (32 MiB), so by default every round maps fresh pages and the kernel faults each 4 KiB page in (10,240 a round).
# With freed memory kept, the heap grows for the first few rounds (PyTorch allocates through posix_memalign, which
# asks for a little more than a block of the same size), then reuses its blocks: no new faults.
ROUNDS = """
import resource, sys, torch
from logicrl.engine.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
def round_trip():
    tensor = torch.empty(40 << 20, dtype=torch.uint8)
    tensor.fill_(1)
    del tensor
for _ in range(20):
    round_trip()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    round_trip()
print(kept, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def faults_per_round(mode: str, **env: str) -> tuple[str, float]:
    clean = {k: v for k, v in os.environ.items() if k not in allocator.USER_SETTINGS} | env
    out = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, check=True, env=clean)
    kept, faults = out.stdout.split()
    return kept, float(faults)


def test_freed_tensors_are_reused_without_page_faults():
    _, default = faults_per_round("default")
    kept, keep = faults_per_round("keep")
    assert default > 5_000  # every round faults its 10,240 pages in again
    assert kept == "True" and keep < 100  # after the warm-up rounds, none


def test_the_users_own_glibc_settings_win():
    kept, faults = faults_per_round("keep", MALLOC_TRIM_THRESHOLD_="131072")
    assert kept == "False" and faults > 5_000

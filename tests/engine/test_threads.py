"""CPU threads: the load on a core, the default thread count.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/engine/test_threads.py -q
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from logicrl.engine import threads


def test_busy_cores_sees_a_spinning_process_on_its_core():
    core = sorted(os.sched_getaffinity(0))[0]
    spinner = subprocess.Popen([sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{core}}})\nwhile True: pass"])
    try:
        time.sleep(0.3)
        busy = threads.busy_cores(interval_s=0.5, cpus=[core])
    finally:
        spinner.kill()
    assert 0.6 <= busy <= 1.0


def test_set_cpu_threads_is_deterministic_and_warns_under_load(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(threads, "busy_cores", lambda: 2.2)
    with pytest.warns(UserWarning, match="set threads=2"):
        assert threads.set_cpu_threads(None) == 4  # the load does not change the default
    assert threads.set_cpu_threads(3) == 3  # an explicit number: no warning, no measurement needed
    torch.set_num_threads(len(os.sched_getaffinity(0)))

"""logicrl.parallel: the cores this process may use, and forked workers whose results come back in order.

Run: .venv/bin/python -m pytest tests/test_parallel.py -q
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from logicrl import parallel
from logicrl.parallel import Workers, cpu_quota, usable_cores


@pytest.mark.parametrize(("line", "expected"), [("max 100000", None), ("200000 100000", 2), ("150000 100000", 2),
                                              ("50000 100000", 1), ("400000", 4), ("", None)])
def test_cpu_quota(line, expected):
    assert cpu_quota(line) == expected


def test_usable_cores_respects_affinity():
    assert 1 <= usable_cores() <= len(os.sched_getaffinity(0))


def square_and_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"bad item {x}")
    return x


def test_results_come_back_in_the_order_asked_from_other_processes():
    with Workers(2) as pool:
        results = [pool.submit(square_and_pid, x) for x in range(40)]
        values = [result() for result in results]
    assert [v for v, _ in values] == [x * x for x in range(40)]
    assert os.getpid() not in {pid for _, pid in values}  # forked workers did the work


def test_one_worker_runs_each_call_here_at_once():
    with Workers(1) as pool:
        assert pool.lanes == []
        assert pool.submit(square_and_pid, 7)() == (49, os.getpid())


@pytest.mark.parametrize("workers", [1, 2])
def test_an_error_in_a_task_reaches_the_caller_with_its_type(workers):
    with Workers(workers) as pool, pytest.raises(ValueError, match="bad item 3") as raised:
        [pool.submit(fail_on_three, x)() for x in range(5)]
    if workers > 1:  # where it was raised, as text: a worker's traceback does not travel
        cause = str(raised.value.__cause__)
        assert "in fail_on_three" in cause and "ValueError: bad item 3" in cause


def echo_large(payload: bytes) -> bytes:
    return payload * 4


def unpicklable(x: int):
    return lambda: x


def test_a_value_that_cannot_travel_is_an_error_in_the_caller():
    with Workers(2) as pool, pytest.raises(RuntimeError, match="could not be sent back"):
        pool.submit(unpicklable, 1)()


class TwoArgumentError(Exception):
    def __init__(self, what: str, where: int):  # args = (message,): pickles, but cannot be rebuilt from it
        super().__init__(f"{what} at {where}")


def raise_two_argument_error(x: int) -> None:
    raise TwoArgumentError("broken", x)


def test_an_error_that_cannot_be_rebuilt_still_reaches_the_caller_by_name():
    with Workers(2) as pool, pytest.raises(RuntimeError, match="TwoArgumentError: broken at 5") as raised:
        pool.submit(raise_two_argument_error, 5)()
    assert "raise TwoArgumentError" in str(raised.value.__cause__)  # with its traceback there


def test_a_failed_fork_leaves_no_worker_behind(monkeypatch):
    made = []

    class FailingSecond(parallel._Lane):
        def __init__(self, *args):
            if made:
                raise OSError("fork: cannot allocate memory")
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(parallel, "_Lane", FailingSecond)
    with pytest.raises(OSError, match="cannot allocate"):
        Workers(2)
    assert len(made) == 1 and not made[0].process.is_alive() and made[0].conn.closed


def exit_in_the_worker(code: int) -> None:
    os._exit(code)


def test_a_worker_that_dies_is_an_error_in_the_caller():
    with Workers(2) as pool, pytest.raises(RuntimeError, match=r"a worker process stopped \(exit code 3\)"):
        pool.submit(exit_in_the_worker, 3)()


# Runs in a child process so that a hang fails the test (timeout) instead of stopping the suite. Large tasks and
# results (each far over a pipe's 64 KiB), all submitted before any is collected; then blocks left early, as on
# Ctrl-C, with the workers busy writing results nobody reads. multiprocessing.Pool could hang in both.
STRESS = """
from logicrl.parallel import Workers
from tests.test_parallel import echo_large
payload = bytes(range(256)) * 400
with Workers(2) as pool:
    results = [pool.submit(echo_large, payload) for _ in range(60)]
    assert all(result() == payload * 4 for result in results)
for stop_after in range(30):
    try:
        with Workers(2) as pool:
            results = [pool.submit(echo_large, payload) for _ in range(40)]
            for k, result in enumerate(results):
                result()
                if k == stop_after % 4:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert not any(lane.process.is_alive() for lane in pool.lanes)
print("done")
"""


def test_large_results_and_leaving_early_never_hang():
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    proc = subprocess.run([sys.executable, "-c", STRESS], check=False, capture_output=True, text=True, timeout=60,
                          env=env, cwd=root)
    assert proc.returncode == 0 and proc.stdout == "done\n", proc.stderr

"""CPU-bound pure functions across processes: how many cores this process may use, and a pool of forked
workers whose results come back in the order they were asked for (so the output does not depend on the
number of workers).

No torch here: ``logicrl data`` uses it, and must start in a fraction of a second.
"""

from __future__ import annotations

import math
import os
import pickle
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

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
    at module level (it is pickled by name). Submit and collect from one thread.

    Each worker has its own pipe (tasks dealt in turn), and leaving the block kills the workers: nothing is
    shared between processes, so stopping can never wait on a lock. (``multiprocessing.Pool.terminate`` could:
    a worker writing a large result holds the result queue's lock, and once the pool's reader has stopped it
    never lets go, so Ctrl-C in ``logicrl data generate`` could hang.)
    """

    def __init__(self, workers: int):
        self.lanes: list[_Lane] = []
        if workers > 1 and sys.platform not in ("darwin", "win32"):
            import multiprocessing  # here: a run that never forks does not pay for its import

            context = multiprocessing.get_context("fork")
            try:
                for _ in range(workers):
                    self.lanes.append(_Lane(context, [lane.conn for lane in self.lanes]))
            except BaseException:  # a fork that fails (out of memory, a process limit) leaves none behind
                self.__exit__(None, None, None)
                raise
            for lane in self.lanes:  # threads only once every worker is forked
                lane.feeder.start()
        self._dealt = 0

    def submit(self, fn: Callable[..., T], *args: Any) -> Callable[[], T]:
        if not self.lanes:
            value = fn(*args)
            return lambda: value
        lane = self.lanes[self._dealt % len(self.lanes)]
        self._dealt += 1
        return lane.submit(fn, args)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for lane in self.lanes:  # results were all collected, or an error is on its way up
            lane.close()


class _Lane:
    """One forked worker and its pipe. A feeder thread sends the tasks, so that this process never blocks on a
    full pipe while the worker blocks on sending a result nobody reads yet; results come back in task order."""

    def __init__(self, context: Any, inherited: list[Connection]):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, [*inherited, self.conn]), daemon=True)
        self.process.start()
        child.close()
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.feeder = threading.Thread(target=self._feed, daemon=True)
        self.submitted = self.received = 0
        self.results: dict[int, tuple[bool, Any]] = {}

    def _feed(self) -> None:
        while (task := self.tasks.get()) is not None:
            try:
                self.conn.send(task)
            except (OSError, ValueError):  # the worker was killed, or the pipe closed: the lane is closing
                return

    def submit(self, fn: Callable[..., T], args: tuple) -> Callable[[], T]:
        number, self.submitted = self.submitted, self.submitted + 1
        self.tasks.put((fn, args))
        return lambda: self._result(number)

    def _result(self, number: int) -> Any:
        while number not in self.results:
            try:
                self.results[self.received] = self.conn.recv()
            except EOFError:  # killed from outside (out of memory?), or it exited in a task
                self.process.join()
                raise RuntimeError(f"a worker process stopped (exit code {self.process.exitcode}) before sending a "
                                   "result back") from None
            self.received += 1
        ok, value = self.results.pop(number)
        if not ok:
            error, trace = value
            raise error from RemoteTraceback(trace)
        return value

    def close(self) -> None:
        self.tasks.put(None)
        self.process.kill()
        self.process.join()
        if self.feeder.ident is not None:  # started (not when a later worker's fork failed)
            self.feeder.join()
        self.conn.close()


class RemoteTraceback(Exception):
    """The cause of an error raised in a worker: its traceback there, as text (a traceback does not pickle)."""

    def __str__(self) -> str:
        return f"\n\"\"\"\n{self.args[0]}\"\"\"" if self.args[0] else "(no traceback)"


def _serve(conn: Connection, parent_ends: list[Connection]) -> None:
    """A worker: run each task it is sent, send back ``(True, value)`` or ``(False, (error, its traceback))``.
    Ctrl-C reaches the parent, which kills the workers (no traceback from each)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for end in parent_ends:  # so that each pipe closes when the parent goes
        end.close()
    while True:
        try:
            fn, args = conn.recv()
        except EOFError:  # the parent is gone
            return
        try:
            outcome = True, fn(*args)
        except Exception as error:  # noqa: BLE001 -- re-raised in the parent
            outcome = False, (_portable(error), traceback.format_exc())
        try:
            conn.send(outcome)
        except (pickle.PicklingError, TypeError, AttributeError) as error:  # an error or value that cannot travel
            conn.send((False, (RuntimeError(f"a worker's result could not be sent back: {error}"), "")))


def _portable(error: Exception) -> Exception:
    """``error`` if it survives pickling both ways, else a RuntimeError naming it: an exception whose
    ``__init__`` takes other arguments than its ``args`` pickles but cannot be rebuilt in the parent."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 -- any failure to travel is replaced by a message that can
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error

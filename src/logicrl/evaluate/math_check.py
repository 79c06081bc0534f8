"""The math answer checker of ``logicrl eval math``: find the model's final answer, compare it with the
reference by math-verify, under a hard time limit per answer.

1. **Extraction** (pure, linear time; `extract_answer`). The final answer is the content of the last
   ``<answer>…</answer>`` block when the response has one, else the ``\\boxed{}`` contents of the whole
   response; a ``\\boxed{}`` inside the answer block is taken from there. Text elsewhere does not count, so
   "the answer is 97" in the reasoning followed by ``<answer>98</answer>`` is 98. Several boxes are all
   candidates: they must agree with each other (in value, not spelling), or the response hedged and is wrong.
2. **Comparison** (`MathChecker`): `math_verify.parse` and `math_verify.verify` (Hugging Face's checker:
   sympy through latex2sympy; model text is parsed, never evaluated as Python) decide equivalence:
   ``0.5`` = ``\\frac12`` = ``\\dfrac{1}{2}`` = ``1/2``, ``097`` = ``97``, ``x = 3`` = ``3``,
   ``5\\text{ cm}`` = ``5``, ``\\{2,1\\}`` = ``\\{1,2\\}``, ``[1,2)`` ≠ ``(1,2)``. A short answer is parsed
   as the LaTeX of ``\\boxed{answer}``; prose (two or more words) or delimited LaTeX (``$…$``) goes to
   math-verify's own extraction (``the answer is 97`` → 97).
3. **Time limit.** math-verify's own timeout uses ``signal.alarm`` (main thread only) and cannot stop C
   code such as sympy's big-integer power in ``9^{9^{9^{9}}}``. So the comparison runs in a worker process
   (spawned, memory-capped); a check that overruns ``time_limit_s`` kills the worker, counts as wrong with
   status ``timeout``, and the next check starts a fresh worker.

`substring_match` is the Logic-RL reference evaluation's test (the reference answer occurs in the
response: ``"97"`` matches ``"197"``), kept in every row to show where the two disagree (docs/eval.md).
"""

from __future__ import annotations

import logging
import multiprocessing
import re
import time
from dataclasses import dataclass
from typing import Any

from logicrl.reward.parse import last_answer_block

BOX_COMMANDS = ("\\boxed", "\\fbox")
STATUSES = ("correct", "wrong", "no_answer", "multiple", "timeout", "error")
_PROSE_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")
_DELIMITED = re.compile(r"(?<!\\)\$|\\\(|\\\[")  # $, \( or \[ (not an escaped dollar sign \$)
_STARTUP_S = 120.0  # the worker imports sympy and math-verify once (seconds on a loaded machine)


def boxed_contents(text: str) -> list[str]:
    """The contents of every ``\\boxed{…}`` / ``\\fbox{…}`` in ``text``, in order (nested braces balanced;
    an unclosed box is ignored). Linear in the length of ``text``."""
    found, pos = [], 0
    while True:
        starts = [(text.find(command + "{", pos), command) for command in BOX_COMMANDS]
        starts = [(start, command) for start, command in starts if start >= 0]
        if not starts:
            return found
        start, command = min(starts)
        depth, i = 0, start + len(command)
        for i in range(start + len(command), len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                found.append(text[start + len(command) + 1 : i])
                break
        else:
            return found  # unclosed: nothing after it can close either
        pos = i + 1


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{}`` in ``text`` (None without one)."""
    boxes = boxed_contents(text)
    return boxes[-1].strip() if boxes else None


def _clean(answer: str) -> str:
    """Surrounding space, a closing full stop and ``\\displaystyle`` removed: ``\\boxed{97.}`` is 97."""
    answer = answer.strip().removeprefix("\\displaystyle").strip()
    return answer[:-1].rstrip() if answer.endswith(".") and not answer.endswith("..") else answer


@dataclass(frozen=True)
class Extraction:
    """The final answer(s) of a response: ``candidates`` (distinct, in order; empty: no answer) and where
    they came from (``"answer"``: the last answer block, ``"boxed"``: boxes outside any answer block)."""

    candidates: tuple[str, ...]
    source: str | None


def extract_answer(response: str) -> Extraction:
    """The final answer of ``response`` (module docstring, step 1)."""
    block = last_answer_block(response)
    if block is not None:
        boxes = boxed_contents(block)
        answers, source = (boxes, "answer") if boxes else ([block], "answer")
    else:
        answers, source = boxed_contents(response), "boxed"
    candidates = tuple(dict.fromkeys(a for a in map(_clean, answers) if a))
    return Extraction(candidates, source if candidates else None)


def substring_match(response: str, reference: str) -> bool:
    """The reference implementation's test: the reference answer occurs anywhere in the response."""
    return bool(reference.strip()) and reference.strip() in response


def as_latex(answer: str) -> str:
    """What math-verify parses for an answer: ``$\\boxed{answer}$`` for a short answer; the text itself when
    it is delimited LaTeX or prose (two or more words), for math-verify's own extraction."""
    if _DELIMITED.search(answer) or len(_PROSE_WORD.findall(answer)) >= 2:
        return answer
    return f"$\\boxed{{{answer}}}$"


# ---------------------------------------------------------------------------------------------------------
# The worker process
# ---------------------------------------------------------------------------------------------------------


def judge(reference: str, candidates: list[str]) -> tuple[str, str | None]:
    """``(status, vote)`` of candidates against the reference with math-verify, in this process, without a
    time limit (`MathChecker` adds it). Status: ``correct``, ``wrong`` or ``multiple`` (candidates that
    disagree); vote: the parsed answer as text (equal votes for equal parses: ``1/2`` and ``\\frac12``)."""
    from math_verify import parse, verify

    gold = parse(as_latex(reference), parsing_timeout=None)
    parsed = [parse(as_latex(c), parsing_timeout=None) for c in candidates]
    first = parsed[0]
    if not first:
        return "wrong", None
    if any(not verify(first, other, timeout_seconds=None) for other in parsed[1:]):
        return "multiple", None
    correct = bool(gold) and verify(gold, first, timeout_seconds=None)
    return ("correct" if correct else "wrong"), _vote(first[0])


def _vote(parsed: Any) -> str:
    """A parsed answer as a vote: its sympy text, with the right side of ``x = …`` (``x = 3`` votes with 3),
    what math-verify leaves unevaluated evaluated (``50\\%`` is ``50*(1/100)``: it votes with ``0.5``;
    ``\\sqrt{8}`` with ``2\\sqrt{2}``) and a decimal as its exact fraction (``0.25`` votes with ``\\frac14``)."""
    import sympy

    if isinstance(parsed, sympy.Eq) and parsed.lhs.is_Symbol:
        parsed = parsed.rhs
    if isinstance(parsed, sympy.Basic):
        parsed = parsed.doit()
    if isinstance(parsed, sympy.Float):
        parsed = sympy.Rational(str(parsed))
    return str(parsed)


def _limit_memory(megabytes: int | None) -> None:
    """Cap this process's address space (Linux/macOS), so that a pathological answer cannot exhaust the
    machine's memory before its time is up."""
    if not megabytes:
        return
    try:
        import resource

        limit = megabytes << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass


def _serve(conn: Any, memory_limit_mb: int | None) -> None:
    """The worker loop: ``(reference, candidates)`` in, ``(status, vote, error)`` out; None ends it."""
    logging.disable(logging.WARNING)  # math-verify logs every failed parse
    import math_verify  # noqa: F401  (imported before "ready", so startup is not counted in a check)

    _limit_memory(memory_limit_mb)
    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            status, vote = judge(*job)
            conn.send((status, vote, None))
        except Exception as exc:  # noqa: BLE001 — any failure of the checker is a verdict, not a crash
            conn.send(("error", None, f"{type(exc).__name__}: {exc}"[:200]))


@dataclass(frozen=True)
class MathVerdict:
    """One response checked: ``correct``; ``status`` (`STATUSES`); ``answer`` (the first candidate, or
    None), ``answer_source`` (``answer``/``boxed``); ``vote`` (the parsed answer, for majority voting);
    ``seconds`` the comparison took; ``error`` (a checker error's message)."""

    correct: bool
    status: str
    answer: str | None
    answer_source: str | None
    vote: str | None
    seconds: float
    error: str | None = None


class MathChecker:
    """Checks responses against reference answers in a worker process, each within ``time_limit_s``.

    Use as a context manager (or call `close`); not thread-safe (one check at a time)."""

    def __init__(self, time_limit_s: float = 5.0, memory_limit_mb: int | None = 2048) -> None:
        if not time_limit_s > 0:
            raise ValueError(f"time_limit_s must be > 0, got {time_limit_s}")
        self.time_limit_s = time_limit_s
        self.memory_limit_mb = memory_limit_mb
        self._context = multiprocessing.get_context("spawn")  # no fork of a process holding a model
        self._process: Any = None
        self._conn: Any = None
        self.timeouts = 0

    def __enter__(self) -> MathChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the worker now (else the first check does); RuntimeError if it cannot start."""
        if self._process is None or not self._process.is_alive():
            self._start()

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        self._process = self._context.Process(target=_serve, args=(child, self.memory_limit_mb), daemon=True,
                                              name="logicrl-math-check")
        self._process.start()
        child.close()
        self._conn = parent
        try:
            ready = parent.poll(_STARTUP_S) and parent.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self._stop()
            raise RuntimeError("the math checker process did not start (is math-verify installed? a script "
                               "that uses MathChecker needs an `if __name__ == '__main__':` guard)")

    def _stop(self) -> None:
        """Kill the worker (the only way to stop a check stuck in C code)."""
        if self._process is not None and self._process.pid is not None:
            self._process.kill()
            self._process.join()
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None

    def close(self) -> None:
        """End the worker (politely, then by force)."""
        if self._process is not None and self._process.is_alive():
            try:
                self._conn.send(None)
                self._process.join(timeout=2)
            except (OSError, BrokenPipeError):
                pass
        self._stop()

    def compare(self, reference: str, candidates: list[str]) -> tuple[str, str | None, float, str | None]:
        """``(status, vote, seconds, error)`` of `judge` in the worker; ``timeout`` past the time limit."""
        self.start()
        start = time.perf_counter()
        self._conn.send((reference, candidates))
        if not self._conn.poll(self.time_limit_s):
            self._stop()
            self.timeouts += 1
            return "timeout", None, time.perf_counter() - start, f"no verdict within {self.time_limit_s:g}s"
        try:
            status, vote, error = self._conn.recv()
        except (EOFError, OSError):  # the worker died (e.g. out of memory)
            self._stop()
            return "error", None, time.perf_counter() - start, "the checker process died"
        return status, vote, time.perf_counter() - start, error

    def check(self, response: str, reference: str) -> MathVerdict:
        """Extract the final answer of ``response`` and compare it with ``reference``."""
        extraction = extract_answer(response)
        if not extraction.candidates:
            return MathVerdict(False, "no_answer", None, None, None, 0.0)
        status, vote, seconds, error = self.compare(reference, list(extraction.candidates))
        return MathVerdict(status == "correct", status, extraction.candidates[0], extraction.source, vote,
                           round(seconds, 6), error)

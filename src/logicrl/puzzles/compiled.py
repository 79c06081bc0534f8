"""The compiled record writer: one level's puzzles drawn and their records written as JSONL in C (kk_records.c), byte
for byte what `dataset.iter_level`, `record.Puzzle.to_record` and `logicrl.io.jsonl_bytes` make from the same
config, about 9× as many records a second as the Python modules at 8 people, their JSON text included (one core;
`benchmarks/puzzle_generation.py`; docs/performance.md, "Session 48").

`dataset.generate` uses it for every level it `supports` (at most 20 people, depth ≤ 64, ASCII role words: every
preset and default) where the machine's C compiler can build it (`logicrl.native`, built on first use and cached);
everywhere else, and with ``LOGICRL_NATIVE=0``, the Python modules make the records. They stay the definition: the
tests compare the two on many levels, seeds, role words and both text styles. Word lists (names, role words, speech
templates, the reasoning's head and foot) are handed to C from the Python modules, so they are written once.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import random
from array import array
from pathlib import Path

from logicrl.io import cache_root
from logicrl.native import NativeBuildError, build_library, compiler_command, enabled, load_signed
from logicrl.puzzles.cot import COT_FOOT, COT_HEAD
from logicrl.puzzles.lines import RecordFacts, RecordLines
from logicrl.puzzles.logic import MAX_BITSET_PEOPLE, Op
from logicrl.puzzles.names import NAME_POOLS, Roles, role_choices
from logicrl.puzzles.render import PUBLIC_SPEECH_TEMPLATES, SPEECH_TEMPLATES, capitalize, role_plural
from logicrl.puzzles.sampler import MAX_ATTEMPTS

logger = logging.getLogger(__name__)
SOURCE = Path(__file__).with_name("kk_records.c")
FLAGS = ("-O2", "-shared", "-fPIC")
MAX_DEPTH = 64  # the truth tables' scratch holds depth + 2 of them
FACTS = len(RecordFacts._fields)


class _Level(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("size", ctypes.c_int64), ("ends", ctypes.POINTER(ctypes.c_int64)),
                ("facts", ctypes.POINTER(ctypes.c_int32)), ("made", ctypes.c_int64)]


_strings, _i32, _i64 = ctypes.POINTER(ctypes.c_char_p), ctypes.c_int32, ctypes.c_int64
SIGNATURES = {
    "kk_level": ([ctypes.POINTER(ctypes.c_uint32), _i32, _i32, ctypes.c_uint32, ctypes.POINTER(_i32), _i32, _i64,
                  _i64, _strings, _i32, _strings, _i32, _i32, _strings, _i32, _i32, ctypes.c_char_p, ctypes.c_char_p,
                  ctypes.c_char_p, ctypes.POINTER(_Level)], ctypes.c_int),
    "kk_free": ([ctypes.POINTER(_Level)], None),
}


@functools.cache
def library() -> ctypes.CDLL | None:
    """The record writer, built or loaded once per process; None where it cannot be (the reason is logged)."""
    if not enabled():
        return None
    try:
        path = build_library(SOURCE, compiler=compiler_command(), cache_dir=cache_root() / "kernels", flags=FLAGS)
        return load_signed(path, SIGNATURES)
    except NativeBuildError as error:
        logger.info("puzzle records in Python (%s)", error)
        return None


def supports(n_people: int, depth: int, width: int, roles: str) -> bool:
    """Whether the compiled writer makes this level's records (the library aside): people up to `MAX_BITSET_PEOPLE`
    (it draws as the sampler's bitset path does; its tables hold MAX_PEOPLE_C = 20), depth within its scratch,
    ``and``/``or`` operand counts drawn with one 32-bit word, role words it capitalises as Python does."""
    return (n_people <= MAX_BITSET_PEOPLE and depth <= MAX_DEPTH and width - 1 < 1 << 32
            and all(f"{pair.knight}{pair.knave}".isascii() for pair in role_choices(roles)))


def _strings_of(words: list[str]) -> ctypes.Array:
    return (ctypes.c_char_p * len(words))(*(word.encode() for word in words))


def _role_words(pair: Roles, public: bool) -> list[str]:
    """A role pair's nine words, in kk_records.c's `Words` order."""
    record = pair.to_record()
    knights = role_plural(pair, True, public)
    return [record["knight"], record["knave"], record["a_knight"], record["a_knave"], record["Knight"],
            record["Knave"], knights, role_plural(pair, False, public), capitalize(knights)]


def level_records(stream: random.Random, n_people: int, depth: int, width: int, operators: tuple[Op, ...],
                  count: int, *, names: str, roles: str, style: str) -> RecordLines:
    """Up to ``count`` records of unique-solution puzzles drawn from ``stream``'s state (a level stream, as
    `dataset.iter_level` makes it; the object itself is not advanced), numbered from 0; fewer when a puzzle was not
    found in `MAX_ATTEMPTS` draws (the level has run out). Needs `library` and a level it `supports`. One call makes
    the whole level (≈ 30,000 records a second at 8 people): no progress is reported, and Ctrl-C waits, until it
    returns."""
    lib = library()
    if lib is None:
        raise RuntimeError("the compiled record writer is not built here")
    state = (ctypes.c_uint32 * 625)(*stream.getstate()[1])
    die = [-1, *(list(Op).index(op) for op in operators)]
    pool = NAME_POOLS[names]
    public = style == "public"
    pairs = role_choices(roles)
    speech = PUBLIC_SPEECH_TEMPLATES if public else SPEECH_TEMPLATES
    out = _Level()
    status = lib.kk_level(
        state, n_people, depth, width - 1, (_i32 * len(die))(*die), len(die), count, MAX_ATTEMPTS,
        _strings_of(list(pool)), len(pool), _strings_of([w for pair in pairs for w in _role_words(pair, public)]),
        len(pairs), roles == "random", _strings_of(list(speech)), len(speech), public,
        style.encode() if style != "logicrl" else None, COT_HEAD.encode(), COT_FOOT.encode(), ctypes.byref(out))
    if status == -2:
        raise ValueError(f"the compiled record writer does not take {n_people} people with {len(pool)} names")
    if status != 0:
        raise MemoryError(f"the compiled record writer ran out of memory ({count} puzzles of {n_people} people)")
    try:
        made = out.made
        text = ctypes.string_at(out.data, out.size) if made else b""
        ends = array("q", ctypes.string_at(out.ends, 8 * made) if made else b"")  # int64 each
        flat = array("i", ctypes.string_at(out.facts, 4 * FACTS * made) if made else b"")  # int32 each
    finally:
        lib.kk_free(ctypes.byref(out))
    facts = [RecordFacts(*flat[i:i + FACTS]) for i in range(0, len(flat), FACTS)]
    return RecordLines(text, ends, facts)

"""Switches the benchmarks use to measure one lever alone (each restores the default on exit)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from logicrl.engine import sequences


@contextlib.contextmanager
def shared_prefix_lever(on: bool) -> Iterator[None]:
    """The shared-prefix lever on (the default) or off: with it off no prefix is long enough to run once
    (`logicrl.engine.sequences.MIN_SHARED_PREFIX`), so each prompt runs whole."""
    saved = sequences.MIN_SHARED_PREFIX
    sequences.MIN_SHARED_PREFIX = saved if on else 1 << 30
    try:
        yield
    finally:
        sequences.MIN_SHARED_PREFIX = saved

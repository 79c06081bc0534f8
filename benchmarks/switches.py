"""Switches the benchmarks use to measure one lever alone (each restores the default on exit)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from logicrl.engine import attention, sequences


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


@contextlib.contextmanager
def native_attention_lever(on: bool) -> Iterator[None]:
    """The compiled one-pass decode attention on (the default, where it is built) or off: with it off the fast
    engine runs PyTorch's flash kernel on each key set and merges them (`logicrl.engine.attention`)."""
    saved = attention.native_attention_works
    if not on:
        attention.native_attention_works = lambda dtype: False
    try:
        yield
    finally:
        attention.native_attention_works = saved

"""Switches the benchmarks use to measure one lever alone (each restores the default on exit)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from logicrl.engine import attention, fused, head_softmax, sequences, tile_linear


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
def compiled_kernels_lever(attention_on: bool, elementwise_on: bool, tiles_on: bool = True) -> Iterator[None]:
    """The fast engine's compiled decode-step kernels (`logicrl.engine.native`) on (the default, where they are
    built) or off, each alone: without the attention kernel the engine runs PyTorch's flash kernel on each key set
    and merges them (`logicrl.engine.attention`); without the elementwise one, PyTorch's ops for the residual adds,
    norms, rotary and cache writes (`logicrl.engine.fused`); without the tiles, its bfloat16 projections on oneDNN
    (`logicrl.engine.tile_linear`; the tiles run only on a CPU with AMX)."""
    saved = attention.native_attention_works, fused.fused_works, tile_linear.tile_linear_works
    if not attention_on:
        attention.native_attention_works = lambda dtype: False
    if not elementwise_on:
        fused.fused_works = lambda dtype: False
    if not tiles_on:
        tile_linear.tile_linear_works = lambda: False
    try:
        yield
    finally:
        attention.native_attention_works, fused.fused_works, tile_linear.tile_linear_works = saved


@contextlib.contextmanager
def compiled_head_lever(on: bool) -> Iterator[None]:
    """The fused head's compiled softmax (`logicrl.engine.head_softmax`) on (the default, where it is built) or off:
    PyTorch's ops over each chunk's [chunk, vocabulary] logits, forward and backward."""
    saved = head_softmax.head_softmax_works
    if not on:
        head_softmax.head_softmax_works = lambda: False
    try:
        yield
    finally:
        head_softmax.head_softmax_works = saved

"""Compiled CPU kernels: C sources beside this module, built on first use by the machine's C compiler, cached, and
called through ``ctypes`` on tensors' data pointers (no build step at install, no PyTorch headers to compile).

Four libraries: three for the fast engine's decode step (docs/performance.md, "Compiled decode step"), one for
training's log-probs:

* ``decode_attention``: the attention in one pass over the common and the own keys, AVX-512
  (`logicrl.engine.attention.native_attention`);
* ``decode_elementwise``: the residual add with the RMSNorm after it, the rotary embedding with the cache write,
  and the gated MLP's silu(gate) · up, one call each where PyTorch runs several small ops (`logicrl.engine.fused`);
* ``tile_linear``: the projections in bfloat16 on Intel AMX tiles, the weight packed once into the order the tile
  loads read it (`logicrl.engine.tile_linear`; built as stubs that say no on a CPU without AMX-BF16);
* ``head_softmax``: the fused head's log-softmax, entropy and their gradient on a chunk of logits, one pass per row
  where PyTorch runs ten ops over [chunk, vocabulary] float32 tensors, AVX-512 (`logicrl.engine.logprobs`).

They need x86-64 with AVX-512 and a compiler with OpenMP (``$CC``, else ``cc``: gcc, or clang with libomp); the
first build takes a few seconds, later processes load the cached libraries. Where one cannot be built (no
compiler, another CPU, ``LOGICRL_NATIVE=0``) `library` gives None, `unavailable_reason` says why, and the engine
keeps PyTorch's ops.

How a source is built, keyed and cached: `logicrl.native`.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from pathlib import Path

from logicrl.io import cache_root
from logicrl.native import NativeBuildError, build_library, compiler_command, enabled, load_signed

logger = logging.getLogger(__name__)
FLAGS = ("-O3", "-march=native", "-fopenmp", "-ffp-contract=off", "-shared", "-fPIC")
_i64, _pointer, _float, _int = ctypes.c_int64, ctypes.c_void_p, ctypes.c_float, ctypes.c_int
# library → function → (argument types, result type), as declared in the C source
SIGNATURES = {
    "decode_attention": {"decode_attention": (
        [_pointer, _pointer, _pointer, _i64, _pointer, _pointer, _i64, _i64, _i64, _pointer, _i64, _float, _pointer,
         _i64, _i64, _i64, _i64, _int, _int], _int)},
    "decode_elementwise": {
        "add_rms_norm": ([_pointer, _pointer, _pointer, _pointer, _float, _pointer, _i64, _i64, _int], None),
        "rotary_into_cache": (
            [_pointer, _i64, _pointer, _pointer, _pointer, _pointer, _pointer, _i64, _i64, _i64, _i64, _i64, _i64,
             _int], None),
        "silu_mul": ([_pointer, _pointer, _i64, _i64, _int], None)},
    "head_softmax": {
        "head_forward": ([_pointer, _i64, _i64, _pointer, _float, _pointer, _pointer, _pointer, _int, _int], None),
        "head_backward": ([_pointer, _i64, _i64, _pointer, _float, _pointer, _pointer, _pointer, _pointer, _pointer,
                           _int, _int, _int], None)},
    "tile_linear": {
        "tile_linear_permit": ([], _int),
        "tile_linear": ([_pointer, _pointer, _pointer, _pointer, _i64, _i64, _i64, _int], _int)},
}


def source(name: str) -> Path:
    """The C source of library ``name`` (a key of `SIGNATURES`)."""
    return Path(__file__).with_name(f"{name}.c")


def load_library(name: str, path: Path) -> ctypes.CDLL:
    """The library ``name`` built at ``path``, with its functions' signatures declared (`SIGNATURES`)."""
    return load_signed(path, SIGNATURES[name])


@functools.cache
def _library(name: str) -> tuple[ctypes.CDLL | None, str | None]:
    if not enabled():
        return None, "LOGICRL_NATIVE=0"
    try:
        return load_library(name, build_library(source(name), compiler=compiler_command(), flags=FLAGS,
                                                cache_dir=cache_root() / "kernels")), None
    except NativeBuildError as error:
        logger.info("%s: PyTorch's ops instead (%s)", name, error)
        return None, str(error)


def library(name: str) -> ctypes.CDLL | None:
    """The compiled library ``name`` (a key of `SIGNATURES`), built or loaded once per process; None where it
    cannot be."""
    return _library(name)[0]


def unavailable_reason(name: str) -> str | None:
    """Why `library` (``name``) is None (None when it is not)."""
    return _library(name)[1]

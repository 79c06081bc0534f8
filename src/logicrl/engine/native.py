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

A build is keyed by the source, the compiler's version, the flags and the CPU (``-march=native`` code may not run
on another CPU that shares the cache directory), and stored under `logicrl.io.cache_root` ``/kernels``; it is
written beside its final name and renamed, so concurrent first uses do not see a half-written library.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import re
import shlex
import subprocess
from pathlib import Path

from logicrl.io import atomic_path, cache_root

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
BUILD_TIMEOUT_S = 300


class NativeBuildError(RuntimeError):
    """A kernel could not be built or loaded on this machine (the message says why)."""


@functools.cache
def cpu_identity() -> str:
    """The CPU model and feature flags (Linux ``/proc/cpuinfo``; elsewhere `platform.processor`), read once."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    wanted = ("model name", "flags", "Features", "CPU part")
    first = {}
    for line in lines:
        key, _, value = line.partition(":")
        first.setdefault(key.strip(), value.strip())
    return f"{platform.machine()} " + " | ".join(first.get(key, "") for key in wanted)


def compiler_command() -> str:
    """The C compiler as a command line: ``$CC``, else ``cc``. Its words are split as make splits them, so
    ``CC="ccache gcc"`` and ``CC="gcc -std=gnu11"`` work."""
    return os.environ.get("CC") or "cc"


def _words(compiler: str) -> list[str]:
    try:
        words = shlex.split(compiler)
    except ValueError as error:  # an unbalanced quote
        raise NativeBuildError(f"C compiler {compiler!r}: {error}") from error
    if not words:
        raise NativeBuildError("no C compiler: CC is blank")
    return words


@functools.cache
def compiler_identity(compiler: str) -> str:
    """The first line of ``compiler --version``, asked once per compiler (each library's key needs it); raises
    NativeBuildError when it does not run."""
    try:
        done = subprocess.run([*_words(compiler), "--version"], capture_output=True, text=True, timeout=30,
                              check=True)
    except (OSError, subprocess.SubprocessError) as error:
        raise NativeBuildError(f"no working C compiler {compiler!r} ({error})") from error
    return done.stdout.splitlines()[0] if done.stdout else compiler


def build_library(source: Path, *, compiler: str, cache_dir: Path, flags: tuple[str, ...] = FLAGS) -> Path:
    """The shared library built from ``source`` for this machine: the cached one when its key matches, else a
    fresh build. Raises NativeBuildError with the compiler's first error line when it fails."""
    text = source.read_bytes() + b"".join(header.read_bytes() for header in local_headers(source))
    key = hashlib.sha256(b"\0".join(part.encode() if isinstance(part, str) else part for part in (
        text, compiler_identity(compiler), " ".join(flags), cpu_identity()))).hexdigest()[:16]
    target = cache_dir / f"{source.stem}-{key}.so"
    if target.is_file():
        return target
    try:
        with atomic_path(target) as tmp:
            done = subprocess.run([*_words(compiler), *flags, str(source), "-o", str(tmp)], capture_output=True,
                                  text=True, check=False, timeout=BUILD_TIMEOUT_S)
            if done.returncode != 0:
                errors = [line for line in done.stderr.splitlines() if "error" in line] or done.stderr.splitlines()
                raise NativeBuildError(f"{compiler} could not build {source.name}: "
                                       f"{errors[0].strip() if errors else f'exit status {done.returncode}'}")
    except (OSError, subprocess.SubprocessError) as error:
        raise NativeBuildError(f"building {source.name} failed: {error}") from error
    return target


def local_headers(source: Path) -> list[Path]:
    """The headers beside ``source`` that it includes (``#include "name.h"``): part of its build key."""
    names = re.findall(rb'^\s*#\s*include\s*"([^"]+)"', source.read_bytes(), flags=re.MULTILINE)
    return [source.with_name(name.decode()) for name in names]


def source(name: str) -> Path:
    """The C source of library ``name`` (a key of `SIGNATURES`)."""
    return Path(__file__).with_name(f"{name}.c")


def load_library(name: str, path: Path) -> ctypes.CDLL:
    """The library ``name`` built at ``path``, with its functions' signatures declared (`SIGNATURES`)."""
    try:
        loaded = ctypes.CDLL(str(path))
        for function, (arguments, result) in SIGNATURES[name].items():
            getattr(loaded, function).argtypes, getattr(loaded, function).restype = arguments, result
    except (OSError, AttributeError) as error:
        raise NativeBuildError(f"could not load {path}: {error}") from error
    return loaded


@functools.cache
def _library(name: str) -> tuple[ctypes.CDLL | None, str | None]:
    if os.environ.get("LOGICRL_NATIVE", "1") == "0":
        return None, "LOGICRL_NATIVE=0"
    try:
        return load_library(name, build_library(source(name), compiler=compiler_command(),
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

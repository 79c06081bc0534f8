"""Compiled CPU kernels: C sources beside this module, built on first use by the machine's C compiler, cached, and
called through ``ctypes`` on tensors' data pointers (no build step at install, no PyTorch headers to compile).

One kernel so far, ``decode_attention.c``: the fast engine's decode-step attention in one pass over the common and
the own keys (`logicrl.engine.attention.native_attention`), 2.5–4× PyTorch's CPU flash kernel plus the merge at the
quick start's shapes (docs/performance.md). It needs x86-64 with AVX-512 and a compiler with OpenMP (gcc, or clang
with libomp); the first build takes a few seconds, later processes load the cached library. Where it cannot be built
(no compiler, another CPU, ``LOGICRL_NATIVE=0``) `decode_attention_library` is None, `unavailable_reason` says why,
and the engine keeps PyTorch's kernels.

A build is keyed by the source, the compiler's version, the flags and the CPU (``-march=native`` code may not run
on another CPU that shares the cache directory), and stored under `logicrl.io.cache_root` ``/kernels``; it is
written beside its final name and renamed, so concurrent first uses do not see a half-written library.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
from pathlib import Path

from logicrl.io import atomic_path, cache_root

DECODE_ATTENTION_SOURCE = Path(__file__).with_name("decode_attention.c")
FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC")
BUILD_TIMEOUT_S = 300


class NativeBuildError(RuntimeError):
    """A kernel could not be built or loaded on this machine (the message says why)."""


def cpu_identity() -> str:
    """The CPU model and feature flags (Linux ``/proc/cpuinfo``; elsewhere `platform.processor`)."""
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


def compiler_identity(compiler: str) -> str:
    """The first line of ``compiler --version``; raises NativeBuildError when it does not run."""
    try:
        done = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        raise NativeBuildError(f"no working C compiler {compiler!r} ({error})") from error
    return done.stdout.splitlines()[0] if done.stdout else compiler


def build_library(source: Path, *, compiler: str, cache_dir: Path, flags: tuple[str, ...] = FLAGS) -> Path:
    """The shared library built from ``source`` for this machine: the cached one when its key matches, else a
    fresh build. Raises NativeBuildError with the compiler's first error line when it fails."""
    text = source.read_bytes()
    key = hashlib.sha256(b"\0".join(part.encode() if isinstance(part, str) else part for part in (
        text, compiler_identity(compiler), " ".join(flags), cpu_identity()))).hexdigest()[:16]
    target = cache_dir / f"{source.stem}-{key}.so"
    if target.is_file():
        return target
    try:
        with atomic_path(target) as tmp:
            done = subprocess.run([compiler, *flags, str(source), "-o", str(tmp)], capture_output=True, text=True,
                                  check=False, timeout=BUILD_TIMEOUT_S)
            if done.returncode != 0:
                errors = [line for line in done.stderr.splitlines() if "error" in line] or done.stderr.splitlines()
                raise NativeBuildError(f"{compiler} could not build {source.name}: "
                                       f"{errors[0].strip() if errors else f'exit status {done.returncode}'}")
    except (OSError, subprocess.SubprocessError) as error:
        raise NativeBuildError(f"building {source.name} failed: {error}") from error
    return target


def load_decode_attention(path: Path) -> ctypes.CDLL:
    """The library at ``path`` with ``decode_attention``'s signature declared (see decode_attention.c)."""
    try:
        library = ctypes.CDLL(str(path))
    except OSError as error:
        raise NativeBuildError(f"could not load {path}: {error}") from error
    i64, pointer = ctypes.c_int64, ctypes.c_void_p
    library.decode_attention.argtypes = [
        pointer, pointer, pointer, i64, pointer, pointer, i64, i64, i64, pointer, i64, ctypes.c_float, pointer,
        i64, i64, i64, i64, ctypes.c_int, ctypes.c_int]
    library.decode_attention.restype = ctypes.c_int
    return library


@functools.cache
def _decode_attention() -> tuple[ctypes.CDLL | None, str | None]:
    if os.environ.get("LOGICRL_NATIVE", "1") == "0":
        return None, "LOGICRL_NATIVE=0"
    compiler = os.environ.get("CC") or shutil.which("cc") or "cc"
    try:
        path = build_library(DECODE_ATTENTION_SOURCE, compiler=compiler, cache_dir=cache_root() / "kernels")
        return load_decode_attention(path), None
    except NativeBuildError as error:
        return None, str(error)


def decode_attention_library() -> ctypes.CDLL | None:
    """The compiled ``decode_attention`` kernel, built or loaded once per process; None where it cannot be."""
    return _decode_attention()[0]


def unavailable_reason() -> str | None:
    """Why `decode_attention_library` is None (None when it is not)."""
    return _decode_attention()[1]

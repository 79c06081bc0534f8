"""Building C sources on the machine they run on: the shared library of a source, made by the machine's C compiler
on first use, cached, and loaded through ``ctypes`` (no build step at install). The engine's kernels
(`logicrl.engine.native`) and the puzzle generator's record writer (`logicrl.puzzles.compiled`) are built this way.

A build is keyed by the source and the headers beside it that it includes, the compiler's version, the flags and
the CPU (``-march=native`` code may not run on another CPU that shares the cache directory), and stored under
`logicrl.io.cache_root` ``/kernels``; it is written beside its final name and renamed, so concurrent first uses do
not see a half-written library. ``LOGICRL_NATIVE=0`` turns every compiled path off (`enabled`).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

from logicrl.io import atomic_path

BUILD_TIMEOUT_S = 300


def enabled() -> bool:
    """False where ``LOGICRL_NATIVE=0`` asks for the pure-Python paths everywhere."""
    return os.environ.get("LOGICRL_NATIVE", "1") != "0"


class NativeBuildError(RuntimeError):
    """A C source could not be built or loaded on this machine (the message says why)."""


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


def build_library(source: Path, *, compiler: str, cache_dir: Path, flags: tuple[str, ...]) -> Path:
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


def load_signed(path: Path, signatures: dict[str, tuple[list[Any], Any]]) -> ctypes.CDLL:
    """The library at ``path`` with its functions' argument and result types declared (function → (argument types,
    result type), as the C source declares them)."""
    try:
        loaded = ctypes.CDLL(str(path))
        for function, (arguments, result) in signatures.items():
            getattr(loaded, function).argtypes, getattr(loaded, function).restype = arguments, result
    except (OSError, AttributeError) as error:
        raise NativeBuildError(f"could not load {path}: {error}") from error
    return loaded

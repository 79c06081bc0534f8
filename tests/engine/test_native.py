"""The compiled decode-attention kernel (`logicrl.engine.native`, decode_attention.c) through
`logicrl.engine.attention.native_attention`: against a float64 softmax over both key sets for any shape it accepts,
the shapes it refuses, and the builds of the libraries (cache key, reuse, the errors that make the engine keep
PyTorch's ops). The elementwise library's functions: tests/engine/test_fused.py; the head's softmax:
tests/engine/test_head_softmax.py.

Run: .venv/bin/python -m pytest tests/engine/test_native.py -q
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from logicrl import native as build
from logicrl.engine import attention, fused, native
from logicrl.engine.head_softmax import head_softmax_works

AVX512 = "avx512f" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else False
CC = native.compiler_command()  # what the engine builds with ($CC, else cc)
HAS_CC = shutil.which(shlex.split(CC)[0]) is not None
needs_kernel = pytest.mark.skipif(native.library("decode_attention") is None,
                                  reason=f"not built here: {native.unavailable_reason('decode_attention')}")


@pytest.mark.skipif(not (AVX512 and HAS_CC), reason="needs an AVX-512 CPU and a C compiler")
def test_the_kernels_build_and_pass_their_probes_where_they_should():
    """On an AVX-512 CPU with a compiler the engine must not fall back silently (a broken build would)."""
    for name in native.SIGNATURES:
        assert native.unavailable_reason(name) is None, name
    for dtype in (torch.float32, torch.bfloat16):
        assert attention.native_attention_works(dtype) and fused.fused_works(dtype)
    assert head_softmax_works()


def case(dtype, B, H, G, D, C, T, width, hidden, seed):
    """Random inputs: q [B, H, G, D], common keys [1, H, C, D] (or none), own keys/values inside a cache [2, B, H,
    width, D] (a view, as in the engine), a bias hiding the ``hidden`` own keys of row 0."""
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn((B, H, G, D), generator=generator).to(dtype)
    common = None if C == 0 else tuple(torch.randn((1, H, C, D), generator=generator).to(dtype) for _ in range(2))
    cache = (torch.randn((2, B, H, width, D), generator=generator) * 2).to(dtype)
    keys, values = cache[0, :, :, :T], cache[1, :, :, :T]
    bias = None
    if hidden:
        bias = torch.zeros(B, 1, 1, width, dtype=dtype)
        bias[0, ..., :hidden] = float("-inf")
        bias = bias[..., :T]
    return q, common, keys, values, bias


@needs_kernel
@settings(max_examples=80, deadline=None)
@given(dtype=st.sampled_from([torch.float32, torch.bfloat16]), B=st.integers(1, 5), H=st.integers(1, 3),
       G=st.integers(1, 8), D=st.sampled_from([16, 32, 64, 128]), C=st.integers(0, 40), T=st.integers(1, 70),
       extra=st.integers(0, 5), hidden=st.integers(0, 3), scale=st.floats(0.05, 1.0), seed=st.integers(0, 1000))
def test_the_kernel_is_the_softmax_over_the_common_and_the_own_keys(dtype, B, H, G, D, C, T, extra, hidden, scale,
                                                                   seed):
    """Every head size the kernel unrolls (64, 128) and others it runs generically, 1–8 grouped queries, with and
    without common keys, own keys in a wider cache, some hidden by the bias; float32 arithmetic on exact inputs,
    so both dtypes meet the float64 reference to float32 rounding."""
    hidden = min(hidden, T - 1) if C == 0 else min(hidden, T)  # a row keeps a key to attend to
    q, common, keys, values, bias = case(dtype, B, H, G, D, C, T, T + extra, hidden, seed)
    out = attention.native_attention(q, common, keys, values, bias, scale)
    sets = ([] if common is None else [(*common, None)]) + [(keys, values, bias)]
    assert out is not None and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), attention.reference_attention(q, sets, scale), atol=2e-5, rtol=1e-5)


@needs_kernel
@pytest.mark.parametrize("change", ["G=9", "D=24", "D=272", "mixed dtypes", "keys not rows of D", "bias per head",
                                    "common keys per row", "fewer key rows than queries"])
def test_shapes_the_kernel_does_not_take_go_back_to_the_two_calls(change):
    G, D = {"G=9": (9, 16), "D=24": (2, 24), "D=272": (1, 272)}.get(change, (2, 16))
    q, common, keys, values, bias = case(torch.float32, 2, 2, G, D, 3, 5, 6, 1, 0)
    if change == "mixed dtypes":
        q = q.to(torch.bfloat16)
    if change == "keys not rows of D":
        keys, values = keys.transpose(2, 3).contiguous().transpose(2, 3), values.transpose(2, 3).contiguous()
    if change == "bias per head":
        bias = bias.expand(2, 2, 1, 5)
    if change == "common keys per row":
        common = tuple(t.expand(2, -1, -1, -1) for t in common)
    if change == "fewer key rows than queries":
        keys, values = keys[:1], values[:1]
    assert attention.native_attention(q, common, keys, values, bias, 0.5) is None


def test_a_build_is_reused_and_keyed_by_the_cpu(tmp_path, monkeypatch):
    """The second build of the same source for the same CPU is the first file (not rebuilt); another CPU gets
    another file, since -march=native code may not run on it."""
    if not (AVX512 and HAS_CC):
        pytest.skip("needs an AVX-512 CPU and a C compiler")
    source = native.source("decode_elementwise")
    first = build.build_library(source, compiler=CC, cache_dir=tmp_path, flags=native.FLAGS)
    stamp = first.stat().st_mtime_ns
    assert build.build_library(source, compiler=CC, cache_dir=tmp_path, flags=native.FLAGS) == first
    assert first.stat().st_mtime_ns == stamp
    monkeypatch.setattr(build, "cpu_identity", lambda: "another cpu")
    other = build.build_library(source, compiler=CC, cache_dir=tmp_path, flags=native.FLAGS)
    assert other != first and other.is_file()
    assert native.load_library("decode_elementwise", other).rotary_into_cache  # loads, with its symbols
    words = build.build_library(source, compiler=f"env {CC}", cache_dir=tmp_path / "words",  # CC="ccache gcc"
                                flags=native.FLAGS)
    assert words.name == other.name and native.load_library("decode_elementwise", words).rotary_into_cache
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written left behind


def test_a_header_the_source_includes_is_part_of_the_key(tmp_path):
    """Editing simd_exp.h or simd_bf16.h must rebuild the libraries that include them: the cached file of the old header would
    otherwise be loaded as is."""
    if not HAS_CC:
        pytest.skip("no C compiler")
    source, header = tmp_path / "kernel.c", tmp_path / "values.h"
    source.write_text('#include "values.h"\nint value(void) { return VALUE; }\n')
    assert build.local_headers(native.source("head_softmax")) == [native.source("head_softmax").with_name(name)
                                                                    for name in ("simd_bf16.h", "simd_exp.h")]
    built = []
    for value in (1, 2):
        header.write_text(f"#define VALUE {value}\n")
        built.append(build.build_library(source, compiler=CC, cache_dir=tmp_path / "cache",
                                          flags=("-O1", "-shared", "-fPIC")))
    assert built[0] != built[1] and all(path.is_file() for path in built)


def test_what_stops_a_build_is_said_in_one_line(tmp_path):
    """No compiler; a CPU without AVX-512 (here: the flag turned off), where the source's #error stops the build.
    Neither leaves a file in the cache."""
    with pytest.raises(native.NativeBuildError, match="no working C compiler '/no/such/cc'"):
        build.build_library(native.source("decode_attention"), compiler="/no/such/cc", cache_dir=tmp_path,
                            flags=native.FLAGS)
    for blank, message in (("  ", "no C compiler: CC is blank"), ("gcc 'x", "C compiler \"gcc 'x\": No closing")):
        with pytest.raises(native.NativeBuildError, match=message):
            build.build_library(native.source("decode_attention"), compiler=blank, cache_dir=tmp_path,
                                flags=native.FLAGS)
    if not HAS_CC:
        pytest.skip("no C compiler")
    with pytest.raises(native.NativeBuildError, match="needs AVX-512") as error:
        build.build_library(native.source("decode_attention"), compiler=CC, cache_dir=tmp_path,
                             flags=("-O1", "-mno-avx512f", "-shared", "-fPIC"))
    assert "\n" not in str(error.value)
    assert not list(tmp_path.iterdir())


def test_logicrl_native_0_keeps_pytorchs_kernels(monkeypatch):
    monkeypatch.setenv("LOGICRL_NATIVE", "0")
    native._library.cache_clear()
    try:
        for name in native.SIGNATURES:
            assert native.library(name) is None
            assert native.unavailable_reason(name) == "LOGICRL_NATIVE=0"
    finally:
        native._library.cache_clear()

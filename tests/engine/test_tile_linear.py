"""The decode projections on AMX tiles (`logicrl.engine.tile_linear`, tile_linear.c): the product against float64
for any shape the kernel takes (row counts that are and are not multiples of 16, with and without a bias), exact
where every product is, a NaN kept in its own row, the tile order of `pack`, and the decode engine's `_Linear`
taking the kernel only where it applies.

Run: .venv/bin/python -m pytest tests/engine/test_tile_linear.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from logicrl.engine import native, tile_linear
from logicrl.engine.onednn import _Linear, onednn_support

CPUINFO = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
AMX = all(flag in CPUINFO.split() for flag in ("amx_tile", "amx_bf16", "avx512_bf16"))
needs_tiles = pytest.mark.skipif(not tile_linear.tile_linear_works(),
                                 reason=f"no AMX kernel here ({native.unavailable_reason('tile_linear') or 'no AMX'})")


def operands(rows, K, N, bias, seed, scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    x, w = (torch.randn(shape, generator=generator).mul(scale).bfloat16() for shape in ((rows, K), (N, K)))
    b = torch.randn(N, generator=generator).bfloat16() if bias else None
    return x, w, b


@pytest.mark.skipif(not AMX or native.library("tile_linear") is None, reason="needs a CPU with AMX-BF16 and the build")
def test_the_kernel_runs_where_the_cpu_has_amx():
    """On an AMX CPU the engine must not fall back silently (a broken build or probe would)."""
    assert tile_linear.tile_linear_works()


@needs_tiles
@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 40), K=st.sampled_from([32, 64, 96, 576]), N=st.sampled_from([64, 128, 192, 960]),
       bias=st.booleans(), scale=st.sampled_from([1e-3, 1.0, 50.0]), seed=st.integers(0, 1000))
def test_the_product_is_x_times_w_transposed_plus_b(rows, K, N, bias, scale, seed):
    """Within one bfloat16 rounding of the float64 product plus float32 rounding of the sum (|x|·|w|ᵀ bounds it)."""
    x, w, b = operands(rows, K, N, bias, seed, scale)
    y = tile_linear.pack(w, b)(x)
    exact = x.double() @ w.double().T + (0 if b is None else b.double())
    bound = exact.abs() * 2 ** -8 + (x.double().abs() @ w.double().abs().T) * K * 2 ** -23
    assert y.dtype == torch.bfloat16 and y.shape == (rows, N)
    assert ((y.double() - exact).abs() <= bound).all()


@needs_tiles
@pytest.mark.parametrize("rows", [1, 15, 16, 17, 33])
def test_exact_products_are_f_linears_bit_for_bit(rows):
    """Small integers: every product and partial sum is exact, so any wrong tile, row or column shows."""
    generator = torch.Generator().manual_seed(rows)
    x, w, b = (torch.randint(-4, 5, shape, generator=generator).bfloat16() for shape in ((rows, 128), (192, 128), (192,)))
    x_before = x.clone()
    assert torch.equal(tile_linear.pack(w, b)(x), F.linear(x, w, b))
    assert torch.equal(tile_linear.pack(w)(x.view(1, rows, 128)), F.linear(x, w).view(1, rows, 192))
    assert torch.equal(x, x_before)


@needs_tiles
def test_a_nan_stays_in_its_row():
    x, w, _ = operands(5, 64, 64, False, 0)
    x[2, 7] = float("nan")
    y = tile_linear.pack(w)(x)
    assert y[2].isnan().all() and not y[[0, 1, 3, 4]].isnan().any()


def test_pack_puts_each_weight_where_the_tile_loads_read_it():
    """tiles[g, s, j, r, 2c + e] = W[64g + 16j + c, 32s + 2r + e] for every entry (W holding its own flat index)."""
    N, K = 128, 96
    index = torch.arange(N * K).view(N, K)
    tiles = tile_linear.pack(index).tiles
    assert tiles.shape == (N // 64, K // 32, 4, 16, 32)
    g, s, j, r, c, e = torch.meshgrid(*(torch.arange(n) for n in (N // 64, K // 32, 4, 16, 16, 2)), indexing="ij")
    assert torch.equal(tiles, index[64 * g + 16 * j + c, 32 * s + 2 * r + e].reshape(tiles.shape))


@pytest.mark.parametrize(("N", "K", "dtype", "fits"), [
    (64, 32, torch.bfloat16, True), (960, 576, torch.bfloat16, True), (100, 64, torch.bfloat16, False),
    (64, 48, torch.bfloat16, False), (64, 32, torch.float32, False)])
def test_fits(N, K, dtype, fits):
    assert tile_linear.fits(torch.zeros(N, K, dtype=dtype)) is fits


@needs_tiles
def test_the_engines_linear_takes_the_tiles_only_where_they_apply():
    """q/k/v-like projections concatenated: tiles in bfloat16 (the same numbers as F.linear to its rounding), oneDNN
    or F.linear for a decode batch above `MAX_ROWS` and for a weight the kernel does not take, F.linear under autocast and for an input that is not
    contiguous."""
    torch.manual_seed(0)
    parts = [torch.nn.Linear(64, n, bias=True) for n in (64, 32, 32)]
    linear = _Linear(parts, rows_hint=4, dtype=torch.bfloat16)
    assert linear.tiled is not None and linear.packed is None
    x = torch.randn(4, 1, 64).bfloat16()

    def expected_of(x):
        return torch.cat([F.linear(x, p.weight.bfloat16(), p.bias.bfloat16()) for p in parts], dim=-1)
    expected = expected_of(x)
    torch.testing.assert_close(linear(x), expected, rtol=2 ** -7, atol=1e-2)
    wide = _Linear(parts, rows_hint=tile_linear.MAX_ROWS + 1, dtype=torch.bfloat16)  # a batch above the tiles' rows
    assert wide.tiled is None and (wide.packed is not None) == onednn_support().bf16
    odd = _Linear([torch.nn.Linear(64, 100)], rows_hint=4, dtype=torch.bfloat16)
    assert odd.tiled is None and (odd.packed is not None) == onednn_support().bf16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(linear(x), expected)
    strided = torch.randn(4, 2, 64).bfloat16()[:, :1]
    assert not strided.is_contiguous() and torch.equal(linear(strided), expected_of(strided))


class _Library:
    """A stand-in for the compiled library: Linux's answer to the tile request, and the kernel's return value."""

    def __init__(self, permit: int, result: int) -> None:
        self.permit, self.result = permit, result

    def tile_linear_permit(self) -> int:
        return self.permit

    def tile_linear(self, *args) -> int:
        return self.result


@pytest.mark.parametrize(("permit", "result"), [(-1, 0), (0, -1)], ids=["tiles-refused", "kernel-refuses"])
def test_without_the_tile_permission_or_a_working_kernel_the_engine_keeps_onednn(monkeypatch, permit, result):
    """The probe says no (and nothing raises) when Linux refuses the tile state or the kernel refuses the product;
    `_Linear` then packs for oneDNN."""
    monkeypatch.setattr(native, "library", lambda name: _Library(permit, result))
    tile_linear.tile_linear_works.cache_clear()
    try:
        assert not tile_linear.tile_linear_works()
        linear = _Linear([torch.nn.Linear(64, 64)], rows_hint=4, dtype=torch.bfloat16)
        assert linear.tiled is None and (linear.packed is not None) == onednn_support().bf16
    finally:
        tile_linear.tile_linear_works.cache_clear()

"""The decode engine's bfloat16 projections on Intel AMX tiles (tile_linear.c, `logicrl.engine.native`).

A decode step multiplies a few rows (16 in the RL step) by every weight of the model, so its projections cost
what reading the weights costs. oneDNN's AMX matmul on a pre-packed weight streamed them at 10–20 GB/s for
SmolLM2's shapes at 16 rows on a 2-core Intel Xeon; the compiled kernel, with the weight packed once into the order
its tile loads read (`pack`: one sequential stream per group of 64 output columns), at 17–25 GB/s
(benchmarks/decode_projections.py; docs/performance.md, "The decode projections on AMX tiles, and the SiLU product
compiled"). Same product: float32 accumulation of bfloat16 products, the bias added in float32, one rounding to
bfloat16 (the order of the float32 sum differs).

`TiledWeight` holds the packed weight; `tile_linear_works` is whether the kernel runs here: built for a CPU with
AMX-BF16, the process granted the tile state by Linux, and right on a probe. Where it does not, for other shapes
(K not a multiple of 32, N not a multiple of 64) and for decode batches above `MAX_ROWS` rows, the engine keeps
oneDNN (`logicrl.engine.onednn`).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
from torch import Tensor

from logicrl.engine import native

GROUP, SLICE = 64, 32  # output columns per group of B tiles, K per tile
# the decode batches (rows) up to which the engine packs for the tiles (a batch's prefill then runs on them too):
# oneDNN's time ÷ theirs for SmolLM2's projections, weights from memory, on the 2-core Xeon
# (benchmarks/decode_projections.py --rows R): 1.21–1.67× at 16 rows, 1.08–1.51× at 48, 0.95–1.36× at 64 (the head
# the slower one), 0.83–1.27× at 256
MAX_ROWS = 48


class TiledWeight(NamedTuple):
    """A [N, K] bfloat16 weight in the kernel's tile order, and its bias in float32 (or None)."""

    tiles: Tensor  # [N/64, K/32, 4, 16, 32]
    bias: Tensor | None
    shape: tuple[int, int]  # (N, K)

    def __call__(self, x: Tensor) -> Tensor:
        """x [..., K] bfloat16, contiguous → x·Wᵀ + b [..., N] bfloat16."""
        N, K = self.shape
        rows = x.numel() // K
        y = torch.empty(*x.shape[:-1], N, dtype=torch.bfloat16)
        failed = native.library("tile_linear").tile_linear(
            x.data_ptr(), self.tiles.data_ptr(), None if self.bias is None else self.bias.data_ptr(), y.data_ptr(),
            rows, K, N, torch.get_num_threads())
        if failed:
            raise RuntimeError(f"tile_linear refused a [{rows}, {K}] × [{N}, {K}]ᵀ product")
        return y


def fits(weight: Tensor) -> bool:
    """Whether the kernel takes this weight: bfloat16 [N, K] on the CPU, K a multiple of 32, N of 64."""
    N, K = weight.shape
    return weight.device.type == "cpu" and weight.dtype == torch.bfloat16 and K % SLICE == 0 and N % GROUP == 0


def pack(weight: Tensor, bias: Tensor | None = None) -> TiledWeight:
    """``weight`` [N, K] (`fits`) in tile order: tiles[g, s, j, r, 2c + e] = W[64g + 16j + c, 32s + 2r + e]."""
    N, K = weight.shape
    tiles = weight.detach().reshape(N // GROUP, 4, 16, K // SLICE, 16, 2).permute(0, 3, 1, 4, 2, 5).contiguous()
    return TiledWeight(tiles.view(N // GROUP, K // SLICE, 4, 16, 32),
                       None if bias is None else bias.detach().float().contiguous(), (N, K))


def applies(tiled: TiledWeight, x: Tensor) -> bool:
    """Whether ``tiled`` can take ``x``: a contiguous bfloat16 CPU tensor whose last dimension is K."""
    return (x.dtype == torch.bfloat16 and x.device.type == "cpu" and x.shape[-1] == tiled.shape[1]
            and x.is_contiguous() and x.numel() > 0)


@functools.cache
def tile_linear_works() -> bool:
    """Whether the kernel is built with AMX (`native.library`), Linux lets this process use the tiles, and on small
    integers (every product and sum exact in float32, every result exact in bfloat16) it gives ``F.linear``'s
    result at 3 rows and at 19 (a padded block after a full one), with and without a bias."""
    library = native.library("tile_linear")
    if library is None or library.tile_linear_permit() != 0:
        return False
    generator = torch.Generator().manual_seed(0)
    weight = torch.randint(-3, 4, (128, 64), generator=generator).bfloat16()
    bias = torch.randint(-3, 4, (128,), generator=generator).bfloat16()
    for rows in (3, 19):
        x = torch.randint(-3, 4, (rows, 64), generator=generator).bfloat16()
        for b in (None, bias):
            try:
                if not torch.equal(pack(weight, b)(x), torch.nn.functional.linear(x, weight, b)):
                    return False
            except RuntimeError:  # the kernel refused the product
                return False
    return True

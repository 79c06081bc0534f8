"""The decoder's RMSNorms in training, forward and backward one compiled pass each (rms_norm.c,
`logicrl.engine.native`).

LlamaRMSNorm (the same in Mistral and Qwen2) on float32 hidden states, the residual stream of float32 training and
of bf16 autocast over float32 master weights, with r = 1/sqrt(mean(x²) + ε) per row:

    forward:   y = w · (x · r)
    backward:  g = dy · w,   dx = r · (g − (x·r) · mean(g · x·r)),   dw = Σ_rows dy · (x·r)

Autograd runs the module as eight ops forward (a cast, pow, mean, add, rsqrt, two products, a cast) and about a
dozen backward, each a pass over the whole [rows, E] tensor and most of them a fresh one; SmolLM2 has 61 norms, so
an SFT micro-batch of 4 × 400 tokens made ~1,500 such passes (docs/performance.md, "The norms compiled").

`fused_rms_norms(model)` routes the norms of a Llama-family model through `rms_norm` for good; each call takes the
compiled pass where it applies (a CPU, float32 input and weight, the library built and right on its probe) and
the module's own forward elsewhere (a bfloat16 base under LoRA, a GPU). The compiled results agree with the
module's to float32 rounding: the products are the same, the sums (the mean of squares, the backward's mean and
dw's rows) are added in another order.
"""

from __future__ import annotations

import functools
import types

import torch
from torch import Tensor, nn

from logicrl.engine import native

NORM_CLASSES = ("LlamaRMSNorm", "MistralRMSNorm", "Qwen2RMSNorm")  # w · x / sqrt(mean(x²) + ε), statistics in float32


def plain_rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """LlamaRMSNorm's forward as transformers writes it (statistics in float32, the product in x's dtype)."""
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """`plain_rms_norm`'s value, through the compiled passes (`_RMSNorm`) where they apply."""
    if _applies(x, weight):
        return _RMSNorm.apply(x, weight, eps)
    return plain_rms_norm(x, weight, eps)


def _applies(x: Tensor, weight: Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32 and x.is_contiguous()
            and weight.shape == x.shape[-1:] and weight.is_contiguous() and rms_norm_works())


class _RMSNorm(torch.autograd.Function):
    """`rms_norm` on float32 CPU tensors, one compiled pass forward and one backward (module docstring)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, eps: float) -> Tensor:
        y, rstd = _forward(x, weight, eps)
        ctx.save_for_backward(x, weight, rstd)
        return y

    @staticmethod
    def backward(ctx, dy: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        x, weight, rstd = ctx.saved_tensors
        dx, dw = _backward(x, weight, rstd, dy, with_weight=ctx.needs_input_grad[1])
        return dx if ctx.needs_input_grad[0] else None, dw, None


def _forward(x: Tensor, weight: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """``(y, r)``: the norm of each row of x [..., E] and its 1/sqrt(mean(x²) + ε) [rows], float32."""
    y, rstd = torch.empty_like(x), torch.empty(x.numel() // x.shape[-1], dtype=torch.float32)
    native.library("rms_norm").rms_norm_forward(x.data_ptr(), weight.data_ptr(), eps, y.data_ptr(), rstd.data_ptr(),
                                                len(rstd), x.shape[-1], torch.get_num_threads())
    return y, rstd


def _backward(x: Tensor, weight: Tensor, rstd: Tensor, dy: Tensor, with_weight: bool) -> tuple[Tensor, Tensor | None]:
    """``(dx, dw or None)`` from the forward's x, w and r and the incoming gradient dy; dw is summed from one
    partial sum per block of rows (rms_norm.c), the same bits for any number of threads."""
    dy = dy.to(torch.float32).contiguous()
    dx = torch.empty_like(x)
    dw = torch.empty(x.shape[-1], dtype=torch.float32) if with_weight else None
    if native.library("rms_norm").rms_norm_backward(
            x.data_ptr(), weight.data_ptr(), rstd.data_ptr(), dy.data_ptr(), dx.data_ptr(),
            None if dw is None else dw.data_ptr(), len(rstd), x.shape[-1], torch.get_num_threads()):
        raise MemoryError(f"rms_norm_backward: no memory for the partial sums of {len(rstd)} rows")
    return dx, dw


@functools.cache
def rms_norm_works() -> bool:
    """Whether the library is built (`logicrl.engine.native`) and, on a probe (rows of 37, values across three
    orders of magnitude), gives the module docstring's value and gradients, computed here in float64, to float32
    rounding. (No autograd: the first call may come under ``no_grad`` or inside a torch function mode.)"""
    if native.library("rms_norm") is None:
        return False
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((5, 37), generator=generator) * torch.logspace(-1, 1, 5)[:, None]
    weight, dy = torch.randn(37, generator=generator), torch.randn((5, 37), generator=generator)
    y, rstd = _forward(x, weight, 1e-5)
    ours = y, *_backward(x, weight, rstd, dy, with_weight=True)
    x64, w64, dy64 = x.double(), weight.double(), dy.double()
    r = torch.rsqrt(x64.pow(2).mean(-1, keepdim=True) + 1e-5)
    n, g = x64 * r, dy64 * w64
    dx = r * (g - n * (g * n).mean(-1, keepdim=True))
    expected = w64 * n, dx, (dy64 * n).sum(0)
    return all(torch.allclose(a.double(), b, rtol=1e-5, atol=1e-5) for a, b in zip(ours, expected))


def fused_rms_norms(model: nn.Module) -> int:
    """Route every RMSNorm of ``model`` whose class is one of `NORM_CLASSES` through `rms_norm` (an instance
    ``forward``: the state dict, hooks and saved checkpoints are untouched); return how many. Call it once
    after loading; a module already routed is left as it is."""
    count = 0
    for module in model.modules():
        if type(module).__name__ in NORM_CLASSES and "forward" not in vars(module):
            module.forward = types.MethodType(_norm_forward, module)
            count += 1
    return count


def _norm_forward(self: nn.Module, hidden_states: Tensor) -> Tensor:
    return rms_norm(hidden_states, self.weight, self.variance_epsilon)

"""Linears on oneDNN (CPU): torch's private mkldnn ops, probed once, with ``F.linear`` as the fallback.

Why: this PyTorch's MKL takes a slow path on AMD CPUs (≈ 95 GFLOP/s per core here, oneDNN ≈ 210;
docs/performance.md, "Why oneDNN"). Two routes use it:

- `_Linear`, the projections of the fast decode engine: one or several ``nn.Linear`` that read the same
  input (q/k/v, gate/up), their weights concatenated and pre-packed for oneDNN once
  (``_reorder_linear_weight``): ≈ 2–3× the default BLAS for generation.
- `onednn_linears(model)`, for the log-prob passes: every ``F.linear`` goes to `_OneDNNLinear`, oneDNN
  matmuls forward and backward on the plain weights (they change every step): the SmolLM2 forward +
  backward of 16 × 368 tokens runs 1.7× faster.

The ops (``torch.ops.mkldnn._linear_pointwise``, ``_reorder_linear_weight``, ``_is_mkldnn_bf16_supported``)
are private and may change or vanish in any release. `onednn_support` tries them once on a tiny product;
where they are missing, raise or give a wrong number, both routes run plain ``F.linear`` (the same
results, at BLAS speed). Both also step aside under autocast and when the input's dtype is not the
weight's (oneDNN's inner product has no mixed-dtype primitive: "could not create a primitive descriptor"),
so that they compute what ``F.linear`` would.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode

from logicrl.engine import tile_linear
from logicrl.engine.linears import weight_and_bias

# what a missing op (AttributeError), a changed signature (TypeError) or an unsupported CPU raises
_PROBE_ERRORS = (AttributeError, TypeError, RuntimeError, NotImplementedError)


class OneDNNSupport(NamedTuple):
    """What `onednn_support` found: the linear ops work on float32 (``linear``) and on bfloat16 (``bf16``)."""

    linear: bool
    bf16: bool


@functools.cache
def onednn_support() -> OneDNNSupport:
    """Whether this PyTorch's oneDNN linear ops work, tried once per process on a tiny product."""
    if not torch.backends.mkldnn.is_available():
        return OneDNNSupport(linear=False, bf16=False)
    return OneDNNSupport(linear=_ops_work(torch.float32), bf16=_ops_work(torch.bfloat16))


def _ops_work(dtype: torch.dtype) -> bool:
    """Whether `_onednn` gives ``F.linear``'s result in ``dtype``, with a packed and with a plain weight.
    Small integers keep every product exact in bfloat16 too, so the results must be equal."""
    try:
        if dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
        generator = torch.Generator().manual_seed(0)
        x, weight, bias = (torch.randint(-3, 4, shape, generator=generator).to(dtype)
                           for shape in ((2, 8), (3, 8), (3,)))
        expected = F.linear(x, weight, bias)
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, 2)
        return all(torch.equal(_onednn(x, w, bias), expected) for w in (packed, weight))
    except _PROBE_ERRORS:
        return False


def _onednn(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x [..., K] · weight [N, K]ᵀ + bias on oneDNN (weight plain or packed) → [..., N]."""
    y = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, x.shape[-1]), weight, bias, "none", [], "")
    return y.view(*x.shape[:-1], y.shape[-1])


class _Linear:
    """``y = x Wᵀ + b`` for one or several projections that read the same input (outputs concatenated).

    The weights are taken in ``dtype`` (default: the module's): a copy made once here when it differs,
    so a decode step casts no weight. On CPU they are also concatenated and packed once: for the AMX
    kernel in bfloat16 where it runs and ``rows_hint`` (the decode batch) is at most
    `logicrl.engine.tile_linear.MAX_ROWS`, else for oneDNN (float32, or bfloat16 where oneDNN supports
    it); elsewhere, and for an input of another dtype or under autocast, each projection is a plain
    ``F.linear`` on those weights (the module's own when the dtype is theirs: no copy).
    """

    def __init__(self, linears: Sequence[torch.nn.Module], rows_hint: int,
                 dtype: torch.dtype | None = None) -> None:
        self.parts = [tuple(None if t is None else t.to(dtype or t.dtype) for t in weight_and_bias(m))
                      for m in linears]  # (weight, bias) per projection; .to() copies only to another dtype
        weight, self.packed, self.tiled, self.dtype = self.parts[0][0], None, None, None
        if weight.device.type != "cpu":
            return
        support = onednn_support()
        tiles = weight.dtype == torch.bfloat16 and rows_hint <= tile_linear.MAX_ROWS and tile_linear.tile_linear_works()
        onednn = support.linear if weight.dtype == torch.float32 else weight.dtype == torch.bfloat16 and support.bf16
        if tiles or onednn:
            weight, bias = (None if t[0] is None else torch.cat(t) for t in zip(*self.parts))
            self.dtype = weight.dtype
            if tiles and tile_linear.fits(weight):
                self.tiled = tile_linear.pack(weight, bias)
            elif onednn:
                self.packed = (torch.ops.mkldnn._reorder_linear_weight(weight, rows_hint), bias)

    def __call__(self, x: Tensor) -> Tensor:
        if x.dtype == self.dtype and not torch.is_autocast_enabled("cpu"):
            if self.tiled is not None and tile_linear.applies(self.tiled, x):
                return self.tiled(x)
            if self.packed is not None:
                return _onednn(x, *self.packed)
        outs = [F.linear(x, w, b) for w, b in self.parts]
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)


class _OneDNNLinear(torch.autograd.Function):
    """``F.linear`` with oneDNN matmuls both ways: y = x·Wᵀ + b; dx = dy·W, dW = dyᵀ·x, db = Σ dy."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, weight = ctx.saved_tensors
        rows = grad.reshape(-1, grad.shape[-1])
        dx = _onednn(grad, weight.t().contiguous()).view(x.shape) if ctx.needs_input_grad[0] else None
        dw = _onednn(rows.t().contiguous(), x.reshape(-1, x.shape[-1]).t().contiguous()) \
            if ctx.needs_input_grad[1] else None
        db = rows.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return dx, dw, db


class _OneDNNLinearMode(TorchFunctionMode):
    """Routes ``F.linear`` on CPU float32 tensors outside autocast to `_OneDNNLinear`; every other call
    runs unchanged."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear:
            x, weight = args[0], args[1]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            fp32 = x.dtype == weight.dtype == torch.float32 and (bias is None or bias.dtype == torch.float32)
            if x.device.type == "cpu" and fp32 and not torch.is_autocast_enabled("cpu"):
                return _OneDNNLinear.apply(x, weight, bias)
        return func(*args, **kwargs)


def onednn_linears(model) -> contextlib.AbstractContextManager:
    """A context in which ``model``'s linears run on oneDNN (forward and backward), if the model is on CPU
    in float32 and `onednn_support` found the ops working; otherwise a no-op context. Works with grad on
    or off."""
    weight = next(model.parameters())
    usable = weight.device.type == "cpu" and weight.dtype == torch.float32 and onednn_support().linear
    return _OneDNNLinearMode() if usable else contextlib.nullcontext()

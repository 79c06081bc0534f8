"""The decode step's elementwise work between its projections, one compiled call each (decode_elementwise.c,
`logicrl.engine.native`) where PyTorch runs a dozen small ops of a few microseconds: at 16 rows of SmolLM2-135M
those ops were about a quarter of a bfloat16 decode step (docs/performance.md, "Compiled decode step").

* `add_norm`: the residual add and the RMSNorm after it (`RMSNorm`), ``y = x + δ``,
  ``h = w · y / sqrt(mean(y²) + ε)`` (LlamaRMSNorm: statistics in float32, the product with the weight in the dtype);
* `rotary_into_cache`: ``rot(u) = u·cos + rotate_half(u)·sin`` on the new token's queries and keys (transformers'
  ``apply_rotary_pos_emb``), the rotated keys and the values written into the row's cache slot;
* `silu_mul`: the gated MLP's ``silu(gate) · up`` (``act_fn(gate_proj(x)) * up_proj(x)``) from the gate/up
  projection's output, where PyTorch runs a chunk, the activation and the product.

Where a call does not apply (the library not built or wrong on its probe, not a CPU tensor, a dtype other than
float32 and bfloat16, other shapes or layouts), each function runs those PyTorch ops itself. The compiled results
are the ops' results in the same dtype, rounded where they round: bit for bit for the rotary, for the norm but
for the order of the float32 sum of squares, and for the SiLU but for float32 rounding of its exp (another
polynomial than PyTorch's) and of its quotient.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from logicrl.engine import native

_DTYPES = (torch.float32, torch.bfloat16)


class RMSNorm(NamedTuple):
    """``LlamaRMSNorm`` (the same in Qwen2 and Mistral) with its weight in the engine's dtype:
    ``w · x / sqrt(mean(x²) + eps)``, the statistics in float32, the product in x's dtype."""

    weight: Tensor
    eps: float

    @classmethod
    def of(cls, norm: torch.nn.Module, dtype: torch.dtype) -> RMSNorm:
        return cls(norm.weight.detach().to(dtype), norm.variance_epsilon)

    def __call__(self, x: Tensor) -> Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def _applies(*tensors: Tensor) -> bool:
    """All on the CPU, contiguous, in one dtype the kernels take, and the kernels built and right."""
    dtype = tensors[0].dtype
    return (all(t.device.type == "cpu" and t.dtype == dtype and t.is_contiguous() for t in tensors)
            and fused_works(dtype))


def add_norm(x: Tensor, delta: Tensor | None, norm: RMSNorm) -> tuple[Tensor, Tensor]:
    """``(y, norm(y))`` for x [..., E], y = x + delta (x itself when delta is None): one compiled call where it
    applies, else the PyTorch ops."""
    if (norm.weight.shape == x.shape[-1:] and (delta is None or delta.shape == x.shape)
            and _applies(x, norm.weight, *(() if delta is None else (delta,)))):
        return _run_add_norm(x, delta, norm)
    y = x if delta is None else x + delta
    return y, norm(y)


def _run_add_norm(x: Tensor, delta: Tensor | None, norm: RMSNorm) -> tuple[Tensor, Tensor]:
    y = x if delta is None else torch.empty_like(x)
    h = torch.empty_like(x)
    native.library("decode_elementwise").add_rms_norm(
        x.data_ptr(), None if delta is None else delta.data_ptr(), y.data_ptr(), norm.weight.data_ptr(), norm.eps,
        h.data_ptr(), x.numel() // x.shape[-1], x.shape[-1], int(x.dtype == torch.bfloat16))
    return y, h


def rotary_into_cache(qkv: Tensor, cos: Tensor, sin: Tensor, key_slot: Tensor, value_slot: Tensor, heads: int,
                      kv_heads: int) -> Tensor:
    """The new token's rotated queries q [B, heads, 1, D] from its projections qkv [B, 1, (heads + 2·kv_heads)·D]
    (queries, keys, values) and ``cos``, ``sin`` [B, 1, D]; the rotated keys and the values are written into
    ``key_slot``, ``value_slot`` [B, kv_heads, D] (views into the cache). One compiled call where it applies
    (these shapes exactly, rows of D contiguous, both slots with the same strides), else transformers'
    ``apply_rotary_pos_emb``."""
    B, D = qkv.shape[0], key_slot.shape[-1]
    if (_applies(qkv, cos, sin) and cos.shape == sin.shape == (B, 1, D)
            and qkv.shape == (B, 1, (heads + 2 * kv_heads) * D) and key_slot.dtype == qkv.dtype
            and key_slot.shape == value_slot.shape == (B, kv_heads, D) and key_slot.stride() == value_slot.stride()
            and key_slot.stride(-1) == 1 and D % 2 == 0):
        return _run_rotary_into_cache(qkv, cos, sin, key_slot, value_slot, heads, kv_heads)
    q, k, v = split_heads(qkv, heads, kv_heads, D)
    q, k = apply_rotary()(q, k, cos, sin)
    key_slot.copy_(k[:, :, 0])
    value_slot.copy_(v[:, :, 0])
    return q


def gated_mlp(act: torch.nn.Module) -> Callable[[Tensor], Tensor]:
    """The product ``act(gate) · up`` of a gated MLP, as a function of the gate/up projection's output
    [..., 2I] = [gate | up]: `silu_mul` where ``act`` is SiLU (PyTorch's module or transformers'), else
    ``act`` and the product as PyTorch ops."""
    from transformers import activations

    if isinstance(act, (torch.nn.SiLU, getattr(activations, "SiLUActivation", torch.nn.SiLU))):
        return silu_mul

    def product(gate_up: Tensor) -> Tensor:
        gate, up = gate_up.chunk(2, dim=-1)
        return act(gate) * up
    return product


def silu_mul(gate_up: Tensor) -> Tensor:
    """``silu(gate) · up`` [..., I] for gate_up [..., 2I] = [gate | up], each op in its dtype: one compiled call where
    it applies, else the PyTorch ops."""
    if _applies(gate_up) and gate_up.shape[-1] > 0 and gate_up.shape[-1] % 2 == 0:
        return _run_silu_mul(gate_up)
    gate, up = gate_up.chunk(2, dim=-1)
    return F.silu(gate) * up


def _run_silu_mul(gate_up: Tensor) -> Tensor:
    width = gate_up.shape[-1] // 2
    out = torch.empty(*gate_up.shape[:-1], width, dtype=gate_up.dtype)
    native.library("decode_elementwise").silu_mul(gate_up.data_ptr(), out.data_ptr(), gate_up.numel() // (2 * width),
                                                  width, int(gate_up.dtype == torch.bfloat16))
    return out


def split_heads(qkv: Tensor, heads: int, kv_heads: int, head_dim: int) -> tuple[Tensor, Tensor, Tensor]:
    """qkv [B, S, (heads + 2·kv_heads)·D] → q [B, heads, S, D], k and v [B, kv_heads, S, D] (views)."""
    B, S, _ = qkv.shape
    q, k, v = qkv.split([heads * head_dim, kv_heads * head_dim, kv_heads * head_dim], dim=-1)
    return tuple(t.view(B, S, -1, head_dim).transpose(1, 2) for t in (q, k, v))


def apply_rotary():
    """transformers' ``apply_rotary_pos_emb`` (Llama's; Qwen2's and Mistral's are the same function), imported
    when first needed."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    return apply_rotary_pos_emb


def _run_rotary_into_cache(qkv: Tensor, cos: Tensor, sin: Tensor, key_slot: Tensor, value_slot: Tensor,
                           heads: int, kv_heads: int) -> Tensor:
    B, D = qkv.shape[0], key_slot.shape[-1]
    q = torch.empty(B, heads, 1, D, dtype=qkv.dtype)
    native.library("decode_elementwise").rotary_into_cache(
        qkv.data_ptr(), qkv.shape[-1], cos.data_ptr(), sin.data_ptr(), q.data_ptr(), key_slot.data_ptr(),
        value_slot.data_ptr(), key_slot.stride(0), key_slot.stride(1), B, heads, kv_heads, D,
        int(qkv.dtype == torch.bfloat16))
    return q


@functools.cache
def fused_works(dtype: torch.dtype) -> bool:
    """Whether the library is built (`logicrl.engine.native`) and, on a probe in ``dtype``, the rotary matches
    transformers' bit for bit (the cache slots beside the written one untouched), the norm `RMSNorm` to float32
    rounding of its statistics, with and without the residual add, and the SiLU product PyTorch's ops to the
    same tolerance."""
    if dtype not in _DTYPES or native.library("decode_elementwise") is None:
        return False
    generator = torch.Generator().manual_seed(0)
    B, H, H_kv, D, E = 3, 4, 2, 16, 40
    qkv = torch.randn((B, 1, (H + 2 * H_kv) * D), generator=generator).to(dtype)
    angles = torch.rand((B, 1, D // 2), generator=generator) * 6
    cos, sin = (torch.cat([f(angles)] * 2, dim=-1).to(dtype) for f in (torch.cos, torch.sin))
    cache = torch.zeros(2, B, H_kv, 5, D, dtype=dtype)
    q = _run_rotary_into_cache(qkv, cos, sin, cache[0, :, :, 2], cache[1, :, :, 2], H, H_kv)
    q_ref, k, v = split_heads(qkv, H, H_kv, D)
    q_ref, k = apply_rotary()(q_ref, k, cos, sin)
    others = cache[:, :, :, [0, 1, 3, 4]]
    if not (torch.equal(q, q_ref) and torch.equal(cache[0, :, :, 2], k[:, :, 0])
            and torch.equal(cache[1, :, :, 2], v[:, :, 0]) and not others.any()):
        return False
    x, delta = (torch.randn((B, 1, E), generator=generator).to(dtype) for _ in range(2))
    norm = RMSNorm((torch.rand(E, generator=generator) + 0.5).to(dtype), 1e-5)
    tolerance = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 0.02, "rtol": 0.01}
    for d in (None, delta):
        (y, h), y_ref = _run_add_norm(x, d, norm), x if d is None else x + d
        if not (torch.equal(y, y_ref) and torch.allclose(h.float(), norm(y_ref).float(), **tolerance)):
            return False
    gate_up = torch.randn((B, 1, 2 * E), generator=generator).mul(4).to(dtype)
    gate, up = gate_up.chunk(2, dim=-1)
    return torch.allclose(_run_silu_mul(gate_up).float(), (F.silu(gate) * up).float(), **tolerance)

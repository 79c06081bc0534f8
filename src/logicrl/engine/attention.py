"""Decode-step attention over two key sets, merged by their log-sum-exps.

The fast engine's decode step attends from each row's new query to two caches: the keys that every row shares
(the prompts' common prefix, stored once) and the row's own keys (the rest of its prompt, then its response).
Each set gives its softmax-weighted values o and the log-sum-exp ℓ = log Σ_j exp(s_j) of each query's scores
(`attend`), and the two results merge exactly:

    softmax over A ∪ B, times V  =  w·o_A + (1 − w)·o_B,   w = exp(ℓ_A) / (exp(ℓ_A) + exp(ℓ_B)) = σ(ℓ_A − ℓ_B)

On a CPU, `attend` runs PyTorch's CPU flash-attention kernel (the one under ``F.scaled_dot_product_attention``,
called directly because it also returns ℓ); against batched matmuls (scores, softmax, weights·V) one decode
step's attention took 0.67–0.95× the time in float32 and bfloat16 caches, and 0.59× at 4,000 response keys in
bfloat16 (docs/performance.md), where reading the caches is the step's cost. The kernel is a private op:
`cpu_flash_works` tries it once per dtype, and `attend` uses the matmuls where it fails (and on other devices).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

_PROBE_ERRORS = (RuntimeError, AttributeError, TypeError, NotImplementedError)


def flash_attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, scale: float) -> tuple[Tensor, Tensor]:
    """``(softmax(q·kᵀ·scale + bias)·v [B, H, L, D], ℓ [B, H, L] in float32)`` for q [B, H, L, D], k and v
    [B, H, S, D], an additive ``bias`` broadcastable to [B, H, L, S] (−inf hides a key), no causal mask."""
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, False, attn_mask=bias,
                                                                          scale=scale)
    return out, lse


def matmul_attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, scale: float) -> tuple[Tensor, Tensor]:
    """`flash_attention`'s result from batched matmuls: scores ``s = (q·scale)·kᵀ (+ bias)``, ℓ = logsumexp(s)
    and the output ``exp(s − ℓ)·v``; the softmax in float32, the products in q's dtype."""
    scores = ((q * scale) @ k.transpose(-1, -2)).float()
    if bias is not None:
        scores = scores + bias
    lse = scores.logsumexp(-1)
    return torch.exp(scores - lse.unsqueeze(-1)).to(v.dtype) @ v, lse


def attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, scale: float) -> tuple[Tensor, Tensor]:
    """``(softmax(q·kᵀ·scale + bias)·v, ℓ)`` as in `flash_attention`: its kernel on a CPU where it works for
    q's dtype, else `matmul_attention`."""
    if q.device.type == "cpu" and cpu_flash_works(q.dtype):
        return flash_attention(q, k, v, bias, scale)
    return matmul_attention(q, k, v, bias, scale)


def merge_attention(out_a: Tensor, lse_a: Tensor, out_b: Tensor, lse_b: Tensor) -> Tensor:
    """The attention over key sets A ∪ B from each set's output [..., D] and log-sum-exp [...] (module
    docstring); in float32."""
    weight = torch.sigmoid(lse_a - lse_b).unsqueeze(-1)
    out_b = out_b.float()
    return out_b + weight * (out_a.float() - out_b)


@functools.cache
def cpu_flash_works(dtype: torch.dtype) -> bool:
    """Whether `flash_attention` runs on this PyTorch's CPU in ``dtype`` and, merged over two key sets (one with
    a hidden key), matches a plain softmax over their union computed in float64."""
    try:
        generator = torch.Generator().manual_seed(0)
        q, k_a, v_a = (torch.randn(shape, generator=generator) for shape in ((2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 8)))
        k_b, v_b = (torch.randn((2, 3, 6, 8), generator=generator) for _ in range(2))
        bias = torch.zeros(2, 1, 1, 5)
        bias[:, :, :, 0] = float("-inf")
        out_a, lse_a = flash_attention(q.to(dtype), k_a.to(dtype), v_a.to(dtype), bias.to(dtype), 0.35)
        out_b, lse_b = flash_attention(q.to(dtype), k_b.to(dtype), v_b.to(dtype), None, 0.35)
        merged = merge_attention(out_a, lse_a, out_b, lse_b)
        scores = torch.cat([q.double() @ k_a.double().transpose(-1, -2) * 0.35 + bias.double(),
                            q.double() @ k_b.double().transpose(-1, -2) * 0.35], dim=-1)
        expected = torch.softmax(scores, dim=-1) @ torch.cat([v_a, v_b], dim=2).double()
        tolerance = 1e-5 if dtype == torch.float32 else 5e-2
        return bool(torch.allclose(merged.double(), expected, atol=tolerance, rtol=0))
    except _PROBE_ERRORS:
        return False

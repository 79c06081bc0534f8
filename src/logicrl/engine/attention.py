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

Faster still on a CPU with AVX-512, `native_attention` runs both key sets in one pass of a compiled kernel
(`logicrl.engine.native`, decode_attention.c): no second call, no merge, and no log-sum-exp to return; the engine
uses it where `native_attention_works` (built, and right on a probe) and keeps the two calls elsewhere.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from logicrl.engine import native

_PROBE_ERRORS = (RuntimeError, AttributeError, TypeError, NotImplementedError)
_NATIVE_DTYPES = (torch.float32, torch.bfloat16)


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


def attend_both(q: Tensor, common: tuple[Tensor, Tensor] | None, keys: Tensor, values: Tensor, bias: Tensor | None,
                scale: float) -> Tensor:
    """`native_attention`'s result [B, H, G, D] without the compiled kernel: `attend` over the rows' own keys, then
    (when there are common keys) over the common keys with the queries of every row as one batch
    ``[1, H, B·G, D]``, so those keys are read once, not once per row, and the two merged (`merge_attention`,
    float32); without common keys the output stays in q's dtype."""
    B, H, _, D = q.shape
    out, lse = attend(q, keys, values, bias, scale)
    if common is None:
        return out
    common_out, common_lse = attend(q.transpose(0, 1).reshape(1, H, -1, D), *common, None, scale)
    return merge_attention(common_out.view(H, B, -1, D).transpose(0, 1), common_lse.view(H, B, -1).transpose(0, 1),
                           out, lse)


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
        expected = reference_attention(q, [(k_a, v_a, bias), (k_b, v_b, None)], 0.35)
        tolerance = 1e-5 if dtype == torch.float32 else 5e-2
        return bool(torch.allclose(merged.double(), expected, atol=tolerance, rtol=0))
    except _PROBE_ERRORS:
        return False


def reference_attention(q: Tensor, key_sets: list[tuple[Tensor, Tensor, Tensor | None]], scale: float) -> Tensor:
    """``softmax(q·kᵀ·scale + bias)·v`` over the union of ``key_sets`` (each ``(k, v, bias or None)``, k and v
    [..., S_i, D] broadcastable to q [..., L, D]), in float64: what the kernels here are checked against."""
    scores = torch.cat([q.double() @ k.double().transpose(-1, -2) * scale + (0 if bias is None else bias.double())
                        for k, _, bias in key_sets], dim=-1)
    batch = scores.shape[:-2]
    values = torch.cat([v.double().expand(*batch, *v.shape[-2:]) for _, v, _ in key_sets], dim=-2)
    return torch.softmax(scores, dim=-1) @ values


def native_attention(q: Tensor, common: tuple[Tensor, Tensor] | None, keys: Tensor, values: Tensor,
                     bias: Tensor | None, scale: float) -> Tensor | None:
    """``softmax(q·[Kc; Ko]ᵀ·scale + [0, bias])·[Vc; Vo]`` [B, H, G, D] in float32, from the compiled kernel in one
    pass, for the decode step's grouped queries q [B, H, G, D] (G query heads per KV head), the keys every row
    shares ``common`` = (Kc, Vc) [1, H, C, D] (or None) and each row's own keys Ko, Vo [B, H, T, D] (rows of D
    contiguous), ``bias`` None or [B, 1, 1, T]. None where the kernel does not apply: not built or wrong on its
    probe (`native_attention_works`), not on a CPU, a dtype other than float32 and bfloat16 (or mixed), G > 8,
    D not a multiple of 16 up to 256, or another layout."""
    B, H, G, D = q.shape
    tensors = [q, keys, values, *(common or ()), *(() if bias is None else (bias,))]
    if not (q.device.type == "cpu" and all(t.dtype == q.dtype for t in tensors) and 1 <= G <= 8
            and D % 16 == 0 and D <= 256 and keys.shape == values.shape and keys.shape[:2] == (B, H)
            and keys.shape[3] == D and keys.stride() == values.stride() and keys.stride()[2:] == (D, 1)
            and (common is None or common[0].shape == common[1].shape and common[0].shape[:2] == (1, H)
                 and common[0].shape[3] == D)
            and (bias is None or (bias.shape == (B, 1, 1, keys.shape[2]) and bias.stride(3) == 1))
            and native_attention_works(q.dtype)):
        return None
    return _run_native(q, common, keys, values, bias, scale)


def _run_native(q: Tensor, common: tuple[Tensor, Tensor] | None, keys: Tensor, values: Tensor,
                bias: Tensor | None, scale: float) -> Tensor | None:
    """`native_attention` without its checks (the kernel's own bounds aside: None when it refuses the shape)."""
    B, H, G, D = q.shape
    q = q.contiguous()
    common_keys, common_values = (None, None) if common is None else (t.contiguous() for t in common)
    common_args = (None, None, 0) if common is None else (
        common_keys.data_ptr(), common_values.data_ptr(), common_keys.shape[2])
    out = torch.empty(B, H, G, D, dtype=torch.float32)
    failed = native.library("decode_attention").decode_attention(
        q.data_ptr(), *common_args, keys.data_ptr(), values.data_ptr(), keys.shape[2], keys.stride(0),
        keys.stride(1), *((None, 0) if bias is None else (bias.data_ptr(), bias.stride(0))), scale,
        out.data_ptr(), B, H, G, D, int(q.dtype == torch.bfloat16), torch.get_num_threads())
    return None if failed else out


@functools.cache
def native_attention_works(dtype: torch.dtype) -> bool:
    """Whether the compiled kernel is built (`logicrl.engine.native`) and matches `reference_attention` in
    ``dtype`` on a probe: grouped queries, common keys, own keys in a wider cache behind a bias that hides one,
    at a head size the kernel unrolls (64) and one it does not (16)."""
    if dtype not in _NATIVE_DTYPES or native.library("decode_attention") is None:
        return False
    generator = torch.Generator().manual_seed(0)
    for G, D in ((3, 64), (2, 16)):
        q = torch.randn((2, 3, G, D), generator=generator).to(dtype)
        common = tuple(torch.randn((1, 3, 5, D), generator=generator).to(dtype) for _ in range(2))
        cache = torch.randn((2, 2, 3, 9, D), generator=generator).to(dtype)
        bias = torch.zeros(2, 1, 1, 7, dtype=dtype)
        bias[0, ..., 0] = float("-inf")
        keys, values = cache[0, :, :, :7], cache[1, :, :, :7]
        out = _run_native(q, common, keys, values, bias, 0.35)
        expected = reference_attention(q, [(*common, None), (keys, values, bias)], 0.35)
        if out is None or not torch.allclose(out.double(), expected, atol=1e-5, rtol=0):
            return False
    return True

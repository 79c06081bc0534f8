"""The fused head's work on one chunk of logits [n, V] (`logicrl.engine.logprobs._FusedHead`): its log-softmax
statistics in the forward and the gradient with respect to the logits in the backward. With z = logits/τ (divided
in the logits' dtype), read in float32, and p = exp(z − lse):

* `softmax_stats`: lse = log Σ_v exp(z_v), ℓ = z_token − lse, H = lse − Σ_v p_v·z_v;
* `logit_grads`: g_v = (−p_v·gℓ + 1[v = token]·gℓ − gH·p_v·(log p_v + H)) / τ  (∂ℓ/∂z and ∂H/∂z in closed form).

One compiled call each (head_softmax.c, `logicrl.engine.native`) where it applies — a CPU, float32 or bfloat16
logits, the library built and right on its probe — else PyTorch's ops, which over a [512, 49,152] chunk are ten
passes over 100 MB float32 tensors, each freshly allocated: on a 2-core Xeon they were ≈ 1.3 s of the 1.8 s that
the fused head took for 2,400 tokens, forward and backward (docs/performance.md, "The head's softmax compiled").
The compiled results agree with the ops' to float32 rounding (another exp, another order of the sums).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from logicrl.engine import native

_DTYPES = (torch.float32, torch.bfloat16)


def _applies(logits: Tensor, out_dtype: torch.dtype = torch.float32) -> bool:
    return (logits.device.type == "cpu" and logits.dtype in _DTYPES and out_dtype in _DTYPES
            and logits.dim() == 2 and logits.is_contiguous() and head_softmax_works())


def softmax_stats(logits: Tensor, tokens: Tensor, temperature: float, with_entropy: bool
                  ) -> tuple[Tensor, Tensor, Tensor | None]:
    """``(lse, logp, entropy or None)`` [n] in float32 of ``logits`` [n, V] and ``tokens`` [n] (module docstring)."""
    return (_native_stats if _applies(logits) else _torch_stats)(logits, tokens, temperature, with_entropy)


def logit_grads(logits: Tensor, tokens: Tensor, temperature: float, lse: Tensor, entropy: Tensor,
                grad_logp: Tensor, grad_entropy: Tensor | None, out_dtype: torch.dtype, out: Tensor | None = None
                ) -> Tensor:
    """∂loss/∂logits [n, V] in ``out_dtype`` from the forward's ``lse`` and ``entropy`` [n] and the incoming
    gradients of ℓ and H [n] (``grad_entropy`` None: H is not in the loss). ``out``: a buffer of at least n rows
    (not ``logits``) that the compiled pass writes into; PyTorch's ops return a new tensor."""
    if _applies(logits, out_dtype):
        return _native_grads(logits, tokens, temperature, lse, entropy, grad_logp, grad_entropy, out_dtype, out)
    return _torch_grads(logits, tokens, temperature, lse, entropy, grad_logp, grad_entropy, out_dtype)


def _torch_stats(logits: Tensor, tokens: Tensor, temperature: float, with_entropy: bool
                 ) -> tuple[Tensor, Tensor, Tensor | None]:
    z = (logits / temperature if temperature != 1.0 else logits).float()
    lse = torch.logsumexp(z, dim=-1)
    logp = z.gather(-1, tokens[:, None])[:, 0] - lse
    entropy = lse - (torch.exp(z - lse[:, None]) * z).nansum(-1) if with_entropy else None  # 0·(−inf) → 0
    return lse, logp, entropy


def _torch_grads(logits: Tensor, tokens: Tensor, temperature: float, lse: Tensor, entropy: Tensor,
                 grad_logp: Tensor, grad_entropy: Tensor | None, out_dtype: torch.dtype) -> Tensor:
    z = (logits / temperature if temperature != 1.0 else logits).float()
    log_p = z - lse[:, None]
    p = torch.exp(log_p)
    grad = p * -grad_logp[:, None]
    grad.scatter_add_(-1, tokens[:, None], grad_logp[:, None])
    if grad_entropy is not None and bool(grad_entropy.any()):
        grad -= grad_entropy[:, None] * p * (torch.where(p > 0, log_p, 0.0) + entropy[:, None])
    if temperature != 1.0:
        grad /= temperature
    return grad.to(out_dtype)


def _native_stats(logits: Tensor, tokens: Tensor, temperature: float, with_entropy: bool
                  ) -> tuple[Tensor, Tensor, Tensor | None]:
    n, vocabulary = logits.shape
    tokens = tokens.to(torch.int64).contiguous()
    lse, logp = (torch.empty(n, dtype=torch.float32) for _ in range(2))
    entropy = torch.empty(n, dtype=torch.float32) if with_entropy else None
    native.library("head_softmax").head_forward(
        logits.data_ptr(), n, vocabulary, tokens.data_ptr(), temperature, lse.data_ptr(), logp.data_ptr(),
        None if entropy is None else entropy.data_ptr(), torch.get_num_threads(), int(logits.dtype == torch.bfloat16))
    return lse, logp, entropy


def _native_grads(logits: Tensor, tokens: Tensor, temperature: float, lse: Tensor, entropy: Tensor,
                  grad_logp: Tensor, grad_entropy: Tensor | None, out_dtype: torch.dtype, out: Tensor | None = None
                  ) -> Tensor:
    n, vocabulary = logits.shape
    tokens = tokens.to(torch.int64).contiguous()
    vectors = [v.to(torch.float32).contiguous() for v in (lse, entropy, grad_logp)]
    grad_entropy = None if grad_entropy is None else grad_entropy.to(torch.float32).contiguous()
    usable = (out is not None and out.dtype == out_dtype and out.is_contiguous() and len(out) >= n
              and out.shape[1:] == (vocabulary,))
    grad = out[:n] if usable else torch.empty((n, vocabulary), dtype=out_dtype)
    native.library("head_softmax").head_backward(
        logits.data_ptr(), n, vocabulary, tokens.data_ptr(), temperature, *(v.data_ptr() for v in vectors),
        None if grad_entropy is None else grad_entropy.data_ptr(), grad.data_ptr(), torch.get_num_threads(),
        int(logits.dtype == torch.bfloat16), int(out_dtype == torch.bfloat16))
    return grad


@functools.cache
def head_softmax_works() -> bool:
    """Whether the library is built (`logicrl.engine.native`) and, on a probe (float32 and bfloat16 logits, τ = 1
    and 0.7, a masked −inf logit, a vocabulary that is not a multiple of 16), agrees with PyTorch's ops (to 1e-4 on
    the statistics: PyTorch's H loses more than float32 rounding to cancellation on a peaked row)."""
    if native.library("head_softmax") is None:
        return False
    generator = torch.Generator().manual_seed(0)
    n, vocabulary = 5, 37
    raw = torch.randn((n, vocabulary), generator=generator) * 4
    raw[1, 3] = float("-inf")
    tokens = torch.randint(0, vocabulary, (n,), generator=generator)
    grad_logp, grad_entropy = torch.randn(n, generator=generator), torch.randn(n, generator=generator)
    for dtype in _DTYPES:
        for temperature in (1.0, 0.7):
            logits = raw.to(dtype)
            stats, reference = (f(logits, tokens, temperature, True) for f in (_native_stats, _torch_stats))
            if not all(torch.allclose(a, b, rtol=1e-4, atol=1e-4) for a, b in zip(stats, reference)):
                return False
            lse, _, entropy = reference
            grads, expected = (f(logits, tokens, temperature, lse, entropy, grad_logp, grad_entropy, torch.float32)
                               for f in (_native_grads, _torch_grads))
            if not torch.allclose(grads, expected, rtol=1e-5, atol=1e-6):
                return False
    return True

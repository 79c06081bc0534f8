"""Sparse gradients for an input embedding tied to the output head (SmolLM2, Qwen2.5-0.5B, the tiny model).

The tied weight W [V, D] gets ∂L/∂W = ∂L/∂W|head + Σ_t e_{x_t} (∂L/∂h⁰_t)ᵀ: the head's term is dense, the
embedding's touches only the rows of the batch's tokens. ``nn.Embedding``'s dense backward writes that second
term into a zeroed [V, D] tensor (113 MB for SmolLM2's 49,152 × 576), which autograd then adds to the head's.
With ``sparse=True`` it hands autograd the rows alone, and autograd adds them into the head's dense gradient:
the parameter's ``.grad`` stays a dense tensor (fused AdamW and ``clip_grad_norm_`` take it as before) and
holds the same sum, up to the order of float additions. An untied embedding is left alone: its ``.grad``
would become sparse.
"""

from __future__ import annotations

from torch import nn


def sparse_tied_embedding_grad(model: nn.Module) -> bool:
    """Switch ``model``'s input embedding to sparse gradients when it is an ``nn.Embedding`` whose trainable
    weight is also the output head's (see the module docstring); return whether it did."""
    embedding, head = model.get_input_embeddings(), model.get_output_embeddings()
    tied = (isinstance(embedding, nn.Embedding) and head is not None and embedding.weight is head.weight
            and embedding.weight.requires_grad)
    if tied:
        embedding.sparse = True
    return tied

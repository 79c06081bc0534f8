"""Per-token log-probabilities (and entropy) of responses under a causal LM, response positions only.

For rows ``[prompt (left-padded) | response (right-padded)]`` of widths P and T, the token at position
P + t is predicted by the logits at P + t − 1, so only the last T + 1 positions need logits:
``logits_to_keep=T + 1`` skips the vocabulary projection over the prompt (the largest tensor of the
forward for short responses). Logits are divided by the sampling temperature first, as veRL does, so the
log-probs are those of the distribution the responses were sampled from. Rows that repeat a prompt (the
n samples of a group) share one forward of it (`prompt_states`), backward included, and a prefix common to
every prompt of the batch (the chat template and instruction) runs once.

Memory: the logits of a forward are [rows, T + 1, V] (float32 on CPU: 16 rows × 512 tokens × 49,152 ×
4 B = 1.6 GB for SmolLM2), and with grad enabled they are kept for the backward pass. ``batch_size``
runs the rows in chunks: without grad only one chunk's logits exist at a time; with grad each chunk's
graph is kept until backward, so bound the memory by calling backward per micro-batch instead.

``logprob_chunk`` bounds the full-vocabulary tensors of a forward with grad: the forward returns the final
hidden states, and the vocabulary projection, log-softmax and entropy run ``logprob_chunk`` tokens at a time.
For a plain ``nn.Linear`` head (every causal LM here) that is `fused_head_logprobs`: one autograd function
over the response's real tokens only (padding skipped), which keeps per token only its logsumexp and
entropy and recomputes a chunk's logits in backward, with the gradient in closed form: at most chunk × V
floats exist at once. Other heads (a LoRA-wrapped one) take `chunked_head_logprobs`, each chunk of
positions under ``torch.utils.checkpoint``: at most rows × chunk × V.

Gradient checkpointing (``model.gradient_checkpointing_enable()``, in train mode): the oneDNN route steps
aside (backward recomputes each layer outside this module's context, and oneDNN's outputs differ in
metadata from F.linear's: torch's CheckpointError), and so does the shared-prompt path (checkpointing
turns the cache off, so a prompt forward would be wasted work).

Speed: on CPU the forward (and its backward) runs every ``F.linear`` on oneDNN
(`logicrl.engine.onednn.onednn_linears`), which made the SmolLM2 forward + backward of 16 × 368 tokens
1.7× faster (docs/performance.md).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint
from transformers import DynamicCache

from logicrl.engine.compat import cache_argument, output_cache
from logicrl.engine.head_softmax import logit_grads, softmax_stats
from logicrl.engine.onednn import onednn_linears
from logicrl.engine.sequences import positions_from_mask, shared_prefix_length, split_shared_prefix


def token_logprobs(logits: Tensor, tokens: Tensor) -> Tensor:
    """log softmax(logits)[token], from one float32 log_softmax. [B, T, V], [B, T] → [B, T]."""
    return logprobs_and_entropy(logits, tokens)[0]


def logprobs_and_entropy(logits: Tensor, tokens: Tensor, *, with_entropy: bool = False,
                         entropy_grad: bool = True) -> tuple[Tensor, Tensor | None]:
    """``(ℓ [B, T], H [B, T] or None)``: the log-prob of ``tokens`` under softmax(``logits`` [B, T, V]) and the
    entropy, both from one float32 log_softmax: ℓ = log_softmax(z)[token], H = `entropy_from_log_probs`.
    ``entropy_grad=False``: H detached (a statistic). One pass over the vocabulary serves both, where a
    logsumexp for ℓ and a second log_softmax for H took twice the time ([8, 200, 49152], docs/performance.md)."""
    logp_all = torch.log_softmax(logits.float(), dim=-1)
    logp = logp_all.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    if not with_entropy:
        return logp, None
    return logp, entropy_from_log_probs(logp_all if entropy_grad else logp_all.detach())


def entropy_from_log_probs(logp: Tensor) -> Tensor:
    """H = −Σ_v p_v·log p_v from log-probabilities ``logp`` = log_softmax(z) [..., V] → [...]; entries at −inf
    (masked tokens, p = 0) contribute 0, not NaN, and with grad their gradient is 0 too."""
    p = logp.exp()
    if logp.requires_grad:
        return -(p * torch.where(p > 0, logp, 0.0)).sum(dim=-1)
    return torch.special.entr(p).sum(dim=-1)  # −p·log p, 0 at p = 0, in one pass


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Categorical entropy H = −Σ_v p_v·log p_v with p = softmax(logits), over the last dim.

    Computed from log_softmax, so it is stable for large logits; vocabulary entries at −inf
    (masked tokens) contribute 0 instead of NaN. `response_logprobs` computes the trainer's entropy with
    `logprobs_and_entropy` (the same quantity); the entropy bonus is `−coef · aggregate(entropy, mask, agg)`
    added to the loss (`logicrl.rl.losses`).

    Source: veRL torch_functional.entropy_from_logits (logsumexp(z) − Σ p·z, the same quantity).
    Shapes: logits [..., V] → [...].
    """
    return entropy_from_log_probs(torch.log_softmax(logits, dim=-1))


def gradient_checkpointing(model) -> bool:
    """Whether backward will recompute ``model``'s layers: checkpointing enabled and the model in train mode
    (``is_activation_checkpointing``, transformers ≥ 5; ``is_gradient_checkpointing`` before)."""
    enabled = getattr(model, "is_activation_checkpointing", None)
    if enabled is None:
        enabled = getattr(model, "is_gradient_checkpointing", False)
    return bool(enabled) and model.training


def _forward(model, hidden: bool, keep: int, cache=None, **inputs) -> tuple[Tensor, object]:
    """``(states of the last keep positions (0: all), cache)``: the logits [B, keep, V], or with ``hidden`` the
    final hidden states [B, keep, h] of the decoder (the input of the vocabulary projection)."""
    if cache is not None:
        inputs[cache_argument(model.get_decoder())] = cache
    if hidden:
        out = model.get_decoder()(**inputs)
        states = out.last_hidden_state
        out_states = states[:, -keep:] if keep else states
    else:
        out = model(**inputs, logits_to_keep=keep)
        out_states = out.logits
    return out_states, output_cache(out)


def response_logits(model, input_ids: Tensor, attention_mask: Tensor, position_ids: Tensor, n_response: int,
                    temperature: float = 1.0, share_prompts: bool = True, hidden: bool = False,
                    prompt: tuple[Tensor, object] | None = None) -> Tensor:
    """Logits [B, T, V] that predict the T response tokens (the last T positions of ``input_ids``); with
    ``hidden``, the final hidden states [B, T, h] at those positions instead (not tempered).

    With ``share_prompts`` and rows that repeat a prompt (the n samples of a group), each distinct prompt
    runs once (`prompt_states`, kept in the graph): its KV cache is gathered per row and the responses run on
    it, all but their last token (whose logits predict nothing); autograd sums each prompt's gradient over its
    rows, so the gradient is that of the full forward. A prompt of P tokens repeated n times then costs P
    token-forwards (and backwards) instead of n·P: for 4 samples of a 180-token prompt with ~100-token
    responses, ≈ 45 % less work and activation memory. A prefix that all the prompts share (the chat template
    and instruction) runs once too, so distinct prompts (SFT's) share it. Otherwise (no prompt repeats and no
    shared prefix, gradient checkpointing: no cache, see the module docstring; a cache that cannot be gathered
    by row) one forward over the whole rows. ``prompt``: the rows' prompts already run (`PromptStates.rows`,
    the same width as ``input_ids``' prompt columns); only the responses run.
    """
    width = input_ids.shape[1] - n_response
    if prompt is None and share_prompts:
        states = prompt_states(model, input_ids[:, :width], attention_mask[:, :width], hidden=hidden, onednn=False,
                               leaves=False)
        prompt = None if states is None else states.rows()
    if prompt is not None:
        logits = _responses_on(model, input_ids, attention_mask, position_ids, width, *prompt, hidden)
    else:
        logits = _forward(model, hidden, n_response + 1, input_ids=input_ids, attention_mask=attention_mask,
                          position_ids=position_ids, use_cache=False)[0][:, :-1, :]
    return logits / temperature if temperature != 1.0 and not hidden else logits


@dataclass
class PromptStates:
    """The distinct prompts of a batch after one forward of each: what the rows that repeat them read.

    ``first`` [G, 1, V] (or [G, 1, h] for hidden states): the output at each prompt's last position, which
    predicts the first response token; ``kv``: each layer's (keys, values) [G, heads, P, D]; ``row_prompt``
    [B]: the index of row b's prompt among the G.

    Cut from the graph (`prompt_states` with grad enabled), ``first`` and ``kv`` are leaves: the backward of
    each micro-batch that reads them adds into their ``.grad``, and `backward` then runs the prompt forward's
    backward once on the sums. Sums of gradients are gradients of sums, so the parameters' gradient is that of
    one forward over every row, while each prompt's forward and backward ran once per batch instead of once
    per micro-batch that holds one of its rows.
    """

    row_prompt: Tensor
    first: Tensor
    kv: list[tuple[Tensor, Tensor]]
    graph: list[Tensor] = field(default_factory=list)  # what ``first`` and ``kv`` were cut from (in that order)

    def rows(self, rows: Tensor | None = None) -> tuple[Tensor, object]:
        """``(first [b, 1, ·], a KV cache [b, heads, P, D])`` of rows ``rows`` of the batch (None: all)."""
        index = self.row_prompt if rows is None else self.row_prompt[rows]
        index = index.to(self.first.device)
        cache = DynamicCache()
        for layer, (keys, values) in enumerate(self.kv):
            cache.update(keys[index], values[index], layer)
        return self.first[index], cache

    def backward(self) -> None:
        """The prompt forward's backward, on the gradients the micro-batches left in the leaves."""
        leaves = [self.first, *(t for pair in self.kv for t in pair)]
        pairs = [(source, leaf.grad) for source, leaf in zip(self.graph, leaves) if leaf.grad is not None]
        if pairs:
            torch.autograd.backward([source for source, _ in pairs], [grad for _, grad in pairs])


def prompt_states(model, prompt_ids: Tensor, prompt_mask: Tensor, *, hidden: bool = False, onednn: bool = True,
                  leaves: bool = True) -> PromptStates | None:
    """Each distinct row of ``prompt_ids`` [B, P] (left-padded, with ``prompt_mask``) run once through ``model``
    (on its device; with grad enabled and ``leaves``, cut from the graph: `PromptStates`; ``leaves=False``
    keeps them in it, for one forward over all the rows), a prefix common to all of them once (`_run_prompts`).
    ``onednn``: enter `onednn_linears` (False when the caller already has). None where it cannot pay or cannot
    work: no prompt repeats and no shared prefix, gradient checkpointing (no cache), or a cache without
    per-layer tensors."""
    if prompt_ids.shape[1] == 0 or gradient_checkpointing(model):
        return None
    distinct, row_prompt = torch.unique(torch.cat([prompt_ids, prompt_mask], dim=1), dim=0, return_inverse=True)
    ids, mask = distinct.split(prompt_ids.shape[1], dim=1)
    prefix = shared_prefix_length(ids, mask)
    if len(distinct) == len(prompt_ids) and not prefix:
        return None
    device = next(model.parameters()).device
    ids, mask = ids.to(device), mask.to(device)
    with onednn_linears(model) if onednn else contextlib.nullcontext():
        states = _run_prompts(model, ids, mask, positions_from_mask(mask), hidden, prefix)
    if states is None:
        return None
    first, kv = states
    graph = [first, *(t for pair in kv for t in pair)] if leaves and torch.is_grad_enabled() else []
    if graph:  # a tensor that needs no grad (a frozen layer under LoRA) stays out of the backward

        def leaf(t: Tensor) -> Tensor:
            return t.detach().requires_grad_(t.requires_grad)
        first, kv = leaf(first), [(leaf(k), leaf(v)) for k, v in kv]
    return PromptStates(row_prompt, first, kv, graph)


def _run_prompts(model, ids: Tensor, mask: Tensor, positions: Tensor, hidden: bool,
                 prefix: int) -> tuple[Tensor, list[tuple[Tensor, Tensor]]] | None:
    """``(output at the last position [G, 1, ·], per-layer (keys, values))`` of the prompts' forward, or None for
    a model whose cache does not hold per-layer tensors.

    The first ``prefix`` tokens, which every prompt shares (`shared_prefix_length`; 0: none), run once, [1, L], and
    the prompts' remaining columns run on its KV cache, broadcast to the G prompts (`split_shared_prefix`);
    autograd sums the prefix's gradient over them. For the Logic-RL prompt (chat template, instruction, the
    puzzle's opening sentence: 177 of SmolLM2's ~240 prompt tokens) that is about 70 % fewer prompt tokens. The
    KV comes back in the prompts' left-padded layout (`_left_padded_columns`), as one forward over ``ids`` would
    give it."""
    cache = None
    if prefix:
        head, (ids, mask, positions) = split_shared_prefix(ids, mask, positions, prefix)
        _, shared = _forward(model, hidden, 1, input_ids=head[0], attention_mask=head[1], position_ids=head[2],
                             use_cache=True)
        shared_kv = _cache_tensors(shared)
        if shared_kv is None:
            return None
        cache = DynamicCache()
        for layer, (keys, values) in enumerate(shared_kv):
            cache.update(keys.expand(len(ids), -1, -1, -1), values.expand(len(ids), -1, -1, -1), layer)
    first, cache = _forward(model, hidden, 1, input_ids=ids, attention_mask=mask, position_ids=positions,
                            use_cache=True, cache=cache)
    kv = _cache_tensors(cache)
    if kv is None or not prefix:
        return None if kv is None else (first, kv)
    columns = _left_padded_columns(mask, prefix)[:, None, :, None].expand_as(kv[0][0])
    return first, [(k.gather(2, columns), v.gather(2, columns)) for k, v in kv]


def _cache_tensors(cache) -> list[tuple[Tensor, Tensor]] | None:
    """Each layer's (keys, values) of a KV cache, or None for a cache without per-layer tensors."""
    layers = getattr(cache, "layers", None)
    if not layers or not all(isinstance(getattr(layer, "keys", None), Tensor) for layer in layers):
        return None
    return [(layer.keys, layer.values) for layer in layers]


def _left_padded_columns(mask: Tensor, prefix: int) -> Tensor:
    """Cache columns [shared prefix (L) | each prompt's rest, left-padded] → each prompt left-padded as a whole:
    the source column of each target column, [G, P], for a gather along the cache's sequence axis (gradients
    reach the prefix and the rest). ``mask`` [G, P] is the first layout's (ones, then the rest's left padding).
    Row g with p_g padding columns: its column c reads c + L (padding) for c < p_g, the prefix's c − p_g for
    p_g ≤ c < p_g + L, and c itself after that."""
    padding = (mask == 0).sum(1, keepdim=True)
    column = torch.arange(mask.shape[1], device=mask.device)[None]
    return torch.where(column < padding, column + prefix,
                       torch.where(column < padding + prefix, column - padding, column))


def _responses_on(model, input_ids: Tensor, attention_mask: Tensor, position_ids: Tensor, width: int,
                  first: Tensor, cache, hidden: bool) -> Tensor:
    """The outputs [B, T, ·] over the response columns, given each row's prompt output ``first`` [B, 1, ·] and
    its prompt KV ``cache``: the responses run on the cache, all but their last token."""
    if input_ids.shape[1] - width == 1:
        return first
    rest, _ = _forward(model, hidden, 0, input_ids=input_ids[:, width:-1], attention_mask=attention_mask[:, :-1],
                       position_ids=position_ids[:, width:-1], cache=cache, use_cache=True)
    return torch.cat([first, rest], dim=1)


def _head_logprobs(head, hidden: Tensor, tokens: Tensor, temperature: float, with_entropy: bool,
                   entropy_grad: bool) -> tuple[Tensor, ...]:
    """``(logp, entropy)`` (or ``(logp,)``) of one chunk: the same ops, in the same order, as the unchunked path."""
    logits = head(hidden)
    if temperature != 1.0:
        logits = logits / temperature
    logp, entropy = logprobs_and_entropy(logits, tokens, with_entropy=with_entropy, entropy_grad=entropy_grad)
    return (logp,) if not with_entropy else (logp, entropy)


class _FusedHead(torch.autograd.Function):
    """Per-token log-prob (and entropy) of ``tokens`` from hidden states [N, h] through ``y = x·Wᵀ + b``,
    ``chunk`` tokens at a time; neither pass ever holds more than one chunk's logits [chunk, V].

    Forward, per chunk: z = (x·Wᵀ + b)/τ (in the autocast dtype, then float32), lse = logsumexp(z),
    ℓ = z[token] − lse, H = lse − Σ_v p_v·z_v with p = exp(z − lse). It keeps x, lse and H only.
    Backward recomputes z per chunk and uses the closed forms
        ∂ℓ/∂z_v = 1[v = token] − p_v,        ∂H/∂z_v = −p_v·(log p_v + H),
    then ∂x = g_z·W/τ, ∂W = g_zᵀ·x/τ, ∂b = Σ g_z/τ (the matmuls in the forward's autocast dtype, as the
    unfused path's backward runs them). The softmax work on each chunk is `logicrl.engine.head_softmax`'s (one
    compiled pass per row on a CPU). Same quantities as `token_logprobs` and `entropy_from_logits` on the
    full logits (tests/engine/test_logprobs.py), at a fraction of the memory traffic: no [B, T, V] tensor, and
    no work on padding positions (the caller passes only the response's real tokens). The matmuls' operands are
    cast to the autocast dtype once, in the forward, and the cast kept for the backward (autocast itself would
    cast W, a [V, h] tensor, at every chunk). Each pass writes its chunks' logits, and the backward their
    gradients and ∂W's partial products, into buffers of its own reused from chunk to chunk: a fresh tensor of
    [512, V] or [V, h] can cost its memory's first touch again (page faults: inside an RL step on a 2-core VM, where
    the heap fragments, the head's backward went 1.78 → 1.54 s a step; with glibc's default malloc, 1,500 tokens
    forward and backward 658 → 454 ms).
    """

    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, bias: Tensor | None, tokens: Tensor, temperature: float,
                chunk: int, with_entropy: bool) -> tuple[Tensor, Tensor]:
        device = hidden.device.type
        autocast = (torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
        cast = _HeadCast.of(hidden, weight, bias, autocast)
        logp = hidden.new_empty(len(tokens), dtype=torch.float32)
        lse = torch.empty_like(logp)
        ent = torch.zeros_like(logp)
        logits = cast.buffer(len(tokens), chunk)
        for rows in _chunks(len(tokens), chunk):
            lse[rows], logp[rows], entropy = softmax_stats(cast.logits(hidden[rows], logits), tokens[rows],
                                                           temperature, with_entropy)
            if with_entropy:
                ent[rows] = entropy
        ctx.save_for_backward(hidden, weight, bias, tokens, lse, ent, cast.weight, cast.bias)
        ctx.temperature, ctx.chunk = temperature, chunk
        return logp, ent

    @staticmethod
    def backward(ctx, grad_logp: Tensor, grad_ent: Tensor) -> tuple[Tensor | None, ...]:
        hidden, weight, bias, tokens, lse, ent, cast_weight, cast_bias = ctx.saved_tensors
        cast = _HeadCast(cast_weight.dtype, cast_weight, cast_bias)
        grad_hidden = torch.zeros_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if ctx.needs_input_grad[1] else None
        product = torch.empty_like(cast.weight) if grad_weight is not None else None
        grad_bias = torch.zeros_like(bias, dtype=torch.float32) if bias is not None and ctx.needs_input_grad[2] \
            else None
        logits, grads = cast.buffer(len(tokens), ctx.chunk), cast.buffer(len(tokens), ctx.chunk)
        for rows in _chunks(len(tokens), ctx.chunk):
            x = hidden[rows].to(cast.dtype)
            grad_z = logit_grads(cast.logits(x, logits), tokens[rows], ctx.temperature, lse[rows], ent[rows],
                                 grad_logp[rows], grad_ent[rows] if grad_ent is not None else None, cast.dtype,
                                 out=grads)
            if grad_hidden is not None:
                grad_hidden[rows] = (grad_z @ cast.weight).to(hidden.dtype)
            if grad_weight is not None:
                torch.mm(grad_z.t(), x, out=product)
                _widening_add(grad_weight, product)
            if grad_bias is not None:
                grad_bias += grad_z.sum(0, dtype=torch.float32)
        return (grad_hidden, None if grad_weight is None else grad_weight.to(weight.dtype),
                None if grad_bias is None else grad_bias.to(bias.dtype), None, None, None, None)


WIDEN_ELEMENTS = 1 << 21  # 8 MB of float32: below glibc's mmap threshold, so the temporaries reuse one block


def _widening_add(total: Tensor, part: Tensor) -> None:
    """``total += part`` for a ``part`` in a narrower dtype, `WIDEN_ELEMENTS` at a time: PyTorch widens the
    operand into a temporary of ``total``'s dtype, which for a whole [V, h] part is a fresh 113 MB each time."""
    rows = max(1, WIDEN_ELEMENTS // max(1, part.shape[-1]))
    for start in range(0, part.shape[0], rows):
        total[start:start + rows] += part[start:start + rows]


class _HeadCast(NamedTuple):
    """The head's weight and bias cast once to the dtype its matmuls run in: autocast's where it is on for the
    device (it would cast them for every matmul), else the hidden states' own."""

    dtype: torch.dtype
    weight: Tensor
    bias: Tensor | None

    @classmethod
    def of(cls, hidden: Tensor, weight: Tensor, bias: Tensor | None, autocast: tuple[bool, torch.dtype]) -> _HeadCast:
        enabled, autocast_dtype = autocast
        dtype = autocast_dtype if enabled else hidden.dtype
        return cls(dtype, weight.to(dtype), None if bias is None else bias.to(dtype))

    def buffer(self, rows: int, chunk: int) -> Tensor:
        """Room for one chunk's logits [min(rows, chunk), V] in `dtype`, reused by every chunk of a pass."""
        return self.weight.new_empty((min(rows, chunk), self.weight.shape[0]))

    def logits(self, hidden: Tensor, out: Tensor) -> Tensor:
        """x·Wᵀ + b [n, V] in `dtype`, written to the first n rows of ``out`` (autocast off: the operands are
        already cast); the ops `torch.nn.functional.linear` runs for a 2-D input."""
        x, out = hidden.to(self.dtype), out[:len(hidden)]
        with torch.autocast(hidden.device.type, enabled=False):
            if self.bias is None:
                return torch.mm(x, self.weight.t(), out=out)
            return torch.addmm(self.bias, x, self.weight.t(), out=out)


def _chunks(total: int, chunk: int) -> list[slice]:
    return [slice(start, min(start + chunk, total)) for start in range(0, total, chunk)]


def fused_head_logprobs(head: torch.nn.Linear, hidden: Tensor, tokens: Tensor, mask: Tensor, chunk: int, *,
                        temperature: float = 1.0, with_entropy: bool = False,
                        entropy_grad: bool = True) -> tuple[Tensor, Tensor | None]:
    """``(logp [B, T], entropy [B, T] or None)`` from the final hidden states [B, T, h] through the plain linear
    ``head``, on the positions where ``mask`` [B, T] is set only (0 elsewhere), ``chunk`` tokens at a time
    (`_FusedHead`)."""
    where = mask.bool()
    logp, ent = _FusedHead.apply(hidden[where], head.weight, head.bias, tokens[where], temperature, chunk,
                                 with_entropy)
    out_logp = hidden.new_zeros(mask.shape, dtype=logp.dtype).masked_scatter(where, logp)
    if not with_entropy:
        return out_logp, None
    out_ent = hidden.new_zeros(mask.shape, dtype=ent.dtype).masked_scatter(where, ent if entropy_grad else ent.detach())
    return out_logp, out_ent


def chunked_head_logprobs(head, hidden: Tensor, tokens: Tensor, chunk: int, *, temperature: float = 1.0,
                          with_entropy: bool = False, entropy_grad: bool = True) -> tuple[Tensor, Tensor | None]:
    """``(logp [B, T], entropy [B, T] or None)`` from the final hidden states [B, T, h] through the vocabulary
    projection ``head`` (any module; a plain ``nn.Linear`` takes `fused_head_logprobs` instead), ``chunk``
    positions at a time.

    With grad enabled each chunk runs under non-reentrant ``torch.utils.checkpoint``: backward keeps only the
    chunk's hidden states and recomputes its logits, so the full-vocabulary tensors alive at once are those of
    one chunk [B, chunk, V], in the forward and in the backward.
    """
    logps, entropies = [], []
    for start in range(0, hidden.shape[1], chunk):
        columns = slice(start, start + chunk)
        args = (head, hidden[:, columns], tokens[:, columns], temperature, with_entropy, entropy_grad)
        if torch.is_grad_enabled():
            out = checkpoint(_head_logprobs, *args, use_reentrant=False)
        else:
            out = _head_logprobs(*args)
        logps.append(out[0])
        if with_entropy:
            entropies.append(out[1])
    return torch.cat(logps, dim=1), (torch.cat(entropies, dim=1) if with_entropy else None)


def head_logprobs(head, hidden: Tensor, tokens: Tensor, mask: Tensor, chunk: int, *, temperature: float = 1.0,
                  with_entropy: bool = False, entropy_grad: bool = True) -> tuple[Tensor, Tensor | None]:
    """``(logp [B, T], entropy [B, T] or None)`` from the final hidden states [B, T, h], ``chunk`` positions per
    vocabulary projection: a plain ``nn.Linear`` head on the positions where ``mask`` is set only
    (`fused_head_logprobs`, 0 elsewhere), any other head on every position (`chunked_head_logprobs`)."""
    options = {"temperature": temperature, "with_entropy": with_entropy, "entropy_grad": entropy_grad}
    if type(head) is torch.nn.Linear:
        return fused_head_logprobs(head, hidden, tokens, mask, chunk, **options)
    return chunked_head_logprobs(head, hidden, tokens, chunk, **options)


def response_logprobs(
    model, input_ids: Tensor, attention_mask: Tensor, position_ids: Tensor, response_ids: Tensor, *,
    temperature: float = 1.0, with_entropy: bool = False, batch_size: int | None = None, onednn: bool = True,
    share_prompts: bool = True, entropy_grad: bool = True, logprob_chunk: int | None = None,
    prompt: tuple[Tensor, object] | None = None,
) -> tuple[Tensor, Tensor | None]:
    """``(logp [B, T], entropy [B, T] or None)`` of ``response_ids`` (the last T columns of ``input_ids``).

    Gradients flow when called with grad enabled; wrap in ``torch.no_grad()`` for old/reference passes.
    Values at padded response positions are meaningless: multiply by the response mask. ``batch_size``:
    rows per forward (default: all at once). ``onednn``: run the linears on oneDNN (CPU float32 only).
    ``share_prompts``: rows of a chunk with the same prompt (the same ids and padding) share its forward.
    ``entropy_grad=False`` returns the entropy detached (a statistic only: no softmax kept for backward).
    The entropy is `entropy_from_logits` of the tempered logits (finite for −inf logits). ``logprob_chunk``:
    response positions per vocabulary projection (`head_logprobs`: a plain ``nn.Linear`` head through
    `fused_head_logprobs`, on the valid positions only, any other head through `chunked_head_logprobs`; None:
    all at once). The oneDNN route is off under gradient checkpointing (module docstring). ``prompt``: the rows'
    prompts already run, ``PromptStates.rows(rows)`` of states made by `prompt_states` (then no ``batch_size``).
    """
    if prompt is not None and batch_size is not None:
        raise ValueError("prompt states cover all the rows: pass batch_size=None")
    step = batch_size or input_ids.shape[0]
    onednn = onednn and not gradient_checkpointing(model)
    logps, entropies = [], []
    for start in range(0, input_ids.shape[0], step):
        rows = slice(start, start + step)
        if logprob_chunk is not None:
            with onednn_linears(model) if onednn else contextlib.nullcontext():
                hidden = response_logits(model, input_ids[rows], attention_mask[rows], position_ids[rows],
                                         response_ids.shape[1], share_prompts=share_prompts, hidden=True,
                                         prompt=prompt)
            logp, ent = head_logprobs(model.get_output_embeddings(), hidden, response_ids[rows],
                                      attention_mask[rows, -response_ids.shape[1]:], logprob_chunk,
                                      temperature=temperature, with_entropy=with_entropy, entropy_grad=entropy_grad)
            logps.append(logp)
            entropies.append(ent)
            continue
        with onednn_linears(model) if onednn else contextlib.nullcontext():
            logits = response_logits(model, input_ids[rows], attention_mask[rows], position_ids[rows],
                                     response_ids.shape[1], temperature, share_prompts, prompt=prompt)
        logp, entropy = logprobs_and_entropy(logits, response_ids[rows], with_entropy=with_entropy,
                                             entropy_grad=entropy_grad)
        logps.append(logp)
        entropies.append(entropy)
        del logits  # free this chunk's logits before the next forward (kept by autograd when grad is on)
    return torch.cat(logps), (torch.cat(entropies) if with_entropy else None)

"""Sampling responses: prompts (token ids) in, a padded batch of responses with masks out (`generate`).

Rows are grouped: with ``n`` samples per prompt, rows ``i·n … i·n+n−1`` answer prompt ``i``. A response
ends at the first stop token (an end-of-sequence id, kept in the response) or, with ``stop_texts``, at the
first token whose decoded text completes one of them; otherwise it is cut at ``max_new_tokens``
(``truncated``). Everything after the end is padding (``response_mask`` 0).

The decode loop (each lever measured in docs/performance.md): every distinct prompt is prefilled once
for its ``n`` rows (and a prefix that all the prompts share, once for all of them), and the Llama-family
engine (`_LlamaEngine`) keeps the keys that every row shares once, attending to them with all the rows' queries
at once; each row's own keys (the rest of its prompt, then its response) sit in a preallocated cache written
in place; on CPU the projections run on oneDNN with pre-packed, fused (q/k/v, gate/up) weights
(`logicrl.engine.onednn`);
a row that has stopped leaves the batch (at the next multiple of 8 steps); sampling
uses one uniform number per row and step, drawn from ``seed`` up front (`logicrl.engine.sampling`). Other
architectures run the model's own forward and cache (`_ModelEngine`) in the same loop.

Precision (``dtype``, e.g. bfloat16 on a GPU): the fast engine copies the weights into ``dtype`` once per
call (then no decode step casts a weight, as autocast would) and keeps both KV caches in it; logits are
upcast to float32 before the softmax. Stops are checked every ``stop_check_every`` tokens, one host sync
per check; the result is the same as checking every token.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from logicrl.engine.attention import attend_both, cpu_flash_works, native_attention
from logicrl.engine.compat import cache_argument, output_cache
from logicrl.engine.fused import RMSNorm, add_norm, apply_rotary, gated_mlp, rotary_into_cache, split_heads
from logicrl.engine.linears import mergeable
from logicrl.engine.onednn import _Linear
from logicrl.engine.sampling import _Sampler, _StopCheck
from logicrl.engine.sequences import (
    Generation,
    left_pad,
    positions_from_mask,
    shared_prefix_length,
    split_shared_prefix,
)

FAST_MODEL_TYPES = ("llama", "mistral", "qwen2")  # the same decoder block as Llama (Qwen2: q/k/v biases)
ENGINES = ("auto", "fast", "model")
# finished rows leave the batch only every this many steps, whatever the stop-check interval: the batch
# shapes, hence the kernels' rounding (batch-size dependent in BLAS and cuBLAS), are then the same for any
# interval, and so are the results
SHRINK_EVERY = 8


def _fast_engine_fits(model, cache_len: int) -> bool:
    """Whether `_LlamaEngine` computes exactly what ``model`` does (a Llama-style block; plain Linears, or peft
    LoRA Linears over them: `logicrl.engine.linears`)."""
    config, inner = model.config, getattr(model, "model", None)
    window = getattr(config, "sliding_window", None) if getattr(config, "use_sliding_window", True) else None
    if config.model_type not in FAST_MODEL_TYPES or inner is None or (window and window < cache_len):
        return False
    blocks = [m for layer in inner.layers for m in (
        layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj, layer.self_attn.o_proj,
        layer.mlp.gate_proj, layer.mlp.up_proj, layer.mlp.down_proj)]
    norms = [inner.norm, *(n for layer in inner.layers
                           for n in (layer.input_layernorm, layer.post_attention_layernorm))]
    return (all(mergeable(m) for m in [*blocks, model.lm_head]) and hasattr(inner, "rotary_emb")
            and all(hasattr(n, "variance_epsilon") for n in norms))


class _Block(NamedTuple):
    """One decoder layer of `_LlamaEngine`: norms, fused projections (weights in the engine's dtype) and
    the gated MLP's product act(gate) · up (`logicrl.engine.fused.gated_mlp`)."""

    attn_norm: RMSNorm
    qkv: _Linear
    out: _Linear
    mlp_norm: RMSNorm
    gate_up: _Linear
    down: _Linear
    gated: Callable[[Tensor], Tensor]


class _LlamaEngine:
    """Llama-family forward over a two-part KV cache: the keys that every row shares (the prompts' common
    prefix, or the whole prompt when there is one), stored once, and each row's own keys (the rest of its
    prompt, left-padded, then its response), preallocated per row. Attention of a decode step is one softmax
    over [common keys | own keys]: on an AVX-512 CPU both parts in one pass of the compiled kernel
    (`logicrl.engine.native`); elsewhere each part runs on its own and the two merge by their log-sum-exps
    (`logicrl.engine.attention`), for the common part the queries of every row forming one batch,
    ``[1, kv_heads, B·q_per_kv, D]``, so those keys are read once per step, not once per row.

    Activations and weights are in ``dtype`` (default: the model's): the projection and norm weights are
    copied into it here, once; embeddings are looked up in the model's table, then cast. Both caches are in
    ``dtype`` too, except on a CPU whose flash-attention kernel fails its probe for a 16-bit ``dtype``: the caches
    are then float32, and `attend` runs on them in float32 (the kernel where it works in float32, else batched
    matmuls, which with 3 queries per KV head were slower in bfloat16 than in float32 on a CPU:
    docs/performance.md).
    """

    def __init__(self, model, rows: int, max_new_tokens: int, dtype: torch.dtype | None = None) -> None:
        inner, config = model.model, model.config
        head_weight = getattr(model.lm_head, "base_layer", model.lm_head).weight
        self.dtype = dtype = dtype or head_weight.dtype
        on_cpu = head_weight.device.type == "cpu"
        self.kv_dtype = torch.float32 if on_cpu and not cpu_flash_works(dtype) and dtype != torch.float32 else dtype
        self.embed, self.rotary = inner.embed_tokens, inner.rotary_emb
        attention = inner.layers[0].self_attn
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim, self.scaling = attention.head_dim, attention.scaling
        linear = functools.partial(_Linear, rows_hint=rows, dtype=dtype)
        norm = functools.partial(RMSNorm.of, dtype=dtype)
        self.layers = [_Block(norm(layer.input_layernorm), linear([a.q_proj, a.k_proj, a.v_proj]),
                              linear([a.o_proj]), norm(layer.post_attention_layernorm),
                              linear([m.gate_proj, m.up_proj]), linear([m.down_proj]), gated_mlp(m.act_fn))
                       for layer in inner.layers for a, m in [(layer.self_attn, layer.mlp)]]
        self.norm, self.head = norm(inner.norm), linear([model.lm_head])
        self.max_new_tokens, self.length = max_new_tokens, 0

    def _qkv(self, layer: _Block, x: Tensor, rope: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """x [B, S, E] → q [B, H, S, D], k and v [B, H_kv, S, D], rotary applied to q and k."""
        q, k, v = split_heads(layer.qkv(layer.attn_norm(x)), self.heads, self.kv_heads, self.head_dim)
        q, k = apply_rotary()(q, k, *rope)
        return q, k, v

    @staticmethod
    def _finish_layer(layer: _Block, x: Tensor, attended: Tensor) -> Tensor:
        """Residual adds around the output projection and the gated MLP; attended [B, S, H·D]."""
        x = x + layer.out(attended)
        return x + layer.down(layer.gated(layer.gate_up(layer.mlp_norm(x))))

    def prefill(self, ids: Tensor, mask: Tensor, n: int) -> Tensor:
        """Run the g prompts [g, P] (left-padded), keep their KV; return next-token logits [g·n, V].

        A prefix of L tokens that all g prompts share (`shared_prefix_length`: the chat template and instruction)
        runs once, [1, L], and the prompts' remaining columns attend to its keys. The common cache is that
        prefix's KV (a single prompt's whole KV; none when the prompts share no prefix); each row's own cache
        starts with its prompt's remaining columns, left-padded (a bias hides the padding)."""
        g = ids.shape[0]
        positions, prefix, common = positions_from_mask(mask), shared_prefix_length(ids, mask), None
        if prefix:
            head, (ids, mask, positions) = split_shared_prefix(ids, mask, positions, prefix)
            _, common = self._prompt_forward(*head)
        x, own = self._prompt_forward(ids, mask, positions, common)
        own_mask = mask[:, mask.shape[1] - ids.shape[1]:]  # over the columns of ``own``
        if common is None and g == 1 and bool(own_mask.all()):  # one prompt: all of it is common to its rows
            common, own, own_mask = own, [(k[:, :, :0], v[:, :, :0]) for k, v in own], own_mask[:, :0]
        self.common_kv = None if common is None else [
            (k.to(self.kv_dtype).contiguous(), v.to(self.kv_dtype).contiguous()) for k, v in common]
        self.start, width = own_mask.shape[1], own_mask.shape[1] + self.max_new_tokens
        shape = (2, len(self.layers), g * n, self.kv_heads, width, self.head_dim)
        self.own_kv = torch.empty(shape, dtype=self.kv_dtype, device=x.device)
        for i, (k, v) in enumerate(own):
            self.own_kv[0, i, :, :, :self.start] = k.repeat_interleave(n, 0)
            self.own_kv[1, i, :, :, :self.start] = v.repeat_interleave(n, 0)
        hidden = (own_mask == 0).repeat_interleave(n, 0)
        self.own_bias = None if not bool(hidden.any()) else torch.zeros(
            g * n, 1, 1, width, dtype=self.kv_dtype, device=x.device).masked_fill(
            F.pad(hidden, (0, self.max_new_tokens))[:, None, None], float("-inf"))
        return self.head(self.norm(x[:, -1])).repeat_interleave(n, 0)

    def _prompt_forward(self, ids: Tensor, mask: Tensor, positions: Tensor,
                        shared: list[tuple[Tensor, Tensor]] | None = None) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        """Prompt columns ``ids`` [g, S] at ``positions`` through every layer, after the L keys of ``shared`` (each
        layer's (keys, values) [1, kv_heads, L, D], none by default); ``mask`` [g, L + S] marks real keys. Returns
        the last hidden states [g, S, E] and each layer's (keys, values) [g, kv_heads, S, D] of these S columns."""
        g, S = ids.shape
        L = mask.shape[1] - S
        x = self.embed(ids).to(self.dtype)
        rope = self.rotary(x, positions)
        eye = torch.eye(S, dtype=torch.bool, device=ids.device)
        # causal, padding keys hidden; a padding query sees itself (no empty softmax rows)
        own = (eye.cumsum(0).bool() & mask.bool()[:, None, L:]) | eye
        allowed = torch.cat([mask.bool()[:, None, :L].expand(g, S, L), own], dim=-1)
        kv = []
        for i, layer in enumerate(self.layers):
            q, k, v = self._qkv(layer, x, rope)
            kv.append((k, v))
            if shared is not None:
                k, v = (torch.cat([part.expand(g, -1, -1, -1), new], dim=2) for part, new in zip(shared[i], (k, v)))
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed[:, None], scale=self.scaling,
                                                 enable_gqa=True)
            x = self._finish_layer(layer, x, out.transpose(1, 2).reshape(g, S, -1))
        return x, kv

    def step(self, tokens: Tensor, positions: Tensor) -> Tensor:
        """Append one token per row (tokens, positions [B]); return next-token logits [B, V]."""
        x = self.embed(tokens[:, None]).to(self.dtype)
        rope = self.rotary(x, positions[:, None])
        t = self.start + self.length
        bias = None if self.own_bias is None else self.own_bias[..., :t + 1]
        delta = None  # each block's output, added to x by the next norm (`fused.add_norm`: one call on a CPU)
        for i, layer in enumerate(self.layers):
            x, h = add_norm(x, delta, layer.attn_norm)
            keys, values = self.own_kv[0, i], self.own_kv[1, i]
            q = rotary_into_cache(layer.qkv(h), *rope, keys[:, :, t], values[:, :, t], self.heads, self.kv_heads)
            attended = self._attend(i, q, keys[:, :, :t + 1], values[:, :, :t + 1], bias)
            x, h = add_norm(x, layer.out(attended), layer.mlp_norm)
            delta = layer.down(layer.gated(layer.gate_up(h)))
        self.length += 1
        return self.head(add_norm(x, delta, self.norm)[1][:, -1])

    def _attend(self, i: int, q: Tensor, keys: Tensor, values: Tensor, bias: Tensor | None) -> Tensor:
        """softmax([q·Kcᵀ | q·Koᵀ + bias]·scale)·[Vc; Vo] for q [B, H, 1, D] over layer i's common keys Kc and the
        rows' own keys Ko [B, kv_heads, T, D]; returns [B, 1, H·D]."""
        B, D = q.shape[0], self.head_dim
        q = q.to(self.kv_dtype).reshape(B, self.kv_heads, -1, D)  # head h reads kv head h // (H / H_kv)
        common = None if self.common_kv is None else self.common_kv[i]
        out = native_attention(q, common, keys, values, bias, self.scaling)  # both sets in one pass, or None
        if out is None:
            out = attend_both(q, common, keys, values, bias, self.scaling)
        return out.reshape(B, 1, -1).to(self.dtype)

    def select(self, rows: Tensor) -> None:
        """Keep only ``rows`` (indices into the current ones): their own keys; the common keys stay."""
        self.own_kv = self.own_kv[:, :, rows]
        self.own_bias = None if self.own_bias is None else self.own_bias[rows]


class _ModelEngine:
    """Any causal LM: the model's own forward and dynamic KV cache (prefill once per prompt, then the
    cache rows are repeated ``n`` times)."""

    def __init__(self, model) -> None:
        self.model = model

    def prefill(self, ids: Tensor, mask: Tensor, n: int) -> Tensor:
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask),
                         use_cache=True, logits_to_keep=1)
        self.cache, self.mask = output_cache(out), mask.repeat_interleave(n, 0)
        self.cache.batch_repeat_interleave(n)
        return out.logits[:, -1].repeat_interleave(n, 0)

    def step(self, tokens: Tensor, positions: Tensor) -> Tensor:
        self.mask = torch.cat([self.mask, self.mask.new_ones(len(tokens), 1)], dim=1)
        out = self.model(input_ids=tokens[:, None], attention_mask=self.mask, position_ids=positions[:, None],
                         use_cache=True, **{cache_argument(self.model): self.cache})
        return out.logits[:, -1]

    def select(self, rows: Tensor) -> None:
        self.cache.batch_select_indices(rows)
        self.mask = self.mask[rows]


def _decode(engine, prompt_ids: Tensor, prompt_mask: Tensor, *, n: int, max_new_tokens: int, pad_token_id: int,
            sampler: _Sampler, stops: _StopCheck, check_every: int = 1,
            on_step: Callable[[int, int], None] | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """The decode loop over ``g`` distinct prompts × ``n`` rows; returns CPU tensors
    ``(tokens [g·n, max_new_tokens], log-probs [g·n, max_new_tokens], lengths [g·n] or −1 if never stopped)``.

    Rows are finished once they stop, and leave the batch at the first multiple of `SHRINK_EVERY` steps after
    that (each row has its own KV columns; the keys that all rows share stay). Tokens stay on the device until
    the next check (every ``check_every`` steps and at those multiples), then come to the host at once (one
    sync) and the stop check runs step by step over them: a row that ended inside the block has kept decoding
    to its end, but its length is that of its first stop, and `generate` pads everything after it.
    ``on_step(tokens, rows)``, if given, hears every `SHRINK_EVERY` steps how many tokens each row has and how
    many rows have not stopped."""
    device, total = prompt_ids.device, prompt_ids.shape[0] * n
    logits = engine.prefill(prompt_ids, prompt_mask, n)
    positions = prompt_mask.sum(-1).repeat_interleave(n)  # position of the next token, per row
    rows = torch.arange(total)  # global index of each row in the batch
    rows_on_device = rows.to(device)
    tokens_out = torch.full((total, max_new_tokens), pad_token_id, dtype=torch.long)
    logp_out = torch.zeros(total, max_new_tokens)
    lengths = torch.full((total,), -1, dtype=torch.long)
    block: list[tuple[Tensor, Tensor]] = []  # (tokens [B], log-probs [B]) since the last check, on the device
    for step in range(max_new_tokens):
        tokens, logp = sampler(logits, rows_on_device, step)
        block.append((tokens, logp))
        shrink = (step + 1) % SHRINK_EVERY == 0
        if len(block) == check_every or shrink or step + 1 == max_new_tokens:
            first, (block_tokens, block_logp), block = step + 1 - len(block), zip(*block), []
            tokens_out[rows, first:step + 1] = torch.stack(block_tokens, 1).cpu()
            logp_out[rows, first:step + 1] = torch.stack(block_logp, 1).float().cpu()
            history = tokens_out[rows]
            for s in range(first, step + 1):
                ended = stops(history[:, s], history, s) & (lengths[rows] < 0)
                lengths[rows[ended]] = s + 1
            if step + 1 == max_new_tokens or bool((lengths >= 0).all()):
                break
            open_rows = lengths[rows] < 0
            if shrink and on_step is not None:
                on_step(step + 1, int(open_rows.sum()))
            if shrink and not bool(open_rows.all()):
                keep = open_rows.nonzero()[:, 0]
                engine.select(keep.to(device))
                rows, keep = rows[keep], keep.to(device)
                rows_on_device, tokens, positions = rows_on_device[keep], tokens[keep], positions[keep]
        logits, positions = engine.step(tokens, positions), positions + 1
    return tokens_out, logp_out, lengths


def _check_arguments(prompts: Sequence[Sequence[int]], *, n: int, max_new_tokens: int, temperature: float,
                     top_p: float, greedy: bool, stop_texts: Sequence[str]) -> None:
    """ValueError for what `generate` cannot do right (each gave silent garbage or an unrelated error): as
    ``model.generate`` refuses them, and a temperature or top_p that sampling cannot use."""
    if not prompts or any(len(prompt) == 0 for prompt in prompts):
        raise ValueError("generate needs at least one prompt, and no empty one")
    if n < 1 or max_new_tokens < 1:
        raise ValueError(f"n and max_new_tokens must be at least 1, not n={n}, max_new_tokens={max_new_tokens}")
    if not greedy and not (temperature > 0 and 0 < top_p <= 1):
        raise ValueError(f"sampling needs temperature > 0 and 0 < top_p <= 1, not temperature={temperature}, "
                         f"top_p={top_p} (greedy=True for the most likely tokens)")
    if any(not text for text in stop_texts):
        raise ValueError("an empty stop text would end every response at its first token")


@torch.no_grad()
def generate(
    model,
    prompts: Sequence[Sequence[int]],
    *,
    n: int = 1,
    max_new_tokens: int,
    pad_token_id: int,
    stop_token_ids: Sequence[int],
    temperature: float = 1.0,
    top_p: float = 1.0,
    greedy: bool = False,
    stop_texts: Sequence[str] = (),
    tokenizer=None,
    seed: int | None = None,
    engine: str = "auto",
    dtype: torch.dtype | None = None,
    stop_check_every: int | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> Generation:
    """Sample ``n`` responses per prompt (greedy: the same response ``n`` times).

    ``seed`` makes sampling reproducible (the trainer passes one per step, so a resumed run samples the
    same responses); row r always draws the same random numbers, whatever the other rows do (for one
    ``max_new_tokens``: the numbers are drawn as one rows × max_new_tokens table, so another length gives the
    rows after the first other numbers).
    ``stop_texts`` needs ``tokenizer`` (stop strings may span tokens). ``engine``: "fast" (the
    Llama-family engine; ValueError for other models), "model" (the model's own forward), "auto"
    (fast when the model allows it).

    ``dtype``: the precision of the forward (default: the caller's autocast dtype if autocast is on, else
    the model's). The fast engine copies its weights into it once for this call, keeps its KV caches in it
    and runs with autocast off; the model engine runs under autocast to ``dtype`` when that is not the
    model's. Logits are upcast to float32 for sampling either way. ``stop_check_every``: tokens between
    two stop checks (each one a host sync; default 8 on CUDA, 1 elsewhere); the result does not depend on it.
    ``on_step(tokens, open_rows)``: called every few steps (a progress display for long generations).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if stop_check_every is not None and stop_check_every < 1:
        raise ValueError(f"stop_check_every must be at least 1, not {stop_check_every}")
    _check_arguments(prompts, n=n, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                     greedy=greedy, stop_texts=stop_texts)
    weight = next(model.parameters())
    device = weight.device
    if dtype is None:
        autocast = torch.is_autocast_enabled(device.type)
        dtype = torch.get_autocast_dtype(device.type) if autocast else weight.dtype
    prompt_ids, prompt_mask = left_pad(prompts, pad_token_id)
    context = getattr(model.config, "max_position_embeddings", None)
    if context is not None and prompt_ids.shape[1] + max_new_tokens > context:
        warnings.warn(f"prompts of up to {prompt_ids.shape[1]} tokens + max_new_tokens={max_new_tokens} exceed the "
                      f"model's context ({context} positions): the positions beyond it are outside what it was "
                      "trained on", stacklevel=2)
    fits = _fast_engine_fits(model, prompt_ids.shape[1] + max_new_tokens)
    if engine == "fast" and not fits:
        raise ValueError(f"the fast engine does not support this model ({model.config.model_type})")
    rows = torch.arange(len(prompts)).repeat_interleave(n)
    fast = engine != "model" and fits
    runner = _LlamaEngine(model, len(rows), max_new_tokens, dtype) if fast else _ModelEngine(model)
    sampler = _Sampler(len(rows), max_new_tokens, temperature=temperature, top_p=top_p, greedy=greedy, seed=seed,
                       device=device)
    check_every = stop_check_every or (8 if device.type == "cuda" else 1)  # a CPU "sync" costs nothing
    with torch.autocast(device.type, dtype=dtype, enabled=not fast and dtype != weight.dtype):
        tokens, logp, lengths = _decode(
            runner, prompt_ids.to(device), prompt_mask.to(device), n=n, max_new_tokens=max_new_tokens,
            pad_token_id=pad_token_id, sampler=sampler, check_every=check_every, on_step=on_step,
            stops=_StopCheck(stop_token_ids, stop_texts, tokenizer))
    truncated = lengths < 0
    lengths = lengths.masked_fill(truncated, max_new_tokens)
    width = max(int(lengths.max()), 1)
    response_mask = (torch.arange(width)[None, :] < lengths[:, None]).float()
    response_ids = tokens[:, :width].masked_fill(response_mask == 0, pad_token_id)
    return Generation(prompt_ids[rows], prompt_mask[rows], response_ids, response_mask, truncated,
                      logp[:, :width] * response_mask)

"""Sampling responses: prompts (token ids) in, a padded batch of responses with masks out.

Rows are grouped: with ``n`` samples per prompt, rows ``i·n … i·n+n−1`` answer prompt ``i``. A response
ends at the first stop token (an end-of-sequence id, kept in the response) or, with ``stop_texts``, at the
first token whose decoded text completes one of them; otherwise it is cut at ``max_new_tokens``
(``truncated``). Everything after the end is padding (``response_mask`` 0).

The decode loop (each lever measured in docs/performance.md): every distinct prompt is prefilled once
for its ``n`` rows, and the Llama-family engine (`_LlamaEngine`) keeps that prompt KV cache once per
prompt, attending to it group-wise; the response KV cache is preallocated and written in place; on CPU
the projections run on oneDNN with pre-packed, fused (q/k/v, gate/up) weights (≈ 2–3× the default BLAS
here); a prompt whose ``n`` rows have all stopped leaves the batch; sampling uses one uniform number per
row and step, drawn from ``seed`` up front, so a row's tokens do not depend on the other rows. Other
architectures run the model's own forward and cache (`_ModelEngine`) in the same loop.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

FAST_MODEL_TYPES = ("llama", "mistral", "qwen2")  # the same decoder block as Llama (Qwen2: q/k/v biases)
ENGINES = ("auto", "fast", "model")


@dataclass
class Generation:
    """A batch of prompt + response rows.

    prompt_ids [B, P] left-padded; prompt_mask [B, P]; response_ids [B, T] right-padded with the pad id;
    response_mask [B, T] float 0/1; truncated [B] bool (hit max_new_tokens without a stop); logprobs
    [B, T] float: log-prob of each response token under the sampling distribution (softmax of
    logits / temperature, before top-p; plain softmax when greedy), 0 on padding.
    """

    prompt_ids: Tensor
    prompt_mask: Tensor
    response_ids: Tensor
    response_mask: Tensor
    truncated: Tensor
    logprobs: Tensor | None = None

    @property
    def response_lengths(self) -> Tensor:
        return self.response_mask.sum(-1).long()

    def sequences(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(input_ids, attention_mask, position_ids)`` of prompt + response, for scoring forwards."""
        return sequence_inputs(self.prompt_ids, self.prompt_mask, self.response_ids, self.response_mask)


def sequence_inputs(prompt_ids: Tensor, prompt_mask: Tensor, response_ids: Tensor,
                    response_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``[prompt (left-padded) | response (right-padded)]`` as ``(input_ids, attention_mask, position_ids)``."""
    input_ids = torch.cat([prompt_ids, response_ids], dim=1)
    attention_mask = torch.cat([prompt_mask, response_mask.to(prompt_mask.dtype)], dim=1)
    return input_ids, attention_mask, positions_from_mask(attention_mask)


def positions_from_mask(mask: Tensor) -> Tensor:
    """Position ids of left-padded rows: ``cumsum(mask) − 1``, 0 on padding. [B, S] → [B, S]."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Token id lists → ``(ids [B, P], mask [B, P])`` padded on the left."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row):] = torch.tensor(list(row), dtype=torch.long)
            mask[i, width - len(row):] = 1
    return ids, mask


def cpu_quota(cpu_max: str) -> int | None:
    """Cores allowed by a cgroup v2 ``cpu.max`` line (``"200000 100000"`` → 2, rounded up; ``"max …"`` → None)."""
    fields = cpu_max.split()
    if not fields or fields[0] == "max":
        return None
    period = int(fields[1]) if len(fields) > 1 else 100_000
    return max(1, math.ceil(int(fields[0]) / period))


def usable_cores() -> int:
    """The cores this process may run on: its affinity set, capped by the cgroup's ``cpu.max`` quota. The
    default intra-op thread count of ``logicrl train``/``sft`` (deterministic: it does not depend on the load)."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota = cpu_quota(Path("/sys/fs/cgroup/cpu.max").read_text())
    except (OSError, ValueError):
        quota = None
    return min(cores, quota) if quota else cores


def busy_cores(interval_s: float = 0.25, cpus: Sequence[int] | None = None) -> float:
    """Cores of ``cpus`` (default: this process's affinity set) kept busy by other processes, from two reads
    of the per-CPU lines of ``/proc/stat`` ``interval_s`` apart (this process sleeps in between, so it is not
    counted); 0.0 where there is no ``/proc/stat``."""
    wanted = {f"cpu{c}" for c in (os.sched_getaffinity(0) if cpus is None else cpus)}

    def ticks() -> tuple[int, int]:
        total = idle = 0
        with open("/proc/stat") as stat:
            for line in stat:
                name, *values = line.split()
                if name in wanted:
                    numbers = [int(v) for v in values]
                    total, idle = total + sum(numbers), idle + numbers[3] + numbers[4]  # idle + iowait
        return total, idle

    try:
        total, idle = ticks()
        time.sleep(interval_s)
        total2, idle2 = ticks()
    except (OSError, ValueError, IndexError):
        return 0.0
    return (1 - (idle2 - idle) / max(total2 - total, 1)) * len(wanted)


def set_cpu_threads(threads: int | None) -> int:
    """Set torch's intra-op threads to ``threads`` (default: `usable_cores`) and return the number. Warns when
    other processes keep some of those cores busy: an OpenMP thread that shares its core with a busy process
    stalls every parallel region (docs/performance.md)."""
    chosen = threads or usable_cores()
    torch.set_num_threads(chosen)
    busy = busy_cores() if threads is None else 0.0
    if busy >= 0.5:
        warnings.warn(
            f"other processes keep {busy:.1f} of the {chosen} cores busy, and threads that share a busy core stall; "
            f"set threads={max(1, chosen - round(busy))} for this run", stacklevel=2)
    return chosen


class _Linear:
    """``y = x Wᵀ + b`` for one or several projections that read the same input (outputs concatenated).

    On CPU (float32, or bfloat16 where supported) the weights are concatenated and pre-packed for
    oneDNN once; elsewhere each projection is a plain ``F.linear`` on the module's own weight (no copy).
    """

    def __init__(self, linears: Sequence[torch.nn.Linear], rows_hint: int) -> None:
        self.parts = [(m.weight.detach(), None if m.bias is None else m.bias.detach()) for m in linears]
        weight, self.packed = self.parts[0][0], None
        if weight.device.type == "cpu" and torch.backends.mkldnn.is_available() and (
                weight.dtype == torch.float32 or (weight.dtype == torch.bfloat16
                                                  and torch.ops.mkldnn._is_mkldnn_bf16_supported())):
            weight, bias = (None if t[0] is None else torch.cat(t) for t in zip(*self.parts))
            self.packed = (torch.ops.mkldnn._reorder_linear_weight(weight, rows_hint), bias)

    def __call__(self, x: Tensor) -> Tensor:
        if self.packed is None:
            outs = [F.linear(x, w, b) for w, b in self.parts]
            return outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)
        y = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, x.shape[-1]), *self.packed, "none", [], "")
        return y.view(*x.shape[:-1], y.shape[-1])


def _fast_engine_fits(model, cache_len: int) -> bool:
    """Whether `_LlamaEngine` computes exactly what ``model`` does (a Llama-style block, plain Linears)."""
    config, inner = model.config, getattr(model, "model", None)
    window = getattr(config, "sliding_window", None) if getattr(config, "use_sliding_window", True) else None
    if config.model_type not in FAST_MODEL_TYPES or inner is None or (window and window < cache_len):
        return False
    blocks = [m for layer in inner.layers for m in (
        layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj, layer.self_attn.o_proj,
        layer.mlp.gate_proj, layer.mlp.up_proj, layer.mlp.down_proj)]
    return all(type(m) is torch.nn.Linear for m in [*blocks, model.lm_head]) and hasattr(inner, "rotary_emb")


class _Block(NamedTuple):
    """One decoder layer of `_LlamaEngine`: the model's norms and activation, fused projections."""

    attn_norm: torch.nn.Module
    qkv: _Linear
    out: _Linear
    mlp_norm: torch.nn.Module
    gate_up: _Linear
    down: _Linear
    act: torch.nn.Module


class _LlamaEngine:
    """Llama-family forward over a two-part KV cache: the prompt part once per prompt (shared by its
    ``n`` rows) and the response part, preallocated per row. Attention of a decode step is one softmax
    over [prompt keys | response keys]; the prompt scores come from one matmul per group of rows:
    ``[g, kv_heads, n·q_per_kv, D] @ [g, kv_heads, D, P]``, so the prompt cache is read once per prompt.
    """

    def __init__(self, model, rows: int, max_new_tokens: int) -> None:
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        inner, config, self.rope_apply = model.model, model.config, apply_rotary_pos_emb
        self.embed, self.rotary, self.norm = inner.embed_tokens, inner.rotary_emb, inner.norm
        attention = inner.layers[0].self_attn
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim, self.scaling = attention.head_dim, attention.scaling
        self.layers = [_Block(layer.input_layernorm, _Linear([a.q_proj, a.k_proj, a.v_proj], rows),
                              _Linear([a.o_proj], rows), layer.post_attention_layernorm,
                              _Linear([m.gate_proj, m.up_proj], rows), _Linear([m.down_proj], rows), m.act_fn)
                       for layer in inner.layers for a, m in [(layer.self_attn, layer.mlp)]]
        self.head = _Linear([model.lm_head], rows)
        self.max_new_tokens, self.length = max_new_tokens, 0

    def _qkv(self, layer: _Block, x: Tensor, rope: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """x [B, S, E] → q [B, H, S, D], k and v [B, H_kv, S, D], rotary applied to q and k."""
        B, S, _ = x.shape
        q, k, v = layer.qkv(layer.attn_norm(x)).split(
            [self.heads * self.head_dim, self.kv_heads * self.head_dim, self.kv_heads * self.head_dim], dim=-1)
        q, k = (t.view(B, S, -1, self.head_dim).transpose(1, 2) for t in (q, k))
        q, k = self.rope_apply(q, k, *rope)
        return q, k, v.view(B, S, -1, self.head_dim).transpose(1, 2)

    @staticmethod
    def _finish_layer(layer: _Block, x: Tensor, attended: Tensor) -> Tensor:
        """Residual adds around the output projection and the gated MLP; attended [B, S, H·D]."""
        x = x + layer.out(attended)
        gate, up = layer.gate_up(layer.mlp_norm(x)).chunk(2, dim=-1)
        return x + layer.down(layer.act(gate) * up)

    def prefill(self, ids: Tensor, mask: Tensor, n: int) -> Tensor:
        """Run the g prompts [g, P] (left-padded), keep their KV; return next-token logits [g·n, V]."""
        g, P = ids.shape
        x = self.embed(ids)
        rope = self.rotary(x, positions_from_mask(mask))
        eye = torch.eye(P, dtype=torch.bool, device=ids.device)
        # causal, padding keys hidden; a padding query sees itself (no empty softmax rows)
        allowed = (eye.cumsum(0).bool() & mask.bool()[:, None, :]) | eye
        self.prompt_kv = []
        for layer in self.layers:
            q, k, v = self._qkv(layer, x, rope)
            self.prompt_kv.append((k.contiguous(), v.contiguous()))  # read every step: keep them dense
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed[:, None], scale=self.scaling,
                                                 enable_gqa=True)
            x = self._finish_layer(layer, x, out.transpose(1, 2).reshape(g, P, -1))
        bias = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill(mask == 0, float("-inf"))
        self.prompt_bias, self.group_size = bias.repeat_interleave(n, 0)[:, None, None, :], n
        shape = (2, len(self.layers), g * n, self.kv_heads, self.max_new_tokens, self.head_dim)
        self.response_kv = torch.empty(shape, dtype=x.dtype, device=x.device)
        return self.head(self.norm(x[:, -1])).repeat_interleave(n, 0)

    def step(self, tokens: Tensor, positions: Tensor) -> Tensor:
        """Append one token per row (tokens, positions [B]); return next-token logits [B, V]."""
        x = self.embed(tokens[:, None])
        rope = self.rotary(x, positions[:, None])
        t = self.length
        for i, layer in enumerate(self.layers):
            q, k, v = self._qkv(layer, x, rope)
            keys, values = self.response_kv[0, i], self.response_kv[1, i]
            keys[:, :, t], values[:, :, t] = k[:, :, 0], v[:, :, 0]
            x = self._finish_layer(layer, x, self._attend(i, q, keys[:, :, :t + 1], values[:, :, :t + 1]))
        self.length += 1
        return self.head(self.norm(x[:, -1]))

    def _attend(self, i: int, q: Tensor, keys: Tensor, values: Tensor) -> Tensor:
        """softmax([q·Kpᵀ + bias | q·Krᵀ]·scale)·[Vp; Vr] for q [B, H, 1, D]; returns [B, 1, H·D]."""
        prompt_keys, prompt_values = self.prompt_kv[i]
        (g, kv, P, D), r = prompt_keys.shape, self.group_size
        q = q.reshape(g * r, kv, -1, D) * self.scaling  # head h reads kv head h // (H / H_kv)
        per_group = q.view(g, r, kv, -1, D).transpose(1, 2).reshape(g, kv, -1, D)
        prompt_scores = (per_group @ prompt_keys.transpose(-1, -2)).view(g, kv, r, -1, P).transpose(1, 2)
        scores = torch.cat([prompt_scores.reshape(g * r, kv, -1, P) + self.prompt_bias,
                            q @ keys.transpose(-1, -2)], dim=-1)
        weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        w_prompt = weights[..., :P].reshape(g, r, kv, -1, P).transpose(1, 2).reshape(g, kv, -1, P)
        out = (w_prompt @ prompt_values).view(g, kv, r, -1, D).transpose(1, 2).reshape(g * r, kv, -1, D)
        return (out + weights[..., P:] @ values).reshape(g * r, 1, -1)

    def select(self, groups: Tensor) -> None:
        """Keep only the prompts ``groups`` (indices into the current ones) and their rows."""
        rows = _group_rows(groups, self.group_size)
        self.prompt_kv = [(k[groups], v[groups]) for k, v in self.prompt_kv]
        self.prompt_bias, self.response_kv = self.prompt_bias[rows], self.response_kv[:, :, rows]


class _ModelEngine:
    """Any causal LM: the model's own forward and dynamic KV cache (prefill once per prompt, then the
    cache rows are repeated ``n`` times)."""

    def __init__(self, model) -> None:
        self.model = model

    def prefill(self, ids: Tensor, mask: Tensor, n: int) -> Tensor:
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask),
                         use_cache=True, logits_to_keep=1)
        self.cache, self.mask, self.group_size = out.past_key_values, mask.repeat_interleave(n, 0), n
        self.cache.batch_repeat_interleave(n)
        return out.logits[:, -1].repeat_interleave(n, 0)

    def step(self, tokens: Tensor, positions: Tensor) -> Tensor:
        self.mask = torch.cat([self.mask, self.mask.new_ones(len(tokens), 1)], dim=1)
        out = self.model(input_ids=tokens[:, None], attention_mask=self.mask, position_ids=positions[:, None],
                         past_key_values=self.cache, use_cache=True)
        return out.logits[:, -1]

    def select(self, groups: Tensor) -> None:
        rows = _group_rows(groups, self.group_size)
        self.cache.batch_select_indices(rows)
        self.mask = self.mask[rows]


def _group_rows(groups: Tensor, group_size: int) -> Tensor:
    """Row indices of ``groups`` when group i holds rows i·size … i·size+size−1."""
    return (groups[:, None] * group_size + torch.arange(group_size, device=groups.device)).flatten()


class _Sampler:
    """Next tokens from logits [B, V]: argmax (greedy), or inverse-CDF sampling of
    softmax(logits / temperature), restricted to the top-p nucleus, with uniform numbers
    ``u[row, step]`` drawn up front from ``seed`` (on the CPU, so every device samples the same)."""

    def __init__(self, rows: int, steps: int, *, temperature: float, top_p: float, greedy: bool,
                 seed: int | None, device: torch.device) -> None:
        self.temperature, self.top_p, self.greedy = temperature, top_p, greedy
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.uniform = None if greedy else torch.rand(rows, steps, generator=generator).to(device)

    def __call__(self, logits: Tensor, rows: Tensor, step: int) -> tuple[Tensor, Tensor]:
        """``(tokens [B], log-probs [B])`` for the rows ``rows`` (global row indices) at ``step``."""
        logits = logits.float()
        if self.greedy:
            tokens = logits.argmax(-1)
            return tokens, logits.gather(-1, tokens[:, None])[:, 0] - logits.logsumexp(-1)
        logp = torch.log_softmax(logits / self.temperature, dim=-1)
        probs, ids = _nucleus(logp.exp(), self.top_p)
        cdf = probs.cumsum(-1)
        u = self.uniform[rows.to(self.uniform.device), step][:, None] * cdf[:, -1:]
        pick = torch.searchsorted(cdf, u, right=True).clamp(max=cdf.shape[-1] - 1)
        tokens = (pick if ids is None else ids.gather(-1, pick))[:, 0]
        return tokens, logp.gather(-1, tokens[:, None])[:, 0]


def _nucleus(probs: Tensor, top_p: float) -> tuple[Tensor, Tensor | None]:
    """Top-p filter: ``(kept probs [B, K], their token ids [B, K] or None when all are kept)``.

    Keeps, per row, the most probable tokens up to and including the one that brings their mass to
    ``top_p``. Sorting the whole vocabulary costs more than a decode step, so candidates come from
    ``topk`` with k growing ×8 until every row's nucleus fits.
    """
    if top_p >= 1.0:
        return probs, None
    k = min(64, probs.shape[-1])
    while True:
        top, ids = probs.topk(k, dim=-1)
        before = top.cumsum(-1) - top  # mass of the more probable tokens
        if k == probs.shape[-1] or bool((before[:, -1] >= top_p).all()):
            return top.masked_fill(before >= top_p, 0.0), ids
        k = min(k * 8, probs.shape[-1])


class _StopCheck:
    """Which rows just ended: the new token is a stop id, or the text of the row's last tokens contains a
    stop text (only a window as long as the longest stop text's UTF-8 bytes, plus 2, is decoded: each
    token holds at least one byte, so a stop text that the newest token completes lies inside it)."""

    def __init__(self, stop_token_ids: Sequence[int], stop_texts: Sequence[str], tokenizer) -> None:
        if stop_texts and tokenizer is None:
            raise ValueError("stop_texts needs the tokenizer")
        self.ids = torch.tensor(sorted(set(stop_token_ids)), dtype=torch.long)
        self.texts, self.tokenizer = tuple(stop_texts), tokenizer
        self.window = max((len(s.encode()) for s in self.texts), default=0) + 2

    def __call__(self, tokens: Tensor, history: Tensor, step: int) -> Tensor:
        """tokens [B] just sampled (CPU), history [B, ≥ step + 1] the rows' tokens so far → ended [B] bool."""
        ended = torch.isin(tokens, self.ids)
        if self.texts:
            window = history[:, max(0, step + 1 - self.window):step + 1].tolist()
            texts = self.tokenizer.batch_decode(window, skip_special_tokens=False)
            ended |= torch.tensor([any(s in text for s in self.texts) for text in texts])
        return ended


def _decode(engine, prompt_ids: Tensor, prompt_mask: Tensor, *, n: int, max_new_tokens: int, pad_token_id: int,
            sampler: _Sampler, stops: _StopCheck) -> tuple[Tensor, Tensor, Tensor]:
    """The decode loop over ``g`` distinct prompts × ``n`` rows; returns CPU tensors
    ``(tokens [g·n, max_new_tokens], log-probs [g·n, max_new_tokens], lengths [g·n] or −1 if never stopped)``.

    Rows are finished once they stop; a prompt leaves the batch once all its rows have finished."""
    device, total = prompt_ids.device, prompt_ids.shape[0] * n
    logits = engine.prefill(prompt_ids, prompt_mask, n)
    positions = prompt_mask.sum(-1).repeat_interleave(n)  # position of the next token, per row
    rows = torch.arange(total)  # global index of each row in the batch
    tokens_out = torch.full((total, max_new_tokens), pad_token_id, dtype=torch.long)
    logp_out = torch.zeros(total, max_new_tokens)
    lengths = torch.full((total,), -1, dtype=torch.long)
    for step in range(max_new_tokens):
        tokens, logp = sampler(logits, rows, step)
        tokens_cpu = tokens.cpu()
        tokens_out[rows, step], logp_out[rows, step] = tokens_cpu, logp.float().cpu()
        ended = stops(tokens_cpu, tokens_out[rows], step) & (lengths[rows] < 0)
        lengths[rows[ended]] = step + 1
        if step + 1 == max_new_tokens or bool((lengths >= 0).all()):
            break
        open_groups = (lengths[rows] < 0).view(-1, n).any(-1)
        if not bool(open_groups.all()):
            groups = open_groups.nonzero()[:, 0]
            engine.select(groups.to(device))
            keep = _group_rows(groups, n)
            rows, tokens, positions = rows[keep], tokens[keep.to(device)], positions[keep.to(device)]
        logits, positions = engine.step(tokens, positions), positions + 1
    return tokens_out, logp_out, lengths


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
) -> Generation:
    """Sample ``n`` responses per prompt (greedy: the same response ``n`` times).

    ``seed`` makes sampling reproducible (the trainer passes one per step, so a resumed run samples the
    same responses); row r always draws the same random numbers, whatever the other rows do.
    ``stop_texts`` needs ``tokenizer`` (stop strings may span tokens). ``engine``: "fast" (the
    Llama-family engine; ValueError for other models), "model" (the model's own forward), "auto"
    (fast when the model allows it).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    device = next(model.parameters()).device
    prompt_ids, prompt_mask = left_pad(prompts, pad_token_id)
    fits = _fast_engine_fits(model, prompt_ids.shape[1] + max_new_tokens)
    if engine == "fast" and not fits:
        raise ValueError(f"the fast engine does not support this model ({model.config.model_type})")
    rows = torch.arange(len(prompts)).repeat_interleave(n)
    runner = _LlamaEngine(model, len(rows), max_new_tokens) if engine != "model" and fits else _ModelEngine(model)
    sampler = _Sampler(len(rows), max_new_tokens, temperature=temperature, top_p=top_p, greedy=greedy, seed=seed,
                       device=device)
    tokens, logp, lengths = _decode(
        runner, prompt_ids.to(device), prompt_mask.to(device), n=n, max_new_tokens=max_new_tokens,
        pad_token_id=pad_token_id, sampler=sampler, stops=_StopCheck(stop_token_ids, stop_texts, tokenizer))
    truncated = lengths < 0
    lengths = lengths.masked_fill(truncated, max_new_tokens)
    width = max(int(lengths.max()), 1)
    response_mask = (torch.arange(width)[None, :] < lengths[:, None]).float()
    response_ids = tokens[:, :width].masked_fill(response_mask == 0, pad_token_id)
    return Generation(prompt_ids[rows], prompt_mask[rows], response_ids, response_mask, truncated,
                      logp[:, :width] * response_mask)

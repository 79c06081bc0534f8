"""The memory plan: peak accelerator memory of a training run, by component, before anything loads.

Pure arithmetic on a model's shape (`ModelShape`, from its config.json) and a run's shape (`RunShape`, from
the run config, as `logicrl.rl.memory` maps it); no torch, no files. ``logicrl train`` and ``logicrl sft``
print the plan and refuse a run that cannot fit the device (`logicrl.rl.memory`).

Components (bytes; N = parameters, N_t = trainable parameters):

* weights     N · weight_bytes (the trainer keeps fp32 master weights: 4), + N_t · 4 for a LoRA adapter
* gradients   N_t · weight_bytes (gradients take the parameters' dtype)
* optimizer   N_t · 2 · weight_bytes (AdamW's exp_avg and exp_avg_sq, in the parameters' dtype)
* reference   N · reference_bytes, when the KL needs a frozen reference (with LoRA: the base model with the
              adapter disabled, or N_t · 4 for a stage-start reference, a frozen fp32 copy of the adapter)
* critic      N_decoder · 3 · 4 (PPO's value model, an fp32 copy of the decoder: its weights and AdamW state
              persist; its gradients exist only in its own step, which needs less than the policy's update)
* logits      without logprob_chunk, rows · T · V · bytes per element (`logit_bytes_per_element`: the
              full-vocabulary copies alive at once in the log-prob and entropy computation); with it, the
              fused head (`logicrl.engine.logprobs.fused_head_logprobs`, which every plain ``nn.Linear`` head
              takes) projects min(logprob_chunk, rows · T) tokens of the whole micro-batch at a time: that
              many · V · `fused_head_bytes_per_element`, plus the head's weight cast to the compute dtype when it
              is stored in another (V · h · compute_bytes) and, when the head is trained, its weight gradient's
              accumulator (V · h · 4) and one chunk's product (V · h · compute_bytes)
* activations tokens · layers · `activation_elements_per_token` · compute_bytes without gradient
              checkpointing, where tokens = distinct prompts · P + rows · T (a shared prompt runs once); with
              it, tokens · layers · h · 4 (the fp32 residual stream at each layer boundary) + max(0, one
              layer's activations − logits): backward recomputes one layer at a time, after the full-
              vocabulary tensors are freed
* KV cache    layers · 2 · kv_heads · head_dim · kv_bytes · prompts · group · (P + T): the rollout engine
              keeps the prefix that every prompt shares once and preallocates each row's own keys/values (the
              rest of its prompt, then its response); the bound is that of prompts that share nothing
* rollout weights  the rollout engine's own copy of the projections it cannot read in place, in its dtype
              (kv_bytes), made once per rollout (`logicrl.engine.onednn._Linear`, `logicrl.engine.linears`):
              every projection and the output head (V·h) when the stored weights are in another dtype (fp32
              master weights under bf16 autocast); otherwise a LoRA run's merged targets, W + s·B·A, alone; on
              a CPU both: oneDNN's pre-packed copies of everything (or, bfloat16 on AMX, the tile-ordered copies of
              `logicrl.engine.tile_linear`: the same bytes), and the merged targets they were packed from

Peak = weights + optimizer + reference + critic + max(update, rollout), with update = gradients + logits +
activations and rollout = KV cache + rollout weights: gradients are freed after each optimizer step
(``set_to_none``), and the rollout's cache and weight copies are gone before the update starts. Each term is a
worst case (every response at T tokens), so the sum is an upper estimate; tests/test_memory_plan.py measures it
against real CPU steps and rollouts, tests/test_gpu_check.py against peaks measured on an H100.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

GIB = 1024**3
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
MODEL_TYPES_WITH_QKV_BIAS = ("qwen2",)  # Qwen2's q/k/v projections carry a bias (no config key says so)


@dataclass(frozen=True)
class ModelShape:
    """A Llama-family decoder (Llama, Qwen2, Mistral, SmolLM2): what its memory depends on."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool
    head_dim: int = 0  # 0: hidden_size // num_heads
    qkv_bias: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ModelShape:
        """From a transformers config.json dict; ValueError naming the missing keys."""
        keys = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")
        missing = [k for k in keys if not isinstance(config.get(k), int)]
        if missing:
            kind = config.get("model_type", "unknown")
            raise ValueError(f"config of model type {kind!r} has no {', '.join(missing)}")
        return cls(
            hidden_size=config["hidden_size"], num_layers=config["num_hidden_layers"],
            num_heads=config["num_attention_heads"],
            num_kv_heads=config.get("num_key_value_heads") or config["num_attention_heads"],
            intermediate_size=config["intermediate_size"], vocab_size=config["vocab_size"],
            tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
            head_dim=config.get("head_dim") or 0,
            qkv_bias=bool(config.get("attention_bias", config.get("model_type") in MODEL_TYPES_WITH_QKV_BIAS)))

    @property
    def dim(self) -> int:
        """Per-head width D."""
        return self.head_dim or self.hidden_size // self.num_heads

    def linears(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear of one layer, by the names peft's ``target_modules`` use."""
        h, q, kv, i = self.hidden_size, self.num_heads * self.dim, self.num_kv_heads * self.dim, self.intermediate_size
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def layer_params(self) -> int:
        """Σ in·out over the 7 linears + the q/k/v biases + 2 RMSNorm weights (h each)."""
        linears = self.linears()
        bias = sum(linears[k][1] for k in ("q_proj", "k_proj", "v_proj")) if self.qkv_bias else 0
        return sum(i * o for i, o in linears.values()) + bias + 2 * self.hidden_size

    @property
    def decoder_params(self) -> int:
        """Embedding V·h + layers · `layer_params` + the final norm h (what PPO's critic copies)."""
        return self.vocab_size * self.hidden_size + self.num_layers * self.layer_params() + self.hidden_size

    @property
    def params(self) -> int:
        """`decoder_params` + the output head V·h unless tied to the embedding."""
        return self.decoder_params + (0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size)


def lora_params(shape: ModelShape, rank: int, targets: tuple[str, ...] = LORA_TARGETS) -> int:
    """Adapter parameters: layers · Σ_targets r·(in + out) (A is r×in, B is out×r)."""
    linears = shape.linears()
    unknown = [t for t in targets if t not in linears]
    if unknown:
        raise ValueError(f"unknown LoRA target {', '.join(unknown)}; choose from {', '.join(linears)}")
    return shape.num_layers * sum(rank * (linears[t][0] + linears[t][1]) for t in targets)


@dataclass(frozen=True)
class RunShape:
    """What a run holds and computes, in the terms the memory depends on (see `logicrl.rl.memory`)."""

    micro_batch_rows: int  # responses per forward/backward
    prompt_tokens: int  # P: the longest prompt (an estimate: prompts are not tokenized before loading)
    response_tokens: int  # T: the longest response (or target)
    rows_per_prompt: int = 1  # rows of a micro-batch that share one prompt (the group's samples)
    weight_bytes: int = 4  # the policy's parameters (and so gradients and AdamW state)
    compute_bytes: int = 4  # activations and logits: 2 under bf16/fp16 autocast
    reference_bytes: int | None = None  # the frozen KL reference; None: no reference
    reference_moves: bool = False  # algorithm.reference=stage_start (LoRA: a copy of the adapter per stage)
    critic: bool = False  # PPO's value model
    gradient_checkpointing: bool = False
    entropy: bool = True  # the loss computes the entropy of the logits (the RL loss does, as a statistic)
    entropy_grad: bool = False  # ... and differentiates it (an entropy bonus, algorithm.entropy_coef > 0)
    rollout_prompts: int = 0  # prompts sampled at once (0: the run samples nothing)
    rollout_group: int = 1  # responses per prompt
    rollout_tokens: int = 0  # new tokens per response
    kv_bytes: int = 4  # the KV cache's dtype (the model's activations': fp32 weights give an fp32 cache)
    engine_copies_all: bool = False  # the rollout engine copies every projection whatever its dtype (a CPU)
    compiled_head: bool = False  # the fused head's softmax runs compiled (logicrl.engine.head_softmax: a CPU)


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes per component and the peak they add up to (see the module docstring)."""

    components: dict[str, int]
    params: int
    trainable: int
    notes: tuple[str, ...] = field(default=())

    PERSISTENT = ("weights", "optimizer", "reference", "critic")
    UPDATE = ("gradients", "logits", "activations")
    ROLLOUT = ("kv_cache", "rollout_weights")

    @property
    def update(self) -> int:
        return sum(self.components[k] for k in self.UPDATE)

    @property
    def rollout(self) -> int:
        return sum(self.components[k] for k in self.ROLLOUT)

    @property
    def total(self) -> int:
        """persistent + max(update, rollout): the two phases do not overlap."""
        return sum(self.components[k] for k in self.PERSISTENT) + max(self.update, self.rollout)


def logit_bytes_per_element(compute_bytes: int, entropy: bool) -> int:
    """Bytes per (row, token, vocabulary entry) of full-vocabulary tensors alive at once in the log-prob pass
    (`logicrl.engine.logprobs.response_logprobs` → `logprobs_and_entropy`, as they are today; checked against
    measured peaks in tests/test_memory_plan.py):

    * the tempered logits (compute_bytes) and their float32 log_softmax, kept for backward (4), plus the
      float32 copy that log_softmax reads when the logits are 16-bit (4);
    * with the entropy: exp(log p) and −p·log p, 2 more float32 tensors at its peak.
    """
    kept = compute_bytes + 4 + (4 if compute_bytes != 4 else 0)
    return kept + (2 * 4 if entropy else 0)


def fused_head_bytes_per_element(compute_bytes: int, entropy_grad: bool, compiled: bool = False) -> int:
    """Bytes per (token, vocabulary entry) of one chunk of the fused head at its peak, its backward
    (`logicrl.engine.logprobs._FusedHead`; checked against measured peaks in tests/test_memory_plan.py).
    ``compiled``: the softmax work runs compiled (`logicrl.engine.head_softmax`, a CPU where it builds), which
    holds the recomputed logits and their gradient, both in the compute dtype (2 · compute_bytes). PyTorch's ops
    hold more:

    * the recomputed logits z in float32, log p = z − lse, p = exp(log p) and the gradient g_z (4 × 4), plus
      the 16-bit product that z is cast from under bf16/fp16 autocast (compute_bytes);
    * with the entropy's gradient: log p with p = 0 masked, its sum with H and the product with p (3 × 4).
    The forward holds less: z, z − lse, exp and the product for the entropy.
    """
    if compiled:
        return 2 * compute_bytes
    return 4 * 4 + (compute_bytes if compute_bytes != 4 else 0) + (3 * 4 if entropy_grad else 0)


def activation_elements_per_token(shape: ModelShape) -> int:
    """Elements one decoder layer saves for backward per token: 10·h + 4·kv + 4·i, where kv = kv_heads · D.

    h-sized: the two RMSNorms' input, normalised and scaled tensors (6·h), q before and after rotary
    (2·h), the attention output and the o_proj input (2·h); kv-sized: k before/after rotary and v, and the
    shared prompt's cache gathered per row (4·kv); i-sized: gate, up, SiLU(gate) and their product (4·i).
    (Korthikanti et al. 2022, arXiv 2205.05198, count the same way for GPT; SDPA keeps no attention matrix.)
    """
    kv = shape.num_kv_heads * shape.dim
    return 10 * shape.hidden_size + 4 * kv + 4 * shape.intermediate_size


def rollout_weight_params(shape: ModelShape, run: RunShape, lora_targets: tuple[str, ...] | None) -> int:
    """Parameters the rollout engine copies (see the module docstring): every projection and the output head
    when it cannot read the stored weights in place (another dtype, or ``run.engine_copies_all``: a CPU's
    packed copies, which keep beside them the merged LoRA targets they were packed from); else the LoRA
    targets merged (``lora_targets``; None: a full model, nothing copied)."""
    linears = shape.linears()
    everything = shape.num_layers * sum(i * o for i, o in linears.values()) + shape.vocab_size * shape.hidden_size
    merged = shape.num_layers * sum(i * o for name, (i, o) in linears.items() if name in (lora_targets or ()))
    if run.engine_copies_all:
        return everything + merged
    return everything if run.weight_bytes != run.kv_bytes else merged


def plan(shape: ModelShape, run: RunShape, *, lora_rank: int | None = None,
         lora_targets: tuple[str, ...] = LORA_TARGETS, logprob_chunk: int | None = None) -> MemoryPlan:
    """The memory plan of ``run`` on a model of ``shape``; the formulas are in the module docstring.

    Args:
        lora_rank: train a rank-r LoRA adapter on ``lora_targets`` instead of every weight: the trainable
            parameters are `lora_params` (fp32, with their gradients and AdamW state), the base weights stay
            frozen and the reference is the base model (no second copy; a moving reference is a copy of the
            adapter).
        logprob_chunk: log-probs computed through the fused head this many response tokens of the micro-batch
            at a time (the chunk's logits recomputed in backward); None: full logits of the whole micro-batch.
    """
    n, notes = shape.params, []
    if lora_rank is None:
        trainable, trainable_bytes, reference = n, run.weight_bytes, run.reference_bytes
    else:
        trainable, trainable_bytes, reference = lora_params(shape, lora_rank, lora_targets), 4, None
        notes.append(f"LoRA rank {lora_rank} on {', '.join(lora_targets)}")
    rows, T = run.micro_batch_rows, run.response_tokens
    prompts = math.ceil(rows / max(1, run.rows_per_prompt))
    tokens = prompts * run.prompt_tokens + rows * T  # a shared prompt runs once
    per_layer = activation_elements_per_token(shape) * run.compute_bytes
    if logprob_chunk is None:
        logits = rows * T * shape.vocab_size * logit_bytes_per_element(run.compute_bytes, run.entropy)
    else:  # the fused head: one chunk of the micro-batch's tokens, and a trained head's gradient temporaries
        chunk = min(logprob_chunk, rows * T)
        logits = chunk * shape.vocab_size * fused_head_bytes_per_element(run.compute_bytes, run.entropy_grad,
                                                                         run.compiled_head)
        if run.compute_bytes != run.weight_bytes:  # the head's weight cast to the compute dtype, once per pass
            logits += shape.vocab_size * shape.hidden_size * run.compute_bytes
        if lora_rank is None:
            logits += shape.vocab_size * shape.hidden_size * (4 + run.compute_bytes)
    if run.gradient_checkpointing:  # the recomputed layer lives after the logits' tensors are freed
        activations = tokens * shape.num_layers * shape.hidden_size * 4 + max(0, tokens * per_layer - logits)
    else:
        activations = tokens * shape.num_layers * per_layer
    kv = shape.num_layers * 2 * shape.num_kv_heads * shape.dim * run.kv_bytes
    rollout_tokens = run.rollout_prompts * run.rollout_group * (run.prompt_tokens + run.rollout_tokens)
    components = {
        "weights": n * run.weight_bytes + (trainable * 4 if lora_rank is not None else 0),
        "gradients": trainable * trainable_bytes,
        "optimizer": trainable * 2 * trainable_bytes,
        "reference": n * reference if reference else (
            trainable * 4 if lora_rank is not None and run.reference_bytes and run.reference_moves else 0),
        "critic": shape.decoder_params * 3 * 4 if run.critic else 0,
        "logits": logits,
        "activations": activations,
        "kv_cache": kv * rollout_tokens,
        "rollout_weights": rollout_weight_params(shape, run, lora_targets if lora_rank is not None else None)
        * run.kv_bytes if rollout_tokens else 0,
    }
    return MemoryPlan(components, params=n, trainable=trainable, notes=tuple(notes))


def gib(nbytes: int) -> str:
    return f"{nbytes / GIB:.1f} GiB"


def format_plan(memory: MemoryPlan, capacity: int | None = None, device: str = "") -> str:
    """The plan as lines: one per component, then the peak (against ``capacity`` when given)."""
    names = {"weights": "weights", "gradients": "gradients", "optimizer": "optimizer (AdamW)",
             "reference": "reference model", "critic": "critic (PPO)", "logits": "logits (log-probs)",
             "activations": "activations", "kv_cache": "KV cache (rollouts)",
             "rollout_weights": "rollout weights"}
    lines = [f"memory plan: {memory.params / 1e9:.2f}B parameters, {memory.trainable / 1e9:.3g}B trainable"
             + (f" ({'; '.join(memory.notes)})" if memory.notes else "")]
    lines += [f"  {names[k]:<22}{gib(v):>11}" for k, v in memory.components.items() if v]
    peak = f"  {'peak':<22}{gib(memory.total):>11}  (persistent + max(update {gib(memory.update)}, " \
           f"rollout {gib(memory.rollout)}))"
    if capacity:
        peak += f" of {gib(capacity)}{' on ' + device if device else ''}"
    return "\n".join(lines + [peak])


def refusal(memory: MemoryPlan, capacity: int, device: str, knobs: list[str]) -> str | None:
    """None when the plan fits ``capacity``; otherwise one line: the peak, the capacity and ``knobs``."""
    if memory.total <= capacity:
        return None
    return (f"the memory plan needs {gib(memory.total)} at peak but {device} has {gib(capacity)}: "
            + "; ".join(knobs))

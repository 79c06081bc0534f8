"""The memory plan at the edge: a model's config.json, the device's capacity, and a run config's `RunShape`.

``logicrl train`` and ``logicrl sft`` call `check_memory` after their input checks and before anything loads:
it prints the plan (`logicrl.models.memory_plan`), and on a CUDA device that the plan does not fit it raises a
one-line `UserError` naming the knobs that fix it. Nothing here loads, builds or downloads a model: the
config comes from a local checkpoint, an alias's cache entry (or its known shape), or the local Hugging Face
cache; when none has it the plan is skipped with a note.

`train_run_shape` and `sft_run_shape` mirror what the trainers do today: trained weights are fp32 master
weights whatever ``model.dtype`` says (`logicrl.rl.policy.load_run_models`, `logicrl.rl.sft`), ``model.dtype``
decides the reference's dtype, a LoRA run's frozen base weights (``model.lora``: no reference copy) and the
autocast of the forwards (`logicrl.models.loading.compute_autocast`: on CUDA below fp32, on CPU for bfloat16).
The rollout engine (`logicrl.engine.decode`) runs in the autocast dtype, so the plan counts its KV cache at
2 bytes an element on a bf16/fp16 CUDA run and on a CPU ``model.dtype=bfloat16`` run (`_compute_bytes`), else
at 4, and copies into that dtype the projections it cannot read in place (on a CPU, all of them: oneDNN's
packed copies, or in bfloat16 on an AMX CPU the tile-ordered copies of `logicrl.engine.tile_linear`, the same
bytes). On such a CPU the engine keeps the caches in bf16 only where the CPU flash kernel passes its
probe (`logicrl.engine.attention.cpu_flash_works`), else in fp32, twice what the plan counts.
`train_plan` adds ``model.lora`` and ``algorithm.logprob_chunk``;
`sft_plan` adds ``logprob_chunk`` where the SFT path takes it.
Change them with the trainers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logicrl.errors import DataError, UserError
from logicrl.io import read_text_file
from logicrl.models.loading import MODEL_ALIASES, adapter_base, default_cache_dir, is_lora_checkpoint
from logicrl.models.memory_plan import (
    DTYPE_BYTES,
    LORA_TARGETS,
    MemoryPlan,
    ModelShape,
    RunShape,
    format_plan,
    gib,
    plan,
)
from logicrl.rl.advantages import get_advantage_estimator

PROMPT_TOKENS = 512  # longest prompt assumed (not tokenized before loading): an 8-person K&K puzzle in the
# chat template with the system prompt is ≈ 400 tokens under Qwen2.5's and SmolLM2's tokenizers
WEIGHT_BYTES = 4  # both trainers train float32 weights (fp32 master weights, docs/architecture.md)
KNOWN_ALIAS_CONFIGS = {  # an alias whose cache entry is not built yet: its config.json, as it will be built
    "smollm2-135m": {"model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9,
                     "num_key_value_heads": 3, "intermediate_size": 1536, "vocab_size": 49152,
                     "tie_word_embeddings": True},
    "tiny-random": {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                    "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 717,
                    "tie_word_embeddings": True},
}


@dataclass(frozen=True)
class Device:
    """Where the run goes: a label, its memory in bytes, and whether a plan that exceeds it is refused."""

    label: str
    capacity: int | None
    enforce: bool


def model_config(name: str, cache_dir: Path | None = None) -> dict[str, Any] | None:
    """The config.json of model ``name`` without loading, building or downloading anything; None if unknown.

    An alias: its cache entry's config, else its known shape. A local directory: its config.json (a LoRA
    checkpoint: its base model's). A hub id: the config in the local Hugging Face cache only.
    """
    key = name.strip().lower()
    if key in MODEL_ALIASES:
        cached = Path(cache_dir if cache_dir is not None else default_cache_dir()) / key / "config.json"
        return _read_config(cached) if cached.is_file() else KNOWN_ALIAS_CONFIGS.get(key)
    local = Path(os.path.expanduser(name))
    if local.exists():
        if is_lora_checkpoint(local):  # its base model's
            return model_config(adapter_base(local), cache_dir)
        return _read_config(local / "config.json") if (local / "config.json").is_file() else None
    from huggingface_hub import try_to_load_from_cache

    try:
        hit = try_to_load_from_cache(name, "config.json")
    except ValueError:  # not a valid repo id
        return None
    return _read_config(Path(hit)) if isinstance(hit, str) else None


def _read_config(path: Path) -> dict[str, Any]:
    """A model's config.json; DataError when it is not a JSON object."""
    try:
        config = json.loads(read_text_file(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}): the model directory is "
                        "damaged") from None
    if not isinstance(config, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(config).__name__}")
    return config


def memory_total() -> int | None:
    """MemTotal of /proc/meminfo in bytes (None where there is no such file)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def device_capacity(device: str) -> Device:
    """``model.device`` → `Device`: a CUDA device's total memory (enforced); otherwise the machine's RAM, for
    information only (CPU runs are not refused)."""
    import torch

    if device in ("auto", "cuda") or device.startswith("cuda:"):
        if torch.cuda.is_available():
            index = int(device.split(":")[1]) if ":" in device else 0
            props = torch.cuda.get_device_properties(index)
            return Device(f"cuda:{index} ({props.name})", props.total_memory, True)
    return Device("this machine's RAM", memory_total(), False)


def _compute_bytes(dtype: str, on_cuda: bool) -> tuple[int, int]:
    """(reference bytes, activation bytes) for ``model.dtype``: `resolve_dtype` gives the reference's dtype
    ('auto': bf16 on CUDA, fp32 elsewhere); autocast runs on CUDA below fp32 and on CPU for bf16."""
    reference = DTYPE_BYTES["bfloat16" if on_cuda else "float32"] if dtype == "auto" else DTYPE_BYTES[dtype]
    return reference, (reference if on_cuda or dtype == "bfloat16" else 4)


def train_run_shape(cfg: Any, on_cuda: bool) -> RunShape:
    """A `TrainConfig` → `RunShape` (worst case: every response at ``rollout.max_response_tokens``)."""
    algo, rollout = cfg.algorithm, cfg.rollout
    T = rollout.max_response_tokens
    rows = algo.micro_batch_size
    if algo.micro_batch_tokens is not None:
        rows = max(1, min(rows, algo.micro_batch_tokens // T))
    batch = rollout.prompts_per_step * rollout.group_size
    # a micro-batch holds whole groups only when the rows stay in order (no mini-batch shuffle, no length sort);
    # gradient checkpointing turns the cache off, so the log-probs run every row whole (its prompt included)
    grouped = ((algo.mini_batch_size or batch) == batch and algo.micro_batch_tokens is None
               and not cfg.model.gradient_checkpointing)
    reference_bytes, compute_bytes = _compute_bytes(cfg.model.dtype, on_cuda)
    val_rows, val_tokens = max(algo.micro_batch_size, 8), rollout.val_max_response_tokens or T
    sampled = (rollout.prompts_per_step, rollout.group_size, T)
    if val_rows * (PROMPT_TOKENS + val_tokens) > rollout.prompts_per_step * (PROMPT_TOKENS + rollout.group_size * T):
        sampled = (val_rows, 1, val_tokens)
    return RunShape(
        micro_batch_rows=rows, prompt_tokens=PROMPT_TOKENS, response_tokens=T,
        rows_per_prompt=rollout.group_size if grouped else 1, compute_bytes=compute_bytes,
        weight_bytes=reference_bytes if cfg.model.lora is not None else WEIGHT_BYTES,  # LoRA: the frozen base
        reference_bytes=reference_bytes if algo.uses_reference else None,
        reference_moves=algo.reference == "stage_start",
        critic=get_advantage_estimator(algo.advantage).needs_critic,
        gradient_checkpointing=cfg.model.gradient_checkpointing,
        entropy=True, entropy_grad=algo.entropy_coef > 0,
        rollout_prompts=sampled[0], rollout_group=sampled[1], rollout_tokens=sampled[2], kv_bytes=compute_bytes,
        engine_copies_all=not on_cuda, compiled_head=_compiled_head(on_cuda))


def _compiled_head(on_cuda: bool) -> bool:
    """Whether the fused head's softmax will run compiled (`logicrl.engine.head_softmax`: on a CPU where it builds;
    the first call of a machine builds it, seconds)."""
    if on_cuda:
        return False
    # torch: imported here, by the commands that plan only
    from logicrl.engine.head_softmax import head_softmax_works

    return head_softmax_works()


def train_plan(cfg: Any, shape: ModelShape, on_cuda: bool) -> MemoryPlan:
    """The plan of a `TrainConfig`: `train_run_shape` with ``model.lora`` and ``algorithm.logprob_chunk``."""
    lora = cfg.model.lora
    return plan(shape, train_run_shape(cfg, on_cuda), lora_rank=lora.r if lora is not None else None,
                lora_targets=tuple(lora.target_modules) if lora is not None else LORA_TARGETS,
                logprob_chunk=cfg.algorithm.logprob_chunk)


def sft_run_shape(cfg: Any, on_cuda: bool) -> RunShape:
    """An `SFTConfig` → `RunShape`: fp32 master weights (bf16 autocast on CUDA as ``model.dtype`` says), no
    reference, NLL without entropy; the sampling is
    validation's (greedy, ``max(micro_batch_size, 8)`` rows) or RFT's (``rft_samples`` per puzzle, 32 rows)."""
    T = cfg.max_response_tokens
    rft = cfg.mode == "rft"
    compute_bytes = _compute_bytes(cfg.model.dtype, on_cuda)[1]
    return RunShape(
        micro_batch_rows=cfg.micro_batch_size, prompt_tokens=PROMPT_TOKENS, response_tokens=T,
        weight_bytes=WEIGHT_BYTES, compute_bytes=compute_bytes, gradient_checkpointing=cfg.model.gradient_checkpointing,
        entropy=False, rollout_prompts=max(1, 32 // cfg.rft_samples) if rft else max(cfg.micro_batch_size, 8),
        rollout_group=cfg.rft_samples if rft else 1, rollout_tokens=T, kv_bytes=compute_bytes,
        engine_copies_all=not on_cuda, compiled_head=_compiled_head(on_cuda))


def sft_plan(cfg: Any, shape: ModelShape, on_cuda: bool) -> MemoryPlan:
    """The plan of an `SFTConfig`: `sft_run_shape` with its ``logprob_chunk`` (packed or not)."""
    return plan(shape, sft_run_shape(cfg, on_cuda), logprob_chunk=cfg.logprob_chunk)


def fixes(memory: MemoryPlan, cfg: Any, command: str, capacity: int) -> list[str]:
    """The knobs that shrink the components over budget, in the order they help most."""
    c = memory.components
    persistent = sum(c[k] for k in memory.PERSISTENT)
    knobs = []
    lora = command == "train" and cfg.model.lora is None
    if persistent + c["gradients"] > capacity:
        knobs.append(f"the weights, gradients, optimizer state and reference alone need "
                     f"{gib(persistent + c['gradients'])}, "
                     f"so {'full fine-tuning' if lora else 'this run'} of this model does not fit one device: "
                     + ("train a LoRA adapter (model.lora.r=16: the base in model.dtype, no reference copy), " if lora
                        else "")
                     + "train on several GPUs with `logicrl verl launch` (docs/verl.md), or choose a smaller model")
    micro = "algorithm.micro_batch_size" if command == "train" else "micro_batch_size"
    length = "rollout.max_response_tokens" if command == "train" else "max_response_tokens"
    if memory.update >= memory.rollout:
        knobs.append(f"lower {micro}" + (" or set algorithm.micro_batch_tokens" if command == "train" else ""))
        if command == "train" and cfg.algorithm.logprob_chunk is None and c["logits"] > memory.update // 4:
            knobs.append("set algorithm.logprob_chunk=512 (the logits)")
        if not cfg.model.gradient_checkpointing:
            knobs.append("set model.gradient_checkpointing=true")
    elif command == "train":
        knobs.append("lower rollout.prompts_per_step or rollout.group_size (the rollout KV cache)")
        if cfg.model.lora is not None and c["rollout_weights"]:
            knobs.append("adapt fewer projections (model.lora.target_modules: each rollout merges a copy of every "
                         "adapted one)")
    knobs.append(f"lower {length}")
    return knobs


def memory_report(cfg: Any, command: str) -> tuple[str, str | None]:
    """``(plan text, refusal)`` for ``cfg`` (``command``: "train" or "sft"). The refusal is one line naming the
    knobs, or None when the plan fits, the device is not enforced (CPU) or the plan cannot be made."""
    device = device_capacity(cfg.model.device)
    config = model_config(cfg.model.name)
    if config is None:
        return (f"memory plan: not made (no config.json for {cfg.model.name!r} on this machine; a hub model's "
                "config is read from the local Hugging Face cache only)"), None
    try:
        shape = ModelShape.from_config(config)
    except ValueError as err:
        return f"memory plan: not made ({err})", None
    try:
        memory = (train_plan if command == "train" else sft_plan)(cfg, shape, device.enforce)
    except ValueError as err:  # a model.lora target the plan does not know
        return f"memory plan: not made ({err})", None
    text = format_plan(memory, device.capacity, device.label)
    if not device.enforce or memory.total <= device.capacity:
        return text, None
    return text, (f"the memory plan needs {gib(memory.total)} at peak but {device.label} has "
                  f"{gib(device.capacity)} (`logicrl {command} --dry-run` prints it): "
                  + "; ".join(fixes(memory, cfg, command, device.capacity)))


def check_memory(cfg: Any, command: str) -> str:
    """The plan's text; a one-line UserError when the plan does not fit an enforced device."""
    text, refusal = memory_report(cfg, command)
    if refusal is not None:
        raise UserError(refusal)
    return text

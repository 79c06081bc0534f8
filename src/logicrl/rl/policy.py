"""The models of an RL run, loaded from a `TrainConfig`: the policy, the frozen KL reference and PPO's critic.

- Full fine-tuning: the policy in float32 (master weights, so AdamW's state is float32 too; on CUDA the
  forwards run under ``model.dtype``'s autocast), the reference a second copy stored in ``model.dtype``.
- ``model.lora``: the base in ``model.dtype`` with a float32 peft adapter (from the checkpoint's adapter on
  resume); there is no second copy of the base: the reference is the same model with the adapter disabled,
  or, once a stage-start reference has moved, with a frozen copy of the adapter active instead
  (`logicrl.models.lora.REFERENCE_ADAPTER`). Rollouts always sample the trained adapter.
- PPO: the critic is a copy of the policy's decoder with a value head, taken before any adapter is injected.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from logicrl.engine.compat import enable_activation_checkpointing
from logicrl.models import load_model_and_tokenizer, lora_model, sparse_tied_embedding_grad
from logicrl.models.lora import (
    REFERENCE_ADAPTER,
    TRAINED_ADAPTER,
    adapter_active,
    adapter_state,
    copy_adapter,
    load_adapter_state,
)
from logicrl.rl.advantages import get_advantage_estimator
from logicrl.rl.config import TrainConfig
from logicrl.rl.critic import ValueModel


@dataclass
class RunModels:
    policy: Any
    tokenizer: Any
    ref: Any | None  # a frozen copy; None without KL, and with LoRA (an adapter state is the reference)
    uses_reference: bool  # the KL term needs reference log-probs

    def sampler(self) -> Any:
        """The model that rollouts and validation run: with LoRA, the base model with the adapter injected
        (peft's wrapper is not a transformers model; the injected layers compute the adapted forward, and
        the fast engine merges their active adapters: that must be the trained one alone)."""
        if not hasattr(self.policy, "get_base_model"):
            return self.policy
        if self.policy.active_adapters != [TRAINED_ADAPTER]:
            raise RuntimeError(f"sampling needs the trained adapter alone, not {self.policy.active_adapters}")
        return self.policy.get_base_model()

    def reference(self) -> tuple[Any, contextlib.AbstractContextManager]:
        """The model whose log-probs are the reference's, and the context to compute them in."""
        if self.ref is not None:
            return self.ref, contextlib.nullcontext()
        if REFERENCE_ADAPTER in getattr(self.policy, "peft_config", {}):
            return self.policy, adapter_active(self.policy, REFERENCE_ADAPTER)
        return self.policy, self.policy.disable_adapter()

    def move_reference(self) -> None:
        """The reference becomes the policy as it is now (``algorithm.reference=stage_start``, at a stage's
        entry): the full copy takes the policy's weights (cast to its dtype); with LoRA the reference adapter
        becomes a frozen copy of the trained one (added the first time). Nothing without KL."""
        if self.ref is not None:
            self.ref.load_state_dict(self.policy.state_dict())
        elif self.uses_reference:
            copy_adapter(self.policy, REFERENCE_ADAPTER)

    def save_reference(self, path: Path) -> None:
        """The moved reference as safetensors: the full copy, or the reference adapter's tensors."""
        if self.ref is not None:
            save_model(self.ref, str(path))
        else:
            save_file(adapter_state(self.policy, REFERENCE_ADAPTER), str(path))

    def load_reference(self, path: Path, device: torch.device) -> None:
        """Restore what `save_reference` wrote."""
        if self.ref is not None:
            load_model(self.ref, str(path), device=str(device))
        else:
            load_adapter_state(self.policy, REFERENCE_ADAPTER, load_file(str(path), device=str(device)))


def load_run_models(cfg: TrainConfig, device: torch.device, compute_dtype: torch.dtype,
                    checkpoint: Path | None) -> tuple[RunModels, ValueModel | None]:
    """The policy (from ``checkpoint`` when resuming), the reference (always ``model.name``: a stage-start
    reference is restored from the checkpoint by the trainer), and the critic (None unless the advantage
    estimator needs one; the trainer owns it, rebuilding it at a stage reset), as the module docstring says."""
    lora, algo, load = cfg.model.lora, cfg.algorithm, dict(device=str(device),
                                                           trust_remote_code=cfg.model.trust_remote_code)
    source = str(checkpoint) if checkpoint is not None and lora is None else cfg.model.name
    policy, tokenizer = load_model_and_tokenizer(
        source, dtype=compute_dtype if lora is not None else "float32", **load)
    if cfg.model.gradient_checkpointing:
        enable_activation_checkpointing(policy)
    critic = ValueModel(policy).to(device) if get_advantage_estimator(algo.advantage).needs_critic else None
    if lora is not None:
        policy = lora_model(policy, lora, checkpoint)
    sparse_tied_embedding_grad(policy)  # after the critic's copy; with LoRA the embedding is frozen: a no-op
    uses_reference = algo.uses_reference
    ref = None
    if uses_reference and lora is None:
        ref, _ = load_model_and_tokenizer(cfg.model.name, dtype=compute_dtype, **load)
        ref.requires_grad_(False)
    return RunModels(policy, tokenizer, ref, uses_reference), critic

"""The models of an RL run, loaded from a `TrainConfig`: the policy, the frozen KL reference and PPO's critic.

- Full fine-tuning: the policy in float32 (master weights, so AdamW's state is float32 too; on CUDA the
  forwards run under ``model.dtype``'s autocast), the reference a second copy stored in ``model.dtype``.
- ``model.lora``: the base in ``model.dtype`` with a float32 peft adapter (from the checkpoint's adapter on
  resume); there is no second copy: the reference is the same model with the adapter disabled.
- PPO: the critic is a copy of the policy's decoder with a value head, taken before any adapter is injected.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from logicrl.models import load_model_and_tokenizer, lora_model
from logicrl.rl.advantages import get_advantage_estimator
from logicrl.rl.config import TrainConfig
from logicrl.rl.critic import ValueModel


@dataclass
class RunModels:
    policy: Any
    tokenizer: Any
    ref: Any | None  # a frozen copy; None without KL, and with LoRA (the adapter disabled is the reference)
    uses_reference: bool  # the KL term needs reference log-probs

    def sampler(self) -> Any:
        """The model that rollouts and validation run: with LoRA, the base model with the adapter injected
        (peft's wrapper is not a transformers model; the injected layers compute the adapted forward)."""
        return self.policy.get_base_model() if hasattr(self.policy, "get_base_model") else self.policy

    def reference(self) -> tuple[Any, contextlib.AbstractContextManager]:
        """The model whose log-probs are the reference's, and the context to compute them in."""
        if self.ref is not None:
            return self.ref, contextlib.nullcontext()
        return self.policy, self.policy.disable_adapter()


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
        enable = getattr(policy, "activation_checkpointing_enable", None)  # transformers >= 5
        (enable or policy.gradient_checkpointing_enable)()
    critic = ValueModel(policy).to(device) if get_advantage_estimator(algo.advantage).needs_critic else None
    if lora is not None:
        policy = lora_model(policy, lora, checkpoint)
    uses_reference = algo.kl_placement != "none" and (algo.kl_coef > 0 or algo.kl_target is not None)
    ref = None
    if uses_reference and lora is None:
        ref, _ = load_model_and_tokenizer(cfg.model.name, dtype=compute_dtype, **load)
        ref.requires_grad_(False)
    return RunModels(policy, tokenizer, ref, uses_reference), critic

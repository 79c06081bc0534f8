"""What a projection computes, for the engine that reads weights directly (`decode._LlamaEngine`): a plain
``nn.Linear``, or a peft LoRA ``Linear`` over one (Hu et al. 2021, arXiv 2106.09685), whose output
``x·Wᵀ + b + Σ_a s_a · x·A_aᵀ·B_aᵀ`` over its active adapters is that of one merged weight
``W + Σ_a s_a · B_a·A_a``. The merge is made once per `generate` call (the adapter changes every optimizer
step), so a LoRA policy's rollouts run on the fast engine like a full model's."""

from __future__ import annotations

import torch
from torch import Tensor


def _is_lora(module: torch.nn.Module) -> bool:
    """A peft LoRA linear whose forward is exactly base + scaled B·A (no DoRA, no active dropout, no LoRA bias:
    ``lora_bias=True`` adds a bias to B that `weight_and_bias` would leave out)."""
    base = getattr(module, "base_layer", None)
    if type(base) is not torch.nn.Linear or not hasattr(module, "get_delta_weight"):
        return False
    active = [a for a in module.active_adapters if a in module.lora_A]
    dropout_off = not module.training or all(isinstance(module.lora_dropout[a], torch.nn.Identity) for a in active)
    plain = not any(getattr(module, flag, {}).get(a, False) for flag in ("use_dora", "lora_bias") for a in active)
    return dropout_off and plain


def mergeable(module: torch.nn.Module) -> bool:
    """Whether `weight_and_bias` gives what ``module`` computes."""
    return type(module) is torch.nn.Linear or _is_lora(module)


@torch.no_grad()
def weight_and_bias(module: torch.nn.Module) -> tuple[Tensor, Tensor | None]:
    """The (weight, bias) of the affine map ``module`` computes, in the base weight's dtype (the adapter's
    delta added in float32 first); a plain ``nn.Linear``'s own tensors, detached."""
    if type(module) is torch.nn.Linear:
        return module.weight.detach(), None if module.bias is None else module.bias.detach()
    base = module.base_layer
    weight = base.weight.detach()
    if not module.disable_adapters and not module.merged:
        deltas = [module.get_delta_weight(a).float() for a in module.active_adapters if a in module.lora_A]
        weight = (weight.float() + sum(deltas)).to(weight.dtype) if deltas else weight
    return weight, None if base.bias is None else base.bias.detach()

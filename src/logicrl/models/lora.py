"""LoRA through peft: wrap a causal LM with a fresh adapter, or with a checkpoint's adapter to resume.

The adapter (Hu et al. 2021, arXiv 2106.09685) adds (lora_alpha / r) · B·A to each targeted linear; peft
keeps it in float32 over a 16-bit base (``autocast_adapter_dtype``), so AdamW's state is float32 too. A
checkpoint of a LoRA run holds peft's ``adapter_model.safetensors`` + ``adapter_config.json`` (the base is
``model.name``): `merge_adapter` gives a plain model, which is how `logicrl.models.load_model_and_tokenizer`
loads such a checkpoint.
peft is an optional dependency (``pip install logicrl[peft]``), imported only here and only when used.

A stage-start KL reference (``algorithm.reference=stage_start``) is a second adapter, `REFERENCE_ADAPTER`:
a frozen float32 copy of the trained one over the same base (`copy_adapter`), active only inside
`adapter_active` (merging it into a bf16 base would round its small deltas away).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from logicrl.errors import UserError

TRAINED_ADAPTER = "default"  # peft's name for the adapter `get_peft_model` makes: the one trained and sampled
REFERENCE_ADAPTER = "reference"  # the frozen copy that is the KL reference from a stage's entry


def linear_names(model: torch.nn.Module) -> list[str]:
    """The last name of each linear layer of ``model`` (``q_proj``, ``lm_head``, ...): what LoRA can target."""
    return sorted({name.rpartition(".")[2] for name, module in model.named_modules()
                   if isinstance(module, torch.nn.Linear)})


def saved_model_linear_names(path: str, trust_remote_code: bool) -> list[str] | None:
    """`linear_names` of the model saved at ``path``, built from its config.json on the meta device (no weight read
    or allocated); None when this machine's transformers cannot build it (an architecture it does not know)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        with torch.device("meta"):
            return linear_names(AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code))
    except (OSError, ValueError, KeyError, ImportError):
        return None


def check_targets(targets: list[str], linears: list[str]) -> None:
    """A UserError naming each of ``targets`` that is none of the model's ``linears`` (peft fails with a traceback
    when none matches, and ignores one that does not when others do)."""
    unknown = [name for name in targets if name not in linears]
    if unknown:
        raise UserError(f"model.lora.target_modules: this model has no linear layer named {', '.join(unknown)} "
                        f"(its linear layers: {', '.join(linears)})")


def lora_model(model: Any, lora: Any, checkpoint: Path | None = None) -> Any:
    """``model`` (modified in place: peft injects the adapter layers) wrapped as a trainable ``PeftModel``.

    ``lora``: a `logicrl.rl.config.LoraConfig` (r, lora_alpha, lora_dropout, target_modules). With
    ``checkpoint`` the adapter is loaded from it (trainable) instead of initialised.
    """
    try:
        from peft import LoraConfig, PeftModel, get_peft_model
    except ImportError as err:
        raise UserError("model.lora needs peft: pip install 'logicrl[peft]'") from err
    if checkpoint is not None:
        return PeftModel.from_pretrained(model, str(checkpoint), is_trainable=True)
    check_targets(lora.target_modules, linear_names(model))
    config = LoraConfig(r=lora.r, lora_alpha=lora.lora_alpha, lora_dropout=lora.lora_dropout,
                        target_modules=list(lora.target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def merge_adapter(model: Any, checkpoint: Path) -> Any:
    """``model`` with the LoRA adapter saved in ``checkpoint`` merged into its weights: a plain model
    (W + (lora_alpha / r) · B·A in each targeted linear), as ``PeftModel.from_pretrained(...).merge_and_unload()``."""
    try:
        from peft import PeftModel
    except ImportError as err:
        raise UserError(f"{checkpoint} is a LoRA checkpoint: loading it needs peft: pip install 'logicrl[peft]'"
                        ) from err
    return PeftModel.from_pretrained(model, str(checkpoint)).merge_and_unload()


def adapter_state(model: Any, name: str) -> dict[str, torch.Tensor]:
    """Adapter ``name``'s tensors, keyed as peft saves them (without the adapter's name)."""
    from peft import get_peft_model_state_dict
    return get_peft_model_state_dict(model, adapter_name=name, save_embedding_layers=False)


def load_adapter_state(model: Any, name: str, state: dict[str, torch.Tensor]) -> None:
    """Make adapter ``name`` hold ``state`` (an `adapter_state`), frozen; it is added first if the model lacks
    it, with the trained adapter's config. The active adapter and what is trainable do not change."""
    from peft import set_peft_model_state_dict
    if name not in model.peft_config:
        with torch.random.fork_rng(devices=[]):  # peft initialises it randomly: keep the run's RNG stream
            model.add_adapter(name, copy.deepcopy(model.peft_config[TRAINED_ADAPTER]))
    loaded = set_peft_model_state_dict(model, state, adapter_name=name)
    if loaded.unexpected_keys:
        raise ValueError(f"adapter {name!r}: tensors without a place: {loaded.unexpected_keys[:3]}")
    model.set_requires_grad(name, requires_grad=False)


def copy_adapter(model: Any, name: str = REFERENCE_ADAPTER) -> None:
    """Adapter ``name`` becomes a frozen copy of the trained adapter as it is now (float32 to float32: exact;
    the values are copied into the adapter's own tensors)."""
    load_adapter_state(model, name, adapter_state(model, TRAINED_ADAPTER))


@contextlib.contextmanager
def adapter_active(model: Any, name: str) -> Iterator[None]:
    """Run ``model`` with adapter ``name`` in place of the trained one, then switch back. peft's
    ``set_adapter`` also marks the active adapter trainable: every ``requires_grad`` is put back as it was."""
    flags = [(param, param.requires_grad) for param in model.parameters()]
    model.set_adapter(name, inference_mode=True)
    try:
        yield
    finally:
        model.set_adapter(TRAINED_ADAPTER)
        for param, flag in flags:
            param.requires_grad_(flag)

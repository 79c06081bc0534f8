"""LoRA through peft: wrap a causal LM with a fresh adapter, or with a checkpoint's adapter to resume.

The adapter (Hu et al. 2021, arXiv 2106.09685) adds (lora_alpha / r) · B·A to each targeted linear; peft
keeps it in float32 over a 16-bit base (``autocast_adapter_dtype``), so AdamW's state is float32 too. A
checkpoint of a LoRA run holds peft's ``adapter_model.safetensors`` + ``adapter_config.json`` (the base is
``model.name``): ``PeftModel.from_pretrained(base, path).merge_and_unload()`` gives a plain model.
peft is an optional dependency (``pip install logicrl[peft]``), imported only here and only when used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from logicrl.errors import UserError


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
    config = LoraConfig(r=lora.r, lora_alpha=lora.lora_alpha, lora_dropout=lora.lora_dropout,
                        target_modules=list(lora.target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, config)

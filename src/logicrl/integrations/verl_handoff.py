"""A veRL stage's hand-off: its last checkpoint's Hugging Face copy as a plain model folder.

veRL's checkpoint manager writes the full actor as a Hugging Face model (``huggingface/`` beside the FSDP
shards). For a LoRA actor that state dict is peft's, under the base model's plain config: the wrapped layers as
``base_model.model.<name>.base_layer.weight`` with the adapter beside them (``<name>.lora_A.default.weight``,
``lora_B``), every other tensor as ``base_model.model.<name>``. transformers would load that folder with every
weight missing, so random, and only warn. `merge_lora_state` folds each adapter into its layer,
``W' = W + (α / r) · B A``, and names the tensors as the plain model does; `hand_off` writes the folder, shard by
shard. A full-model copy is written as it is.

Run by `logicrl verl launch` after each stage: ``python -m logicrl.integrations.verl_handoff SRC DST
[--lora-scaling α/r]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

PEFT_PREFIX = "base_model.model."
ADAPTER = "default"  # the adapter veRL trains
INDEX = "model.safetensors.index.json"


def is_lora_key(name: str) -> bool:
    return ".lora_A." in name or ".lora_B." in name


def merge_lora_state(names: list[str], get: Callable[[str], torch.Tensor], scaling: float | None
                     ) -> dict[str, torch.Tensor]:
    """The plain model's tensors for the tensor ``names`` of one file (``get`` reads any tensor of the checkpoint,
    also another file's).

    Names without peft's prefix are kept as they are. A ``<name>.base_layer.weight`` becomes ``<name>.weight`` +
    ``scaling`` · B A (B = ``<name>.lora_B.default.weight``, A = ``lora_A``), computed in float32 and stored in
    W's dtype; its ``base_layer.bias`` becomes ``<name>.bias``; the adapter's own tensors go. Any other peft
    tensor (another adapter, ``modules_to_save``) is a ValueError: it has no plain counterpart here.
    """
    out: dict[str, torch.Tensor] = {}
    for name in names:
        if is_lora_key(name) and f".{ADAPTER}." in name:
            continue
        if ".lora_" in name or ".modules_to_save." in name or ".original_module." in name:
            raise ValueError(f"{name}: a peft tensor the hand-off cannot merge (only adapter {ADAPTER!r} of LoRA)")
        plain = name.removeprefix(PEFT_PREFIX)
        if ".base_layer." not in plain:
            out[plain] = get(name)
            continue
        layer, _, kind = name.rpartition(".base_layer.")
        weight = get(name)
        if kind == "weight":
            if scaling is None:
                raise ValueError(f"{name}: a LoRA layer, and no --lora-scaling (lora_alpha / r) was given")
            lora_b, lora_a = get(f"{layer}.lora_B.{ADAPTER}.weight"), get(f"{layer}.lora_A.{ADAPTER}.weight")
            weight = (weight.float() + scaling * (lora_b.float() @ lora_a.float())).to(weight.dtype)
        out[plain.replace(".base_layer.", ".")] = weight
    return out


def _weight_map(source: Path) -> dict[str, str]:
    """Tensor name -> the file holding it (a sharded checkpoint's index, or the one ``model.safetensors``)."""
    index = source / INDEX
    if index.is_file():
        return dict(json.loads(index.read_text())["weight_map"])
    with safe_open(str(source / "model.safetensors"), framework="pt") as f:
        return dict.fromkeys(f.keys(), "model.safetensors")


def hand_off(source: Path, target: Path, scaling: float | None = None) -> bool:
    """Write veRL's Hugging Face copy ``source`` to ``target`` as a plain model (`merge_lora_state`); True if it held
    a LoRA adapter. ``target`` must not exist; a hand-off that fails removes it."""
    weight_map = _weight_map(source)
    if not any(name.startswith(PEFT_PREFIX) for name in weight_map):
        shutil.copytree(source, target)
        return False
    target.mkdir(parents=True)
    try:
        _merge_folder(source, target, weight_map, scaling)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return True


def _merge_folder(source: Path, target: Path, weight_map: dict[str, str], scaling: float | None) -> None:
    for path in source.iterdir():  # config, tokenizer, generation config, chat template
        if path.is_file() and path.suffix != ".safetensors" and path.name != INDEX:
            shutil.copy2(path, target / path.name)
    handles: dict[str, object] = {}

    def get(name: str) -> torch.Tensor:
        file = weight_map[name]
        if file not in handles:
            handles[file] = safe_open(str(source / file), framework="pt")
        return handles[file].get_tensor(name)

    new_map: dict[str, str] = {}
    for file in sorted(set(weight_map.values())):
        tensors = merge_lora_state([n for n, f in weight_map.items() if f == file], get, scaling)
        save_file(tensors, str(target / file), metadata={"format": "pt"})
        new_map.update(dict.fromkeys(tensors, file))
    if (source / INDEX).is_file():
        index = json.loads((source / INDEX).read_text())
        size = sum((target / f).stat().st_size for f in set(new_map.values()))
        index.update({"metadata": {**index.get("metadata", {}), "total_size": size}, "weight_map": new_map})
        (target / INDEX).write_text(json.dumps(index, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="veRL's huggingface/ folder of the stage's last checkpoint")
    parser.add_argument("target", type=Path, help="the plain model folder to write (must not exist)")
    parser.add_argument("--lora-scaling", type=float, default=None, help="lora_alpha / r of a LoRA actor")
    args = parser.parse_args(argv)
    try:
        merged = hand_off(args.source, args.target, args.lora_scaling)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: hand-off of {args.source}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.target}: {'LoRA merged into the base weights' if merged else 'copied'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

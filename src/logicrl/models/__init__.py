"""Model and tokenizer loading, the embedded default model, and a tiny model for tests.

* `load_model_and_tokenizer(name)`: ``(model, tokenizer)`` ready for batched generation;
* `resolve_model_path(name)`: aliases (``smollm2-135m``, ``tiny-random``) → cached checkpoint dirs;
* `check_model_name(name)`: fail fast on a name that cannot be a model, before anything loads;
* `build_tiny_model()`: a tiny random Llama with a local K&K tokenizer, no download;
* `save_pretrained_atomic(model, tokenizer, out_dir)`: checkpoints that are complete or absent;
* `lora_model(model, lora)`: a peft LoRA adapter on the model (fresh, or a checkpoint's);
* `sparse_tied_embedding_grad(model)`: a tied embedding's backward without a dense [V, D] zero-fill.

Files: loading.py (names, cache, loading), smollm2.py (GGUF → HF conversion), tiny.py (tiny model
and tokenizer), checkpoint.py (atomic directories), lora.py (peft adapters), tied.py (tied-embedding gradients),
memory_plan.py.
"""

from logicrl.models.checkpoint import atomic_directory, save_pretrained_atomic
from logicrl.models.loading import (
    DEFAULT_MODEL,
    MODEL_ALIASES,
    TINY_MODEL,
    ModelAlias,
    ModelNotFoundError,
    check_model_name,
    compute_autocast,
    default_cache_dir,
    load_model_and_tokenizer,
    prepare_tokenizer,
    register_model_alias,
    resolve_device,
    resolve_dtype,
    resolve_model_path,
)
from logicrl.models.lora import lora_model
from logicrl.models.smollm2 import find_smollm2_gguf
from logicrl.models.tied import sparse_tied_embedding_grad
from logicrl.models.tiny import CHATML_TEMPLATE, build_tiny_model, build_tiny_tokenizer

__all__ = [
    "CHATML_TEMPLATE",
    "DEFAULT_MODEL",
    "MODEL_ALIASES",
    "TINY_MODEL",
    "ModelAlias",
    "ModelNotFoundError",
    "atomic_directory",
    "build_tiny_model",
    "build_tiny_tokenizer",
    "check_model_name",
    "compute_autocast",
    "default_cache_dir",
    "find_smollm2_gguf",
    "load_model_and_tokenizer",
    "lora_model",
    "prepare_tokenizer",
    "register_model_alias",
    "resolve_device",
    "resolve_dtype",
    "resolve_model_path",
    "save_pretrained_atomic",
    "sparse_tied_embedding_grad",
]

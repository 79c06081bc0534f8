"""Atomic checkpoint directories: a checkpoint is either complete or absent, never half written.

Everything is written into a hidden temporary directory beside the target (same filesystem), then
renamed into place. An exception (or Ctrl-C) while writing removes the temporary directory; a process
killed outright leaves only a hidden ``.<name>.tmp-*`` directory, which `remove_stale_temporaries`
sweeps later. The trainer saves its checkpoints through `save_pretrained_atomic`; the model cache
(`logicrl.models.loading`) builds its entries through `atomic_directory`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from logicrl.errors import UserError
from logicrl.io import current_umask
from logicrl.models.lora import TRAINED_ADAPTER

logger = logging.getLogger(__name__)

STALE_AFTER_S = 3600.0  # a temporary directory this old belongs to a writer that died


class DiskFullError(UserError):
    """The disk filled up while an atomic directory (a checkpoint, a converted model) was written; what was
    there before is intact."""


def _disk_full(exc: BaseException) -> bool:
    """ENOSPC, as an OSError or as the message of a writer that wraps it (safetensors' SafetensorError)."""
    return (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "No space left on device" in str(exc)


def remove_stale_temporaries(out_dir: Path, *, older_than_s: float = STALE_AFTER_S) -> None:
    """Delete ``.<name>.tmp-*`` / ``.<name>.old-*`` siblings of ``out_dir`` left by killed writers."""
    out_dir = Path(out_dir)
    if not out_dir.parent.is_dir():
        return
    now = time.time()
    for pattern in (f".{out_dir.name}.tmp-*", f".{out_dir.name}.old-*"):
        for path in out_dir.parent.glob(pattern):
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > older_than_s:
                    logger.info("removing stale temporary directory %s", path)
                    shutil.rmtree(path, ignore_errors=True)


def _move_into_place(tmp: Path, out_dir: Path, overwrite: bool) -> None:
    """Rename ``tmp`` to ``out_dir``; an existing ``out_dir`` is swapped out first when ``overwrite``.

    Between the two renames ``out_dir`` is briefly absent, but it is never partial.
    """
    if out_dir.exists():
        if not overwrite:
            raise FileExistsError(f"{out_dir} already exists (pass overwrite=True to replace it)")
        old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(out_dir, old)
        try:
            os.rename(tmp, out_dir)
        except OSError:
            os.rename(old, out_dir)  # put the previous checkpoint back
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        # Fails with OSError if another process created out_dir meanwhile: the caller decides.
        os.rename(tmp, out_dir)


@contextlib.contextmanager
def atomic_directory(out_dir: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield an empty temporary directory that becomes ``out_dir`` when the block exits normally.

    Args:
        out_dir: the final directory. Its parent is created if needed.
        overwrite: replace an existing ``out_dir``; if False, an existing one raises FileExistsError
            (checked before writing and again at the rename).

    If the block raises, the temporary directory is removed and ``out_dir`` is left as it was; a full disk
    raises `DiskFullError` (a one-line `UserError`) in place of the writer's own error.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists (pass overwrite=True to replace it)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; give it the mode mkdir() would
        yield tmp
        _move_into_place(tmp, out_dir, overwrite)
    except Exception as exc:
        if _disk_full(exc):
            raise DiskFullError(f"no space left on the device while writing {out_dir} (nothing of it was kept; "
                                "what was there before is intact): free disk space, then run the command again "
                                "(a training run: resume it)") from exc
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def quiet_hf_progress() -> Iterator[None]:
    """No transformers progress bars inside the block (weights loading/saving): ours say enough."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def write_checkpoint(model: Any, tokenizer: Any | None, directory: Path) -> None:
    """Write ``model`` (safetensors, config, generation config) and ``tokenizer`` into ``directory``.

    The tokenizer files include its chat template (``chat_template.jinja`` in transformers 5). Not
    atomic by itself: use `save_pretrained_atomic` or `atomic_directory`.
    """
    # a peft model: the trained adapter only (a stage-start reference adapter is the trainer's to save)
    adapters = {"selected_adapters": [TRAINED_ADAPTER]} if hasattr(model, "get_base_model") else {}
    with quiet_hf_progress():
        model.save_pretrained(directory, safe_serialization=True, **adapters)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
    readable_before_transformers_5(directory)


CHECKPOINT_FORMAT = 2
"""The version of what `save_pretrained_atomic` writes (with `readable_before_transformers_5`): part of a model
alias's cache fingerprint, so a cache entry written before a change is rebuilt. Bump it with every change."""


def readable_before_transformers_5(directory: Path) -> None:
    """Add to the files transformers 5 wrote what transformers 4 (and the tools built on it) reads, so that
    they load the same model rather than a silently different one: ``rope_theta`` at the top of config.json
    (4.x does not read ``rope_parameters`` and falls back to 10000: SmolLM2's is 100000, every position wrong);
    ``tokenizer_class`` ``PreTrainedTokenizerFast`` for ``TokenizersBackend`` (a class 4.x lacks: its
    AutoTokenizer fails); and a list of ``extra_special_tokens`` (Qwen's ``<|im_start|>`` …) under
    ``additional_special_tokens``, the list's name in 4.x (which reads ``extra_special_tokens`` as a mapping
    and fails). transformers 5 reads both files as before."""
    config_path, tokenizer_path = directory / "config.json", directory / "tokenizer_config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        theta = (config.get("rope_parameters") or {}).get("rope_theta")
        if theta is not None and "rope_theta" not in config:
            config_path.write_text(json.dumps({**config, "rope_theta": theta}, indent=2) + "\n", encoding="utf-8")
    if tokenizer_path.is_file():
        settings = json.loads(tokenizer_path.read_text(encoding="utf-8"))
        changed = dict(settings)
        if changed.get("tokenizer_class") == "TokenizersBackend":
            changed["tokenizer_class"] = "PreTrainedTokenizerFast"
        if isinstance(changed.get("extra_special_tokens"), list) and "additional_special_tokens" not in changed:
            changed["additional_special_tokens"] = changed.pop("extra_special_tokens")
        if changed != settings:
            tokenizer_path.write_text(json.dumps(changed, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def save_pretrained_atomic(
    model: Any,
    tokenizer: Any | None,
    out_dir: str | os.PathLike[str],
    *,
    overwrite: bool = True,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Save a Hugging Face model and tokenizer to ``out_dir`` atomically; return ``out_dir``.

    Writes safetensors + config + generation config + tokenizer + chat template into a temporary
    directory beside ``out_dir`` and renames it into place, so an interrupted save never leaves a
    partial checkpoint (and, with ``overwrite``, never destroys the previous one).

    Args:
        model: a `transformers.PreTrainedModel` (anything with ``save_pretrained``).
        tokenizer: its tokenizer, or None to save the model alone.
        out_dir: the checkpoint directory; `AutoModelForCausalLM.from_pretrained(out_dir)` loads it.
        overwrite: replace an existing ``out_dir`` (default, like ``save_pretrained``).
        extra: called with the temporary directory after the model is written, to add files that
            must land in the same atomic step (optimizer state, trainer state, metrics).

    Raises:
        DiskFullError: the disk filled up (a one-line `UserError`, from `atomic_directory`; the temporary
            directory is removed).
    """
    out_dir = Path(out_dir)
    remove_stale_temporaries(out_dir)
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        write_checkpoint(model, tokenizer, tmp)
        if extra is not None:
            extra(tmp)
    logger.info("saved checkpoint to %s", out_dir)
    return out_dir

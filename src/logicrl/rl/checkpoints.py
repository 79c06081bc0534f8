"""Trainer checkpoints: a Hugging Face model directory plus everything needed to resume exactly.

``RUN_DIR/checkpoints/step_000020/`` holds the policy (safetensors, config, tokenizer, chat template:
``AutoModelForCausalLM.from_pretrained`` loads it), ``trainer_state.pt`` (optimizer, scheduler, KL
coefficient, RNG states, data cursor; tensors and plain values only, read back with
``torch.load(weights_only=True)``), ``trainer_state.json`` (the same cursor, human-readable) and, for PPO,
``critic.safetensors``. The directory is written atomically (`save_pretrained_atomic`); older
checkpoints beyond ``keep_last`` are removed after a new one is in place.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from pydantic import BaseModel
from safetensors import safe_open

from logicrl.config import combine_overrides, exact_override, load_config, read_yaml, save_config
from logicrl.errors import ConfigError, UserError
from logicrl.io import FolderLock, check_not_another_output, check_output_dir
from logicrl.models import save_pretrained_atomic

T = TypeVar("T")

STATE_FILE = "trainer_state.pt"
STATE_JSON = "trainer_state.json"
REFERENCE_FILE = "reference.safetensors"  # the KL reference once it moved (LoRA: the reference adapter)
RESUMES_FILE = "resumes.jsonl"  # one line per resume that changed a key: {"time", "changed": {key: [old, new]}}


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:06d}"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first."""
    found = []
    for path in (Path(run_dir) / "checkpoints").glob("step_*"):
        if (path / STATE_FILE).is_file() and path.name.removeprefix("step_").isdigit():
            found.append((int(path.name.removeprefix("step_")), path))
    return sorted(found)


CHECKPOINT_FILES = {  # what a checkpoint needs, by one of these names (a full model, sharded or not, or LoRA)
    "policy weights": {"model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors"},
    "model config": {"config.json", "adapter_config.json"},
    "tokenizer": {"tokenizer.json", "tokenizer_config.json"},
}


def checkpoint_problem(path: Path) -> str | None:
    """Why a checkpoint directory cannot be resumed from (a truncated or corrupt file: the state, the weights, a
    JSON file; or a missing one of `CHECKPOINT_FILES`: a PPO checkpoint's critic.safetensors is not the policy's
    weights), or None if it can."""
    try:
        load_state(path)
        for weights in sorted(Path(path).glob("*.safetensors")):
            with safe_open(str(weights), framework="pt") as f:  # reads the header and checks the file size
                f.keys()
        for config in sorted(Path(path).glob("*.json")):  # config.json, adapter_config.json, the tokenizer's
            json.loads(config.read_bytes())
    except Exception as exc:  # noqa: BLE001 - any unreadable file makes the checkpoint unusable
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    files = {p.name for p in Path(path).iterdir()}
    for needed, names in CHECKPOINT_FILES.items():
        if not files & names:
            return f"no {needed} ({' or '.join(sorted(names))})"
    return None


def latest_checkpoint(run_dir: Path) -> tuple[int, Path]:
    """The newest checkpoint that loads; a broken newer one is skipped with a warning."""
    found = list_checkpoints(run_dir)
    if not found:
        raise UserError(f"{run_dir}: no checkpoint to resume from (checkpoints/step_*/ with {STATE_FILE})")
    for step, path in reversed(found):
        problem = checkpoint_problem(path)
        if problem is None:
            return step, path
        warnings.warn(f"{path}: cannot be loaded ({problem}); falling back to the checkpoint before it",
                      stacklevel=2)
    raise UserError(f"{run_dir}: no checkpoint can be loaded (all {len(found)} are broken): delete {run_dir} to "
                    "start a new run there, or pick another out_dir")


def check_run_dir(run_dir: Path, *, resume: bool, command: str) -> None:
    """Refuse, without writing anything, a run directory that cannot be used: a file, a run with a checkpoint
    without ``--resume``, or nothing to resume from. A run stopped before its first checkpoint holds nothing
    to go on from: a new run replaces it, and ``--resume`` starts it over (`prepare_run_dir`). The CLI calls
    it before loading any model."""
    run_dir = Path(run_dir)
    check_output_dir(run_dir, "out_dir")
    check_not_another_output(run_dir, "out_dir", own="config.yaml")
    saved = sorted(p.name for p in (run_dir / "checkpoints").glob("step_*") if p.is_dir())
    if saved and not list_checkpoints(run_dir):  # a new run, or a resume starting over, would replace them
        raise UserError(f"{run_dir} holds checkpoints without their {STATE_FILE} ({', '.join(saved)}): they cannot "
                        "be resumed, and a run there would replace them; pick another out_dir")
    if resume and not (list_checkpoints(run_dir) or (run_dir / "config.yaml").is_file()):
        raise UserError(f"{run_dir}: no run to resume (no config.yaml, no checkpoints/step_*/ with {STATE_FILE})")
    if not resume and list_checkpoints(run_dir):
        if not (run_dir / "config.yaml").is_file():
            raise UserError(f"{run_dir} holds checkpoints but no config.yaml, so it cannot be resumed: delete it "
                            "or pick another out_dir")
        owner = run_command(run_dir) or command
        raise UserError(f"{run_dir} already holds a `logicrl {owner}` run: continue it with "
                        f"`logicrl {owner} --resume {run_dir}` or pick another out_dir")


def run_command(run_dir: Path) -> str | None:
    """The command whose run ``run_dir`` holds, by its config.yaml's keys: ``train`` (``rollout``), ``sft``
    (``mode``), or None when that cannot be read."""
    try:
        return _command_of(read_yaml(Path(run_dir) / "config.yaml"))
    except UserError:
        return None


def _command_of(keys: Any) -> str | None:
    return "train" if "rollout" in keys else "sft" if "mode" in keys else None


def prepare_run_dir(run_dir: Path, config: Any, *, resume: bool,
                    command: str) -> tuple[int, Path | None, FolderLock]:
    """``(first step, checkpoint to load, the run directory's lock)``: the latest checkpoint when resuming (its
    config changes checked, `resume_changes`), else step 1 with no checkpoint: a fresh run, or one that stopped
    before its first checkpoint, started over (a note says so; `open_run_log` clears what it logged). It
    refuses what `check_run_dir` refuses and a directory another process is using (`FolderLock`; checked again
    under the lock: a run may have ended in between). It writes only the lock: `record_config` writes
    ``config.yaml`` once the trainer is built."""
    run_dir = Path(run_dir)
    check_run_dir(run_dir, resume=resume, command=command)
    lock = FolderLock(run_dir, "out_dir")
    with lock.released_on_error():
        check_run_dir(run_dir, resume=resume, command=command)
        remove_leftovers(run_dir)
        if resume:
            resume_changes(config)
        if list_checkpoints(run_dir):
            step, path = latest_checkpoint(run_dir)
            return step + 1, path, lock
        if (run_dir / "metrics.jsonl").exists():
            print(f"note: {run_dir} holds a run that stopped before its first checkpoint: it starts over from "
                  "step 1", file=sys.stderr)
    return 1, None, lock


def remove_leftovers(run_dir: Path) -> None:
    """Delete the checkpoint folders that writers killed outright left in a run directory: the temporary
    ``.step_*.tmp-*`` ones (a save not yet renamed into place, a pruned checkpoint renamed out of sight before its
    deletion; the run's `FolderLock` deletes temporary files). Call it only while holding that lock. A visible
    ``step_*`` folder is never deleted here, with or without its state file (a user may have deleted that to
    keep the weights), and nor is a ``.step_*.old-*`` one (a save killed between its two renames leaves the
    only copy of that step there)."""
    for path in (run_dir / "checkpoints").glob(".step_*.tmp-*"):
        shutil.rmtree(path, ignore_errors=True)


def absolute_paths(config: BaseModel) -> BaseModel:
    """``config`` with every path field made absolute, and ``model.name`` too when it names a local directory,
    so that a run resumed from another working directory reads the same files."""
    update: dict[str, Any] = {}
    for name in type(config).model_fields:
        value = getattr(config, name)
        if isinstance(value, BaseModel):
            update[name] = absolute_paths(value)
        elif isinstance(value, Path):
            update[name] = value.resolve()
    if "name" in type(config).model_fields and Path(str(config.name)).is_dir():
        update["name"] = str(Path(str(config.name)).resolve())
    return config.model_copy(update=update)


def changed_keys(old: BaseModel, new: BaseModel, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (old, new)}`` for every leaf value that differs between two configs of one class."""
    changes: dict[str, tuple[Any, Any]] = {}
    for name in type(old).model_fields:
        a, b = getattr(old, name), getattr(new, name)
        if isinstance(a, BaseModel):
            changes.update(changed_keys(a, b, f"{prefix}{name}."))
        elif a != b:
            changes[prefix + name] = (a, b)
    return changes


def resume_config(config_class: type[T], run_dir: Path, overrides: list[str] | None = None) -> T:
    """The config a run was started with (``RUN_DIR/config.yaml``) with ``overrides``, pointed at ``run_dir``.

    Only the keys in ``config_class.resumable`` may change (the others would make the resumed run another
    experiment: a one-line refusal names them), and ``out_dir`` not at all: a resume continues ``run_dir`` in
    place. Nothing is written here: the trainer records the accepted changes (`record_config`) once the
    checkpoint has been restored."""
    run_dir = Path(run_dir)
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise UserError(f"{run_dir}: not a run directory (no config.yaml)")
    owner, asking = run_command(run_dir), _command_of(config_class.model_fields)
    if owner and asking and owner != asking:
        raise UserError(f"{run_dir} is a `logicrl {owner}` run: resume it with `logicrl {owner} --resume {run_dir}`")
    asked = load_config(config_class, path, overrides).out_dir
    if asked != load_config(config_class, path).out_dir and Path(asked).resolve() != run_dir.resolve():
        raise UserError(f"--resume continues {run_dir} in place: drop --out/out_dir={asked} (a new run directory "
                        "is a new run, without --resume)")
    config = load_config(config_class, path, combine_overrides(overrides or [], [exact_override("out_dir", run_dir)]))
    resume_changes(config)
    return config


def resume_changes(config: BaseModel) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (stored, new)}``: how ``config`` differs from its run's ``config.yaml`` (``config.out_dir``);
    a ConfigError names the keys outside ``type(config).resumable``. Paths are compared as absolute paths
    (`absolute_paths`), as config.yaml stores them: ``data/../data`` is ``data``."""
    run_dir = Path(config.out_dir)
    stored = load_config(type(config), run_dir / "config.yaml", [exact_override("out_dir", run_dir)])
    changes = changed_keys(absolute_paths(stored), absolute_paths(config))
    allowed = type(config).resumable
    refused = [key for key in changes if key not in allowed]
    if refused:
        raise ConfigError(
            f"{', '.join(refused)} cannot change when resuming (it would make {run_dir} another experiment); "
            f"keys that may change: {', '.join(allowed)}; start a new run with --out for the rest")
    return changes


def record_config(config: BaseModel, *, resume: bool) -> None:
    """Write the run's ``config.yaml``. Trainers call it once they are built (models and data loaded, the
    checkpoint restored), so that a run that fails to start leaves none and a refused resume leaves the run as
    it was: a fresh run's whole config; a resumed run's accepted changes (`resume_changes`), so that a later
    plain ``--resume`` keeps them, also appended to ``RUN_DIR/resumes.jsonl``."""
    run_dir = Path(config.out_dir)
    changes = resume_changes(config) if resume else {}
    if resume and not changes:
        return
    save_config(absolute_paths(config), run_dir / "config.yaml")
    if not resume:
        (run_dir / RESUMES_FILE).unlink(missing_ok=True)  # an earlier start's, stopped before a checkpoint
    if changes:
        line = {"time": round(time.time(), 3),
                "changed": {k: [_plain(a), _plain(b)] for k, (a, b) in changes.items()}}
        with (run_dir / RESUMES_FILE).open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


def check_resume_steps(checkpoint: Path, step: int, total: int) -> None:
    """Refuse a resume whose schedule (``total`` steps) ends before the checkpoint's ``step``."""
    if total < step:
        raise UserError(f"{checkpoint}: the run has reached step {step}, but it would now end at step {total}: "
                        f"give steps={step} or more to go on from it (or leave steps as it was)")


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value



def weights_fingerprint(model: torch.nn.Module) -> str:
    """A short hash of a model's weights (every tensor's name, shape and sum): tells whether a resumed run's
    reference model is the one the run started with, without storing it."""
    digest = hashlib.sha1()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            digest.update(f"{name}:{tuple(tensor.shape)}:{float(tensor.double().sum()):.6e};".encode())
    return digest.hexdigest()[:16]


def apply_lr(optimizer: torch.optim.Optimizer, scheduler: Any, lr: float) -> None:
    """Make ``lr`` the peak learning rate of a restored optimizer and scheduler (their saved state holds the
    old one): ``base_lrs`` and ``initial_lr`` become ``lr``, and the current rate is ``lr`` × the schedule's
    factor at the current step."""
    scheduler.base_lrs = [lr for _ in optimizer.param_groups]
    for group, factor in zip(optimizer.param_groups, scheduler.lr_lambdas):
        group["initial_lr"] = lr
        group["lr"] = lr * factor(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def rng_states() -> dict[str, Any]:
    states = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate((3, tuple(int(x) for x in states["python"]), None))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(run_dir: Path, step: int, model: Any, tokenizer: Any, state: dict[str, Any], *,
                    keep_last: int, extra: Callable[[Path], None] | None = None) -> Path:
    """Write checkpoint ``step`` atomically, then prune to the newest ``keep_last``."""
    summary = {k: v for k, v in state.items() if isinstance(v, (int, float, str))}

    def write_state(directory: Path) -> None:
        torch.save({**state, "rng": rng_states()}, directory / STATE_FILE)
        (directory / STATE_JSON).write_text(json.dumps(summary, indent=2) + "\n")
        if extra is not None:
            extra(directory)

    path = save_pretrained_atomic(model, tokenizer, checkpoint_dir(run_dir, step), extra=write_state)
    for _, old in list_checkpoints(run_dir)[:-keep_last]:  # out of sight first: a kill cannot leave half of one
        hidden = old.rename(old.parent / f".{old.name}.tmp-{uuid.uuid4().hex[:8]}")
        shutil.rmtree(hidden, ignore_errors=True)
    return path


def load_state(directory: Path) -> dict[str, Any]:
    """The trainer state of a checkpoint (RNG restored by the caller with `restore_rng`)."""
    return torch.load(Path(directory) / STATE_FILE, weights_only=True, map_location="cpu")

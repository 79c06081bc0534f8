"""`logicrl verl launch`: a `TrainConfig` as veRL Hydra overrides, one ``main_ppo`` run per curriculum stage.

The same YAML drives ``logicrl train`` and this launcher. What a `TrainConfig` cannot say (GPUs, nodes,
rollout engine, memory) is a `VerlClusterConfig`. Names map as follows (veRL 0.9; docs/verl.md has the
full table): advantage ``reinforce_pp`` → ``reinforce_plus_plus``, ``reinforce_pp_baseline`` →
``reinforce_plus_plus_baseline``, ``grpo``/``rloo``/``gae`` unchanged (``gae`` adds the critic); KL
estimator ``k1/k2/k3/abs/k3+`` → ``kl/mse/low_var_kl/abs/low_var_kl+``; policy loss ``vanilla/gspo/cispo`` →
``actor.policy_loss.loss_mode`` of the same name (ε from ``AlgorithmConfig.clip_range``); ``kl_placement=loss`` →
``actor.use_kl_loss`` (the paper's choice), ``reward`` → ``algorithm.use_kl_in_reward``.

Batch sizes: ours count responses, veRL's ``ppo_mini_batch_size`` counts prompts (veRL multiplies it by
``rollout.n``), so mini = ``algorithm.mini_batch_size / rollout.group_size``.

Curriculum (``data.schedule=curriculum``): stage k trains on the puzzles of the k-th number of people
and starts from stage k−1's last checkpoint in fp32: veRL's checkpoint manager also saves the full
actor as a Hugging Face model (``checkpoint.save_contents`` gains ``hf_model``; veRL's model merger would
cast it to bf16), and the launcher hands that model over as the stage's ``hf/`` (`logicrl.integrations.verl_handoff`:
a copy, or a LoRA actor's adapter merged into its base weights). A veRL run loads actor and
reference from one ``model.path`` and starts its optimizer and critic fresh, so a curriculum needs
``algorithm.reference=stage_start`` and ``optim.stage_reset=true``, which make ``logicrl train`` do the same;
other settings are refused rather than run differently.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from logicrl.config import StrictModel
from logicrl.errors import ConfigError, UserError
from logicrl.integrations.hydra import hydra_value
from logicrl.integrations.verl_export import build_export, read_puzzles, rollout_chat_template
from logicrl.integrations.verl_resume import check_relaunch, write_record
from logicrl.io import write_parquet
from logicrl.models import ModelNotFoundError, check_model_name, resolve_model_path
from logicrl.models.loading import is_lora_checkpoint
from logicrl.models.lora import check_targets, saved_model_linear_names
from logicrl.prompts import PromptConfig
from logicrl.rl.advantages import get_advantage_estimator
from logicrl.rl.config import LoraConfig, OptimConfig, TrainConfig
from logicrl.rl.schedule import check_curriculum_steps

VERL_VERSION = "0.9.1"  # the veRL release the overrides are checked against (tests/integrations)
REWARD_FUNCTION = "pkg://logicrl.integrations.verl"  # imported by name on every node, no file path
ADVANTAGES = {"reinforce_pp": "reinforce_plus_plus", "reinforce_pp_baseline": "reinforce_plus_plus_baseline",
              "grpo": "grpo", "rloo": "rloo", "gae": "gae"}
KL_ESTIMATORS = {"k1": "kl", "k2": "mse", "k3": "low_var_kl", "abs": "abs", "k3+": "low_var_kl+"}
POLICY_LOSSES = {"vanilla": "vanilla", "gspo": "gspo", "cispo": "cispo"}  # actor.policy_loss.loss_mode


class VerlClusterConfig(StrictModel):
    """Launch-only settings: the hardware and veRL's engines (a `TrainConfig` has no place for them)."""

    nodes: int = Field(1, ge=1, description="Machines in the Ray cluster (trainer.nnodes).")
    gpus_per_node: int = Field(8, ge=1, description="GPUs per machine (trainer.n_gpus_per_node).")
    rollout_engine: Literal["vllm", "sglang"] = Field("vllm", description="Generation engine.")
    tensor_parallel: int = Field(1, ge=1, description="GPUs per rollout engine (tensor parallel).")
    gpu_memory_utilization: float = Field(0.6, gt=0.0, le=1.0, description="Share of GPU memory for rollouts.")
    micro_batch_per_gpu: int = Field(
        4, ge=1, description="Responses per forward/backward per GPU (actor, reference, critic, log-probs).")
    max_prompt_tokens: int = Field(1024, ge=1, description="Longest prompt; a longer one is an error.")
    param_offload: bool = Field(False, description="FSDP: keep parameters on the CPU between uses.")
    optimizer_offload: bool = Field(False, description="FSDP: keep optimizer state on the CPU.")
    logger: list[str] = Field(["console", "file", "tensorboard"], description="veRL trainer.logger backends.")
    project: str = Field("logicrl", description="trainer.project_name (wandb/mlflow project).")


@dataclass(frozen=True)
class Stage:
    """One ``main_ppo`` run: its puzzles, length, starting model and run directory."""

    index: int
    people: tuple[int, ...]
    train_file: Path
    steps: int
    epochs: int
    model_path: str
    run_dir: Path

    @property
    def name(self) -> str:
        return stage_name(self.index, self.people)

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def last_actor_checkpoint(self) -> Path:
        """veRL saves ``global_step_<S>/actor`` at the last step S (save_freq > 0 guarantees it)."""
        return self.checkpoint_dir / f"global_step_{self.steps}" / "actor"

    @property
    def hf_dir(self) -> Path:
        """The stage's last checkpoint as a Hugging Face model (the next stage's start, `logicrl eval`)."""
        return self.run_dir / "hf"

    @property
    def saved_hf_dir(self) -> Path:
        """The fp32 Hugging Face model veRL's checkpoint manager writes beside the last FSDP checkpoint."""
        return self.last_actor_checkpoint / "huggingface"

    @property
    def merge_dir(self) -> Path:
        """Where the hand-off copy goes; renamed to ``hf_dir`` once it is whole, so that a copy killed half-way
        never looks like a finished stage."""
        return self.run_dir / "hf.partial"


def stage_name(index: int, people: tuple[int, ...]) -> str:
    """``stage1_3ppl`` (one number of people) or ``stage1_3-7ppl`` (a range, mixed)."""
    span = str(people[0]) if len(people) == 1 else f"{people[0]}-{people[-1]}"
    return f"stage{index}_{span}ppl"


def plan_stages(cfg: TrainConfig, model_path: str, train_rows: dict[int, int], data_dir: Path,
                run_root: Path) -> list[Stage]:
    """The stages of a run: one per number of people (curriculum) or one over all (mixed).

    As ``logicrl train`` schedules them (`logicrl.rl.schedule`): a stage makes ``data.epochs`` passes of
    ``floor(rows / prompts_per_step)`` steps (the last partial batch is dropped); ``cfg.steps`` cuts the
    last stage short, or, beyond the planned steps, lengthens it with more passes; a budget that ends a
    curriculum before its last stage is refused (`logicrl.rl.schedule.check_curriculum_steps`).
    """
    groups = [(n,) for n in sorted(train_rows)] if cfg.data.schedule == "curriculum" else [tuple(sorted(train_rows))]
    per_epochs = []
    for people in groups:
        rows = sum(train_rows[n] for n in people)
        per_epochs.append(rows // cfg.rollout.prompts_per_step)
        if per_epochs[-1] == 0:
            raise ConfigError(f"{rows} training puzzles with {'/'.join(map(str, people))} people fill no batch "
                              f"of rollout.prompts_per_step={cfg.rollout.prompts_per_step}")
    if len(groups) > 1:  # a step budget that ends before the last stage: refused, as `logicrl train` does
        firsts = itertools.accumulate((p * cfg.data.epochs for p in per_epochs[:-1]), initial=1)
        check_curriculum_steps(cfg.steps, {people[0]: first for people, first in zip(groups, firsts)})
    budget = cfg.steps if cfg.steps is not None else math.inf
    stages: list[Stage] = []
    for k, (people, per_epoch) in enumerate(zip(groups, per_epochs)):
        steps = per_epoch * cfg.data.epochs
        if cfg.steps is not None and (k == len(groups) - 1 or budget < steps):
            steps = int(budget)  # the step budget ends here: a shorter stage, or a longer last one
        index = len(stages) + 1
        start = stages[-1].hf_dir.as_posix() if stages else model_path
        train_file = data_dir / (f"train_{people[0]}ppl.parquet" if len(groups) > 1 else "train.parquet")
        stages.append(Stage(index, people, train_file, steps, math.ceil(steps / per_epoch), start,
                            run_root / stage_name(index, people)))
        budget -= steps
        if budget <= 0:
            break
    return stages


def _pairs(prefix: str, values: dict[str, Any]) -> list[str]:
    return [f"{prefix}{key}={hydra_value(value)}" for key, value in values.items()]


def check_supported(cfg: TrainConfig) -> None:
    """Refuse the settings veRL cannot honour, each with a one-line reason."""
    algo = cfg.algorithm
    unsupported = [
        (cfg.optim.schedule in ("linear", "multistep"),
         f"optim.schedule={cfg.optim.schedule}: veRL has constant and cosine only"),
        (cfg.optim.eps != OptimConfig.model_fields["eps"].default,
         "optim.eps: the launcher leaves veRL's AdamW at its default ε"),
        (algo.kl_target is not None and algo.kl_placement == "loss",
         "algorithm.kl_target: veRL adapts the KL coefficient only with kl_placement=reward"),
        (cfg.rollout.stop_at_answer, "rollout.stop_at_answer: veRL's rollout has no stop strings"),
        (cfg.rollout.val_max_response_tokens is not None,
         "rollout.val_max_response_tokens: veRL validates with the training length"),
        ((algo.mini_batch_size or 0) % cfg.rollout.group_size != 0,
         "algorithm.mini_batch_size must be a multiple of rollout.group_size (veRL counts prompts)"),
        (algo.advantage not in ADVANTAGES,
         f"algorithm.advantage={algo.advantage} (veRL's estimators map from: {', '.join(ADVANTAGES)})"),
        (algo.kl_estimator not in KL_ESTIMATORS,
         f"algorithm.kl_estimator={algo.kl_estimator} (veRL's map from: {', '.join(KL_ESTIMATORS)})"),
        (algo.policy_loss not in POLICY_LOSSES,
         f"algorithm.policy_loss={algo.policy_loss} (veRL's map from: {', '.join(POLICY_LOSSES)})"),
        (cfg.rollout.dynamic_sampling,
         "rollout.dynamic_sampling: veRL's main_ppo has no group filter (its DAPO recipe does)"),
        (algo.overlong_buffer is not None,
         "algorithm.overlong_buffer: veRL's main_ppo reward has no overlong punishment (its DAPO reward manager does)"),
        (algo.mask_truncated, "algorithm.mask_truncated: veRL's main_ppo has no overlong filtering"),
        (algo.trace_check_weight > 0,
         "algorithm.trace_check_weight: the exported reward function scores the answer only (no trace shaping)"),
        (algo.trace_answer_weight > 0,
         "algorithm.trace_answer_weight: the exported reward function scores the answer only (no trace shaping)"),
        (algo.check_line_credit > 0,
         "algorithm.check_line_credit: veRL's advantages come from its estimators only (no per-token credit)"),
        (algo.positive_only, "algorithm.positive_only: veRL's advantages are not clamped"),
        (cfg.data.schedule == "adaptive",
         ("data.schedule=adaptive: veRL's main_ppo has no sampler that follows the training accuracy; "
          "use curriculum or mixed")),
        (cfg.model.lora is not None and cfg.model.lora.lora_dropout > 0,
         "model.lora.lora_dropout: veRL's LoRA has no dropout"),
    ]
    refuse(unsupported)


def refuse(checks: Iterable[tuple[bool, str]]) -> None:
    """A ConfigError, one line, for the first ``(failed, reason)`` that failed."""
    for failed, reason in checks:
        if failed:
            raise ConfigError(f"not supported by the veRL launcher: {reason}")


def algorithm_overrides(cfg: TrainConfig, cluster: VerlClusterConfig) -> list[str]:
    """Advantage, KL, policy loss and optimizer: the algorithm half of the overrides (pure)."""
    algo, optim = cfg.algorithm, cfg.optim
    mini = (algo.mini_batch_size or cfg.rollout.prompts_per_step * cfg.rollout.group_size) // cfg.rollout.group_size
    kl_type = KL_ESTIMATORS[algo.kl_estimator]
    clip_low, clip_high = algo.clip_range()
    actor = {
        "optim.lr": optim.lr, "optim.lr_scheduler_type": optim.schedule, "optim.lr_warmup_steps": optim.warmup_steps,
        "optim.weight_decay": optim.weight_decay, "optim.betas": list(optim.betas), "optim.clip_grad": optim.grad_clip,
        "ppo_mini_batch_size": mini, "ppo_micro_batch_size_per_gpu": cluster.micro_batch_per_gpu,
        "ppo_epochs": algo.update_epochs, "clip_ratio_low": clip_low, "clip_ratio_high": clip_high,
        "clip_ratio_c": algo.dual_clip if algo.dual_clip is not None else math.inf,  # c = ∞: no dual clip
        "policy_loss.loss_mode": POLICY_LOSSES[algo.policy_loss],
        "loss_agg_mode": algo.loss_agg, "entropy_coeff": algo.entropy_coef,
        "use_kl_loss": algo.kl_placement == "loss",
        # hf_model: the full fp32 actor as a Hugging Face model, the next stage's start (see the module doc)
        "checkpoint.save_contents": ["model", "optimizer", "extra", "hf_model"],
    }
    norm_constant = cfg.loss_norm_constant()
    if norm_constant is not None:  # veRL's default C is the padded width: ours is the budget
        actor["loss_scale_factor"] = norm_constant
    if algo.kl_placement == "loss":
        actor.update({"kl_loss_coef": algo.kl_coef, "kl_loss_type": kl_type})
    algorithm = {"adv_estimator": ADVANTAGES[algo.advantage], "gamma": algo.gamma, "lam": algo.lam,
                 "norm_adv_by_std_in_grpo": algo.scale_by_std, "use_kl_in_reward": algo.kl_placement == "reward"}
    if algo.tis_cap is not None:  # token-level truncated IS between vLLM/SGLang and the FSDP actor
        algorithm.update({"rollout_correction.rollout_is": "token", "rollout_correction.rollout_is_threshold": algo.tis_cap})
    if algo.kl_placement == "reward":
        algorithm.update({"kl_penalty": kl_type, "kl_ctrl.kl_coef": algo.kl_coef,
                          "kl_ctrl.type": "fixed" if algo.kl_target is None else "adaptive"})
        if algo.kl_target is not None:
            algorithm.update({"kl_ctrl.target_kl": algo.kl_target, "kl_ctrl.horizon": algo.kl_horizon})
    return _pairs("actor_rollout_ref.actor.", actor) + _pairs("algorithm.", algorithm)


def model_overrides(cfg: TrainConfig, cluster: VerlClusterConfig, model_path: str,
                    chat_template: str | None) -> list[str]:
    """Policy, reference, rollout engine and (PPO) critic."""
    model = {"path": model_path, "trust_remote_code": cfg.model.trust_remote_code,
             "enable_gradient_checkpointing": cfg.model.gradient_checkpointing}
    lora = cfg.model.lora
    if lora is not None:  # veRL's reference is then the actor with the adapter disabled, as ours
        model.update({"lora_rank": lora.r, "lora_alpha": lora.lora_alpha, "target_modules": list(lora.target_modules)})
    if chat_template is not None:
        model["custom_chat_template"] = chat_template
    offload = {"actor.fsdp_config.param_offload": cluster.param_offload,
               "actor.fsdp_config.optimizer_offload": cluster.optimizer_offload,
               "ref.fsdp_config.param_offload": cluster.param_offload,
               "ref.log_prob_micro_batch_size_per_gpu": cluster.micro_batch_per_gpu}
    rollout = {"name": cluster.rollout_engine, "n": cfg.rollout.group_size, "temperature": cfg.rollout.temperature,
               "top_p": cfg.rollout.top_p, "tensor_model_parallel_size": cluster.tensor_parallel,
               "gpu_memory_utilization": cluster.gpu_memory_utilization,
               "log_prob_micro_batch_size_per_gpu": cluster.micro_batch_per_gpu}
    if cfg.algorithm.tis_cap is not None:
        rollout["calculate_log_probs"] = True  # the sampler's log-probs, for rollout_correction
    out = (_pairs("actor_rollout_ref.model.", model) + _pairs("actor_rollout_ref.", offload)
           + _pairs("actor_rollout_ref.rollout.", rollout))
    if get_advantage_estimator(cfg.algorithm.advantage).needs_critic:
        critic = {"model.path": model_path, "model.trust_remote_code": cfg.model.trust_remote_code,
                  "model.enable_gradient_checkpointing": cfg.model.gradient_checkpointing,
                  "optim.lr": cfg.optim.critic_lr, "optim.weight_decay": cfg.optim.weight_decay,
                  "optim.betas": list(cfg.optim.betas), "optim.clip_grad": cfg.optim.grad_clip,  # as the actor's
                  "ppo_micro_batch_size_per_gpu": cluster.micro_batch_per_gpu,
                  "cliprange_value": cfg.algorithm.value_clip}
        out += _pairs("critic.", critic)
    return out


def reward_overrides(cfg: TrainConfig) -> list[str]:
    """Our `compute_score` as veRL's custom reward; non-default `RewardConfig` fields as its kwargs."""
    kwargs = {"prefilled_think": cfg.prompt.prefilled_think, **cfg.reward.model_dump(exclude_defaults=True)}
    return (_pairs("reward.custom_reward_function.", {"path": REWARD_FUNCTION, "name": "compute_score"})
            + _pairs("+reward.custom_reward_function.reward_kwargs.", kwargs))


def stage_overrides(cfg: TrainConfig, cluster: VerlClusterConfig, stage: Stage, val_file: Path | None,
                    chat_template: str | None) -> list[str]:
    """Every override of one stage's ``main_ppo`` run."""
    validate = val_file is not None and cfg.val_every > 0
    # veRL always loads a validation file: without held-out puzzles it gets the training file, never used.
    data = {"train_files": [stage.train_file.as_posix()], "val_files": [(val_file or stage.train_file).as_posix()],
            "train_batch_size": cfg.rollout.prompts_per_step, "max_prompt_length": cluster.max_prompt_tokens,
            "max_response_length": cfg.rollout.max_response_tokens, "seed": cfg.seed}
    trainer = {
        "project_name": cluster.project, "experiment_name": f"{cfg.out_dir.name}-{stage.name}",
        "logger": cluster.logger, "nnodes": cluster.nodes, "n_gpus_per_node": cluster.gpus_per_node,
        "total_epochs": stage.epochs, "total_training_steps": stage.steps,
        "save_freq": cfg.save_every or stage.steps,  # keep_last bounds the actor's and PPO's critic's checkpoints
        "max_actor_ckpt_to_keep": cfg.keep_last, "max_critic_ckpt_to_keep": cfg.keep_last,
        "test_freq": cfg.val_every if validate else -1, "val_before_train": validate,
        "default_local_dir": stage.checkpoint_dir.as_posix(),
        "rollout_data_dir": (stage.run_dir / "rollouts").as_posix() if cfg.log_rollouts else None,
    }
    # Ray passes these to every worker of the job, on every node (metrics.jsonl and tb/ like `logicrl train`).
    env = {"VERL_FILE_LOGGER_PATH": (stage.run_dir / "metrics.jsonl").as_posix(),
           "TENSORBOARD_DIR": (stage.run_dir / "tb").as_posix()}
    return (_pairs("data.", data) + algorithm_overrides(cfg, cluster)
            + model_overrides(cfg, cluster, stage.model_path, chat_template) + reward_overrides(cfg)
            + _pairs("trainer.", trainer) + _pairs("+ray_kwargs.ray_init.runtime_env.env_vars.", env))


# A Hydra command-line override: key=value, +key=value (add), ++key=value (add or set), ~key[=value] (delete).
HYDRA_OVERRIDE = re.compile(r"(?:\+\+|\+)?[^\s=~+][^\s=]*=.*|~[^\s=~+][^\s=]*(?:=.*)?", re.DOTALL)


def check_raw_overrides(extra: Iterable[str]) -> None:
    """A ConfigError for a raw veRL override that Hydra would refuse only once the job runs (``foo``, ``=x``)."""
    for item in extra:
        if not HYDRA_OVERRIDE.fullmatch(item):
            raise ConfigError(f"--verl {item!r} is not a veRL (Hydra) override: write key=value "
                              "(or +key=value, ++key=value, ~key)")


def train_command(overrides: list[str], extra: list[str]) -> list[str]:
    """``python -m verl.trainer.main_ppo <overrides> <extra>`` (``extra``: raw veRL overrides, last wins)."""
    return [sys.executable, "-m", "verl.trainer.main_ppo", *overrides, *extra]


def merge_command(stage: Stage, lora: LoraConfig | None) -> list[str]:
    """The hand-off: the stage's last checkpoint as a plain Hugging Face model (fp32) in ``stage.merge_dir``
    (`run_plan` renames it to ``stage.hf_dir`` when it succeeded): a copy, or with ``lora`` the adapter merged
    into the base weights (`logicrl.integrations.verl_handoff`; veRL saves a LoRA actor's peft state dict)."""
    scaling = ["--lora-scaling", repr(lora.lora_alpha / lora.r)] if lora is not None else []
    return [sys.executable, "-m", "logicrl.integrations.verl_handoff", stage.saved_hf_dir.as_posix(),
            stage.merge_dir.as_posix(), *scaling]


def format_command(command: list[str]) -> str:
    """A command for bash, quoted, one override or ``--option value`` per line (copy-paste ready)."""
    lines: list[list[str]] = [[]]
    for arg in command:
        if lines[-1] and (arg.startswith("--") or "=" in arg):
            lines.append([])
        lines[-1].append(shlex.quote(arg))
    return " \\\n    ".join(" ".join(line) for line in lines)


@dataclass(frozen=True)
class LaunchPlan:
    """Everything a launch does: the parquet files to write, then per stage a training and a merge command."""

    data_dir: Path
    files: dict[str, list[dict[str, Any]]]
    stages: list[Stage]
    commands: list[tuple[list[str], list[str]]]

    def describe(self) -> str:
        """The plan as a bash script: comments, then every command in order."""
        lines = [f"# veRL {VERL_VERSION}: {len(self.stages)} stage(s); `logicrl verl launch` first writes "
                 f"{len(self.files)} parquet files to {self.data_dir}"]
        for stage, (train, merge) in zip(self.stages, self.commands):
            people = ", ".join(map(str, stage.people))
            rename = format_command(["mv", stage.merge_dir.as_posix(), stage.hf_dir.as_posix()])
            lines += [f"\n# {stage.name}: {people} people, {stage.steps} steps, from {stage.model_path}",
                      format_command(train), "# its last checkpoint as a Hugging Face model (fp32), renamed once whole:",
                      f"{format_command(merge)} && \\\n    {rename}"]
        return "\n".join(lines)


def model_chat_template(model_path: str, trust_remote_code: bool) -> str | None:
    """The chat template of the model's tokenizer (read once; the merged stages keep the same tokenizer). A model
    this machine cannot read (a missing path; a hub id neither cached nor reachable) is refused at once, not
    after the hub's retries."""
    from transformers import AutoTokenizer

    try:
        check_model_name(model_path)
    except ModelNotFoundError as exc:
        raise ConfigError(f"{exc}; or set prompt.prefill='' (in verl export: prefill=''): the pre-fill needs the "
                          "model's chat template") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot read the tokenizer of {model_path} to add the prompt pre-fill ({first}); "
                          "make the model reachable, or set prompt.prefill='' (in verl export: prefill='')") from None
    return tokenizer.chat_template


def rows_chat_template(prompt: PromptConfig, model_path: str, trust_remote_code: bool) -> str | None:
    """The chat template the exported rows must be rendered with (`rollout_chat_template`; None: the model's
    own); the model's own is read (`model_chat_template`) only when the pre-fill goes on top of it."""
    needs_model = prompt.template == "chat" and bool(prompt.prefill)
    return rollout_chat_template(prompt, model_chat_template(model_path, trust_remote_code) if needs_model else None)


def check_stages(cfg: TrainConfig, stages: list[Stage]) -> None:
    """A veRL run per stage restarts the reference, optimizer and critic: refuse a curriculum that asks otherwise."""
    if len(stages) < 2:
        return
    refuse([
        (cfg.algorithm.reference != "stage_start",
         "algorithm.reference=initial with a curriculum (veRL's reference is each stage's starting model); "
         "set algorithm.reference=stage_start"),
        (not cfg.optim.stage_reset,
         "optim.stage_reset=false with a curriculum (each veRL stage starts its optimizer and critic fresh); "
         "set optim.stage_reset=true"),
        (cfg.model.lora is not None,
         "model.lora with a curriculum (veRL's LoRA reference is the base model, not the adapter at each stage's "
         "start); use data.schedule=mixed, or one number of people"),
    ])


def plan_launch(cfg: TrainConfig, cluster: VerlClusterConfig, extra: list[str] | None = None) -> LaunchPlan:
    """Read the puzzles, build the export and the commands of every stage (writes nothing)."""
    check_supported(cfg)
    check_raw_overrides(extra or [])
    run_root = cfg.out_dir.resolve() / "verl"
    data_dir = run_root / "data"
    val_per_people = cfg.data.val_puzzles_per_people if cfg.val_every else 0
    train, val = read_puzzles(cfg.data.train, cfg.data.people, cfg.data.val, val_per_people)
    files = build_export(train, val, cfg.prompt)
    model_path = resolve_model_path(cfg.model.name)
    if Path(model_path).exists():
        model_path = Path(model_path).resolve().as_posix()  # Ray workers do not share our working directory
    if is_lora_checkpoint(model_path):
        raise ConfigError(f"model.name={cfg.model.name} is a LoRA checkpoint (an adapter, no config.json), and veRL "
                          "loads full models: save it merged first and give that folder (docs/verl.md, 'From a LoRA "
                          "checkpoint')")
    if cfg.model.lora is not None and (Path(model_path) / "config.json").is_file():  # a hub id is checked on the cluster
        linears = saved_model_linear_names(model_path, cfg.model.trust_remote_code)
        if linears is not None:  # else an architecture only the cluster's transformers may know
            check_targets(cfg.model.lora.target_modules, linears)
    train_rows = Counter(row["extra_info"]["n_people"] for row in files["train.parquet"])
    stages = plan_stages(cfg, model_path, dict(train_rows), data_dir, run_root)
    check_stages(cfg, stages)
    template = rows_chat_template(cfg.prompt, model_path, cfg.model.trust_remote_code)
    val_file = data_dir / "test.parquet" if "test.parquet" in files else None
    commands = [(train_command(stage_overrides(cfg, cluster, s, val_file, template), list(extra or [])),
                 merge_command(s, cfg.model.lora)) for s in stages]
    return LaunchPlan(data_dir, files, stages, commands)


def run_plan(plan: LaunchPlan, echo: Callable[[str], None] = print) -> None:
    """Write the parquet files, then run each stage and its merge in order; finished stages are skipped.

    A failed command stops the launch with a one-line error; launching again with the same settings resumes:
    veRL restarts the stage from its last checkpoint (``trainer.resume_mode=auto``) and stages with a merged
    model are done. Launching again with other settings is refused (`verl_resume.check_relaunch`).
    """
    if importlib.util.find_spec("verl") is None:
        raise UserError(f"veRL is not installed in this Python (pip install 'verl[vllm]=={VERL_VERSION}'); "
                        "`logicrl verl launch --dry-run` prints the commands without it")
    check_relaunch(plan)
    for name, rows in plan.files.items():
        write_parquet(plan.data_dir / name, rows)
    write_record(plan)
    for stage, (train, merge) in zip(plan.stages, plan.commands):
        if (stage.hf_dir / "config.json").is_file():
            echo(f"{stage.name}: done ({stage.hf_dir}), skipped")
            continue
        shutil.rmtree(stage.merge_dir, ignore_errors=True)  # what a killed merge left
        for command in (train, merge):
            echo(format_command(command))
            code = subprocess.run(command, check=False).returncode
            if code:
                raise UserError(f"{stage.name}: `{shlex.join(command[:3])}` exited with status {code}; fix the cause "
                                "and launch again to resume from the last checkpoint")
        os.replace(stage.merge_dir, stage.hf_dir)

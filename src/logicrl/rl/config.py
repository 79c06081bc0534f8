"""`TrainConfig`: everything ``logicrl train`` reads, one section per concern, each field documented once.

YAML files in ``configs/`` set these keys; the command line overrides any of them with dotted
``section.key=value`` pairs (``optim.lr=1e-6 rollout.group_size=4``). Defaults follow the paper's recipe
(Xie et al. 2025: REINFORCE++, 8 prompts × 8 rollouts, lr 4e-7 constant, temperature 0.7, responses up to
4096 tokens, k3 KL loss 0.001, token-mean) except in the model and the data order; configs/paper-reinforce-pp.yaml
sets the paper's values. The defaults that differ from that file (its values in parentheses): ``model.name``
smollm2-135m (Qwen2.5-7B-Instruct-1M, with ``model.dtype`` bfloat16 and gradient checkpointing on),
``data.schedule`` mixed over every number of people found (a curriculum over 3 → 7 people), ``data.epochs`` 1
(6), ``algorithm.reference`` initial and ``optim.stage_reset`` false (stage_start and true: the curriculum's
per-stage runs), and the bookkeeping ``data.val_puzzles_per_people`` 50 (100), ``save_every`` 20 (50) and
``val_every`` 10 (50).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from logicrl.config import StrictModel
from logicrl.models import DEFAULT_MODEL
from logicrl.models.memory_plan import LORA_TARGETS
from logicrl.prompts import PromptConfig
from logicrl.puzzles.dataset import PeopleList
from logicrl.reward.score import RewardConfig
from logicrl.rl.advantages import ADVANTAGE_ESTIMATORS, get_advantage_estimator
from logicrl.rl.kl import KL_ESTIMATORS
from logicrl.rl.losses import AGGREGATIONS
from logicrl.rl.policy_losses import POLICY_LOSSES, get_policy_loss


class LoraConfig(StrictModel):
    """``model.lora``: train a low-rank adapter through peft instead of every weight (Hu et al. 2021,
    arXiv 2106.09685); peft's and TRL's names. The base weights are frozen, and the KL reference is the base
    model with the adapter disabled (no second copy of the base); with ``algorithm.reference=stage_start``,
    from the second curriculum stage on, the base with a frozen float32 copy of the adapter as it was at the
    stage's entry (a second peft adapter, ``reference``, checkpointed as ``reference.safetensors``)."""

    r: int = Field(16, ge=1, description="Adapter rank.")
    lora_alpha: float = Field(32.0, gt=0.0, description="Scale: the update is (lora_alpha / r) · B·A.")
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the adapter's input.")
    target_modules: tuple[str, ...] = Field(
        LORA_TARGETS, min_length=1, description="Linears that get an adapter (default: all 7 of each layer).")


class ModelConfig(StrictModel):
    """The policy to train (and, frozen, the reference model)."""

    name: str = Field(DEFAULT_MODEL, description="Alias (smollm2-135m, tiny-random), local checkpoint or hub id.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description=(
        "Compute dtype: 'auto' is bf16 on a GPU that supports it, else float32. The forwards run under its "
        "autocast (on CUDA; on CPU for bfloat16, ≈ 2× float32 where the CPU has AVX512-BF16 or AMX) and the "
        "reference is stored in it. Trained weights stay float32 (master weights, so "
        "AdamW's state is float32 too: a 4e-7 step is below bf16's resolution); the frozen base weights of a "
        "model.lora run are stored in this dtype."))
    device: str = Field("auto", description="'auto' (CUDA if available), 'cpu', 'cuda', 'cuda:N'.")
    trust_remote_code: bool = Field(False, description="Run the checkpoint's own code; only if you trust it.")
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory in the update.")
    lora: LoraConfig | None = Field(None, description=(
        "Train a LoRA adapter (peft) instead of every weight; the reference is then the base, or the base "
        "with a frozen copy of the adapter (algorithm.reference=stage_start)."))


class AdaptiveConfig(StrictModel):
    """``data.schedule=adaptive``: the level (number of people) follows the rolling training accuracy, as in
    reasoning-gym's K&K curriculum (up at ≥ 0.70, down at ≤ 0.30)."""

    up: float = Field(0.70, ge=0.0, le=1.0, description="Move up a level when the rolling accuracy is at least this.")
    down: float = Field(0.30, ge=0.0, le=1.0, description="Move down a level when the rolling accuracy is at most this.")
    window: int = Field(10, ge=1, description=(
        "Steps the rolling accuracy spans (solved / responses); it decides only when full, and empties on a move."))

    @model_validator(mode="after")
    def _ordered(self) -> AdaptiveConfig:
        if self.down >= self.up:
            raise ValueError(f"down={self.down} must be below up={self.up}")
        return self


class DataConfig(StrictModel):
    """Where the puzzles come from and in which order the trainer sees them."""

    train: Path = Field(Path("outputs/data"), description="Dataset directory (from `logicrl data generate`) or file.")
    val: Path | None = Field(None, description=(
        "Validation puzzles; default: the val split of `train` (`logicrl data generate --val N`), else its test split."))
    people: PeopleList | None = Field(None, description=(
        "Numbers of people to train on, e.g. [3, 4] or '3-7' (default: all found)."))
    schedule: Literal["curriculum", "mixed", "adaptive"] = Field("mixed", description=(
        "'curriculum': one pass per number of people, fewest first; 'mixed': one shuffle; 'adaptive': the number "
        "of people moves up or down with the rolling training accuracy (data.adaptive)."))
    adaptive: AdaptiveConfig = AdaptiveConfig()
    epochs: int = Field(1, ge=1, description="Passes over the training puzzles.")
    val_puzzles_per_people: int = Field(50, ge=0, description="Held-out puzzles per number of people.")


class RolloutConfig(StrictModel):
    """Sampling of responses."""

    prompts_per_step: int = Field(8, ge=1, description="Puzzles per RL step (the paper's batch size, 8).")
    group_size: int = Field(8, ge=1, description="Responses sampled per puzzle (the paper's rollout.n, 8).")
    temperature: float = Field(0.7, gt=0.0, description="Sampling temperature (the paper's 0.7).")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling threshold.")
    max_response_tokens: int = Field(4096, ge=1, description="Longest response; longer ones are cut (clipped).")
    stop_at_answer: bool = Field(
        False, description="Also stop a response at '</answer>' (faster; hides text written after the answer).")
    val_max_response_tokens: int | None = Field(None, ge=1, description="Validation cap (default: the same).")
    dynamic_sampling: bool = Field(False, description=(
        "DAPO's dynamic sampling: drop puzzles whose responses all get the same score and sample more puzzles "
        "of the stage until prompts_per_step puzzles carry signal (or max_draws)."))
    max_draws: int = Field(4, ge=1, description=(
        "Dynamic sampling: at most this many rounds of prompts_per_step puzzles per step (the first included); "
        "then the batch is topped up with the dropped puzzles."))


class AlgorithmConfig(StrictModel):
    """Advantage estimator, KL, and the policy loss; see docs/algorithms.md for the formulas."""

    advantage: str = Field("reinforce_pp", description="reinforce_pp, reinforce_pp_baseline, grpo, rloo, gae (PPO).")
    gamma: float = Field(1.0, ge=0.0, le=1.0, description="Discount of the returns.")
    lam: float = Field(1.0, ge=0.0, le=1.0, description="GAE λ (PPO).")
    scale_by_std: bool = Field(True, description="GRPO divides by the group std; false is Dr.GRPO.")
    kl_placement: Literal["loss", "reward", "none"] = Field(
        "loss", description="'loss': β·KL added to the loss (Logic-RL); 'reward': −β·KL_t in token rewards.")
    kl_estimator: str = Field("k3", description="k1, k2, k3, abs, k3+ (k3 is the paper's).")
    kl_coef: float = Field(0.001, ge=0.0, description="β, the KL coefficient (the paper's 0.001).")
    kl_target: float | None = Field(None, gt=0.0, description="Set to adapt β toward this KL (Ziegler et al.).")
    kl_horizon: float = Field(10000.0, gt=0.0, description="Adaptive KL horizon, in responses.")
    reference: Literal["initial", "stage_start"] = Field("initial", description=(
        "The KL reference: the model the run starts from, or the policy at the start of each curriculum stage "
        "(separate runs per stage, as veRL's launcher does; with model.lora, a frozen copy of the adapter)."))
    policy_loss: str = Field("vanilla", description=(
        "vanilla (the clipped PPO loss), gspo (sequence-level ratio), cispo (clipped, detached IS weight)."))
    clip_low: float | None = Field(None, ge=0.0, description=(
        "ε_low of the clipped ratio; null: the policy loss's own (vanilla 0.2, gspo 3e-4, cispo 1 = no bound)."))
    clip_high: float | None = Field(None, ge=0.0, description=(
        "ε_high of the clipped ratio (DAPO raises it to 0.28); null: the policy loss's own (0.2, 4e-4, 0.2)."))
    dual_clip: float | None = Field(3.0, gt=1.0, description=(
        "Dual-clip c for negative advantages (vanilla only); null disables."))
    loss_agg: str = Field("token-mean", description="token-mean, seq-mean-token-mean, seq-mean-token-sum(-norm).")
    entropy_coef: float = Field(0.0, ge=0.0, description="Entropy bonus coefficient.")
    update_epochs: int = Field(1, ge=1, description="Passes over each batch of rollouts (PPO epochs).")
    mini_batch_size: int | None = Field(
        None, ge=1, description="Responses per optimizer step; default: the whole batch (one on-policy step).")
    micro_batch_size: int = Field(8, ge=1, description="Responses per forward/backward (gradient accumulation).")
    micro_batch_tokens: int | None = Field(None, ge=1, description=(
        "Also cap each micro-batch at this many padded response tokens (rows × longest), rows sorted by length: "
        "less padding when lengths vary; null: consecutive rows."))
    prompts_once: bool = Field(True, description=(
        "Run each distinct prompt of a batch once for all its micro-batches (its KV cache shared, its backward once "
        "on the summed gradients); false: once per micro-batch that holds one of its rows. Same values and "
        "gradients up to float rounding."))
    logprob_chunk: int | None = Field(512, ge=1, description=(
        "Compute log-probs and entropy this many response tokens at a time from the final hidden states (the "
        "chunk's logits recomputed in backward; a plain linear head skips the padding), so no full-vocabulary "
        "tensor of the whole micro-batch exists; null: all at once (full logits)."))
    value_clip: float = Field(0.5, gt=0.0, description="PPO value clip around the old values.")
    tis_cap: float | None = Field(None, ge=1.0, description=(
        "Truncated importance sampling: weight each token's loss by min(π_trainer/π_sampler, tis_cap), the ratio "
        "of the trainer's rollout-time log-prob to the sampler's; null: off."))
    overlong_buffer: int | None = Field(None, ge=1, description=(
        "DAPO's soft overlong punishment: the score falls linearly by up to overlong_penalty over the last "
        "this many tokens of rollout.max_response_tokens; null: off."))
    overlong_penalty: float = Field(1.0, ge=0.0, description="The largest overlong punishment (DAPO: 1).")
    trace_check_weight: float = Field(0.0, ge=0.0, description=(
        "Shaped, not the paper's reward: add w × (share of the response's case-check lines that are right − 1) "
        "to its score (logicrl.rl.shaping.trace_check_shaping), for a cold start that reasons by cases; "
        "0: the paper's reward alone. Evaluation never sees it."))
    trace_answer_weight: float = Field(0.0, ge=0.0, description=(
        "Shaped, not the paper's reward: subtract w from the score of a response whose answer is not the "
        "assignment of its last case line (logicrl.rl.shaping.trace_answer_shaping): a trace by cases must "
        "answer the case it ends on; 0: off. Evaluation never sees it."))
    check_line_credit: float = Field(0.0, ge=0.0, description=(
        "Shaped, not the paper's reward: add +w to the advantage of the tokens of a case-check line up to its "
        "first wrong character (against the template's line) and −w to the token holding it "
        "(logicrl.rl.shaping.check_line_credit), so each lookup is credited by its own correctness, not the "
        "whole trace's; a speaker checked again under the same case line is not paid again; 0: off. "
        "Evaluation never sees it."))
    positive_only: bool = Field(False, description=(
        "Reinforce only what worked: advantages (and check-line credit) clamped at 0, so no sampled token is "
        "pushed down (a negative gradient on an unlikely token is large and moves mass elsewhere at random)."))
    mask_truncated: bool = Field(False, description=(
        "DAPO's overlong filtering: responses cut at max_response_tokens get no loss (they still count in "
        "their group's baseline)."))

    @model_validator(mode="after")
    def _known_names(self) -> AlgorithmConfig:
        for label, value, known in (
            ("advantage", self.advantage, ADVANTAGE_ESTIMATORS),
            ("kl_estimator", self.kl_estimator, KL_ESTIMATORS),
            ("loss_agg", self.loss_agg, AGGREGATIONS),
            ("policy_loss", self.policy_loss, POLICY_LOSSES),
        ):
            if value not in known:
                raise ValueError(f"unknown {label} {value!r}; choose from {', '.join(known)}")
        if self.overlong_buffer is not None and self.overlong_penalty == 0:  # accepted, it would do nothing
            raise ValueError("algorithm.overlong_buffer with overlong_penalty=0 punishes nothing: set "
                             "overlong_penalty > 0 (DAPO: 1) or drop overlong_buffer")
        if self.kl_target is not None and self.kl_coef == 0:  # the controller multiplies β: 0 stays 0
            raise ValueError("kl_target adapts β from algorithm.kl_coef by multiplying it, so kl_coef=0 would stay "
                             "0: give a starting kl_coef > 0 (e.g. the paper's 0.001)")
        required = get_policy_loss(self.policy_loss).loss_agg
        if required is not None and self.loss_agg != required:
            raise ValueError(f"algorithm.policy_loss={self.policy_loss} is defined with loss_agg={required}; "
                             f"set algorithm.loss_agg={required}")
        return self

    @property
    def uses_reference(self) -> bool:
        """Whether the KL term needs reference log-probs: it is placed somewhere and its coefficient is non-zero
        (an adaptive controller, ``kl_target``, starts from a non-zero one)."""
        return self.kl_placement != "none" and self.kl_coef > 0

    def clip_range(self) -> tuple[float, float]:
        """(ε_low, ε_high): the configured values, or the policy loss's own where unset."""
        low, high = get_policy_loss(self.policy_loss).clip
        return (low if self.clip_low is None else self.clip_low, high if self.clip_high is None else self.clip_high)


class OptimConfig(StrictModel):
    """AdamW and the learning-rate schedule (policy; `critic_lr` for PPO's value model)."""

    lr: float = Field(4e-7, gt=0.0, description="Peak learning rate (the paper's 4e-7, constant).")
    schedule: Literal["constant", "cosine", "linear", "multistep"] = Field("constant", description=(
        "Decay after warm-up; multistep: ×gamma after each of `milestones` (torch's MultiStepLR)."))
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up, in optimizer steps.")
    milestones: list[int] = Field([], description=(
        "schedule=multistep: training steps after which the lr is multiplied by gamma (counted from the run's "
        "start, also under stage_reset), e.g. [30] with gamma 0.5: steps 31 on at lr / 2."))
    gamma: float = Field(0.5, gt=0.0, le=1.0, description="schedule=multistep: the factor at each milestone.")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas.")
    eps: float = Field(1e-8, gt=0.0, description=(
        "AdamW's ε in lr · m / (√v + ε). Above a coordinate's gradient scale the step there shrinks toward "
        "lr · m / ε (SGD with momentum), so coordinates whose gradient is small noise stop moving by ~lr a step."))
    grad_clip: float = Field(1.0, gt=0.0, description="Clip the global gradient norm to this.")
    critic_lr: float = Field(1e-5, gt=0.0, description="Value model learning rate (PPO only).")
    stage_reset: bool = Field(False, description=(
        "At each curriculum stage start AdamW's state, the lr schedule (warm-up and decay over the stage) and "
        "PPO's critic afresh, as separate runs per stage do (veRL's launcher always does)."))

    @model_validator(mode="after")
    def _milestones(self) -> OptimConfig:
        if (self.schedule == "multistep") != bool(self.milestones):
            raise ValueError("optim.milestones go with optim.schedule=multistep, and it needs them "
                             "(e.g. optim.schedule=multistep optim.milestones=[30])")
        if any(m < 1 for m in self.milestones) or self.milestones != sorted(set(self.milestones)):
            raise ValueError(f"optim.milestones={self.milestones}: training steps ≥ 1, increasing")
        if not all(0.0 <= beta < 1.0 for beta in self.betas):  # AdamW's own check comes after the model loads
            raise ValueError(f"optim.betas={list(self.betas)}: each in [0, 1), e.g. [0.9, 0.999]")
        return self


class TrainConfig(StrictModel):
    """A whole RL run. ``out_dir`` receives config.yaml, metrics.jsonl, tb/, rollouts/, checkpoints/."""

    # Keys that `logicrl train --resume RUN key=value` may change (recorded in RUN/resumes.jsonl): how long,
    # how fast, and what is logged; everything else defines the experiment and is refused.
    resumable: ClassVar[tuple[str, ...]] = (
        "steps", "optim.lr", "optim.critic_lr", "optim.grad_clip", "save_every", "keep_last", "val_every",
        "log_rollouts", "threads", "rollout.val_max_response_tokens")

    model: ModelConfig = ModelConfig()
    prompt: PromptConfig = PromptConfig()
    data: DataConfig = DataConfig()
    rollout: RolloutConfig = RolloutConfig()
    algorithm: AlgorithmConfig = AlgorithmConfig()
    optim: OptimConfig = OptimConfig()
    reward: RewardConfig = RewardConfig()
    out_dir: Path = Field(Path("outputs/train"), description="Run directory.")
    steps: int | None = Field(None, ge=1, description="Stop after this many steps (default: all data epochs).")
    seed: int = Field(0, description="Seeds data order, sampling and initialisation.")
    save_every: int = Field(20, ge=0, description="Checkpoint every k steps (0: only at the end).")
    keep_last: int = Field(2, ge=1, description="Checkpoints kept (older ones are deleted).")
    val_every: int = Field(10, ge=0, description="Validate every k steps, and before the first (0: never).")
    log_rollouts: bool = Field(True, description="Write every rollout to rollouts/step_*.jsonl.")
    threads: int | None = Field(None, ge=1, description=(
        "torch intra-op threads on CPU (default: the cores other processes leave free, from the load average; "
        "set it for bit-exact resumes)."))

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        batch = self.rollout.prompts_per_step * self.rollout.group_size
        mini = self.algorithm.mini_batch_size or batch
        if batch % mini:
            raise ValueError(
                f"algorithm.mini_batch_size={mini} must divide the batch of {batch} responses "
                f"(rollout.prompts_per_step × rollout.group_size)")
        if get_advantage_estimator(self.algorithm.advantage).needs_groups and self.rollout.group_size < 2:
            raise ValueError(
                f"algorithm.advantage={self.algorithm.advantage} compares responses to the same puzzle: "
                "set rollout.group_size >= 2")
        if self.rollout.dynamic_sampling and self.rollout.group_size < 2:
            raise ValueError("rollout.dynamic_sampling compares responses to the same puzzle: "
                             "set rollout.group_size >= 2")
        if self.data.schedule == "adaptive" and (self.algorithm.reference == "stage_start" or self.optim.stage_reset):
            raise ValueError("algorithm.reference=stage_start and optim.stage_reset act at curriculum stages, which "
                             "data.schedule=adaptive does not have (its levels change with the rewards): drop them")
        if (self.algorithm.overlong_buffer or 0) > self.rollout.max_response_tokens:
            raise ValueError(f"algorithm.overlong_buffer={self.algorithm.overlong_buffer} is longer than "
                             f"rollout.max_response_tokens={self.rollout.max_response_tokens}")
        return self

    def loss_norm_constant(self) -> float | None:
        """C of an aggregation that divides by a constant (Dr.GRPO's ``seq-mean-token-sum-norm``): the generation
        budget ``rollout.max_response_tokens``, not the width of a (trimmed) batch; None for the others."""
        uses = AGGREGATIONS[self.algorithm.loss_agg].uses_norm_constant
        return float(self.rollout.max_response_tokens) if uses else None

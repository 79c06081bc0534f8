"""The RL loop: sample → score → log-probs → advantages → clipped update, for every algorithm.

One step (``Trainer.train_step``):
  1. the schedule's puzzles for this step (`logicrl.rl.schedule`), ``group_size`` responses each, sampled
     with a per-step seed (so a resumed run samples the same responses);
  2. the reward (`logicrl.reward.score`) on each decoded response;
  3. ℓ_old (skipped when the update is on-policy), ℓ_ref (when KL is used), critic values (PPO);
  4. advantages from the registry (`algorithm.advantage`), then `update_epochs` passes of clipped
     updates in mini/micro-batches (`logicrl.rl.update`).
Validation (greedy, held-out puzzles per number of people) runs before the first step, every
``val_every`` steps and at the end; checkpoints every ``save_every`` steps and at the end.

Curriculum stages: with ``algorithm.reference=stage_start`` the KL reference becomes the policy as it enters
each stage (with ``model.lora``, a frozen copy of the adapter: `logicrl.rl.policy.RunModels.move_reference`),
and with ``optim.stage_reset`` AdamW, the lr schedule, the KL controller and PPO's critic start afresh; both
together make a curriculum run the same algorithm as separate runs per stage (veRL's launcher).
``data.schedule=adaptive`` has no stages (both keys are refused with it): the schedule `observe`s each step's
accuracy to pick the next level, and its state travels in the checkpoint.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from logicrl.engine.decode import generate
from logicrl.errors import UserError
from logicrl.evaluate.scoring import generate_and_score, score_generation, stop_token_ids
from logicrl.prompts import encode_prompts
from logicrl.rl.batch import RolloutBatch
from logicrl.rl.checkpoints import (
    REFERENCE_FILE,
    apply_lr,
    check_resume_steps,
    load_state,
    restore_rng,
    save_checkpoint,
    weights_fingerprint,
)
from logicrl.rl.config import TrainConfig
from logicrl.rl.critic import ValueModel
from logicrl.rl.dynamic_sampling import Draw, fill_batch
from logicrl.rl.kl import AdaptiveKLController, FixedKLController
from logicrl.rl.loop import TrainingLoop
from logicrl.rl.metrics import rollout_metrics, validation_metrics
from logicrl.rl.policy import load_run_models
from logicrl.rl.run_log import open_run_log
from logicrl.rl.schedule import PromptSchedule, load_held_out, load_puzzles
from logicrl.rl.shaping import (
    check_line_credit,
    mask_truncated,
    overlong_penalty,
    token_texts,
    trace_answer_shaping,
    trace_check_shaping,
)
from logicrl.rl.update import (
    adamw,
    batch_logprobs,
    batch_values,
    compute_advantages,
    critic_step,
    lr_lambda,
    optimise,
    policy_step,
    reward_kl,
    sequence_mean,
)

ANSWER_STOP = "</answer>"


def step_seed(seed: int, step: int) -> int:
    return seed * 1_000_003 + step


def draw_seed(seed: int, step: int, draw: int) -> int:
    """The sampling seed of dynamic sampling's ``draw``-th round at ``step`` (draw 0: the step's own seed)."""
    if draw == 0:
        return step_seed(seed, step)
    return int(hashlib.sha256(f"{seed}:{step}:{draw}".encode()).hexdigest()[:15], 16)


class Trainer(TrainingLoop):
    """Builds models, data, optimizers and logs from a `TrainConfig`; `fit()` runs the loop."""

    command = "train"
    validate_first = True
    config: TrainConfig

    def _build(self, checkpoint: Path | None) -> None:
        """Device, models, data, optimizers (restored from ``checkpoint`` when resuming) and the run log."""
        self._setup_device()
        self._load_models(checkpoint)
        self._load_data()
        self._build_optimizers(self.start_step)
        if checkpoint is not None:
            self._restore(checkpoint)
        self.log = open_run_log(self.run_dir, self.start_step - 1)

    # ------------------------------------------------------------------ setup

    def _load_models(self, checkpoint: Path | None) -> None:
        self.models, self.critic = load_run_models(self.config, self.device, self.compute_dtype, checkpoint)
        self.policy, self.tokenizer, self.ref = self.models.policy, self.models.tokenizer, self.models.ref
        self._fingerprint_reference()
        self.stop_ids = stop_token_ids(self.tokenizer)

    def _load_data(self) -> None:
        cfg = self.config
        records = load_puzzles(cfg.data.train, "train", cfg.data.people)
        self.schedule = PromptSchedule.build(
            records, schedule=cfg.data.schedule, batch_size=cfg.rollout.prompts_per_step, epochs=cfg.data.epochs,
            seed=cfg.seed, steps=cfg.steps, adaptive=cfg.data.adaptive.model_dump())
        self.val_records = []
        if cfg.val_every and cfg.data.val_puzzles_per_people:
            self.val_records = load_held_out(cfg.data.train, cfg.data.val, cfg.data.people,
                                             cfg.data.val_puzzles_per_people)

    def _build_optimizers(self, step: int) -> None:
        """AdamW, the lr schedule (over the run, or with ``optim.stage_reset`` over the stage of ``step``),
        the critic's optimizer and the KL controller, all in their initial state."""
        cfg, optim = self.config, self.config.optim
        self.optimizer = adamw((p for p in self.policy.parameters() if p.requires_grad), lr=optim.lr, betas=optim.betas,
                               eps=optim.eps, weight_decay=optim.weight_decay)
        batch = cfg.rollout.prompts_per_step * cfg.rollout.group_size
        per_step = cfg.algorithm.update_epochs * (batch // (cfg.algorithm.mini_batch_size or batch))
        first, last = self.schedule.stage_span(step) if optim.stage_reset else (1, len(self.schedule))
        total = per_step * (last - first + 1)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(optim.schedule, optim.warmup_steps, total,
                                      [per_step * (m - first + 1) for m in optim.milestones], optim.gamma))
        self.critic_optimizer = None
        if self.critic is not None:
            self.critic_optimizer = adamw(self.critic.parameters(), lr=optim.critic_lr, betas=optim.betas,
                                          eps=optim.eps, weight_decay=optim.weight_decay)
        algo = cfg.algorithm
        self.kl_controller = (AdaptiveKLController(algo.kl_coef, algo.kl_target, algo.kl_horizon)
                              if algo.kl_target is not None else FixedKLController(algo.kl_coef))

    def _enter_stage(self, step: int) -> None:
        """The first step of a curriculum stage after the first: move the reference and/or reset (see above)."""
        cfg = self.config
        if cfg.algorithm.reference == "stage_start":
            self.models.move_reference()  # LoRA: a frozen copy of the adapter becomes the reference
            self._fingerprint_reference()
        if cfg.optim.stage_reset:
            if self.critic is not None:
                self.critic = ValueModel(self.policy).to(self.device)  # as veRL: from the stage's starting actor
            self._build_optimizers(step)

    def _reference_moved(self, step: int) -> bool:
        """The reference is not the initial model at ``step``: a checkpoint must carry its weights (LoRA: the
        reference adapter's)."""
        return (self.models.uses_reference and self.config.algorithm.reference == "stage_start"
                and self.schedule.stage_span(step)[0] > 1)

    def _fingerprint_reference(self) -> None:
        """What a resume checks the full reference copy against (LoRA: the base is not fingerprinted)."""
        self.ref_fingerprint = weights_fingerprint(self.ref) if self.ref is not None else None

    def _restore(self, checkpoint: Path) -> None:
        state = load_state(checkpoint)
        if (checkpoint / REFERENCE_FILE).is_file() and self.models.uses_reference:
            self.models.load_reference(checkpoint / REFERENCE_FILE, self.device)
            self._fingerprint_reference()
        check_resume_steps(checkpoint, self.start_step - 1, len(self.schedule))
        pool = state.get("data_pool")  # none in checkpoints made before it was recorded
        if state["data_fingerprint"] != self.schedule_fingerprint(self.start_step - 1) or \
                pool not in (None, self.schedule.pool_fingerprint()):
            raise UserError(
                f"{checkpoint}: the training data or its order changed since this checkpoint; resume with the "
                "same data, data.* keys, rollout.prompts_per_step and seed")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        saved = state["scheduler"]["_last_lr"][0] / state["scheduler"]["base_lrs"][0]  # the factor it was at
        apply_lr(self.optimizer, self.scheduler, self.config.optim.lr)
        now = self.scheduler.lr_lambdas[0](self.scheduler.last_epoch)
        if not math.isclose(saved, now, rel_tol=1e-6, abs_tol=1e-12):  # steps changed: the curve is laid anew
            warnings.warn(
                f"the {self.config.optim.schedule} lr schedule now spans {len(self.schedule)} steps: at step "
                f"{self.start_step - 1} it stands at {now:.3g} × optim.lr, where the run had it at {saved:.3g}, and it "
                "goes on along the new curve", stacklevel=2)
        if state.get("reference") != self.ref_fingerprint:
            raise UserError(
                f"{checkpoint}: the KL reference model ({self.config.model.name}) is not the one this run started "
                "with; resume with the same model.name")
        if self.device.type == "cpu" and int(state.get("threads", 0)) != torch.get_num_threads():
            warnings.warn(
                f"resuming with {torch.get_num_threads()} threads where the run used {state.get('threads')}: float "
                "sums change, so the run will not repeat an uninterrupted one bit for bit (set threads=N)",
                stacklevel=2)
        self.kl_controller.coef = float(state["kl_coef"])
        self.schedule.load_state_dict(state.get("schedule", {}))  # adaptive: level, window, cursors
        if self.critic is not None:
            self.critic.load(checkpoint)
            self.critic_optimizer.load_state_dict(state["critic_optimizer"])
            for group in self.critic_optimizer.param_groups:
                group["lr"] = self.config.optim.critic_lr
        restore_rng(state["rng"])

    def schedule_fingerprint(self, steps: int) -> str:
        """The order of the first ``steps`` steps (static schedules), or the adaptive schedule's puzzle pool."""
        return self.schedule.fingerprint(steps)

    # ------------------------------------------------------------------ the step

    def progress_label(self) -> str:
        return "RL"

    def progress_postfix(self, metrics: dict[str, float]) -> dict[str, str]:
        return {"reward": f"{metrics['reward/mean']:.2f}", "acc": f"{metrics['acc']:.2f}",
                "fmt": f"{metrics['format_ok']:.2f}", "len": f"{metrics['length/mean']:.0f}",
                "s": f"{metrics['time/step']:.0f}"}

    def train_step(self, step: int) -> dict[str, float]:
        cfg = self.config
        timer = time.perf_counter()
        if step > 1 and step in self.schedule.stage_starts:
            self._enter_stage(step)  # with optim.stage_reset, a fresh KL controller
        kl_coef = self.kl_controller.coef  # the β of this step's loss (an adaptive controller moves it after)
        self.policy.eval()
        times = {"time/generate": 0.0, "time/score": 0.0}
        rollout = cfg.rollout
        seen: list[dict[str, Any]] = []  # every response sampled this step (dynamic sampling: all draws)
        records_by_id: dict[str, dict[str, Any]] = {}

        def draw(k: int) -> Draw:
            records = (self.schedule.batch(step - 1) if k == 0 else
                       self.schedule.extra_batch(step, k, rollout.prompts_per_step, cfg.seed))
            records_by_id.update((r["id"], r) for r in records)
            sampled = self._sample(records, draw_seed(cfg.seed, step, k), times)
            for row in sampled.rows:  # dynamic sampling may draw a puzzle twice in a step: (id, draw, sample)
                row["draw"] = k
            seen.extend(sampled.rows)
            return sampled

        sampling: dict[str, float] = {}
        if rollout.dynamic_sampling:
            drawn, sampling = fill_batch(draw, groups=rollout.prompts_per_step, group_size=rollout.group_size,
                                         max_draws=rollout.max_draws, pad_token_id=self.tokenizer.pad_token_id)
        else:
            drawn = draw(0)
        scores, shaping = self._shaped_scores(drawn)
        batch = RolloutBatch.from_generation(drawn.generation, scores, rollout.group_size)
        credit, credit_metrics = self._check_credit(drawn, records_by_id)
        lr = self.scheduler.get_last_lr()[0]  # the step's (first) update's lr
        stats = self._update(batch, step, times, credit)
        times["time/update"] = time.perf_counter() - timer - sum(times.values())
        times["time/step"] = time.perf_counter() - timer
        tokens = float(drawn.generation.response_mask.sum())
        metrics = {**rollout_metrics(drawn.rows), **sampling, **shaping, **credit_metrics, **stats,
                   "lr": lr,
                   "kl_coef": kl_coef, "tokens_per_s": tokens / times["time/step"], **times,
                   **self.schedule.observe(sum(bool(r["solved"]) for r in seen), len(seen))}  # adaptive: level
        self.log.metrics("train", step, metrics)
        if cfg.log_rollouts:
            self.log.samples("rollouts", step, drawn.rows)
        return metrics

    def _sample(self, records: list[dict[str, Any]], seed: int, times: dict[str, float]) -> Draw:
        """``group_size`` responses to each of ``records``, scored; adds to ``time/generate`` and ``time/score``."""
        cfg = self.config
        timer = time.perf_counter()
        with self.autocast():
            generation = generate(
                self.models.sampler(), encode_prompts(records, self.tokenizer, cfg.prompt), n=cfg.rollout.group_size,
                max_new_tokens=cfg.rollout.max_response_tokens, temperature=cfg.rollout.temperature,
                top_p=cfg.rollout.top_p, pad_token_id=self.tokenizer.pad_token_id, stop_token_ids=self.stop_ids,
                stop_texts=(ANSWER_STOP,) if cfg.rollout.stop_at_answer else (), tokenizer=self.tokenizer,
                seed=seed)
        times["time/generate"] += time.perf_counter() - timer
        timer = time.perf_counter()
        rows, breakdowns = score_generation(records, generation, self.tokenizer, n=cfg.rollout.group_size,
                                            prompt=cfg.prompt, reward=cfg.reward)
        scores = torch.tensor([b.total for b in breakdowns], dtype=torch.float32)
        # per-response shaping, added before dynamic sampling judges the groups; each row keeps its share
        responses = [r["response"] for r in rows]
        answered = [r for r in records for _ in range(cfg.rollout.group_size)]  # the record of each row
        shapings = []
        if weight := cfg.algorithm.trace_check_weight:
            shapings.append(("trace_shaping", trace_check_shaping(responses, answered, weight)))
        if weight := cfg.algorithm.trace_answer_weight:
            answers = [r["assignment"] for r in rows]
            shapings.append(("trace_answer_shaping", trace_answer_shaping(responses, answers, answered, weight)))
        for key, shaping in shapings:
            for row, value in zip(rows, shaping.tolist()):
                row[key] = value
            scores = scores + shaping
        times["time/score"] += time.perf_counter() - timer
        return Draw(generation, rows, scores)

    def _shaped_scores(self, drawn: Draw) -> tuple[torch.Tensor, dict[str, float]]:
        """The scores the advantages see: the reward (plus trace and answer shaping, added when sampled), plus
        DAPO's overlong punishment when configured."""
        algo = self.config.algorithm
        metrics = {f"reward/{name}": sum(r[key] for r in drawn.rows) / len(drawn.rows)
                   for name, key, on in (("trace_checks", "trace_shaping", algo.trace_check_weight),
                                         ("trace_answer", "trace_answer_shaping", algo.trace_answer_weight)) if on}
        if algo.overlong_buffer is None:
            return drawn.scores, metrics
        penalty = overlong_penalty(drawn.generation.response_lengths, self.config.rollout.max_response_tokens,
                                   algo.overlong_buffer, algo.overlong_penalty)
        return drawn.scores + penalty, {**metrics, "reward/overlong": float(penalty.mean())}

    def _check_credit(self, drawn: Draw, records: dict[str, dict[str, Any]]) -> tuple[torch.Tensor | None,
                                                                                      dict[str, float]]:
        """The per-token check-line credit of ``algorithm.check_line_credit`` (None when off), read from the
        tokens' own decoded text, and the share of right check lines."""
        weight = self.config.algorithm.check_line_credit
        if not weight:
            return None, {}
        ids, lengths = drawn.generation.response_ids, drawn.generation.response_lengths.tolist()
        pieces = [token_texts(self.tokenizer.decode, row[:n].tolist()) for row, n in zip(ids, lengths)]
        credit, shares = check_line_credit(pieces, [records[r["id"]] for r in drawn.rows], weight, ids.shape[1])
        return credit, {"reward/check_lines_right": sum(shares) / len(shares)}

    def _update(self, batch: RolloutBatch, step: int, times: dict[str, float],
                credit: torch.Tensor | None = None) -> dict[str, float]:
        cfg, algo = self.config, self.config.algorithm
        timer = time.perf_counter()
        micro, temperature = {"micro_batch_size": algo.micro_batch_size,
                              "micro_batch_tokens": algo.micro_batch_tokens}, cfg.rollout.temperature
        chunk = {"logprob_chunk": algo.logprob_chunk, "prompts_once": algo.prompts_once}
        on_policy = algo.update_epochs == 1 and algo.mini_batch_size in (None, len(batch)) \
            and algo.kl_placement != "reward"
        if not on_policy:
            batch.old_logp = batch_logprobs(self.policy, batch, **micro, **chunk, temperature=temperature,
                                            autocast=self.autocast)
        if self.models.uses_reference:
            reference, context = self.models.reference()
            with context:
                batch.ref_logp = batch_logprobs(reference, batch, **micro, **chunk, temperature=temperature,
                                                autocast=self.autocast)
        if self.critic is not None:
            batch.values = batch_values(self.critic, batch, **micro, autocast=self.autocast)
        times["time/logprobs"] = time.perf_counter() - timer
        compute_advantages(batch, algo, self.kl_controller.coef, credit)
        in_reward = reward_kl(batch, algo)  # the rollout's KL(old, ref), before any update (kl_placement=reward)
        if algo.mask_truncated:  # after the advantages: truncated responses keep their place in the baselines
            batch.mask = mask_truncated(batch.mask, batch.truncated)
        norm = cfg.loss_norm_constant()

        def one_step(mini: RolloutBatch, _: RolloutBatch) -> dict[str, Any]:
            out = policy_step(self.policy, self.optimizer, self.scheduler, mini, algo, kl_coef=self.kl_controller.coef,
                              temperature=temperature, norm_constant=norm, grad_clip=cfg.optim.grad_clip,
                              on_policy=on_policy, autocast=self.autocast)
            if self.critic is not None:
                out.update(critic_step(self.critic, self.critic_optimizer, mini, algo, grad_clip=cfg.optim.grad_clip,
                                       norm_constant=norm, autocast=self.autocast))
            return out

        for model in (self.policy, self.critic):  # train mode: gradient checkpointing applies (and dropout)
            if model is not None:
                model.train()
        stats = optimise(batch, algo, seed=step_seed(cfg.seed, step), step_fn=one_step)
        for model in (self.policy, self.critic):
            if model is not None:
                model.eval()
        if in_reward is not None:  # as veRL: the KL the rewards carried, each response weighing the same
            stats["kl_rollout"] = sequence_mean(in_reward, batch.mask)
        if "kl" in stats:  # kl_placement=loss: the KL of the policy during its update (veRL has no adaptive β there)
            self.kl_controller.update(stats.get("kl_rollout", stats["kl"]), len(batch))
        return stats

    def validate(self, step: int) -> dict[str, float]:
        """Greedy responses to the held-out puzzles; logs ``val/*`` metrics and the samples."""
        cfg = self.config
        self.policy.eval()
        with self.autocast(), tqdm(total=len(self.val_records), desc="validate", unit="pz", leave=False,
                                   disable=not self.show_progress) as bar:
            rows = generate_and_score(
                self.models.sampler(), self.tokenizer, self.val_records, prompt=cfg.prompt, reward=cfg.reward,
                max_new_tokens=cfg.rollout.val_max_response_tokens or cfg.rollout.max_response_tokens,
                batch_size=max(cfg.algorithm.micro_batch_size, 8), progress=bar.update,
                stop_texts=(ANSWER_STOP,) if cfg.rollout.stop_at_answer else ())
        metrics = validation_metrics(rows)
        self.log.metrics("val", step, metrics)
        self.log.samples("val", step, rows)
        return metrics

    def save(self, step: int) -> Path:
        state = {
            "step": step, "data_fingerprint": self.schedule_fingerprint(step),
            "data_pool": self.schedule.pool_fingerprint(), "kl_coef": self.kl_controller.coef,
            "reference": self.ref_fingerprint, "threads": torch.get_num_threads(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "schedule": self.schedule.state_dict(),
        }
        if self.critic_optimizer is not None:
            state["critic_optimizer"] = self.critic_optimizer.state_dict()

        def extra(directory: Path) -> None:
            if self.critic is not None:
                self.critic.save(directory)
            if self._reference_moved(step):  # a resume loads it instead of the initial model
                self.models.save_reference(directory / REFERENCE_FILE)

        return save_checkpoint(self.run_dir, step, self.policy, self.tokenizer, state,
                               keep_last=self.config.keep_last, extra=extra)

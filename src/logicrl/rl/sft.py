"""Supervised fine-tuning on puzzle records: the cold start (template reasoning) and the RFT baseline.

Targets (``mode``):
* ``template``: the record's template reasoning in the think/answer format (`logicrl.prompts.response_target`);
* ``rft`` (rejection-sampling fine-tuning, the paper's SFT baseline): ``rft_samples`` responses per puzzle
  are sampled from the starting model; the solved ones (format and answer right, duplicates dropped) are
  the targets.
The prompt is the RL prompt (chat template + ``<think>`` pre-fill), the target ends with the end-of-turn
token, and the loss is the mean negative log-likelihood over target tokens only:

    L = −Σ_{i,t} m_it·log π(y_it | x_i, y_i<t) / Σ_{i,t} m_it

Checkpoints, metrics and resume work as in ``logicrl train`` (`logicrl.rl.checkpoints`, `logicrl.rl.run_log`).
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator
from tqdm import tqdm

from logicrl.config import StrictModel
from logicrl.engine.compat import enable_activation_checkpointing
from logicrl.engine.logprobs import response_logprobs
from logicrl.engine.sequences import left_pad
from logicrl.errors import DataError, UserError
from logicrl.evaluate.scoring import generate_and_score
from logicrl.io import read_jsonl, write_jsonl
from logicrl.models import load_model_and_tokenizer, sparse_tied_embedding_grad
from logicrl.prompts import PromptConfig, encode_prompts, end_of_turn_id, response_target
from logicrl.reward.score import RewardConfig
from logicrl.rl.batch import RolloutBatch, longest_first, micro_batches, share
from logicrl.rl.checkpoints import apply_lr, load_state, restore_rng, save_checkpoint
from logicrl.rl.config import DataConfig, ModelConfig
from logicrl.rl.loop import TrainingLoop
from logicrl.rl.metrics import validation_metrics
from logicrl.rl.packing import packed_nll_step
from logicrl.rl.run_log import open_run_log
from logicrl.rl.schedule import PromptSchedule, load_held_out, load_puzzles
from logicrl.rl.update import adamw, lr_lambda

RFT_FILE = "rft_samples.jsonl"


class SFTConfig(StrictModel):
    """A fine-tuning run. ``out_dir`` gets config.yaml, metrics.jsonl, tb/, val/, checkpoints/."""

    # Keys that `logicrl sft --resume RUN key=value` may change (recorded in RUN/resumes.jsonl).
    resumable: ClassVar[tuple[str, ...]] = ("lr", "grad_clip", "save_every", "keep_last", "val_every", "threads",
                                            "packing", "packing_length", "length_bucketing",
                                            "logprob_chunk")  # same loss: layout only

    model: ModelConfig = ModelConfig()
    prompt: PromptConfig = PromptConfig()
    data: DataConfig = DataConfig()
    reward: RewardConfig = RewardConfig()
    mode: Literal["template", "rft"] = Field("template", description="Targets: template reasoning, or RFT samples.")
    trace: Literal["search", "cases"] = Field(
        "search", description="Template targets: the solver's search (the public K&K's), or checking cases in turn.")
    rft_samples: int = Field(8, ge=1, description="RFT: responses sampled per puzzle.")
    rft_temperature: float = Field(1.0, gt=0.0, description="RFT: sampling temperature.")
    batch_size: int = Field(8, ge=1, description="Examples per optimizer step.")
    micro_batch_size: int = Field(8, ge=1, description="Examples per forward/backward (with packing: packed rows).")
    length_bucketing: bool = Field(True, description=(
        "Without packing: cut each optimizer batch into micro-batches longest example first, so that examples of "
        "like length share a micro-batch and its padding; the loss is the same token mean (false: in batch order)."))
    logprob_chunk: int | None = Field(512, ge=1, description=(
        "The vocabulary projection and log-softmax over this many target tokens at a time (packed or not), "
        "from the final hidden states, padding skipped (the chunk's logits recomputed in backward, as "
        "algorithm.logprob_chunk in RL); null: full logits of each micro-batch at once."))
    packing: bool = Field(False, description=(
        "Pack several examples into each row (as TRL's SFTConfig.packing, but no example is split): each keeps "
        "its own position ids and attends only to itself (a block-diagonal causal mask), so the loss is the "
        "padded one, without the compute on padding (`logicrl.rl.packing`). Needs sdpa or eager attention."))
    packing_length: int = Field(1024, ge=1, description=(
        "Packing: row width in tokens, prompt + target (TRL's max_length, same default); a longer example gets a "
        "row of its own. Memory per forward: micro_batch_size rows of this width."))
    lr: float = Field(5e-5, gt=0.0, description="Peak learning rate.")
    schedule: Literal["constant", "cosine", "linear"] = Field("cosine", description="Decay after warm-up.")
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps.")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    grad_clip: float = Field(1.0, gt=0.0, description="Global gradient-norm clip.")
    max_response_tokens: int = Field(512, ge=1, description="Longest target (see long_targets); also the validation cap.")
    long_targets: Literal["drop", "truncate"] = Field(
        "drop", description="Training targets over max_response_tokens: drop the example, or cut it (no end token).")
    out_dir: Path = Field(Path("outputs/sft"), description="Run directory.")
    seed: int = Field(0, description="Seeds the example order.")
    save_every: int = Field(0, ge=0, description="Checkpoint every k steps (0: only at the end).")
    keep_last: int = Field(1, ge=1, description="Checkpoints kept.")
    val_every: int = Field(0, ge=0, description="Validate every k steps (0: only at the end).")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads on CPU (default: the free cores).")

    @model_validator(mode="after")
    def _check_model(self) -> SFTConfig:
        if self.model.lora is not None:
            raise ValueError("model.lora: `logicrl sft` trains every weight (LoRA is a `logicrl train` option); "
                             "drop model.lora")
        default = type(self.data)()
        ignored = [f"data.{key}" for key in ("schedule", "adaptive") if getattr(self.data, key) != getattr(default, key)]
        if ignored:  # SFT shuffles its examples once per epoch: it has no curriculum to order them by
            raise ValueError(f"{' and '.join(ignored)}: `logicrl sft` shuffles its examples once per epoch (the "
                             "order options are `logicrl train`'s); drop them")
        return self


def target_ids(responses: list[str], tokenizer, template: str = "chat") -> list[list[int]]:
    """Tokenized targets, each ending with the ``template``'s end token, `end_of_turn_id` (not cut: see
    `fit_examples`)."""
    if not responses:
        return []  # a fast tokenizer fails on an empty batch
    end = end_of_turn_id(tokenizer, template)
    ids = tokenizer(responses, add_special_tokens=False)["input_ids"]
    return [list(row) + [end] for row in ids]


def fit_examples(examples: list[tuple[list[int], list[int]]], max_tokens: int,
                 long_targets: str) -> tuple[list[tuple[list[int], list[int]]], int]:
    """``(examples, number of targets longer than max_tokens)``. A long target is dropped (``"drop"``) or cut
    to ``max_tokens`` (``"truncate"``: it then lacks the end-of-turn token, so the model learns not to stop)."""
    long = sum(len(target) > max_tokens for _, target in examples)
    if long_targets == "drop":
        return [(p, t) for p, t in examples if len(t) <= max_tokens], long
    return [(p, t[:max_tokens]) for p, t in examples], long


def examples_digest(examples: list[tuple[list[int], list[int]]]) -> str:
    """A short hash of every example's prompt and target token ids, in order."""
    digest = hashlib.sha1()
    for prompt, target in examples:
        digest.update(json.dumps([prompt, target]).encode())
    return digest.hexdigest()[:16]


def example_batch(prompts: list[list[int]], targets: list[list[int]], pad_id: int) -> RolloutBatch:
    """Prompts left-padded, targets right-padded with their loss mask; scores/groups unused (zeros)."""
    prompt_ids, prompt_mask = left_pad(prompts, pad_id)
    width = max(len(t) for t in targets)
    response_ids = torch.full((len(targets), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(targets), width))
    for i, row in enumerate(targets):
        response_ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1.0
    zeros = torch.zeros(len(targets))
    return RolloutBatch(prompt_ids, prompt_mask, response_ids, mask, zeros, zeros.long())


def example_micro_batches(batch: RolloutBatch, size: int, length_bucketing: bool) -> list[torch.Tensor]:
    """Row indices of ``batch`` in micro-batches of at most ``size``: in batch order, or with ``length_bucketing``
    longest (prompt + target tokens) first."""
    order = (longest_first(batch.prompt_mask.sum(-1) + batch.mask.sum(-1)) if length_bucketing
             else torch.arange(len(batch)))
    return micro_batches(order, size)


def nll_step(model, batch: RolloutBatch, micro_batch_size: int, *, backward: bool = True,
             length_bucketing: bool = False, logprob_chunk: int | None = None) -> float:
    """The token-mean NLL of ``batch`` over micro-batches; with ``backward``, also accumulate its gradient.

    NLL = −Σ_rows Σ_t m_t log p(y_t) / Σ_rows Σ_t m_t, each micro-batch's own token mean weighted by its share of
    the tokens, so the split does not change it. ``length_bucketing``: micro-batches of the rows sorted by
    prompt + target length (`longest_first`) rather than in batch order, each trimmed to its own padding.
    ``logprob_chunk``: `response_logprobs`' (the log-probs from the hidden states, that many tokens at a time)."""
    device = next(model.parameters()).device
    total = 0.0
    for rows in example_micro_batches(batch, micro_batch_size, length_bucketing):
        micro = batch.select(rows)
        with torch.set_grad_enabled(backward):
            logp, _ = response_logprobs(model, *micro.model_inputs(device), micro.response_ids.to(device),
                                        logprob_chunk=logprob_chunk)
            mask = micro.mask.to(device)
            loss = -(logp * mask).sum() / mask.sum().clamp(min=1)
        weight = share(micro, batch, "token-mean")
        if backward:
            (loss * weight).backward()
        total += float(loss.detach()) * weight
    return total


class SFTTrainer(TrainingLoop):
    """Loads the model and examples, then `fit()` runs epochs of NLL steps with checkpoints."""

    command = "sft"
    config: SFTConfig

    def _build(self, checkpoint: Path | None) -> None:
        """Device, model, examples, optimizer and schedule (restored from ``checkpoint``) and the run log."""
        config = self.config
        self._setup_device()
        self.model, self.tokenizer = load_model_and_tokenizer(
            str(checkpoint or config.model.name), dtype="float32", device=str(self.device),
            trust_remote_code=config.model.trust_remote_code)
        if config.model.gradient_checkpointing:
            enable_activation_checkpointing(self.model)
        sparse_tied_embedding_grad(self.model)
        self._load_examples(resuming=checkpoint is not None)
        self.optimizer = adamw(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(config.schedule, config.warmup_steps, len(self.schedule)))
        if checkpoint is not None:
            state = load_state(checkpoint)
            recorded = state.get("data_fingerprint")  # none in checkpoints made before it was recorded
            if recorded is not None and recorded != self.data_fingerprint(self.start_step - 1):
                raise UserError(f"{checkpoint}: the training examples or their order changed since this "
                                "checkpoint; resume with the same data, data.* keys, prompt, trace, batch_size, "
                                "max_response_tokens and seed")
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            apply_lr(self.optimizer, self.scheduler, config.lr)
            restore_rng(state["rng"])
        self.log = open_run_log(self.run_dir, self.start_step - 1)

    def _load_examples(self, *, resuming: bool) -> None:
        cfg = self.config
        records = load_puzzles(cfg.data.train, "train", cfg.data.people)
        responses = [response_target(r, cfg.prompt, cfg.trace) for r in records]
        if cfg.mode == "rft":
            records, responses = self._rft_examples(records, resuming=resuming)
        self.examples, long = fit_examples(self._encode(records, responses), cfg.max_response_tokens, cfg.long_targets)
        if long:
            action = "dropped" if cfg.long_targets == "drop" else "cut (they lose their end-of-turn token)"
            warnings.warn(f"{long} of {len(records)} targets are longer than max_response_tokens="
                          f"{cfg.max_response_tokens} tokens and were {action}; raise max_response_tokens to keep "
                          "them whole", stacklevel=2)
        if not self.examples:
            raise DataError(f"every target is longer than max_response_tokens={cfg.max_response_tokens}; raise it")
        self.schedule = PromptSchedule.build(
            [{"id": i} for i in range(len(self.examples))], schedule="mixed", batch_size=cfg.batch_size,
            epochs=cfg.data.epochs, seed=cfg.seed, batch_key="batch_size")
        if left := len(self.examples) % cfg.batch_size:
            warnings.warn(f"{left} of {len(self.examples)} examples are left out of each epoch (its last partial "
                          f"batch; each epoch shuffles, so others each time): a batch_size that divides "
                          f"{len(self.examples)} trains on all of them", stacklevel=2)
        self.examples_digest = examples_digest(self.examples)
        self.val_records = load_held_out(cfg.data.train, cfg.data.val, cfg.data.people,
                                         cfg.data.val_puzzles_per_people) if cfg.data.val_puzzles_per_people else []
        self.val_examples, _ = fit_examples(  # the validation loss is measured on the first max tokens
            self._encode(self.val_records, [response_target(r, cfg.prompt, cfg.trace) for r in self.val_records]),
            cfg.max_response_tokens, "truncate")

    def data_fingerprint(self, steps: int) -> str:
        """The examples and the order of their first ``steps`` steps: a resume checks that they did not change."""
        return hashlib.sha1(f"{self.examples_digest}:{self.schedule.fingerprint(steps)}".encode()).hexdigest()[:16]

    def _encode(self, records: list[dict[str, Any]], responses: list[str]) -> list[tuple[list[int], list[int]]]:
        """(prompt ids, target ids) per example."""
        return list(zip(encode_prompts(records, self.tokenizer, self.config.prompt),
                        target_ids(responses, self.tokenizer, self.config.prompt.template)))

    def _batch(self, examples: list[tuple[list[int], list[int]]]) -> RolloutBatch:
        return example_batch([p for p, _ in examples], [t for _, t in examples], self.tokenizer.pad_token_id)

    def _nll(self, examples: list[tuple[list[int], list[int]]], *, backward: bool) -> float:
        """The token-mean NLL of ``examples`` (and its gradient with ``backward``), padded or packed."""
        cfg = self.config
        with self.autocast():
            if cfg.packing:
                return packed_nll_step(self.model, examples, cfg.micro_batch_size, self.tokenizer.pad_token_id,
                                       width=cfg.packing_length, backward=backward, logprob_chunk=cfg.logprob_chunk)
            return nll_step(self.model, self._batch(examples), cfg.micro_batch_size, backward=backward,
                            length_bucketing=cfg.length_bucketing, logprob_chunk=cfg.logprob_chunk)

    def _rft_examples(self, records: list[dict[str, Any]], *, resuming: bool
                      ) -> tuple[list[dict[str, Any]], list[str]]:
        """Solved samples of the starting model, one per distinct text. They are kept in RUN_DIR/rft_samples.jsonl
        for a resume from a checkpoint (whose model is no longer the starting one); a run from step 1 samples
        afresh, replacing any file an earlier start left."""
        cfg, path = self.config, self.run_dir / RFT_FILE
        if resuming:
            if not path.is_file():
                raise DataError(f"{path}: missing; it holds the examples this run trained on, which cannot be "
                                "sampled again from a checkpoint: start a new run")
            rows = [row for _, row in read_jsonl(path)]
        else:
            with self.autocast(), tqdm(total=len(records), desc="RFT sampling", unit="pz",
                                       disable=not self.show_progress) as bar:
                rows = generate_and_score(
                    self.model, self.tokenizer, records, prompt=cfg.prompt, reward=cfg.reward,
                    max_new_tokens=cfg.max_response_tokens, n=cfg.rft_samples, greedy=False,
                    temperature=cfg.rft_temperature, seed=cfg.seed, progress=bar.update)
            write_jsonl(path, rows)
        by_id = {r["id"]: r for r in records}
        if missing := sorted({row["id"] for row in rows} - set(by_id)):
            raise UserError(f"{path}: {len(missing)} sampled puzzle(s) are not among the training puzzles (e.g. "
                            f"{missing[0]}): the training data changed since; resume with the same data and data.* "
                            "keys")
        kept = {(row["id"], row["response"]) for row in rows if row["solved"]}
        if not kept:
            raise DataError(f"RFT: none of {len(rows)} samples solved its puzzle; start from a stronger model "
                            "(e.g. the cold-start checkpoint) or raise rft_samples")
        pairs = sorted(kept)
        return [by_id[i] for i, _ in pairs], [text for _, text in pairs]

    def progress_label(self) -> str:
        return f"SFT ({self.config.mode})"

    def progress_postfix(self, metrics: dict[str, float]) -> dict[str, str]:
        return {"loss": f"{metrics['loss']:.3f}", "s": f"{metrics['time/step']:.1f}"}

    def train_step(self, step: int) -> dict[str, float]:
        cfg = self.config
        timer = time.perf_counter()
        examples = [self.examples[int(r["id"])] for r in self.schedule.batch(step - 1)]
        self.model.train()
        loss = self._nll(examples, backward=True)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        lr = self.scheduler.get_last_lr()[0]  # this step's
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - timer
        metrics = {"loss": loss, "grad_norm": float(grad_norm), "lr": lr, "time/step": seconds,
                   "tokens_per_s": sum(len(t) for _, t in examples) / seconds}
        self.log.metrics("train", step, metrics)
        return metrics

    def validate(self, step: int) -> dict[str, float]:
        """Greedy accuracy/format on held-out puzzles and the NLL of their template targets (``val/loss``),
        logged as ``val/*``."""
        cfg = self.config
        self.model.eval()
        with self.autocast(), tqdm(total=len(self.val_records), desc="validate", unit="pz", leave=False,
                                   disable=not self.show_progress) as bar:
            rows = generate_and_score(self.model, self.tokenizer, self.val_records, prompt=cfg.prompt,
                                      reward=cfg.reward, max_new_tokens=cfg.max_response_tokens,
                                      batch_size=max(cfg.micro_batch_size, 8), progress=bar.update)
        metrics = validation_metrics(rows)
        metrics["val/loss"] = self._nll(self.val_examples, backward=False)
        self.log.metrics("val", step, metrics)
        self.log.samples("val", step, rows)
        return metrics

    def save(self, step: int) -> Path:
        state = {"step": step, "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "data_fingerprint": self.data_fingerprint(step)}
        return save_checkpoint(self.run_dir, step, self.model, self.tokenizer, state,
                               keep_last=self.config.keep_last)

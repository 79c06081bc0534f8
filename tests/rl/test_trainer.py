"""The RL loop end to end on the tiny model: run directory contract, checkpoints, exact resume, errors.

The tiny random model never earns a reward above −3, so most tests swap in a scorer that pays by a
checksum of the response text (`checksum_scores`): responses in a group then disagree, advantages are
non-zero and every update really moves the weights.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

import logicrl.rl.trainer as trainer_module
from logicrl.engine.logprobs import response_logprobs
from logicrl.errors import UserError
from logicrl.io import FolderLock
from logicrl.models import (
    ModelNotFoundError,
    load_model_and_tokenizer,
    resolve_model_path,
    save_pretrained_atomic,
)
from logicrl.models.lora import REFERENCE_ADAPTER, TRAINED_ADAPTER, adapter_state
from logicrl.models.tiny import build_tiny_tokenizer
from logicrl.prompts import PromptConfig, response_target
from logicrl.puzzles.dataset import DataConfig, generate
from logicrl.puzzles.files import write_dataset
from logicrl.puzzles.record import Puzzle
from logicrl.rl.checkpoints import list_checkpoints, load_state, restore_rng, resume_config, rng_states
from logicrl.rl.config import OptimConfig, TrainConfig
from logicrl.rl.run_log import RunLog, open_run_log, read_metrics
from logicrl.rl.schedule import load_puzzles
from logicrl.rl.sft import SFTConfig
from logicrl.rl.trainer import Trainer
from logicrl.rl.update import lr_lambda

real_score_generation = trainer_module.score_generation
VOLATILE = ("time", "tokens_per_s")


def checksum(text: str) -> float:
    return sum(map(ord, text)) % 7 - 3.0


def checksum_scores(records, generation, tokenizer, **kwargs):
    """The real rows, but reward = (Σ code points mod 7) − 3 of the response text."""
    rows, _ = real_score_generation(records, generation, tokenizer, **kwargs)
    for row in rows:
        row["reward"] = checksum(row["response"])
    return rows, [SimpleNamespace(total=row["reward"]) for row in rows]


def make_config(puzzle_dir, out_dir, **algorithm) -> TrainConfig:
    return TrainConfig.model_validate({
        "model": {"name": "tiny-random", "device": "cpu"},
        "data": {"train": str(puzzle_dir), "val_puzzles_per_people": 2},
        "rollout": {"prompts_per_step": 2, "group_size": 3, "max_response_tokens": 12, "temperature": 1.0},
        "algorithm": {"micro_batch_size": 4, **algorithm},
        "optim": {"lr": 1e-3},
        "out_dir": str(out_dir), "steps": 4, "save_every": 2, "val_every": 2, "keep_last": 2, "threads": 1,
    })


def stable(rows):
    return [{k: v for k, v in row.items() if not k.startswith(VOLATILE)} for row in rows]


def test_run_directory_contract(puzzle_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    monkeypatch.chdir(tmp_path)
    config = make_config(puzzle_dir, "run").model_copy(update={"steps": 2})  # out_dir relative to where it starts
    Trainer(config, show_progress=False).fit()
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())  # its checkpoint found from any directory
    assert (summary["finished"], summary["steps"], summary["checkpoint"]) == (True, 2, str(run / "checkpoints" /
                                                                                           "step_000002"))
    metrics = read_metrics(run)
    assert [(m["kind"], m["step"]) for m in metrics] == [("val", 0), ("train", 1), ("train", 2), ("val", 2)]
    train = metrics[1]
    for key in ("reward/mean", "reward/std", "acc", "format_ok", "answer/missing", "length/mean", "length/clipped",
                "kl", "entropy", "policy/clip_frac", "grad_norm", "lr", "tokens_per_s", "time/generate",
                "time/update"):
        assert key in train, key
    assert {"val/acc/2ppl", "val/acc/3ppl", "val/format_ok", "val/length"} <= set(metrics[0])
    rollouts = [json.loads(line) for line in (run / "rollouts" / "step_000001.jsonl").read_text().splitlines()]
    assert len(rollouts) == 6 and [r["sample"] for r in rollouts] == [0, 1, 2, 0, 1, 2]
    assert {"step", "id", "n_people", "response", "length", "reward", "solved", "format_ok"} <= set(rollouts[0])
    assert rollouts[0]["reward"] == checksum(rollouts[0]["response"])
    assert len((run / "val" / "step_000000.jsonl").read_text().splitlines()) == 4  # 2 per level, greedy
    (step, checkpoint), = list_checkpoints(run)
    assert step == 2
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    assert tokenizer.chat_template and model.config.model_type == "llama"
    assert (run / "config.yaml").is_file() and any((run / "tb").iterdir())


def crash_and_resume(config: TrainConfig, crash_at: int) -> Trainer:
    """Run ``config`` until a power cut at step ``crash_at``, resume it from its last checkpoint and finish it."""
    crashing = Trainer(config, show_progress=False)
    original = crashing.train_step

    def crash(step):
        if step == crash_at:
            raise RuntimeError("power cut")
        return original(step)

    crashing.train_step = crash
    with pytest.raises(RuntimeError, match="power cut"):
        crashing.fit()
    resumed = Trainer(resume_config(TrainConfig, config.out_dir), resume=True, show_progress=False)
    resumed.fit()
    return resumed


@pytest.mark.parametrize("algorithm", [
    {"advantage": "reinforce_pp"},
    {"advantage": "grpo", "mini_batch_size": 3, "update_epochs": 2},
    {"advantage": "gae", "kl_placement": "reward"},
    {"advantage": "reinforce_pp", "kl_coef": 0.1, "kl_target": 0.05, "kl_horizon": 60.0},
])
def test_resume_continues_exactly_like_an_uninterrupted_run(puzzle_dir, tmp_path, monkeypatch, algorithm):
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    straight = Trainer(make_config(puzzle_dir, tmp_path / "a", **algorithm), show_progress=False)
    straight.fit()

    resumed = crash_and_resume(make_config(puzzle_dir, tmp_path / "b", **algorithm), crash_at=3)
    assert resumed.start_step == 3

    assert stable(read_metrics(tmp_path / "a")) == stable(read_metrics(tmp_path / "b"))
    for a, b in zip(straight.policy.parameters(), resumed.policy.parameters()):
        assert torch.equal(a, b)
    for name in ("step_000003.jsonl", "step_000004.jsonl"):
        assert (tmp_path / "a" / "rollouts" / name).read_text() == (tmp_path / "b" / "rollouts" / name).read_text()
    if straight.critic is not None:
        for a, b in zip(straight.critic.parameters(), resumed.critic.parameters()):
            assert torch.equal(a, b)


def test_a_run_stopped_before_its_first_checkpoint_starts_over(puzzle_dir, tmp_path, monkeypatch, capsys):
    """Nothing to go on from (checkpoints every 2 steps, stopped in step 2): ``--resume`` starts the run over and
    a new run may replace it; either way nothing of the first start is left in the logs."""
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    Trainer(make_config(puzzle_dir, tmp_path / "a"), show_progress=False).fit()
    resumed = crash_and_resume(make_config(puzzle_dir, tmp_path / "b"), crash_at=2)
    assert resumed.start_step == 1 and "starts over from step 1" in capsys.readouterr().err
    assert stable(read_metrics(tmp_path / "a")) == stable(read_metrics(tmp_path / "b"))
    for folder in ("rollouts", "val"):
        assert sorted(p.name for p in (tmp_path / "b" / folder).iterdir()) == sorted(
            p.name for p in (tmp_path / "a" / folder).iterdir())
    assert len(list((tmp_path / "b" / "tb").iterdir())) == 1  # the first start's event file went with it

    config = make_config(puzzle_dir, tmp_path / "c")
    with pytest.raises(RuntimeError, match="power cut"):
        crashing = Trainer(config, show_progress=False)
        crashing.train_step = lambda step: (_ for _ in ()).throw(RuntimeError("power cut"))
        crashing.fit()
    Trainer(config.model_copy(update={"steps": 1, "val_every": 0}), show_progress=False).fit()
    assert [(m["kind"], m["step"]) for m in read_metrics(tmp_path / "c")] == [("train", 1)]
    assert yaml.safe_load((tmp_path / "c" / "config.yaml").read_text())["steps"] == 1


def test_a_resume_of_a_finished_run_keeps_its_final_validation(puzzle_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    config = make_config(puzzle_dir, tmp_path / "run").model_copy(update={"steps": 2})
    final = Trainer(config, show_progress=False).fit()
    assert "val/acc/2ppl" in final
    assert Trainer(resume_config(TrainConfig, config.out_dir), resume=True, show_progress=False).fit() == final
    assert json.loads((config.out_dir / "summary.json").read_text())["final"] == final


def test_updates_move_the_policy_and_keep_last_checkpoints(puzzle_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    config = make_config(puzzle_dir, tmp_path / "run").model_copy(update={"save_every": 1, "keep_last": 2})
    trainer = Trainer(config, show_progress=False)
    before = [p.detach().clone() for p in trainer.policy.parameters()]
    trainer.fit()
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.policy.parameters()))
    assert [step for step, _ in list_checkpoints(tmp_path / "run")] == [3, 4]
    assert all(m["grad_norm"] > 0 for m in read_metrics(tmp_path / "run", "train"))


@pytest.mark.parametrize("eps", [1e-8, 1e3])
def test_optim_eps_reaches_the_policy_optimizer_and_a_resume_cannot_change_it(puzzle_dir, tmp_path, monkeypatch, eps):
    """Step 1 of AdamW moves a coordinate by lr · |g| / (|g| + ε): ~lr at the default ε, far below lr at ε = 1e3."""
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    config = make_config(puzzle_dir, tmp_path / "run").model_copy(update={"steps": 1, "val_every": 0})
    config = config.model_copy(update={"optim": config.optim.model_copy(update={"eps": eps})})
    trainer = Trainer(config, show_progress=False)
    before = [p.detach().clone() for p in trainer.policy.parameters()]
    trainer.fit()
    moved = max((a - b).abs().max().item() for a, b in zip(before, trainer.policy.parameters()))
    assert moved == pytest.approx(config.optim.lr, rel=1e-3) if eps < 1 else 0 < moved < 1e-3 * config.optim.lr
    with pytest.raises(UserError, match="optim.eps"):
        resume_config(TrainConfig, tmp_path / "run", ["optim.eps=1e-6"])


def test_a_run_that_fails_to_start_leaves_no_config(puzzle_dir, tmp_path, monkeypatch):
    """config.yaml is written once the trainer is built: a launch that fails on the way (a model without a
    tokenizer, say) leaves nothing that looks like a started run, and the fixed command starts cleanly."""
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    config = make_config(puzzle_dir, tmp_path / "run").model_copy(update={"steps": 1, "val_every": 0})

    def fail(self):
        raise UserError("no tokenizer")

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_load_data", fail)
        with pytest.raises(UserError, match="no tokenizer"):
            Trainer(config, show_progress=False)
    assert not (config.out_dir / "config.yaml").exists()
    Trainer(config, show_progress=False).fit()
    assert yaml.safe_load((config.out_dir / "config.yaml").read_text())["steps"] == 1


def test_a_refused_resume_leaves_the_run_as_it_was(puzzle_dir, tmp_path, monkeypatch):
    """Accepted changes reach config.yaml and resumes.jsonl only once the checkpoint is restored: a resume that
    fails on the way (here, in `_restore`) changes nothing, and a plain --resume still works. A schedule that
    now ends before the checkpoint is named as such."""
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    config = make_config(puzzle_dir, tmp_path / "run").model_copy(update={"steps": 2, "val_every": 0})
    Trainer(config, show_progress=False).fit()
    stored = (config.out_dir / "config.yaml").read_bytes()
    with pytest.raises(UserError, match="the run has reached step 2, but it would now end at step 1"):
        Trainer(resume_config(TrainConfig, config.out_dir, ["steps=1"]), resume=True, show_progress=False)

    def refuse(self, checkpoint):
        raise UserError("refused")

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_restore", refuse)
        with pytest.raises(UserError, match="refused"):
            Trainer(resume_config(TrainConfig, config.out_dir, ["steps=3"]), resume=True, show_progress=False)
    assert (config.out_dir / "config.yaml").read_bytes() == stored
    assert not (config.out_dir / "resumes.jsonl").exists()
    resumed = Trainer(resume_config(TrainConfig, config.out_dir, ["steps=3"]), resume=True, show_progress=False)
    assert yaml.safe_load((config.out_dir / "config.yaml").read_text())["steps"] == 3
    resumed.run_lock.release()


def test_a_second_run_into_the_same_directory_is_refused(puzzle_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    config = make_config(puzzle_dir, tmp_path / "run").model_copy(update={"steps": 1, "val_every": 0})
    Trainer(config, show_progress=False).fit()
    with pytest.raises(UserError, match="already holds a `logicrl train` run.*--resume"):
        Trainer(config, show_progress=False)
    with pytest.raises(UserError, match="not a run directory"):
        resume_config(TrainConfig, tmp_path)
    with pytest.raises(UserError, match=r"is a `logicrl train` run: resume it with `logicrl train --resume"):
        resume_config(SFTConfig, config.out_dir)  # `logicrl sft --resume` on an RL run


def test_a_run_directory_in_use_by_another_process_is_refused_until_it_ends(puzzle_dir, tmp_path,
                                                                           monkeypatch):
    """A second launch (or a resume) while another process writes the run is refused in one line that names
    its pid, before anything is written; the lock dies with its process, however it ends (SIGKILL here), and a
    finished fit lets go of it."""
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    run = tmp_path / "run"
    hold = (f"import time; from pathlib import Path; from logicrl.io import FolderLock; "
            f"lock = FolderLock(Path({str(run)!r})); print('locked', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        config = make_config(puzzle_dir, run).model_copy(update={"steps": 1, "val_every": 0})
        message = f"{run} is in use by another logicrl process (pid {holder.pid}): wait for it to end"
        with pytest.raises(UserError, match=f"^{re.escape(message)}"):
            Trainer(config, show_progress=False)
        assert sorted(p.name for p in run.iterdir()) == [".lock"]  # no config.yaml, no log
    finally:
        holder.kill()
        holder.wait()
    trainer = Trainer(config, show_progress=False)  # the killed process's lock is gone
    trainer.fit()
    FolderLock(run).release()  # and the finished run let go of its own (the trainer still lives)


def test_a_trainer_that_fails_to_set_up_lets_go_of_its_run_directory(puzzle_dir, tmp_path):
    """In a notebook the failed trainer lives on in the kept traceback; its folder must not stay locked."""
    config = make_config(puzzle_dir, tmp_path / "run").model_copy(update={"steps": 1, "val_every": 0})
    config.model.name = str(tmp_path / "no-such-model")
    with pytest.raises(ModelNotFoundError) as first:
        Trainer(config, show_progress=False)
    with pytest.raises(ModelNotFoundError):  # the same error again, not "in use"
        Trainer(config, show_progress=False)
    assert "no-such-model" in str(first.value)  # `first` keeps the failed trainer's traceback alive
    held = FolderLock(tmp_path / "run")
    with pytest.raises(UserError, match="is held by another trainer or command in this process"):
        FolderLock(tmp_path / "run")
    held.release()


@pytest.mark.parametrize("schedule", ["mixed", "adaptive"])
def test_resume_refuses_training_data_that_changed_since_the_checkpoint(puzzle_dir, tmp_path, monkeypatch, schedule):
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    data = tmp_path / "data"
    shutil.copytree(puzzle_dir, data)
    config = make_config(data, tmp_path / "run").model_copy(update={"steps": 1, "val_every": 0})
    config = config.model_copy(update={"data": config.data.model_copy(update={"schedule": schedule})})
    Trainer(config, show_progress=False).fit()
    other = DataConfig(people=[2, 3], train=12, test=4, seed=1)  # same path and sizes, other puzzles
    write_dataset(data, other, generate(other))
    with pytest.raises(UserError, match="training data or its order changed since this checkpoint"):
        Trainer(config.model_copy(update={"steps": 2}), resume=True, show_progress=False)


def test_a_curriculum_resume_refuses_a_later_stage_whose_puzzles_changed(puzzle_dir, tmp_path, monkeypatch):
    """Only the steps trained were hashed: a curriculum's later stage does not show in them, so its puzzles could
    be replaced and the resume trained on others than the run began with. The whole pool is checked now; a
    longer run (``steps``) is still a resume."""
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    data = tmp_path / "data"
    shutil.copytree(puzzle_dir, data)
    config = make_config(data, tmp_path / "run").model_copy(update={"steps": 7, "val_every": 0, "save_every": 1})
    config = config.model_copy(update={"data": config.data.model_copy(update={"schedule": "curriculum",
                                                                             "val_puzzles_per_people": 0})})
    crashing = Trainer(config, show_progress=False)  # stage 1 (2 people) is steps 1-6: stopped at step 2
    original = crashing.train_step

    def crash(step):
        if step == 3:
            raise RuntimeError("power cut")
        return original(step)

    crashing.train_step = crash
    with pytest.raises(RuntimeError, match="power cut"):
        crashing.fit()
    longer = config.model_copy(update={"steps": 11})
    Trainer(longer, resume=True, show_progress=False)  # the same puzzles: a resume, also with more steps
    other = generate(DataConfig(people=[3], train=12, test=4, seed=1))[3]["train"]
    lines = (data / "3ppl" / "train.jsonl").read_text().splitlines()
    assert len(lines) == len(other) and all(json.loads(a)["id"] != b["id"] for a, b in zip(lines, other))
    (data / "3ppl" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in other))
    (data / "3ppl" / "train.parquet").unlink()
    with pytest.raises(UserError, match="training data or its order changed since this checkpoint"):
        Trainer(longer, resume=True, show_progress=False)


def test_adaptive_kl_coefficient_follows_the_measured_kl(puzzle_dir, tmp_path, monkeypatch):
    """β ← β·(1 + clip(KL/target − 1, ±0.2)·n/horizon) after each step of n = 6 responses, from the step's KL;
    a step logs the β its own loss used."""
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    config = make_config(puzzle_dir, tmp_path / "run", kl_coef=0.1, kl_target=0.005, kl_horizon=60.0)
    Trainer(config.model_copy(update={"steps": 3, "val_every": 0}), show_progress=False).fit()
    train = read_metrics(tmp_path / "run", "train")
    assert train[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # the policy starts as the reference
    assert train[0]["kl_coef"] == 0.1 and train[1]["kl_coef"] == pytest.approx(0.1 * (1 - 0.2 * 6 / 60))
    coef = 0.1
    for metrics in train:
        assert metrics["kl_coef"] == pytest.approx(coef)
        coef *= 1.0 + min(max(metrics["kl"] / 0.005 - 1.0, -0.2), 0.2) * 6 / 60.0


def test_adaptive_kl_in_the_reward_follows_the_rollouts_kl_as_verl(puzzle_dir, tmp_path, monkeypatch):
    """With kl_placement=reward the controller reads veRL's current_kl: the rollout's KL(old, ref) before the
    update, per response then over responses (logged as kl_rollout), not the KL during the update (kl)."""
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    config = make_config(puzzle_dir, tmp_path / "run", kl_coef=0.1, kl_target=0.005, kl_horizon=60.0,
                         kl_placement="reward", update_epochs=2)
    Trainer(config.model_copy(update={"steps": 3, "val_every": 0}), show_progress=False).fit()
    train = read_metrics(tmp_path / "run", "train")
    assert train[0]["kl_rollout"] == 0.0  # the first rollout's policy is the reference
    assert train[0]["kl"] > 0  # the second epoch's policy has moved: the old input was not 0
    coef = 0.1
    for metrics in train:
        assert metrics["kl_coef"] == pytest.approx(coef)
        coef *= 1.0 + min(max(metrics["kl_rollout"] / 0.005 - 1.0, -0.2), 0.2) * 6 / 60.0
    assert train[1]["kl_coef"] == pytest.approx(0.1 * (1 - 0.2 * 6 / 60))


SCRIPT = " so</think><answer>(1) Zoey is a knight</answer> then"


def scripted_model(path: Path, text: str) -> Path:
    """A Llama with the tiny tokenizer that, after the ``<think>`` pre-fill, writes ``text`` whatever the
    puzzle: attention and MLP outputs are zero, so the last hidden state is the current token's embedding, and
    the output row of each token of ``text`` is the (normalised) embedding of the token before it."""
    tokenizer = build_tiny_tokenizer()
    chain = [tokenizer.convert_tokens_to_ids("<think>"),
             *tokenizer(text, add_special_tokens=False)["input_ids"]]
    assert len(set(chain)) == len(chain), "each token of the script needs one successor"
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                         tie_word_embeddings=False, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.lm_head.weight.zero_()
        for token, successor in itertools.pairwise(chain):
            embedding = model.model.embed_tokens.weight[token]
            model.lm_head.weight[successor] = embedding / embedding.pow(2).mean().sqrt()
    return save_pretrained_atomic(model, tokenizer, path)


@pytest.mark.parametrize("stop", [False, True])
def test_stop_at_answer_ends_rollouts_and_validation_at_the_answer(puzzle_dir, tmp_path, stop):
    model = scripted_model(tmp_path / "scripted", SCRIPT)
    config = make_config(puzzle_dir, tmp_path / "run")
    config = config.model_copy(update={
        "steps": 1, "model": config.model.model_copy(update={"name": str(model)}),
        "rollout": config.rollout.model_copy(update={"stop_at_answer": stop, "max_response_tokens": 16})})
    Trainer(config, show_progress=False).fit()
    answered = SCRIPT[:SCRIPT.index("</answer>") + len("</answer>")]
    for name in ("rollouts", "val"):
        step = 1 if name == "rollouts" else 0
        lines = (tmp_path / "run" / name / f"step_{step:06d}.jsonl").read_text().splitlines()
        rows = [json.loads(x) for x in lines]
        responses = {row["response"] for row in rows}
        if stop:
            assert responses == {answered}, responses
        else:  # the script goes on after the answer, up to the length cap
            assert all(r.startswith(SCRIPT) and len(r) > len(SCRIPT) for r in responses), responses


def test_lr_schedules():
    assert [lr_lambda("constant", 2, 10)(s) for s in (0, 1, 2, 9)] == [0.5, 1.0, 1.0, 1.0]
    assert lr_lambda("linear", 0, 10)(5) == pytest.approx(0.5)
    assert lr_lambda("cosine", 0, 10)(5) == pytest.approx(0.5)
    assert lr_lambda("cosine", 0, 10)(10) == pytest.approx(0.0)
    assert [lr_lambda("multistep", 1, 10, [3, 6], 0.5)(s) for s in (0, 1, 2, 3, 5, 6, 9)] == [
        1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_multistep_lr_in_a_run(puzzle_dir, tmp_path, monkeypatch):
    """milestones=[2], gamma 0.5: steps 1-2 update at lr, steps 3-4 at lr / 2 (the logged lr is the step's)."""
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    config = make_config(puzzle_dir, tmp_path / "run")
    config = config.model_copy(update={"optim": config.optim.model_copy(
        update={"schedule": "multistep", "milestones": [2], "gamma": 0.5})})
    Trainer(config, show_progress=False).fit()
    lrs = [m["lr"] for m in read_metrics(tmp_path / "run") if m["kind"] == "train"]
    assert lrs == [1e-3, 1e-3, 5e-4, 5e-4]


@pytest.mark.parametrize("optim, message", [
    ({"schedule": "multistep"}, "needs them"),
    ({"milestones": [3]}, "go with optim.schedule=multistep"),
    ({"schedule": "multistep", "milestones": [5, 3]}, "increasing"),
    ({"schedule": "multistep", "milestones": [0]}, "≥ 1"),
])
def test_multistep_needs_milestones(optim, message):
    with pytest.raises(ValueError, match=message):
        OptimConfig.model_validate(optim)


def curriculum_config(puzzle_dir, out_dir, **optim) -> TrainConfig:
    """2 then 3 people, 4 puzzles a step: stage 2 starts at step 4 of 6."""
    config = make_config(puzzle_dir, out_dir, reference="stage_start", kl_coef=0.1)
    return config.model_copy(update={
        "data": config.data.model_copy(update={"schedule": "curriculum"}),
        "rollout": config.rollout.model_copy(update={"prompts_per_step": 4, "group_size": 2}),
        "optim": config.optim.model_copy(update={"schedule": "cosine", "stage_reset": True, **optim}),
        "steps": 6})


def test_stage_start_reference_and_stage_reset(puzzle_dir, tmp_path, monkeypatch):
    """Entering stage 2 the reference becomes the policy as it is then, and AdamW, the cosine schedule and the
    KL controller start afresh; with the defaults the reference stays the initial model and AdamW runs on."""
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    trainer = Trainer(curriculum_config(puzzle_dir, tmp_path / "a"), show_progress=False)
    assert trainer.schedule.stage_starts == (1, 4)
    initial = {k: v.clone() for k, v in trainer.ref.state_dict().items()}
    entered = {}
    original = trainer._enter_stage

    def snapshot(step):
        entered[step] = {k: v.clone() for k, v in trainer.policy.state_dict().items()}
        original(step)

    trainer._enter_stage = snapshot
    trainer.fit()
    assert list(entered) == [4]
    assert all(torch.equal(v, entered[4][k]) for k, v in trainer.ref.state_dict().items())
    assert not all(torch.equal(v, initial[k]) for k, v in trainer.ref.state_dict().items())
    adam_steps = {int(s["step"]) for s in trainer.optimizer.state.values()}
    assert adam_steps == {3}  # steps 4, 5, 6 since the reset
    lrs = {m["step"]: m["lr"] for m in read_metrics(tmp_path / "a") if m["kind"] == "train"}
    assert lrs[4] == lrs[1] and lrs[6] == lrs[3]  # the cosine restarts with the stage

    default = make_config(puzzle_dir, tmp_path / "b", kl_coef=0.1)
    default = default.model_copy(update={"data": default.data.model_copy(update={"schedule": "curriculum"}),
                                         "rollout": default.rollout.model_copy(update={"prompts_per_step": 4,
                                                                                       "group_size": 2}),
                                         "steps": 6})
    plain = Trainer(default, show_progress=False)
    plain.fit()
    assert all(torch.equal(v, initial[k]) for k, v in plain.ref.state_dict().items())
    assert {int(s["step"]) for s in plain.optimizer.state.values()} == {6}


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_extending_a_run_says_when_its_lr_schedule_is_laid_anew(puzzle_dir, tmp_path, monkeypatch, schedule):
    """A finished 2-step cosine run resumed with steps=4: the cosine is recomputed over 4 steps, so the lr climbs
    back from ≈ 0 (a warning says so, with both factors); a constant schedule, or the same steps, says nothing."""
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    cfg = make_config(puzzle_dir, tmp_path / "a").model_copy(update={"steps": 2, "val_every": 0})
    cfg = cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"schedule": schedule})})
    Trainer(cfg, show_progress=False).fit()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trainer(cfg, resume=True, show_progress=False)
        Trainer(cfg.model_copy(update={"steps": 4}), resume=True, show_progress=False)
    said = [str(w.message) for w in caught if "lr schedule" in str(w.message)]
    if schedule == "constant":
        assert said == []
    else:
        expected = ("the cosine lr schedule now spans 4 steps: at step 2 it stands at 0.5 × optim.lr, where the run "
                    "had it at 0, and it goes on along the new curve")
        assert said == [expected]


def test_the_logged_kl_coef_restarts_with_the_stage(puzzle_dir, tmp_path, monkeypatch):
    """An adaptive KL controller (KL below its target: β shrinks each step) starts afresh with stage 2 under
    optim.stage_reset: step 4 logs algorithm.kl_coef, the β its update used (it logged the pre-reset β)."""
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    cfg = curriculum_config(puzzle_dir, tmp_path / "a")
    cfg = cfg.model_copy(update={"algorithm": cfg.algorithm.model_copy(update={
        "kl_placement": "reward", "kl_target": 1.0, "kl_horizon": 10.0})})
    Trainer(cfg, show_progress=False).fit()
    logged = {m["step"]: m["kl_coef"] for m in read_metrics(tmp_path / "a") if m["kind"] == "train"}
    assert logged[1] == logged[4] == 0.1
    assert logged[3] < logged[2] < 0.1 and logged[5] < 0.1


@pytest.mark.parametrize("crash_at, advantage, lora", [  # resume before the stage boundary, or after it
    (4, "grpo", False), (5, "grpo", False), (4, "gae", False), (5, "gae", False),
    (4, "grpo", True), (5, "grpo", True)])
def test_resume_across_a_stage_boundary_is_exact(puzzle_dir, tmp_path, monkeypatch, crash_at, advantage,
                                                 lora):
    """After the boundary the checkpoint carries the reference (reference.safetensors; with LoRA the reference
    adapter's tensors, the policy's directory holding the trained adapter only)."""
    if lora:
        pytest.importorskip("peft")
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)

    def config(out):
        cfg = curriculum_config(puzzle_dir, out)
        cfg = cfg.model_copy(update={"algorithm": cfg.algorithm.model_copy(update={"advantage": advantage})})
        return with_changes(cfg, {"lora": LORA}) if lora else cfg

    straight = Trainer(config(tmp_path / "a"), show_progress=False)
    straight.fit()
    resumed = crash_and_resume(config(tmp_path / "b"), crash_at)
    assert stable(read_metrics(tmp_path / "a")) == stable(read_metrics(tmp_path / "b"))
    models = ("policy",) + (() if lora else ("ref",)) + (("critic",) if advantage == "gae" else ())
    for model in models:  # with LoRA the policy's parameters are both adapters' (and the frozen base)
        a, b = getattr(straight, model).named_parameters(), getattr(resumed, model).named_parameters()
        for (name, x), (other, y) in itertools.zip_longest(a, b, fillvalue=("missing", None)):
            assert name == other and torch.equal(x, y), (model, name)
    if lora:
        reference = adapter_state(resumed.policy, REFERENCE_ADAPTER)
        assert reference and reference.keys() == adapter_state(straight.policy, REFERENCE_ADAPTER).keys()
        checkpoint = tmp_path / "b" / "checkpoints" / "step_000004"
        assert (checkpoint / "reference.safetensors").is_file()
        assert not (checkpoint / REFERENCE_ADAPTER).exists()


def test_lora_stage_start_reference_is_a_frozen_copy_of_the_adapter(puzzle_dir, tmp_path, monkeypatch):
    """model.lora with algorithm.reference=stage_start: in stage 1 the reference is the base (the adapter
    disabled); entering stage 2 it becomes the policy as it is then (a frozen copy of the adapter) and stays
    so, while the rollouts sample the trained adapter alone."""
    pytest.importorskip("peft")
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    trainer = Trainer(with_changes(curriculum_config(puzzle_dir, tmp_path / "run"), {"lora": LORA}),
                      show_progress=False)
    rows = tiny_rows(trainer.tokenizer)

    def logprobs(model):
        with torch.no_grad():
            return response_logprobs(model, *rows)[0]

    base = logprobs(AutoModelForCausalLM.from_pretrained(resolve_model_path("tiny-random")))
    entered, references, sampled = {}, [], []
    enter, reference, generate = trainer._enter_stage, trainer.models.reference, trainer_module.generate

    def snapshot(step):
        entered[step] = logprobs(trainer.policy)
        enter(step)

    def spy_reference():
        model, context = reference()
        with context:
            references.append(logprobs(model))
        return reference()  # a fresh context for the trainer

    def spy_generate(model, *args, **kwargs):
        layers = [m for m in model.modules() if hasattr(m, "lora_A")]
        sampled.append(({tuple(m.active_adapters) for m in layers}, {n for m in layers for n in m.lora_A}))
        return generate(model, *args, **kwargs)

    trainer._enter_stage, trainer.models.reference = snapshot, spy_reference
    monkeypatch.setattr(trainer_module, "generate", spy_generate)
    trainer.fit()
    assert list(entered) == [4] and len(references) == 6
    for logp in references[:3]:
        torch.testing.assert_close(logp, base, atol=1e-6, rtol=0)
    for logp in references[3:]:
        assert torch.equal(logp, entered[4])
    assert not torch.allclose(entered[4], base, atol=1e-6)
    assert not torch.allclose(logprobs(trainer.policy), entered[4], atol=1e-6)  # the policy moved on
    assert [active for active, _ in sampled] == [{(TRAINED_ADAPTER,)}] * 6
    both = {TRAINED_ADAPTER, REFERENCE_ADAPTER}
    assert [names for _, names in sampled] == [{TRAINED_ADAPTER}] * 3 + [both] * 3
    frozen = [p for name, p in trainer.policy.named_parameters() if f".{REFERENCE_ADAPTER}." in name]
    optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert frozen and not any(p.requires_grad for p in frozen) and not optimised & {id(p) for p in frozen}


def dapo_config(puzzle_dir, out_dir, **rollout) -> TrainConfig:
    config = make_config(puzzle_dir, out_dir, advantage="grpo", clip_high=0.28)
    return config.model_copy(update={"rollout": config.rollout.model_copy(update={
        "dynamic_sampling": True, "max_draws": 6, **rollout})})


def constant_for(ids):
    """`checksum_scores`, except that the puzzles in ``ids`` always score −3 (groups without signal)."""
    def scores(records, generation, tokenizer, **kwargs):
        rows, verdicts = checksum_scores(records, generation, tokenizer, **kwargs)
        for row, verdict in zip(rows, verdicts):
            if row["id"] in ids:
                row["reward"] = verdict.total = -3.0
        return rows, verdicts
    return scores


def groups_of(rows, size):
    return [rows[i:i + size] for i in range(0, len(rows), size)]


def test_dynamic_sampling_keeps_only_groups_with_signal(puzzle_dir, tmp_path, monkeypatch):
    """The first puzzle of every scheduled batch scores −3 on all its responses: each step draws again, from the
    stage's puzzles, and trains on two puzzles whose responses disagree."""
    config = dapo_config(puzzle_dir, tmp_path / "run").model_copy(update={"val_every": 0})
    trainer = Trainer(config, show_progress=False)
    constant = {trainer.schedule.batch(s)[0]["id"] for s in range(len(trainer.schedule))}
    monkeypatch.setattr(trainer_module, "score_generation", constant_for(constant))
    trainer.fit()
    for metrics in read_metrics(tmp_path / "run", "train"):
        step = metrics["step"]
        assert metrics["sampling/draws"] >= 2 and metrics["sampling/kept_groups"] == 2.0
        rows = [json.loads(x) for x in (tmp_path / "run" / "rollouts" / f"step_{step:06d}.jsonl").read_text().splitlines()]
        assert len(rows) == 6
        for group in groups_of(rows, 3):
            assert len({r["id"] for r in group}) == 1 and len({r["reward"] for r in group}) > 1, group
            assert len({r["draw"] for r in group}) == 1 and [r["sample"] for r in group] == [0, 1, 2], group
        assert trainer.schedule.batch(step - 1)[0]["id"] not in {r["id"] for r in rows}
        assert rows[0]["draw"] == 0 and rows[-1]["draw"] >= 1  # the scheduled batch's second puzzle, then a redraw
        assert len({(r["id"], r["draw"], r["sample"]) for r in rows}) == 6  # each row told apart


def test_resume_with_dynamic_sampling_and_overlong_shaping_is_exact(puzzle_dir, tmp_path, monkeypatch):
    def config(out):
        cfg = dapo_config(puzzle_dir, out)
        return cfg.model_copy(update={"algorithm": cfg.algorithm.model_copy(update={"overlong_buffer": 4,
                                                                                    "tis_cap": 2.0})})

    straight = Trainer(config(tmp_path / "a"), show_progress=False)
    constant = {straight.schedule.batch(s)[0]["id"] for s in range(len(straight.schedule))}
    monkeypatch.setattr(trainer_module, "score_generation", constant_for(constant))
    straight.fit()
    resumed = crash_and_resume(config(tmp_path / "b"), crash_at=3)
    metrics = stable(read_metrics(tmp_path / "a"))
    assert metrics == stable(read_metrics(tmp_path / "b"))
    assert all(m["sampling/draws"] >= 2 and m["reward/overlong"] < 0 for m in metrics if m["kind"] == "train")
    assert all(m["tis/ratio_mean"] == pytest.approx(1.0, abs=1e-3) for m in metrics if m["kind"] == "train")
    for a, b in zip(straight.policy.parameters(), resumed.policy.parameters()):
        assert torch.equal(a, b)
    for name in ("step_000003.jsonl", "step_000004.jsonl"):
        assert (tmp_path / "a" / "rollouts" / name).read_text() == (tmp_path / "b" / "rollouts" / name).read_text()


def same_reward_different_traces(records, generation, tokenizer, **kwargs):
    """Every response scores −1, but the first of each group reads as a perfect trace by cases and the others
    have no check line: only trace shaping tells them apart."""
    rows, _ = real_score_generation(records, generation, tokenizer, **kwargs)
    by_id = {r["id"]: r for r in records}
    for row in rows:
        row["response"] = response_target(by_id[row["id"]], PromptConfig(), "cases") if row["sample"] == 0 else "?"
        row["reward"] = -1.0
    return rows, [SimpleNamespace(total=-1.0) for _ in rows]


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_trace_shaping_reaches_dynamic_sampling_and_the_update(puzzle_dir, tmp_path, monkeypatch, weight):
    monkeypatch.setattr(trainer_module, "score_generation", same_reward_different_traces)
    config = dapo_config(puzzle_dir, tmp_path / "run").model_copy(update={"val_every": 0, "steps": 2})
    config = config.model_copy(update={"algorithm": config.algorithm.model_copy(
        update={"trace_check_weight": weight})})
    Trainer(config, show_progress=False).fit()
    for metrics in read_metrics(tmp_path / "run", "train"):
        rows = [json.loads(x) for x in
                (tmp_path / "run" / "rollouts" / f"step_{metrics['step']:06d}.jsonl").read_text().splitlines()]
        if weight:  # every group carries signal at the first draw, and the update moves the weights
            assert metrics["sampling/draws"] == 1 and metrics["sampling/kept_groups"] == 2
            assert [r["trace_shaping"] for r in rows] == [0.0, -0.5, -0.5] * 2
            assert metrics["reward/trace_checks"] == pytest.approx(-1 / 3)
            assert metrics["grad_norm"] > 0
        else:  # the paper's reward alone: no group has signal, sampling draws to the cap, nothing to learn
            assert metrics["sampling/draws"] == 6 and metrics["sampling/kept_groups"] == 0
            assert "trace_shaping" not in rows[0] and "reward/trace_checks" not in metrics
            assert metrics["grad_norm"] == 0


def same_reward_answers_off_the_trace(records, generation, tokenizer, **kwargs):
    """Every response scores −1 and reads as the template's trace by cases; the first of each group answers
    the trace's last case, the second another assignment, the third nothing parsed: only the answer
    consistency shaping tells them apart."""
    rows, _ = real_score_generation(records, generation, tokenizer, **kwargs)
    by_id = {r["id"]: r for r in records}
    for row in rows:
        record = by_id[row["id"]]
        row["response"] = response_target(record, PromptConfig(), "cases")
        roles = Puzzle.from_record(dict(record)).roles
        answer = {name: roles.word(bool(truth)) for name, truth in zip(record["names"], record["solution"])}
        flipped = {name: roles.word(not bool(truth)) for name, truth in zip(record["names"], record["solution"])}
        row["assignment"] = [answer, flipped, None][row["sample"]]
        row["reward"] = -1.0
    return rows, [SimpleNamespace(total=-1.0) for _ in rows]


def test_answer_consistency_shaping_reaches_dynamic_sampling_and_the_update(puzzle_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "score_generation", same_reward_answers_off_the_trace)
    config = dapo_config(puzzle_dir, tmp_path / "run").model_copy(update={"val_every": 0, "steps": 2})
    config = config.model_copy(update={"algorithm": config.algorithm.model_copy(
        update={"trace_answer_weight": 0.5})})
    Trainer(config, show_progress=False).fit()
    for metrics in read_metrics(tmp_path / "run", "train"):
        rows = [json.loads(x) for x in
                (tmp_path / "run" / "rollouts" / f"step_{metrics['step']:06d}.jsonl").read_text().splitlines()]
        assert metrics["sampling/draws"] == 1 and metrics["sampling/kept_groups"] == 2
        assert [r["trace_answer_shaping"] for r in rows] == [0.0, -0.5, 0.0] * 2
        assert metrics["reward/trace_answer"] == pytest.approx(-1 / 6) and metrics["grad_norm"] > 0


def crafted_traces(puzzle_dir, tokenizer):
    """A `generate` that keeps the prompts but answers each puzzle with three traces by cases: sample 0 the
    template (every check right), sample 1 the template with one check line's truth value flipped, sample 2 no
    trace at all."""
    records = load_puzzles(Path(puzzle_dir), "train")
    real = trainer_module.generate

    def fake(model, prompts, *, n, **kwargs):
        out = real(model, prompts, n=n, **kwargs)
        texts = []
        for prompt in prompts:
            record = next(r for r in records if r["quiz"] in tokenizer.decode(prompt))
            perfect = response_target(record, PromptConfig(), "cases")
            flipped = (perfect.replace(": true.", ": false.", 1) if ": true." in perfect
                       else perfect.replace(": false.", ": true.", 1))
            texts += [perfect, flipped, "?"]
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for t in texts]
        width = max(map(len, ids))
        response = torch.full((len(ids), width), tokenizer.pad_token_id)
        mask = torch.zeros(len(ids), width)
        for i, row in enumerate(ids):
            response[i, :len(row)], mask[i, :len(row)] = torch.tensor(row), 1.0
        return replace(out, response_ids=response, response_mask=mask, truncated=torch.zeros(len(ids), dtype=torch.bool),
                       logprobs=torch.zeros(len(ids), width))
    return fake


@pytest.mark.parametrize("weight, sentencepiece", [(0.0, False), (0.5, False), (0.5, True)])
def test_check_line_credit_gives_each_lookup_its_own_sign(puzzle_dir, tmp_path, monkeypatch, weight, sentencepiece):
    """Every response scores −1 (GRPO advantages 0): only the per-token credit can move the weights, +w on the
    right check lines and −w on the flipped value. ``sentencepiece``: the tokenizer drops the decoded text's
    first space, as a SentencePiece decoder does, so a token decoded alone loses its space: the credit reads
    each token in context (`token_texts`), or no line would match."""
    config = make_config(puzzle_dir, tmp_path / "run", advantage="grpo", check_line_credit=weight)
    config = config.model_copy(update={"val_every": 0, "steps": 1, "data": config.data.model_copy(
        update={"people": [2]})})
    trainer = Trainer(config, show_progress=False)
    if sentencepiece:
        decode = trainer.tokenizer.decode
        monkeypatch.setattr(trainer.tokenizer, "decode", lambda ids, **kw: decode(ids, **kw).removeprefix(" "))
    monkeypatch.setattr(trainer_module, "generate", crafted_traces(puzzle_dir, trainer.tokenizer))
    monkeypatch.setattr(trainer_module, "score_generation", constant_for({r["id"] for r in load_puzzles(
        Path(puzzle_dir), "train")}))
    seen = []
    real_credit = trainer_module.check_line_credit
    monkeypatch.setattr(trainer_module, "check_line_credit", lambda *a, **k: seen.append(real_credit(*a, **k))
                        or seen[-1])
    trainer.fit()
    metrics = read_metrics(tmp_path / "run", "train")[0]
    if not weight:
        assert not seen and "reward/check_lines_right" not in metrics and metrics["grad_norm"] == 0
        return
    (credit, shares), = seen
    for group in range(2):
        perfect, flipped, empty = (credit[3 * group + j] for j in range(3))
        assert set(perfect.tolist()) == {0.0, 0.5} and set(flipped.tolist()) == {-0.5, 0.0, 0.5}
        assert int((flipped < 0).sum()) == 1  # the token that holds the flipped value, and nothing after it
        assert not empty.any()
    assert metrics["reward/check_lines_right"] == pytest.approx(sum(shares) / 6) and min(shares) < 1.0
    assert metrics["grad_norm"] > 0


def test_mask_truncated_takes_cut_responses_out_of_the_loss(puzzle_dir, tmp_path, monkeypatch):
    """The tiny model never stops within 12 tokens: with overlong filtering no token is left in the loss, so the
    gradient is zero; without it the same step has a gradient."""
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    grads = {}
    for masked in (False, True):
        config = make_config(puzzle_dir, tmp_path / str(masked), advantage="grpo", mask_truncated=masked)
        Trainer(config.model_copy(update={"steps": 1, "val_every": 0}), show_progress=False).fit()
        rows = (tmp_path / str(masked) / "rollouts" / "step_000001.jsonl").read_text().splitlines()
        assert all(json.loads(r)["truncated"] for r in rows)
        grads[masked] = read_metrics(tmp_path / str(masked), "train")[0]["grad_norm"]
    assert grads[True] == 0.0 and grads[False] > 0.0


def solved_at(people, flat_first: bool = False):
    """`checksum_scores`, with ``solved`` true exactly for the puzzles of ``people`` people (what the adaptive
    schedule follows); the rewards still differ within groups, so the updates move the weights. ``flat_first``:
    the first puzzle of every draw scores −3 on all its responses (dynamic sampling then draws twice a step)."""
    def scores(records, generation, tokenizer, **kwargs):
        rows, verdicts = checksum_scores(records, generation, tokenizer, **kwargs)
        for row, verdict in zip(rows, verdicts):
            row["solved"] = row["n_people"] in people
            if flat_first and row["id"] == records[0]["id"]:
                row["reward"] = verdict.total = -3.0
        return rows, verdicts
    return scores


def adaptive_config(puzzle_dir, out_dir, steps: int, window: int, **update) -> TrainConfig:
    config = make_config(puzzle_dir, out_dir)
    return config.model_copy(update={
        "data": config.data.model_copy(update={
            "schedule": "adaptive", "adaptive": config.data.adaptive.model_copy(update={"window": window})}),
        "steps": steps, "val_every": 0, **update})


def levels_of(run: Path) -> list[float]:
    train = read_metrics(run, "train")
    for m in train:  # every response of a step has the step's level
        rows = (run / "rollouts" / f"step_{m['step']:06d}.jsonl").read_text().splitlines()
        assert {json.loads(r)["n_people"] for r in rows} == {m["curriculum/level"]}
    return [m["curriculum/level"] for m in train]


@pytest.mark.parametrize("people, levels, rolling", [
    ({2, 3}, [2, 2, 3, 3], [1.0, 1.0, 1.0, 1.0]),  # succeeds: up after a full window of 2 steps, then the top
    (set(), [2, 2, 2, 2], [0.0, 0.0, 0.0, 0.0]),  # fails: stays at the bottom
])
def test_adaptive_schedule_moves_up_on_success_and_stays_down_on_failure(puzzle_dir, tmp_path, monkeypatch,
                                                                        people, levels, rolling):
    monkeypatch.setattr(trainer_module, "score_generation", solved_at(people))
    Trainer(adaptive_config(puzzle_dir, tmp_path / "run", steps=4, window=2), show_progress=False).fit()
    assert levels_of(tmp_path / "run") == levels
    assert [m["curriculum/rolling_acc"] for m in read_metrics(tmp_path / "run", "train")] == rolling


@pytest.mark.parametrize("dynamic", [False, True])
def test_adaptive_resume_after_a_level_change_is_exact(puzzle_dir, tmp_path, monkeypatch, dynamic):
    """2-person puzzles are solved, 3-person ones not: levels 2 2 | 3 3 | 2 2 with a window of 2. The checkpoint
    of step 3 holds level 3, a half-full window and the cursors; the resumed run moves down after step 4 and
    continues the 2-person pass where step 2 left it. With dynamic sampling the extra puzzles are of the step's
    level and the accuracy counts every response drawn (12 a step)."""
    monkeypatch.setattr(trainer_module, "score_generation", solved_at({2}, flat_first=dynamic))

    def config(out):
        cfg = adaptive_config(puzzle_dir, out, steps=6, window=2, save_every=3)
        return cfg.model_copy(update={"rollout": cfg.rollout.model_copy(update={"dynamic_sampling": dynamic}),
                                      "algorithm": cfg.algorithm.model_copy(update={"advantage": "grpo"})})

    straight = Trainer(config(tmp_path / "a"), show_progress=False)
    straight.fit()
    resumed = crash_and_resume(config(tmp_path / "b"), crash_at=5)
    assert resumed.start_step == 4
    assert levels_of(tmp_path / "a") == levels_of(tmp_path / "b") == [2, 2, 3, 3, 2, 2]
    assert stable(read_metrics(tmp_path / "a")) == stable(read_metrics(tmp_path / "b"))
    for a, b in zip(straight.policy.parameters(), resumed.policy.parameters()):
        assert torch.equal(a, b)
    for step in (4, 5, 6):
        name = f"step_{step:06d}.jsonl"
        assert (tmp_path / "a" / "rollouts" / name).read_text() == (tmp_path / "b" / "rollouts" / name).read_text()
    train = read_metrics(tmp_path / "b", "train")
    assert all(m.get("sampling/draws", 2.0) == 2.0 for m in train)
    saved = load_state(tmp_path / "b" / "checkpoints" / "step_000003")["schedule"]
    assert saved == {"level": 3, "window": [[0, 12 if dynamic else 6]], "cursors": [[2, 2], [3, 1]]}
    assert straight.schedule.state_dict() == resumed.schedule.state_dict() == {
        "level": 3, "window": [], "cursors": [[2, 4], [3, 2]]}  # steps 5, 6 solved: up again, window emptied
    if not dynamic:
        ids = [json.loads(r)["id"] for s in (1, 2, 5, 6)
               for r in (tmp_path / "b" / "rollouts" / f"step_{s:06d}.jsonl").read_text().splitlines()]
        assert len(set(ids)) == 8  # steps 5 and 6 go on with the 2-person pass: 4 batches of 2 distinct puzzles


# --- LoRA, model.dtype, gradient checkpointing in the loop ---------------------------------------------------

LORA = {"r": 4, "lora_alpha": 8.0, "target_modules": ["q_proj", "v_proj", "down_proj"]}


def with_changes(config: TrainConfig, model: dict | None = None, **top) -> TrainConfig:
    """``config`` with ``model.*`` keys and top-level keys changed, validated again."""
    data = config.model_dump(mode="json")
    return TrainConfig.model_validate({**data, **top, "model": {**data["model"], **(model or {})}})


def lora_config(puzzle_dir, out_dir, **algorithm) -> TrainConfig:
    return with_changes(make_config(puzzle_dir, out_dir, **algorithm), {"lora": LORA}, val_every=0)


def test_lora_trains_the_adapter_only_and_its_checkpoint_merges_into_a_plain_model(puzzle_dir, tmp_path,
                                                                                     monkeypatch):
    peft = pytest.importorskip("peft")
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    config = lora_config(puzzle_dir, tmp_path / "run").model_copy(update={"steps": 2})
    trainer = Trainer(config, show_progress=False)
    assert trainer.ref is None  # the reference is the adapter disabled, not a second copy
    trainer.fit()
    named = dict(trainer.policy.named_parameters())
    adapter = {n for n in named if "lora_" in n}
    assert adapter and {n for n, p in named.items() if p.requires_grad} == adapter
    assert all(named[n].grad is None for n in named if n not in adapter)
    assert any(float(named[n].detach().abs().sum()) > 0 for n in adapter if "lora_B" in n)  # B starts at 0: it moved
    optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert optimised == {id(named[n]) for n in adapter}

    ids, mask, positions, response_ids = tiny_rows(trainer.tokenizer)
    base = AutoModelForCausalLM.from_pretrained(resolve_model_path("tiny-random"))
    with torch.no_grad():
        with trainer.policy.disable_adapter():
            disabled, _ = response_logprobs(trainer.policy, ids, mask, positions, response_ids)
        expected, _ = response_logprobs(base, ids, mask, positions, response_ids)
        adapted, _ = response_logprobs(trainer.policy, ids, mask, positions, response_ids)
    torch.testing.assert_close(disabled, expected, atol=1e-6, rtol=0)
    assert not torch.allclose(adapted, expected, atol=1e-6)

    (_, checkpoint), = list_checkpoints(tmp_path / "run")
    assert (checkpoint / "adapter_model.safetensors").is_file() and (checkpoint / "adapter_config.json").is_file()
    merged = peft.PeftModel.from_pretrained(base, str(checkpoint)).merge_and_unload()
    save_pretrained_atomic(merged, None, tmp_path / "merged")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    with torch.no_grad():
        logp, _ = response_logprobs(reloaded, ids, mask, positions, response_ids)
    torch.testing.assert_close(logp, adapted, atol=1e-5, rtol=0)
    # `logicrl eval --model CHECKPOINT` and every loader: the base (here an alias, found again in another cache)
    # with the adapter merged, in the dtype asked for
    for cache in (None, tmp_path / "moved-cache"):
        loaded, tokenizer = load_model_and_tokenizer(str(checkpoint), dtype="float32", device="cpu", cache_dir=cache)
        assert not hasattr(loaded, "peft_config") and tokenizer.pad_token_id is not None
        with torch.no_grad():
            logp, _ = response_logprobs(loaded, ids, mask, positions, response_ids)
        torch.testing.assert_close(logp, adapted, atol=1e-5, rtol=0)
    assert (tmp_path / "moved-cache" / "tiny-random").is_dir()
    half, _ = load_model_and_tokenizer(str(checkpoint), dtype="bfloat16", device="cpu")
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16} and not hasattr(half, "peft_config")


def test_a_lora_run_on_a_lora_checkpoint_records_that_checkpoint_as_its_base(puzzle_dir, tmp_path, monkeypatch):
    """A second LoRA run started from a first one's checkpoint, named by a relative path: its adapter's base is
    that checkpoint, absolute, so the second checkpoint loads (from another directory) as the model the run
    trained, both adapters merged. Its base used to be the first run's base, which dropped the first adapter
    without a word, and a relative path loaded only from the directory the run started in."""
    pytest.importorskip("peft")
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    first = Trainer(lora_config(puzzle_dir, tmp_path / "a").model_copy(update={"steps": 2}), show_progress=False)
    first.fit()
    (_, first_checkpoint), = list_checkpoints(tmp_path / "a")
    monkeypatch.chdir(tmp_path)
    second_config = with_changes(lora_config(puzzle_dir, tmp_path / "b"), {"name": str(first_checkpoint.relative_to(
        tmp_path))}, steps=2)
    with held(Trainer(second_config, show_progress=False)) as second:
        for name, weight in second.policy.named_parameters():
            if "lora_B" in name:  # a trained second adapter (the rollouts of a random model barely move it)
                torch.nn.init.normal_(weight, std=0.1)
        checkpoint = second.save(2)
        ids, mask, positions, response_ids = tiny_rows(second.tokenizer)
        with torch.no_grad():
            trained, _ = response_logprobs(second.policy, ids, mask, positions, response_ids)
    base = json.loads((checkpoint / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert base == str(first_checkpoint)
    monkeypatch.chdir("/")
    loaded, _ = load_model_and_tokenizer(str(checkpoint), dtype="float32", device="cpu")
    with torch.no_grad():
        got, _ = response_logprobs(loaded, ids, mask, positions, response_ids)
    torch.testing.assert_close(got, trained, atol=1e-5, rtol=0)


def tiny_rows(tokenizer):
    ids = torch.tensor([[5, 9, 13, 200, 41, 11, 12, 13], [5, 9, 13, 200, 41, 21, 22, 23]])
    mask = torch.ones_like(ids)
    return ids, mask, torch.arange(ids.shape[1]).expand_as(ids), ids[:, 5:]


def test_lora_resume_continues_exactly_like_an_uninterrupted_run(puzzle_dir, tmp_path, monkeypatch):
    pytest.importorskip("peft")
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    straight = Trainer(lora_config(puzzle_dir, tmp_path / "a"), show_progress=False)
    straight.fit()
    resumed = crash_and_resume(lora_config(puzzle_dir, tmp_path / "b"), crash_at=3)
    assert resumed.start_step == 3
    assert stable(read_metrics(tmp_path / "a")) == stable(read_metrics(tmp_path / "b"))
    for (name, a), b in zip(straight.policy.named_parameters(), resumed.policy.parameters()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("lora", [False, True])
def test_bfloat16_dtype_keeps_trained_weights_and_adamw_state_in_float32(puzzle_dir, tmp_path, monkeypatch, lora):
    """model.dtype=bfloat16 on CPU: full fine-tuning keeps fp32 master weights (the reference is bf16); LoRA
    stores the frozen base in bf16 and trains an fp32 adapter. AdamW's state follows the trained weights.
    The update's forwards run under bf16 autocast (the decoder's linears output bf16), as the rollout's do."""
    if lora:
        pytest.importorskip("peft")
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    config = with_changes(make_config(puzzle_dir, tmp_path / "run"),
                          {"dtype": "bfloat16", **({"lora": LORA} if lora else {})}, val_every=0, steps=1)
    trainer = Trainer(config, show_progress=False)
    update_outputs = []
    trainer.policy.get_decoder().layers[-1].mlp.register_forward_hook(
        lambda module, args, out: update_outputs.append(out.dtype) if torch.is_grad_enabled() else None)
    trainer.fit()
    assert update_outputs and set(update_outputs) == {torch.bfloat16}
    trained = [p for p in trainer.policy.parameters() if p.requires_grad]
    frozen = [p for p in trainer.policy.parameters() if not p.requires_grad]
    assert trained and all(p.dtype == torch.float32 for p in trained)
    assert all(p.dtype == torch.bfloat16 for p in frozen) and bool(frozen) == lora
    state = [v for s in trainer.optimizer.state.values() for k, v in s.items() if k != "step"]
    assert state and all(v.dtype == torch.float32 for v in state)
    if not lora:
        assert next(trainer.ref.parameters()).dtype == torch.bfloat16


def test_gradient_checkpointing_runs_in_the_loop_and_reaches_the_critic(puzzle_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    config = with_changes(make_config(puzzle_dir, tmp_path / "run", advantage="gae", kl_placement="reward"),
                          {"gradient_checkpointing": True}, val_every=0, steps=1)
    trainer = Trainer(config, show_progress=False)
    modes = []
    trainer.critic.body.register_forward_pre_hook(
        lambda module, args: modes.append(module.training) if torch.is_grad_enabled() else None)
    trainer.fit()
    assert modes and all(modes)  # the critic's update runs in train mode, where checkpointing applies
    assert trainer.critic.body.gradient_checkpointing and not trainer.critic.training


def test_a_run_directory_is_swept_of_what_killed_writers_left(tmp_path):
    """Under the run's lock: a temporary checkpoint folder (killed before its rename, or a pruned one renamed out
    of sight), a temporary file; a swapped-out `.old-*` folder stays (a save killed between its two renames
    leaves the only copy of that step there)."""
    from logicrl.rl.checkpoints import prepare_run_dir

    run = tmp_path / "run"
    checkpoints = run / "checkpoints"
    for name in (".step_000004.tmp-1a2b3c4d", ".step_000002.tmp-9f8e7d6c", ".step_000003.old-1a2b3c4d"):
        (checkpoints / name).mkdir(parents=True)
        (checkpoints / name / "model.safetensors").write_bytes(b"x")
    (run / ".config.yaml.k3j4h5g6.tmp").write_text("half")
    _, checkpoint, lock = prepare_run_dir(run, None, resume=False, command="train")
    lock.release()
    assert checkpoint is None
    assert sorted(p.name for p in checkpoints.iterdir()) == [".step_000003.old-1a2b3c4d"]
    assert sorted(p.name for p in run.iterdir()) == [".lock", "checkpoints"]


@pytest.mark.parametrize("resume", [False, True])
def test_checkpoints_without_their_state_are_kept_and_refused(tmp_path, resume):
    """A user who deleted trainer_state.pt (the optimizer, twice the model) from old checkpoints to keep the
    weights: every start or resume deleted those folders without a word, and a new run replaced the rest."""
    from logicrl.rl.checkpoints import prepare_run_dir

    run = tmp_path / "run"
    for name in ("step_000002", "step_000004"):
        (run / "checkpoints" / name).mkdir(parents=True)
        (run / "checkpoints" / name / "model.safetensors").write_bytes(b"weights")
    (run / "config.yaml").write_text("steps: 4\n")
    with pytest.raises(UserError, match=r"holds checkpoints without their trainer_state.pt \(step_000002, "
                                        r"step_000004\): they cannot be resumed"):
        prepare_run_dir(run, None, resume=resume, command="train")
    assert all((run / "checkpoints" / n / "model.safetensors").read_bytes() == b"weights"
               for n in ("step_000002", "step_000004"))


def test_rng_states_survive_a_checkpoint_file(tmp_path):
    """The global torch and Python streams, as a checkpoint stores them (torch.save, read back weights_only),
    continue where they were: a resumed LoRA run with dropout draws its masks from the torch stream."""
    torch.manual_seed(1)
    random.seed(1)
    torch.save({"rng": rng_states()}, tmp_path / "state.pt")
    expected = (torch.rand(3), random.random())
    torch.manual_seed(2)
    random.seed(2)
    restore_rng(torch.load(tmp_path / "state.pt", weights_only=True)["rng"])
    drawn = (torch.rand(3), random.random())
    assert torch.equal(drawn[0], expected[0]) and drawn[1] == expected[1]


@contextlib.contextmanager
def held(trainer: Trainer) -> Iterator[Trainer]:
    """``trainer`` for a test that does not call fit: its run log closed and its run directory let go after."""
    try:
        yield trainer
    finally:
        trainer.log.close()
        trainer.run_lock.release()


def record_calls(monkeypatch, name: str, key: str) -> list:
    """Wrap ``trainer_module.<name>`` so each call still runs and appends its keyword argument ``key``."""
    seen, real = [], getattr(trainer_module, name)

    def spy(*args, **kwargs):
        seen.append(kwargs[key])
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, name, spy)
    return seen


def test_validation_runs_at_a_last_step_off_the_cadence(puzzle_dir, tmp_path, monkeypatch):
    """steps=3, val_every=2: validation before training, at step 2 and at the final step 3."""
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    Trainer(make_config(puzzle_dir, tmp_path / "run").model_copy(update={"steps": 3}), show_progress=False).fit()
    assert [m["step"] for m in read_metrics(tmp_path / "run", "val")] == [0, 2, 3]


def test_validation_generates_up_to_val_max_response_tokens(puzzle_dir, tmp_path, monkeypatch):
    """rollout.val_max_response_tokens=5 (training 12) is the token budget validation generates with."""
    seen = record_calls(monkeypatch, "generate_and_score", "max_new_tokens")
    config = make_config(puzzle_dir, tmp_path / "run")
    config = config.model_copy(update={"rollout": config.rollout.model_copy(update={"val_max_response_tokens": 5})})
    with held(Trainer(config, show_progress=False)) as trainer:
        trainer.validate(0)
    assert seen == [5]


def test_a_resume_applies_a_new_critic_lr(puzzle_dir, tmp_path, monkeypatch):
    """optim.critic_lr=0.125 on resume replaces the critic learning rate the checkpointed optimizer held."""
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    config = make_config(puzzle_dir, tmp_path / "run", advantage="gae").model_copy(update={"steps": 2, "val_every": 0})
    Trainer(config, show_progress=False).fit()
    with held(Trainer(resume_config(TrainConfig, config.out_dir, ["optim.critic_lr=0.125"]), resume=True,
                      show_progress=False)) as resumed:
        assert [group["lr"] for group in resumed.critic_optimizer.param_groups] == [0.125]


def test_lr_schedule_length_counts_update_epochs(puzzle_dir, tmp_path):
    """update_epochs=2, one mini-batch a step, 4 steps: 8 optimizer steps, so the linear schedule is at 1/2 at 4."""
    config = make_config(puzzle_dir, tmp_path / "run", update_epochs=2)
    config = config.model_copy(update={"optim": config.optim.model_copy(update={"schedule": "linear"})})
    with held(Trainer(config, show_progress=False)) as trainer:
        assert trainer.scheduler.lr_lambdas[0](4) == pytest.approx(0.5)


def test_several_update_epochs_are_not_on_policy(puzzle_dir, tmp_path, monkeypatch):
    """With update_epochs=2 the second epoch's policy is not the sampler: no update takes the on-policy shortcut."""
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    seen = record_calls(monkeypatch, "policy_step", "on_policy")
    with held(Trainer(make_config(puzzle_dir, tmp_path / "run", update_epochs=2), show_progress=False)) as trainer:
        trainer.train_step(1)
    assert seen == [False, False]


def test_a_stage_starting_at_step_2_is_entered(puzzle_dir, tmp_path, monkeypatch):
    """12 two-person puzzles, 12 a step: the 3-person stage starts at step 2, and step 2 enters it."""
    monkeypatch.setattr(trainer_module, "score_generation", checksum_scores)
    config = curriculum_config(puzzle_dir, tmp_path / "run")
    config = config.model_copy(update={"rollout": config.rollout.model_copy(
        update={"prompts_per_step": 12, "group_size": 2, "max_response_tokens": 4}), "steps": 2})
    with held(Trainer(config, show_progress=False)) as trainer:
        entered = []
        trainer._enter_stage = entered.append
        assert trainer.schedule.stage_starts == (1, 2)
        trainer.train_step(1)
        trainer.train_step(2)
    assert entered == [2]


def tensorboard_scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_tags_train_metrics_under_train_and_val_metrics_as_named(tmp_path):
    """A train metric "loss" is tagged train/loss; a val metric "val/acc" keeps its own name."""
    log = RunLog(tmp_path)
    log.metrics("train", 1, {"loss": 1.0})
    log.metrics("val", 1, {"val/acc": 0.5})
    log.close()
    assert set(tensorboard_scalars(tmp_path)) == {"train/loss", "val/acc"}


def test_last_values_are_those_of_the_last_line(tmp_path):
    """Two val lines, a = 1 at step 2 and a = 2 at step 4: the last values are {a: 2}."""
    log = RunLog(tmp_path, tensorboard=False)
    log.metrics("val", 2, {"a": 1.0})
    log.metrics("val", 4, {"a": 2.0})
    assert log.last_values("val") == {"a": 2.0}


def test_a_resumed_tensorboard_log_keeps_the_checkpoint_step(tmp_path):
    """Steps 1-3 logged, resumed from the checkpoint of step 2: step 2 stays, step 3 is the new value only."""
    log = RunLog(tmp_path)
    for step in (1, 2, 3):
        log.metrics("train", step, {"x": float(step)})
    log.close()
    log = open_run_log(tmp_path, 2)
    log.metrics("train", 3, {"x": 30.0})
    log.close()
    assert tensorboard_scalars(tmp_path)["train/x"] == [(1, 1.0), (2, 2.0), (3, 30.0)]


@pytest.mark.parametrize("damaged", ["config.json", "tokenizer_config.json"])
def test_a_checkpoint_with_a_damaged_json_file_is_skipped_for_the_one_before(tmp_path, damaged):
    """A resume falls back past a newest checkpoint that cannot load: a cut JSON file (a LoRA checkpoint's
    adapter_config.json, the config, the tokenizer's) counts, as a cut weights or state file does; it went
    through and failed later with a JSONDecodeError traceback."""
    from logicrl.models import build_tiny_model
    from logicrl.rl.checkpoints import checkpoint_problem, latest_checkpoint, save_checkpoint

    model, tokenizer = build_tiny_model()
    for step in (1, 2):
        save_checkpoint(tmp_path, step, model, tokenizer, {"step": step}, keep_last=2)
    newest = tmp_path / "checkpoints" / "step_000002"
    assert checkpoint_problem(newest) is None
    (newest / damaged).write_text('{"cut": ')
    assert checkpoint_problem(newest).startswith("JSONDecodeError")
    with pytest.warns(UserWarning, match="step_000002: cannot be loaded .*falling back to the checkpoint before it"):
        assert latest_checkpoint(tmp_path) == (1, tmp_path / "checkpoints" / "step_000001")


@pytest.mark.parametrize(("removed", "problem"), [
    (["model.safetensors"], ("no policy weights (adapter_model.safetensors or model.safetensors or "
                             "model.safetensors.index.json)")),
    (["config.json"], "no model config (adapter_config.json or config.json)"),
    (["tokenizer.json", "tokenizer_config.json"], "no tokenizer (tokenizer.json or tokenizer_config.json)"),
])
def test_a_checkpoint_missing_a_file_it_needs_is_skipped_for_the_one_before(tmp_path, removed, problem):
    """A PPO checkpoint whose model.safetensors is gone still has critic.safetensors, which passed the weights
    check; a missing config.json or tokenizer was not checked: each resume then failed with a load error."""
    from logicrl.models import build_tiny_model
    from logicrl.rl.checkpoints import checkpoint_problem, latest_checkpoint, save_checkpoint

    model, tokenizer = build_tiny_model()
    for step in (1, 2):
        save_checkpoint(tmp_path, step, model, tokenizer, {"step": step}, keep_last=2)
    newest = tmp_path / "checkpoints" / "step_000002"
    (newest / "critic.safetensors").write_bytes((newest / "model.safetensors").read_bytes())  # as PPO's
    assert checkpoint_problem(newest) is None
    for name in removed:
        (newest / name).unlink()
    assert checkpoint_problem(newest) == problem
    with pytest.warns(UserWarning, match="step_000002: cannot be loaded .*falling back to the checkpoint before it"):
        assert latest_checkpoint(tmp_path) == (1, tmp_path / "checkpoints" / "step_000001")

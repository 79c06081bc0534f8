"""veRL's own code against our launcher, export and reward; runs where PyPI ``verl`` imports.

That is the venv built by runs/verl_contract.sh (test_verl_contract.py builds it and runs this file there);
in the project's .venv, without veRL, the module is skipped. What veRL itself checks:

* Hydra composes veRL's ``ppo_trainer.yaml`` with every override `logicrl verl launch` emits (an unknown
  or misspelt key fails), for the three paper recipes and the other mappings, and veRL's
  ``validate_config`` and config dataclasses accept the result;
* veRL's ``RLHFDataset`` loads our exported parquet with a tokenizer, and its rollout tokenisation
  (Continuous Token builder, custom chat template) gives exactly the prompt ids of ``logicrl train``;
* veRL's reward loading finds ``compute_score`` (``pkg://`` path) and its reward manager, decoding token
  ids, scores exactly as ``logicrl.reward.score``;
* a checkpoint written by veRL's FSDP checkpoint manager, with the plan's ``checkpoint.save_contents``, where
  the plan expects a stage's last step holds the fp32 actor as a Hugging Face model, which the plan's hand-off
  command copies to the stage's model directory, loaded by logicrl with the same fp32 weights.

Run: "$(bash runs/verl_contract.sh)" -m pytest tests/integrations/test_verl_contract_venv.py -q
"""

from __future__ import annotations

import copy
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("verl", reason="needs PyPI verl: run through tests/integrations/test_verl_contract.py")

import numpy as np
import torch
import torch.distributed as dist
import verl.trainer.config
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from peft import LoraConfig, get_peft_model
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from transformers import AutoModelForCausalLM, AutoTokenizer
from verl import DataProto
from verl.trainer.ppo.reward import get_custom_reward_fn, load_reward_manager
from verl.trainer.ppo.utils import need_critic, need_reference_policy
from verl.utils.checkpoint.fsdp_checkpoint_manager import FSDPCheckpointManager
from verl.utils.config import omega_conf_to_dataclass, validate_config
from verl.utils.dataset.rl_dataset import RLHFDataset
from verl.utils.tokenizer.continuous_token_wiring import create_continuous_token_builder

from logicrl.config import load_config
from logicrl.integrations.hydra import hydra_value
from logicrl.integrations.verl_launch import VerlClusterConfig, plan_launch
from logicrl.io import write_parquet
from logicrl.models import TINY_MODEL, load_model_and_tokenizer, resolve_model_path
from logicrl.prompts import encode_prompts
from logicrl.puzzles.dataset import DataConfig, generate
from logicrl.puzzles.files import write_dataset
from logicrl.reward import score
from logicrl.rl.config import TrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
VERL_CONFIG_DIR = str(Path(verl.trainer.config.__file__).parent)
VARIANTS = [
    ["algorithm.kl_placement=reward", "algorithm.kl_target=0.05", "algorithm.kl_estimator=k1"],
    ["algorithm.advantage=rloo", "algorithm.dual_clip=null", "algorithm.kl_estimator=k3+", "prompt.template=plain"],
    ["algorithm.advantage=reinforce_pp_baseline", "algorithm.kl_placement=none", "prompt.prefill=''",
     "reward.mode=logic-rl", "optim.schedule=cosine", "optim.warmup_steps=3", "data.schedule=mixed"],
    ["algorithm.policy_loss=gspo", "algorithm.loss_agg=seq-mean-token-mean", "algorithm.tis_cap=2.0"],
    ["algorithm.policy_loss=cispo", "algorithm.loss_agg=seq-mean-token-sum-norm"],
    ["data.schedule=mixed", "model.lora.r=8", "model.lora.lora_alpha=16", "model.lora.target_modules=[q_proj,v_proj]"],
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kk")
    config = DataConfig(people=[3, 4], train=16, test=4, seed=3)
    write_dataset(out, config, generate(config))
    return out


def plan_for(config: Path, overrides: list[str], dataset: Path, out: Path, cluster: VerlClusterConfig | None = None):
    base = [f"model.name={TINY_MODEL}", f"data.train={dataset}", "data.people=[3,4]", f"out_dir={out}"]
    cfg = load_config(TrainConfig, config, base + overrides)
    return cfg, plan_launch(cfg, cluster or VerlClusterConfig())


def compose_stage(overrides: list[str]):
    with initialize_config_dir(config_dir=VERL_CONFIG_DIR, version_base=None):
        return compose("ppo_trainer", overrides=overrides)


def check_with_verl(composed) -> None:
    """veRL's own checks: main_ppo's validate_config and the typed config dataclasses."""
    validate_config(composed, use_reference_policy=need_reference_policy(composed), use_critic=need_critic(composed))
    omega_conf_to_dataclass(composed.algorithm)
    omega_conf_to_dataclass(composed.actor_rollout_ref.rollout)
    if need_critic(composed):
        omega_conf_to_dataclass(composed.critic)


@pytest.mark.parametrize("name", ["paper-reinforce-pp", "paper-grpo", "paper-ppo"])
def test_paper_recipes_compose_and_validate(name: str, dataset: Path, tmp_path: Path) -> None:
    cfg, plan = plan_for(CONFIGS / f"{name}.yaml", [], dataset, tmp_path)
    assert [s.people for s in plan.stages] == [(3,), (4,)]
    for stage in plan.stages:  # stand-ins for the merged checkpoints (veRL's checks load the critic's config)
        shutil.copytree(resolve_model_path(TINY_MODEL), stage.hf_dir)
    for stage, (train, _) in zip(plan.stages, plan.commands):
        composed = compose_stage(train[3:])
        check_with_verl(composed)
        actor = composed.actor_rollout_ref.actor
        assert composed.algorithm.adv_estimator == {"paper-reinforce-pp": "reinforce_plus_plus",
                                                    "paper-grpo": "grpo", "paper-ppo": "gae"}[name]
        assert (actor.use_kl_loss, actor.kl_loss_type, actor.kl_loss_coef) == (True, "low_var_kl", 0.001)
        assert (actor.optim.lr, composed.actor_rollout_ref.rollout.temperature) == (4e-7, 0.7)
        assert (composed.data.train_batch_size, composed.actor_rollout_ref.rollout.n) == (8, 8)
        assert composed.data.max_response_length == 4096 and composed.trainer.total_training_steps == stage.steps
        assert composed.actor_rollout_ref.model.path == stage.model_path
        assert need_critic(composed) == (name == "paper-ppo")
        keep = composed.trainer  # veRL keeps every checkpoint of either unless told (a 7B critic's: ≈ 80 GB each)
        assert keep.max_actor_ckpt_to_keep == keep.max_critic_ckpt_to_keep == cfg.keep_last is not None
        assert composed.reward.custom_reward_function.path == "pkg://logicrl.integrations.verl"


@pytest.mark.parametrize("overrides", VARIANTS)
def test_other_mappings_compose_and_validate(overrides: list[str], dataset: Path, tmp_path: Path) -> None:
    cluster = VerlClusterConfig(nodes=2, gpus_per_node=4, tensor_parallel=2, rollout_engine="sglang")
    cfg, plan = plan_for(CONFIGS / "paper-reinforce-pp.yaml", overrides, dataset, tmp_path, cluster)
    composed = compose_stage(plan.commands[0][0][3:])
    check_with_verl(composed)
    assert composed.trainer.nnodes * composed.trainer.n_gpus_per_node == 8
    assert composed.algorithm.use_kl_in_reward == (cfg.algorithm.kl_placement == "reward")
    assert composed.actor_rollout_ref.actor.use_kl_loss == (cfg.algorithm.kl_placement == "loss")
    kwargs = composed.reward.custom_reward_function.reward_kwargs
    assert kwargs.prefilled_think == cfg.prompt.prefilled_think
    assert kwargs.get("mode", "strict") == cfg.reward.mode
    actor = composed.actor_rollout_ref.actor
    assert actor.policy_loss.loss_mode == cfg.algorithm.policy_loss
    assert (actor.clip_ratio_low, actor.clip_ratio_high) == cfg.algorithm.clip_range()
    # Dr.GRPO's C: the generation budget, as `logicrl train` divides by (veRL's default: the padded width)
    assert (actor.loss_agg_mode, actor.loss_scale_factor) == (cfg.algorithm.loss_agg, cfg.loss_norm_constant())
    model, lora = composed.actor_rollout_ref.model, cfg.model.lora
    assert (model.lora_rank, model.lora_alpha) == ((lora.r, lora.lora_alpha) if lora else (0, 16))
    assert list(model.target_modules) == list(lora.target_modules) if lora else model.target_modules == "all-linear"


@pytest.mark.parametrize("text", ["{{ 'a' }}\n{{ \"b\" }}", "it's \\'x\\' ${not.interp} a,b=[c]:{d}", "ends\\",
                                  "/home/josé/résultats"])
def test_quoted_values_survive_hydra(text: str) -> None:
    composed = compose_stage([f"trainer.project_name={hydra_value(text)}"])
    assert composed.trainer.project_name == text


@pytest.mark.parametrize("prompt", [[], ["prompt.template=plain"], ["prompt.prefill=''"]])
def test_verl_dataset_and_rollout_tokens_match_our_prompts(prompt: list[str], dataset: Path, tmp_path: Path) -> None:
    cfg, plan = plan_for(CONFIGS / "paper-reinforce-pp.yaml", prompt, dataset, tmp_path)
    composed = compose_stage(plan.commands[0][0][3:])
    for name, rows in plan.files.items():  # what run_plan writes
        write_parquet(plan.data_dir / name, rows)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(TINY_MODEL))
    ours = encode_prompts([r["reward_model"]["ground_truth"] for r in plan.files["train_3ppl.parquet"]],
                          tokenizer, cfg.prompt)
    data = RLHFDataset(list(composed.data.train_files), tokenizer, composed.data)
    assert len(data) == len(ours) == 16
    custom = composed.actor_rollout_ref.model.custom_chat_template
    if custom is not None:  # what veRL's agent loop does with it
        tokenizer.chat_template = custom
    builder = create_continuous_token_builder(tokenizer)
    for i, expected_ids in enumerate(ours):
        item = data[i]
        assert item["data_source"] == "kk_3ppl" and item["extra_info"]["n_people"] == 3
        assert builder.build_initial_tokens(list(item["raw_prompt"])) == expected_ids


@pytest.mark.parametrize("prompt", [[], ["template=plain"]])
def test_exported_template_override_is_what_the_launcher_passes(prompt: list[str], dataset: Path,
                                                                tmp_path: Path) -> None:
    """`logicrl verl export`'s chat_template.override, given to veRL's Hydra, is the launcher's template."""
    from typer.testing import CliRunner

    from logicrl.cli import app

    out = tmp_path / "export"
    result = CliRunner().invoke(app, ["verl", "export", "--data", str(dataset), "--out", str(out),
                                      "--model", TINY_MODEL, *prompt])
    assert result.exit_code == 0, result.output
    exported = compose_stage([(out / "chat_template.override").read_text().rstrip("\n")])
    _, plan = plan_for(CONFIGS / "paper-reinforce-pp.yaml", [f"prompt.{o}" for o in prompt], dataset, tmp_path / "r")
    launched = compose_stage(plan.commands[0][0][3:])
    template = exported.actor_rollout_ref.model.custom_chat_template
    assert template == launched.actor_rollout_ref.model.custom_chat_template == (out / "chat_template.jinja").read_text()


def test_verl_reward_manager_scores_like_logicrl(dataset: Path, tmp_path: Path) -> None:
    cfg, plan = plan_for(CONFIGS / "paper-reinforce-pp.yaml", [], dataset, tmp_path)
    composed = compose_stage(plan.commands[0][0][3:])
    assert get_custom_reward_fn(composed) is not None
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(TINY_MODEL))
    manager = load_reward_manager(composed, tokenizer)
    row = plan.files["train_3ppl.parquet"][0]
    truth = row["reward_model"]["ground_truth"]
    answer = truth["solution_text_format"]
    wrong = answer.replace("knight", "KNAVE").replace("knave", "knight").replace("KNAVE", "knave")
    responses = [f" They cannot all lie.</think><answer>{answer}</answer>",
                 f" They cannot all lie.</think><answer>{wrong}</answer>",
                 f"<think> Hmm.</think><answer>{answer}</answer>", f"<answer>{answer}</answer>", ""]
    prompt_ids = torch.tensor([tokenizer("Q")["input_ids"]])
    totals, accuracies = [], []
    for response in responses:
        ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        batch = DataProto.from_dict(
            tensors={"prompts": prompt_ids, "responses": torch.tensor([ids]),
                     "attention_mask": torch.ones(1, prompt_ids.shape[1] + len(ids), dtype=torch.long)},
            non_tensors={key: np.array([row[key]], dtype=object)
                         for key in ("data_source", "reward_model", "extra_info")})
        result = manager.loop.run_until_complete(manager.run_single(batch))
        totals.append(result["reward_score"])
        accuracies.append(result["reward_extra_info"]["acc"])  # validation's headline metric: solved or not
        assert tokenizer.decode(ids, skip_special_tokens=True) == response  # what veRL decodes is the text
        expected = score(response, answer, prefilled_think=True, roles=truth["knight_knave"], question=truth["quiz"])
        assert totals[-1] == expected.total, response
    # Hand-checked: right, wrong, a second <think> after the pre-filled one, no think block, nothing.
    assert totals == [3.0, -0.5, -3.0, -3.0, -3.0]
    assert accuracies == [1.0, 0.0, 0.0, 0.0, 0.0]


LORA = ["data.schedule=mixed", "model.lora.r=4", "model.lora.lora_alpha=12", "model.lora.target_modules=[q_proj,v_proj]"]


@pytest.mark.parametrize("overrides", [[], LORA], ids=["full", "lora"])
def test_stage_checkpoint_hands_off_fp32(dataset: Path, tmp_path: Path, overrides: list[str]) -> None:
    """veRL's FSDP checkpoint manager (FSDP2 on one CPU process, gloo), given the plan's save_contents,
    writes a stage's last checkpoint where the plan expects it, with the full fp32 actor as a Hugging Face
    model; the plan's hand-off command turns it into the model the next stage and `logicrl eval` load. A LoRA
    actor's is peft's state dict (the adapter beside each base layer): the hand-off merges it, so the model
    handed over is the trained one (a copy loaded as random weights, with a warning only)."""
    cfg, plan = plan_for(CONFIGS / "paper-reinforce-pp.yaml", overrides, dataset, tmp_path)
    stage, (train, hand_off) = plan.stages[0], plan.commands[0]
    composed = compose_stage(train[3:])
    save_contents = OmegaConf.to_container(composed.actor_rollout_ref.actor.checkpoint.save_contents)
    assert "hf_model" in save_contents
    source = resolve_model_path(TINY_MODEL)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    with torch.no_grad():
        next(model.parameters()).add_(1e-4)  # a value bf16 cannot hold exactly
    if cfg.model.lora is not None:  # veRL's actor: peft over the model, as its FSDP workers wrap it
        lora = cfg.model.lora
        model = get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.lora_alpha,
                                                 target_modules=list(lora.target_modules), task_type="CAUSAL_LM"))
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:  # trained: not peft's zeros
                    param.normal_(0.0, 0.05)
        expected = {k: v.clone() for k, v in copy.deepcopy(model).merge_and_unload().state_dict().items()}
    else:
        expected = {k: v.clone() for k, v in model.state_dict().items()}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        fully_shard(model, mesh=init_device_mesh("cpu", (1,), mesh_dim_names=("fsdp",)))  # as veRL names it
        contents = OmegaConf.create({"save_contents": save_contents,
                                     "load_contents": ["model", "optimizer", "extra"]})
        manager = FSDPCheckpointManager(model=model, optimizer=torch.optim.AdamW(model.parameters()),
                                        processing_class=AutoTokenizer.from_pretrained(source),
                                        checkpoint_config=contents)
        manager.save_checkpoint(str(stage.last_actor_checkpoint), global_step=stage.steps)
    finally:
        dist.destroy_process_group()
    result = subprocess.run(hand_off, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not stage.hf_dir.exists()  # the copy goes to stage.merge_dir; run_plan renames it when it succeeded
    os.replace(stage.merge_dir, stage.hf_dir)
    merged, tokenizer = load_model_and_tokenizer(str(stage.hf_dir), dtype="auto", device="cpu")
    assert set(merged.state_dict()) == set(expected)
    for name, value in expected.items():
        assert merged.state_dict()[name].dtype == torch.float32, name
        torch.testing.assert_close(merged.state_dict()[name], value, rtol=0, atol=0 if cfg.model.lora is None else 1e-6)
    assert tokenizer.chat_template == AutoTokenizer.from_pretrained(source).chat_template  # not the custom one

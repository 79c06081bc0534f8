"""Tests for `logicrl verl launch`: the TrainConfig → veRL override mapping (hand-checked values), the
curriculum stages, Hydra quoting, the dry-run output and the errors. No veRL needed; that veRL accepts the
overrides is test_verl_contract.py's job.

Run: .venv/bin/python -m pytest tests/integrations/test_verl_launch.py -q
"""

from __future__ import annotations

import importlib.util
import math
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer
from typer.testing import CliRunner

from logicrl.cli import app
from logicrl.config import load_config
from logicrl.errors import ConfigError, DataError, UserError
from logicrl.integrations.hydra import hydra_value
from logicrl.integrations.verl_export import rollout_chat_template
from logicrl.integrations.verl_launch import (
    VerlClusterConfig,
    algorithm_overrides,
    check_raw_overrides,
    check_supported,
    model_overrides,
    plan_launch,
    plan_stages,
    reward_overrides,
)
from logicrl.models import TINY_MODEL, load_model_and_tokenizer, resolve_model_path, save_pretrained_atomic
from logicrl.models.lora import saved_model_linear_names
from logicrl.prompts import PromptConfig, prompt_text
from logicrl.puzzles.dataset import DataConfig, generate
from logicrl.puzzles.files import write_dataset
from logicrl.rl.config import TrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
runner = CliRunner()


def as_dict(overrides: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in overrides)


def train_config(*overrides: str) -> TrainConfig:
    return load_config(TrainConfig, CONFIGS / "paper-reinforce-pp.yaml", list(overrides))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kk")
    config = DataConfig(people=[3, 4], train=20, test=3, seed=2)
    write_dataset(out, config, generate(config))
    return out


@pytest.mark.parametrize("name, advantage", [("paper-reinforce-pp", "reinforce_pp"), ("paper-grpo", "grpo"),
                                             ("paper-ppo", "gae")])
def test_paper_configs_are_train_configs(name: str, advantage: str) -> None:
    cfg = load_config(TrainConfig, CONFIGS / f"{name}.yaml")  # what `logicrl train --config` reads
    assert (cfg.model.name, cfg.algorithm.advantage, cfg.data.schedule) == (
        "Qwen/Qwen2.5-7B-Instruct-1M", advantage, "curriculum")
    assert (cfg.rollout.prompts_per_step, cfg.rollout.group_size, cfg.rollout.temperature) == (8, 8, 0.7)
    assert (cfg.optim.lr, cfg.algorithm.kl_placement, cfg.algorithm.kl_estimator, cfg.algorithm.kl_coef) == (
        4e-7, "loss", "k3", 0.001)
    assert cfg.rollout.max_response_tokens == 4096 and cfg.data.people == [3, 4, 5, 6, 7]


def test_paper_recipe_maps_to_reinforce_pp_with_k3_kl_loss() -> None:
    got = as_dict(algorithm_overrides(train_config(), VerlClusterConfig()))
    actor = "actor_rollout_ref.actor."
    assert {k: got[k] for k in ("algorithm.adv_estimator", "algorithm.use_kl_in_reward", f"{actor}use_kl_loss",
                                f"{actor}kl_loss_type", f"{actor}kl_loss_coef", f"{actor}optim.lr",
                                f"{actor}ppo_mini_batch_size", f"{actor}clip_ratio_c", f"{actor}loss_agg_mode",
                                f"{actor}optim.betas", f"{actor}optim.weight_decay")} == {
        "algorithm.adv_estimator": "reinforce_plus_plus", "algorithm.use_kl_in_reward": "false",
        f"{actor}use_kl_loss": "true", f"{actor}kl_loss_type": "low_var_kl", f"{actor}kl_loss_coef": "0.001",
        f"{actor}optim.lr": "4e-07", f"{actor}ppo_mini_batch_size": "8", f"{actor}clip_ratio_c": "3.0",
        f"{actor}loss_agg_mode": "token-mean", f"{actor}optim.betas": "[0.9,0.999]",
        f"{actor}optim.weight_decay": "0.01"}  # Logic-RL's veRL fork's AdamW default: its scripts leave it unset
    assert "algorithm.kl_penalty" not in got


@pytest.mark.parametrize("overrides, expected", [
    (["algorithm.advantage=grpo", "algorithm.scale_by_std=false"],
     {"algorithm.adv_estimator": "grpo", "algorithm.norm_adv_by_std_in_grpo": "false"}),
    (["algorithm.advantage=rloo", "algorithm.kl_estimator=k2"],
     {"algorithm.adv_estimator": "rloo", "actor_rollout_ref.actor.kl_loss_type": "mse"}),
    (["algorithm.advantage=reinforce_pp_baseline", "algorithm.kl_estimator=k3+"],
     {"algorithm.adv_estimator": "reinforce_plus_plus_baseline",
      "actor_rollout_ref.actor.kl_loss_type": '"low_var_kl+"'}),
    (["algorithm.kl_placement=reward", "algorithm.kl_estimator=abs", "algorithm.kl_coef=0.05"],
     {"algorithm.use_kl_in_reward": "true", "algorithm.kl_penalty": "abs", "algorithm.kl_ctrl.kl_coef": "0.05",
      "algorithm.kl_ctrl.type": "fixed", "actor_rollout_ref.actor.use_kl_loss": "false"}),
    (["algorithm.kl_placement=reward", "algorithm.kl_estimator=k1", "algorithm.kl_target=0.02"],
     {"algorithm.kl_penalty": "kl", "algorithm.kl_ctrl.type": "adaptive", "algorithm.kl_ctrl.target_kl": "0.02",
      "algorithm.kl_ctrl.horizon": "10000.0"}),
    (["algorithm.dual_clip=null", "algorithm.clip_high=0.28", "algorithm.entropy_coef=0.01"],
     {"actor_rollout_ref.actor.clip_ratio_c": "inf", "actor_rollout_ref.actor.clip_ratio_high": "0.28",
      "actor_rollout_ref.actor.entropy_coeff": "0.01"}),
    (["algorithm.mini_batch_size=16", "algorithm.update_epochs=2", "algorithm.loss_agg=seq-mean-token-sum-norm"],
     {"actor_rollout_ref.actor.ppo_mini_batch_size": "2", "actor_rollout_ref.actor.ppo_epochs": "2",
      "actor_rollout_ref.actor.loss_agg_mode": "seq-mean-token-sum-norm",
      "actor_rollout_ref.actor.loss_scale_factor": "4096.0"}),
])
def test_algorithm_mapping(overrides: list[str], expected: dict[str, str]) -> None:
    got = as_dict(algorithm_overrides(train_config(*overrides), VerlClusterConfig()))
    assert {k: got.get(k) for k in expected} == expected


def test_kl_none_and_critic_only_for_gae() -> None:
    got = as_dict(algorithm_overrides(train_config("algorithm.kl_placement=none"), VerlClusterConfig()))
    assert got["actor_rollout_ref.actor.use_kl_loss"] == "false" and "actor_rollout_ref.actor.kl_loss_type" not in got
    cluster = VerlClusterConfig(micro_batch_per_gpu=2, tensor_parallel=4)
    ppo = as_dict(model_overrides(load_config(TrainConfig, CONFIGS / "paper-ppo.yaml"), cluster, "/m", None))
    assert {k: ppo[k] for k in ("critic.model.path", "critic.optim.lr", "critic.cliprange_value",
                                "critic.ppo_micro_batch_size_per_gpu",
                                "actor_rollout_ref.rollout.tensor_model_parallel_size")} == {
        "critic.model.path": "/m", "critic.optim.lr": "1e-05", "critic.cliprange_value": "0.5",
        "critic.ppo_micro_batch_size_per_gpu": "2", "actor_rollout_ref.rollout.tensor_model_parallel_size": "4"}
    assert not any(k.startswith("critic.") for k in as_dict(model_overrides(train_config(), cluster, "/m", None)))
    # the critic's AdamW betas and gradient clip are the trainer's (veRL's defaults were kept: 0.999, 1.0)
    tuned = load_config(TrainConfig, CONFIGS / "paper-ppo.yaml", ["optim.betas=[0.9,0.95]", "optim.grad_clip=0.5"])
    got = as_dict(model_overrides(tuned, cluster, "/m", None))
    assert (got["critic.optim.betas"], got["critic.optim.clip_grad"]) == ("[0.9,0.95]", "0.5")


def test_reward_overrides() -> None:
    assert as_dict(reward_overrides(train_config())) == {
        "reward.custom_reward_function.path": '"pkg://logicrl.integrations.verl"',
        "reward.custom_reward_function.name": "compute_score",
        "+reward.custom_reward_function.reward_kwargs.prefilled_think": "true"}
    lenient = as_dict(reward_overrides(train_config("reward.mode=logic-rl", "prompt.prefill=''")))
    assert lenient["+reward.custom_reward_function.reward_kwargs.mode"] == "logic-rl"
    assert lenient["+reward.custom_reward_function.reward_kwargs.prefilled_think"] == "false"


@pytest.mark.parametrize("value, expected", [
    (None, "null"), (True, "true"), (4e-7, "4e-07"), (math.inf, "inf"), ([1, "a b"], '[1,"a b"]'),
    ("/data/kk/train.parquet", "/data/kk/train.parquet"), ("null", '"null"'), ("pkg://x.y", '"pkg://x.y"'),
    ("it's", '"it\'s"'), ("say \"hi\" it's", "'say \"hi\" it\\'s'"), ('a"\\', "'a\"\\\\'"), ("${x}", '"\\${x}"'),
    ("/home/josé/run", '"/home/josé/run"'), ("résultats-stage1_3ppl", '"résultats-stage1_3ppl"'),
])
def test_hydra_value(value, expected: str) -> None:
    assert hydra_value(value) == expected


@pytest.mark.parametrize("overrides, message", [
    (["optim.schedule=linear"], "constant and cosine"),
    (["optim.schedule=multistep", "optim.milestones=[3]"], "constant and cosine"),
    (["algorithm.kl_target=0.1"], "kl_placement=reward"),
    (["rollout.stop_at_answer=true"], "stop strings"),
    (["rollout.val_max_response_tokens=100"], "training length"),
    (["algorithm.mini_batch_size=4"], "multiple of rollout.group_size"),
    (["model.lora.lora_dropout=0.1"], "model.lora.lora_dropout: veRL's LoRA has no dropout"),
])
def test_unsupported_settings_are_one_line_errors(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_supported(train_config(*overrides))


@pytest.mark.parametrize("overrides, expected", [
    ([], [(3, 4, 2, "/m"), (4, 2, 2, "R/stage1_3ppl/hf")]),  # 20 // 8 = 2 steps a pass, 10 // 8 = 1
    (["steps=5"], [(3, 4, 2, "/m"), (4, 1, 1, "R/stage1_3ppl/hf")]),
    (["steps=9"], [(3, 4, 2, "/m"), (4, 5, 5, "R/stage1_3ppl/hf")]),  # the last stage is lengthened
    (["data.schedule=mixed"], [((3, 4), 6, 2, "/m")]),  # 30 // 8 = 3 steps a pass
])
def test_curriculum_stages(overrides: list[str], expected: list[tuple]) -> None:
    cfg = train_config("data.epochs=2", *overrides)
    stages = plan_stages(cfg, "/m", {3: 20, 4: 10}, Path("D"), Path("R"))
    got = [(s.people[0] if len(s.people) == 1 else s.people, s.steps, s.epochs, s.model_path) for s in stages]
    assert got == expected
    assert stages[0].train_file == Path("D") / ("train.parquet" if "mixed" in str(overrides) else "train_3ppl.parquet")
    last = stages[-1]
    assert last.last_actor_checkpoint == last.run_dir / "checkpoints" / f"global_step_{last.steps}" / "actor"
    with pytest.raises(ConfigError, match="fill no batch"):
        plan_stages(cfg, "/m", {3: 7}, Path("D"), Path("R"))


def test_a_step_budget_that_ends_a_curriculum_early_is_refused_as_train_refuses_it() -> None:
    """steps=3 ends in the 3-person stage (the 4-person one starts at step 5): `logicrl train` refuses it, and the
    launcher planned the one stage it reached, so the same config trained other stages under veRL."""
    cfg = train_config("data.epochs=2", "steps=3")
    with pytest.raises(DataError, match=r"^steps=3 ends in the 3-person stage of the curriculum \(stages start at "
                                        r"steps 3 people: 1, 4 people: 5\); raise steps to at least 5"):
        plan_stages(cfg, "/m", {3: 20, 4: 10}, Path("D"), Path("R"))


def bash_words(command: str) -> list[str]:
    """The arguments bash passes for a printed command (quotes, line continuations)."""
    script = "printf '%s\\0' " + command
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.split("\0")[:-1]


def launch_args(dataset: Path, out: Path, *extra: str) -> list[str]:
    return ["verl", "launch", "--config", str(CONFIGS / "paper-grpo.yaml"), f"model.name={TINY_MODEL}",
            f"data.train={dataset}", "data.people=[3,4]", f"out_dir={out}", *extra]


def test_dry_run_prints_runnable_commands_and_writes_nothing(dataset: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, launch_args(dataset, tmp_path / "run", "--dry-run", "--gpus-per-node", "4",
                                            "cluster.tensor_parallel=2", "--verl", "trainer.val_only=true"))
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "run").exists()  # (the hand-offs below run in it, as a user's shell would)
    cfg = load_config(TrainConfig, CONFIGS / "paper-grpo.yaml", [f"model.name={TINY_MODEL}", f"data.train={dataset}",
                                                                 "data.people=[3,4]", f"out_dir={tmp_path / 'run'}"])
    plan = plan_launch(cfg, VerlClusterConfig(gpus_per_node=4, tensor_parallel=2), ["trainer.val_only=true"])
    commands = [c for pair in plan.commands for c in pair]
    blocks = [b for b in result.output.split("\n#") if b.lstrip().startswith(("stage", "its last"))]
    printed = [block.split("\n", 1)[1] for block in blocks]
    assert len(printed) == len(commands) == 4  # two stages, each a training run and a hand-off
    assert [bash_words(text) for text in printed[::2]] == commands[::2]
    for stage, hand_off in zip(plan.stages, printed[1::2]):  # the copy, then its rename, run as printed
        stage.saved_hf_dir.mkdir(parents=True)
        save_file({"w": torch.arange(3.0)}, str(stage.saved_hf_dir / "model.safetensors"))
        (stage.saved_hf_dir / "config.json").write_text("{}")
        subprocess.run(["bash", "-c", hand_off], check=True, capture_output=True)
        assert load_file(str(stage.hf_dir / "model.safetensors"))["w"].tolist() == [0.0, 1.0, 2.0]
        assert (stage.hf_dir / "config.json").read_text() == "{}" and not stage.merge_dir.exists()
    train = as_dict(commands[0][3:])
    assert commands[0][:3] == [sys.executable, "-m", "verl.trainer.main_ppo"]
    assert commands[0][-1] == "trainer.val_only=true"  # --verl overrides come last, so they win
    assert train["trainer.n_gpus_per_node"] == "4"
    assert train["actor_rollout_ref.rollout.tensor_model_parallel_size"] == "2"
    assert train["algorithm.adv_estimator"] == "grpo"  # the path quoted for Hydra where it has a space or a '+':
    assert train["data.train_files"] == hydra_value([str(plan.data_dir / "train_3ppl.parquet")])  # (TMPDIR's)
    # veRL's checkpoint manager also writes the fp32 actor as a Hugging Face model; the hand-off copies it
    assert train["actor_rollout_ref.actor.checkpoint.save_contents"] == "[model,optimizer,extra,hf_model]"
    stage1 = plan.stages[0]
    assert commands[1] == [sys.executable, "-m", "logicrl.integrations.verl_handoff",
                           str(stage1.run_dir / f"checkpoints/global_step_{stage1.steps}/actor/huggingface"),
                           str(stage1.run_dir / "hf.partial")]
    merged = Path(commands[1][-1])  # the copy writes hf.partial, renamed to hf when it succeeded
    stage2_model = as_dict(commands[2][3:])["actor_rollout_ref.model.path"]
    assert stage2_model == hydra_value(str(merged.with_name("hf")))  # stage 2 starts from it


@pytest.mark.parametrize("raw", ["foo", "=x", "+=x", "~", "a b=1"])
def test_a_raw_override_hydra_would_refuse_is_refused_at_once(dataset: Path, tmp_path: Path, raw: str) -> None:
    result = runner.invoke(app, launch_args(dataset, tmp_path / "run", "--dry-run", "--verl", "trainer.val_only=true",
                                            "--verl", raw))
    assert isinstance(result.exception, ConfigError) and str(result.exception) == (
        f"--verl {raw!r} is not a veRL (Hydra) override: write key=value (or +key=value, ++key=value, ~key)")


def test_hydra_override_forms_are_accepted() -> None:
    check_raw_overrides(["a.b=1", "a.b=", "+a.b=1", "++a.b=[1,2]", "~a.b", "~a.b=1", "a=b=c", "key@pkg=v"])


@pytest.mark.skipif(importlib.util.find_spec("verl") is not None, reason="veRL is installed here")
def test_launch_without_verl_is_a_one_line_error(dataset: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, launch_args(dataset, tmp_path / "run"))
    assert result.exit_code != 0 and "veRL is not installed" in str(result.exception)
    assert not (tmp_path / "run").exists()


def test_bad_cluster_key_and_export_cli(dataset: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, launch_args(dataset, tmp_path / "run", "--dry-run", "cluster.gpus=4"))
    assert "unknown config key 'cluster.gpus'" in str(result.exception)
    result = runner.invoke(app, ["verl", "export", "--data", str(dataset), "--out", str(tmp_path / "x"),
                                 "--people", "4", "--val-per-people", "2", "prefill="])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == [
        "test.parquet", "test_4ppl.parquet", "train.parquet", "train_4ppl.parquet"]
    again = runner.invoke(app, ["verl", "export", "--data", str(dataset), "--out", str(tmp_path / "x"),
                                "--people", "4", "--val-per-people", "2", "prefill="])
    assert again.exit_code == 0, again.output  # the same export again replaces every file
    before = {p.name: p.read_bytes() for p in (tmp_path / "x").iterdir()}
    for args, stale in ((["--people", "3"], "test_4ppl.parquet, train_4ppl.parquet"),
                        (["--people", "4", "--val-per-people", "0"], "test.parquet, test_4ppl.parquet")):
        refused = runner.invoke(app, ["verl", "export", "--data", str(dataset), "--out", str(tmp_path / "x"), *args,
                                      "prefill="])
        assert f"holds {stale} from an earlier export that this one would not replace" in str(refused.exception)
    assert {p.name: p.read_bytes() for p in (tmp_path / "x").iterdir()} == before
    negative = runner.invoke(app, ["verl", "export", "--data", str(dataset), "--out", str(tmp_path / "y"),
                                   "--val-per-people", "-3"])
    assert negative.exit_code == 2 and "'--val-per-people': Input should be greater than or equal to 0" in negative.output
    assert not (tmp_path / "y").exists()


def test_export_writes_the_chat_template_its_rows_need(dataset: Path, tmp_path: Path) -> None:
    """The rows say prefilled_think, which holds only when veRL renders them with the model's template plus the
    pre-fill: the export writes that template (and a Hydra override of it); with the model's own template the
    rows had no <think>, and a completion that opened its own scored −3."""
    out = tmp_path / "x"
    result = runner.invoke(app, ["verl", "export", "--data", str(dataset), "--out", str(out), "--model", TINY_MODEL])
    assert result.exit_code == 0, result.output
    assert f'"$(cat {out / "chat_template.override"})"' in result.output
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(TINY_MODEL))
    template = (out / "chat_template.jinja").read_text()
    assert template == rollout_chat_template(PromptConfig(), tokenizer.chat_template)
    assert (out / "chat_template.override").read_text() == (
        f"actor_rollout_ref.model.custom_chat_template={hydra_value(template)}\n")
    row = pq.read_table(out / "train.parquet").to_pylist()[0]
    expected = prompt_text(row["reward_model"]["ground_truth"]["quiz"], tokenizer, PromptConfig())
    tokenizer.chat_template = template  # what veRL does with custom_chat_template
    rendered = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    assert row["extra_info"]["prefilled_think"] and rendered == expected and rendered.endswith("<think>")
    # an export that needs no template would leave this one to be read beside its rows
    refused = runner.invoke(app, ["verl", "export", "--data", str(dataset), "--out", str(out), "prefill="])
    assert "holds chat_template.jinja, chat_template.override from an earlier export" in str(refused.exception)
    plain = runner.invoke(app, ["verl", "export", "--data", str(dataset), "--out", str(tmp_path / "p"),
                                "template=plain"])  # a base model's layout: no model template needed
    assert plain.exit_code == 0, plain.output
    assert (tmp_path / "p" / "chat_template.jinja").read_text() == rollout_chat_template(
        PromptConfig(template="plain"), None)


@pytest.mark.parametrize(("model", "message"), [
    ("no-such-org/no-such-model", "is not in the local Hugging Face cache and the hub is unreachable"),
    ("./no/such/model", "model path './no/such/model' does not exist"),
])
def test_a_model_whose_tokenizer_cannot_be_read_is_refused_at_once(dataset, tmp_path, monkeypatch, model, message):
    """The pre-fill needs the model's chat template: an offline hub id used to cost the hub's retries (48 s) and a
    missing path gave Hugging Face's 'Repo id must be in the form' message."""
    from huggingface_hub import constants

    from logicrl.models import loading

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the reason named is the probe's, not the variable
    monkeypatch.setattr(loading, "_hub_reachable", lambda: False)
    cfg = train_config(f"model.name={model}", f"data.train={dataset}", "data.people=[3]",
                       f"out_dir={tmp_path / 'run'}")
    with pytest.raises(ConfigError, match=f"{re.escape(message)}.*or set prompt.prefill=''"):
        plan_launch(cfg, VerlClusterConfig(), [])


HAND_OFF = "logicrl.integrations.verl_handoff"


def test_a_killed_hand_off_is_redone_on_relaunch(dataset, tmp_path, monkeypatch):
    """A copy killed after config.json, before the weights, must not count as a finished stage."""
    from logicrl.integrations import verl_launch

    cfg = load_config(TrainConfig, CONFIGS / "paper-grpo.yaml", [f"model.name={TINY_MODEL}", f"data.train={dataset}",
                                                                 "data.people=[3]", f"out_dir={tmp_path / 'run'}"])
    plan = plan_launch(cfg, VerlClusterConfig(), [])
    (stage,) = plan.stages
    calls = []

    def fake_run(command, check):
        calls.append(command[2])
        if command[2] == HAND_OFF:
            target = Path(command[-1])
            target.mkdir(parents=True, exist_ok=True)
            (target / "config.json").write_text("{}")
            if len(calls) == 2:  # the first merge dies after config.json
                return subprocess.CompletedProcess(command, -9)
            (target / "model.safetensors").write_bytes(b"weights")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(verl_launch.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(verl_launch.subprocess, "run", fake_run)
    with pytest.raises(verl_launch.UserError, match="exited with status -9"):
        verl_launch.run_plan(plan, echo=lambda _: None)
    assert not stage.hf_dir.exists()
    verl_launch.run_plan(plan, echo=lambda _: None)  # relaunch: the stage is not skipped
    assert calls == ["verl.trainer.main_ppo", HAND_OFF] * 2
    assert sorted(p.name for p in stage.hf_dir.iterdir()) == ["config.json", "model.safetensors"]
    assert not stage.merge_dir.exists()
    verl_launch.run_plan(plan, echo=lambda _: None)  # now done: skipped
    assert len(calls) == 4


def test_stage_hand_off_keeps_fp32_weights(dataset, tmp_path, monkeypatch):
    """The hand-off copies veRL's saved Hugging Face actor as it is: fp32 in, the same fp32 out (veRL's model
    merger would cast to bf16), and stage 2 starts from it."""
    from logicrl.integrations import verl_launch

    cfg = load_config(TrainConfig, CONFIGS / "paper-grpo.yaml", [f"model.name={TINY_MODEL}", f"data.train={dataset}",
                                                                 "data.people=[3,4]", f"out_dir={tmp_path / 'run'}"])
    plan = plan_launch(cfg, VerlClusterConfig(), [])
    model, tokenizer = load_model_and_tokenizer(TINY_MODEL, dtype="float32", device="cpu")
    with torch.no_grad():
        next(model.parameters()).add_(1e-4)  # a value bf16 cannot hold exactly
    real_run = subprocess.run

    def fake_run(command, check):
        if command[2] == HAND_OFF:
            return real_run(command, check=check)
        stage = next(s for s in plan.stages if str(s.train_file) in " ".join(command))
        model.save_pretrained(stage.saved_hf_dir)  # what veRL's checkpoint manager writes with hf_model
        tokenizer.save_pretrained(stage.saved_hf_dir)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(verl_launch.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(verl_launch.subprocess, "run", fake_run)
    verl_launch.run_plan(plan, echo=lambda _: None)
    handed, _ = load_model_and_tokenizer(str(plan.stages[0].hf_dir), dtype="auto", device="cpu")
    assert all(v.dtype == torch.float32 and torch.equal(v, model.state_dict()[k])
               for k, v in handed.state_dict().items())
    assert plan.stages[1].model_path == plan.stages[0].hf_dir.as_posix()


@pytest.mark.parametrize("override, key", [("algorithm.reference=initial", "algorithm.reference=stage_start"),
                                           ("optim.stage_reset=false", "optim.stage_reset=true")])
def test_curriculum_that_verl_would_run_differently_is_refused(dataset, tmp_path, override, key):
    base = [f"model.name={TINY_MODEL}", f"data.train={dataset}", f"out_dir={tmp_path / 'run'}"]
    cfg = load_config(TrainConfig, CONFIGS / "paper-grpo.yaml", [*base, "data.people=[3,4]", override])
    with pytest.raises(ConfigError, match=f"not supported by the veRL launcher: .*set {re.escape(key)}"):
        plan_launch(cfg, VerlClusterConfig(), [])
    one_stage = load_config(TrainConfig, CONFIGS / "paper-grpo.yaml", [*base, "data.people=[3]", override])
    assert len(plan_launch(one_stage, VerlClusterConfig(), []).stages) == 1  # one stage: nothing differs


def test_lora_maps_to_verl_lora_keys_in_one_stage_and_is_refused_across_stages(dataset, tmp_path):
    """model.lora was dropped: a veRL run of a LoRA config trained every weight. Its rank, alpha and targets now
    go to actor_rollout_ref.model; a curriculum, whose stage-start reference veRL's LoRA cannot give, is refused."""
    lora = ["model.lora.r=8", "model.lora.lora_alpha=16", "model.lora.target_modules=[q_proj,v_proj]"]
    got = as_dict(model_overrides(train_config(*lora), VerlClusterConfig(), "/m", None))
    assert {k: got[k] for k in got if "lora" in k or "target_modules" in k} == {
        "actor_rollout_ref.model.lora_rank": "8", "actor_rollout_ref.model.lora_alpha": "16.0",
        "actor_rollout_ref.model.target_modules": "[q_proj,v_proj]"}
    full = as_dict(model_overrides(train_config(), VerlClusterConfig(), "/m", None))
    assert not any("lora" in k or "target_modules" in k for k in full)
    base = [f"model.name={TINY_MODEL}", f"data.train={dataset}", f"out_dir={tmp_path / 'run'}", *lora]
    cfg = load_config(TrainConfig, CONFIGS / "paper-grpo.yaml", [*base, "data.people=[3,4]"])
    with pytest.raises(ConfigError, match="not supported by the veRL launcher: model.lora with a curriculum .*"
                                          "use data.schedule=mixed, or one number of people"):
        plan_launch(cfg, VerlClusterConfig(), [])
    mixed = load_config(TrainConfig, CONFIGS / "paper-grpo.yaml", [*base, "data.people=[3,4]", "data.schedule=mixed"])
    assert len(plan_launch(mixed, VerlClusterConfig(), []).stages) == 1
    typo = load_config(TrainConfig, CONFIGS / "paper-grpo.yaml",
                       [*(o for o in base if not o.startswith("model.lora.target_modules=")), "data.people=[3]",
                        "model.lora.target_modules=[q_proj,vproj]"])
    with pytest.raises(UserError, match=r"^model.lora.target_modules: this model has no linear layer named vproj "
                                        r"\(its linear layers: down_proj, gate_proj, k_proj, lm_head, o_proj, q_proj, "
                                        r"up_proj, v_proj\)$"):  # veRL's peft would skip it, or fail on the cluster
        plan_launch(typo, VerlClusterConfig(), [])
    unknown_here = tmp_path / "newer-arch"  # an architecture this machine's transformers does not know: not checked
    unknown_here.mkdir()
    (unknown_here / "config.json").write_text('{"model_type": "made-up-arch", "architectures": ["MadeUpForCausalLM"]}')
    assert saved_model_linear_names(str(unknown_here), trust_remote_code=False) is None
    assert saved_model_linear_names(resolve_model_path(TINY_MODEL), trust_remote_code=False)[:2] == [
        "down_proj", "gate_proj"]


def test_a_lora_checkpoint_as_the_model_is_refused_and_its_merged_copy_is_not(dataset, tmp_path):
    """veRL's model.path must be a full model: an adapter folder was passed on and would only fail on the cluster.
    The merge docs/verl.md gives makes a folder the launcher takes."""
    pytest.importorskip("peft")
    from peft import LoraConfig, get_peft_model

    model, tokenizer = load_model_and_tokenizer(TINY_MODEL, device="cpu")
    adapter = tmp_path / "lora"
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(adapter)
    tokenizer.save_pretrained(adapter)
    base = [f"data.train={dataset}", f"out_dir={tmp_path / 'run'}", "data.people=[3]"]
    cfg = load_config(TrainConfig, CONFIGS / "paper-grpo.yaml", [*base, f"model.name={adapter}"])
    with pytest.raises(ConfigError, match="is a LoRA checkpoint .* save it merged first"):
        plan_launch(cfg, VerlClusterConfig(), [])
    merged, merged_tokenizer = load_model_and_tokenizer(str(adapter), dtype="bfloat16", device="cpu")
    save_pretrained_atomic(merged, merged_tokenizer, tmp_path / "merged")
    cfg = load_config(TrainConfig, CONFIGS / "paper-grpo.yaml", [*base, f"model.name={tmp_path / 'merged'}"])
    assert plan_launch(cfg, VerlClusterConfig(), []).stages[0].model_path == (tmp_path / "merged").as_posix()


def test_an_estimator_veRL_lacks_is_refused_by_its_registry_properties(dataset, tmp_path, monkeypatch):
    """A newly registered estimator runs in `logicrl train` and is refused in one line by the launcher; its
    registry properties (not its name) decide the critic and the group-size check."""
    from logicrl.rl import advantages

    monkeypatch.setitem(advantages.ADVANTAGE_ESTIMATORS, "my_groups", advantages.AdvantageEstimator(
        name="my_groups", fn=lambda batch: None, needs_critic=False, needs_groups=True))
    base = [f"model.name={TINY_MODEL}", f"data.train={dataset}", "data.people=[3]", f"out_dir={tmp_path / 'run'}"]
    with pytest.raises(ConfigError, match="my_groups compares responses to the same puzzle"):
        load_config(TrainConfig, CONFIGS / "paper-grpo.yaml", [*base, "algorithm.advantage=my_groups",
                                                                "rollout.group_size=1"])
    cfg = load_config(TrainConfig, CONFIGS / "paper-grpo.yaml", [*base, "algorithm.advantage=my_groups"])
    with pytest.raises(ConfigError, match=r"^not supported by the veRL launcher: algorithm.advantage=my_groups"):
        plan_launch(cfg, VerlClusterConfig(), [])


@pytest.mark.parametrize("overrides, expected", [
    ([], {"policy_loss.loss_mode": "vanilla", "clip_ratio_low": "0.2", "clip_ratio_high": "0.2"}),
    (["algorithm.policy_loss=gspo", "algorithm.loss_agg=seq-mean-token-mean"],
     {"policy_loss.loss_mode": "gspo", "clip_ratio_low": "0.0003", "clip_ratio_high": "0.0004",
      "loss_agg_mode": "seq-mean-token-mean"}),
    (["algorithm.policy_loss=cispo", "algorithm.clip_high=0.28"],
     {"policy_loss.loss_mode": "cispo", "clip_ratio_low": "1.0", "clip_ratio_high": "0.28"}),
])
def test_policy_loss_mapping_uses_the_loss_own_epsilon(overrides: list[str], expected: dict[str, str]) -> None:
    got = as_dict(algorithm_overrides(train_config(*overrides), VerlClusterConfig()))
    assert {k: got.get(f"actor_rollout_ref.actor.{k}") for k in expected} == expected


def test_a_policy_loss_veRL_lacks_is_refused_in_one_line(monkeypatch) -> None:
    from logicrl.rl import policy_losses

    monkeypatch.setitem(policy_losses.POLICY_LOSSES, "my_loss", policy_losses.PolicyLoss(
        name="my_loss", fn=policy_losses.cispo_loss_with_stats, clip=(0.2, 0.2)))
    with pytest.raises(ConfigError, match=r"^not supported by the veRL launcher: algorithm.policy_loss=my_loss "
                                          r"\(veRL's map from: vanilla, gspo, cispo\)$"):
        check_supported(train_config("algorithm.policy_loss=my_loss"))


def test_tis_maps_to_rollout_correction_and_dapo_sampling_is_refused() -> None:
    cfg = train_config("algorithm.tis_cap=2.0")
    got = as_dict(algorithm_overrides(cfg, VerlClusterConfig()))
    assert (got["algorithm.rollout_correction.rollout_is"], got["algorithm.rollout_correction.rollout_is_threshold"]) \
        == ("token", "2.0")
    assert as_dict(model_overrides(cfg, VerlClusterConfig(), "/m", None))[
        "actor_rollout_ref.rollout.calculate_log_probs"] == "true"
    assert not any("rollout_correction" in k for k in algorithm_overrides(train_config(), VerlClusterConfig()))
    for override, message in (("rollout.dynamic_sampling=true", "no group filter"),
                              ("algorithm.overlong_buffer=512", "no overlong punishment"),
                              ("algorithm.mask_truncated=true", "no overlong filtering"),
                              ("algorithm.trace_check_weight=0.5", "no trace shaping"),
                              ("algorithm.trace_answer_weight=0.5", "no trace shaping"),
                              ("optim.eps=1e-6", "AdamW at its default ε"),
                              ("algorithm.check_line_credit=1", "no per-token credit"),
                              ("algorithm.positive_only=true", "not clamped")):
        with pytest.raises(ConfigError, match=f"^not supported by the veRL launcher: .*{message}"):
            check_supported(train_config(override))


def test_adaptive_schedule_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^not supported by the veRL launcher: data.schedule=adaptive: .* no sampler"):
        check_supported(train_config("data.schedule=adaptive", "algorithm.reference=initial", "optim.stage_reset=false"))
    check_supported(train_config("data.schedule=mixed", "algorithm.reference=initial", "optim.stage_reset=false"))


def test_the_prefill_hint_spells_the_key_as_each_command_takes_it(dataset: Path, tmp_path: Path) -> None:
    """A model without a readable chat template: the hint to drop the pre-fill names launch's key (a TrainConfig
    key, prompt.prefill) and export's (a PromptConfig key, prefill), which refuses prompt.prefill as unknown."""
    missing = tmp_path / "missing"
    broken = tmp_path / "broken"  # a config and a tokenizer config that is not JSON
    broken.mkdir()
    (broken / "config.json").write_text((Path(resolve_model_path(TINY_MODEL)) / "config.json").read_text())
    (broken / "tokenizer_config.json").write_text("{broken")
    gone = (f"model path '{missing}' does not exist: pass a checkpoint directory, a Hugging Face model id, or the "
            "alias smollm2-135m; or set prompt.prefill='' (in verl export: prefill=''): the pre-fill needs the "
            "model's chat template")
    unreadable = (f"cannot read the tokenizer of {broken} to add the prompt pre-fill (Expecting property name "
                  "enclosed in double quotes: line 1 column 2 (char 1)); make the model reachable, or set "
                  "prompt.prefill='' (in verl export: prefill='')")

    def launch_model(model: Path, *extra: str) -> list[str]:
        return [f"model.name={model}" if arg == f"model.name={TINY_MODEL}" else arg
                for arg in launch_args(dataset, tmp_path / "run", *extra)]

    for model, message in ((missing, gone), (broken, unreadable)):
        launch = runner.invoke(app, launch_model(model, "--dry-run"))
        assert isinstance(launch.exception, ConfigError) and str(launch.exception) == message, launch.output
        export = runner.invoke(app, ["verl", "export", "--data", str(dataset), "--out", str(tmp_path / "x"),
                                     "--model", str(model)])
        assert isinstance(export.exception, ConfigError) and str(export.exception) == message, export.output
    # each spelling is the one its command takes
    wrong = runner.invoke(app, ["verl", "export", "--data", str(dataset), "--out", str(tmp_path / "x"),
                                "--model", str(missing), "prompt.prefill="])
    assert "unknown config key 'prompt'" in str(wrong.exception)
    right = runner.invoke(app, ["verl", "export", "--data", str(dataset), "--out", str(tmp_path / "x"),
                                "--model", str(missing), "prefill="])
    assert right.exit_code == 0, right.output
    launched = runner.invoke(app, launch_model(broken, "--dry-run", "prompt.prefill="))
    assert launched.exit_code == 0, launched.output


def test_a_cluster_error_names_the_key_as_it_was_given(dataset: Path, tmp_path: Path) -> None:
    """On the command line a cluster key is cluster.<key> (--nodes is cluster.nodes too); in the --cluster file it
    is the key alone, in that file. A file's bad value that the command line replaces is no error."""
    valid = ", ".join(VerlClusterConfig.model_fields)

    def error(*extra: str) -> str:
        result = runner.invoke(app, launch_args(dataset, tmp_path / "run", "--dry-run", *extra))
        assert isinstance(result.exception, ConfigError), result.output
        return str(result.exception)

    assert error("cluster.nodes=0") == "cluster.nodes: Input should be greater than or equal to 1"
    assert error("--nodes", "0") == "cluster.nodes: Input should be greater than or equal to 1"
    assert error("cluster.foo=1") == f"unknown config key 'cluster.foo' (valid keys: {valid})"
    bad = tmp_path / "cluster.yaml"
    bad.write_text("nodes: 0\n")
    assert error("--cluster", str(bad)) == f"nodes in {bad}: Input should be greater than or equal to 1"
    assert error("--cluster", str(bad), "cluster.tensor_parallel=0") == (  # the first key's, the file's
        f"nodes in {bad}: Input should be greater than or equal to 1 (and 1 more)")
    replaced = runner.invoke(app, launch_args(dataset, tmp_path / "run", "--dry-run", "--cluster", str(bad),
                                              "cluster.nodes=2"))
    assert replaced.exit_code == 0 and "trainer.nnodes=2" in replaced.output, replaced.output
    bad.write_text("tensor_parallel: 0\n")
    assert error("--cluster", str(bad), "cluster.nodes=0") == (  # the first key's, the command line's
        "cluster.nodes: Input should be greater than or equal to 1 (and 1 more)")
    bad.write_text("foo: 1\n")
    assert error("--cluster", str(bad)) == f"unknown config key 'foo' in {bad} (valid keys: {valid})"


def test_a_relaunch_with_other_settings_is_refused_and_the_same_one_resumes(dataset, tmp_path, monkeypatch):
    """A launch again skipped the stages handed over and let veRL resume the rest with whatever it was given now:
    a stage failed at lr 4e-7, relaunched at 1e-5 and group 4, trained on with those (two recipes in one run).
    Now the first launch records its stages (verl/launch.json) and a relaunch that differs is refused."""
    from logicrl.integrations import verl_launch

    base = [f"model.name={TINY_MODEL}", f"data.train={dataset}", "data.people=[3,4]", f"out_dir={tmp_path / 'run'}"]
    plan = plan_launch(load_config(TrainConfig, CONFIGS / "paper-grpo.yaml", base), VerlClusterConfig(), [])
    calls = []

    def fake_run(command, check):
        calls.append(command[2])
        if command[2] == HAND_OFF:
            Path(command[4]).mkdir(parents=True)
            (Path(command[4]) / "config.json").write_text("{}")
        elif "stage2" in " ".join(command) and len(calls) == 3:  # stage 2's first run dies
            return subprocess.CompletedProcess(command, 1)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(verl_launch.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(verl_launch.subprocess, "run", fake_run)
    with pytest.raises(UserError, match="exited with status 1"):
        verl_launch.run_plan(plan, echo=lambda _: None)
    record = (plan.data_dir.parent / "launch.json").read_text()
    changed = load_config(TrainConfig, CONFIGS / "paper-grpo.yaml", [*base, "optim.lr=1e-5", "rollout.group_size=4"])
    with pytest.raises(UserError, match=r"holds a launch with other settings \(stage1_3ppl: "
                                        r"actor_rollout_ref.actor.optim.lr 4e-07 -> 1e-05; .*rollout.n 8 -> 4"):
        verl_launch.run_plan(plan_launch(changed, VerlClusterConfig(), []), echo=lambda _: None)
    other_data = load_config(TrainConfig, CONFIGS / "paper-grpo.yaml", [*base, "prompt.system_prompt='Be brief.'"])
    with pytest.raises(UserError, match=r"other settings \(the puzzles exported"):
        verl_launch.run_plan(plan_launch(other_data, VerlClusterConfig(), []), echo=lambda _: None)
    assert (plan.data_dir.parent / "launch.json").read_text() == record and len(calls) == 3  # nothing ran
    verl_launch.run_plan(plan_launch(load_config(TrainConfig, CONFIGS / "paper-grpo.yaml", base),
                                     VerlClusterConfig(), []), echo=lambda _: None)  # the same: resumed
    assert calls == ["verl.trainer.main_ppo", HAND_OFF, "verl.trainer.main_ppo", "verl.trainer.main_ppo", HAND_OFF]


def test_stages_without_a_launch_record_are_refused(dataset, tmp_path, monkeypatch):
    from logicrl.integrations import verl_launch

    cfg = load_config(TrainConfig, CONFIGS / "paper-grpo.yaml", [f"model.name={TINY_MODEL}", f"data.train={dataset}",
                                                                 "data.people=[3]", f"out_dir={tmp_path / 'run'}"])
    plan = plan_launch(cfg, VerlClusterConfig(), [])
    (plan.data_dir.parent / "stage1_3ppl" / "checkpoints").mkdir(parents=True)  # someone else's, or an old launch's
    monkeypatch.setattr(verl_launch.importlib.util, "find_spec", lambda name: object())
    with pytest.raises(UserError, match=r"holds veRL stages \(stage1_3ppl\) but no launch.json"):
        verl_launch.run_plan(plan, echo=lambda _: None)
    assert not plan.data_dir.exists()  # nothing written

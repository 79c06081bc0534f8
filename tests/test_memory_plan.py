"""The memory plan (logicrl.models.memory_plan, logicrl.rl.memory): parameter counts of the Qwen2.5 shapes by
hand, the paper recipe's components by hand, and the estimate against the peak of live tensor bytes measured
during real CPU steps (SFT and an RL policy step), within 25 %.

Run: ``OMP_NUM_THREADS=1 pytest tests/test_memory_plan.py`` (a few seconds).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from live_bytes import LiveBytes
from transformers import LlamaConfig, LlamaForCausalLM

from logicrl.engine import onednn
from logicrl.engine.compat import enable_activation_checkpointing
from logicrl.engine.decode import generate
from logicrl.engine.head_softmax import head_softmax_works
from logicrl.errors import DataError
from logicrl.models.memory_plan import LORA_TARGETS, MemoryPlan, ModelShape, RunShape, lora_params, plan
from logicrl.rl import memory
from logicrl.rl.config import AlgorithmConfig, TrainConfig
from logicrl.rl.sft import SFTConfig, example_batch, nll_step
from logicrl.rl.update import adamw, policy_step

QWEN_7B = {"model_type": "qwen2", "hidden_size": 3584, "num_hidden_layers": 28, "num_attention_heads": 28,
           "num_key_value_heads": 4, "intermediate_size": 18944, "vocab_size": 152064, "tie_word_embeddings": False}
QWEN_1_5B = {"model_type": "qwen2", "hidden_size": 1536, "num_hidden_layers": 28, "num_attention_heads": 12,
             "num_key_value_heads": 2, "intermediate_size": 8960, "vocab_size": 151936, "tie_word_embeddings": True}
GB = 10**9


def test_qwen_7b_parameters_by_hand():
    h, kv, i, v = 3584, 4 * 128, 18944, 152064
    layer = 2 * h * h + 2 * h * kv + 3 * h * i + (h + 2 * kv) + 2 * h  # q,o; k,v; MLP; q/k/v biases; 2 norms
    expected = 28 * layer + 2 * v * h + h  # untied embedding and head, final norm
    shape = ModelShape.from_config(QWEN_7B)
    assert shape.params == expected == 7_615_616_512  # ≈ 7.6e9, Qwen's "7.61B"


def test_qwen_1_5b_parameters_by_hand():
    h, kv, i, v = 1536, 2 * 128, 8960, 151936
    layer = 2 * h * h + 2 * h * kv + 3 * h * i + (h + 2 * kv) + 2 * h
    shape = ModelShape.from_config(QWEN_1_5B)
    assert shape.params == 28 * layer + v * h + h == 1_543_714_304  # tied: ≈ 1.54e9


def test_missing_keys_are_named():
    with pytest.raises(ValueError, match="intermediate_size"):
        ModelShape.from_config({k: v for k, v in QWEN_7B.items() if k != "intermediate_size"})


def test_lora_has_no_reference_and_trains_adapters_only():
    shape = ModelShape.from_config(QWEN_7B)
    run = RunShape(micro_batch_rows=8, prompt_tokens=512, response_tokens=4096, reference_bytes=2)
    full, lora = plan(shape, run), plan(shape, run, lora_rank=64)
    n_adapter = 28 * 64 * ((3584 + 3584) * 2 + (3584 + 512) * 2 + (3584 + 18944) * 3)
    assert lora_params(shape, 64) == lora.trainable == n_adapter
    assert lora.components["reference"] == 0 and full.components["reference"] == 2 * shape.params
    assert lora.components["gradients"] == 4 * n_adapter and lora.components["optimizer"] == 8 * n_adapter
    with pytest.raises(ValueError, match="unknown LoRA target"):
        lora_params(shape, 8, ("qkv",))


def test_logprob_chunk_bounds_the_logits():
    """Full logits span the micro-batch (8 rows × 4096 tokens); the fused head one chunk of its tokens, plus
    the trained head's gradient accumulator and one chunk's product (V × h each: fp32, the compute dtype)."""
    shape = ModelShape.from_config(QWEN_7B)
    run = RunShape(micro_batch_rows=8, prompt_tokens=512, response_tokens=4096)
    assert plan(shape, run).components["logits"] == 8 * 4096 * 152064 * (4 + 4 + 2 * 4)
    head = 152064 * 3584 * (4 + 4)
    assert plan(shape, run, logprob_chunk=512).components["logits"] == 512 * 152064 * 4 * 4 + head
    bf16 = RunShape(micro_batch_rows=8, prompt_tokens=512, response_tokens=4096, compute_bytes=2,
                    entropy_grad=True)  # fp32 weights: the head's weight cast to bf16 once per pass (V × h × 2)
    assert plan(shape, bf16, logprob_chunk=512).components["logits"] == (512 * 152064 * (4 * 4 + 2 + 3 * 4)
                                                                        + 152064 * 3584 * (2 + 4 + 2))
    frozen_head = plan(shape, bf16, lora_rank=8, logprob_chunk=512).components["logits"]
    assert frozen_head == 512 * 152064 * (16 + 2 + 12) + 152064 * 3584 * 2
    bf16_base = RunShape(**{**bf16.__dict__, "weight_bytes": 2})  # a bf16 LoRA base: no cast
    assert plan(shape, bf16_base, lora_rank=8, logprob_chunk=512).components["logits"] == 512 * 152064 * 30
    compiled = RunShape(**{**bf16.__dict__, "compiled_head": True})  # the logits and their gradient, in bf16
    assert plan(shape, compiled, logprob_chunk=512).components["logits"] == (512 * 152064 * 2 * 2
                                                                            + 152064 * 3584 * (2 + 4 + 2))
    short = RunShape(micro_batch_rows=2, prompt_tokens=512, response_tokens=100)  # fewer tokens than a chunk
    assert plan(shape, short, logprob_chunk=512).components["logits"] == 200 * 152064 * 4 * 4 + head


def paper_config(**changes) -> TrainConfig:
    raw = yaml.safe_load(Path("configs/paper-reinforce-pp.yaml").read_text())
    for key, value in changes.items():
        section, name = key.split(".")
        raw[section][name] = value
    return TrainConfig.model_validate(raw)


def test_paper_recipe_7b_by_hand_does_not_fit_80_gb():
    cfg, shape = paper_config(**{"algorithm.logprob_chunk": None}), ModelShape.from_config(QWEN_7B)  # full logits
    n = shape.params
    memory_plan = plan(shape, memory.train_run_shape(cfg, on_cuda=True))
    c = memory_plan.components
    tokens = 8 * (512 + 4096)  # checkpointing turns the cache off: the log-probs run every row whole
    assert (c["weights"], c["gradients"], c["optimizer"], c["reference"]) == (4 * n, 4 * n, 8 * n, 2 * n)
    assert c["logits"] == 8 * 4096 * 152064 * (2 + 4 + 4 + 2 * 4)  # bf16, fp32 copy, log_softmax, entropy's 2
    layer = tokens * (10 * 3584 + 4 * 512 + 4 * 18944) * 2  # one recomputed layer: less than the logits
    assert layer < c["logits"] and c["activations"] == tokens * 28 * 3584 * 4  # the fp32 layer boundaries
    assert c["kv_cache"] == 28 * 2 * 4 * 128 * 2 * 8 * 8 * (512 + 4096)  # bf16 cache (autocast), prompt per row
    assert 18 * n > 80 * GB  # weights + gradients + AdamW + bf16 reference: 137 GB before any activation
    line = memory.fixes(memory_plan, cfg, "train", 80 * GB)
    assert "logicrl verl launch" in line[0] and "model.lora.r=" in line[0]
    assert any("algorithm.logprob_chunk" in knob for knob in line)


def test_7b_lora_with_chunked_logprobs_and_bf16_weights_fits_80_gb():
    run = memory.train_run_shape(paper_config(), on_cuda=True)
    run = RunShape(**{**run.__dict__, "weight_bytes": 2})
    assert plan(ModelShape.from_config(QWEN_7B), run, lora_rank=64, logprob_chunk=512).total < 80 * GB


def test_the_run_config_knobs_reach_the_plan():
    """model.lora (bf16 base under 'auto' on CUDA; the paper's reference=stage_start is a frozen fp32 copy of
    the adapter, the initial reference none) and algorithm.logprob_chunk, from the config."""
    shape = ModelShape.from_config(QWEN_7B)
    cfg = paper_config(**{"model.lora": {"r": 64}, "algorithm.logprob_chunk": 512})
    fitted = memory.train_plan(cfg, shape, on_cuda=True)
    c = fitted.components
    assert fitted.trainable == lora_params(shape, 64) and c["reference"] == 4 * fitted.trainable
    initial = paper_config(**{"model.lora": {"r": 64}, "algorithm.reference": "initial"})
    assert memory.train_plan(initial, shape, on_cuda=True).components["reference"] == 0
    assert c["weights"] == 2 * shape.params + 4 * fitted.trainable
    assert c["logits"] == 512 * 152064 * (4 * 4 + 2)  # the fused head, a bf16 chunk; a frozen head: no grads
    full_logits = paper_config(**{"algorithm.logprob_chunk": None})
    assert memory.train_plan(full_logits, shape, on_cuda=True).components["logits"] == 8 * 4096 * 152064 * 18
    bonus = paper_config(**{"model.lora": {"r": 64}, "algorithm.entropy_coef": 0.01})
    assert memory.train_plan(bonus, shape, on_cuda=True).components["logits"] == 512 * 152064 * (18 + 3 * 4)
    assert fitted.total < 80 * GB


def test_the_sft_config_knobs_reach_the_plan():
    """SFT's logprob_chunk bounds the logits (the default 512 against null: full logits), packed or not."""
    shape = ModelShape.from_config(QWEN_7B)
    sft = {"model": {"name": "x"}, "data": {"train": "d"}, "max_response_tokens": 4096}
    logits = {(packing, chunk): memory.sft_plan(SFTConfig(**sft, packing=packing, logprob_chunk=chunk), shape,
                                                on_cuda=True).components["logits"]
              for packing in (False, True) for chunk in (512, None)}
    full = 8 * 4096 * 152064 * (2 + 4 + 4)  # micro-batch 8, no entropy
    assert logits[False, None] == logits[True, None] == full
    assert logits[False, 512] == logits[True, 512] == 512 * 152064 * (4 * 4 + 2) + 152064 * 3584 * (2 + 4 + 2)


def test_model_config_reads_local_dirs_aliases_and_never_the_network(tmp_path):
    (tmp_path / "q7").mkdir()
    (tmp_path / "q7" / "config.json").write_text(json.dumps(QWEN_7B))
    assert memory.model_config(str(tmp_path / "q7")) == QWEN_7B
    assert memory.model_config("smollm2-135m", cache_dir=tmp_path)["hidden_size"] == 576  # known, not built
    assert memory.model_config(str(tmp_path / "missing")) is None
    assert memory.model_config("no-such-org/no-such-model-3f9a") is None  # not in the HF cache: no download
    (tmp_path / "lora").mkdir()  # a LoRA checkpoint: its base model's config (a folder, or an alias's entry)
    (tmp_path / "lora" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tmp_path / "q7")}))
    assert memory.model_config(str(tmp_path / "lora")) == QWEN_7B
    gone_entry = str(tmp_path / "moved" / "models" / "smollm2-135m")  # a cache entry on another machine
    (tmp_path / "lora" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": gone_entry}))
    with pytest.warns(UserWarning, match="is gone; it is named as the cache entry of the alias 'smollm2-135m'"):
        assert memory.model_config(str(tmp_path / "lora"), cache_dir=tmp_path)["hidden_size"] == 576
    (tmp_path / "q7" / "config.json").write_text('{"hidden_size": 5,')
    with pytest.raises(DataError, match=r"q7/config.json: not valid JSON \(.*line 1\): the model directory is damaged"):
        memory.model_config(str(tmp_path / "q7"))


def test_tiny_alias_known_config_matches_the_built_model():
    from logicrl.models.tiny import build_tiny_model

    model, _ = build_tiny_model()
    known = ModelShape.from_config(memory.KNOWN_ALIAS_CONFIGS["tiny-random"])
    assert known.params == sum(p.numel() for p in model.parameters())


# --- estimate against measurement ----------------------------------------------------------------------


def test_live_bytes_counts_allocations_and_frees():
    tracker = LiveBytes()
    with tracker:
        a = torch.ones(1000)  # 4000 B
        b = a * 2
        del b
        c = a.view(10, 100) + 1
    assert tracker.peak == 8000 and tracker.current == 8000
    del a, c


SHAPE = {"model_type": "llama", "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
         "num_key_value_heads": 2, "intermediate_size": 688, "vocab_size": 8192, "tie_word_embeddings": True}
ROWS, PROMPT, RESPONSE, GROUP = 4, 64, 128, 4


def _model_and_batch(checkpointing: bool, group: int):
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**SHAPE, pad_token_id=0))
    if checkpointing:
        enable_activation_checkpointing(model)
    model.train()
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(1, SHAPE["vocab_size"], (PROMPT,), generator=g).tolist() for _ in range(ROWS // group)]
    targets = [torch.randint(1, SHAPE["vocab_size"], (RESPONSE,), generator=g).tolist() for _ in range(ROWS)]
    batch = example_batch([p for p in prompts for _ in range(group)], targets, 0)
    return model, batch


def _measure(model, optimizer, batch, step) -> int:
    """Peak live bytes of the second ``step`` (AdamW's state exists), counting weights, state and inputs."""
    step()
    tracker = LiveBytes()
    state = [v for s in optimizer.state.values() for v in s.values()]
    for tensor in [*model.parameters(), *model.buffers(), *state, batch.prompt_ids, batch.prompt_mask,
                   batch.response_ids, batch.mask]:
        tracker.add(tensor)
    with tracker:
        step()
    return tracker.peak


@pytest.mark.parametrize("checkpointing", [False, True])
@pytest.mark.parametrize("chunk", [None, 128])  # 128: the fused head, a quarter of the micro-batch's tokens
def test_sft_step_estimate_within_25_percent(checkpointing, chunk):
    model, batch = _model_and_batch(checkpointing, group=1)
    optimizer = adamw(model.parameters(), lr=1e-4)

    def step():  # SFTTrainer.fit's step
        nll_step(model, batch, ROWS, logprob_chunk=chunk)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    measured = _measure(model, optimizer, batch, step)
    run = RunShape(micro_batch_rows=ROWS, prompt_tokens=PROMPT, response_tokens=RESPONSE, entropy=False,
                   gradient_checkpointing=checkpointing, compiled_head=head_softmax_works())
    estimate = plan(ModelShape.from_config(SHAPE), run, logprob_chunk=chunk).total
    print(f"SFT step, checkpointing={checkpointing}, chunk={chunk}: measured {measured / 1e6:.1f} MB, "
          f"estimated {estimate / 1e6:.1f} MB")
    assert abs(estimate - measured) <= 0.25 * measured


@pytest.mark.parametrize("checkpointing", [False, True])
@pytest.mark.parametrize(("chunk", "entropy_coef"), [(None, 0.0), (512, 0.0), (128, 0.0), (128, 0.01)])
def test_rl_policy_step_estimate_within_25_percent(checkpointing, chunk, entropy_coef):
    model, batch = _model_and_batch(checkpointing, group=GROUP)
    batch.advantages = torch.randn(batch.mask.shape, generator=torch.Generator().manual_seed(1))
    batch.ref_logp = torch.full(batch.mask.shape, -5.0)
    optimizer = adamw(model.parameters(), lr=1e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    algo = AlgorithmConfig(micro_batch_size=ROWS, logprob_chunk=chunk, entropy_coef=entropy_coef)

    def step():  # one optimizer step of the paper's loss (clipped surrogate + k3 KL), entropy as a statistic
        policy_step(model, optimizer, scheduler, batch, algo, kl_coef=0.001, temperature=0.7, norm_constant=None,
                    grad_clip=1.0, on_policy=True)

    measured = _measure(model, optimizer, batch, step)
    run = RunShape(micro_batch_rows=ROWS, prompt_tokens=PROMPT, response_tokens=RESPONSE,
                   rows_per_prompt=1 if checkpointing else GROUP, gradient_checkpointing=checkpointing,
                   entropy_grad=entropy_coef > 0, compiled_head=head_softmax_works())
    estimate = plan(ModelShape.from_config(SHAPE), run, logprob_chunk=chunk).total
    print(f"RL policy step, checkpointing={checkpointing}, chunk={chunk}, entropy_coef={entropy_coef}: "
          f"measured {measured / 1e6:.1f} MB, "
          f"estimated {estimate / 1e6:.1f} MB")
    assert abs(estimate - measured) <= 0.25 * measured


def test_rollout_weights_by_hand():
    """The rollout engine's weight copies, Qwen2.5-7B: fp32 master weights rolled out in bf16 copy every
    projection and the head (2 bytes each); a bf16 LoRA base only the merged targets; fp32 weights rolled out in
    fp32 nothing; a CPU everything (packed) and the merged targets beside it. The rollout phase holds them."""
    shape = ModelShape.from_config(QWEN_7B)
    linears = {name: i * o for name, (i, o) in shape.linears().items()}
    everything = 28 * sum(linears.values()) + 152064 * 3584
    assert everything == shape.params - 152064 * 3584 - 28 * (3584 + 512 + 512 + 2 * 3584) - 3584  # all but
    # the embedding, the q/k/v biases and the norms
    qv = 28 * (linears["q_proj"] + linears["v_proj"])

    def rollout(lora_rank=None, **run):
        run = RunShape(micro_batch_rows=1, prompt_tokens=512, response_tokens=256, rollout_prompts=8,
                       rollout_group=8, rollout_tokens=256, **run)
        return plan(shape, run, lora_rank=lora_rank, lora_targets=("q_proj", "v_proj")).components["rollout_weights"]

    assert rollout(weight_bytes=4, kv_bytes=2) == 2 * everything
    assert rollout(weight_bytes=4, kv_bytes=4) == 0
    assert rollout(lora_rank=16, weight_bytes=2, kv_bytes=2) == 2 * qv
    assert rollout(lora_rank=16, weight_bytes=4, kv_bytes=4, engine_copies_all=True) == 4 * (everything + qv)
    memory_plan = plan(shape, RunShape(micro_batch_rows=1, prompt_tokens=512, response_tokens=256,
                                       rollout_prompts=8, rollout_group=8, rollout_tokens=256, weight_bytes=2,
                                       kv_bytes=2), lora_rank=16)
    c = memory_plan.components
    assert memory_plan.rollout == c["kv_cache"] + c["rollout_weights"] > memory_plan.update
    assert memory_plan.total == c["weights"] + c["optimizer"] + memory_plan.rollout  # gradients: the update's


@pytest.mark.parametrize("lora", [False, True])
@pytest.mark.parametrize("packed", [False, True])
def test_rollout_estimate_within_25_percent(lora, packed, monkeypatch):
    """Peak live bytes of a real fast-engine rollout (2 prompts × 4 samples × 128 tokens after 64), the model's
    weights counted, against the plan's weights + KV cache + rollout weights: a full model and one with a LoRA
    adapter on all 7 projections; with oneDNN's packed copies (a CPU's default) and without them (as on a GPU)."""
    if packed and not onednn.onednn_support().linear:
        pytest.skip("no working oneDNN linear ops")
    if not packed:
        monkeypatch.setattr(onednn, "onednn_support", lambda: onednn.OneDNNSupport(linear=False, bf16=False))
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**SHAPE, pad_token_id=0)).eval()
    targets = LORA_TARGETS
    if lora:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=8, lora_alpha=16, target_modules=list(targets), init_lora_weights=False)
        model = get_peft_model(model, config).get_base_model()
    g = torch.Generator().manual_seed(0)
    prompts, group = [torch.randint(1, SHAPE["vocab_size"], (PROMPT,), generator=g).tolist() for _ in range(2)], 4
    tracker = LiveBytes()
    for tensor in [*model.parameters(), *model.buffers()]:
        tracker.add(tensor)
    with tracker, torch.no_grad():
        out = generate(model, prompts, n=group, max_new_tokens=RESPONSE, pad_token_id=0, stop_token_ids=(), seed=0,
                       engine="fast")
    assert int(out.response_mask.sum()) == 2 * group * RESPONSE  # every row ran to its cap, the plan's bound
    run = RunShape(micro_batch_rows=1, prompt_tokens=PROMPT, response_tokens=RESPONSE, rollout_prompts=2,
                   rollout_group=group, rollout_tokens=RESPONSE, engine_copies_all=packed)
    memory_plan = plan(ModelShape.from_config(SHAPE), run, lora_rank=8 if lora else None, lora_targets=targets)
    estimate = memory_plan.components["weights"] + memory_plan.rollout
    print(f"rollout, lora={lora}, packed={packed}: measured {tracker.peak / 1e6:.1f} MB, "
          f"estimated {estimate / 1e6:.1f} MB")
    assert abs(estimate - tracker.peak) <= 0.25 * tracker.peak


def test_a_lora_run_whose_rollout_does_not_fit_is_told_its_knobs():
    """The paper's 7B recipe with LoRA on a GPU: the rollout (KV cache 15.8 GiB + the merged copy 12.2) is the
    larger phase, so the fixes name the rollout's batch and the adapted projections, not the micro-batch."""
    cfg = paper_config(**{"model.lora": {"r": 16}})
    memory_plan = memory.train_plan(cfg, ModelShape.from_config(QWEN_7B), on_cuda=True)
    assert memory_plan.rollout > memory_plan.update
    knobs = memory.fixes(memory_plan, cfg, "train", 40 * 1024**3)
    assert any("rollout.group_size" in knob for knob in knobs)
    assert any("model.lora.target_modules" in knob for knob in knobs)
    assert not any("micro_batch_size" in knob for knob in knobs)


def small_train_config(**algorithm) -> TrainConfig:
    return TrainConfig.model_validate({"model": {"name": "x"}, "data": {"train": "d"},
                                       "rollout": {"max_response_tokens": 1000},
                                       "algorithm": {"micro_batch_size": 8, **algorithm}})


def test_micro_batch_tokens_cap_the_micro_batch_rows():
    """micro_batch_tokens 3000 over responses of 1000 tokens: 3 rows a micro-batch, not micro_batch_size 8."""
    assert memory.train_run_shape(small_train_config(micro_batch_tokens=3000), on_cuda=False).micro_batch_rows == 3


def test_cpu_bfloat16_runs_its_activations_in_bfloat16():
    """On CPU autocast runs bf16 only: bf16 weights give 2-byte activations, fp32 ones 4-byte."""
    assert memory._compute_bytes("bfloat16", False) == (2, 2)
    assert memory._compute_bytes("float32", False) == (4, 4)


def test_rft_rolls_out_a_group_of_rft_samples():
    """mode=rft with rft_samples 8: 32 // 8 = 4 prompts a rollout, 8 samples each."""
    shape = memory.sft_run_shape(SFTConfig(model={"name": "x"}, data={"train": "d"}, mode="rft", rft_samples=8),
                                 False)
    assert (shape.rollout_prompts, shape.rollout_group) == (4, 8)


def test_memory_total_is_meminfo_kib_in_bytes():
    """/proc/meminfo gives MemTotal in KiB: memory_total is that times 1024."""
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        pytest.skip("no /proc/meminfo")
    kib = next(int(line.split()[1]) for line in meminfo.read_text().splitlines() if line.startswith("MemTotal:"))
    assert memory.memory_total() == kib * 1024


def test_weights_that_fit_only_without_their_gradients_do_not_fit_one_device():
    """Weights 40 + optimizer 80 fit 150, with the gradients' 40 they do not: the first fix says so."""
    fitted = MemoryPlan(components={"weights": 40, "optimizer": 80, "reference": 0, "critic": 0, "gradients": 40,
                                    "logits": 1, "activations": 1, "kv_cache": 1, "rollout_weights": 0},
                         params=10, trainable=10)
    knobs = memory.fixes(fitted, small_train_config(), "train", 150)
    assert "does not fit one device" in knobs[0]

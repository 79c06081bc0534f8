"""SFT: targets score 3 under the reward, the loss covers response tokens only, training fits, resume, RFT."""

from __future__ import annotations

import json
import re
import shutil
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoTokenizer

import logicrl.rl.sft as sft_module
from logicrl.errors import DataError, UserError
from logicrl.io import FolderLock, write_jsonl
from logicrl.models import build_tiny_model, resolve_model_path
from logicrl.prompts import PromptConfig, encode_prompts, end_of_turn_id, response_target
from logicrl.reward import score
from logicrl.rl.checkpoints import list_checkpoints, resume_config
from logicrl.rl.run_log import read_metrics
from logicrl.rl.schedule import load_puzzles
from logicrl.rl.sft import RFT_FILE, SFTConfig, SFTTrainer, example_batch, fit_examples, nll_step, target_ids


def make_config(puzzle_dir, out_dir, **changes) -> SFTConfig:
    return SFTConfig.model_validate({
        "model": {"name": "tiny-random", "device": "cpu"},
        "data": {"train": str(puzzle_dir), "val_puzzles_per_people": 1, "people": [2], "epochs": 2},
        "batch_size": 4, "micro_batch_size": 2, "lr": 3e-3, "max_response_tokens": 64, "long_targets": "truncate",
        "out_dir": str(out_dir), "threads": 1, **changes,
    })


@pytest.mark.parametrize("prefill", ["<think>", ""])
def test_template_targets_get_the_full_reward(puzzle_dir, prefill):
    prompt = PromptConfig(prefill=prefill)
    for record in load_puzzles(puzzle_dir, "train"):
        verdict = score(response_target(record, prompt), record["solution_text_format"],
                        prefilled_think=prompt.prefilled_think, roles=record["knight_knave"], question=record["quiz"])
        assert verdict.total == 3.0, verdict.format_reason or verdict.answer_reason


def test_long_targets_are_counted_then_dropped_or_cut():
    examples = [([1], [5, 6, 7, 2]), ([1], [5, 2]), ([1], [5, 6, 7, 8, 9, 2])]
    assert fit_examples(examples, 4, "drop") == ([([1], [5, 6, 7, 2]), ([1], [5, 2])], 1)
    assert fit_examples(examples, 4, "truncate") == ([([1], [5, 6, 7, 2]), ([1], [5, 2]), ([1], [5, 6, 7, 8])], 1)


def test_sft_warns_about_long_targets(puzzle_dir, tmp_path):
    _, tokenizer = build_tiny_model()
    records = load_puzzles(puzzle_dir, "train", [2])
    lengths = sorted(len(t) for t in target_ids([response_target(r, PromptConfig()) for r in records], tokenizer))
    cap = max(n for n in lengths if n < lengths[-1])  # the longest targets go, and a batch of 8 remains
    long = sum(n > cap for n in lengths)
    assert 0 < long <= len(lengths) - 8
    config = SFTConfig(model={"name": "tiny-random", "device": "cpu"}, data={"train": puzzle_dir, "people": [2],
                       "val_puzzles_per_people": 0}, max_response_tokens=cap, out_dir=tmp_path / "run", threads=1)
    with pytest.warns(UserWarning, match=f"{long} of 12 targets are longer than max_response_tokens={cap} tokens "
                      "and were dropped"):
        trainer = SFTTrainer(config, show_progress=False)
    assert len(trainer.examples) == 12 - long and all(len(t) <= cap for _, t in trainer.examples)


def test_loss_is_the_mean_nll_of_response_tokens_only():
    model, tokenizer = build_tiny_model()
    prompts = [[5, 6, 7, 8], [9, 10]]
    targets = target_ids(["Alice is a knight", "no"], tokenizer)
    assert all(t[-1] == end_of_turn_id(tokenizer) for t in targets)
    batch = example_batch(prompts, targets, tokenizer.pad_token_id)
    loss = nll_step(model, batch, micro_batch_size=1)
    terms = []
    for prompt, target in zip(prompts, targets):
        ids = torch.tensor([prompt + target])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0].float(), -1)
        terms += [logp[len(prompt) - 1 + t, tok] for t, tok in enumerate(target)]
    assert loss == pytest.approx(-float(torch.stack(terms).mean()), rel=1e-5)


def test_sft_fits_its_examples_and_resumes_exactly(puzzle_dir, tmp_path):
    SFTTrainer(make_config(puzzle_dir, tmp_path / "a", save_every=2), show_progress=False).fit()
    losses = [m["loss"] for m in read_metrics(tmp_path / "a", "train")]
    assert len(losses) == 6 and losses[-1] < losses[0]
    val = read_metrics(tmp_path / "a", "val")
    assert [m["step"] for m in val] == [6] and "val/acc/2ppl" in val[0]
    assert val[0]["val/loss"] == pytest.approx(_template_nll(tmp_path / "a", puzzle_dir), rel=1e-4)

    crashing = SFTTrainer(make_config(puzzle_dir, tmp_path / "b", save_every=2), show_progress=False)
    crashing.log.metrics = _crash_after(crashing.log.metrics, step=3)
    with pytest.raises(RuntimeError):
        crashing.fit()
    resumed = SFTTrainer(resume_config(SFTConfig, tmp_path / "b"), resume=True, show_progress=False)
    assert resumed.start_step == 3
    resumed.fit()
    strip = lambda rows: [{k: v for k, v in r.items() if not k.startswith(("time", "tokens_per_s"))} for r in rows]
    assert strip(read_metrics(tmp_path / "a")) == strip(read_metrics(tmp_path / "b"))


def test_sft_without_validation_puzzles(puzzle_dir, tmp_path):
    config = make_config(puzzle_dir, tmp_path, data={"train": str(puzzle_dir), "val_puzzles_per_people": 0,
                                                     "people": [2], "epochs": 1})
    trainer = SFTTrainer(config, show_progress=False)
    assert encode_prompts([], trainer.tokenizer, config.prompt) == [] == target_ids([], trainer.tokenizer)
    assert trainer.fit() == {}
    assert read_metrics(tmp_path, "val") == [] and len(read_metrics(tmp_path, "train")) == len(trainer.schedule) > 0


@pytest.mark.parametrize("chunk", [512, None])
def test_sft_takes_the_fused_head_by_default(puzzle_dir, tmp_path, chunk):
    """By default (logprob_chunk 512) the training forwards stop at the final hidden states and the fused head
    projects the target tokens, so the output-embedding module never runs with grad; null: full logits."""
    trainer = SFTTrainer(make_config(puzzle_dir, tmp_path, logprob_chunk=chunk), show_progress=False)
    calls = []
    trainer.model.get_output_embeddings().register_forward_hook(
        lambda module, args, out: calls.append(1) if torch.is_grad_enabled() else None)
    trainer.fit()
    assert (len(calls) > 0) == (chunk is None)


def test_logged_lr_is_the_steps_own(puzzle_dir, tmp_path):
    """Warm-up over 2 steps, then constant: steps 1, 2, 3 update at lr / 2, lr, lr."""
    config = make_config(puzzle_dir, tmp_path, schedule="constant", warmup_steps=2)
    SFTTrainer(config, show_progress=False).fit()
    assert [m["lr"] for m in read_metrics(tmp_path, "train")][:3] == [1.5e-3, 3e-3, 3e-3]


def _template_nll(run_dir, puzzle_dir) -> float:
    """Token-mean NLL of the held-out puzzles' template targets under the final checkpoint, one full forward each."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    checkpoint = json.loads((run_dir / "summary.json").read_text())["checkpoint"]
    model, tokenizer = AutoModelForCausalLM.from_pretrained(checkpoint), AutoTokenizer.from_pretrained(checkpoint)
    records = load_puzzles(puzzle_dir, "test", [2])[:1]  # val_puzzles_per_people=1
    terms = []
    for prompt, target in zip(encode_prompts(records, tokenizer, PromptConfig()),
                              [t[:64] for t in target_ids([response_target(r, PromptConfig()) for r in records],
                                                          tokenizer)]):  # max_response_tokens=64
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([prompt + target])).logits[0].float(), -1)
        terms += [logp[len(prompt) - 1 + t, tok] for t, tok in enumerate(target)]
    return -float(torch.stack(terms).mean())


def _crash_after(log_metrics, step):
    def wrapped(kind, at, values):
        log_metrics(kind, at, values)
        if at == step:
            raise RuntimeError("killed")
    return wrapped


def test_rft_trains_on_solved_distinct_samples_only(puzzle_dir, tmp_path, monkeypatch):
    """A run from step 1 samples afresh (a file an earlier start left is replaced); a resume from a checkpoint
    reads the samples it trained on back, and refuses to go on without them."""
    records = load_puzzles(puzzle_dir, "train", [2])
    good = response_target(records[0], PromptConfig())
    rows = [{"id": records[0]["id"], "response": good, "solved": True},
            {"id": records[0]["id"], "response": good, "solved": True},  # duplicate: kept once
            {"id": records[1]["id"], "response": "nonsense", "solved": False}]
    sampled, calls = {"rows": rows}, []
    monkeypatch.setattr(sft_module, "generate_and_score",
                        lambda *args, **kwargs: (calls.append(kwargs), sampled["rows"])[1])
    run = tmp_path / "rft"
    write_jsonl(run / RFT_FILE, [{"id": records[1]["id"], "response": good, "solved": True}])  # a stale file
    config = make_config(puzzle_dir, run, mode="rft", batch_size=1, micro_batch_size=1, save_every=1)
    trainer = SFTTrainer(config, show_progress=False)  # 2 epochs of the 1 example: 2 steps
    assert len(trainer.examples) == 1
    expected = encode_prompts([records[0]], trainer.tokenizer, config.prompt)[0]
    assert trainer.examples[0][0] == expected
    assert [json.loads(line) for line in (run / RFT_FILE).read_text().splitlines()] == rows
    (call,) = calls  # rft_samples draws per puzzle, sampled at rft_temperature from the run's seed
    assert (call["n"], call["greedy"], call["temperature"], call["seed"]) == (
        config.rft_samples, False, config.rft_temperature, config.seed)
    trainer.log.metrics = _crash_after(trainer.log.metrics, step=2)  # after step 1's checkpoint
    with pytest.raises(RuntimeError):
        trainer.fit()

    sampled["rows"] = []  # a resume must not sample (its model is the checkpoint's): it reads the file back
    resumed = SFTTrainer(resume_config(SFTConfig, run), resume=True, show_progress=False)
    assert resumed.start_step == 2 and resumed.examples == trainer.examples
    resumed.run_lock.release()
    write_jsonl(run / RFT_FILE, [{**rows[0], "id": "kk2-gone"}])  # the data changed: a KeyError before
    with pytest.raises(UserError, match="1 sampled puzzle.*not among the training puzzles .e.g. kk2-gone"):
        SFTTrainer(resume_config(SFTConfig, run), resume=True, show_progress=False)
    (run / RFT_FILE).unlink()
    with pytest.raises(DataError, match="rft_samples.jsonl: missing.*start a new run"):
        SFTTrainer(resume_config(SFTConfig, run), resume=True, show_progress=False)

    sampled["rows"] = rows[2:]
    with pytest.raises(DataError, match="none of 1 samples solved"):
        SFTTrainer(make_config(puzzle_dir, tmp_path / "none", mode="rft"), show_progress=False)
    assert json.loads((tmp_path / "none" / RFT_FILE).read_text())["solved"] is False


def test_sft_says_what_its_batches_leave_out(puzzle_dir, tmp_path):
    """Each epoch drops its last partial batch: said with the count; a batch that no epoch fills names SFT's key."""
    with pytest.warns(UserWarning, match="2 of 12 examples are left out of each epoch"):
        SFTTrainer(make_config(puzzle_dir, tmp_path / "five", batch_size=5), show_progress=False).run_lock.release()
    with pytest.raises(DataError, match=r"12 puzzles cannot fill one batch of 13 \(lower batch_size or add"):
        SFTTrainer(make_config(puzzle_dir, tmp_path / "big", batch_size=13, micro_batch_size=1),
                   show_progress=False)


def test_sft_resume_refuses_examples_that_changed(puzzle_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(puzzle_dir, data)
    crashing = SFTTrainer(make_config(data, tmp_path / "run", save_every=2), show_progress=False)
    crashing.log.metrics = _crash_after(crashing.log.metrics, step=3)
    with pytest.raises(RuntimeError):
        crashing.fit()
    train = data / "2ppl" / "train.jsonl"
    lines = train.read_text().splitlines()
    train.write_text("\n".join(reversed(lines)) + "\n")  # the same puzzles, regenerated in another order
    (data / "2ppl" / "train.parquet").unlink(missing_ok=True)
    with pytest.raises(UserError, match="the training examples or their order changed"):
        SFTTrainer(resume_config(SFTConfig, tmp_path / "run"), resume=True, show_progress=False)


def test_sft_stopped_before_its_first_checkpoint_starts_over(puzzle_dir, tmp_path, capsys):
    """No checkpoint (save_every=0, the default): --resume starts the run over, and its logs are those of an
    uninterrupted run; a resume of the finished run keeps its final validation in summary.json."""
    SFTTrainer(make_config(puzzle_dir, tmp_path / "a"), show_progress=False).fit()
    crashing = SFTTrainer(make_config(puzzle_dir, tmp_path / "b"), show_progress=False)
    crashing.log.metrics = _crash_after(crashing.log.metrics, step=3)
    with pytest.raises(RuntimeError):
        crashing.fit()
    resumed = SFTTrainer(resume_config(SFTConfig, tmp_path / "b"), resume=True, show_progress=False)
    assert resumed.start_step == 1 and "starts over from step 1" in capsys.readouterr().err
    resumed.fit()
    strip = lambda rows: [{k: v for k, v in r.items() if not k.startswith(("time", "tokens_per_s"))} for r in rows]
    assert strip(read_metrics(tmp_path / "a")) == strip(read_metrics(tmp_path / "b"))
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["final"]["val/acc/2ppl"] is not None and summary["final"]["val/loss"] > 0
    again = SFTTrainer(resume_config(SFTConfig, tmp_path / "b"), resume=True, show_progress=False).fit()
    assert again == summary["final"] == json.loads((tmp_path / "b" / "summary.json").read_text())["final"]


def test_lora_is_refused_by_sft_in_one_line():
    from logicrl.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="model.lora: `logicrl sft` trains every weight"):
        load_config(SFTConfig, None, ["model.lora.r=8"])


@pytest.mark.parametrize(("override", "key"), [("data.schedule=curriculum", "data.schedule"),
                                             ("data.adaptive.window=3", "data.adaptive")])
def test_data_order_options_sft_cannot_follow_are_refused(override, key):
    """SFT shuffles its examples once per epoch: a curriculum or adaptive order was accepted, recorded in the run's
    config as if followed, and ignored. The default (what SFT does) and a saved config's own values still load."""
    from logicrl.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=f"{key}: `logicrl sft` shuffles its examples once per epoch"):
        load_config(SFTConfig, None, [override])
    saved = load_config(SFTConfig, None, ["data.schedule=mixed"]).model_dump(mode="json")
    assert SFTConfig.model_validate(saved).data.schedule == "mixed"


def test_sft_refuses_a_run_directory_another_trainer_holds(puzzle_dir, tmp_path):
    """The run directory's lock (tests/rl/test_trainer.py) guards SFT runs too, and a finished fit lets go."""
    run = tmp_path / "run"
    held = FolderLock(run)
    with pytest.raises(UserError, match=f"^{re.escape(str(run))} is held by another trainer or command"):
        SFTTrainer(make_config(puzzle_dir, run), show_progress=False)
    held.release()
    trainer = SFTTrainer(make_config(puzzle_dir, run), show_progress=False)
    trainer.fit()
    FolderLock(run).release()


def test_sft_validates_and_saves_at_a_last_step_off_the_cadence(puzzle_dir, tmp_path):
    """val_every=2, save_every=4, a run of 6 steps: validation at 2, 4, 6 and checkpoints at 4 and the final 6."""
    trainer = SFTTrainer(make_config(puzzle_dir, tmp_path, val_every=2, save_every=4, keep_last=3),
                         show_progress=False)
    assert len(trainer.schedule) == 6  # the 2-person training puzzles, 2 epochs, batches of 4
    trainer.fit()
    assert [m["step"] for m in read_metrics(tmp_path, "val")] == [2, 4, 6]
    assert [step for step, _ in list_checkpoints(tmp_path)] == [4, 6]


def test_a_prefill_of_think_and_a_newline_is_prefilled_think():
    """prefill "<think>\\n" opens the think block as "<think>" does."""
    assert PromptConfig(prefill="<think>\n").prefilled_think


def test_the_target_after_a_think_prefill_continues_the_same_text(puzzle_dir):
    """The target after prefill "<think>" is the no-prefill target less its leading "<think>"."""
    record = load_puzzles(puzzle_dir, "train")[0]
    assert response_target(record, PromptConfig(prefill="<think>")) == \
        response_target(record, PromptConfig(prefill="")).removeprefix("<think>")


def test_end_of_turn_prefers_im_end_over_eos():
    """A vocabulary holding <|im_end|> (5) and an eos <|endoftext|> (7): the turn ends at 5."""
    tokenizer = SimpleNamespace(get_vocab=lambda: {"<|im_end|>": 5, "<|endoftext|>": 7}, eos_token_id=7)
    assert end_of_turn_id(tokenizer) == 5
    # the plain (base-model) layout has no chat turns: eos, where HF generate, vLLM and veRL stop (Qwen2.5 base)
    assert end_of_turn_id(tokenizer, "plain") == 7
    assert end_of_turn_id(SimpleNamespace(get_vocab=lambda: {"<|im_end|>": 5}, eos_token_id=None), "plain") == 5


def test_plain_template_sft_targets_end_with_eos(puzzle_dir, tmp_path):
    """A base model's tokenizer (eos <|endoftext|>) whose vocabulary holds <|im_end|>: plain targets end at eos."""
    base = tmp_path / "base"
    shutil.copytree(resolve_model_path("tiny-random"), base)
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.eos_token = "<|endoftext|>"
    tokenizer.save_pretrained(base)
    ends = {}
    for template in ("plain", "chat"):
        config = make_config(puzzle_dir, tmp_path / template, prompt={"template": template}, model={"name": str(base)},
                             max_response_tokens=2048)
        trainer = SFTTrainer(config, show_progress=False)
        ends[template] = {trainer.tokenizer.convert_ids_to_tokens(target[-1]) for _, target in trainer.examples
                          if len(target) < config.max_response_tokens}  # whole targets (cut ones lose their end)
        trainer.run_lock.release()
    assert ends == {"plain": {"<|endoftext|>"}, "chat": {"<|im_end|>"}}


def test_encode_prompts_adds_no_special_tokens():
    """The prompt text is tokenized with add_special_tokens=False: a tokenizer that would add id 1 adds none."""
    class Tokenizer:
        def __call__(self, texts, add_special_tokens=True):
            return {"input_ids": [([1] if add_special_tokens else []) + [len(t)] for t in texts]}

    config = PromptConfig(template="plain", system_prompt="", prefill="")
    assert encode_prompts([{"quiz": "q"}], Tokenizer(), config) == [[len("User: q\nAssistant: ")]]


def test_float16_on_cpu_is_said_to_run_in_float32(puzzle_dir, tmp_path):
    config = make_config(puzzle_dir, tmp_path / "half", model={"name": "tiny-random", "device": "cpu",
                                                               "dtype": "float16"})
    with pytest.warns(UserWarning, match="model.dtype=float16 on CPU: the forwards run in float32"):
        SFTTrainer(config, show_progress=False).run_lock.release()

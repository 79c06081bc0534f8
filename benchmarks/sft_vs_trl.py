"""SFT throughput, side by side: `logicrl sft` (padded rows, packed rows) against TRL's ``SFTTrainer``, one run.

The data are the cold start's (issue #15): 2- and 3-person puzzles from ``logicrl data generate``, the RL prompt
(chat template + ``<think>`` pre-fill) and the template reasoning target ending with the end-of-turn token
(`logicrl.rl.sft`); TRL gets the same strings as a prompt-completion dataset (loss on the completion only).
Same model (default SmolLM2-135M-Instruct in float32, through `logicrl.models.load_model_and_tokenizer`;
``--quick``: the tiny random model), batch of ``--batch`` examples per optimizer step in micro-batches of
``--micro-batch``, lr 5e-5 with a cosine decay, grad clip 1.0, no weight decay, the same number of steps.

Cases (each in its own child process, so each has its own peak RSS, with the same intra-op threads):
* ``logicrl`` padded: every example of a micro-batch padded to the longest (``packing=false``);
* ``logicrl_packed``: ``packing=true``, rows of ``--row-tokens`` (`logicrl.rl.packing`); a micro-batch is
  ``--micro-batch`` rows;
* ``logicrl_bf16``, ``logicrl_packed_bf16``: padded and packed with ``model.dtype=bfloat16``: forwards under bf16
  autocast over the fp32 weights, as TRL's (SFTConfig's ``bf16`` defaults to True, on the CPU too);
* ``logicrl_bf16_prefix_off``: ``logicrl_bf16`` with the prompts' shared prefix (chat template, instruction) run
  with each prompt rather than once per forward (`logicrl.engine.sequences.shared_prefix_length`): the lever alone;
* ``logicrl_bf16_no_bucketing``: ``logicrl_bf16`` with micro-batches in batch order (``length_bucketing=false``)
  rather than longest example first: the length-bucketing lever alone;
* ``logicrl_bf16_dense_embedding``: ``logicrl_bf16`` with the tied embedding's dense backward (a zeroed [V, D]
  gradient) rather than its sparse one (`logicrl.models.tied`): the lever alone;
* ``trl``: SFTTrainer's default, padded batches;
* ``trl_padding_free``: ``padding_free=True``, each micro-batch flattened into one row (on CPU the sdpa mask
  is built from the position ids);
* ``trl_packing``: ``packing=True`` (best-fit decreasing, so padding-free too), rows of ``max_length =
  --row-tokens``; a step then takes ``--batch`` packed rows, more examples than the others;
* ``trl_nogc``, ``trl_padding_free_nogc``: ``trl`` and ``trl_padding_free`` with ``gradient_checkpointing=False``
  (SFTConfig defaults it to True: the backward recomputes each layer's forward);
* ``trl_tcmalloc``, ``trl_padding_free_nogc_tcmalloc``, ``logicrl_bf16_tcmalloc``: those cases with gperftools'
  tcmalloc preloaded (``LD_PRELOAD``) in place of glibc's malloc, where the system has it (child_cases.py).
Packing changes how many examples a step holds, so the comparison is tokens per second: target tokens (those
with a loss) and all tokens (prompt + target, no padding). A step is the wall time from one optimizer step to
the next; the first ``--warmup`` steps are not timed. Ratios are against the fastest TRL case.

Run:   .venv/bin/python benchmarks/sft_vs_trl.py [--steps 4] [--warmup 1] [--threads N] [--cases ...]
       .venv/bin/python benchmarks/sft_vs_trl.py --quick     (tiny random model, a few seconds: checks it runs)
Needs: pip install -e '.[bench]'   (TRL; benchmark only)
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import torch
from child_cases import add_case_arguments, make_data, report, run_child
from switches import compiled_head_lever, shared_prefix_lever

from logicrl.models import DEFAULT_MODEL

CASES = {"logicrl": "logicrl sft, padded", "logicrl_packed": "logicrl sft, packed",
         "logicrl_bf16": "logicrl sft, padded, model.dtype=bfloat16",
         "logicrl_packed_bf16": "logicrl sft, packed, model.dtype=bfloat16",
         "logicrl_bf16_prefix_off": "logicrl sft, padded, bfloat16, shared prefix not run once",
         "logicrl_bf16_no_bucketing": "logicrl sft, padded, bfloat16, micro-batches in batch order",
         "logicrl_bf16_dense_embedding": "logicrl sft, padded, bfloat16, dense tied-embedding backward",
         "logicrl_bf16_head_ops": "logicrl sft, padded, bfloat16, the head's softmax on PyTorch's ops",
         "trl": "TRL SFTTrainer", "trl_padding_free": "TRL SFTTrainer, padding_free",
         "trl_packing": "TRL SFTTrainer, packing (bfd)",
         "trl_nogc": "TRL SFTTrainer, no gradient checkpointing",
         "trl_padding_free_nogc": "TRL SFTTrainer, padding_free, no gradient checkpointing",
         "trl_tcmalloc": "TRL SFTTrainer, tcmalloc preloaded",
         "trl_padding_free_nogc_tcmalloc": "TRL SFTTrainer, padding_free, no gradient checkpointing, tcmalloc preloaded",
         "logicrl_bf16_tcmalloc": "logicrl sft, padded, model.dtype=bfloat16, tcmalloc preloaded"}
# case → (packing, model.dtype, shared prefix run once, length bucketing, sparse tied-embedding backward,
#         the head's compiled softmax)
LOGICRL_CASES = {"logicrl": (False, "float32", True, True, True, True),
                 "logicrl_packed": (True, "float32", True, True, True, True),
                 "logicrl_bf16": (False, "bfloat16", True, True, True, True),
                 "logicrl_packed_bf16": (True, "bfloat16", True, True, True, True),
                 "logicrl_bf16_prefix_off": (False, "bfloat16", False, True, True, True),
                 "logicrl_bf16_no_bucketing": (False, "bfloat16", True, False, True, True),
                 "logicrl_bf16_dense_embedding": (False, "bfloat16", True, True, False, True),
                 "logicrl_bf16_head_ops": (False, "bfloat16", True, True, True, False)}
LR, PEOPLE = 5e-5, [2, 3]



# ---------------------------------------------------------------------------------------------- children


def examples(args: argparse.Namespace, tokenizer) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, target ids) as `logicrl sft` builds them (mode template, trace search)."""
    from logicrl.prompts import PromptConfig, encode_prompts, response_target
    from logicrl.rl.schedule import load_puzzles
    from logicrl.rl.sft import target_ids

    records = load_puzzles(Path(args.data), "train", PEOPLE)
    return list(zip(encode_prompts(records, tokenizer, PromptConfig()),
                    target_ids([response_target(r, PromptConfig()) for r in records], tokenizer)))


def run_logicrl(args: argparse.Namespace, packing: bool, dtype: str, prefix: bool, bucketing: bool,
                sparse_embedding: bool, compiled_head: bool) -> list[dict[str, float]]:
    """`logicrl sft`'s SFTTrainer.fit(); seconds per step from its metrics, tokens from its schedule. ``prefix``
    False: the prompts' shared prefix (chat template, instruction) runs with each prompt, not once per forward;
    ``bucketing``: SFTConfig.length_bucketing; ``sparse_embedding`` False: the tied embedding's dense backward;
    ``compiled_head`` False: the fused head's softmax on PyTorch's ops."""
    from logicrl.rl.run_log import read_metrics
    from logicrl.rl.sft import SFTConfig, SFTTrainer

    out = tempfile.mkdtemp(prefix="logicrl-sft-bench-")
    config = SFTConfig.model_validate({
        "model": {"name": args.model, "device": "cpu", "dtype": dtype}, "out_dir": out, "threads": args.threads,
        "data": {"train": args.data, "people": PEOPLE, "epochs": 1, "val_puzzles_per_people": 0},
        "batch_size": args.batch, "micro_batch_size": args.micro_batch, "lr": LR, "schedule": "cosine",
        "max_response_tokens": 4096, "packing": packing, "packing_length": args.row_tokens, "seed": 0,
        "length_bucketing": bucketing})
    trainer = SFTTrainer(config, show_progress=False)
    trainer.model.get_input_embeddings().sparse = sparse_embedding
    with shared_prefix_lever(prefix), compiled_head_lever(compiled_head):
        trainer.fit()
    steps = []
    for row in read_metrics(Path(out), "train"):
        batch = [trainer.examples[int(r["id"])] for r in trainer.schedule.batch(row["step"] - 1)]
        steps.append({"seconds": row["time/step"], "targets": sum(len(t) for _, t in batch),
                      "tokens": sum(len(p) + len(t) for p, t in batch)})
    return steps


def run_trl(args: argparse.Namespace, variant: str) -> list[dict[str, float]]:
    """TRL SFTTrainer on the same prompt/completion strings; tokens counted in its data collator."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer
    from trl_timing import StepTimer

    from logicrl.models import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(args.model, dtype="float32")
    data = examples(args, tokenizer)
    longest = max(len(p) + len(t) for p, t in data)
    rows = [{"prompt": tokenizer.decode(p), "completion": tokenizer.decode(t)} for p, t in data]
    counts = {"targets": 0, "tokens": 0}
    base = variant.removesuffix("_nogc")  # SFTConfig's gradient_checkpointing defaults to True: _nogc turns it off
    options = {"trl": {}, "trl_padding_free": {"padding_free": True},
               "trl_packing": {"packing": True, "packing_strategy": "bfd"}}[base]
    options.update({"gradient_checkpointing": False} if variant != base else {})
    timer = StepTimer(counts)
    config = SFTConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-sft-bench-"), per_device_train_batch_size=args.micro_batch,
        gradient_accumulation_steps=args.batch // args.micro_batch, learning_rate=LR, lr_scheduler_type="cosine",
        max_grad_norm=1.0, weight_decay=0.0, max_steps=args.warmup + args.steps, logging_steps=1,
        max_length={"trl": longest, "trl_padding_free": None, "trl_packing": max(longest, args.row_tokens)}[base],
        report_to="none", use_cpu=True, save_strategy="no", seed=0, disable_tqdm=True, dataloader_num_workers=0,
        **options)
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer, callbacks=[timer])
    collate = trainer.data_collator

    def counting(features):
        batch = collate(features)
        counts["targets"] += int((batch["labels"] != -100).sum())
        mask = batch.get("attention_mask")
        counts["tokens"] += int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())
        return batch

    trainer.data_collator = counting
    trainer.train()
    return timer.steps


def child(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.child in LOGICRL_CASES:
        steps = run_logicrl(args, *LOGICRL_CASES[args.child])
    else:
        steps = run_trl(args, args.child)
    report({"steps": steps[args.warmup:]})


# ------------------------------------------------------------------------------------------------ parent


def run_case(case: str, args: argparse.Namespace, data: str) -> dict:
    return run_child(__file__, case, [
        "--data", data, "--model", args.model,
        "--threads", str(args.threads), "--steps", str(args.steps), "--warmup", str(args.warmup),
        "--batch", str(args.batch), "--micro-batch", str(args.micro_batch), "--row-tokens", str(args.row_tokens)])



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="timed optimizer steps per case")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=8, help="examples per optimizer step (TRL packing: rows)")
    parser.add_argument("--micro-batch", type=int, default=4, help="examples (packed: rows) per forward/backward")
    parser.add_argument("--row-tokens", type=int, default=1024, help="packed row width (packing_length, max_length)")
    parser.add_argument("--quick", action="store_true", help="tiny random model, 2 timed steps: checks it runs")
    add_case_arguments(parser, CASES, DEFAULT_MODEL)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.quick:
        args.model, args.steps, args.warmup = "tiny-random", 2, 1

    print(f"# SFT throughput, {datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, {args.threads} threads, torch {torch.__version__}, load {os.getloadavg()[0]:.2f}")
    print(f"# {args.model}, {PEOPLE}-person template targets, {args.batch} examples a step in micro-batches of "
          f"{args.micro_batch}, packed rows of {args.row_tokens} tokens, {args.warmup} warm-up + {args.steps} "
          "timed steps\n")
    with tempfile.TemporaryDirectory(prefix="sft-bench-") as data:
        # exactly warm-up + timed steps of examples for logicrl's one epoch; TRL's max_steps cycles them (packing
        # takes --batch rows of several examples a step)
        make_data(data, ",".join(map(str, PEOPLE)), -(-args.batch * (args.warmup + args.steps) // len(PEOPLE)))
        results = {}
        for case in args.cases.split(","):
            results[case] = run_case(case, args, data)
            print(f"... {CASES[case]} done", file=sys.stderr, flush=True)

    def rate(result: dict, key: str) -> float:
        steps = result["steps"]
        return sum(s[key] for s in steps) / sum(s["seconds"] for s in steps)

    trl = [c for c in results if c.startswith("trl")]
    best = max(trl, key=lambda c: rate(results[c], "targets")) if trl else None
    print("| trainer | s/step | target tok/step | target tok/s | all tok/s | peak RSS GB | target tok/s ÷ best TRL "
          "| all tok/s ÷ best TRL |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for case, result in results.items():
        steps = result["steps"]
        seconds = statistics.mean(s["seconds"] for s in steps)
        targets, tokens = rate(result, "targets"), rate(result, "tokens")
        ratios = ([f"{targets / rate(results[best], 'targets'):.2f}×", f"{tokens / rate(results[best], 'tokens'):.2f}×"]
                  if best else ["–", "–"])
        print(f"| {CASES[case]} | {seconds:.2f} | {statistics.mean(s['targets'] for s in steps):.0f} | {targets:.0f} "
              f"| {tokens:.0f} | {result['peak_rss_gb']:.2f} | {ratios[0]} | {ratios[1]} |")
    if best:
        print(f"\nbest TRL case (by target tokens/s): {CASES[best]}")


if __name__ == "__main__":
    main()

"""One RL step, side by side: logicrl (GRPO and REINFORCE++) against TRL's ``GRPOTrainer``, same CPU, one run.

The configuration of issue #8: the default model (SmolLM2-135M-Instruct) in float32, 4 prompts × 4 samples
(TRL: ``per_device_train_batch_size=16, num_generations=4``), 2-person Knights-and-Knaves puzzles with the
Logic-RL system prompt and the ``<think>`` pre-fill (~180 prompt tokens, the same string for both), at most 128
new tokens stopping at the end of the turn, temperature 1.0, β = 0.001 (so both load a reference model), one
gradient step per generation batch, the logicrl rule-based reward.

Each trainer runs in its own child process (so each has its own peak RSS), with the same number of
intra-op threads, for ``--warmup`` untimed steps and then ``--steps`` timed ones. A step is the wall time
from the end of one optimizer step to the end of the next: sampling the prompts, generation, reward,
reference log-probs, the policy forward/backward and the optimizer. Columns: seconds per step (mean of
the timed steps), generated tokens per step and per second, peak RSS, TRL's time / ours, and the FLOP
floor of the step: 5 forward-equivalents (generation, reference, policy forward + backward = 3) of
2·params FLOPs per prompt+response token, at the fp32 matmul rate measured at the start (the issue's
floor formula; attention scores left out). ``floor %`` = floor seconds / measured seconds.

``--levers`` instead times the two log-prob passes of the update one lever at a time, on 16 rows (4 prompts
of the benchmark × 4, 100-token responses) in micro-batches of 8: the reference pass (no grad) and the policy
forward + backward, first as a plain forward through ``F.linear`` (MKL), then with oneDNN linears, then with
each prompt run once per group, then (policy) with the entropy statistic detached. The on-policy shortcut
(ℓ_old from the update's own forward) saves one more no-grad pass: the reference row's time.

Run:   .venv/bin/python benchmarks/rl_step.py [--steps 2] [--warmup 1] [--threads N] [--cases trl,grpo,reinforce_pp]
       .venv/bin/python benchmarks/rl_step.py --levers [--threads N]
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
import time
from pathlib import Path

import torch
from child_cases import add_case_arguments, make_data, report, run_child

from logicrl.engine.logprobs import response_logprobs
from logicrl.engine.sequences import left_pad, sequence_inputs
from logicrl.models import DEFAULT_MODEL, load_model_and_tokenizer
from logicrl.prompts import PromptConfig, encode_prompts, prompt_text
from logicrl.reward.score import score
from logicrl.rl.schedule import load_puzzles

GROUPS, GROUP_SIZE, MAX_NEW_TOKENS, BETA, LR = 4, 4, 128, 0.001, 1e-6
CASES = {"trl": "TRL GRPOTrainer", "grpo": "logicrl GRPO", "reinforce_pp": "logicrl REINFORCE++"}


def matmul_gflops(threads: int, size: int = 2048, repeats: int = 10) -> float:
    """fp32 ``torch.mm`` rate with ``threads`` intra-op threads (best of ``repeats``)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9



# ---------------------------------------------------------------------------------------------- children


def run_trl(args: argparse.Namespace) -> list[dict[str, float]]:
    """TRL GRPOTrainer on string prompts (already templated, so TRL adds no chat template of its own)."""
    from datasets import Dataset
    from trl_timing import StepTimer
    from trl import GRPOConfig, GRPOTrainer

    model, tokenizer = load_model_and_tokenizer(args.model, dtype="float32")
    prompt_cfg = PromptConfig()
    records = load_puzzles(Path(args.data), "train", [2])
    rows = [{"prompt": prompt_text(r["quiz"], tokenizer, prompt_cfg), "solution": r["solution_text_format"]}
            for r in records]

    def logic_reward(completions: list[str], solution: list[str], **_: object) -> list[float]:
        return [score(c, s, prefilled_think=True).total for c, s in zip(completions, solution)]

    timer = StepTimer()
    config = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-bench-"), per_device_train_batch_size=GROUPS * GROUP_SIZE,
        num_generations=GROUP_SIZE, max_completion_length=MAX_NEW_TOKENS, beta=BETA, temperature=1.0,
        learning_rate=LR, max_steps=args.warmup + args.steps, logging_steps=1, report_to="none", use_cpu=True,
        save_strategy="no", seed=0, disable_tqdm=True, dataloader_num_workers=0)
    trainer = GRPOTrainer(model=model, reward_funcs=logic_reward, args=config,
                          train_dataset=Dataset.from_list(rows), processing_class=tokenizer, callbacks=[timer])
    trainer.train()
    lengths = [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h]
    prompt_len = statistics.mean(len(tokenizer(r["prompt"], add_special_tokens=False).input_ids) for r in rows)
    return [{**s, "generated": length * GROUPS * GROUP_SIZE, "prompt_tokens": prompt_len * GROUPS * GROUP_SIZE}
            for s, length in zip(timer.steps, lengths)]


def run_logicrl(args: argparse.Namespace, advantage: str) -> list[dict[str, float]]:
    """logicrl's Trainer, stepped by hand so that each step is timed on its own."""
    from logicrl.rl.config import TrainConfig
    from logicrl.rl.trainer import Trainer

    config = TrainConfig.model_validate({
        "model": {"name": args.model}, "out_dir": tempfile.mkdtemp(prefix="logicrl-bench-"),
        "data": {"train": args.data, "people": [2], "schedule": "mixed", "val_puzzles_per_people": 0},
        "rollout": {"prompts_per_step": GROUPS, "group_size": GROUP_SIZE, "temperature": 1.0,
                    "max_response_tokens": MAX_NEW_TOKENS, "stop_at_answer": False},
        "algorithm": {"advantage": advantage, "kl_placement": "loss", "kl_estimator": "k3", "kl_coef": BETA,
                      "micro_batch_size": args.micro_batch},
        "optim": {"lr": LR}, "steps": args.warmup + args.steps, "save_every": 0, "val_every": 0,
        "log_rollouts": False, "threads": args.threads, "seed": 0,
    })
    trainer = Trainer(config, show_progress=False)
    steps = []
    for step in range(1, config.steps + 1):
        prompts = encode_prompts(trainer.schedule.batch(step - 1), trainer.tokenizer, config.prompt)
        metrics = trainer.train_step(step)
        steps.append({"seconds": metrics["time/step"], "generated": metrics["length/mean"] * GROUPS * GROUP_SIZE,
                      "prompt_tokens": GROUP_SIZE * sum(len(p) for p in prompts),
                      **{k: v for k, v in metrics.items() if k.startswith("time/")}})
    return steps


def child(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    steps = run_trl(args) if args.child == "trl" else run_logicrl(args, args.child)
    report({"steps": steps[args.warmup:]})


def levers(args: argparse.Namespace, data: str) -> None:
    """Seconds of the reference pass and of the policy forward + backward, adding one lever per row."""
    torch.set_num_threads(args.threads)
    model, tokenizer = load_model_and_tokenizer(args.model, dtype="float32")
    prompts = encode_prompts(load_puzzles(Path(data), "train", [2])[:GROUPS], tokenizer, PromptConfig())
    prompt_ids, prompt_mask = left_pad(prompts, tokenizer.pad_token_id)
    prompt_ids, prompt_mask = prompt_ids.repeat_interleave(GROUP_SIZE, 0), prompt_mask.repeat_interleave(GROUP_SIZE, 0)
    responses = torch.randint(100, 40_000, (len(prompt_ids), 100), generator=torch.Generator().manual_seed(0))
    inputs = sequence_inputs(prompt_ids, prompt_mask, responses, torch.ones_like(responses))

    def run(grad: bool, **flags: bool) -> float:
        start = time.perf_counter()
        for rows in (slice(0, 8), slice(8, 16)):
            with torch.set_grad_enabled(grad):
                logp, ent = response_logprobs(model, *(t[rows] for t in inputs), responses[rows], with_entropy=grad,
                                              **flags)
            if grad:
                (logp.sum() + ent.sum()).backward()
        return time.perf_counter() - start

    rows = [("reference pass, F.linear (MKL)", False, {"onednn": False, "share_prompts": False}),
            ("+ oneDNN linears", False, {"share_prompts": False}),
            ("+ each prompt once per group", False, {}),
            ("policy forward + backward, F.linear (MKL)", True, {"onednn": False, "share_prompts": False}),
            ("+ oneDNN linears", True, {"share_prompts": False}),
            ("+ each prompt once per group", True, {}),
            ("+ entropy detached (not in the loss)", True, {"entropy_grad": False})]
    run(False)  # warm-up
    print(f"# log-prob passes, {args.threads} threads, 16 rows × ({prompt_ids.shape[1]} prompt + 100 response) "
          f"tokens, micro-batches of 8, load {os.getloadavg()[0]:.2f}\n")
    print("| pass | s | gain over the row above |\n|---|---:|---:|")
    previous = None
    for name, grad, flags in rows:
        seconds = run(grad, **flags)
        gain = f"{previous / seconds:.2f}×" if previous and name.startswith("+") else ""
        print(f"| {name} | {seconds:.1f} | {gain} |", flush=True)
        previous = seconds


# ------------------------------------------------------------------------------------------------ parent


def run_case(case: str, args: argparse.Namespace, data: str) -> dict:
    return run_child(__file__, case, [
        "--data", data, "--model", args.model,
        "--threads", str(args.threads), "--steps", str(args.steps), "--warmup", str(args.warmup),
        "--micro-batch", str(args.micro_batch)])



def floor_seconds(params: int, tokens: float, gflops: float) -> float:
    """The issue's floor: 5 forward-equivalents of ``2·params`` FLOPs per token, at ``gflops``."""
    return 5 * 2 * params * tokens / (gflops * 1e9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2, help="timed steps per trainer")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--micro-batch", type=int, default=8, help="logicrl responses per forward/backward")
    parser.add_argument("--levers", action="store_true", help="time the log-prob passes lever by lever instead")
    add_case_arguments(parser, CASES, DEFAULT_MODEL)
    args = parser.parse_args()
    if args.child:
        return child(args)

    if args.levers:
        with tempfile.TemporaryDirectory(prefix="rl-step-bench-") as data:
            make_data(data, "2", GROUPS)
            return levers(args, data)
    gflops = matmul_gflops(args.threads)
    model, _ = load_model_and_tokenizer(args.model, dtype="float32")
    params = sum(p.numel() for p in model.parameters())
    del model
    print(f"# RL step, {datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, {args.threads} threads, torch {torch.__version__}, fp32 mm {gflops:.0f} GFLOP/s, "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"# {args.model} ({params / 1e6:.1f}M params), {GROUPS} prompts × {GROUP_SIZE} samples, "
          f"≤{MAX_NEW_TOKENS} new tokens, β={BETA}, {args.warmup} warm-up + {args.steps} timed steps\n")
    with tempfile.TemporaryDirectory(prefix="rl-step-bench-") as data:
        make_data(data, "2", GROUPS * (args.warmup + args.steps) * 2)
        results = {}
        for case in args.cases.split(","):
            results[case] = run_case(case, args, data)
            print(f"... {CASES[case]} done", file=sys.stderr, flush=True)

    print("| trainer | s/step | gen tokens/step | gen tok/s | peak RSS GB | TRL s / ours | floor s | floor % |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    trl = statistics.mean(s["seconds"] for s in results["trl"]["steps"]) if "trl" in results else None
    for case, result in results.items():
        steps = result["steps"]
        seconds = statistics.mean(s["seconds"] for s in steps)
        generated = statistics.mean(s["generated"] for s in steps)
        tokens = statistics.mean(s["generated"] + s["prompt_tokens"] for s in steps)
        floor = floor_seconds(params, tokens, gflops)
        ratio = f"{trl / seconds:.2f}×" if trl else "–"
        print(f"| {CASES[case]} | {seconds:.1f} | {generated:.0f} | {generated / seconds:.1f} | "
              f"{result['peak_rss_gb']:.2f} | {ratio} | {floor:.1f} | {100 * floor / seconds:.0f}% |")
    phases = [c for c in results if c != "trl"]
    if phases:
        print("\nlogicrl phases (s, mean of timed steps): "
              + "; ".join(f"{CASES[c]}: " + ", ".join(
                  f"{k[5:]} {statistics.mean(s[k] for s in results[c]['steps']):.1f}"
                  for k in ("time/generate", "time/logprobs", "time/update")) for c in phases))


if __name__ == "__main__":
    main()

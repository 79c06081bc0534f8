"""The device check of issue #19: logicrl's CUDA path on one GPU, with randomly initialised Qwen2.5 shapes.

Nothing is downloaded. The models are `transformers.Qwen2Config` + ``AutoModelForCausalLM.from_config`` in the
shapes of Qwen2.5-1.5B (hidden 1536, 28 layers, 12 heads, 2 KV heads, MLP 8960, vocabulary 151,936, tied
embeddings, q/k/v biases, rope θ 1e6) and Qwen2.5-7B (3584, 28, 28, 4, 18944, 152,064, untied), random bf16
weights; the tokenizer is logicrl's tiny one (`logicrl.models.tiny`, built offline: the models sample ids it
does not have, which decoding drops, so every response runs to its cap). One row per measurement, in the
order they run (the 1.5B shape's four rows, then the 7B shape's; one shape's files on disk at a time):

* ``generate <shape>``: ``prompts × group`` responses of ``new_tokens`` tokens to random prompts of
  ``prompt_tokens`` tokens in bf16, `logicrl.engine.decode.generate` (fast engine) against ``model.generate``
  (plain sampling at temperature 1, no top-k, no stop), each after an 8-token warm-up: tokens/s, the ratio,
  and the model FLOP utilisation 2·N·tokens/s over ``--peak-tflops``.
* ``rl <run> <shape>``: two steps of `logicrl.rl.trainer.Trainer` (rollout, reward, reference log-probs,
  update) on generated 3-person puzzles: full fine-tuning of the 1.5B shape, a LoRA adapter (model.lora, r 16,
  all 7 linears) on the 7B shape. REINFORCE++ with the k3 KL loss (β 0.001), bf16 autocast, gradient
  checkpointing and ``algorithm.logprob_chunk``: the paper's recipe, shorter (8 × 8 responses of
  ``rl_tokens`` tokens). An entropy bonus (1e-3) makes the update move the weights even when every random
  response gets the same reward. Seconds per step and their parts; update MFU = 6·N·tokens / ``time/update``
  with tokens = distinct prompt tokens + response tokens (the reference pass, ``time/logprobs``, is not
  counted; a LoRA update does ≈ 4·N of the 6·N).
* ``memory <run> <shape>``: ``torch.cuda.max_memory_allocated`` over loading and the two steps, next to the
  memory plan (`logicrl.rl.memory.train_plan`, what ``logicrl train --dry-run`` prints: it assumes 512-token
  prompts) and the same plan at the longest prompt sampled; ratio = measured / plan. None on the CPU.
* ``checkpoint <run> <shape>``: ``Trainer.save`` after the two steps, then a new ``Trainer(resume=True)``
  (the first one freed): seconds for each, the checkpoint's size, and whether every trainable tensor of the
  resumed policy equals the saved one bit for bit.

Each phase is timed and guarded: an exception (out of memory included) goes into its rows and the check goes
on; a phase due after ``--budget-s`` is skipped, saying so. Rows print as they come, and ``gpu_check.json``
and ``gpu_check.md`` are rewritten in ``--out`` (default ``$OUT``) after each. ``--tiny`` runs the same phases
on the CPU with 2-layer models of the same architecture and a few tokens (tests/test_gpu_check.py).

Run:   PYTHONPATH=src python3 benchmarks/gpu_check.py --out DIR     (the device tool: benchmarks/gpu_check.sh)
       .venv/bin/python benchmarks/gpu_check.py --tiny --out DIR    (CPU, seconds)
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

GIB = 1024**3
QWEN = {"rope_theta": 1e6, "rms_norm_eps": 1e-6, "use_sliding_window": False,
        "max_position_embeddings": 32768}  # as Qwen2.5's, with q/k/v biases (Qwen2's own)
SHAPES = {  # Qwen2.5-1.5B and Qwen2.5-7B, as their config.json
    "1.5b": {"hidden_size": 1536, "num_hidden_layers": 28, "num_attention_heads": 12,
             "num_key_value_heads": 2, "intermediate_size": 8960, "vocab_size": 151936,
             "tie_word_embeddings": True},
    "7b": {"hidden_size": 3584, "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
           "intermediate_size": 18944, "vocab_size": 152064, "tie_word_embeddings": False},
}
TINY_SHAPES = {  # the same architecture (GQA, tied or not, biases), 2 layers, more ids than the tokenizer has
    "1.5b": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
             "intermediate_size": 160, "vocab_size": 1024, "tie_word_embeddings": True},
    "7b": {"hidden_size": 96, "num_hidden_layers": 2, "num_attention_heads": 6, "num_key_value_heads": 2,
           "intermediate_size": 256, "vocab_size": 1040, "tie_word_embeddings": False},
}
RUNS = {"full": "1.5b", "lora": "7b"}  # run → shape, in the order they run
LORA = {"r": 16, "lora_alpha": 32.0}


@dataclasses.dataclass(frozen=True)
class Sizes:
    prompts: int  # generation: distinct prompts
    group: int  # generation: responses per prompt
    prompt_tokens: int  # generation: tokens per random prompt
    new_tokens: int  # generation: tokens per response
    rl_prompts: int  # rollout.prompts_per_step
    rl_group: int  # rollout.group_size
    rl_tokens: int  # rollout.max_response_tokens
    micro_batch: int  # algorithm.micro_batch_size
    logprob_chunk: int  # algorithm.logprob_chunk


GPU_SIZES = Sizes(8, 8, 256, 1024, 8, 8, 256, 8, 128)
TINY_SIZES = Sizes(2, 2, 8, 8, 2, 2, 8, 2, 4)


@dataclasses.dataclass
class Check:
    """What the phases share: the options, the device, the tokenizer, the scratch folder and the clock."""

    args: argparse.Namespace
    device: torch.device
    sizes: Sizes
    tokenizer: Any
    work: Path  # scratch: data/, model-<shape>/, run-<run>/
    start: float
    params: dict[str, int] = dataclasses.field(default_factory=dict)  # shape → N
    models: dict[str, Path] = dataclasses.field(default_factory=dict)  # shape → saved model directory

    @property
    def peak_flops(self) -> float:
        return self.args.peak_tflops * 1e12


def row_names() -> list[str]:
    """Every row of the table, in the order they run."""
    names = []
    for run, shape in RUNS.items():
        names += [f"generate {shape}"] + [f"{kind} {run} {shape}" for kind in ("rl", "memory", "checkpoint")]
    return names


# ------------------------------------------------------------------------------------------------ report


class Report:
    """The rows so far, printed as they come and written to ``out`` (JSON and markdown) after each."""

    def __init__(self, out: Path, meta: dict[str, Any]) -> None:
        self.out, self.meta, self.rows = out, meta, {}
        out.mkdir(parents=True, exist_ok=True)

    def set(self, name: str, **values: Any) -> None:
        self.rows[name] = {"status": "ok", **values}
        print(f"[{time.strftime('%H:%M:%S')}] {name}: {format_row(self.rows[name])}", flush=True)
        self.write()

    def fail(self, names: list[str], error: str) -> None:
        """``error`` in each of ``names`` not yet written."""
        for name in names:
            if name not in self.rows:
                self.set(name, status="error", error=error)

    def table(self) -> str:
        meta = self.meta
        title = (f"GPU device check: {meta['device']}, torch {meta['torch']}, transformers "
                 f"{meta['transformers']}, {meta['date']}")
        lines = [title, "", "| row | result |", "| --- | --- |"]
        for name in row_names():
            lines.append(f"| {name} | {format_row(self.rows[name]) if name in self.rows else 'not run'} |")
        return "\n".join(lines)

    def write(self) -> None:
        report = {**self.meta, "rows": self.rows}
        (self.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
        (self.out / "gpu_check.md").write_text(self.table() + "\n")


def format_row(row: dict[str, Any]) -> str:
    """One table cell: the row's headline figures, or its error."""
    if row["status"] != "ok":
        return f"{row['status'].upper()}: {row.get('error', '')}"
    if "ours_tokens_per_s" in row:
        return (f"logicrl {row['ours_tokens_per_s']:,.0f} tok/s, "
                f"model.generate {row['hf_tokens_per_s']:,.0f} tok/s (×{row['ratio']:.2f}); "
                f"MFU {percent(row['ours_mfu'])} / {percent(row['hf_mfu'])}")
    if "seconds_per_step" in row:
        parts = ", ".join(f"{k} {v:.1f}" for k, v in row["parts_s"].items())
        return (f"{row['seconds_per_step']:.1f} s/step ({parts}); update MFU {percent(row['update_mfu'])}; "
                f"{row['response_tokens']:.0f} response tokens/step; load {row['load_s']:.1f} s")
    if "plan_gib" in row:
        plans = (f"plan {row['plan_gib']:.2f} GiB, at the measured prompt length "
                 f"{row['plan_prompt_gib']:.2f} GiB")
        if row["peak_gib"] is None:
            return f"peak not measured (CPU); {plans}"
        return (f"peak {row['peak_gib']:.2f} GiB; {plans} (measured / plan ×{row['ratio']:.2f}, "
                f"×{row['ratio_prompt']:.2f})")
    return (f"save {row['save_s']:.1f} s ({row['size_gib']:.3f} GiB), resume {row['resume_s']:.1f} s; "
            f"resumed policy equals saved: {row['resumed_equal']} ({row['tensors']} tensors)")


def percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}%" if fraction >= 1e-3 else f"{100 * fraction:.1e}%"


def describe(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0][:300] if lines else ''}"


# ----------------------------------------------------------------------------------------------- helpers


def timed(device: torch.device, fn, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """(seconds, result) of ``fn``, the device synchronised before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, out


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def qwen_config(shape: dict[str, Any], tokenizer: Any) -> Any:
    from transformers import Qwen2Config

    return Qwen2Config(**QWEN, **shape, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)


def build_and_save(config: Any, tokenizer: Any, directory: Path, device: torch.device) -> Any:
    """A random bf16 model, initialised on ``device``, also saved with the tokenizer in ``directory``."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return model.eval()


def parameter_count(config: Any) -> int:
    from logicrl.models.memory_plan import ModelShape

    return ModelShape.from_config(config.to_dict()).params


# ------------------------------------------------------------------------------------------------ phases


def measure_generation(model: Any, n_params: int, check: Check) -> dict[str, Any]:
    """Ours (fast engine, bf16) against ``model.generate`` on the same random prompts."""
    from transformers import GenerationConfig

    from logicrl.engine.decode import generate

    sizes, pad = check.sizes, model.generation_config.pad_token_id
    prompts = torch.randint(3, model.config.vocab_size, (sizes.prompts, sizes.prompt_tokens),
                            generator=torch.Generator().manual_seed(0))
    ids = prompts.repeat_interleave(sizes.group, 0).to(check.device)

    def ours(new: int) -> int:
        out = generate(model, prompts.tolist(), n=sizes.group, max_new_tokens=new, pad_token_id=pad,
                       stop_token_ids=(), temperature=1.0, seed=0, engine="fast", dtype=torch.bfloat16)
        return int(out.response_mask.sum())

    def hf(new: int) -> int:
        config = GenerationConfig(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=new,
                                  pad_token_id=pad, eos_token_id=None)
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
        return (out.shape[1] - ids.shape[1]) * len(ids)

    result: dict[str, Any] = {"rows": len(ids), "prompt_tokens": sizes.prompt_tokens,
                              "new_tokens": sizes.new_tokens}
    for name, fn in (("ours", ours), ("hf", hf)):
        fn(8)  # warm-up: kernels, cuBLAS handles, the allocator's pools
        seconds, tokens = timed(check.device, fn, sizes.new_tokens)
        rate = tokens / seconds
        result.update({f"{name}_s": seconds, f"{name}_tokens": tokens, f"{name}_tokens_per_s": rate,
                       f"{name}_mfu": 2 * n_params * rate / check.peak_flops})
    result["ratio"] = result["ours_tokens_per_s"] / result["hf_tokens_per_s"]
    return result


def prepare_shape(report: Report, shape: str, check: Check) -> None:
    """Build the shape's random model, save it for the RL rows (``check.models``), time generation on it."""
    config = qwen_config((TINY_SHAPES if check.args.tiny else SHAPES)[shape], check.tokenizer)
    check.params[shape] = parameter_count(config)
    directory = check.work / f"model-{shape}"
    setup_s, model = timed(check.device, build_and_save, config, check.tokenizer, directory, check.device)
    check.models[shape] = directory
    print(f"built and saved the {shape} shape ({check.params[shape]:,} parameters) in {setup_s:.1f} s",
          flush=True)
    result = measure_generation(model, check.params[shape], check)
    report.set(f"generate {shape}", build_and_save_s=setup_s, **result)


def train_config(run: str, model_dir: Path, check: Check) -> Any:
    from logicrl.rl.config import TrainConfig

    sizes = check.sizes
    return TrainConfig.model_validate({
        "model": {"name": str(model_dir), "dtype": "auto", "gradient_checkpointing": True,
                  "lora": LORA if run == "lora" else None},
        "data": {"train": str(check.work / "data"), "people": [3], "schedule": "mixed",
                 "val_puzzles_per_people": 0},
        "rollout": {"prompts_per_step": sizes.rl_prompts, "group_size": sizes.rl_group, "temperature": 0.7,
                    "max_response_tokens": sizes.rl_tokens},
        "algorithm": {"advantage": "reinforce_pp", "kl_placement": "loss", "kl_estimator": "k3",
                      "kl_coef": 0.001, "micro_batch_size": sizes.micro_batch,
                      "logprob_chunk": sizes.logprob_chunk,
                      "entropy_coef": 1e-3},
        "optim": {"lr": 4e-7}, "out_dir": str(check.work / f"run-{run}"), "steps": 2, "save_every": 0,
        "keep_last": 1, "val_every": 0, "log_rollouts": False, "seed": 0,
        "threads": 1 if check.args.tiny else None,
    })


def rl_steps(trainer: Any, cfg: Any, n_params: int, peak_flops: float) -> dict[str, Any]:
    """Two `Trainer.train_step` calls: seconds, their parts, tokens, the update's MFU."""
    from logicrl.prompts import encode_prompts

    steps, rows = [], cfg.rollout.prompts_per_step * cfg.rollout.group_size
    for step in (1, 2):
        prompts = encode_prompts(trainer.schedule.batch(step - 1), trainer.tokenizer, cfg.prompt)
        metrics = trainer.train_step(step)
        steps.append({"prompt_tokens": sum(map(len, prompts)), "longest_prompt": max(map(len, prompts)),
                      "response_tokens": metrics["length/mean"] * rows,
                      "grad_norm": float(metrics["grad_norm"]),
                      **{k.removeprefix("time/"): v for k, v in metrics.items() if k.startswith("time/")}})
    mean = {k: sum(s[k] for s in steps) / len(steps) for k in steps[0]}
    tokens = mean["prompt_tokens"] + mean["response_tokens"]
    return {"steps": steps, "seconds_per_step": mean["step"], "response_tokens": mean["response_tokens"],
            "parts_s": {k: mean[k] for k in ("generate", "score", "logprobs", "update")},
            "update_mfu": 6 * n_params * tokens / mean["update"] / peak_flops,
            "generate_tokens_per_s": mean["response_tokens"] / mean["generate"],
            "longest_prompt": max(s["longest_prompt"] for s in steps)}


def memory_row(cfg: Any, model_dir: Path, prompt_tokens: int, peak: int | None) -> dict[str, Any]:
    """The measured peak against the plan ``--dry-run`` prints and the same plan at ``prompt_tokens``."""
    from logicrl.models.memory_plan import LORA_TARGETS, ModelShape, plan
    from logicrl.rl.memory import model_config, train_plan, train_run_shape

    on_cuda, lora = peak is not None, cfg.model.lora  # the peak is measured on CUDA only
    shape = ModelShape.from_config(model_config(str(model_dir)))
    dry = train_plan(cfg, shape, on_cuda).total
    at_prompt = plan(shape, dataclasses.replace(train_run_shape(cfg, on_cuda), prompt_tokens=prompt_tokens),
                     lora_rank=lora.r if lora else None, logprob_chunk=cfg.algorithm.logprob_chunk,
                     lora_targets=tuple(lora.target_modules) if lora else LORA_TARGETS).total
    return {"peak_gib": peak / GIB if on_cuda else None, "plan_gib": dry / GIB,
            "plan_prompt_gib": at_prompt / GIB,
            "ratio": peak / dry if on_cuda else None, "ratio_prompt": peak / at_prompt if on_cuda else None}


def trainable(policy: Any) -> dict[str, torch.Tensor]:
    """The policy's trainable tensors, copied to the CPU."""
    return {k: p.detach().to("cpu", copy=True) for k, p in policy.named_parameters() if p.requires_grad}


def resume_and_compare(cfg: Any, saved: dict[str, torch.Tensor], device: torch.device) -> dict[str, Any]:
    """A new ``Trainer(resume=True)`` from the latest checkpoint: seconds, and whether its policy is
    ``saved``."""
    from logicrl.rl.trainer import Trainer

    resume_s, resumed = timed(device, Trainer, cfg, resume=True, show_progress=False)
    now = trainable(resumed.policy)
    equal = now.keys() == saved.keys() and all(torch.equal(now[k], saved[k]) for k in saved)
    return {"resume_s": resume_s, "resumed_equal": equal, "tensors": len(saved),
            "resumed_start_step": resumed.start_step}


def run_rl(report: Report, run: str, check: Check) -> None:
    """The ``rl``, ``memory`` and ``checkpoint`` rows of ``run`` on its shape's saved model."""
    from logicrl.rl.trainer import Trainer

    shape, device = RUNS[run], check.device
    if shape not in check.models:
        raise RuntimeError(f"the {shape} model was not built (see generate {shape})")
    cfg = train_config(run, check.models[shape], check)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    load_s, trainer = timed(device, Trainer, cfg, show_progress=False)
    result = rl_steps(trainer, cfg, check.params[shape], check.peak_flops)
    report.set(f"rl {run} {shape}", load_s=load_s, **result)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    memory = memory_row(cfg, check.models[shape], result["longest_prompt"], peak)
    report.set(f"memory {run} {shape}", **memory)
    try:
        saved = trainable(trainer.policy)
        save_s, path = timed(device, trainer.save, 2)
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        del trainer  # the resumed run loads into freed memory
        free(device)
        report.set(f"checkpoint {run} {shape}", save_s=save_s, size_gib=size / GIB,
                   **resume_and_compare(cfg, saved, device))
    except Exception as err:  # noqa: BLE001 - reported in its row; the check goes on
        report.fail([f"checkpoint {run} {shape}"], describe(err))
        traceback.print_exc()


def guarded(report: Report, rows: list[str], check: Check, fn, *fn_args: Any) -> None:
    """``fn(report, *fn_args, check)`` unless the time budget is spent; an exception (out of memory included)
    goes into every row of ``rows`` not yet written, and the check goes on."""
    if time.perf_counter() - check.start > check.args.budget_s:
        report.fail(rows, f"skipped: the time budget of {check.args.budget_s:.0f} s was spent")
        return
    try:
        fn(report, *fn_args, check)
    except Exception as err:  # noqa: BLE001 - reported in the rows; the check goes on
        report.fail(rows, describe(err))
        traceback.print_exc()
    finally:
        free(check.device)


# -------------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true",
                        help="2-layer models and a few tokens, on the CPU (tests).")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")),
                        help="Folder for gpu_check.json and gpu_check.md (default: $OUT, else here).")
    parser.add_argument("--peak-tflops", type=float, default=989.0,
                        help="The device's peak dense bf16 TFLOP/s, for MFU (H200 and H100 SXM: 989).")
    parser.add_argument("--budget-s", type=float, default=450.0,
                        help="Start no phase after this many seconds (its rows say so); one took ≤ 2.6 min "
                             "on an H100, the whole check about 8 min.")
    parser.add_argument("--new-tokens", type=int,
                        help="Generation: tokens per response (default 1024; tiny 8).")
    parser.add_argument("--rl-tokens", type=int,
                        help="RL: rollout.max_response_tokens (default 256; tiny 8).")
    parser.add_argument("--runs", default=",".join(RUNS),
                        help=f"Runs, comma-separated, of: {', '.join(RUNS)}.")
    parser.add_argument("--workdir", type=Path,
                        help="Scratch folder, kept (default: a temporary one, removed).")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the check; return the report's rows (also written to ``--out``)."""
    import transformers

    from logicrl.models.tiny import build_tiny_tokenizer
    from logicrl.puzzles.dataset import DataConfig, generate
    from logicrl.puzzles.files import write_dataset

    args = parse_args(argv)
    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    sizes = TINY_SIZES if args.tiny else GPU_SIZES
    sizes = dataclasses.replace(sizes, new_tokens=args.new_tokens or sizes.new_tokens,
                                rl_tokens=args.rl_tokens or sizes.rl_tokens)
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    work = args.workdir or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    meta = {"device": label, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "date": datetime.date.today().isoformat(), "tiny": args.tiny,
            "peak_tflops": args.peak_tflops, "sizes": dataclasses.asdict(sizes),
            "argv": sys.argv[1:] if argv is None else argv,
            "workdir_free_gib": shutil.disk_usage(work).free / GIB}  # needed: 1.5B ≈ 22 GiB, 7B ≈ 16
    report = Report(args.out, meta)
    print(f"device check on {label}: torch {torch.__version__}, transformers {transformers.__version__}",
          flush=True)
    data = DataConfig(people=[3], train=4 * sizes.rl_prompts, test=0, formats=["jsonl"], seed=0)
    write_dataset(work / "data", data, generate(data))
    check = Check(args, device, sizes, build_tiny_tokenizer(), work, start=time.perf_counter())
    try:
        for run in [run for run in RUNS if run in args.runs.split(",")]:
            shape = RUNS[run]
            guarded(report, [f"generate {shape}"], check, prepare_shape, shape)
            rl_rows = [f"{kind} {run} {shape}" for kind in ("rl", "memory", "checkpoint")]
            guarded(report, rl_rows, check, run_rl, run)
            shutil.rmtree(check.models.pop(shape, work / "none"), ignore_errors=True)
            shutil.rmtree(work / f"run-{run}", ignore_errors=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    report.meta["total_s"] = time.perf_counter() - check.start
    report.write()
    print("\n" + report.table(), flush=True)
    return report.rows


if __name__ == "__main__":
    main()

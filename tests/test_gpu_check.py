"""benchmarks/gpu_check.py, the device check of issue #19, with ``--tiny`` on the CPU: every row of the
table is there and ok, the JSON holds every measurement, the resumed policy equals the saved one after steps
that moved it; and a phase that fails reports its error in its rows while the check goes on.

Run: ``OMP_NUM_THREADS=1 pytest tests/test_gpu_check.py`` (about 15 s).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def load_script():
    """The script as a module (registered first: its dataclass resolves annotations through sys.modules)."""
    if "gpu_check" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
        sys.modules["gpu_check"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["gpu_check"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The script as the device runs it (a subprocess, ``$OUT`` as its output folder), with ``--tiny``."""
    out = tmp_path_factory.mktemp("gpu-check")
    env = {**os.environ, "OUT": str(out), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--tiny"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, json.loads((out / "gpu_check.json").read_text()), (out / "gpu_check.md").read_text()


def test_every_row_is_in_the_table_and_ok(tiny_run):
    stdout, report, table = tiny_run
    names = load_script().row_names()
    assert len(names) == 8
    for name in names:
        assert report["rows"][name]["status"] == "ok", report["rows"][name]
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        assert "ERROR" not in row and "not run" not in row
        assert f"| {name} |" in stdout  # the table is printed too


def test_json_holds_every_measurement(tiny_run):
    _, report, _ = tiny_run
    rows = report["rows"]
    for shape in ("1.5b", "7b"):
        gen = rows[f"generate {shape}"]
        assert gen["ours_tokens"] == gen["hf_tokens"] == 2 * 2 * 8  # 2 prompts × 2 samples × 8 new tokens
        for key in ("ours_tokens_per_s", "hf_tokens_per_s", "ratio", "ours_mfu", "hf_mfu"):
            assert gen[key] > 0
    for run, shape in (("full", "1.5b"), ("lora", "7b")):
        rl = rows[f"rl {run} {shape}"]
        assert len(rl["steps"]) == 2 and rl["seconds_per_step"] > 0 and rl["update_mfu"] > 0
        assert set(rl["parts_s"]) == {"generate", "score", "logprobs", "update"}
        assert all(step["grad_norm"] > 0 for step in rl["steps"])  # the update moved the weights
        memory = rows[f"memory {run} {shape}"]
        assert memory["peak_gib"] is None  # CPU: no allocator statistics
        assert 0 < memory["plan_prompt_gib"] <= memory["plan_gib"]
    assert report["tiny"] is True and report["peak_tflops"] == 989.0


def test_resumed_policy_equals_saved(tiny_run):
    _, report, _ = tiny_run
    for name in ("checkpoint full 1.5b", "checkpoint lora 7b"):
        row = report["rows"][name]
        assert row["resumed_equal"] is True and row["resumed_start_step"] == 3 and row["tensors"] > 0
        assert row["save_s"] > 0 and row["resume_s"] > 0 and row["size_gib"] > 0
    # full fine-tuning checkpoints every weight, LoRA only the adapter: 2 layers × 7 linears × (A, B)
    assert report["rows"]["checkpoint lora 7b"]["tensors"] == 28


def test_a_failing_phase_reports_in_its_rows_and_the_check_goes_on(tmp_path, monkeypatch):
    script = load_script()

    def out_of_memory(*_args, **_kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(script, "build_and_save", out_of_memory)
    rows = script.main(["--tiny", "--runs", "full", "--out", str(tmp_path)])
    error = "RuntimeError: CUDA out of memory (simulated)"
    assert rows["generate 1.5b"] == {"status": "error", "error": error}
    for name in ("rl full 1.5b", "memory full 1.5b", "checkpoint full 1.5b"):
        assert rows[name]["status"] == "error" and "was not built" in rows[name]["error"]
    table = (tmp_path / "gpu_check.md").read_text()
    assert f"| generate 1.5b | ERROR: {error} |" in table
    assert "| generate 7b | not run |" in table
    assert json.loads((tmp_path / "gpu_check.json").read_text())["rows"] == rows


def test_the_memory_plan_holds_the_peaks_measured_on_an_h100():
    """results/gpu-check: the check's two calls on an H100 (2026-12-06). The plan `logicrl train --dry-run`
    prints for each run's config is within 25% of the peak that ``torch.cuda.max_memory_allocated`` measured
    there: full fine-tuning of the 1.5B shape and the LoRA run on the 7B shape (whose rollout peak, the base
    weights beside the engine's merged copy of them, the plan once left out: 18.4 GiB planned, 28.6 measured)."""
    import argparse

    from logicrl.models.memory_plan import GIB, ModelShape
    from logicrl.models.tiny import build_tiny_tokenizer
    from logicrl.rl.memory import train_plan

    script, tokenizer, checked = load_script(), build_tiny_tokenizer(), []
    for path in sorted((SCRIPT.parents[1] / "results" / "gpu-check").glob("h100-*.json")):
        report = json.loads(path.read_text())
        check = script.Check(argparse.Namespace(tiny=False), torch.device("cuda"),
                             script.Sizes(**report["sizes"]), tokenizer, Path("work"), start=0.0)
        for run, shape in script.RUNS.items():
            row = report["rows"].get(f"memory {run} {shape}", {})
            if row.get("status") != "ok":
                continue
            cfg = script.train_config(run, Path("model"), check)
            model = ModelShape.from_config(script.qwen_config(script.SHAPES[shape], tokenizer).to_dict())
            planned, measured = train_plan(cfg, model, on_cuda=True).total, row["peak_gib"] * GIB
            assert abs(planned - measured) <= 0.25 * measured, (path.name, run, planned / GIB, row["peak_gib"])
            checked.append(run)
    assert sorted(checked) == ["full", "lora"]

"""benchmarks/rl_step.py (issue #15) with the tiny random model: ``--shape quickstart`` refuses to run without
the cold-start checkpoint, and ``--update`` prints its six rows (consecutive rows, token budget, each prompt once per batch, the shared prefix
once, the tied embedding's sparse backward, the fused head) and the agreement lines, on a loss and gradient that are
not 0 (the tiny model scores every rollout −3: the benchmark then updates on fixed varied scores). (That the token budget gives the same loss and
gradients is tests/rl/test_update.py's, and the sparse backward's tests/test_tied_embedding.py's; this only keeps the benchmark's
use of the Trainer working.) No timings are asserted.

Run: ``OMP_NUM_THREADS=1 pytest tests/test_rl_step_bench.py`` (about 20 s).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "rl_step.py"


def bench(*flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *flags], capture_output=True, text=True, check=False)


def test_an_unknown_case_is_refused_before_anything_runs():
    proc = bench("--cases", "reinforce_pp_bf16,trl_fast")
    assert proc.returncode == 2
    assert "error: argument --cases: unknown cases ['trl_fast']; choose from ['trl', " in proc.stderr


def test_quickstart_shape_needs_the_cold_start_model():
    proc = bench("--shape", "quickstart")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "error: --shape quickstart needs --model: the cold-start checkpoint (outputs/quickstart/cold/checkpoints/step_*)")


def test_update_mode_prints_the_six_rows_and_the_checks():
    proc = bench("--update", "--shape", "quickstart", "--model", "tiny-random", "--max-new-tokens", "48",
                 "--micro-batch-tokens", "256", "--steps", "1", "--threads", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("# update phase, quickstart shape, tiny-random, float32, 1 threads, load ")
    rows = [line.split(" | ") for line in lines if line.startswith(("| before", "| token budget", "| + "))]
    assert [r[0] for r in rows] == ["| before: micro-batches of consecutive rows",
                                    "| token budget 256, each prompt once per micro-batch",
                                    "| + each prompt once per batch (`algorithm.prompts_once`)",
                                    "| + the prefix all prompts share, once (`shared_prefix_length`)",
                                    "| + the tied embedding's sparse backward (`logicrl.models.tied`)",
                                    "| + the fused head (`algorithm.logprob_chunk=512`)"]
    assert len({r[4] for r in rows}) == 1 and all(int(r[3]) >= int(r[4]) for r in rows)  # run ≥ the floor
    assert int(rows[2][3]) <= int(rows[1][3])  # the same micro-batches, each prompt once
    assert int(rows[3][3]) < int(rows[2][3])  # the K&K prompts open alike: that prefix once
    assert rows[5][3] == rows[4][3] == rows[3][3]  # the same tokens; only the embedding's backward, the head change
    checks = [line for line in lines if line.startswith(("policy/loss:", "kl:", "entropy:", "grad_norm:"))]
    assert len(checks) == 20 and all(": agree (" in line for line in checks)
    assert any(line.startswith("(the model gave every rollout one score") for line in lines)
    before = {line.split(":")[0]: float(line.split("before ")[1].split(",")[0]) for line in checks}
    assert before["grad_norm"] > 1e-2  # a real gradient is compared (the loss is ≈ 0: whitened advantages)


def test_update_skip_benchmark_prints_both_rows_and_the_check(tmp_path):
    """benchmarks/update_skip.py on the tiny model (all scores equal, so nothing is skipped: both rows run every
    token, and the check lines must still agree)."""
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "logicrl", "data", "generate", "--people", "2", "--train", "8", "--test",
                    "2", "--val", "2", "--seed", "0", "--out", str(data)], check=True, capture_output=True)
    proc = subprocess.run([sys.executable, str(SCRIPT.with_name("update_skip.py")), "--model", "tiny-random",
                           "--data", str(data), "--threads", "1", "--max-new-tokens", "48"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split(" | ") for line in proc.stdout.splitlines() if line.startswith(("| before", "| after"))]
    assert [r[0] for r in rows] == ["| before: every response token", "| after: stop at the last A ≠ 0"]
    assert rows[0][1] == rows[1][1]  # equal scores: A = 0 everywhere, so the step runs every token
    checks = [line for line in proc.stdout.splitlines() if line.startswith(("policy/loss:", "grad_norm:"))]
    assert len(checks) == 2 and all(": agree (" in line for line in checks)


def test_logprob_entropy_benchmark_prints_both_rows_and_agrees():
    """benchmarks/logprob_entropy.py on a tiny batch: both rows, and ℓ and H the same to float rounding."""
    proc = subprocess.run([sys.executable, str(SCRIPT.with_name("logprob_entropy.py")), "--rows", "1", "--tokens",
                           "3", "--repeat", "1", "--threads", "1"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split(" | ") for line in proc.stdout.splitlines() if line.startswith(("| before", "| after"))]
    assert len(rows) == 2 and rows[0][2] == "1.00× |"
    last = proc.stdout.strip().splitlines()[-1].split()  # largest |Δℓ| X, |ΔH| Y
    assert float(last[2].rstrip(",")) < 1e-4 and float(last[4]) < 1e-4

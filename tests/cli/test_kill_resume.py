"""Evidence: `logicrl train` killed with SIGKILL in the middle of a checkpoint save, then ``--resume``d, ends
with the metrics, rollouts and weights of a run that was never interrupted.

The kill is made deterministic on the test side: the killed run is the real console entry point in a child
process whose `logicrl.rl.checkpoints.save_pretrained_atomic` is wrapped so that the save of one step writes
the model files and half of the trainer state into the temporary directory, then SIGKILLs its own process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import torch
from safetensors.torch import load_file

from logicrl.rl.checkpoints import STATE_FILE, list_checkpoints
from logicrl.rl.run_log import read_metrics

# argv[1]: the checkpoint directory name whose save is killed; the rest: the `logicrl` arguments
DIE_DURING_SAVE = """
import os, signal, sys
import logicrl.rl.checkpoints as checkpoints

kill_at = sys.argv.pop(1)
real_save = checkpoints.save_pretrained_atomic


def save(model, tokenizer, out_dir, **kwargs):
    if out_dir.name != kill_at:
        return real_save(model, tokenizer, out_dir, **kwargs)

    def write_half_the_state_and_die(tmp):
        kwargs["extra"](tmp)
        state = tmp / checkpoints.STATE_FILE
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
        os.kill(os.getpid(), signal.SIGKILL)

    return real_save(model, tokenizer, out_dir, **{**kwargs, "extra": write_half_the_state_and_die})


checkpoints.save_pretrained_atomic = save
from logicrl.cli import main

main()
"""

TINY = ["--model", "tiny-random", "--steps", "4", "model.device=cpu", "rollout.prompts_per_step=2",
        "rollout.group_size=2", "rollout.max_response_tokens=8", "rollout.temperature=1.0", "optim.lr=1e-3",
        "data.val_puzzles_per_people=1", "val_every=2", "save_every=1", "keep_last=2", "threads=1"]


def python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          env=env, check=False)


def logicrl(*args: str) -> subprocess.CompletedProcess:
    return python("from logicrl.cli import main; main()", *args)


def stable(rows: list[dict]) -> list[dict]:
    """Metric lines without the wall-clock ones (``time``, ``time/*``, ``tokens_per_s``)."""
    return [{k: v for k, v in row.items() if not k.startswith(("time", "tokens_per_s"))} for row in rows]


def test_sigkill_during_a_checkpoint_save_then_resume_matches_an_uninterrupted_run(puzzle_dir, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = logicrl("train", "--data", str(puzzle_dir), "--out", str(straight), *TINY)
    assert done.returncode == 0, done.stderr

    dead = python(DIE_DURING_SAVE, "step_000003", "train", "--data", str(puzzle_dir), "--out", str(killed),
                  *TINY)
    assert dead.returncode == -signal.SIGKILL, dead.stderr
    checkpoints = killed / "checkpoints"
    assert [step for step, _ in list_checkpoints(killed)] == [1, 2]
    assert not (checkpoints / "step_000003").exists()
    (partial,) = checkpoints.glob(".step_000003.tmp-*")  # the save died in its hidden temporary directory
    assert any(partial.glob("*.safetensors")) and (partial / STATE_FILE).is_file()
    assert [m["step"] for m in read_metrics(killed, "train")] == [1, 2, 3]  # step 3 was logged, then the kill

    resumed = logicrl("train", "--resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    assert "cannot be loaded" not in resumed.stderr  # the half-written save was never a checkpoint

    assert [m["step"] for m in read_metrics(killed, "train")] == [1, 2, 3, 4]
    assert stable(read_metrics(killed)) == stable(read_metrics(straight))
    for name in ("step_000003.jsonl", "step_000004.jsonl"):
        assert (killed / "rollouts" / name).read_text() == (straight / "rollouts" / name).read_text()
    weights = [load_file(run / "checkpoints" / "step_000004" / "model.safetensors")
               for run in (straight, killed)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["steps"] == 4 and [step for step, _ in list_checkpoints(killed)] == [3, 4]

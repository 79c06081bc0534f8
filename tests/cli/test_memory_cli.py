"""The memory plan in ``logicrl train`` / ``logicrl sft``: ``--dry-run`` prints it without loading anything, and a
run that cannot fit a (simulated) 80 GB GPU is refused in one line before the run directory exists."""

from __future__ import annotations

import json
import sys

import pytest

from logicrl.cli import main
from logicrl.rl import memory

QWEN_7B = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 3584,
           "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4, "intermediate_size": 18944,
           "vocab_size": 152064, "tie_word_embeddings": False}


@pytest.fixture
def qwen_7b_dir(tmp_path):
    """A 'checkpoint' with a Qwen2.5-7B-shaped config.json, a tokenizer config and no weights: loading it would
    fail."""
    path = tmp_path / "qwen7b"
    path.mkdir()
    (path / "config.json").write_text(json.dumps(QWEN_7B))
    (path / "tokenizer_config.json").write_text("{}")
    return path


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["logicrl", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code or 0, capsys.readouterr().err


def test_dry_run_prints_the_plan_and_loads_nothing(monkeypatch, capsys, qwen_7b_dir, tmp_path):
    out = tmp_path / "run"
    code, err = run_main(monkeypatch, capsys, "train", "--config", "configs/paper-reinforce-pp.yaml",
                         "--model", str(qwen_7b_dir), "--out", str(out), "--dry-run")
    assert code == 0, err
    assert "7.62B parameters" in err
    for component in ("weights", "gradients", "optimizer (AdamW)", "reference model", "logits", "activations",
                      "KV cache", "peak"):
        assert component in err
    assert not out.exists()


def test_dry_run_on_a_simulated_80_gb_gpu_says_it_does_not_fit(monkeypatch, capsys, qwen_7b_dir, tmp_path):
    monkeypatch.setattr(memory, "device_capacity", lambda device: memory.Device("cuda:0 (simulated)", 80 * 10**9, True))
    code, err = run_main(monkeypatch, capsys, "train", "--config", "configs/paper-reinforce-pp.yaml",
                         "--model", str(qwen_7b_dir), "--out", str(tmp_path / "run"), "--dry-run")
    assert code == 0 and "does not fit" in err and "logicrl verl launch" in err


def test_a_run_that_cannot_fit_is_refused_in_one_line(monkeypatch, capsys, qwen_7b_dir, puzzle_dir, tmp_path):
    monkeypatch.setattr(memory, "device_capacity", lambda device: memory.Device("cuda:0 (simulated)", 80 * 10**9, True))
    out = tmp_path / "run"
    code, err = run_main(monkeypatch, capsys, "train", "--config", "configs/paper-reinforce-pp.yaml",
                         "--model", str(qwen_7b_dir), "--data", str(puzzle_dir), "--out", str(out), "data.people=null")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: the memory plan needs") and "74.5 GiB" in lines[0]
    for knob in ("logicrl verl launch", "algorithm.micro_batch_size", "rollout.max_response_tokens"):
        assert knob in lines[0]
    assert not out.exists()


def test_sft_dry_run_and_unknown_models(monkeypatch, capsys, tmp_path):
    code, err = run_main(monkeypatch, capsys, "sft", "--model", "tiny-random", "--out", str(tmp_path / "r"),
                         "--dry-run")
    assert code == 0 and "memory plan:" in err and "reference" not in err
    code, err = run_main(monkeypatch, capsys, "train", "--model", "no-such-org/no-such-model-3f9a", "--out",
                         str(tmp_path / "r"), "--dry-run")
    assert code == 0 and "memory plan: not made" in err

"""Tests for logicrl.integrations.verl_export: the veRL row schema, the files, and the chat template that
renders the rows as our prompts (no veRL needed; test_verl_contract.py checks the same with veRL itself).

Run: .venv/bin/python -m pytest tests/integrations/test_verl_export.py -q
"""

from __future__ import annotations

import copy
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from transformers import AutoTokenizer

from logicrl.errors import ConfigError, DataError
from logicrl.integrations.verl import compute_score
from logicrl.integrations.verl_export import (
    PLAIN_CHAT_TEMPLATE,
    build_export,
    read_puzzles,
    rollout_chat_template,
    verl_row,
    write_export,
)
from logicrl.models import TINY_MODEL, resolve_model_path
from logicrl.prompts import SYSTEM_PROMPT, PromptConfig, chat_messages, prompt_text
from logicrl.puzzles.dataset import DataConfig, generate
from logicrl.puzzles.files import write_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kk")
    config = DataConfig(people=[3, 4], train=10, test=3, seed=1)
    write_dataset(out, config, generate(config))
    return out


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(resolve_model_path(TINY_MODEL))


def test_row_schema(dataset: Path) -> None:
    record = read_puzzles(dataset, [4], None, 0)[0][0]
    row = verl_row(record, "train", 7, PromptConfig())
    assert set(row) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
    assert row["data_source"] == "kk_4ppl" and row["ability"] == "logic"
    assert row["prompt"] == [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": record["quiz"]}]
    assert row["reward_model"] == {"style": "rule", "ground_truth": {
        "solution_text_format": record["solution_text_format"], "knight_knave": record["knight_knave"],
        "quiz": record["quiz"]}}
    assert row["extra_info"] == {"split": "train", "index": 7, "id": record["id"], "n_people": 4,
                                 "depth": record["depth"], "width": record["width"], "prefilled_think": True}


def test_files_per_split_and_people(dataset: Path) -> None:
    files = build_export(*read_puzzles(dataset, None, None, 2), PromptConfig())
    counts = {name: len(rows) for name, rows in files.items()}
    assert counts == {"train.parquet": 20, "train_3ppl.parquet": 10, "train_4ppl.parquet": 10,
                      "test.parquet": 4, "test_3ppl.parquet": 2, "test_4ppl.parquet": 2}
    assert {r["extra_info"]["n_people"] for r in files["train_4ppl.parquet"]} == {4}
    assert [r["extra_info"]["index"] for r in files["train.parquet"]] == list(range(20))


def test_selection_mirrors_logicrl_train(dataset: Path, tmp_path: Path) -> None:
    train, val = read_puzzles(dataset, [3], None, None)
    assert (len(train), len(val)) == (10, 3) and {r["n_people"] for r in train + val} == {3}
    assert read_puzzles(dataset, None, None, 0)[1] == []
    assert read_puzzles(dataset, None, dataset / "4ppl" / "test.jsonl", 1)[1][0]["n_people"] == 4
    with pytest.raises(DataError):
        read_puzzles(dataset, [5], None, None)
    with pytest.raises(DataError):
        read_puzzles(tmp_path / "missing", None, None, None)
    # a single file is its own every split: validating on it would score the training puzzles
    single = dataset / "3ppl" / "train.jsonl"
    with pytest.raises(DataError, match="is a single file, so it holds no held-out puzzles to validate on"):
        read_puzzles(single, None, None, None)
    assert read_puzzles(single, None, None, 0)[1] == []
    assert read_puzzles(single, None, dataset / "4ppl" / "test.jsonl", 1)[1][0]["n_people"] == 4


def test_parquet_round_trip_scores_with_compute_score(dataset: Path, tmp_path: Path) -> None:
    files = build_export(*read_puzzles(dataset, [3], None, 1), PromptConfig())
    counts = write_export(tmp_path, files, None)
    assert counts == {"train.parquet": 10, "train_3ppl.parquet": 10, "test.parquet": 1, "test_3ppl.parquet": 1}
    rows = pq.read_table(tmp_path / "train_3ppl.parquet").to_pylist()
    assert rows == files["train_3ppl.parquet"]
    truth = rows[0]["reward_model"]["ground_truth"]
    right = f"Only this assignment is consistent.</think><answer>{truth['solution_text_format']}</answer>"
    assert compute_score(rows[0]["data_source"], right, truth, rows[0]["extra_info"]) == {"score": 3.0, "acc": 1.0,
                                                                                          "format": 1.0}


QUIZ = 'Zoey says "Oliver is a knave".\nWho is who?'


@pytest.mark.parametrize("prompt", [
    PromptConfig(), PromptConfig(prefill="<think>\n"), PromptConfig(prefill="Let me {{ think }}: "),
    PromptConfig(template="plain"), PromptConfig(template="plain", system_prompt=""),
    PromptConfig(template="plain", prefill=""),
])
def test_template_renders_our_prompt(prompt: PromptConfig, tokenizer) -> None:
    rendered = copy.deepcopy(tokenizer)
    rendered.chat_template = rollout_chat_template(prompt, tokenizer.chat_template)
    text = rendered.apply_chat_template(chat_messages(QUIZ, prompt), tokenize=False, add_generation_prompt=True)
    assert text == prompt_text(QUIZ, tokenizer, prompt)


def test_template_edge_cases(tokenizer) -> None:
    assert rollout_chat_template(PromptConfig(prefill=""), None) is None  # the model's own template is right
    assert rollout_chat_template(PromptConfig(template="plain", prefill=""), None) == PLAIN_CHAT_TEMPLATE
    with_newline = copy.deepcopy(tokenizer)
    with_newline.chat_template = tokenizer.chat_template + "\n"  # jinja drops one trailing newline
    with_newline.chat_template = rollout_chat_template(PromptConfig(), with_newline.chat_template)
    text = with_newline.apply_chat_template(chat_messages(QUIZ, PromptConfig()), tokenize=False,
                                            add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n<think>")
    with pytest.raises(ConfigError, match="no chat template"):
        rollout_chat_template(PromptConfig(), None)
    with pytest.raises(ConfigError, match="endraw"):
        rollout_chat_template(PromptConfig(prefill="{% endraw %}"), tokenizer.chat_template)

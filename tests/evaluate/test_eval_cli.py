"""`logicrl eval` and `logicrl eval memorization` end to end: the tiny model under two labels, rescoring
saved samples without a model (hand-written responses, hand-computed metrics), and one-line errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from logicrl.cli import app
from logicrl.cli.eval import warn_unpaired
from logicrl.errors import DataError, UserError
from logicrl.evaluate.compare import paired_interval
from logicrl.evaluate.config import EvalConfig
from logicrl.evaluate.memorization import make_twins
from logicrl.evaluate.runner import select_records
from logicrl.evaluate.scoring import quiz_digest, score_sample
from logicrl.io import write_jsonl
from logicrl.models import TINY_MODEL, build_tiny_model, resolve_model_path
from logicrl.puzzles.dataset import DataConfig, generate
from logicrl.puzzles.files import dataset_files, load_records, write_dataset
from logicrl.puzzles.logic import Op
from logicrl.reward.score import RewardConfig
from logicrl.rl.config import TrainConfig

runner = CliRunner()


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the hub (aliases build into the session's cache, tests/conftest.py)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The real console entry point in a subprocess (what a user's shell does)."""
    code = "from logicrl.cli import main; main()"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_eval_two_models_one_table(tmp_path: Path, dataset: Path) -> None:
    copy = tmp_path / "tiny-copy"
    build_tiny_model(copy)
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", "-m", "tiny-random", "-m", f"copy={copy}", "--data", str(dataset),
                                 "--out", str(out), "--limit", "2", "--max-tokens", "8", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    table = (out / "table.md").read_text()
    assert "| Model | 2 | 3 | Avg. | Format | Length |" in table
    assert "| tiny-random | 0.00 | 0.00 | 0.00 | 0.00 |" in table
    assert "| copy | 0.00 | 0.00 | 0.00 | 0.00 |" in table
    assert "Accuracy by number of people" in result.output
    summary = json.loads((out / "results.json").read_text())
    assert list(summary["models"]) == ["tiny-random", "copy"]
    assert summary["models"]["copy"]["name"] == str(copy)
    assert summary["models"]["tiny-random"]["by_people"]["3"]["puzzles"] == 2
    assert summary["config"]["reward"]["mode"] == "strict" and summary["config"]["split"] == "test"
    samples = {label: [json.loads(x) for x in (out / "samples" / f"{label}.jsonl").read_text().splitlines()]
               for label in ("tiny-random", "copy")}
    assert len(samples["copy"]) == 4 and {r["model"] for r in samples["copy"]} == {"copy"}
    assert [r["n_people"] for r in samples["copy"]] == [2, 2, 3, 3]
    # the same weights, greedy: the same responses under both labels
    assert [r["response"] for r in samples["copy"]] == [r["response"] for r in samples["tiny-random"]]
    assert all(r["length"] <= 8 and "assignment" in r and r["prefilled_think"] for r in samples["copy"])
    quizzes = {r["id"]: quiz_digest(r) for r in load_records(dataset_files(dataset, "test"))}
    assert [r["quiz_sha1"] for r in samples["copy"]] == [quizzes[r["id"]] for r in samples["copy"]]
    assert (out / "table.csv").read_text().splitlines()[0] == "model,metric,2,3,avg"
    compare = json.loads((out / "compare.json").read_text())  # same responses: Δ = 0 everywhere
    low, high = paired_interval(0, 0, 0, 4)  # four puzzles, both wrong on each: Δ = 0, but not a [0, 0] interval
    assert compare["copy vs tiny-random"]["solved"]["all"] == {"n": 4, "base": 0.0, "other": 0.0, "delta": 0.0,
                                                               "low": low, "high": high}
    assert low < 0 < high
    assert "Paired difference vs tiny-random" in result.output


def scripted_generate(replies: dict[str, str]):
    """A stand-in for `logicrl.engine.decode.generate` that answers each prompt with the reply of the quiz it
    holds (``replies``: quiz -> response text), tokenized as the model would have returned it."""
    import torch

    from logicrl.engine.sequences import Generation

    def generate(model, prompts, *, n, max_new_tokens, pad_token_id, tokenizer, **_):
        texts = [tokenizer.decode(ids) for ids in prompts]
        chosen = [next(reply for quiz, reply in replies.items() if quiz in text)
                  for text in texts for _ in range(n)]
        ids = [tokenizer(reply, add_special_tokens=False)["input_ids"][:max_new_tokens] for reply in chosen]
        width = max(map(len, ids))
        return Generation(
            prompt_ids=torch.zeros(len(ids), 1, dtype=torch.long), prompt_mask=torch.ones(len(ids), 1),
            response_ids=torch.tensor([row + [pad_token_id] * (width - len(row)) for row in ids]),
            response_mask=torch.tensor([[1.0] * len(row) + [0.0] * (width - len(row)) for row in ids]),
            truncated=torch.zeros(len(ids), dtype=torch.bool))

    return generate


def test_eval_table_from_known_responses(tmp_path: Path, dataset: Path, test_records: list[dict], respond,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny model loads and its prompts are built as usual, but its responses are known: both 2-person
    puzzles answered right, the first 3-person one right and the second wrong. By hand: 1.00 and 0.50 per
    level, 0.75 on average, every response well formed."""
    from logicrl.evaluate import scoring

    two = [r for r in test_records if r["n_people"] == 2][:2]
    three = [r for r in test_records if r["n_people"] == 3][:2]
    replies = {r["quiz"]: respond(r, correct=r is not three[1]) for r in [*two, *three]}
    monkeypatch.setattr(scoring, "generate", scripted_generate(replies))
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", "-m", "tiny-random", "--data", str(dataset), "--out", str(out),
                                 "--limit", "2", "--max-tokens", "512", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "| tiny-random | 1.00 | 0.50 | 0.75 | 1.00 |" in (out / "table.md").read_text()
    levels = json.loads((out / "results.json").read_text())["models"]["tiny-random"]["by_people"]
    assert (levels["2"]["acc"], levels["3"]["acc"]) == (1.0, 0.5)
    assert levels["2"]["reward"] == 3.0  # format 1 + answer 2
    assert levels["3"]["reward"] == (3.0 - 0.5) / 2  # a wrong answer: format 1 − 1.5
    saved = [json.loads(x) for x in (out / "samples" / "tiny-random.jsonl").read_text().splitlines()]
    assert [row["response"] for row in saved] == [replies[r["quiz"]] for r in [*two, *three]]


def test_eval_k_samples_reports_pass_at_k_and_majority(tmp_path: Path, dataset: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", "-m", "tiny-random", "--data", str(dataset), "--out", str(out),
                                 "--people", "2", "--limit", "2", "-k", "2", "--temperature", "1.0",
                                 "--max-tokens", "4", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    level = json.loads((out / "results.json").read_text())["models"]["tiny-random"]["by_people"]["2"]
    assert level["n"] == 4 and level["puzzles"] == 2 and {"pass@1", "pass@2", "maj@2"} <= set(level)
    assert "### pass@2" in (out / "table.md").read_text()


def write_samples(path: Path, model: str, rows: list[tuple[dict, int, str]]) -> None:
    """Saved sample rows (the fields rescoring reads) for (record, sample index, response)."""
    write_jsonl(path, [{"model": model, "id": r["id"], "n_people": r["n_people"], "sample": j,
                        "response": text, "length": 10, "truncated": False,
                        "prefilled_think": not text.startswith("<think>")} for r, j, text in rows])


def test_rescore_saved_samples_without_a_model(tmp_path: Path, dataset: Path, test_records: list[dict],
                                               respond) -> None:
    two = [r for r in test_records if r["n_people"] == 2]
    three = [r for r in test_records if r["n_people"] == 3]
    rows = [(r, 0, respond(r)) for r in two] + [(r, 1, respond(r, correct=False)) for r in two]
    rows += [(three[0], 0, respond(three[0], opens_think=True)), (three[0], 1, respond(three[0]))]
    rows += [(r, j, respond(r, correct=False)) for r in three[1:] for j in range(2)]
    out = tmp_path / "out"
    write_samples(out / "samples" / "hand.jsonl", "hand", rows)
    result = runner.invoke(app, ["eval", "--rescore", "--data", str(dataset), "--out", str(out),
                                 "--reward-mode", "logic-rl"])
    assert result.exit_code == 0, result.output
    assert "hand: rescored 12 samples" in result.output
    summary = json.loads((out / "results.json").read_text())
    levels = summary["models"]["hand"]["by_people"]
    # 2 people: each puzzle 1 right + 1 wrong -> acc 1/2, pass@2 1, majority a 1-1 tie -> 1/2
    assert levels["2"]["acc"] == 0.5 and levels["2"]["pass@2"] == 1.0 and levels["2"]["maj@2"] == 0.5
    # 3 people: puzzle 0 right twice, the two others wrong twice -> 1/3 everywhere
    assert levels["3"]["acc"] == pytest.approx(1 / 3) and levels["3"]["maj@2"] == pytest.approx(1 / 3)
    assert summary["config"]["reward"]["mode"] == "logic-rl"
    saved = [json.loads(x) for x in (out / "samples" / "hand.jsonl").read_text().splitlines()]
    assert sum(r["solved"] for r in saved) == 5 and all(r["model"] == "hand" for r in saved)

    # one level only: the other level's rows stay in the file, out of the table
    result = runner.invoke(app, ["eval", "--rescore", "-m", "hand", "--data", str(dataset), "--out", str(out),
                                 "--people", "3"])
    assert result.exit_code == 0, result.output
    assert list(json.loads((out / "results.json").read_text())["models"]["hand"]["by_people"]) == ["3"]
    assert (out / "samples" / "hand.jsonl").read_text().count("\n") == 12


def test_rescore_scores_the_levels_saved_and_never_writes_empty_tables(tmp_path: Path, respond) -> None:
    """Samples of 9-person puzzles, in data of 3 and 9: a rescore without --people scores the 9-person ones (the
    default 2–8 left them out and wrote tables without a row), a --limit is not used (and says so); a rescore at
    --people 3, where no sample is, fails in one line and leaves the tables as they were."""
    data, out = tmp_path / "data", tmp_path / "out"
    cfg = DataConfig(people=[3, 9], train=1, test=2, seed=1, formats=["jsonl"])
    write_dataset(data, cfg, generate(cfg))
    nine = [r for r in load_records(dataset_files(data, "test")) if r["n_people"] == 9]
    write_samples(out / "samples" / "hand.jsonl", "hand", [(nine[0], 0, respond(nine[0])),
                                                           (nine[1], 0, respond(nine[1], correct=False))])
    result = run_cli("eval", "--rescore", "--data", str(data), "--out", str(out), "--limit", "1")
    assert result.returncode == 0, result.stderr
    assert "limit=1 not used" in result.stderr
    summary = json.loads((out / "results.json").read_text())
    assert summary["models"]["hand"]["by_people"]["9"]["acc"] == 0.5
    assert list(summary["models"]["hand"]["by_people"]) == ["9"]
    assert summary["config"]["people"] == [9] and summary["config"]["limit"] is None
    tables = {name: (out / name).read_text() for name in ("results.json", "table.md", "table.csv")}
    result = run_cli("eval", "--rescore", "--data", str(data), "--out", str(out), "--people", "3")
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: {out / 'samples' / 'hand.jsonl'}: no saved samples of model 'hand' "
                                     "with 3 people to rescore; give the --people they were made with")
    assert {name: (out / name).read_text() for name in tables} == tables


def test_levels_outside_the_default_people_are_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The default --people (2–8) over data of 3 and 9 people evaluates 3 and warns that 9 is left out; the
    levels asked for explicitly leave no warning."""
    data = tmp_path / "data"
    cfg = DataConfig(people=[3, 9], train=1, test=2, seed=1, formats=["jsonl"])
    write_dataset(data, cfg, generate(cfg))
    assert {r["n_people"] for r in select_records(data, "test", list(range(2, 9)), None)} == {3}
    assert "the test puzzles with 9 people are not evaluated" in capsys.readouterr().err
    assert len(select_records(data, "test", [3, 9], None, every_level=True)) == 4
    assert capsys.readouterr().err == ""


def test_results_record_the_data_and_no_split_for_a_file(tmp_path: Path, dataset: Path, test_records: list[dict],
                                                        respond) -> None:
    """results.json records the --data read; a file is read whole, so a --split given with it is not used: a
    warning says so and no split is recorded (it recorded the split it ignored)."""
    out, file = tmp_path / "out", dataset_files(dataset, "test")[0]
    write_samples(out / "samples" / "hand.jsonl", "hand", [(test_records[0], 0, respond(test_records[0]))])
    result = run_cli("eval", "--rescore", "--data", str(file), "--split", "train", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"--data {file} is a file, read whole: split=train not used" in result.stderr
    config = json.loads((out / "results.json").read_text())["config"]
    assert config["data"] == str(file) and config["split"] is None
    result = run_cli("eval", "--rescore", "--data", str(dataset), "--split", "test", "--out", str(out))
    assert result.returncode == 0 and "not used" not in result.stderr
    config = json.loads((out / "results.json").read_text())["config"]
    assert config["data"] == str(dataset) and config["split"] == "test"


def test_models_scored_on_other_puzzles_are_flagged(capsys: pytest.CaptureFixture) -> None:
    """Two models over 2 and 3 puzzles, 2 shared: a warning with the counts; the same puzzles: none."""
    warn_unpaired({"a": [{"id": "p1"}, {"id": "p2"}], "b": [{"id": "p1"}, {"id": "p2"}, {"id": "p3"}]})
    assert "different puzzles (a 2, b 3; 2 shared)" in capsys.readouterr().err
    warn_unpaired({"a": [{"id": "p1"}, {"id": "p1"}], "b": [{"id": "p1"}]})  # samples per puzzle may differ
    assert capsys.readouterr().err == ""


def test_a_level_listed_twice_is_refused() -> None:
    """--people 2,2,3 evaluated 2 people twice (double weight in the averages): refused in every config."""
    with pytest.raises(ValueError, match="2 people listed more than once"):
        EvalConfig(people="2,2,3")
    with pytest.raises(ValueError, match="3 people listed more than once"):
        TrainConfig.model_validate({"model": {"name": "x"}, "data": {"train": "d", "people": [3, 3]}})


def test_rescore_records_the_settings_the_samples_were_made_with(tmp_path: Path, dataset: Path,
                                                                test_records: list[dict], respond) -> None:
    two = [r for r in test_records if r["n_people"] == 2]
    out = tmp_path / "out"
    write_samples(out / "samples" / "hand.jsonl", "hand", [(r, j, respond(r)) for r in two for j in range(2)])
    rescore = ["eval", "--rescore", "--data", str(dataset), "--out", str(out), "--people", "2"]
    # no record of how they were made: the generation settings are left out, not given this run's defaults
    assert runner.invoke(app, rescore).exit_code == 0
    config = json.loads((out / "results.json").read_text())["config"]
    assert config["people"] == [2] and not {"max_tokens", "temperature", "samples", "prompt"} & config.keys()

    made = {"max_tokens": 512, "temperature": 0.7, "samples": 2, "seed": 3, "reward": {"mode": "strict"}}
    (out / "results.json").write_text(json.dumps({"config": made, "models": {}}))
    result = runner.invoke(app, [*rescore, "--max-tokens", "256", "--seed", "3", "--reward-mode", "logic-rl"])
    assert result.exit_code == 0, result.output
    assert ("warning: --rescore scores the saved samples as they are: max_tokens=256 not used (they were made "
            "with max_tokens=512, as results.json records)") in result.stderr
    config = json.loads((out / "results.json").read_text())["config"]
    assert (config["max_tokens"], config["temperature"], config["samples"], config["seed"]) == (512, 0.7, 2, 3)
    assert config["reward"]["mode"] == "logic-rl" and "top_p" not in config  # this run scores; top_p unknown

    # the record carries over to the next rescore, which gives nothing that differs: no warning
    (out / "partial").mkdir()
    (out / "partial" / "hand.jsonl").write_text("")  # an unfinished generation's journal: a rescore keeps it
    result = runner.invoke(app, rescore)
    assert "warning" not in result.stderr
    assert json.loads((out / "results.json").read_text())["config"]["max_tokens"] == 512
    assert (out / "partial" / "hand.jsonl").exists()


def test_each_sample_file_records_how_it_was_made(tmp_path: Path, dataset: Path) -> None:
    """Two runs into one folder with other settings: a rescore of both records only what they share and says
    what differs; a rescore of one records its own settings."""
    out = tmp_path / "out"
    generate = ["eval", "--data", str(dataset), "--out", str(out), "--people", "2", "--limit", "1", "--device", "cpu"]
    assert runner.invoke(app, [*generate, "-m", "a=tiny-random", "--max-tokens", "4"]).exit_code == 0
    record = json.loads((out / "samples" / "a.generation.json").read_text())
    assert record["model"] == "tiny-random"
    assert (record["settings"]["max_tokens"], record["settings"]["samples"], record["settings"]["temperature"]) == (4, 1, 0.0)
    assert not {"reward", "people", "split", "limit"} & record["settings"].keys()  # what is read and scored
    assert runner.invoke(app, [*generate, "-m", "b=tiny-random", "--max-tokens", "6"]).exit_code == 0
    assert (out / "samples" / "a.jsonl").is_file()  # the first run's samples stay beside the second's

    rescore = ["eval", "--rescore", "--data", str(dataset), "--out", str(out), "--people", "2"]
    result = runner.invoke(app, rescore)
    assert result.exit_code == 0, result.output
    assert ("warning: the saved samples were not all made with the same settings: max_tokens (b=6, a=4); "
            "results.json records only the settings they share") in result.stderr
    config = json.loads((out / "results.json").read_text())["config"]
    assert list(json.loads((out / "results.json").read_text())["models"]) == ["b", "a"]  # the last run's first
    assert "max_tokens" not in config and (config["temperature"], config["samples"]) == (0.0, 1)

    result = runner.invoke(app, [*rescore, "-m", "b", "--max-tokens", "9"])
    assert result.exit_code == 0, result.output
    assert ("max_tokens=9 not used (they were made with max_tokens=6, as samples/<label>.generation.json "
            "records)") in result.stderr
    assert "not all made with the same settings" not in result.stderr
    assert json.loads((out / "results.json").read_text())["config"]["max_tokens"] == 6

    (out / "samples" / "a.generation.json").unlink()  # e.g. a kill between the samples and their record
    result = runner.invoke(app, rescore)
    assert "no record for a" in result.stderr
    assert not {"max_tokens", "temperature"} & json.loads((out / "results.json").read_text())["config"].keys()


def test_a_rescore_that_fails_leaves_every_sample_file_as_it_was(tmp_path: Path, dataset: Path,
                                                                   test_records: list[dict], respond) -> None:
    """-m hand -m ghost: hand's file was rewritten with the new reward's scores, then ghost's missing samples
    stopped the command: samples and tables disagreed."""
    two = [r for r in test_records if r["n_people"] == 2]
    out = tmp_path / "out"
    write_samples(out / "samples" / "hand.jsonl", "hand", [(r, 0, respond(r) + " trailing") for r in two])
    before = (out / "samples" / "hand.jsonl").read_bytes()
    result = runner.invoke(app, ["eval", "--rescore", "-m", "hand", "-m", "ghost", "--data", str(dataset),
                                 "--out", str(out), "--people", "2", "--reward-mode", "logic-rl"])
    assert isinstance(result.exception, DataError) and "ghost.jsonl: no saved samples" in str(result.exception)
    assert (out / "samples" / "hand.jsonl").read_bytes() == before


def test_rescore_keeps_the_model_order_and_names(tmp_path: Path, dataset: Path, test_records: list[dict],
                                                  respond) -> None:
    """Without -m, the models come in the earlier results.json's order (the first stays the paired baseline),
    named as their generation record, else results.json, says."""
    two = [r for r in test_records if r["n_people"] == 2]
    out = tmp_path / "out"
    for label in ("zbase", "arl", "new"):
        write_samples(out / "samples" / f"{label}.jsonl", label, [(r, 0, respond(r)) for r in two])
    earlier = {"zbase": {"name": "base-model"}, "arl": {"name": "old/arl"}}
    (out / "results.json").write_text(json.dumps({"config": {}, "models": earlier}))
    (out / "samples" / "arl.generation.json").write_text(json.dumps({"model": "ckpt/arl", "settings": {}}))
    result = runner.invoke(app, ["eval", "--rescore", "--data", str(dataset), "--out", str(out), "--people", "2"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "results.json").read_text())
    assert list(summary["models"]) == ["zbase", "arl", "new"]  # a file the summary does not list comes last
    assert [m["name"] for m in summary["models"].values()] == ["base-model", "ckpt/arl", "new"]
    assert list(json.loads((out / "compare.json").read_text())) == ["arl vs zbase", "new vs zbase"]


def test_shared_settings_by_hand() -> None:
    from logicrl.evaluate.config import shared_settings

    a = {"temperature": 0.0, "max_tokens": 4, "prompt": {"template": "chat"}, "endpoint": None}
    b = {"temperature": 0.0, "max_tokens": 6, "prompt": {"template": "chat"}}
    assert shared_settings({"a": a, "b": {**b, "endpoint": None}}) == (
        {"endpoint": None, "prompt": {"template": "chat"}, "temperature": 0.0}, {"max_tokens": {"a": 4, "b": 6}}, [])
    # a key one record lacks is not shared (the other file's value is unknown)
    assert shared_settings({"a": a, "b": b})[1] == {"endpoint": {"a": None}, "max_tokens": {"a": 4, "b": 6}}
    # a file with no record: nothing is known to be shared
    assert shared_settings({"a": a, "c": None}) == ({}, {}, ["c"])
    assert shared_settings({"a": a}) == (a, {}, []) and shared_settings({}) == ({}, {}, [])


def test_a_kill_while_saving_samples_leaves_no_stale_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from logicrl.evaluate import runner as eval_runner
    from logicrl.evaluate.config import EvalConfig

    spec = eval_runner.ModelSpec("m", "tiny-random")
    eval_runner.save_generated(tmp_path, spec, [{"id": "x"}], EvalConfig(max_tokens=4), 1)
    assert eval_runner.read_generation(tmp_path, spec)["max_tokens"] == 4

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(eval_runner, "write_jsonl", killed)
    with pytest.raises(KeyboardInterrupt):
        eval_runner.save_generated(tmp_path, spec, [{"id": "y"}], EvalConfig(max_tokens=8), 1)
    assert eval_runner.read_generation(tmp_path, spec) is None  # the old samples stay, with no record


@pytest.mark.parametrize("args", [["--device", "gpu"], ["--endpoint", "http://127.0.0.1:9/v1", "api_key_env=UNSET_KEY_VAR"],
                                  ["--endpoint", "http://10.1.2.3:9/v1", "api_key_env=SET_KEY_VAR"]])  # plain http
def test_a_bad_device_or_key_is_refused_before_the_earlier_results_go(tmp_path: Path, dataset: Path, args,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNSET_KEY_VAR", raising=False)
    monkeypatch.setenv("SET_KEY_VAR", "secret")
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("{}")
    result = runner.invoke(app, ["eval", "-m", "tiny-random", "--data", str(dataset), "--out", str(out), *args])
    assert isinstance(result.exception, UserError), result.output  # the CLI prints it as one line
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]


def test_a_pass_k_above_the_samples_is_refused_before_generating(tmp_path: Path, dataset: Path) -> None:
    result = runner.invoke(app, ["eval", "-m", "tiny-random", "--data", str(dataset), "--out", str(tmp_path / "o"),
                                 "-k", "2", "--temperature", "0.7", "pass_k=[16]"])
    assert isinstance(result.exception, UserError) and "pass@k needs k ≤ the 2 response(s)" in str(result.exception)
    assert not (tmp_path / "o").exists()


def test_a_run_that_generates_first_drops_the_earlier_tables(tmp_path: Path, dataset: Path, monkeypatch) -> None:
    """Cut short, it leaves its new samples without the old run's tables beside them."""
    from logicrl.cli import eval as eval_cli

    out = tmp_path / "out"
    out.mkdir()
    for name in ("results.json", "table.md", "table.csv", "compare.json"):
        (out / name).write_text("{}")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(eval_cli, "model_rows", killed)
    result = runner.invoke(app, ["eval", "-m", "tiny-random", "--data", str(dataset), "--out", str(out)])
    assert isinstance(result.exception, KeyboardInterrupt) or result.exit_code != 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == []


def test_rescore_refuses_samples_of_unknown_puzzles(tmp_path: Path, dataset: Path, test_records: list[dict],
                                                    respond) -> None:
    stranger = {**test_records[0], "id": "kk2-not-in-the-data"}
    write_samples(tmp_path / "samples" / "m.jsonl", "m", [(stranger, 0, respond(stranger))])
    result = runner.invoke(app, ["eval", "--rescore", "--data", str(dataset), "--out", str(tmp_path)])
    assert isinstance(result.exception, UserError)
    assert "m.jsonl:1: puzzle 'kk2-not-in-the-data' is not in the data given" in str(result.exception)


def test_memorization_on_hand_written_samples(tmp_path: Path, dataset: Path, respond) -> None:
    from logicrl.puzzles.files import dataset_files, load_records

    originals = [r for r in load_records(dataset_files(dataset, "train")) if r["n_people"] == 2]
    twins, pairs = make_twins(originals, ["reorder"], seed=0)
    twin_of = dict(pairs["reorder"])
    # originals: 3 of 4 solved; twins: solved for the first two originals only
    rows = [(r, 0, respond(r, correct=i < 3)) for i, r in enumerate(originals)]
    by_id = {t["id"]: t for t in twins}
    rows += [(by_id[twin_of[r["id"]]], 0, respond(by_id[twin_of[r["id"]]], correct=i < 2))
             for i, r in enumerate(originals)]
    out = tmp_path / "mem"
    write_samples(out / "samples" / "sft.jsonl", "sft", rows)
    result = runner.invoke(app, ["eval", "memorization", "--rescore", "--data", str(dataset),
                                 "--out", str(out), "--people", "2", "--kinds", "reorder"])
    assert result.exit_code == 0, result.output
    scores = json.loads((out / "memorization.json").read_text())["models"]["sft"]["reorder"]["2"]
    assert scores == {"pairs": 4, "acc": 0.75, "cr": pytest.approx(2 / 3), "limem": pytest.approx(0.25)}
    assert "| sft | reorder | 2 | 4 | 0.75 | 0.67 | 0.25 |" in (out / "memorization.md").read_text()


def test_memorization_measures_a_repeated_record_once(tmp_path: Path, dataset: Path, respond) -> None:
    """A file that holds one record twice (one id) paired it with its twin twice, weighing it double in Acc, CR
    and LiMem: each id is measured once, with a warning. Here the first puzzle and its twin are solved, the
    repeated one but not its twin: Acc 1, CR 1/2, LiMem 1/2 (counted twice: CR 1/3, LiMem 2/3)."""
    first, repeated = [r for r in load_records(dataset_files(dataset, "train")) if r["n_people"] == 2][:2]
    data, out = tmp_path / "twice.jsonl", tmp_path / "mem"
    write_jsonl(data, [first, repeated, repeated])
    twins, _ = make_twins([first, repeated], ["reorder"], seed=0)
    write_samples(out / "samples" / "m.jsonl", "m", [(first, 0, respond(first)), (repeated, 0, respond(repeated)),
                                                     (twins[0], 0, respond(twins[0])),
                                                     (twins[1], 0, respond(twins[1], correct=False))])
    result = runner.invoke(app, ["eval", "memorization", "--rescore", "--data", str(data), "--out", str(out),
                                 "--kinds", "reorder"])
    assert result.exit_code == 0, result.output
    assert f"warning: 1 puzzle(s) of {data} repeat an earlier one (same id): each is measured once" in result.stderr
    scores = json.loads((out / "memorization.json").read_text())["models"]["m"]["reorder"]["2"]
    assert scores == {"pairs": 2, "acc": 1.0, "cr": 0.5, "limem": 0.5}


def test_memorization_rescore_scores_the_twins_answered(tmp_path: Path, respond) -> None:
    """Twin ids are ``<original id>~<kind>`` whatever the perturb_seed or --twins that made them: a rescore with
    another perturb_seed scored the saved responses against other twins (CR 1.00 became 0.78 in the audit's
    demo) and memorization.json recorded the new seed. Each saved row names the text it answered
    (``quiz_sha1``); a rescore whose puzzle of that id has another text is refused in one line, the tables left
    as they were. Rows as generation writes them (`score_sample`), every response right."""
    dataset = tmp_path / "data"  # 12 puzzles: some have a leaf twin that another perturb_seed draws otherwise
    config = DataConfig(people=[2], train=12, test=1, seed=0, formats=["jsonl"])
    write_dataset(dataset, config, generate(config))
    originals = load_records(dataset_files(dataset, "train"))
    twins, _ = make_twins(originals, ["leaf"], seed=0)
    out = tmp_path / "mem"
    rows = [{"model": "m", **score_sample(r, sample=0, response=respond(r), length=10, truncated=False,
                                          prefilled_think=True, reward=RewardConfig())[0]} for r in originals + twins]
    write_jsonl(out / "samples" / "m.jsonl", rows)
    same = ["eval", "memorization", "--rescore", "--data", str(dataset), "--out", str(out), "--kinds", "leaf"]
    result = runner.invoke(app, same)
    assert result.exit_code == 0, result.output
    summary = (out / "memorization.json").read_text()
    assert json.loads(summary)["models"]["m"]["leaf"]["2"]["cr"] == 1.0
    other_seed = next(s for s in range(1, 50) if make_twins(originals, ["leaf"], seed=s)[0] != twins)
    other = run_cli(*same, f"perturb_seed={other_seed}")
    assert other.returncode == 2 and len(other.stderr.strip().splitlines()) == 1
    assert re.fullmatch(rf"error: {re.escape(str(out / 'samples' / 'm.jsonl'))}:\d+: puzzle 'kk2-\w+~leaf' of the "
                        r"data given is not the one this response answered \(its text differs\): rescore with the "
                        r"puzzles the samples were made with \(the same --data; for eval memorization also --twins "
                        r"and perturb_seed\)\n", other.stderr)
    assert (out / "memorization.json").read_text() == summary


def test_memorization_takes_the_first_sample_of_each_puzzle(tmp_path: Path, dataset: Path, respond) -> None:
    """With several samples of a puzzle (a hand-made file, or one from before), the last row decided whether it
    was solved; the first sample (``sample`` 0) does, wherever its row is, as in the paired comparisons. By hand:
    every original's sample 0 right and sample 1 wrong; the twins' sample 0 right for the first two of four,
    their rows after their sample 1's. Acc 1, CR 1/2, LiMem 1/2 (the last rows gave Acc 0)."""
    originals = [r for r in load_records(dataset_files(dataset, "train")) if r["n_people"] == 2]
    twins, _ = make_twins(originals, ["reorder"], seed=0)
    rows = [(r, j, respond(r, correct=j == 0)) for r in originals for j in (0, 1)]
    rows += [(t, j, respond(t, correct=(i < 2) == (j == 0))) for i, t in enumerate(twins) for j in (1, 0)]
    out = tmp_path / "mem"
    write_samples(out / "samples" / "m.jsonl", "m", rows)
    result = runner.invoke(app, ["eval", "memorization", "--rescore", "--data", str(dataset), "--out", str(out),
                                 "--kinds", "reorder"])
    assert result.exit_code == 0, result.output
    scores = json.loads((out / "memorization.json").read_text())["models"]["m"]["reorder"]["2"]
    assert scores == {"pairs": 4, "acc": 1.0, "cr": 0.5, "limem": 0.5}


def test_memorization_rescore_scores_the_samples_saved_whatever_the_limit(tmp_path: Path, dataset: Path,
                                                                         respond) -> None:
    """Samples made with --limit 2 (the first two puzzles of a level and their twins): a rescore without --limit
    failed ("no sample of 4 puzzle(s) of these twins", not naming --limit); as `logicrl eval --rescore`, it scores
    every saved sample, and a --limit given to it is not used (a warning says so; none is recorded). By hand: both
    originals solved, the first twin only: Acc 1, CR 1/2."""
    originals = [r for r in load_records(dataset_files(dataset, "train")) if r["n_people"] == 2][:2]
    twins, _ = make_twins(originals, ["reorder"], seed=0)
    rows = [(r, 0, respond(r)) for r in originals] + [(t, 0, respond(t, correct=t is twins[0])) for t in twins]
    out = tmp_path / "mem"
    write_samples(out / "samples" / "m.jsonl", "m", rows)
    rescore = ["eval", "memorization", "--rescore", "--data", str(dataset), "--out", str(out), "--kinds", "reorder"]
    for limit in ([], ["--limit", "1"]):
        result = run_cli(*rescore, *limit)
        assert result.returncode == 0, result.stderr
        assert ("limit=1 not used" in result.stderr) == bool(limit)
        summary = json.loads((out / "memorization.json").read_text())
        assert summary["models"]["m"]["reorder"]["2"] == {"pairs": 2, "acc": 1.0, "cr": 0.5, "limem": 0.5}
        assert summary["config"]["limit"] is None and summary["config"]["people"] == [2]


def test_memorization_generates_with_the_tiny_model(tmp_path: Path, dataset: Path) -> None:
    out = tmp_path / "mem"
    result = runner.invoke(app, ["eval", "memorization", "-m", "tiny-random", "--data", str(dataset), "--out",
                                 str(out), "--people", "3", "--limit", "2", "--kinds", "flip_roles,leaf",
                                 "--max-tokens", "4", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in (out / "samples" / "tiny-random.jsonl").read_text().splitlines()]
    ids = {r["id"] for r in rows}
    assert sum("~" not in i for i in ids) == 2 and any(i.endswith("~flip_roles") for i in ids)
    tables = json.loads((out / "memorization.json").read_text())["models"]["tiny-random"]
    assert set(tables) == {"flip_roles", "leaf"} and tables["flip_roles"]["3"]["pairs"] == 2
    assert (out / "memorization.csv").read_text().startswith("Model,Kind,People,Pairs,Acc,CR,LiMem")


@pytest.mark.parametrize(("args", "message"), [
    (["eval", "-m", "tiny-random", "--data", "/nonexistent/kk"], "no such file or dataset directory"),
    (["eval", "-m", "./no/such/model", "--data", "{data}"], "does not exist"),
    (["eval", "-m", "tiny-random", "--data", "{data}", "-k", "4"], "greedy decoding repeats one response"),
    (["eval", "--data", "{data}"], "give at least one --model"),
    (["eval", "-m", "tiny-random", "--data", "{data}", "--people", "9"], "no test puzzles with 9 people"),
    (["eval", "-m", "tiny-random", "--data", "{data}", "--people", "2-5"], "no test puzzles with 4,5 people (found"),
    (["eval", "-m", "tiny-random", "--data", "{data}", "people=[3,8]"], "no test puzzles with 8 people (found"),
    (["eval", "-m", "a/b=tiny-random", "-m", "a_b=tiny-random", "--data", "{data}"], "share the label"),
    (["eval", "--rescore", "--data", "{data}"], "no sample files to rescore"),
    (["eval", "-m", "tiny-random", "--rescore", "--data", "{data}"], "no saved samples for model 'tiny"),
    (["eval", "memorization", "-m", "x", "--data", "{data}", "--kinds", "shuffle"], "unknown perturbation"),
    (["eval", "-m", "m", "--data", "{data}", "--endpoint", "http://127.0.0.1:9/v1", "retries=0"],
     "cannot reach http://127.0.0.1:9/v1/chat/completions"),
    (["eval", "-m", "m", "--data", "{data}", "--endpoint", "http://127.0.0.1:9/v1", "--template", "plain"],
     "prompt.template=plain needs the local backend"),
])
def test_user_errors(tmp_path: Path, dataset: Path, args: list[str], message: str) -> None:
    args = [a.format(data=dataset) for a in args]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert isinstance(result.exception, UserError), result.output
    assert message in str(result.exception) and "\n" not in str(result.exception)


@pytest.mark.parametrize(("args", "message"), [
    (["eval", "-m", "tiny-random", "--data", "/nonexistent/kk"], "no such file or dataset directory"),
    (["eval", "-m", "no-such-org/no-such-model", "--data", "{data}"], "not in the local Hugging Face cache"),
    # the second model is checked before the first one generates anything
    (["eval", "-m", "tiny-random", "-m", "no-such-org/no-such-model", "--data", "{data}"],
     "model 'no-such-org/no-such-model' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set"),
])
def test_console_errors_are_one_line_exit_2(
    tmp_path: Path, dataset: Path, args: list[str], message: str
) -> None:
    result = run_cli(*[a.format(data=dataset) for a in args], "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], result.stderr
    assert not any("Traceback" in line for line in lines)
    assert not (tmp_path / "out" / "samples").exists() and not (tmp_path / "out" / "partial").exists()


def test_records_without_ids_are_separate_puzzles(tmp_path: Path, test_records: list[dict], respond) -> None:
    """The public K&K release has no `id`: each record must still be its own puzzle in pass@k, maj@k and the
    pairing (it used to be grouped under None: 3 puzzles × 2 samples gave pass@2 0.6, not 1/3)."""
    three = [r for r in test_records if r["n_people"] == 3][:3]
    public = tmp_path / "people3_num3.jsonl"
    write_jsonl(public, [{k: v for k, v in r.items() if k not in ("id", "n_people")} for r in three])
    out = tmp_path / "out"
    result = runner.invoke(app, ["eval", "-m", "tiny-random", "--data", str(public), "--out", str(out),
                                 "-k", "2", "--temperature", "1.0", "--max-tokens", "4", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    saved = [json.loads(x) for x in (out / "samples" / "tiny-random.jsonl").read_text().splitlines()]
    ids = [row["id"] for row in saved]
    assert len(set(ids)) == 3 and None not in ids and ids == [i for i in ids[::2] for _ in range(2)]
    # one puzzle solved once of its two samples, the others never: pass@2 = 1/3, maj@2 = 1/6 (a 1-1 tie)
    first = {**three[0], "id": ids[0]}
    rows = [(first, 0, respond(three[0])), (first, 1, respond(three[0], correct=False))]
    rows += [({**r, "id": i}, j, respond(r, correct=False)) for r, i in zip(three[1:], ids[2::2]) for j in range(2)]
    write_samples(out / "samples" / "hand.jsonl", "hand", rows)
    result = runner.invoke(app, ["eval", "--rescore", "--data", str(public), "--out", str(out)])
    assert result.exit_code == 0, result.output
    level = json.loads((out / "results.json").read_text())["models"]["hand"]["by_people"]["3"]
    assert level["puzzles"] == 3 and level["pass@2"] == pytest.approx(1 / 3) and level["maj@2"] == pytest.approx(1 / 6)


def test_memorization_on_records_without_ids(tmp_path: Path, test_records: list[dict]) -> None:
    """`logicrl eval memorization --data <public file>` ended in KeyError: 'id'."""
    two = [r for r in test_records if r["n_people"] == 2][:2]
    public = tmp_path / "people2_num2.jsonl"
    write_jsonl(public, [{k: v for k, v in r.items() if k not in ("id", "n_people")} for r in two + two[:1]])
    out = tmp_path / "mem"
    result = runner.invoke(app, ["eval", "memorization", "-m", "tiny-random", "--data", str(public), "--out",
                                 str(out), "--kinds", "reorder", "--max-tokens", "4", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    tables = json.loads((out / "memorization.json").read_text())["models"]["tiny-random"]
    assert tables["reorder"]["2"]["pairs"] == 3  # the repeated record is its own puzzle, with its own twin


def test_memorization_statement_twins_use_the_dataset_operators(tmp_path: Path, respond) -> None:
    """A statement twin's new statement is drawn with the operators the dataset was (its manifest), as `data
    perturb` and `data generate` draw theirs: `eval memorization` drew with every operator, so a dataset of
    and/or statements was measured against twins with ->, <=> and not. The rescore below scores rows made with
    the dataset's operators: twins drawn with others have other texts, and the rescore refuses them."""
    dataset = tmp_path / "data"
    config = DataConfig(people=[3], train=20, test=1, seed=0, operators=["and", "or"], formats=["jsonl"])
    write_dataset(dataset, config, generate(config))
    originals = load_records(dataset_files(dataset, "train"))
    twins, _ = make_twins(originals, ["statement"], seed=0, operators=(Op.AND, Op.OR))
    used = {op for twin in twins for op in re.findall(r'\["([^"]+)"', twin["statements"])}
    assert used & {"and", "or"} and used <= {"and", "or", "telling-truth", "lying"}
    assert any(other["quiz"] != ours["quiz"] for other, ours in zip(make_twins(originals, ["statement"], 0)[0], twins))
    out = tmp_path / "mem"
    rows = [{"model": "m", **score_sample(r, sample=0, response=respond(r), length=10, truncated=False,
                                          prefilled_think=True, reward=RewardConfig())[0]} for r in originals + twins]
    write_jsonl(out / "samples" / "m.jsonl", rows)
    result = runner.invoke(app, ["eval", "memorization", "--rescore", "--data", str(dataset), "--out", str(out),
                                 "--kinds", "statement"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "memorization.json").read_text())["models"]["m"]["statement"]["3"]["pairs"] == len(twins)


def test_puzzles_a_checkpoint_trained_on_are_named_before_it_is_evaluated(tmp_path: Path) -> None:
    """A test set made apart from a dataset that drew train first (test_first=false, the order before
    2026-12-06) is that dataset's first training puzzles: the eval warns, naming how many, before any model
    loads; a test set drawn with the dataset (test first) shares none."""
    from logicrl.cli.eval import trained_on

    old = DataConfig(people=[3], train=20, test=5, seed=0, test_first=False, formats=["jsonl"])
    write_dataset(tmp_path / "old", old, generate(old))
    run = tmp_path / "run"
    (run / "checkpoints" / "step_000003").mkdir(parents=True)
    (run / "config.yaml").write_text(f"data:\n  train: {tmp_path / 'old'}\n")
    apart = generate(DataConfig(people=[3], train=0, test=8, seed=0, formats=["jsonl"]))[3]["test"]
    warning = trained_on(str(run / "checkpoints" / "step_000003"), apart)
    assert warning == (f"8 of the 8 puzzles evaluated are among the training puzzles of "
                       f"{run / 'checkpoints' / 'step_000003'} ({tmp_path / 'old'}, train split): its accuracy on "
                       "them is not held out; evaluate on that dataset's test split, or on a test set drawn with it "
                       "(same seed, test_first)")
    own_test = load_records(dataset_files(tmp_path / "old", "test"))
    assert trained_on(str(run / "checkpoints" / "step_000003"), own_test) is None
    assert trained_on(str(tmp_path / "old"), apart) is None  # not a logicrl checkpoint
    (run / "config.yaml").write_text(f"data:\n  train: {tmp_path / 'gone'}\n")
    assert trained_on(str(run / "checkpoints" / "step_000003"), apart) is None  # its data is gone
    # the command says it as a `warning:` line, before the model loads (here the tiny model as that checkpoint)
    (run / "config.yaml").write_text(f"data:\n  train: {tmp_path / 'old'}\n")
    shutil.rmtree(run / "checkpoints" / "step_000003")
    shutil.copytree(resolve_model_path(TINY_MODEL), run / "checkpoints" / "step_000003")
    write_dataset(tmp_path / "apart", DataConfig(people=[3], train=0, test=8, seed=0, formats=["jsonl"]),
                  {3: {"train": [], "test": apart}})
    proc = run_cli("eval", "-m", str(run / "checkpoints" / "step_000003"), "--data", str(tmp_path / "apart"),
                   "--max-tokens", "4", "--out", str(tmp_path / "ev"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "warning: 8 of the 8 puzzles evaluated are among the training puzzles of " in proc.stderr

"""Resumable evaluation (`logicrl.evaluate.journal`): an interrupted `logicrl eval` resumes where its last
finished chunk ended and its samples equal an uninterrupted run's; a rerun with other settings is refused;
a journal that holds everything loads no model."""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from logicrl.cli import app
from logicrl.errors import DataError, UserError
from logicrl.evaluate import runner as eval_runner
from logicrl.evaluate.config import EvalConfig
from logicrl.evaluate.journal import PARTIAL_DIR, Journal, differences, done_prefix, identity
from logicrl.evaluate.scoring import generate_and_score
from logicrl.models import TINY_MODEL, load_model_and_tokenizer
from logicrl.prompts import PromptConfig
from logicrl.reward.score import RewardConfig

runner = CliRunner()
# 6 test puzzles (tests/evaluate/conftest.py), 2 per chunk, sampled: the seeds differ from chunk to chunk
ARGS = ["-m", "tiny-random", "--limit", "3", "--max-tokens", "6", "--temperature", "1.0", "--batch-size", "2"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def rows(ids: str, n: int = 1) -> list[dict]:
    return [{"id": i, "sample": j} for i in ids for j in range(n)]


def test_done_prefix_counts_whole_chunks_of_complete_puzzles() -> None:
    records = [{"id": i} for i in "abcde"]
    assert done_prefix([], records, 1, 2) == 0
    assert done_prefix(rows("abc"), records, 1, 2) == 2  # c's chunk (c, d) did not finish
    assert done_prefix(rows("abcd"), records, 1, 2) == 4
    assert done_prefix(rows("abcde"), records, 1, 2) == 5  # the last chunk may be short
    assert done_prefix(rows("ab", 2) + rows("c"), records, 2, 1) == 2  # c has 1 of its 2 samples
    assert done_prefix(rows("bcde"), records, 1, 1) == 0  # a prefix, from the first puzzle


def test_differences_name_each_changed_leaf() -> None:
    old = {"model": "m", "settings": {"temperature": 1.0, "prompt": {"template": "chat"}, "seed": 0}}
    new = {"model": "m", "settings": {"temperature": 0.7, "prompt": {"template": "plain"}, "seed": 0}}
    assert differences(old, new) == ["settings.prompt.template: 'chat' → 'plain'", "settings.temperature: 1.0 → 0.7"]
    assert differences(old, old) == []


def test_journal_drops_a_torn_last_line_and_refuses_a_broken_one(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "m")
    ident = {"model": "m", "settings": {}}
    assert journal.open(ident) == []
    journal.append([{"id": "a"}, {"id": "b"}])
    with journal.rows_path.open("a") as f:
        f.write('{"id": "c", "resp')  # killed while writing
    with pytest.warns(UserWarning, match=r"m\.jsonl:3: dropping a cut last line"):
        assert journal.open(ident) == [{"id": "a"}, {"id": "b"}]
    journal.rows_path.write_text('{"id": "a"}\n{broken\n{"id": "c"}\n')
    with pytest.raises(DataError, match=r"m\.jsonl:2: not valid JSON"):
        journal.open(ident)
    with pytest.raises(UserError, match="other settings"):
        journal.open({"model": "other", "settings": {}})
    journal.remove()
    assert not (tmp_path / PARTIAL_DIR).exists()


def test_a_journal_without_rows_is_started_again_with_other_settings(tmp_path: Path) -> None:
    """A run that failed before its first chunk (a bad --device or endpoint) must not block the fixed command."""
    journal = Journal(tmp_path, "m")
    assert journal.open({"model": "m", "settings": {"device": "foo"}}) == []
    assert journal.open({"model": "m", "settings": {"device": "cpu"}}) == []
    assert json.loads(journal.meta_path.read_text())["settings"] == {"device": "cpu"}
    journal.append([{"id": "a"}])
    with pytest.raises(UserError, match=r"other settings \(settings.device: 'cpu' → 'foo'\)"):
        journal.open({"model": "m", "settings": {"device": "foo"}})


def test_journal_keeps_model_text_with_unicode_line_breaks(tmp_path: Path) -> None:
    """Model text may hold U+2028, U+2029 or U+0085, which JSON leaves raw: a row is still one line."""
    journal = Journal(tmp_path, "m")
    ident = {"model": "m", "settings": {}}
    kept = [{"id": "a", "response": "one\u2028two\u2029three\x85four\x1cfive"}, {"id": "b", "response": "x"}]
    journal.open(ident)
    journal.append(kept)
    assert journal.open(ident) == kept


def samples(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "samples" / "tiny-random.jsonl").read_text().splitlines()]


class Interrupt(Exception):
    """What a killed run stands for here."""


def test_an_interrupted_eval_resumes_to_the_uninterrupted_samples(
    tmp_path: Path, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = tmp_path / "whole"
    result = runner.invoke(app, ["eval", *ARGS, "--data", str(dataset), "--out", str(whole)])
    assert result.exit_code == 0, result.output
    assert not (whole / PARTIAL_DIR).exists()  # removed once the tables are written
    expected = samples(whole)
    assert len({r["response"] for r in expected}) > 1

    real = eval_runner.generate_and_score
    calls: list[int] = []

    def dies_on_third_chunk(*args, **kwargs):
        calls.append(kwargs["first_index"])
        if len(calls) == 3:
            raise Interrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(eval_runner, "generate_and_score", dies_on_third_chunk)
    out = tmp_path / "resumed"
    result = runner.invoke(app, ["eval", *ARGS, "--data", str(dataset), "--out", str(out)])
    assert isinstance(result.exception, Interrupt)
    assert not (out / "samples").exists() and len((out / PARTIAL_DIR / "tiny-random.jsonl").read_text().splitlines()) == 4

    for option, difference in ((["--temperature", "0.7"], "settings.temperature: 1.0 → 0.7"),
                               (["--seed", "7"], "settings.seed: 0 → 7"),
                               (["--max-tokens", "7"], "settings.max_tokens: 6 → 7"),
                               (["top_p=0.5"], "settings.top_p: 1.0 → 0.5"),
                               (["prompt.template=plain"], "settings.prompt.template: 'chat' → 'plain'")):
        changed = runner.invoke(app, ["eval", *ARGS, "--data", str(dataset), "--out", str(out), *option])
        assert isinstance(changed.exception, UserError), changed.output
        assert difference in str(changed.exception)
    # the same ids naming other puzzles (a file with ids of its own, edited): the rows answered the old texts
    edited = tmp_path / "edited"
    shutil.copytree(dataset, edited)
    tests = edited / "2ppl" / "test.jsonl"
    rows = [json.loads(line) for line in tests.read_text().splitlines()]
    rows[0]["quiz"] += " (edited)"
    tests.write_text("".join(json.dumps(r) + "\n" for r in rows))
    changed = runner.invoke(app, ["eval", *ARGS, "--data", str(edited), "--out", str(out)])
    assert isinstance(changed.exception, UserError) and "quizzes_sha256" in str(changed.exception), changed.output

    def counted(*args, **kwargs):
        calls.append(kwargs["first_index"])
        return real(*args, **kwargs)

    calls.clear()
    monkeypatch.setattr(eval_runner, "generate_and_score", counted)
    result = runner.invoke(app, ["eval", *ARGS, "--data", str(dataset), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert calls == [4]  # only the chunk that had not finished
    assert "tiny-random: resuming an interrupted run: 4 samples of its first 4 puzzles kept" in result.stderr
    assert samples(out) == expected
    assert not (out / PARTIAL_DIR).exists()


def test_a_complete_journal_loads_no_model(tmp_path: Path, dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"

    def killed_before_tables(*args, **kwargs):
        raise Interrupt

    monkeypatch.setattr("logicrl.cli.eval.accuracy_table", killed_before_tables)
    result = runner.invoke(app, ["eval", *ARGS, "--data", str(dataset), "--out", str(out)])
    assert isinstance(result.exception, Interrupt)
    expected = samples(out)
    monkeypatch.undo()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_model(*args, **kwargs):
        raise AssertionError("loaded a model")

    monkeypatch.setattr(eval_runner, "_load", no_model)
    result = runner.invoke(app, ["eval", *ARGS, "--data", str(dataset), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert samples(out) == expected and (out / "table.md").is_file()


def test_chunks_sample_what_one_call_over_all_puzzles_does(test_records: list[dict]) -> None:
    """The chunks of a (resumed) run draw the seeds one call over the whole list would: batch i of the list
    samples with seed + its first puzzle's index, wherever the list was cut."""
    model, tokenizer = load_model_and_tokenizer(TINY_MODEL, device="cpu")
    common = {"prompt": PromptConfig(), "max_new_tokens": 6, "greedy": False, "batch_size": 2, "seed": 3}
    whole = generate_and_score(model, tokenizer, test_records, **common)  # no reward given: the paper's
    assert generate_and_score(model, tokenizer, test_records, reward=RewardConfig(), **common) == whole
    chunked = [row for first in range(0, len(test_records), 2)
               for row in generate_and_score(model, tokenizer, test_records[first:first + 2], first_index=first,
                                             **common)]
    assert [r["response"] for r in chunked] == [r["response"] for r in whole]
    assert len({r["response"] for r in whole}) == len(whole)


def test_each_puzzles_samples_are_numbered_in_order(test_records: list[dict]) -> None:
    """n samples of each puzzle: rows come puzzle by puzzle, samples 0..n-1 (pass@k and majority vote group them
    by puzzle; rollouts and the analysis read ``sample``)."""
    model, tokenizer = load_model_and_tokenizer(TINY_MODEL, device="cpu")
    rows = generate_and_score(model, tokenizer, test_records[:2], prompt=PromptConfig(), max_new_tokens=2, n=2,
                              greedy=False, seed=0)
    ids = [r["id"] for r in test_records[:2]]
    assert [(r["id"], r["sample"]) for r in rows] == [(ids[0], 0), (ids[0], 1), (ids[1], 0), (ids[1], 1)]


def test_a_long_batch_reports_its_decoding(test_records: list[dict]) -> None:
    """``status`` hears every 64 tokens which batch decodes, how far, and how many of its rows are still going."""
    model, tokenizer = load_model_and_tokenizer(TINY_MODEL, device="cpu")
    heard: list[str] = []
    rows = generate_and_score(model, tokenizer, test_records[:3], prompt=PromptConfig(), reward=RewardConfig(),
                              max_new_tokens=140, batch_size=2, status=heard.append)
    going = [[r["length"] for r in rows[:2]], [rows[2]["length"]]]
    expected = [f"batch {b + 1}/2: token {t}/140, {sum(n > t for n in going[b])}/{len(going[b])} rows decoding"
                for b in range(2) for t in (64, 128) if any(n > t for n in going[b])]
    assert heard == expected and heard


def test_a_chunked_run_counts_the_batches_of_the_whole_list(test_records: list[dict]) -> None:
    """`logicrl eval` hands the model one chunk (one batch) at a time: the status line still says which batch
    of the whole run decodes ("batch 3/3"), not "batch 1/1"."""
    heard: list[str] = []
    cfg = EvalConfig(max_tokens=70, batch_size=2)
    eval_runner.generate_rows(eval_runner.ModelSpec("tiny", TINY_MODEL), test_records[:5], cfg, n=1,
                              status=heard.append)
    # the tiny random model never stops early: every row is still decoding at token 64 of 70
    assert heard == ["batch 1/3: token 64/70, 2/2 rows decoding", "batch 2/3: token 64/70, 2/2 rows decoding",
                     "batch 3/3: token 64/70, 1/1 rows decoding"]


def test_journal_identity_depends_on_the_puzzle_order() -> None:
    """The same puzzles in another order are another run: chunks and their seeds follow the order."""
    assert identity("m", [{"id": "a"}, {"id": "b"}], 1, {}) != identity("m", [{"id": "b"}, {"id": "a"}], 1, {})


def test_a_local_resume_with_another_batch_size_is_refused(tmp_path: Path) -> None:
    """Locally a chunk is one batch, seeded by its first puzzle: kept rows cut in batches of 2 do not continue a
    run in batches of 4, so batch_size is in the identity (an endpoint's concurrency, which sizes its chunks
    but not its seeds, is not)."""
    records = [{"id": i} for i in "abcd"]
    journal = Journal(tmp_path, "m")
    journal.open(identity("m", records, 1, EvalConfig(batch_size=2).model_dump(mode="json")))
    journal.append([{"id": "a"}, {"id": "b"}])
    with pytest.raises(UserError, match=r"other settings \(settings\.batch_size: 2 → 4\)"):
        journal.open(identity("m", records, 1, EvalConfig(batch_size=4).model_dump(mode="json")))
    more = EvalConfig(batch_size=2, concurrency=16).model_dump(mode="json")
    assert journal.open(identity("m", records, 1, more)) == [{"id": "a"}, {"id": "b"}]


def test_an_empty_rows_file_is_started_again_with_other_settings(tmp_path: Path) -> None:
    """A rows file with no rows (a run stopped before its first chunk ended) does not hold a rerun to its settings."""
    journal = Journal(tmp_path, "m")
    assert journal.open({"model": "m", "settings": {"t": 1}}) == []
    journal.append([])
    assert journal.rows_path.is_file()
    assert journal.open({"model": "m", "settings": {"t": 2}}) == []


def test_a_new_journal_drops_rows_it_has_no_settings_for(tmp_path: Path) -> None:
    """Rows left without a meta file are of an unknown run: opening a journal there starts with no rows."""
    journal = Journal(tmp_path, "m")
    journal.rows_path.parent.mkdir(parents=True)
    journal.rows_path.write_text('{"id": "old"}\n')
    ident = {"model": "m", "settings": {}}
    assert journal.open(ident) == []
    assert journal.open(ident) == []


def test_a_resume_after_a_torn_chunk_keeps_every_puzzle_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 2 over a-e, a b c kept (c's chunk unfinished): the rerun keeps a b, samples c d e, each id once."""
    records = [{"id": i} for i in "abcde"]
    cfg = SimpleNamespace(endpoint=None, batch_size=2, concurrency=1, model_dump=lambda mode: {"k": 1})
    spec = eval_runner.ModelSpec("m", "m")
    journal = Journal(tmp_path, spec.file_stem)
    journal.open(identity("m", records, 1, {"k": 1}))
    journal.append([{"id": i, "sample": 0, "v": "old"} for i in "abc"])

    @contextmanager
    def sampler(spec, cfg, **kwargs):
        yield lambda chunk, first, total: [{"id": r["id"], "sample": 0, "v": "new"} for r in chunk]

    monkeypatch.setattr(eval_runner, "_sampler", sampler)
    got = eval_runner.generate_rows(spec, records, cfg, n=1, journal=journal)
    assert [(r["id"], r["v"]) for r in got] == [("a", "old"), ("b", "old"), ("c", "new"), ("d", "new"), ("e", "new")]
    kept = [json.loads(line) for line in journal.rows_path.read_text().splitlines()]
    assert [(r["id"], r["v"]) for r in kept] == [("a", "old"), ("b", "old"), ("c", "new"), ("d", "new"), ("e", "new")]


def test_a_chunk_holds_batch_size_rows_of_samples() -> None:
    """batch_size 8 with 4 samples a puzzle: 2 puzzles a chunk."""
    assert eval_runner.chunk_size(SimpleNamespace(endpoint=None, batch_size=8, concurrency=4), 4) == 2


def test_records_are_selected_level_by_level_ascending(dataset: Path) -> None:
    """people [3, 2]: the 2-person puzzle comes first."""
    assert [r["n_people"] for r in eval_runner.select_records(dataset, "test", [3, 2], 1)] == [2, 3]


def test_an_existing_path_holding_equals_is_a_model_name(tmp_path: Path) -> None:
    """A checkpoint folder named ckpt=1 is a name, not label=name."""
    path = tmp_path / "ckpt=1"
    path.mkdir()
    (spec,) = eval_runner.parse_model_specs([str(path)])
    assert spec.label == spec.name == str(path)


def test_a_run_that_fails_before_its_first_row_leaves_no_folder(dataset: Path, tmp_path: Path) -> None:
    """An endpoint nobody serves: the one-line error, and the new --out gone (its empty journal kept it, with
    `.lock`, although a failed command leaves nothing behind)."""
    out = tmp_path / "fresh"
    result = runner.invoke(app, ["eval", "-m", "served", "--endpoint", "http://127.0.0.1:1/v1", "--data",
                                 str(dataset), "--limit", "1", "--out", str(out), "retries=0"])
    assert isinstance(result.exception, UserError) and "cannot reach" in str(result.exception), result.output
    assert not out.exists()
    # an earlier evaluation's results stay: the server is asked for before they are replaced
    out.mkdir()
    (out / "results.json").write_text('{"config": {}}')
    (out / "table.md").write_text("the earlier table")
    again = runner.invoke(app, ["eval", "-m", "served", "--endpoint", "http://127.0.0.1:1/v1", "--data",
                                str(dataset), "--limit", "1", "--out", str(out), "retries=0"])
    assert "cannot reach http://127.0.0.1:1/v1/chat/completions" in str(again.exception), again.output
    assert (out / "table.md").read_text() == "the earlier table" and sorted(p.name for p in out.iterdir()) == [
        "results.json", "table.md"]

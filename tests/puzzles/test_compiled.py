"""The compiled record writer (`logicrl.puzzles.compiled`, kk_records.c) against the Python modules it mirrors: the
same JSONL bytes for any level, seed, operator set, role words, name pool and text style it takes, the same
summary facts, the same short levels; `generate` and `logicrl data generate` give the same records and files
either way; the levels it does not take stay in Python; `RecordLines` reads like the list of records it holds.

Run: .venv/bin/python -m pytest tests/puzzles/test_compiled.py -q
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from logicrl.cli import app
from logicrl.errors import UserError
from logicrl.io import jsonl_bytes
from logicrl.native import compiler_command, enabled
from logicrl.puzzles import compiled, dataset
from logicrl.puzzles.dataset import DataConfig, compiled_level, generate, iter_level, level_lines, records_of
from logicrl.puzzles.lines import RecordLines, facts_of, record_facts, records_jsonl

HAS_CC = shutil.which(shlex.split(compiler_command())[0]) is not None
needs_writer = pytest.mark.skipif(compiled.library() is None, reason="the compiled record writer is not built here")
INNER = ["not", "and", "or", "->", "<=>"]


def python_lines(config: DataConfig, n_people: int, count: int) -> bytes:
    """The records the Python modules make for the level: the definition the compiled writer is held to."""
    return jsonl_bytes(records_of(list(iter_level(config, n_people, count)), 0))


@pytest.fixture
def python_records(monkeypatch):
    """`generate` and the CLI with the compiled writer unavailable, as on a machine without a C compiler."""
    monkeypatch.setattr(compiled, "library", lambda: None)


@pytest.mark.skipif(not HAS_CC or not enabled(), reason="no C compiler, or LOGICRL_NATIVE=0")
def test_the_writer_is_built_where_a_compiler_is():
    """Otherwise every comparison below would skip, and `data generate` would quietly run the slow path."""
    assert compiled.library() is not None


@needs_writer
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(2, 9), depth=st.integers(2, 4), width=st.sampled_from([2, 3, 5, 2**31 + 7]),
       operators=st.sets(st.sampled_from(INNER), min_size=1).filter(lambda ops: ops != {"not"}),
       roles=st.sampled_from(["knight/knave", "random", "hero/villain", "angel/devil", "sage/fool"]),
       names=st.sampled_from(["common", "uncommon"]), style=st.sampled_from(["logicrl", "public"]),
       seed=st.integers(0, 2**40), count=st.integers(1, 12))
def test_the_same_bytes_and_facts_as_the_python_modules(n, depth, width, operators, roles, names, style, seed, count):
    """Every random draw, text and field of every record, for levels across people (the names' sample changes method
    at 6), depth, width (the last one needs all 32 bits of a draw), operators, role words (plurals, articles),
    name pools and both styles."""
    if depth > 2 and width > 5:
        width = 3  # deeper levels with such widths are refused (`Level.validate`)
    config = DataConfig(people=[n], depth=depth, width=width, operators=sorted(operators), roles=roles, names=names,
                        style=style, seed=seed)
    try:
        expected = python_lines(config, n, count)
    except UserError:  # a level with fewer unique puzzles: the short-level test covers it
        return
    lines = level_lines(config, n, count)
    assert lines.text == expected
    assert list(lines.facts) == [record_facts(json.loads(line)) for line in expected.splitlines()]


@needs_writer
@pytest.mark.parametrize("n", [12, 13, 20])
def test_the_same_bytes_for_many_people(n):
    """Past 12 people the Python search evaluates statements instead of looking up its prefix tables; at 20 the truth
    tables are 2**20 bits."""
    config = DataConfig(people=[n], roles="random", seed=n)
    count = 3 if n == 20 else 20
    assert level_lines(config, n, count).text == python_lines(config, n, count)


@needs_writer
def test_a_short_level_as_the_python_path_treats_it():
    """2 people hold 399 unique puzzles: the same error, or with cap the same warning and the same 399 records."""
    config = DataConfig(people=[2], seed=1)
    with pytest.raises(UserError) as python_error:
        python_lines(config, 2, 450)
    with pytest.raises(UserError) as compiled_error:
        level_lines(config, 2, 450)
    assert str(compiled_error.value) == str(python_error.value) == (
        "only 399 distinct unique-solution puzzles found for 2 people at depth 2, width 2; 450 asked: ask for fewer, "
        "raise depth/width, or set cap=true (--cap) to keep the 399")
    capped = config.model_copy(update={"cap": True})
    warned = []
    lines = level_lines(capped, 2, 450, warn=warned.append)
    with pytest.warns(UserWarning, match="keeping 399"):
        assert len(lines) == 399 and lines.text == python_lines(capped, 2, 450)
    assert warned == [("only 399 distinct unique-solution puzzles found for 2 people at depth 2, width 2; 450 "
                       "asked: keeping 399 (cap)")]


@needs_writer
def test_generate_gives_the_same_splits_either_way(monkeypatch):
    """Levels cut into test, train and val in draw order; as records, or as lines that decode to them."""
    config = DataConfig(people=[3, 5], train=30, test=7, val=4, roles="random", depth=3, seed=3)
    made, lines = generate(config), generate(config, lines=True)
    monkeypatch.setattr(compiled, "library", lambda: None)
    assert not compiled_level(config, 3)
    python = generate(config)
    assert made == python
    for n, by_split in lines.items():
        for split, records in by_split.items():
            assert isinstance(records, RecordLines) and list(records) == python[n][split]
            assert records_jsonl(records) == jsonl_bytes(python[n][split])


def test_levels_the_writer_does_not_take_stay_in_python():
    """Beyond 20 people, widths past 32 bits of a draw, role words it cannot capitalise as Python does."""
    assert compiled.supports(20, 2, 2, "knight/knave") and compiled.supports(8, 2, 2**32, "random")
    assert not compiled.supports(21, 2, 2, "knight/knave")
    assert not compiled.supports(8, 2, 2**32 + 1, "knight/knave")
    assert not compiled.supports(8, 65, 2, "knight/knave")
    assert not compiled.supports(8, 2, 2, "ángel/diablo")
    config = DataConfig(people=[3], train=4, test=0, roles="ángel/diablo", seed=2)
    assert not compiled_level(config, 3)
    records = generate(config, lines=True)[3]["train"]
    assert isinstance(records, list) and records[0]["knight_knave"]["Knight"] == "Ángel"


@needs_writer
def test_data_generate_writes_the_same_files_either_way(tmp_path: Path, monkeypatch):
    """JSONL, parquet, the manifest and the printed summary, for several levels and a val split."""
    runner = CliRunner()
    command = ["data", "generate", "--people", "2,4", "--train", "25", "--test", "5", "--val", "3", "--roles",
               "random", "--seed", "5"]
    fast = runner.invoke(app, [*command, "--out", str(tmp_path / "fast")])
    monkeypatch.setattr(compiled, "library", lambda: None)
    slow = runner.invoke(app, [*command, "--out", str(tmp_path / "slow")])
    assert fast.exit_code == slow.exit_code == 0, fast.output + slow.output
    assert fast.output.replace("fast", "slow") == slow.output and "wrote 66 puzzles" in slow.output
    files = sorted(p.relative_to(tmp_path / "slow") for p in (tmp_path / "slow").rglob("*")
                   if p.is_file() and p.name != ".lock")
    assert len(files) == 13  # 2 levels × 3 splits × 2 formats, and the manifest
    for rel in files:
        assert (tmp_path / "fast" / rel).read_bytes() == (tmp_path / "slow" / rel).read_bytes(), rel


def test_default_workers_fork_nothing_when_the_writer_makes_every_level(python_records, monkeypatch):
    config = DataConfig(people=[3, 4], train=500)
    monkeypatch.setattr(dataset, "usable_cores", lambda: 2)
    assert dataset.default_workers(config) == 2  # Python renders the records: in two workers
    monkeypatch.setattr(compiled, "library", lambda: object())
    assert dataset.default_workers(config) == 1
    assert dataset.default_workers(config.model_copy(update={"roles": "ángel/diablo"})) == 2
    assert dataset.default_workers(config.model_copy(update={"layout": "public", "perturb": ["leaf"]})) == 2


def test_record_lines_read_like_the_records_they_hold(python_records):
    config = DataConfig(people=[3], seed=8)
    records = records_of(list(iter_level(config, 3, 5)), 0)
    text = jsonl_bytes(records)
    ends = [len(b"".join(text.splitlines(keepends=True)[:i + 1])) for i in range(5)]
    lines = RecordLines(text, ends, facts_of(records))
    assert len(lines) == 5 and list(lines) == records and lines[-1] == records[4] and lines[1] == records[1]
    for start, stop in ((0, 5), (1, 3), (2, 2), (4, 9), (-2, None), (3, 1)):
        part = lines[start:stop]
        assert isinstance(part, RecordLines) and list(part) == records[start:stop]
        assert records_jsonl(part) == jsonl_bytes(records[start:stop]) and list(part.facts) == facts_of(
            records[start:stop])
    with pytest.raises(IndexError):
        lines[5]
    with pytest.raises(ValueError, match="step 1"):
        lines[::2]

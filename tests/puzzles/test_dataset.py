"""dataset.py and files.py: splits, byte-identical files, loading (ours, Hugging Face datasets, public K&K rows).

Run: .venv/bin/python -m pytest tests/puzzles/test_dataset.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from brute_force import brute_force_solutions

from logicrl.errors import DataError
from logicrl.io import write_jsonl
from logicrl.parallel import Workers
from logicrl.puzzles import compiled
from logicrl.puzzles.dataset import (
    RECORD_CHUNK,
    DataConfig,
    generate,
    generate_twins,
    parse_people,
    summarize,
)
from logicrl.puzzles.files import dataset_files, load_records, write_dataset
from logicrl.puzzles.lines import facts_of
from logicrl.puzzles.logic import Op, Statement
from logicrl.puzzles.names import Roles
from logicrl.puzzles.perturb import PUBLIC_KIND_OF
from logicrl.puzzles.record import Puzzle
from logicrl.puzzles.render import solution_text_format

# The documented record columns (design.md "Interfaces" and record.py).
COLUMNS = ["quiz", "names", "knight_knave", "solution", "solution_text", "solution_text_format", "cot_head",
           "cot_repeat_steps", "cot_foot", "statements", "index", "n_people", "depth", "width", "seed", "id",
           "order"]
CONFIG = DataConfig(people=[2, 3, 5], train=40, test=15, depth=3, roles="random", seed=4)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kk")
    write_dataset(out, CONFIG, generate(CONFIG))
    return out


def test_layout_and_manifest(dataset: Path) -> None:
    names = sorted(str(p.relative_to(dataset)) for p in dataset.rglob("*") if p.is_file())
    assert names == ["2ppl/test.jsonl", "2ppl/test.parquet", "2ppl/train.jsonl", "2ppl/train.parquet",
                     "3ppl/test.jsonl", "3ppl/test.parquet", "3ppl/train.jsonl", "3ppl/train.parquet",
                     "5ppl/test.jsonl", "5ppl/test.parquet", "5ppl/train.jsonl", "5ppl/train.parquet",
                     "manifest.json"]
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["counts"] == {f"{n}ppl": {"train": 40, "test": 15} for n in (2, 3, 5)}
    assert DataConfig.model_validate(manifest["config"]) == CONFIG


def test_same_seed_same_bytes(dataset: Path, tmp_path: Path) -> None:
    write_dataset(tmp_path, CONFIG, generate(CONFIG))
    files = sorted(p.relative_to(dataset) for p in dataset.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    for rel in files:
        assert (dataset / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel
    other = CONFIG.model_copy(update={"seed": 5})
    write_dataset(tmp_path / "other", other, generate(other))
    assert (tmp_path / "other/3ppl/train.jsonl").read_bytes() != (dataset / "3ppl/train.jsonl").read_bytes()


def test_workers_give_the_same_records_and_twins(monkeypatch) -> None:
    """Records (the Python path's) and twins rendered by forked workers, in chunks, are the serial ones in the same
    order: several chunks per level, a split smaller than one chunk, every twin kind."""
    monkeypatch.setattr(compiled, "library", lambda: None)
    config = DataConfig(people=[2, 4], train=RECORD_CHUNK + 37, test=RECORD_CHUNK // 2, roles="random", seed=9,
                        layout="public", perturb=list(PUBLIC_KIND_OF))
    serial = generate(config)
    with Workers(2) as pool:
        forked = generate(config, workers=pool)
        assert forked == serial
        assert generate_twins(config, forked, workers=pool) == generate_twins(config, serial)
    assert len(serial[4]["train"]) == RECORD_CHUNK + 37 and [r["index"] for r in serial[4]["train"]] == list(
        range(RECORD_CHUNK // 2, RECORD_CHUNK // 2 + RECORD_CHUNK + 37))


def test_a_twin_kind_named_twice_is_made_once() -> None:
    """In either naming (ours or the public release's): the manifest and the files list it once."""
    config = DataConfig(people=[3], layout="public", perturb="leaf,perturbed_leaf,reorder,leaf")
    assert config.perturb == ["leaf", "reorder"]


def test_an_empty_split_has_every_twin_kind_empty() -> None:
    config = DataConfig(people=[3], train=5, test=0, layout="public", perturb=["leaf", "reorder"])
    twins = generate_twins(config, generate(config))
    assert twins[3]["test"] == {"leaf": [], "reorder": []}
    assert len(twins[3]["train"]["reorder"]) == 5  # a surface change keeps every puzzle


def test_splits_are_disjoint_unique_and_solved(dataset: Path) -> None:
    for n in (2, 3, 5):
        train = load_records([dataset / f"{n}ppl/train.jsonl"])
        test = load_records([dataset / f"{n}ppl/test.jsonl"])
        assert len(train) == 40 and len(test) == 15
        statements = [r["statements"] for r in train + test]
        assert len(set(statements)) == len(statements)
        assert len({r["id"] for r in train + test}) == len(statements)
        for record in train + test:
            assert record["n_people"] == n
            assert brute_force_solutions(json.loads(record["statements"])) == [tuple(record["solution"])]
        assert [r["index"] for r in test] == list(range(15))  # drawn first


def test_a_val_split_leaves_train_and_test_unchanged(tmp_path: Path) -> None:
    from logicrl.rl.schedule import held_out_split

    base = DataConfig(people=[3], train=10, test=5, seed=1)
    plain = generate(base)[3]
    with_val = generate(base.model_copy(update={"val": 4}))[3]
    assert with_val["train"] == plain["train"] and with_val["test"] == plain["test"]
    ids = {split: {r["id"] for r in rows} for split, rows in with_val.items()}
    assert len(ids["val"]) == 4 and not ids["val"] & (ids["train"] | ids["test"])
    write_dataset(tmp_path / "a", base, {3: plain})
    write_dataset(tmp_path / "b", base, {3: with_val})
    assert held_out_split(tmp_path / "a") == "test" and held_out_split(tmp_path / "b") == "val"


def test_validation_reads_the_val_split_of_a_public_layout_dataset_too(tmp_path: Path) -> None:
    """train, sft and verl export validate on `load_held_out`: a public-layout dataset's val/ split, not its
    test split (the public layout's val/ was not looked for, so validation read the test puzzles)."""
    from logicrl.rl.schedule import held_out_split, load_held_out

    config = DataConfig(people=[2, 3], train=6, test=4, val=3, seed=2, layout="public")
    splits = generate(config)
    write_dataset(tmp_path / "with-val", config, splits)
    assert held_out_split(tmp_path / "with-val") == "val"
    held_out = {r["id"] for r in load_held_out(tmp_path / "with-val", None, [2, 3])}
    assert held_out == {r["id"] for n in (2, 3) for r in splits[n]["val"]}
    no_val = config.model_copy(update={"val": 0})
    write_dataset(tmp_path / "no-val", no_val, generate(no_val))
    assert held_out_split(tmp_path / "no-val") == "test"


def test_jsonl_and_parquet_hold_the_same_records(dataset: Path) -> None:
    jsonl = load_records([dataset / "5ppl/train.jsonl"])
    parquet = load_records([dataset / "5ppl/train.parquet"])
    assert jsonl == parquet
    assert sorted(jsonl[0]) == sorted(COLUMNS)


def test_hugging_face_datasets_loads_both_formats(dataset: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    files = {"train": str(dataset / "3ppl/train.{}"), "test": str(dataset / "3ppl/test.{}")}
    for builder, ext in (("json", "jsonl"), ("parquet", "parquet")):
        ds = datasets.load_dataset(builder, data_files={k: v.format(ext) for k, v in files.items()},
                                   cache_dir=str(tmp_path / "hf"))
        assert ds["train"].num_rows == 40 and ds["test"].num_rows == 15
        assert sorted(ds["train"].column_names) == sorted(COLUMNS)
        row = ds["test"][0]
        assert isinstance(row["solution"][0], bool) and isinstance(row["statements"], str)
        assert row["knight_knave"]["knight"] in row["quiz"]
        assert Puzzle.from_record(row).solution == tuple(row["solution"])


def test_dataset_files(dataset: Path, tmp_path: Path) -> None:
    assert [str(p.relative_to(dataset)) for p in dataset_files(dataset)] == [
        "2ppl/test.jsonl", "2ppl/train.jsonl", "3ppl/test.jsonl", "3ppl/train.jsonl",
        "5ppl/test.jsonl", "5ppl/train.jsonl"]
    assert dataset_files(dataset / "2ppl/test.parquet") == [dataset / "2ppl/test.parquet"]
    # Numeric order of people (10 after 9), and parquet when there is no JSONL.
    for n in (9, 10):
        (tmp_path / f"{n}ppl").mkdir()
        (tmp_path / f"{n}ppl/test.parquet").write_bytes((dataset / "2ppl/test.parquet").read_bytes())
    assert [p.parent.name for p in dataset_files(tmp_path, "test")] == ["9ppl", "10ppl"]
    with pytest.raises(ValueError, match="no such file or dataset directory"):
        dataset_files(tmp_path / "missing")
    with pytest.raises(ValueError, match="no \\*ppl/train.jsonl or .parquet files"):
        dataset_files(tmp_path, "train")


def test_load_records_reports_file_and_line(dataset: Path, tmp_path: Path) -> None:
    good = (dataset / "2ppl/test.jsonl").read_text().splitlines()
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([good[0], good[1], '{"quiz": "unterminated', good[2]]) + "\n")
    with pytest.raises(ValueError, match=f"^{path}:3: not valid JSON"):
        load_records([path])

    path.write_text("\n".join([good[0], '{"foo": 1}']) + "\n")
    with pytest.raises(ValueError, match=(f"^{path}:2: missing field\\(s\\) quiz, names, solution, "
                                          "solution_text_format, statements")):
        load_records([path])
    assert load_records([path], check=False)[1] == {"foo": 1}

    row = json.loads(good[0]) | {"solution": [True]}
    path.write_text(good[0] + "\n\n" + json.dumps(row) + "\n")  # blank lines still count
    with pytest.raises(ValueError, match=f"^{path}:3: 'solution' must be a list of 2 booleans"):
        load_records([path])

    flipped = json.loads(good[0])
    flipped["solution"] = [not role for role in flipped["solution"]]  # a wrong answer key of the right shape
    path.write_text(good[0] + "\n" + json.dumps(flipped) + "\n")
    with pytest.raises(ValueError, match=f"^{path}:2: 'solution' contradicts the statements"):
        load_records([path])


def test_an_answer_text_that_disagrees_with_the_solution_is_refused(dataset: Path, tmp_path: Path) -> None:
    """The reward scores against ``solution_text_format``, which the loader did not compare with ``solution``:
    a row whose text named the other role (or other names, or other role words) loaded, and every correct
    response to it scored as wrong."""
    good = json.loads((dataset / "2ppl/test.jsonl").read_text().splitlines()[0])
    path = tmp_path / "bad.jsonl"
    right, puzzle = good["solution_text_format"], Puzzle.from_record(good)
    wrong_role = solution_text_format([not k for k in puzzle.solution], puzzle.names, puzzle.roles)
    other_words = solution_text_format(puzzle.solution, puzzle.names, Roles("zorp", "blip"))
    for text in (wrong_role, right.replace(good["names"][0], "Nobody"), other_words,
                 "\n".join(reversed(right.splitlines()))):
        path.write_text(json.dumps(good) + "\n" + json.dumps(good | {"solution_text_format": text}) + "\n")
        with pytest.raises(DataError) as error:
            load_records([path])
        assert str(error.value) == (
            f"{path}:2: solution_text_format: malformed expected answer {text!r}: the row's 'solution', 'names' "
            f"and 'knight_knave' give {right!r}, and the reward scores against this text; fix or drop the row")
    # whitespace around it is the same answer (the reward strips it), and an unchecked read takes any text
    path.write_text(json.dumps(good | {"solution_text_format": right + "\n"}) + "\n")
    assert load_records([path])[0]["solution_text_format"] == right + "\n"
    path.write_text(json.dumps(good | {"solution_text_format": wrong_role}) + "\n")
    assert load_records([path], check=False)[0]["solution_text_format"] == wrong_role


def test_load_records_reports_parquet_rows(tmp_path: Path) -> None:
    from logicrl.io import write_parquet

    record = _record()
    path = tmp_path / "x.parquet"
    write_parquet(path, [record, record | {"statements": '[["xor", 0], ["lying", 0]]'}])
    with pytest.raises(ValueError, match=r"x.parquet\[row 1\]: unknown statement operator 'xor'"):
        load_records([path])


def test_public_kk_row_loads(tmp_path: Path) -> None:
    row = {
        "quiz": "...", "names": ["Zoey", "Oliver"], "solution": [False, False],
        "solution_text_format": "(1) Zoey is a knave\n(2) Oliver is a knave", "index": 7,
        "statements": "(('telling-truth', 1), ('and', ('lying', 0), ('telling-truth', 1)))",
    }
    path = tmp_path / "public.jsonl"
    write_jsonl(path, [row])
    (loaded,) = load_records([path])
    puzzle = Puzzle.from_record(loaded)
    assert puzzle.statements[1] == Statement.conjunction(Statement.knave(0), Statement.knight(1))
    assert summarize(facts_of([loaded]))[2]["puzzles"] == 1


def _record(statements=None, solution=(True, False), names=("Zoey", "Oliver"), roles=Roles()) -> dict:
    knaves = Statement.conjunction(Statement.knave(0), Statement.knave(1))
    statements = statements or (Statement.knave(1), knaves)
    return Puzzle(tuple(statements), tuple(solution), tuple(names), roles, 0, tuple(range(len(names))),
                  2, 2).to_record(0)


def test_summarize_by_hand() -> None:
    a = _record()  # depths 1 and 2, one knight of two
    b = _record([Statement.knave(1), Statement.knave(0), Statement.knight(0)], (True, False, True),
                ("Ava", "Liam", "Mia"))  # depths 1, 1, 1; two knights of three
    not_not = Statement.negation(Statement.negation(Statement.knave(0)))
    c = _record([Statement.knight(1), not_not], (False, False))
    table = summarize(facts_of([a, b, c]))
    assert list(table) == [2, 3]
    assert table[2] == pytest.approx({
        "puzzles": 2, "knight_share": 1 / 4, "mean_depth": (1 + 2 + 1 + 3) / 4, "max_depth": 3,
        "mean_quiz_chars": (len(a["quiz"]) + len(c["quiz"])) / 2,
        "max_quiz_chars": max(len(a["quiz"]), len(c["quiz"])),
    })
    assert table[3] == pytest.approx({
        "puzzles": 1, "knight_share": 2 / 3, "mean_depth": 1.0, "max_depth": 1,
        "mean_quiz_chars": len(b["quiz"]), "max_quiz_chars": len(b["quiz"]),
    })


@pytest.mark.parametrize(("text", "expected"), [("3-7", [3, 4, 5, 6, 7]), ("2,4,8", [2, 4, 8]), (5, [5]),
                                                ("2, 5-6", [2, 5, 6])])
def test_parse_people(text, expected) -> None:
    assert parse_people(text) == expected
    assert DataConfig(people=text).people == expected


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"people": "three"}, "people must look like '3-7'"),
        ({"people": [1, 3]}, "number of people must be in 2..30, got 1"),
        ({"people": "3-2"}, "people range '3-2' is empty: write the smaller number first"),
        ({"people": "2,4-5,4"}, "4 people listed more than once"),
        ({"people": []}, "no numbers of people"),
        ({"roles": "Knight/knave"}, "role words must look like"),
        ({"operators": ["xor"]}, "unknown operator 'xor'"),
        ({"width": 1}, "greater than or equal to 2"),
        ({"depth": 1}, (r"depth 1 makes every statement one claim or its negation, and no such puzzle has exactly "
                        r"one solution \(swapping every knight and knave keeps each statement as true as its speaker "
                        r"is truthful\): use depth 2 or more \[type")),
        ({"operators": ["not"], "depth": 3}, (r"operators \[not\] alone make every statement one claim or its "
                                              r"negation, .*: add and, or, -> or <=> \[type")),
        ({"formats": ["csv"]}, "'jsonl' or 'parquet'"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_data_config_errors(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DataConfig(**change)


def test_only_requested_formats_and_splits_are_written(tmp_path: Path) -> None:
    config = DataConfig(people=[4], train=5, test=0, formats=["jsonl"])
    written = write_dataset(tmp_path, config, generate(config))
    assert written == [tmp_path / "4ppl/train.jsonl"]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["manifest.json", "train.jsonl"]


def test_statement_twins_draw_with_the_configured_operators() -> None:
    """`data generate ... operators=[and,or] perturb=statement` gave twins whose new statement used ->, <=> or
    not: the twins' sampler always had every operator. Each twin's changed statement now uses the config's."""
    config = DataConfig(people=[3, 4], train=30, test=0, operators=["or", "and"], layout="public",
                        perturb=["statement"])
    splits = generate(config)
    twins = generate_twins(config, splits)
    new = []
    for n in (3, 4):
        originals = {r["index"]: Puzzle.from_record(r) for r in splits[n]["train"]}
        for twin in twins[n]["train"]["statement"]:
            statements = zip(originals[twin["index"]].statements, Puzzle.from_record(twin).statements)
            (changed,) = [b for a, b in statements if a != b]
            new.append(changed)
    assert len(new) >= 50
    assert set().union(*(s.operators() for s in new)) == {Op.AND, Op.OR}



def test_the_operator_set_is_a_set() -> None:
    """``operators=[or,and]`` and ``[and,or]`` name one level: the same puzzles (the stream was keyed by the list
    as written), one manifest entry; a name given twice counts once."""
    small = {"people": [3], "train": 5, "test": 0}
    swapped = DataConfig(**small, operators=["or", "and", "or"])
    assert swapped.operators == ["and", "or"]
    assert generate(swapped) == generate(DataConfig(**small, operators=["and", "or"]))

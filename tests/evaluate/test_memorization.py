"""Acc, CR and LiMem (Xie et al. 2024) on crafted results, hand-computed; twins from the puzzle engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from logicrl.cli import app
from logicrl.config import load_config
from logicrl.errors import ConfigError, DataError
from logicrl.evaluate.config import MemorizationConfig
from logicrl.evaluate.memorization import (
    ALL_PEOPLE,
    collect_twins,
    link_twins,
    make_twins,
    memorization_scores,
    memorization_table,
)
from logicrl.io import write_jsonl
from logicrl.puzzles.dataset import DataConfig, generate
from logicrl.puzzles.files import dataset_files, load_records, load_twins
from logicrl.puzzles.logic import Statement
from logicrl.puzzles.record import Puzzle
from logicrl.puzzles.solver import solve


def test_scores_hand_computed() -> None:
    # 10 puzzles: 8 originals solved; of those 6 twins still solved (2 flipped to failed);
    # one unsolved original has a solved twin, which must not count.
    originals = [True] * 8 + [False] * 2
    twins = [True] * 6 + [False] * 2 + [True, False]
    scores = memorization_scores(originals, twins)
    assert scores["pairs"] == 10
    assert scores["acc"] == 0.8
    assert scores["cr"] == 0.75                      # 6 / 8
    assert scores["limem"] == pytest.approx(0.2)     # 0.8 * (1 - 0.75)


def test_limem_is_the_share_solved_but_not_after_perturbation() -> None:
    originals = [True, True, False, True, False, True, True]
    twins = [False, True, True, True, False, False, True]
    scores = memorization_scores(originals, twins)
    inconsistent = sum(o and not t for o, t in zip(originals, twins, strict=True)) / len(originals)
    assert scores["limem"] == pytest.approx(inconsistent)  # 2 / 7


def test_scores_edge_cases() -> None:
    none_solved = memorization_scores([False, False], [True, False])
    assert none_solved == {"pairs": 2, "acc": 0.0, "cr": None, "limem": 0.0}
    all_consistent = memorization_scores([True, True], [True, True])
    assert all_consistent["cr"] == 1.0 and all_consistent["limem"] == 0.0
    assert memorization_scores([], [])["acc"] is None
    with pytest.raises(ValueError):
        memorization_scores([True], [])


def test_table_per_kind_and_level_and_pooled() -> None:
    people = {"a": 2, "b": 2, "c": 3, "d": 3}
    solved = {"a": True, "b": True, "c": True, "d": False,
              "a~reorder": True, "b~reorder": False, "c~reorder": True, "d~reorder": True,
              "a~leaf": False}
    pairs = {"reorder": [("a", "a~reorder"), ("b", "b~reorder"), ("c", "c~reorder"), ("d", "d~reorder")],
             "leaf": [("a", "a~leaf")]}   # the other puzzles had no valid leaf twin
    table = memorization_table(solved, people, pairs)
    assert table["reorder"][2] == {"pairs": 2, "acc": 1.0, "cr": 0.5, "limem": 0.5}
    assert table["reorder"][3] == {"pairs": 2, "acc": 0.5, "cr": 1.0, "limem": 0.0}
    pooled = table["reorder"][ALL_PEOPLE]
    assert pooled["acc"] == 0.75 and pooled["cr"] == pytest.approx(2 / 3)
    assert pooled["limem"] == pytest.approx(0.25)
    assert table["leaf"] == {2: {"pairs": 1, "acc": 1.0, "cr": 0.0, "limem": 1.0},
                             ALL_PEOPLE: {"pairs": 1, "acc": 1.0, "cr": 0.0, "limem": 1.0}}


def test_make_twins_links_each_twin_to_its_original(test_records: list[dict]) -> None:
    twins, pairs = make_twins(test_records, ["reorder", "flip_roles", "leaf"], seed=0)
    by_id = {t["id"]: t for t in twins}
    assert len(pairs["reorder"]) == len(pairs["flip_roles"]) == len(test_records)  # surface kinds never fail
    for kind, kind_pairs in pairs.items():
        for original, twin in kind_pairs:
            assert twin == f"{original}~{kind}"
            record = by_id[twin]
            assert record["original_id"] == original and record["perturbation"] == kind
            Puzzle.from_record(record)  # a valid record
    again, _ = make_twins(test_records, ["leaf"], seed=0)
    assert [t["quiz"] for t in again] == [by_id[t]["quiz"] for _, t in pairs["leaf"]]


def test_a_kind_named_twice_is_measured_once() -> None:
    assert load_config(MemorizationConfig, None, ["kinds=leaf,reorder,leaf"]).kinds == ["leaf", "reorder"]


def test_kinds_take_the_public_names_too() -> None:
    """As `data perturb --kinds` and `data show --kind` do: the public release's names map to logicrl's (a kind
    given both ways is measured once); an unknown name lists both namings."""
    config = load_config(MemorizationConfig, None, ["kinds=perturbed_leaf,reorder_statement,leaf"])
    assert config.kinds == ["leaf", "reorder"]
    with pytest.raises(ConfigError, match=r"unknown perturbation\(s\) perturbed_nothing \(valid: statement, .*"
                                          r"or the public names perturbed_statement, perturbed_leaf"):
        load_config(MemorizationConfig, None, ["kinds=perturbed_nothing"])


def located(twins: list[dict]) -> list[tuple[str, dict]]:
    """Twin records as `load_twins` gives them: with their location, here lines of ``t.jsonl``."""
    return [(f"t.jsonl:{line}", twin) for line, twin in enumerate(twins, start=1)]


def public_twin(twin: dict) -> dict:
    """A made twin as the public release writes it: no ``original_id``, linked by people and ``index``."""
    return {k: v for k, v in twin.items() if k not in ("original_id", "perturbation")}


def test_two_given_twins_of_one_puzzle_are_refused(test_records: list[dict]) -> None:
    """Public twins are linked to their originals by (people, index): a second twin at the same place would pair
    one puzzle with two twins (and leave another without its own)."""
    original = test_records[0]
    made, _ = make_twins([original], ["reorder"], seed=0)
    twin = {**public_twin(made[0]), "index": original["index"]}
    linked, pairs = link_twins([original], "reorder", located([twin]))
    assert pairs == [(original["id"], f"{original['id']}~reorder")] and linked[0]["original_id"] == original["id"]
    with pytest.raises(DataError, match=rf"^t.jsonl:2: two reorder twins have 2 people and index {original['index']}$"):
        link_twins([original], "reorder", located([twin, twin]))


@pytest.mark.parametrize("own_ids", [False, True])
def test_the_twins_data_perturb_writes_are_given_twins(puzzle_dir: Path, tmp_path: Path, own_ids: bool) -> None:
    """`data perturb DATA --out P` writes P/<kind>.jsonl, which the README calls memorization twins, but
    `eval memorization --twins P` refused P ("no public twins"). They are read and linked to their originals by
    ``original_id``: a twin's ``index`` is its line in P, not its original's place in its level (the 3-person
    twins' 12..23 are no 3-person original's). They are the twins eval makes itself from the same seed.

    ``own_ids``: records that carry ids of their own (q0, q1, ...), not content ids; `data perturb` named each
    twin's original by its content id, so that none of them was linked ("none of the 24 reorder twins
    belongs to the 24 puzzles evaluated")."""
    originals = load_records(dataset_files(puzzle_dir, "train"))
    source = puzzle_dir
    if own_ids:
        originals = [{**record, "id": f"q{i}"} for i, record in enumerate(originals)]
        source = tmp_path / "own.jsonl"
        write_jsonl(source, originals)
    twins_dir = tmp_path / "P"
    result = CliRunner().invoke(app, ["data", "perturb", str(source), "--out", str(twins_dir),
                                      "--kinds", "reorder,leaf"])
    assert result.exit_code == 0, result.output
    given = load_twins(twins_dir, "train", ["reorder", "leaf", "roles"], required=True)
    assert sorted(given) == ["leaf", "reorder"]
    twins, pairs, sources = collect_twins(originals, ["reorder", "leaf", "roles"], 0, given)
    assert sources == {"reorder": "given", "leaf": "given", "roles": "made"} and len(pairs["reorder"]) == 24
    made, made_pairs = make_twins(originals, ["reorder", "leaf"], 0)
    assert {k: pairs[k] for k in made_pairs} == made_pairs
    assert pairs["reorder"][0] == (originals[0]["id"], f"{originals[0]['id']}~reorder")
    text = {t["id"]: (t["quiz"], t["solution_text_format"]) for t in twins}
    assert all(text[t["id"]] == (t["quiz"], t["solution_text_format"]) for t in made)


def test_twins_of_another_split_are_refused(puzzle_dir: Path, tmp_path: Path) -> None:
    """Twins made from the test split, given to an evaluation of the train split, paired with none of its puzzles:
    `eval memorization` printed "reorder 0/24 (given)" and measured nothing for that kind."""
    twins_dir = tmp_path / "P"
    result = CliRunner().invoke(app, ["data", "perturb", str(puzzle_dir), "--split", "test", "--out", str(twins_dir),
                                      "--kinds", "reorder"])
    assert result.exit_code == 0, result.output
    given = load_twins(twins_dir, "train", ["reorder"], required=True)
    originals = load_records(dataset_files(puzzle_dir, "train"))
    with pytest.raises(DataError, match=rf"^none of the {len(given['reorder'])} reorder twins belongs to the "
                                        rf"{len(originals)} puzzles evaluated \(linked by original_id\): give the "
                                        "twins of the same split or file"):
        collect_twins(originals, ["reorder"], 0, given)
    public = [{"id": "t", "names": ["Ava", "Bo"], "index": 7}]
    with pytest.raises(DataError, match=r"^none of the 1 leaf twins .* \(linked by number of people and index\)"):
        link_twins([{"id": "kk2-a", "names": ["Zoey", "Oliver"], "index": 0}], "leaf", located(public))


def test_a_twin_linked_by_id_twice_is_refused(test_records: list[dict]) -> None:
    """Twins that name their original are linked by it: two of one kind naming one puzzle are a one-line error."""
    original = test_records[0]
    made, _ = make_twins([original], ["leaf"], seed=0)
    twins = [{**made[0], "index": i} for i in (3, 4)]
    linked, pairs = link_twins([original], "leaf", located(twins[:1]))
    assert pairs == [(original["id"], f"{original['id']}~leaf")] and linked[0]["index"] == 3
    with pytest.raises(DataError, match=rf"^t.jsonl:2: two leaf twins have original_id '{original['id']}'$"):
        link_twins([original], "leaf", located(twins))


def test_twins_of_another_dataset_are_refused(dataset: Path, tmp_path: Path) -> None:
    """Twins without ``original_id`` (the public layout) are linked by number of people and index; a twin folder
    of another dataset paired every twin with an unrelated puzzle at its place, silently (a reorder "twin" with
    other names, statements and answer). Each pair is checked: the first mismatch is a one-line error naming the
    twin's file and line."""
    originals = load_records(dataset_files(dataset, "train"))
    other = DataConfig(people=[2, 3], train=4, test=0, seed=99, formats=["jsonl"])
    strangers = [r for n, by in generate(other).items() for r in by["train"]]
    made, _ = make_twins(strangers, ["reorder"], seed=0)
    assert [len(t["names"]) for t in made] == [len(r["names"]) for r in originals]
    folder = tmp_path / "P"  # at the places of the originals, as another download of the release would be
    write_jsonl(folder / "reorder.jsonl", [{**public_twin(t), "index": r["index"]} for t, r in zip(made, originals)])
    given = load_twins(folder, "train", ["reorder"], required=True)
    first = strangers[0]
    with pytest.raises(DataError, match=(
            rf"^{folder / 'reorder.jsonl'}:1: not a reorder twin of '{originals[0]['id']}', the puzzle it is linked "
            rf"to by number of people and index \(the names {', '.join(first['names'])}, its original "
            rf"{', '.join(originals[0]['names'])}\): the twins belong to another dataset or split; give those of the "
            r"data evaluated \(`logicrl data perturb`\)$")):
        collect_twins(originals, ["reorder"], 0, given)
    # the dataset's own twins, written the same way, are linked
    own, own_pairs = make_twins(originals, ["reorder"], seed=0)
    write_jsonl(folder / "reorder.jsonl", [{**public_twin(t), "index": r["index"]} for t, r in zip(own, originals)])
    _, pairs, _ = collect_twins(originals, ["reorder"], 0, load_twins(folder, "train", ["reorder"]))
    assert pairs == own_pairs


def test_given_logic_twins_are_checked(test_records: list[dict]) -> None:
    """A crafted leaf twin with 8 solutions, or identical to its original, was accepted (only a consistent
    solution was asked of it): a logic twin must have exactly one solution, not its original's."""
    original = test_records[0]
    made, _ = make_twins([original], ["leaf"], seed=0)
    link_twins([original], "leaf", located(made))  # a made twin passes
    with pytest.raises(DataError, match=rf"^t.jsonl:1: not a leaf twin of '{original['id']}', the puzzle it is "
                                        r"linked to by original_id \(0 statements changed, not 1\)"):
        link_twins([original], "leaf", located([{**original, "original_id": original["id"]}]))
    vacuous = Puzzle.from_record(original)
    knights = [Statement.knight(i) for i in range(vacuous.n_people)]  # "I am a knight" decides nothing
    crafted = vacuous.evolve(statements=(knights[0], *vacuous.statements[1:]), perturbation="leaf",
                             original_id=original["id"])
    solutions = len(solve(crafted.statements))
    assert solutions > 1
    with pytest.raises(DataError, match=rf"\({solutions} solutions, not 1\)"):
        link_twins([original], "leaf", located([crafted.to_record(0)]))


def test_a_level_no_statement_twin_can_be_drawn_at_is_a_one_line_data_error() -> None:
    """A record of depth 40 (its statements may be shallow: the field is the level it was drawn at) made the
    statement sampler raise a bare ValueError deep in `eval memorization`; now a DataError naming the puzzle."""
    record = {**generate(DataConfig(people=[3], train=1, test=0, seed=0))[3]["train"][0], "depth": 40}
    with pytest.raises(DataError, match=rf"^puzzle {record['id']}: no statement twin can be drawn at its level: "):
        make_twins([record], ["statement"], seed=0)
    twins, pairs = make_twins([record], ["reorder"], seed=0)  # other kinds draw no statement
    assert len(twins) == len(pairs["reorder"]) == 1

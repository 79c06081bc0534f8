"""The public K&K release as a first-class dataset: its layout, kind names, id-less records, its exact text
(so wording-only twins keep every other word), the answer text its evaluator reads, and the paper preset.

Fixtures are public-format files written by the tests (public_kk.py), never copies of the release.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/puzzles/test_public.py -q -p no:cacheprovider
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from brute_force import brute_force_solutions
from public_kk import public_record, random_records, sentence, tuples, write_public
from typer.testing import CliRunner

from logicrl.cli import app
from logicrl.errors import DataError, UserError
from logicrl.io import write_parquet
from logicrl.puzzles.dataset import PRESETS, DataConfig, generate, generate_twins
from logicrl.puzzles.files import dataset_files, load_records, write_dataset
from logicrl.puzzles.perturb import PUBLIC_KIND_OF, PUBLIC_KINDS, perturb, perturbation_name, twin_source
from logicrl.puzzles.public import public_files, twin_files
from logicrl.puzzles.record import Puzzle, recover_rendering
from logicrl.reward import score

runner = CliRunner()


@pytest.fixture(scope="module")
def statement_sets() -> dict[int, list[tuple]]:
    """Unique-solution statement sets at depth 2 / width 2 (drawn by the engine; the text is the fixture's)."""
    splits = generate(DataConfig(people=[2, 3, 4], train=6, test=0, seed=11))
    return {n: [tuples(json.loads(r["statements"])) for r in by["train"]] for n, by in splits.items()}


@pytest.fixture(scope="module")
def public_root(tmp_path_factory, statement_sets) -> Path:
    """test/clean (3 puzzles of 2 and of 3 people, indices from 0), train/clean (from index 3), and twins."""
    root = tmp_path_factory.mktemp("kk-public")
    for n in (2, 3):
        test = random_records(statement_sets[n][:3], seed=n)
        train = random_records(statement_sets[n][3:], seed=10 + n, start=3)
        write_public(root, "test", "clean", n, test)
        write_public(root, "train", "clean", n, train)
        write_public(root, "train", "reorder_statement", n, train)  # content irrelevant here
    return root


def rel(root: Path, paths: list[Path]) -> list[str]:
    return [str(p.relative_to(root)) for p in paths]


def test_kind_names_map_both_ways() -> None:
    assert PUBLIC_KINDS == {"perturbed_statement": "statement", "perturbed_leaf": "leaf",
                            "uncommon_name": "uncommon_names", "random_pair": "roles", "flip_role": "flip_roles",
                            "reorder_statement": "reorder"}
    assert all(PUBLIC_KINDS[PUBLIC_KIND_OF[ours]] == ours for ours in PUBLIC_KIND_OF)
    assert perturbation_name("perturbed_leaf") == "leaf" and perturbation_name("leaf") == "leaf"
    with pytest.raises(ValueError, match=r"unknown perturbation 'shuffle' \(valid: statement \(perturbed_stat"):
        perturbation_name("shuffle")


def test_public_layout_is_found(public_root: Path, tmp_path: Path) -> None:
    assert rel(public_root, dataset_files(public_root, "test")) == [
        "test/clean/people2_num3.jsonl", "test/clean/people3_num3.jsonl"]
    assert rel(public_root, dataset_files(public_root)) == [
        "test/clean/people2_num3.jsonl", "test/clean/people3_num3.jsonl",
        "train/clean/people2_num3.jsonl", "train/clean/people3_num3.jsonl"]
    # a twin kind, in either naming
    for kind in ("reorder", "reorder_statement"):
        assert rel(public_root, dataset_files(public_root, "train", kind)) == [
            "train/reorder_statement/people2_num3.jsonl", "train/reorder_statement/people3_num3.jsonl"]
    # one split's folder, or one kind's, given directly
    assert rel(public_root, dataset_files(public_root / "train" / "clean")) == [
        "train/clean/people2_num3.jsonl", "train/clean/people3_num3.jsonl"]
    # the clean release on Hugging Face: {split}/people{N}_num{M}.jsonl, 10 people after 9
    for n in (10, 9):
        (tmp_path / "test").mkdir(exist_ok=True)
        (tmp_path / "test" / f"people{n}_num100.jsonl").write_text("")
    assert rel(tmp_path, dataset_files(tmp_path, "test")) == ["test/people9_num100.jsonl",
                                                              "test/people10_num100.jsonl"]
    with pytest.raises(DataError, match=r"no val/clean/people\*_num\*.jsonl files \(public K&K layout\)"):
        dataset_files(public_root, "val")
    with pytest.raises(DataError, match="unknown kind 'bogus'"):
        dataset_files(public_root, "test", "bogus")
    logicrl_layout = tmp_path / "logicrl"
    (logicrl_layout / "3ppl").mkdir(parents=True)
    (logicrl_layout / "3ppl" / "test.jsonl").write_text("")
    with pytest.raises(DataError, match="unknown kind 'bogus'"):  # not "holds no twins"
        dataset_files(logicrl_layout, "test", "bogus")
    with pytest.raises(DataError, match="a logicrl dataset directory holds no twins"):
        dataset_files(logicrl_layout, "test", "perturbed_leaf")


def test_id_less_records_get_content_ids_and_an_id_names_one_puzzle(public_root: Path, tmp_path: Path) -> None:
    records = load_records(dataset_files(public_root, "test"))
    assert [r["index"] for r in records] == [0, 1, 2, 0, 1, 2]
    for record in records:
        assert record["id"] == Puzzle.from_record(record).id and record["id"].startswith(
            f"kk{len(record['names'])}-")
    assert len({r["id"] for r in records}) == 6
    # explicit ids: the same puzzle twice is fine, two different puzzles under one id is a one-line error
    one, other = records[0], records[1]
    path = tmp_path / "ids.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ({**one, "id": "p1"}, {**one, "id": "p1"})))
    assert [r["id"] for r in load_records([path])] == ["p1", "p1"]
    path.write_text("".join(json.dumps(r) + "\n" for r in ({**one, "id": "p1"}, {**other, "id": "p1"})))
    with pytest.raises(DataError, match=rf"^{path}:2: id 'p1' is already the id of a different puzzle "
                                        rf"\({path}:1\); ids must be unique$"):
        load_records([path])
    # an id is text or a whole number; a list or a boolean is a malformed row, checked or not
    path.write_text("".join(json.dumps(r) + "\n" for r in ({**one, "id": 0}, {**other, "id": "p2"})))
    assert [r["id"] for r in load_records([path])] == [0, "p2"]  # 0 is an id, not a missing one
    for bad, shown in (([1], r"\[1\]"), (True, "True"), ({"a": 1}, r"\{'a': 1\}")):
        path.write_text(json.dumps({**one, "id": "p1"}) + "\n" + json.dumps({**other, "id": bad}) + "\n")
        for check in (True, False):
            with pytest.raises(DataError, match=rf"^{path}:2: 'id' must be text or a whole number, got {shown}$"):
                load_records([path], check=check)
    # an id-less row never takes an id another row holds
    id_less = {k: v for k, v in one.items() if k != "id"}
    path.write_text("".join(json.dumps(r) + "\n" for r in ({**other, "id": one["id"]}, id_less)))
    assert [r["id"] for r in load_records([path])] == [one["id"], one["id"] + "#2"]
    # a row without an index gets its line in its file
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k not in ("index", "id")}) + "\n"
                            for r in (one, other)))
    assert [r["index"] for r in load_records([path])] == [0, 1]


def test_public_text_is_reproduced_exactly(public_root: Path) -> None:
    records = load_records(dataset_files(public_root))
    for record in records:
        puzzle, exact = twin_source(record)
        assert exact and puzzle.style == "public" and puzzle.quiz == record["quiz"]
        assert Puzzle.from_record(puzzle.to_record(0)) == puzzle  # templates and style travel in the record
    # a statement told in another order is found in that order
    statements = tuples([["->", ["telling-truth", 1], ["lying", 0]], ["<=>", ["telling-truth", 0],
                                                                      ["telling-truth", 1]]])
    told = public_record(statements, ["Zoey", "Oliver"], [7, 10], 0, order=[1, 0])
    assert "Oliver is a knight\" - Zoey" not in told["quiz"] and '"If Oliver is a knight then Zoey' in told["quiz"]
    found = recover_rendering(Puzzle.from_record(told), told["quiz"])
    assert found is not None and found.order == (1, 0) and found.templates == (7, 10)
    # a text that is neither style is not forced into one
    assert recover_rendering(Puzzle.from_record(told), told["quiz"].replace(" So who", " So, who")) is None


def _swap(text: str, pairs: list[tuple[str, str]]) -> str:
    """Replace whole words a -> b for every pair at once."""
    table = dict(pairs)
    return re.sub(r"\b(" + "|".join(map(re.escape, table)) + r")\b", lambda m: table[m.group(1)], text)


def test_wording_twins_keep_every_other_word(public_root: Path) -> None:
    """A wording-only twin of a public record differs from it only in the intended words (re-rendering
    with seed 0 used to change the speech template of every statement)."""
    for record in load_records(dataset_files(public_root, "train")):
        puzzle, _ = twin_source(record)
        quiz = record["quiz"]
        names = perturb(puzzle, "uncommon_names", 0)
        assert names.quiz != quiz
        assert _swap(names.quiz, list(zip(names.names, puzzle.names))) == quiz
        flipped = perturb(puzzle, "flip_roles", 0)
        assert _swap(flipped.quiz, [("knight", "knave"), ("knave", "knight"), ("Knights", "Knaves"),
                                    ("Knaves", "Knights"), ("knights", "knaves"), ("knaves", "knights")]) == quiz
        roles = perturb(puzzle, "roles", 0)
        knight, knave = roles.roles.knight, roles.roles.knave
        back = _swap(roles.quiz, [(knight, "knight"), (knave, "knave"), (knight + "s", "knights"),
                                  (knave + "s", "knaves"), (knight.capitalize() + "s", "Knights")])
        assert back.replace("an knight", "a knight").replace("an knave", "a knave") == quiz
        reorder = perturb(puzzle, "reorder", 0)
        statements = tuples([s.to_json() for s in puzzle.statements])
        said = [" " + sentence(statements, i, puzzle.names, ("knight", "knave"), puzzle.templates[i])
                for i in range(puzzle.n_people)]
        assert reorder.quiz != quiz and len(reorder.quiz) == len(quiz)
        assert all(s in reorder.quiz and s in quiz for s in said)
        assert reorder.quiz.split(" You meet")[0] == quiz.split(" You meet")[0]


def test_the_leaf_rule_of_the_public_generator_is_an_option() -> None:
    """Public leaf twins may give a node two equal operands; logicrl's default never does."""
    splits = generate(DataConfig(people=[3], train=150, test=0, seed=3))
    puzzles = [Puzzle.from_record(r) for r in splits[3]["train"]]

    def repeated(puzzle: Puzzle) -> bool:
        return any(len(set(node.children)) < len(node.children)
                   for s in puzzle.statements for node in [s, *s.children] if not node.op.is_leaf)

    default = [t for p in puzzles if (t := perturb(p, "leaf", 0))]
    public = [t for p in puzzles if (t := perturb(p, "leaf", 0, equal_operands=True))]
    assert not any(map(repeated, default))
    share = sum(map(repeated, public)) / len(public)
    assert 0.02 < share < 0.3, share  # the public release: about 10%
    for twin in public:
        assert brute_force_solutions([s.to_json() for s in twin.statements]) == [twin.solution]


def public_evaluator_conditions(solution_text: str) -> list[str]:
    """How the public evaluator reads the gold answer: drop " and " and ".", split on commas."""
    return [c.strip() for c in solution_text.replace(" and ", "").replace(".", "").split(",")]


def test_answer_texts_read_by_the_public_evaluator_and_by_the_reward() -> None:
    splits = generate(DataConfig(people=[2, 3, 5], train=0, test=5, seed=2, roles="random"))
    for record in (r for by in splits.values() for r in by["test"]):
        lines = [re.sub(r"^\(\d+\) ", "", x) for x in record["solution_text_format"].split("\n")]
        assert public_evaluator_conditions(record["solution_text"]) == lines
        response = ("<think> Suppose the first one lies, then the second claim fails; so the first is truthful."
                    f"</think><answer>{record['solution_text']}</answer>")
        assert score(response, record["solution_text_format"]).answer_status == "correct"


# ---------------------------------------------------------------------------------------------------------
# The paper preset: the release's shape
# ---------------------------------------------------------------------------------------------------------

def test_paper_preset_has_the_release_shape() -> None:
    cfg = DataConfig(**PRESETS["paper"])
    assert cfg.people == [2, 3, 4, 5, 6, 7, 8] and cfg.test == 100 and cfg.val == 0
    assert [cfg.train_count(n) for n in cfg.people] == [200] + [1000] * 6
    assert cfg.test_first and cfg.depth == 2 and cfg.width == 2 and cfg.layout == "public"
    assert cfg.perturb == ["statement", "leaf", "uncommon_names", "roles", "flip_roles", "reorder"]
    assert cfg.leaf_equal_operands and cfg.style == "public"


def test_the_test_split_is_drawn_first_by_default() -> None:
    """A test set made on its own (``--train 0 --test 100``, the README's Table 2 sets) is the test split of any
    dataset of the same seed and level, never its training puzzles: with train drawn first it was the first
    100 training puzzles of ``--train 900 --test 100``."""
    small = {"people": [2, 3], "seed": 7, "formats": ["jsonl"]}
    first = generate(DataConfig(**small, train=8, test=4))
    alone = generate(DataConfig(**small, train=0, test=4))
    for n in (2, 3):
        assert first[n]["test"] == alone[n]["test"]  # the test split does not depend on the train count
        assert not {r["id"] for r in first[n]["train"]} & {r["id"] for r in alone[n]["test"]}
        assert [r["index"] for r in first[n]["test"]] == [0, 1, 2, 3]
        assert [r["index"] for r in first[n]["train"]] == list(range(4, 12))
    # test_first=false: train first, the order of datasets made before (their manifests record it)
    legacy = generate(DataConfig(**small, train=8, test=4, test_first=False))
    prefix = generate(DataConfig(**small, train=12, test=0))
    for n in (2, 3):
        assert legacy[n]["train"] + legacy[n]["test"] == prefix[n]["train"]


def test_preset_output_in_the_public_layout(tmp_path: Path) -> None:
    cfg = DataConfig(**{**PRESETS["paper"], "people": [2, 3], "train": {2: 10, 3: 12}, "test": 5})
    splits = generate(cfg)
    twins = generate_twins(cfg, splits)
    write_dataset(tmp_path, cfg, splits, twins)
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.jsonl"))
    kinds = ["clean", *PUBLIC_KINDS]
    assert files == sorted(f"{split}/{kind}/people{n}_num{count}.jsonl" for split, counts in
                           (("test", {2: 5, 3: 5}), ("train", {2: 10, 3: 12})) for kind in kinds
                           for n, count in counts.items())
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["counts"] == {"2ppl": {"train": 10, "test": 5}, "3ppl": {"train": 12, "test": 5}}
    assert manifest["twins"]["3ppl"]["train"]["reorder_statement"] == 12
    clean = load_records(dataset_files(tmp_path, "train"))
    assert [len(r["names"]) for r in clean] == [2] * 10 + [3] * 12
    assert all(r["style"] == "public" for r in clean)  # the public wording: "Zoey, and Oliver" for two
    assert all(f"{r['names'][0]}, and {r['names'][1]}." in r["quiz"] for r in clean if len(r["names"]) == 2)
    by_index = {(len(r["names"]), r["index"]): r for r in clean}
    for kind, ours in PUBLIC_KINDS.items():
        for twin in load_records(dataset_files(tmp_path, "train", kind)):
            original = by_index[(len(twin["names"]), twin["index"])]  # linked by level and index
            assert twin["id"] == f"{original['id']}~{ours}" and twin["perturbation"] == ours
    # the 2-person level holds 399 puzzles: asking for more says so in one line, or is capped with --cap
    result = runner.invoke(app, ["data", "generate", "--preset", "paper", "--people", "2", "--train", "400",
                                 "--out", str(tmp_path / "too-many")])
    assert isinstance(result.exception, UserError) and "\n" not in str(result.exception)
    assert "only 399 distinct unique-solution puzzles found for 2 people" in str(result.exception)
    assert "--cap" in str(result.exception) and not (tmp_path / "too-many").exists()


def test_cap_keeps_what_a_level_holds(tmp_path: Path) -> None:
    warnings: list[str] = []
    cfg = DataConfig(people=[2], depth=2, operators=["and"], train=30, test=10, cap=True, test_first=True)
    splits = generate(cfg, warn=warnings.append)
    (message,) = warnings
    found = int(re.search(r"only (\d+) distinct", message).group(1))
    assert len(splits[2]["test"]) == 10 and len(splits[2]["train"]) == found - 10 < 30
    assert "40 asked: keeping" in message


def test_data_cli_on_the_public_layout(public_root: Path) -> None:
    result = runner.invoke(app, ["data", "stats", str(public_root)])
    assert result.exit_code == 0, result.output
    assert "12 puzzles" in result.output and "twin kinds: reorder_statement" in result.output
    result = runner.invoke(app, ["data", "show", str(public_root), "-n", "1", "--kind", "reorder", "--split", "train"])
    assert result.exit_code == 0, result.output
    first = load_records(dataset_files(public_root, "train", "reorder_statement"))[0]
    assert first["quiz"][:60] in result.output.replace("\n", " ")
    result = runner.invoke(app, ["data", "generate", "--preset", "nope", "--out", "x"])
    assert isinstance(result.exception, UserError) and "unknown preset 'nope' (valid: paper)" in str(
        result.exception)


def test_a_folder_with_a_level_in_jsonl_and_parquet_takes_the_jsonl(tmp_path: Path) -> None:
    """people2_num1 as .jsonl and .parquet side by side: the folder's files are the jsonl one, once."""
    (tmp_path / "people2_num1.jsonl").write_text('{"id": "x"}\n')
    write_parquet(tmp_path / "people2_num1.parquet", [{"id": "x"}])
    assert public_files(tmp_path, None) == [tmp_path / "people2_num1.jsonl"]


def test_the_twins_of_a_clean_folder_are_beside_it(tmp_path: Path) -> None:
    """test/clean given as the data: its perturbed_leaf twins are in test/perturbed_leaf."""
    for kind in ("clean", "perturbed_leaf"):
        (tmp_path / "test" / kind).mkdir(parents=True)
        (tmp_path / "test" / kind / "people2_num4.jsonl").write_text("")
    assert twin_files(tmp_path / "test" / "clean", "test", "perturbed_leaf") == [
        tmp_path / "test" / "perturbed_leaf" / "people2_num4.jsonl"]

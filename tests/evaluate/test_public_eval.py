"""`logicrl eval`, `logicrl eval memorization` and the trainer's loader on the public K&K layout: id-less
records, tuple-literal statements, ``{split}/{kind}/people{N}_num{M}.jsonl``, twins linked by level and index.

Scores come from hand-written responses rescored without a model, so every number is a hand count.
Fixtures are written by the tests (tests/puzzles/public_kk.py), never copied from the release.

Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/evaluate/test_public_eval.py -q -p no:cacheprovider
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "puzzles"))

from public_kk import public_record, random_records, tuples, write_public

from logicrl.cli import app
from logicrl.errors import UserError
from logicrl.evaluate.memorization import collect_twins
from logicrl.io import write_jsonl
from logicrl.puzzles.dataset import DataConfig, generate
from logicrl.puzzles.files import dataset_files, load_records, load_twins
from logicrl.puzzles.perturb import perturb
from logicrl.puzzles.record import Puzzle, recover_rendering
from logicrl.rl.schedule import load_puzzles

runner = CliRunner()


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def twin_of(record: dict, statements: tuple, order: list[int] | None = None) -> dict:
    """A public-style twin: the original's names, templates and index; new statements or another order."""
    templates = recover_rendering(Puzzle.from_record(record), record["quiz"]).templates
    return public_record(statements, record["names"], templates, record["index"], order=order)


@pytest.fixture(scope="module")
def public_root(tmp_path_factory) -> Path:
    """test: 3 puzzles of 2 and of 3 people (index 0-2); train: 3 of each (index 3-5), with perturbed_leaf
    twins of the first and last 2-person puzzles and of the first two 3-person ones (plus one twin of an
    index not in train), and reorder_statement twins of all six."""
    root = tmp_path_factory.mktemp("kk-release")
    splits = generate(DataConfig(people=[2, 3], train=6, test=0, seed=22))  # each picked one has a leaf twin
    for n, by in splits.items():
        sets = [tuples(json.loads(r["statements"])) for r in by["train"]]
        write_public(root, "test", "clean", n, random_records(sets[:3], seed=n))
        train = random_records(sets[3:], seed=10 + n, start=3)
        write_public(root, "train", "clean", n, train)
        leaf = []
        for record in (train[0], train[2]) if n == 2 else (train[0], train[1]):
            twin = next(t for seed in range(50) if (t := perturb(Puzzle.from_record(record), "leaf", seed)))
            leaf.append(twin_of(record, tuples([s.to_json() for s in twin.statements])))
        stray = {**leaf[0], "index": 99}  # its original is not in the data: left out
        write_public(root, "train", "perturbed_leaf", n, [*leaf, stray], num=3)
        reorder = [twin_of(r, ast.literal_eval(r["statements"]), order=list(range(n))[::-1]) for r in train]
        write_public(root, "train", "reorder_statement", n, reorder)
    return root


def answer(record: dict, correct: bool) -> str:
    text = record["solution_text_format"]
    if not correct:
        first, rest = text.split("\n", 1)
        text = first.replace("knight", "@").replace("knave", "knight").replace("@", "knave") + "\n" + rest
    return f" Suppose the first speaker lies; then the second claim contradicts it, so we go back.</think>" \
           f"<answer>{text}</answer>"


def write_samples(path: Path, model: str, rows: list[tuple[str, int, int, str]]) -> None:
    write_jsonl(path, [{"model": model, "id": pid, "n_people": n, "sample": j, "response": text, "length": 10,
                        "truncated": False, "prefilled_think": True} for pid, n, j, text in rows])


def test_pass_at_k_and_majority_on_id_less_public_files(tmp_path: Path, public_root: Path) -> None:
    """3 puzzles × 2 samples per level, hand-counted: the id-less records are six separate puzzles."""
    records = load_records(dataset_files(public_root, "test"))
    two = [r for r in records if len(r["names"]) == 2]
    three = [r for r in records if len(r["names"]) == 3]
    rows = [(r["id"], 2, j, answer(r, True)) for r in two for j in range(2)]  # 2 people: all right
    rows += [(three[0]["id"], 3, 0, answer(three[0], True)), (three[0]["id"], 3, 1, answer(three[0], False))]
    rows += [(r["id"], 3, j, answer(r, False)) for r in three[1:] for j in range(2)]
    out = tmp_path / "eval"
    write_samples(out / "samples" / "a.jsonl", "a", rows)
    # model b: the first sample right everywhere, the second wrong
    write_samples(out / "samples" / "b.jsonl", "b",
                  [(r["id"], len(r["names"]), j, answer(r, j == 0)) for r in records for j in range(2)])
    result = runner.invoke(app, ["eval", "--rescore", "-m", "a", "-m", "b", "--data", str(public_root),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    levels = json.loads((out / "results.json").read_text())["models"]["a"]["by_people"]
    assert levels["2"]["puzzles"] == 3 and levels["2"]["pass@2"] == 1.0 and levels["2"]["maj@2"] == 1.0
    # 3 people: one puzzle right once of two (pass 1, a 1-1 tie = 1/2), two never: pass@2 1/3, maj@2 1/6
    assert levels["3"]["puzzles"] == 3 and levels["3"]["acc"] == pytest.approx(1 / 6)
    assert levels["3"]["pass@2"] == pytest.approx(1 / 3) and levels["3"]["maj@2"] == pytest.approx(1 / 6)
    compare = json.loads((out / "compare.json").read_text())["b vs a"]["solved"]
    assert {k: v["n"] for k, v in compare.items()} == {"2ppl": 3, "3ppl": 3, "all": 6}  # every puzzle counts
    # first samples: a solves 2 + 1 of 6, b solves all 6
    assert compare["all"]["base"] == pytest.approx(4 / 6) and compare["all"]["other"] == 1.0


def memorization_samples(public_root: Path) -> list[tuple[str, int, int, str]]:
    """The hand-written pattern of the module docstring of `test_memorization_on_public_twins`."""
    originals = load_records(dataset_files(public_root, "train"))
    a, b, c, d, e, f = originals
    solved = {a["id"]: True, b["id"]: True, c["id"]: False, d["id"]: True, e["id"]: True, f["id"]: True,
              f"{a['id']}~leaf": False, f"{c['id']}~leaf": True, f"{d['id']}~leaf": True,
              f"{e['id']}~leaf": False,
              f"{a['id']}~reorder": True, f"{b['id']}~reorder": False, f"{c['id']}~reorder": True}
    solved |= {f"{r['id']}~reorder": True for r in (d, e, f)}
    twins = {}
    for kind, public in (("leaf", "perturbed_leaf"), ("reorder", "reorder_statement")):
        for twin in load_records(dataset_files(public_root, "train", public)):
            original = next((r for r in originals if (len(r["names"]), r["index"]) ==
                             (len(twin["names"]), twin["index"])), None)
            if original is not None:
                twins[f"{original['id']}~{kind}"] = twin
    by_id = {r["id"]: r for r in originals} | twins
    return [(pid, len(by_id[pid]["names"]), 0, answer(by_id[pid], ok)) for pid, ok in solved.items()]


def test_memorization_on_public_twins(tmp_path: Path, public_root: Path) -> None:
    """Originals a, b, c (2 people) and d, e, f (3): solved a, b, d, e, f. Leaf twins (public) of a, c, d, e:
    solved those of c and d. Reorder twins of all six: solved all but b's. By hand:
    leaf 2ppl: pairs (a, c), Acc 1/2, CR 0/1, LiMem 1/2; 3ppl: (d, e), Acc 1, CR 1/2, LiMem 1/2;
    all: Acc 3/4, CR 1/3, LiMem 1/2. Reorder 2ppl: Acc 2/3, CR 1/2, LiMem 1/3; 3ppl: 1, 1, 0;
    all: Acc 5/6, CR 4/5, LiMem 1/6."""
    out = tmp_path / "mem"
    write_samples(out / "samples" / "sft.jsonl", "sft", memorization_samples(public_root))
    result = runner.invoke(app, ["eval", "memorization", "--rescore", "--data", str(public_root), "--out",
                                 str(out), "--kinds", "leaf,reorder"])
    assert result.exit_code == 0, result.output
    assert "leaf 4/6 (given), reorder 6/6 (given)" in result.output
    scores = json.loads((out / "memorization.json").read_text())["models"]["sft"]
    expected = {
        "leaf": {"2": (2, 1 / 2, 0.0, 1 / 2), "3": (2, 1.0, 1 / 2, 1 / 2), "all": (4, 3 / 4, 1 / 3, 1 / 2)},
        "reorder": {"2": (3, 2 / 3, 1 / 2, 1 / 3), "3": (3, 1.0, 1.0, 0.0), "all": (6, 5 / 6, 4 / 5, 1 / 6)},
    }
    for kind, levels in expected.items():
        for level, (pairs, acc, cr, limem) in levels.items():
            got = scores[kind][level]
            assert got["pairs"] == pairs and got["acc"] == pytest.approx(acc), (kind, level, got)
            assert got["cr"] == pytest.approx(cr) and got["limem"] == pytest.approx(limem), (kind, level, got)
    # the twins scored are the public ones: a leaf twin's answer is the public file's
    saved = {json.loads(x)["id"]: json.loads(x) for x in (out / "samples" / "sft.jsonl").read_text().splitlines()}
    assert sum(row["solved"] for row in saved.values()) == 5 + 2 + 5


def test_a_rescore_of_fewer_kinds_leaves_the_others_samples(tmp_path: Path, public_root: Path) -> None:
    """Samples of leaf and reorder twins rescored with --kinds reorder failed with "puzzle '…~leaf' is not in the
    data given (--data)". The leaf samples stay in the file as they were (as other levels' do) and out of the
    tables; reorder scores as with both kinds (`test_memorization_on_public_twins`)."""
    out = tmp_path / "mem"
    write_samples(out / "samples" / "sft.jsonl", "sft", memorization_samples(public_root))
    leaf_rows = [x for x in (out / "samples" / "sft.jsonl").read_text().splitlines() if "~leaf" in x]
    result = runner.invoke(app, ["eval", "memorization", "--rescore", "--data", str(public_root), "--out",
                                 str(out), "--kinds", "reorder"])
    assert result.exit_code == 0, result.output
    scores = json.loads((out / "memorization.json").read_text())["models"]["sft"]
    assert list(scores) == ["reorder"] and scores["reorder"]["all"]["limem"] == pytest.approx(1 / 6)
    assert [x for x in (out / "samples" / "sft.jsonl").read_text().splitlines() if "~leaf" in x] == leaf_rows


def test_twins_from_another_folder_and_made_ones(tmp_path: Path, public_root: Path) -> None:
    """The clean release and the perturbed release are two downloads: --twins names the second; --twins own
    makes logicrl's twins; a folder without twins is a one-line error."""
    clean = tmp_path / "knights-and-knaves"
    for path in dataset_files(public_root, "train"):  # the clean release's flat layout: train/people2_num3
        (clean / "train").mkdir(parents=True, exist_ok=True)
        (clean / "train" / path.name).write_text(path.read_text())
    out = tmp_path / "mem"
    write_samples(out / "samples" / "sft.jsonl", "sft", memorization_samples(public_root))
    args = ["eval", "memorization", "--rescore", "--data", str(clean), "--out", str(out), "--kinds", "leaf,reorder"]
    result = runner.invoke(app, [*args, "--twins", str(public_root)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "memorization.json").read_text())["models"]["sft"]["leaf"]["all"]["limem"] == 0.5
    # no twins beside the clean files: logicrl makes them (a twin of every puzzle for reorder); samples of the
    # originals only leave the twins unanswered, a one-line error
    originals = [r for r in load_records(dataset_files(clean, "train")) if len(r["names"]) == 2]
    write_samples(out / "samples" / "sft.jsonl", "sft", [(r["id"], 2, 0, answer(r, True)) for r in originals])
    result = runner.invoke(app, [*args, "--kinds", "reorder", "--people", "2"])
    assert "reorder 3/3 (made)" in result.output
    assert isinstance(result.exception, UserError) and str(result.exception).startswith(
        "sft: no sample of 3 puzzle(s) of these twins, e.g. ")
    result = runner.invoke(app, [*args, "--twins", str(clean)])
    assert isinstance(result.exception, UserError) and "no public twins" in str(result.exception)
    assert "\n" not in str(result.exception)
    fresh = ["eval", "memorization", "-m", "tiny-random", "--data", str(clean), "--out", str(tmp_path / "mem2"),
             "--kinds", "leaf", "--twins", str(tmp_path / "nope")]
    result = runner.invoke(app, fresh)  # refused before the output folder is made (it was left with a .lock)
    assert isinstance(result.exception, UserError) and "no public twins" in str(result.exception)
    assert not (tmp_path / "mem2").exists()


def test_made_wording_twins_of_public_records_keep_their_text(public_root: Path) -> None:
    """Twins logicrl makes of public records re-render the public text: a reorder twin tells the very same
    sentences in another order."""
    originals = load_records(dataset_files(public_root, "train"))
    twins, pairs, sources = collect_twins(originals, ["reorder", "leaf"], 0, {})
    assert sources == {"reorder": "made", "leaf": "made"} and len(pairs["reorder"]) == 6
    by_id = {t["id"]: t for t in twins}
    for original in originals:
        twin = by_id[f"{original['id']}~reorder"]
        sentences = original["quiz"].split(". ", 3)[-1]  # after the intro's three sentences
        assert twin["quiz"] != original["quiz"] and sorted(twin["quiz"]) == sorted(original["quiz"])
        assert twin["style"] == "public" and twin["quiz"].startswith(original["quiz"][:-len(sentences)])


def test_twins_of_a_single_public_file(public_root: Path) -> None:
    """--data KK/train/clean/people2_num3.jsonl: its twins are the same file name in the kind folders."""
    file = public_root / "train" / "clean" / "people2_num3.jsonl"
    twins = load_twins(file, "train", ["leaf", "reorder", "roles"])
    assert sorted(twins) == ["leaf", "reorder"] and len(twins["leaf"]) == 3 and len(twins["reorder"]) == 3
    assert load_twins(file, "train", ["roles"]) == {}


def test_the_trainer_reads_the_public_layout(public_root: Path) -> None:
    records = load_puzzles(public_root, "train", [2, 3])
    assert len(records) == 6 and len({r["id"] for r in records}) == 6
    assert [r["index"] for r in records] == [3, 4, 5, 3, 4, 5]

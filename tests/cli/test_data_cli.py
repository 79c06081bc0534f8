"""`logicrl data ...` end to end through the console entry point (user errors: one line, exit 2)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from logicrl.cli import app
from logicrl.cli import data as data_cli
from logicrl.errors import DataError
from logicrl.parallel import Workers
from logicrl.puzzles import compiled, dataset, files
from logicrl.puzzles.dataset import RECORD_CHUNK
from logicrl.puzzles.logic import Op, Statement
from logicrl.puzzles.names import Roles
from logicrl.puzzles.perturb import perturb
from logicrl.puzzles.record import Puzzle
from logicrl.puzzles.sampler import ALL_OPERATORS

runner = CliRunner()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess (what a user's shell does)."""
    code = "from logicrl.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_generate_writes_splits_and_manifest(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "generate", "--people", "2-3", "--train", "20", "--test", "5",
                                 "--out", str(tmp_path), "depth=3"])
    assert result.exit_code == 0, result.output
    for n in (2, 3):
        for split, count in (("train", 20), ("test", 5)):
            lines = (tmp_path / f"{n}ppl" / f"{split}.jsonl").read_text().splitlines()
            assert len(lines) == count
            assert (tmp_path / f"{n}ppl" / f"{split}.parquet").is_file()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["config"]["depth"] == 3 and manifest["counts"]["3ppl"] == {"train": 20, "test": 5}

    # the same command again writes the same bytes; another config is refused, since 2ppl/ and 3ppl/ would stay
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    again = runner.invoke(app, ["data", "generate", "--people", "2-3", "--train", "20", "--test", "5",
                                "--out", str(tmp_path), "depth=3", "--workers", "2"])
    assert again.exit_code == 0, again.output
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    other = run_cli("data", "generate", "--people", "4", "--train", "20", "--test", "5", "--out", str(tmp_path))
    assert other.returncode == 2 and other.stderr.strip() == (
        f"error: {tmp_path} holds another dataset (its manifest.json differs in depth, people): choose another "
        f"--out, or delete {tmp_path} first")
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("stray", ["4ppl/train.jsonl", "5ppl/test.parquet", "test/clean/people3_num10.jsonl",
                                   "train/people2_num5.jsonl"])
def test_generate_refuses_puzzle_files_without_a_manifest(tmp_path: Path, stray: str) -> None:
    """An --out that held another dataset's files but no manifest.json was written into: its levels stayed beside
    the new ones, and readers took both. Files that are no puzzles' are left alone."""
    out = tmp_path / "out"
    (out / stray).parent.mkdir(parents=True)
    (out / stray).write_text("{}\n")
    (out / "notes.txt").write_text("mine")
    proc = run_cli("data", "generate", "--people", "3", "--train", "5", "--test", "0", "--out", str(out))
    shown = stray + " ..." if "ppl/" in stray else "public-layout people*_num*.jsonl files"
    assert proc.returncode == 2 and proc.stderr == (
        f"error: {out} holds puzzle files ({shown}) but no manifest.json: the new dataset would mix with them; "
        "choose another --out, or delete those files first\n")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted([stray, "notes.txt"])
    (out / stray).unlink()
    assert runner.invoke(app, ["data", "generate", "--people", "3", "--train", "5", "--test", "0",
                               "--out", str(out)]).exit_code == 0


def test_generate_same_seed_same_bytes_with_any_number_of_workers(tmp_path: Path) -> None:
    for name, workers in (("a", "1"), ("b", "2")):
        result = runner.invoke(app, ["data", "generate", "--people", "4", "--train", "230", "--test", "10",
                                     "--seed", "7", "--workers", workers, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    for rel in ("4ppl/train.jsonl", "4ppl/test.jsonl", "4ppl/train.parquet", "manifest.json"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_default_workers_are_the_usable_cores_but_no_more_than_chunks_of_work(tmp_path: Path, monkeypatch) -> None:
    asked = []

    class Recording(Workers):
        def __init__(self, workers: int):
            asked.append(workers)
            super().__init__(1)  # the count is what is checked; the work runs here

    monkeypatch.setattr(data_cli, "Workers", Recording)
    monkeypatch.setattr(dataset, "usable_cores", lambda: 4)
    monkeypatch.setattr(compiled, "library", lambda: None)  # records rendered in Python (else no worker: one)
    for name, train, more in (("small", "30", []), ("large", str(2 * RECORD_CHUNK + 1), []),
                              ("asked", "30", ["workers=3"])):
        result = runner.invoke(app, ["data", "generate", "--people", "4", "--train", train, "--test", "0",
                                     "--out", str(tmp_path / name), *more])
        assert result.exit_code == 0, result.output
    assert asked == [1, 3, 3]  # 30 puzzles: one chunk, no fork; 201: three chunks; asked for: as asked
    assert "workers" not in json.loads((tmp_path / "asked/manifest.json").read_text())["config"]


def test_perturb_show_and_stats(tmp_path: Path) -> None:
    assert runner.invoke(app, ["data", "generate", "--people", "3", "--train", "15", "--test", "0",
                               "--out", str(tmp_path / "d")]).exit_code == 0
    result = runner.invoke(app, ["data", "perturb", str(tmp_path / "d"), "--out", str(tmp_path / "p"),
                                 "--kinds", "leaf,reorder"])
    assert result.exit_code == 0, result.output
    originals = {json.loads(line)["id"] for line in (tmp_path / "d/3ppl/train.jsonl").read_text().splitlines()}
    twins = [json.loads(line) for line in (tmp_path / "p/reorder.jsonl").read_text().splitlines()]
    assert len(twins) == 15 and {t["original_id"] for t in twins} == originals
    assert all(Puzzle.from_record(t).perturbation == "reorder" for t in twins)

    show = runner.invoke(app, ["data", "show", str(tmp_path / "d"), "--split", "train", "-n", "1", "--cot"])
    assert show.exit_code == 0 and show.output.count("So who is a knight and who is a knave?") == 1
    negative = runner.invoke(app, ["data", "show", str(tmp_path / "d"), "--split", "train", "-n", "-1"])
    assert negative.exit_code == 2 and "Input should be greater than or equal to 1" in negative.output
    stats = runner.invoke(app, ["data", "stats", str(tmp_path / "p/leaf.jsonl")])
    assert stats.exit_code == 0 and "perturbations: leaf" in stats.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--people", "1-3"], "number of people must be in 2..30, got 1"),
        (["--people", "2", "people=2-100"], "number of people must be in 2..30, got 100\n"),
        (["--people", "2-10000000000000"], "number of people must be in 2..30, got 10000000000000\n"),
        (["--people", "2", "--depth", "0"], "depth"),
        (["--people", "2", "--depth", "1", "--train", "50"], "depth 1 makes every statement one claim or its "),
        (["--people", "2", "--cap", "operators=[not]"], "operators [not] alone make every statement one claim"),
        (["--people", "2", "--train", "50", "operators=[->]"], "only 27 distinct unique-solution puzzles found"),
        (["--people", "3", "colour=blue"], "unknown config key 'colour'"),
        (["--people", "3", "--roles", "knight"], "role words must look like"),
        (["--people", "3", "formats=[]"], "formats: no file formats: give at least one"),
        (["--people", "3", "--train", "0", "--test", "0", "--val", "0"], "error: nothing to generate: "),
        (["--people", "2,3", "train={2: 0, 3: 0}", "--test", "0"], "error: nothing to generate: "),
    ],
)
def test_impossible_requests_fail_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "out"
    proc = run_cli("data", "generate", "--out", str(out), *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()  # nothing half-written


def test_cap_that_keeps_no_puzzle_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    """`--cap` at a level without any unique-solution puzzle wrote a manifest and no puzzle, with exit status 0."""
    monkeypatch.setattr(data_cli, "generate", lambda config, **_: {2: {"train": [], "test": []},
                                                                  3: {"train": [], "test": []}})
    out = tmp_path / "out"
    result = runner.invoke(app, ["data", "generate", "--people", "2-3", "--train", "3", "--test", "1", "--cap",
                                 "--out", str(out), "--workers", "1"])
    assert str(result.exception) == ("no unique-solution puzzle found for any of 2, 3 people at depth 2, width 2 "
                                     "(cap): nothing written; raise depth or width, or allow more operators")
    assert not out.exists()


def test_corrupt_row_reported_by_file_and_line(tmp_path: Path) -> None:
    assert runner.invoke(app, ["data", "generate", "--people", "2", "--train", "3", "--test", "0",
                               "--out", str(tmp_path)]).exit_code == 0
    path = tmp_path / "2ppl/train.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1][:40], lines[2]]) + "\n")
    proc = run_cli("data", "stats", str(path))
    assert proc.returncode == 2 and f"{path}:2: not valid JSON" in proc.stderr


def test_unknown_perturbation_and_missing_file(tmp_path: Path) -> None:
    proc = run_cli("data", "perturb", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "p"))
    assert proc.returncode == 2 and "no such file" in proc.stderr
    proc = run_cli("data", "perturb", str(tmp_path), "--out", str(tmp_path / "p"), "--kinds", "shuffle")
    assert proc.returncode == 2 and "unknown perturbation(s) shuffle" in proc.stderr


def test_perturb_writes_one_twin_per_repeated_puzzle(tmp_path: Path) -> None:
    """A source that holds one puzzle twice gave it two twins with one id (<original id>~reorder), which
    `eval memorization` then refused; each puzzle now gets one twin of a kind, with a warning."""
    assert runner.invoke(app, ["data", "generate", "--people", "3", "--train", "3", "--test", "0",
                               "--out", str(tmp_path / "d")]).exit_code == 0
    lines = (tmp_path / "d/3ppl/train.jsonl").read_text().splitlines()
    (tmp_path / "twice.jsonl").write_text("\n".join([*lines, lines[1]]) + "\n")
    proc = run_cli("data", "perturb", str(tmp_path / "twice.jsonl"), "--out", str(tmp_path / "p"), "--kinds",
                   "reorder")
    assert proc.returncode == 0 and proc.stderr == (
        f"warning: 1 puzzle(s) of {tmp_path / 'twice.jsonl'} repeat an earlier one (same id); each puzzle gets one "
        "twin of a kind\n")
    twins = [json.loads(line) for line in (tmp_path / "p/reorder.jsonl").read_text().splitlines()]
    originals = [json.loads(line)["id"] for line in lines]
    assert [t["original_id"] for t in twins] == originals and len({t["id"] for t in twins}) == 3


def test_a_one_person_puzzle_has_no_reorder_statement_or_leaf_twin(tmp_path: Path) -> None:
    """`data perturb one.jsonl --kinds reorder` hung: a reorder twin is drawn until its order differs, and one
    person has no other order; statement and leaf twins failed with a traceback (the sampler starts at 2
    people). Such a puzzle has no twin of these kinds, counted as a logic twin that was not found is. In a
    subprocess with a timeout (`run_cli`), so that a regression fails instead of hanging the suite."""
    statement = Statement.from_json(["or", ["telling-truth", 0], ["lying", 0]])  # always true: a knight
    one = Puzzle((statement,), (True,), ("Zoey",), Roles(), 0, (0,), 2, 2).to_record(0)
    (tmp_path / "one.jsonl").write_text(json.dumps(one) + "\n")
    proc = run_cli("data", "perturb", str(tmp_path / "one.jsonl"), "--out", str(tmp_path / "p"))
    assert proc.returncode == 0, proc.stderr
    assert dict(re.findall(r"(\w+): (\d+/\d+) twins", proc.stdout)) == {
        "statement": "0/1", "leaf": "0/1", "uncommon_names": "1/1", "roles": "1/1", "flip_roles": "1/1",
        "reorder": "0/1"}
    assert (tmp_path / "p/reorder.jsonl").read_text() == ""


@pytest.mark.parametrize(("change", "message", "other_kinds"), [
    ({"depth": 0}, "'depth' must be at least 1 (a leaf has depth 1), got 0", False),
    ({"depth": 40}, ("no statement twin can be drawn at this puzzle's level: depth 40 with width 2 makes statements "
                     "of about 9.83e+06 clauses on average (at most 1,000): lower the depth or the width"), True),
    ({"width": 10**400}, "no statement twin can be drawn at this puzzle's level: depth 3 with width 1000", True),
])
def test_perturb_refuses_a_level_it_cannot_draw_at_in_one_line_writing_nothing(
        tmp_path: Path, change: dict, message: str, other_kinds: bool) -> None:
    """A record of depth 0, or at a level too large to draw a statement at, ended `data perturb` in a traceback
    (the sampler's ValueError) after perturb.json was written; now one line naming the file and line."""
    assert runner.invoke(app, ["data", "generate", "--people", "3", "--train", "3", "--test", "0", "depth=3",
                               "--out", str(tmp_path / "d")]).exit_code == 0
    lines = (tmp_path / "d/3ppl/train.jsonl").read_text().splitlines()
    source = tmp_path / "bad.jsonl"
    source.write_text("\n".join([lines[0], json.dumps(json.loads(lines[1]) | change), lines[2]]) + "\n")
    proc = run_cli("data", "perturb", str(source), "--out", str(tmp_path / "p"), "--kinds", "reorder,statement")
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {source}:2: {message}"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "p").exists()
    # the leaf and wording twins draw no statement at that level: a record of depth 0 is refused as it is read
    others = run_cli("data", "perturb", str(source), "--out", str(tmp_path / "p"), "--kinds", "reorder,leaf")
    assert others.returncode == (0 if other_kinds else 2), others.stderr


def test_perturb_makes_every_twin_before_it_writes_anything(tmp_path: Path, monkeypatch) -> None:
    """perturb.json and the first kinds' files were written before a later kind failed."""
    assert runner.invoke(app, ["data", "generate", "--people", "3", "--train", "3", "--test", "0",
                               "--out", str(tmp_path / "d")]).exit_code == 0
    made = []

    def failing(puzzle, kind, seed, **options):
        made.append(kind)
        if kind == "roles":
            raise OSError("disk on fire")
        return perturb(puzzle, kind, seed, **options)

    monkeypatch.setattr(data_cli, "perturb", failing)
    result = runner.invoke(app, ["data", "perturb", str(tmp_path / "d"), "--out", str(tmp_path / "p"),
                                 "--kinds", "reorder,leaf,roles"])
    assert isinstance(result.exception, OSError) and made == ["reorder"] * 3 + ["leaf"] * 3 + ["roles"]
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())


def test_perturb_draws_statement_twins_with_the_operators_of_the_source_manifest(tmp_path: Path) -> None:
    """The twins' sampler always had every operator. A dataset's manifest gives its operators: its folder, and
    a file in it (either layout), get twins with those; a file without a manifest, every operator."""
    def new_operators(twins: Path, source: Path) -> set:
        originals = {r["id"]: Puzzle.from_record(r) for r in map(json.loads, source.read_text().splitlines())}
        used = set()
        for twin in map(json.loads, twins.read_text().splitlines()):
            pairs = zip(originals[twin["original_id"]].statements, Puzzle.from_record(twin).statements)
            (changed,) = [b for a, b in pairs if a != b]
            used |= changed.operators()
        return used

    for layout, name in (("logicrl", "3ppl/train.jsonl"), ("public", "train/clean/people3_num40.jsonl")):
        data = tmp_path / layout
        assert runner.invoke(app, ["data", "generate", "--people", "3", "--train", "40", "--test", "0",
                                   "--out", str(data), f"layout={layout}", "operators=[or,and]"]).exit_code == 0
        (tmp_path / f"{layout}-alone.jsonl").write_bytes((data / name).read_bytes())  # no manifest beside it
        for source, operators in ((data, {Op.AND, Op.OR}), (data / name, {Op.AND, Op.OR}),
                                  (tmp_path / f"{layout}-alone.jsonl", set(ALL_OPERATORS))):
            out = tmp_path / f"p-{layout}-{source.name}"
            result = runner.invoke(app, ["data", "perturb", str(source), "--out", str(out), "--kinds", "statement"])
            assert result.exit_code == 0, result.output
            assert new_operators(out / "statement.jsonl", data / name) == operators


def test_perturb_refuses_an_out_of_twins_made_with_other_settings(tmp_path: Path) -> None:
    """`data perturb --kinds leaf` and then `--seed 1 --kinds reorder` into one --out left twins of two seeds side
    by side, which `eval memorization --twins` reads as one set. The settings are kept in perturb.json: the same
    ones may add kinds; another seed (or source, split) is refused in one line, before anything is written."""
    assert runner.invoke(app, ["data", "generate", "--people", "2", "--train", "3", "--test", "0",
                               "--out", str(tmp_path / "d")]).exit_code == 0
    out = tmp_path / "p"
    for kinds in ("leaf", "reorder"):
        result = runner.invoke(app, ["data", "perturb", str(tmp_path / "d"), "--out", str(out), "--kinds", kinds])
        assert result.exit_code == 0, result.output
    proc = run_cli("data", "perturb", str(tmp_path / "d"), "--out", str(out), "--kinds", "roles", "--seed", "1")
    assert proc.returncode == 2 and proc.stderr == (
        f"error: --out {out} holds twins made with another seed (perturb.json): choose another --out, or delete "
        f"{out} first\n")
    assert json.loads((out / "perturb.json").read_text()) == {
        "source": str((tmp_path / "d").resolve()), "split": "train", "seed": 0, "equal_operands": False}
    assert sorted(p.name for p in out.iterdir()) == ["leaf.jsonl", "leaf.parquet", "perturb.json", "reorder.jsonl",
                                                      "reorder.parquet"]


def test_perturb_kinds_empty_refused_and_repeats_run_once(tmp_path: Path) -> None:
    assert runner.invoke(app, ["data", "generate", "--people", "2", "--train", "3", "--test", "0",
                               "--out", str(tmp_path / "d")]).exit_code == 0
    proc = run_cli("data", "perturb", str(tmp_path / "d"), "--out", str(tmp_path / "p"), "--kinds", " , ")
    assert proc.returncode == 2 and proc.stderr.startswith(
        "error: --kinds names no perturbation: give one or more of statement (perturbed_statement), leaf ")
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "p").exists()
    result = runner.invoke(app, ["data", "perturb", str(tmp_path / "d"), "--out", str(tmp_path / "p"),
                                 "--kinds", "statement,perturbed_statement,statement"])
    assert result.exit_code == 0, result.output
    assert result.output.count("statement: ") == 1 and sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "perturb.json", "statement.jsonl", "statement.parquet"]
    into_source = run_cli("data", "perturb", str(tmp_path / "d"), "--out", str(tmp_path / "d"), "--kinds", "leaf")
    assert into_source.returncode == 2 and into_source.stderr == (
        f"error: --out {tmp_path / 'd'} holds a dataset (`logicrl data generate`) (manifest.json): its files would be "
        "overwritten or mixed with these; choose another --out\n")
    assert not (tmp_path / "d/leaf.jsonl").exists()


def test_ctrl_c_says_interrupted_and_exits_130(tmp_path: Path) -> None:
    """typer turned Ctrl-C into exit status 130 with nothing printed: the user saw a progress bar stop. The signal
    is sent once the progress bar of the draw (5-9 s of the paper preset) shows. The command handles SIGINT as
    Python does when started from a terminal: a suite started in the background by a non-interactive shell
    (`nohup ... &`) runs with SIGINT ignored, which children inherit, so the command would finish (exit 0)."""
    out = tmp_path / "paper"
    code = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); from logicrl.cli import main; main()"
    command = [sys.executable, "-c", code, "data", "generate", "--preset", "paper", "--out", str(out)]
    with (tmp_path / "stderr").open("w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 120
        while ("puzzles:" not in (tmp_path / "stderr").read_text() and process.poll() is None
               and time.monotonic() < deadline):
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 130
    assert (tmp_path / "stderr").read_text().endswith("\ninterrupted\n")
    assert not (out / "manifest.json").exists()  # stopped while drawing: nothing was written


def test_data_without_puzzles_is_refused(tmp_path: Path) -> None:
    assert runner.invoke(app, ["data", "generate", "--people", "2", "--train", "3", "--test", "2",
                               "--out", str(tmp_path / "d")]).exit_code == 0
    (tmp_path / "d/2ppl/test.jsonl").write_text("")
    (tmp_path / "empty.jsonl").write_text("")
    for args, where in (
        (["show", str(tmp_path / "d")], f"{tmp_path / 'd'} (test split)"),
        (["stats", str(tmp_path / "d"), "--split", "test"], f"{tmp_path / 'd'} (test split)"),
        (["stats", str(tmp_path / "empty.jsonl")], str(tmp_path / "empty.jsonl")),
        (["perturb", str(tmp_path / "empty.jsonl"), "--out", str(tmp_path / "p")], str(tmp_path / "empty.jsonl")),
    ):
        proc = run_cli("data", *args)
        assert proc.returncode == 2 and proc.stderr == (
            f"error: no puzzles in {where}: give a file or split that holds some\n"), args
    assert not (tmp_path / "p").exists()


def test_every_subcommand_has_help() -> None:
    for sub in ([], ["data"], ["data", "generate"], ["data", "perturb"], ["data", "show"], ["data", "stats"]):
        result = runner.invoke(app, [*sub, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, sub


def test_a_write_cut_short_is_refused_by_readers_and_completed_by_a_rerun(tmp_path: Path, monkeypatch) -> None:
    """A `data generate` killed while writing (here: failing at the third file) leaves a manifest marked
    incomplete; every reader refuses the folder, and the same command completes it with the bytes of a run
    that was never cut."""
    args = ["data", "generate", "--people", "2-3", "--train", "20", "--test", "5"]
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "straight")]).exit_code == 0
    real = files.atomic_write_bytes
    calls = []

    def killed(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(path, data)

    out = tmp_path / "cut"
    with monkeypatch.context() as patch:
        patch.setattr(files, "atomic_write_bytes", killed)
        assert runner.invoke(app, [*args, "--out", str(out)]).exit_code != 0
    assert (out / "2ppl" / "train.jsonl").is_file()  # written before the cut
    with pytest.raises(DataError, match="stopped before it wrote all its files: run the same command"):
        files.load_records(files.dataset_files(out, "train"))
    stats = runner.invoke(app, ["data", "stats", str(out)])
    assert isinstance(stats.exception, DataError) and "stopped before it wrote all" in str(stats.exception)
    assert runner.invoke(app, [*args, "--out", str(out)]).exit_code == 0
    for path in (tmp_path / "straight").rglob("*.*"):
        assert (out / path.relative_to(tmp_path / "straight")).read_bytes() == path.read_bytes(), path


def test_a_folder_another_command_is_writing_is_refused(tmp_path: Path) -> None:
    from logicrl.io import FolderLock

    out = tmp_path / "d"
    with FolderLock(out):  # another process's data generate, writing
        proc = run_cli("data", "generate", "--people", "2", "--train", "5", "--test", "2", "--out", str(out))
    assert proc.returncode == 2 and "is in use by another logicrl process" in proc.stderr
    assert not (out / "manifest.json").exists()


def test_generate_refuses_a_folder_that_holds_a_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("steps: 2\n")
    proc = run_cli("data", "generate", "--people", "2", "--train", "4", "--test", "2", "--out", str(run))
    assert proc.returncode == 2 and "holds a run (`logicrl train`, `logicrl sft`) (config.yaml)" in proc.stderr
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]

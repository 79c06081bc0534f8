"""io.py: atomic writes (all or nothing, no temp files left) and located errors when reading records.

Run: .venv/bin/python -m pytest tests/test_io.py -q
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logicrl.errors import UserError
from logicrl.io import (
    LOCK_FILE,
    DataError,
    FolderLock,
    atomic_path,
    atomic_write_text,
    cache_root,
    check_output_dir,
    import_in_background,
    jsonl_bytes,
    read_appended_jsonl,
    read_jsonl,
    read_rows,
    read_text_file,
    remove_temp_files,
    write_jsonl,
    write_parquet,
    write_parquet_from_jsonl,
)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_creates_parents_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.txt"
    atomic_write_text(target, "héllo\n")
    assert target.read_text(encoding="utf-8") == "héllo\n"
    assert listing(target.parent) == ["out.txt"]
    atomic_write_text(target, "second\n")
    assert target.read_text() == "second\n" and listing(target.parent) == ["out.txt"]


def test_failure_midway_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_text("half-written")
        raise RuntimeError("boom")
    assert target.read_text() == "old\n"
    assert listing(tmp_path) == ["out.txt"]


def test_temp_files_a_killed_writer_left_are_removed(tmp_path: Path) -> None:
    """A SIGKILL inside `atomic_path` leaves its temporary file (the finally never runs): the same name, here
    made again after the block, in the folder and two levels below. Other hidden files stay, and so do temporary
    files younger than ``older_than_s`` or deeper down (``--out .`` must not walk a whole tree)."""
    names = []
    for target in (tmp_path / "table.md", tmp_path / "samples" / "m.jsonl", tmp_path / "test" / "clean" / "a.jsonl",
                   tmp_path / "a" / "b" / "c" / "deep.jsonl"):
        with atomic_path(target) as tmp:
            names.append(tmp)
            tmp.write_text("x")
    for name in names:
        name.write_text("half")
    (tmp_path / ".lock").write_text("1")
    (tmp_path / ".notes.tmp").write_text("mine")
    remove_temp_files(tmp_path, older_than_s=3600)
    assert all(name.exists() for name in names)  # just written: maybe another writer's
    remove_temp_files(tmp_path)
    assert listing(tmp_path) == [".lock", ".notes.tmp", "a", "samples", "table.md", "test"]
    assert listing(tmp_path / "samples") == ["m.jsonl"] and listing(tmp_path / "test" / "clean") == ["a.jsonl"]
    assert listing(tmp_path / "a" / "b" / "c") == sorted(["deep.jsonl", names[-1].name])


def test_failed_jsonl_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "rows.jsonl"
    write_jsonl(target, [{"a": 1}])
    before = target.read_bytes()

    def rows():
        yield {"a": 2}
        yield {"a": {1, 2}}  # not JSON-serializable: fails after one line was written

    with pytest.raises(TypeError):
        write_jsonl(target, rows())
    assert target.read_bytes() == before and listing(tmp_path) == ["rows.jsonl"]


def test_failure_on_a_new_file_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "new.txt") as tmp:
        tmp.write_text("x")
        raise KeyboardInterrupt
    assert listing(tmp_path) == []


def test_atomic_write_keeps_normal_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        atomic = tmp_path / "atomic.txt"
        atomic_write_text(atomic, "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(plain.stat().st_mode) == 0o644
    assert stat.S_IMODE(atomic.stat().st_mode) == 0o644


@pytest.mark.parametrize("umask", [0o002, 0o027], ids=["umask-002", "umask-027"])
def test_atomic_write_follows_the_umask_at_write_time(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)  # changed after logicrl.io was imported, as a caller may do
    try:
        (tmp_path / "plain.txt").write_text("x")
        atomic_write_text(tmp_path / "atomic.txt", "x")
    finally:
        os.umask(old)
    modes = {stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("plain.txt", "atomic.txt")}
    assert modes == {0o666 & ~umask}


def test_jsonl_is_deterministic_utf8(tmp_path: Path) -> None:
    rows = [{"b": 1, "a": "Zoë"}, {"x": [1, True, None]}]
    write_jsonl(tmp_path / "1.jsonl", rows)
    write_jsonl(tmp_path / "2.jsonl", rows)
    data = (tmp_path / "1.jsonl").read_bytes()
    assert data == (tmp_path / "2.jsonl").read_bytes()
    assert data.decode("utf-8") == '{"b": 1, "a": "Zoë"}\n{"x": [1, true, null]}\n'
    assert [row for _, row in read_jsonl(tmp_path / "1.jsonl")] == rows


def test_read_jsonl_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n{"a": \n')
    with pytest.raises(DataError, match=f"^{path}:3: not valid JSON"):
        list(read_jsonl(path))
    path.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(DataError, match=f"^{path}:2: expected a JSON object, got list"):
        list(read_jsonl(path))
    with pytest.raises(DataError, match="file not found"):
        list(read_jsonl(tmp_path / "missing.jsonl"))
    assert issubclass(DataError, ValueError)


def test_text_not_in_utf8_is_a_data_error_naming_file_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"a": "ok"}\n{"a": "é"}\n'.encode("latin-1"))
    expected = f"^{re.escape(str(path))}:2: not UTF-8 text \\(byte 0xe9\\); save the file as UTF-8$"
    with pytest.raises(DataError, match=expected):
        list(read_jsonl(path))
    with pytest.raises(DataError, match=expected):
        read_text_file(path)
    path.write_bytes('{"a": "é"}\n'.encode())
    assert read_text_file(path) == '{"a": "é"}\n' and [row for _, row in read_jsonl(path)] == [{"a": "é"}]


def test_read_rows_locations(tmp_path: Path) -> None:
    rows = [{"a": 1, "b": [True]}, {"a": 2, "b": [False, True]}]
    write_jsonl(tmp_path / "x.jsonl", rows)
    write_parquet(tmp_path / "x.parquet", rows)
    jsonl = tmp_path / "x.jsonl"
    assert list(read_rows(jsonl)) == [(f"{jsonl}:{i}", r) for i, r in enumerate(rows, 1)]
    assert list(read_rows(tmp_path / "x.parquet")) == [
        (f"{tmp_path / 'x.parquet'}[row {i}]", r) for i, r in enumerate(rows)
    ]
    assert listing(tmp_path) == ["x.jsonl", "x.parquet"]


def test_read_rows_errors(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="unsupported file type"):
        list(read_rows(tmp_path / "x.csv"))
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match="not a readable parquet file"):
        list(read_rows(tmp_path / "bad.parquet"))
    with pytest.raises(DataError, match="file not found"):
        list(read_rows(tmp_path / "none.parquet"))


def test_parquet_round_trip_nested(tmp_path: Path) -> None:
    rows = [{"names": ["A", "B"], "kk": {"knight": "sage"}, "solution": [True, False], "s": json.dumps([1])}]
    write_parquet(tmp_path / "n.parquet", rows)
    assert [r for _, r in read_rows(tmp_path / "n.parquet")] == rows
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path))


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
# strings Arrow's JSON reader would take for timestamps
TIMESTAMPS = st.builds(lambda t, sep: t.isoformat(sep=sep), st.datetimes(), st.sampled_from("T "))
SCALARS = {
    "str": st.one_of(TEXT, TIMESTAMPS, st.dates().map(str)),
    "int": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(allow_nan=False, allow_infinity=False),
    "number": st.one_of(st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False)),
    "bool": st.booleans(),
}


def column_values(kind: str, nested: str) -> st.SearchStrategy:
    """Values of one column: a scalar type, a list of it, or a struct holding it (None allowed)."""
    scalar = SCALARS[kind]
    value = {"scalar": scalar, "list": st.lists(scalar, max_size=4),
             "struct": st.fixed_dictionaries({"x": scalar, "y": TEXT})}[nested]
    return st.one_of(st.none(), value)


@st.composite
def json_rows(draw) -> list[dict]:
    columns = draw(st.lists(st.tuples(st.sampled_from(sorted(SCALARS)), st.sampled_from(["scalar", "list", "struct"])),
                            min_size=1, max_size=5))
    count = draw(st.integers(1, 6))
    return [{f"c{i}": draw(column_values(*column)) for i, column in enumerate(columns)} for _ in range(count)]


@settings(max_examples=150, deadline=None)
@given(rows=json_rows())
def test_parquet_file_is_the_one_pyarrow_writes_from_python_objects(tmp_path_factory, rows: list[dict]) -> None:
    """write_parquet goes through Arrow's JSON reader (no pandas import); the file is byte for byte the one
    ``pq.write_table(pa.Table.from_pylist(rows))`` writes, ISO-8601-looking strings included."""
    folder = tmp_path_factory.mktemp("pq")
    write_parquet(folder / "ours.parquet", rows)
    pq.write_table(pa.Table.from_pylist(rows), folder / "arrow.parquet")
    assert (folder / "ours.parquet").read_bytes() == (folder / "arrow.parquet").read_bytes()
    write_parquet_from_jsonl(folder / "given.parquet", jsonl_bytes(rows))
    assert (folder / "given.parquet").read_bytes() == (folder / "arrow.parquet").read_bytes()


def test_parquet_from_a_text_read_in_several_blocks_is_the_same_file(tmp_path: Path, monkeypatch) -> None:
    import logicrl.io

    # 1.5 MB of distinct strings: past the 1 MiB dictionary page, where the writer's fallback to plain encoding
    # depends on how the column is chunked
    rows = [{"i": i, "text": f"{i}:" + "x" * 5000, "tags": ["a"] * (i % 3), "when": "2024-01-01T10:00:00"}
            for i in range(300)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "arrow.parquet")
    monkeypatch.setattr(logicrl.io, "JSON_BLOCK_BYTES", 1 << 16)  # ≈ 24 blocks
    write_parquet(tmp_path / "ours.parquet", rows)
    assert (tmp_path / "ours.parquet").read_bytes() == (tmp_path / "arrow.parquet").read_bytes()


def test_parquet_keeps_a_key_missing_from_the_first_row(tmp_path: Path) -> None:
    write_parquet(tmp_path / "x.parquet", [{"a": 1}, {"a": 2, "b": "2024-01-01T10:00:00"}])
    assert pq.read_table(tmp_path / "x.parquet").to_pylist() == [{"a": 1, "b": None},
                                                                   {"a": 2, "b": "2024-01-01T10:00:00"}]
    write_parquet(tmp_path / "empty.parquet", [])
    assert pq.read_table(tmp_path / "empty.parquet").num_rows == 0


def test_check_output_dir_accepts_a_new_nested_folder_and_makes_nothing(tmp_path: Path) -> None:
    check_output_dir(tmp_path / "a" / "b" / "c")
    check_output_dir(tmp_path)  # an existing folder
    assert listing(tmp_path) == []  # the probe leaves nothing, and no folder is made before the work


@pytest.mark.parametrize("where", ["the folder", "a parent"])
def test_check_output_dir_refuses_a_file_on_the_way(tmp_path: Path, where: str) -> None:
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" if where == "the folder" else tmp_path / "f" / "sub" / "run"
    message = f"--out {out}: {tmp_path / 'f'} is a file, not a folder; choose another --out"
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        check_output_dir(out)
    assert (tmp_path / "f").read_text() == "x"


def test_check_output_dir_refuses_where_nothing_can_be_made(tmp_path: Path, monkeypatch) -> None:
    """The probe really writes (root passes `os.access` on read-only and virtual file systems): a refused
    temporary file is a refused folder, named with the nearest existing parent and the system's reason."""
    import tempfile

    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", str(dir))

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    message = (f"out_dir {tmp_path / 'x'}: nothing can be written in {tmp_path} (Permission denied); "
               "choose another out_dir")
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        check_output_dir(tmp_path / "x", "out_dir")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_check_output_dir_refuses_a_virtual_file_system() -> None:
    with pytest.raises(UserError, match="nothing can be written in /proc"):
        check_output_dir(Path("/proc/logicrl-out/run"))


def test_folder_lock_goes_on_where_the_file_system_cannot_lock(tmp_path: Path, monkeypatch) -> None:
    """Some network mounts refuse flock (ENOLCK): the run goes on without the guard instead of failing."""
    import errno

    import logicrl.io as io_module

    def refuse(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(io_module.fcntl, "flock", refuse)
    with FolderLock(tmp_path / "run"):
        assert (tmp_path / "run" / LOCK_FILE).read_text() == f"{os.getpid()}\n"


def test_an_output_folder_of_another_command_is_refused(tmp_path):
    """`logicrl report RUN --out RUN` replaced the run's summary.json; `eval memorization` into an eval folder
    overwrote its samples; `train --out DATASET` wrote a run among the puzzles."""
    from logicrl.io import check_not_another_output

    check_not_another_output(tmp_path / "missing")
    (tmp_path / "config.yaml").write_text("steps: 2\n")
    check_not_another_output(tmp_path, "out_dir", own="config.yaml")  # its own kind: a resume, a new run
    with pytest.raises(UserError, match=r"^--out .* holds a run \(`logicrl train`, `logicrl sft`\) \(config.yaml\): "
                                        r"its files would be overwritten or mixed with these; choose another --out$"):
        check_not_another_output(tmp_path)
    (tmp_path / "config.yaml").unlink()
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(UserError, match="holds an evaluation"):
        check_not_another_output(tmp_path, own="memorization.json")


def test_a_folder_the_lock_made_and_nothing_else_used_goes_on_release(tmp_path: Path) -> None:
    """A train that failed after taking its folder (a model that does not load) left a folder holding `.lock`."""
    with pytest.raises(RuntimeError), FolderLock(tmp_path / "new" / "run"):
        raise RuntimeError("the model did not load")
    assert not (tmp_path / "new" / "run").exists() and (tmp_path / "new").is_dir()
    with FolderLock(tmp_path / "used"):
        (tmp_path / "used" / "metrics.jsonl").write_text("{}\n")
    assert sorted(p.name for p in (tmp_path / "used").iterdir()) == [LOCK_FILE, "metrics.jsonl"]
    (tmp_path / "there").mkdir()
    FolderLock(tmp_path / "there").release()  # not made by the lock: left as it was found, lock file included
    assert [p.name for p in (tmp_path / "there").iterdir()] == [LOCK_FILE]


def test_a_cut_line_before_blank_lines_is_dropped(tmp_path):
    """A cut last line followed by blank lines is still the last line: dropped with a warning, not an error."""
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\n{"b\n\n')
    with pytest.warns(UserWarning, match="cut last line"):
        assert read_appended_jsonl(path) == [(1, {"a": 1})]


def test_the_cache_root_is_logicrl_under_xdg_cache_home(monkeypatch):
    """Without LOGICRL_CACHE the cache is $XDG_CACHE_HOME/logicrl."""
    monkeypatch.delenv("LOGICRL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/x/cache")
    assert cache_root() == Path("/x/cache/logicrl")


def test_import_in_background_loads_the_modules_and_leaves_a_missing_one_to_the_later_import(tmp_path, monkeypatch,
                                                                                          capfd):
    """`data generate` starts pyarrow's import while the puzzles are drawn: the module is loaded by the thread, and
    a module that is not there raises nothing in it (the later import reports it, once)."""
    (tmp_path / "loaded_in_background.py").write_text("VALUE = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "loaded_in_background", raising=False)
    import_in_background("no_such_module_anywhere", "loaded_in_background")
    for thread in threading.enumerate():
        if thread.name == "import-in-background":
            thread.join()
    assert sys.modules["loaded_in_background"].VALUE == 7
    assert capfd.readouterr().err == ""

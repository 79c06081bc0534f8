"""File helpers: atomic writes (temp file + rename) and JSONL/parquet records with located errors."""

from __future__ import annotations

import importlib
import json
import os
import re
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Self

from logicrl.errors import DataError, UserError

try:
    import fcntl
except ImportError:  # not POSIX (Windows): `FolderLock` does not lock
    fcntl = None  # type: ignore[assignment]


def current_umask() -> int:
    """The process's file-mode creation mask now (it may change while the process runs).

    Linux reports it in /proc without side effects; elsewhere it is read by setting and restoring it, which
    leaves it at 0, process-wide, for that instant.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def cache_root() -> Path:
    """Where logicrl keeps what it builds once per machine (converted models, compiled kernels):
    ``$LOGICRL_CACHE``, else ``$XDG_CACHE_HOME/logicrl``, else ``~/.cache/logicrl``."""
    if os.environ.get("LOGICRL_CACHE"):
        return Path(os.environ["LOGICRL_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "logicrl"


def check_output_dir(path: Path, option: str = "--out", fix: str | None = None) -> None:
    """Refuse, before any work and leaving nothing behind, a folder that outputs cannot go to: a file on its
    path, or a place where nothing can be created (permissions, a read-only or virtual file system). The
    nearest folder of ``path`` that exists is probed by making a temporary file in it (`os.access` would say
    yes to root on a read-only or virtual file system). Raises a UserError naming ``option``, the path, why,
    and ``fix`` (default: "choose another ``option``").
    """
    path = Path(path)
    fix = fix or f"choose another {option}"
    base = path
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise UserError(f"{option} {path}: {base} is a file, not a folder; {fix}")
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        raise UserError(f"{option} {path}: nothing can be written in {base} ({exc.strerror}); {fix}") from None


OUTPUT_MARKS = {  # a file each command writes at the top of its output folder -> what that folder holds
    "manifest.json": "a dataset (`logicrl data generate`)",
    "config.yaml": "a run (`logicrl train`, `logicrl sft`)",
    "results.json": "an evaluation (`logicrl eval` or `logicrl eval math`)",
    "memorization.json": "a memorization evaluation (`logicrl eval memorization`)",
    "report.json": "a run's report (`logicrl report`)",
    "comparison.json": "a comparison of runs (`logicrl compare`)",
}


def check_not_another_output(path: Path, option: str = "--out", own: str | None = None) -> None:
    """Refuse an output folder that holds another command's outputs (an `OUTPUT_MARKS` file other than ``own``,
    this command's): writing there would overwrite its files (a report's index.html over a comparison's) or
    mix with them. Raises a UserError naming ``option``, the path and what it holds."""
    for mark, what in OUTPUT_MARKS.items():
        if mark != own and (Path(path) / mark).is_file():
            raise UserError(f"{option} {path} holds {what} ({mark}): its files would be overwritten or mixed "
                            f"with these; choose another {option}")


LOCK_FILE = ".lock"  # `FolderLock`: the pid of the process writing the folder


class FolderLock:
    """This process's exclusive use of an output folder (a run directory, an eval's --out), until `release`,
    the end of a ``with`` block, or until the object is collected: ``fcntl.flock`` on ``FOLDER/.lock``, which
    holds the owner's pid. The kernel drops the lock when the process ends, however it ends, so a crash leaves
    no stale lock behind. Without it, a second `logicrl train` into the same folder (a launch repeated by
    mistake, a resume while the run goes on) interleaves its metrics with the first's and overwrites its
    checkpoints. Once it holds the folder, no other writer can be using a temporary file there: it deletes
    those that writers killed outright left (`remove_temp_files`)."""

    def __init__(self, folder: Path, option: str = "--out") -> None:
        self._made = None if folder.exists() else folder  # removed on release if nothing but the lock went in
        folder.mkdir(parents=True, exist_ok=True)
        self._file = (folder / LOCK_FILE).open("a+", encoding="utf-8")
        held = fcntl is not None
        try:
            if held:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            owner = self._file.read().strip() or "?"
            self._file.close()
            if owner == str(os.getpid()):
                raise UserError(f"{folder} is held by another trainer or command in this process: let it "
                                f"finish (fit) or release its lock, or choose another {option}") from None
            raise UserError(f"{folder} is in use by another logicrl process (pid {owner}): wait for it to "
                            f"end, or choose another {option}") from None
        except OSError:  # a file system without flock (some network mounts): go on unguarded, as before
            held = False
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"{os.getpid()}\n")
        self._file.flush()
        if held:
            remove_temp_files(folder)

    def release(self) -> None:
        """Drop the lock; a folder this lock made that holds nothing else (a command that failed before writing)
        goes too, so that a failure leaves nothing behind."""
        if self._made is not None and not self._file.closed and [p.name for p in self._made.iterdir()] == [LOCK_FILE]:
            (self._made / LOCK_FILE).unlink()
            self._made.rmdir()
        self._file.close()  # closing the file drops the lock

    @contextmanager
    def released_on_error(self) -> Iterator[None]:
        """A failure of the block releases the lock at once: the object may outlive it in a kept traceback (a
        notebook retrying in the same process would find the folder held)."""
        try:
            yield
        except BaseException:
            self.release()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it over ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give the file the mode open() would
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


STALE_TEMP_S = 3600.0  # a temporary file this old belongs to a writer that died (where no lock says so)
_TEMP_FILE = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")  # what `atomic_path` names its temporary files


def remove_temp_files(folder: Path, *, older_than_s: float = 0.0) -> None:
    """Delete the temporary files that `atomic_path` writers killed outright left in ``folder`` and two levels of
    folders below it (where logicrl writes: ``samples/``, ``rollouts/``, ``2ppl/``, ``test/clean/``...; not a
    walk of the whole tree, since ``--out .`` is allowed), those older than ``older_than_s`` seconds. With 0,
    only while no other writer can be using one: `FolderLock` calls it so once it holds the folder."""
    now = time.time()
    for path in (p for pattern in (".*.tmp", "*/.*.tmp", "*/*/.*.tmp") for p in Path(folder).glob(pattern)):
        with suppress(OSError):
            if _TEMP_FILE.fullmatch(path.name) and path.is_file() and now - path.stat().st_mtime >= older_than_s:
                path.unlink()


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


@contextmanager
def restored_on_failure(paths: Iterable[Path]) -> Iterator[None]:
    """Put the files at ``paths`` back as they were if the block fails: a rescore of several models rewrites each
    one's sample file in turn, and a later model's failure must not leave the earlier files rescored beside the
    old tables."""
    saved = {Path(p): Path(p).read_bytes() for p in paths if Path(p).is_file()}
    try:
        yield
    except BaseException:
        for path, data in saved.items():
            atomic_write_bytes(path, data)
        raise


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """One JSON object per line, UTF-8, fields in insertion order (same input, same bytes)."""
    atomic_write_bytes(path, jsonl_bytes(records))


def jsonl_bytes(records: Iterable[dict[str, Any]]) -> bytes:
    """The JSONL text of ``records`` (what `write_jsonl` writes), UTF-8 encoded."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode()


def write_parquet(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Rows of JSON values as a parquet file: the table ``pyarrow.Table.from_pylist`` infers, written as
    ``pq.write_table`` writes it (`write_parquet_from_jsonl` of their JSONL text)."""
    write_parquet_from_jsonl(path, jsonl_bytes(records))


def import_in_background(*modules: str) -> None:
    """Start importing ``modules`` in a daemon thread, so that a later ``import`` finds them loaded, or waits for the
    rest (the import system's module locks); it gains where this thread leaves the interpreter lock meanwhile (a
    compiled routine, file writes). A module that cannot be imported is left to that later import to report."""

    def load() -> None:
        for module in modules:
            with suppress(ImportError):
                importlib.import_module(module)

    threading.Thread(target=load, name="import-in-background", daemon=True).start()


def write_parquet_from_jsonl(path: Path, jsonl: bytes) -> None:
    """The rows of a JSONL text as a parquet file, through Arrow's JSON reader (C++).

    pyarrow's conversions from Python objects import pandas whenever it is installed (≈ 0.17 s); the reader
    does not. It infers what ``from_pylist`` infers for JSON values, with two differences, both kept away:
    strings it would take for timestamps are read as strings, and a key missing from the first row still
    gets its column (``from_pylist`` keeps only the first row's keys).
    """
    import pyarrow.parquet as pq

    table = _table_from_jsonl(jsonl)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


# Arrow's JSON reader reads a text in blocks of at most this many bytes (its block_size is an int32; a row longer
# than a block is an error); the chunks of a longer text are combined, which gives the same file.
JSON_BLOCK_BYTES = 1 << 30


def _table_from_jsonl(data: bytes) -> Any:
    import pyarrow as pa
    import pyarrow.json as pj

    if not data:
        return pa.table({})
    block = pj.ReadOptions(block_size=min(len(data), JSON_BLOCK_BYTES))
    table = pj.read_json(pa.py_buffer(data), read_options=block)
    schema = pa.schema([field.with_type(_timestamps_as_strings(field.type)) for field in table.schema])
    if schema != table.schema:
        options = pj.ParseOptions(explicit_schema=schema)
        table = pj.read_json(pa.py_buffer(data), read_options=block, parse_options=options)
    return table.combine_chunks()


def _timestamps_as_strings(arrow_type: Any) -> Any:
    """``arrow_type`` with every timestamp (the JSON reader's guess for ISO-8601 strings) made a string."""
    import pyarrow as pa

    if pa.types.is_timestamp(arrow_type):
        return pa.string()
    if pa.types.is_list(arrow_type):
        return pa.list_(_timestamps_as_strings(arrow_type.value_type))
    if pa.types.is_struct(arrow_type):
        return pa.struct([field.with_type(_timestamps_as_strings(field.type)) for field in arrow_type])
    return arrow_type


def read_text_file(path: Path) -> str:
    """The text of a UTF-8 file; a DataError naming the file, the line and the first byte that is not UTF-8."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, data.count(b"\n", 0, exc.start) + 1, data[exc.start]) from None


def _not_utf8(path: Path, line: int, byte: int) -> DataError:
    return DataError(f"{path}:{line}: not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8")


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object a command wrote earlier (an eval's results.json, a sample file's generation record, an
    experiment's experiment.json); empty when there is none or it cannot be read."""
    try:
        value = json.loads(read_text_file(path))
    except (OSError, ValueError):  # a DataError (not UTF-8) too
        return {}
    return value if isinstance(value, dict) else {}


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object); raises DataError naming file and line for bad JSON or text not in UTF-8.
    Lines end at ``\\n`` (as in `read_appended_jsonl`)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _not_utf8(path, lineno, raw[exc.start]) from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def read_appended_jsonl(path: Path, fix: str = "only the last line may be cut (the write a killed run was doing)"
                        ) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) of each JSON line of a file a process appends to and may be killed while writing: a
    cut last line is dropped with a warning; a bad line before it is a DataError naming the line and ``fix``.

    Lines end at ``\\n`` only: `str.splitlines` would also cut at U+2028, U+0085 and the other Unicode line
    breaks, which ``json.dumps(..., ensure_ascii=False)`` leaves raw inside model text.
    """
    lines = read_text_file(path).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    rows = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if lineno < len(lines):
                raise DataError(f"{path}:{lineno}: not valid JSON: {fix}") from None
            warnings.warn(f"{path}:{lineno}: dropping a cut last line", stacklevel=2)
            continue
        if not isinstance(row, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
        rows.append((lineno, row))
    return rows


def read_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of a .jsonl or .parquet file as (location, row); location is ``file:line`` or ``file[row]``."""
    if path.suffix == ".parquet":
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise DataError(f"{path}: not a readable parquet file ({exc})") from None
        for i, row in enumerate(rows):
            yield f"{path}[row {i}]", row
    elif path.suffix in (".jsonl", ".json"):
        for lineno, row in read_jsonl(path):
            yield f"{path}:{lineno}", row
    else:
        raise DataError(f"{path}: unsupported file type (use .jsonl or .parquet)")

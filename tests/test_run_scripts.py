"""runs/lib.sh, the pipeline scripts' helpers: what they delete and what they must leave alone; the malloc they
preload."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from logicrl.engine.allocator import tcmalloc_library
from logicrl.io import FolderLock

LIB = Path(__file__).resolve().parents[1] / "runs" / "lib.sh"
pytestmark = pytest.mark.skipif(shutil.which("flock") is None, reason="needs util-linux flock")


def remove_unless_busy(folder: Path) -> subprocess.CompletedProcess:
    script = f'set -euo pipefail; source "{LIB}"; remove_unless_busy "$1"'  # as runs/*.sh run it
    return subprocess.run(["bash", "-c", script, "_", str(folder)], capture_output=True, text=True, check=False)


def make_run(folder: Path) -> Path:
    (folder / "run" / "checkpoints").mkdir(parents=True)
    (folder / "run" / "metrics.jsonl").write_text("{}\n")
    return folder / "run"


def test_a_folder_nobody_writes_is_removed_even_with_a_stale_lock_file(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    FolderLock(run).release()  # the file stays, the lock does not (a finished or crashed command)
    assert (run / ".lock").exists()
    done = remove_unless_busy(tmp_path)
    assert done.returncode == 0, done.stderr
    assert not tmp_path.exists()


def test_a_folder_a_running_command_writes_in_is_kept(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    with FolderLock(run):  # a train/eval in progress somewhere below the folder
        refused = remove_unless_busy(tmp_path)
    assert refused.returncode == 1
    assert f"{run} is in use by a logicrl command" in refused.stderr
    assert (run / "metrics.jsonl").exists()


def test_a_missing_folder_is_not_an_error(tmp_path: Path) -> None:
    assert remove_unless_busy(tmp_path / "absent").returncode == 0


def prefer_tcmalloc(**env: str) -> subprocess.CompletedProcess:
    script = f'set -euo pipefail; source "{LIB}"; prefer_tcmalloc; echo "LD_PRELOAD=${{LD_PRELOAD:-}}"'
    clean = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "LOGICRL_TCMALLOC")} | env
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, env=clean,
                          cwd=LIB.parents[1])


def test_the_pipeline_preloads_tcmalloc_where_the_system_has_it():
    out = prefer_tcmalloc().stdout.splitlines()
    library = tcmalloc_library()
    if library:
        assert out == [f"malloc: {library} preloaded (LOGICRL_TCMALLOC=0 keeps glibc's)", f"LD_PRELOAD={library}"]
    else:
        assert out[0].startswith("malloc: glibc's (with gperftools' tcmalloc") and out[1] == "LD_PRELOAD="


def test_the_users_own_preload_or_choice_stands():
    assert prefer_tcmalloc(LD_PRELOAD="libc.so.6").stdout == "LD_PRELOAD=libc.so.6\n"
    assert prefer_tcmalloc(LOGICRL_TCMALLOC="0").stdout == "LD_PRELOAD=\n"

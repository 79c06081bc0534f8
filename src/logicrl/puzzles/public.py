"""The public K&K release layout (Xie et al. 2024, "On Memorization of Large Language Models in Logical
Reasoning"; the data Logic-RL evaluates on), found and written as a first-class dataset layout.

Layouts recognised (a directory ``ROOT``)::

    ROOT/{split}/{kind}/people{N}_num{M}.jsonl   the public generator's output and the perturbed release
    ROOT/{split}/people{N}_num{M}.jsonl          the clean release on Hugging Face (= kind ``clean``)
    ROOT/people{N}_num{M}.jsonl                  one split's (or one kind's) folder given directly

``kind`` is ``clean`` or a public perturbation name (`logicrl.puzzles.perturb.PUBLIC_KINDS`). ``M`` is the
number of puzzles of the clean split; a twin file keeps the clean file's name, holds one twin per original
that has one and links to it by ``index`` (the generator numbers test first, then train, from 0). Parquet
files of the same names are read when a folder has no JSONL. Records carry no ``id`` (`files.load_records`
gives them their content id) and ``statements`` is a Python tuple literal (read by `record.py`).
"""

from __future__ import annotations

import re
from pathlib import Path

from logicrl.puzzles.perturb import CLEAN_KIND, PUBLIC_KINDS

PUBLIC_FILE = re.compile(r"^people(\d+)_num(\d+)\.(jsonl|parquet)$")
KINDS = (CLEAN_KIND, *PUBLIC_KINDS)


def people_of_file(path: Path) -> int:
    """N of ``people{N}_num{M}.jsonl``."""
    match = PUBLIC_FILE.match(path.name)
    if not match:
        raise ValueError(f"{path}: not a people{{N}}_num{{M}} file")
    return int(match.group(1))


def _level_files(folder: Path) -> list[Path]:
    """The ``people{N}_num{M}`` files of a folder (JSONL, else parquet), by N."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if PUBLIC_FILE.match(p.name)]
    jsonl = [p for p in files if p.suffix == ".jsonl"]
    return sorted(jsonl or files, key=lambda p: (people_of_file(p), p.name))


def is_public_dir(path: Path) -> bool:
    """Whether ``path`` holds public K&K files in one of the layouts above."""
    if not path.is_dir():
        return False
    if _level_files(path):
        return True
    return any(_level_files(sub) or any(_level_files(k) for k in sub.iterdir() if k.is_dir())
               for sub in path.iterdir() if sub.is_dir())


def splits_of(root: Path) -> list[str]:
    """The split folders under ``root`` that hold public files (``test``, ``train``, ...)."""
    return sorted(sub.name for sub in root.iterdir() if sub.is_dir()
                  and (_level_files(sub) or any(_level_files(sub / kind) for kind in KINDS)))


def public_files(root: Path, split: str | None, kind: str = CLEAN_KIND) -> list[Path]:
    """The files of ``kind`` in ``split`` (all splits when None), by split then number of people.

    A folder that holds ``people{N}_num{M}`` files itself is one split of one kind (``split`` is ignored)."""
    if _level_files(root):
        return _level_files(root)
    files = []
    for name in [split] if split else splits_of(root):
        folder = root / name
        if kind == CLEAN_KIND:
            files += _level_files(folder / CLEAN_KIND) or _level_files(folder)
        else:
            files += _level_files(folder / kind)
    return files


def kinds_in(root: Path, split: str | None) -> list[str]:
    """The perturbation kinds (public names) that have files in ``split`` (any split when None)."""
    return [kind for kind in PUBLIC_KINDS if public_files(root, split, kind)]


def public_path(root: Path, split: str, kind: str, n_people: int, count: int, fmt: str = "jsonl") -> Path:
    """Where the public layout keeps ``kind`` puzzles of ``split`` with ``n_people`` people."""
    return root / split / kind / f"people{n_people}_num{count}.{fmt}"


def twin_files(data: Path, split: str, kind: str) -> list[Path]:
    """The public ``kind`` twins of the puzzles ``data`` names: a public directory's ``{split}/{kind}/``
    files, or for a single ``people{N}_num{M}`` file (or one split's folder) the same name in the ``kind``
    folder beside its ``clean`` folder. Empty when there are none."""
    if data.is_file():
        if not PUBLIC_FILE.match(data.name):
            return []
        folder = data.parent.parent if data.parent.name == CLEAN_KIND else data.parent
        twin = folder / kind / data.name
        return [twin] if twin.is_file() else []
    if _level_files(data):
        return _level_files((data.parent if data.name == CLEAN_KIND else data) / kind)
    return public_files(data, split, kind) if is_public_dir(data) else []

"""Resumable evaluation: a model's scored rows kept on disk chunk by chunk while they are generated.

An evaluation at the reference settings (up to 8,192 sampled tokens, 700 puzzles) runs for hours on a CPU.
Each chunk of rows is appended to ``<out>/partial/<label>.jsonl`` as soon as it is scored, beside
``<label>.json``, which names what the rows were made with: the model, the puzzles (their ids, in order),
the samples per puzzle and every setting that changes a sample. Run the same command again and it
generates only the puzzles that are not in the journal yet; since each chunk draws its own seeds
(`logicrl.evaluate.scoring.generate_and_score`), the resumed rows equal an uninterrupted run's. A rerun
with other settings is refused with the settings that differ: a resume never ignores what was asked.
The command removes its journals once its tables are written.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from logicrl.errors import UserError
from logicrl.io import atomic_write_text, read_appended_jsonl, read_text_file, write_jsonl

PARTIAL_DIR = "partial"
# config keys that change how samples are fetched, never what they are
NOT_IN_IDENTITY = frozenset({"concurrency", "timeout_s", "retries", "api_key_env", "pass_k"})
# the local backend's keys, which an endpoint run does not use (the server decides its batches and precision)
LOCAL_ONLY = frozenset({"batch_size", "device", "dtype", "trust_remote_code"})


def identity(model: str, records: Sequence[Mapping[str, Any]], n: int, settings: Mapping[str, Any]
             ) -> dict[str, Any]:
    """What a journal's rows depend on: ``model``, the puzzles in order (a count, and digests of their ids and of
    their texts: a file whose ids are its own, ``p0``…, names other puzzles under the same ids once edited),
    ``n`` samples per puzzle and ``settings`` (a config dump) without `NOT_IN_IDENTITY` (and, for an endpoint run,
    without `LOCAL_ONLY`)."""
    ids = "\n".join(str(r.get("id")) for r in records)
    texts = "\0".join(str(r.get("quiz")) for r in records)
    return {"model": model, "puzzles": len(records), "ids_sha256": hashlib.sha256(ids.encode()).hexdigest(),
            "quizzes_sha256": hashlib.sha256(texts.encode()).hexdigest(),
            "samples": n, "settings": {k: v for k, v in settings.items() if k not in NOT_IN_IDENTITY
                                       and not (settings.get("endpoint") and k in LOCAL_ONLY)}}


def differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``key: old → new`` for every leaf that differs between two identities."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} → {b!r}")
    return out


class Journal:
    """The journal of one model's rows in an output folder (``stem``: its sample file's name)."""

    def __init__(self, out: Path, stem: str) -> None:
        self.rows_path = out / PARTIAL_DIR / f"{stem}.jsonl"
        self.meta_path = out / PARTIAL_DIR / f"{stem}.json"

    def open(self, ident: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The rows kept by an interrupted run with this ``ident`` ([] when there is none, and a new journal is
        started). UserError when the journal holds rows made with another identity; one that holds none (a run
        that failed before its first chunk, on a bad device or endpoint) is started again."""
        if self.meta_path.is_file():
            old = json.loads(read_text_file(self.meta_path))
            changed = differences(old, ident)
            if not changed:
                return self._read()
            if self.rows_path.is_file() and self.rows_path.stat().st_size:
                raise UserError(f"{self.rows_path}: an interrupted run made with other settings "
                                f"({'; '.join(changed)}): rerun with its settings to resume it, or delete "
                                f"{self.rows_path.parent} to start over")
        self.rows_path.unlink(missing_ok=True)
        atomic_write_text(self.meta_path, json.dumps(ident, indent=2) + "\n")
        return []

    def _read(self) -> list[dict[str, Any]]:
        """The kept rows; a torn last line (a run killed while writing) is dropped."""
        if not self.rows_path.is_file():
            return []
        return [row for _, row in read_appended_jsonl(self.rows_path, f"delete {self.rows_path.parent} to start over")]

    def keep(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Make the journal hold exactly ``rows`` (those of the chunks that finished)."""
        write_jsonl(self.rows_path, rows)

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Add one chunk's rows, flushed to disk before returning."""
        with self.rows_path.open("a", encoding="utf-8") as f:
            f.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
            f.flush()
            os.fsync(f.fileno())

    def remove(self) -> None:
        for path in (self.rows_path, self.meta_path):
            path.unlink(missing_ok=True)
        try:
            self.rows_path.parent.rmdir()
        except OSError:  # other models' journals are still there, or it never existed
            pass


def done_prefix(rows: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]], n: int,
                chunk: int) -> int:
    """How many of ``records``, from the first, the journal ``rows`` hold with all ``n`` samples, counted in
    whole chunks of ``chunk`` records (a chunk that did not finish is generated again)."""
    counts = Counter(str(row.get("id")) for row in rows)
    complete = 0
    for record in records:
        if counts[str(record.get("id"))] < n:
            break
        complete += 1
    return complete if complete == len(records) else complete - complete % chunk

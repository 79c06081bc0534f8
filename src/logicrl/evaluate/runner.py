"""Evaluation runs: pick the puzzles, get each model's scored samples (generate, or rescore a saved file),
and keep them as ``<out>/samples/<label>.jsonl``.

A sample row is a `logicrl.evaluate.scoring.score_sample` row plus ``model`` (the label). Rescoring reads
the saved responses back, finds each row's puzzle by id, checks that it is the puzzle the response answered
(the hash of its text, ``quiz_sha1``), and scores it again with the current reward config
(``prefilled_think`` as saved): a change of reward mode needs no model. Generation is resumable:
each model's rows are journaled chunk by chunk under ``<out>/partial/`` until the command's tables are
written (`logicrl.evaluate.journal`).
"""

from __future__ import annotations

import gc
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logicrl.engine.allocator import keep_freed_memory
from logicrl.errors import DataError, UserError
from logicrl.evaluate.config import GENERATION_KEYS, BackendConfig, RunConfig
from logicrl.evaluate.endpoint import endpoint_client, endpoint_generate_and_score
from logicrl.evaluate.journal import Journal, done_prefix, identity
from logicrl.evaluate.scoring import Scorer, generate_and_score, quiz_digest, score_sample
from logicrl.io import atomic_write_text, read_json_object, read_jsonl, write_jsonl
from logicrl.models import ModelNotFoundError, load_model_and_tokenizer
from logicrl.puzzles.files import dataset_files
from logicrl.puzzles.record import people_of
from logicrl.reward.records import checked_records

SAMPLES_DIR = "samples"


@dataclass(frozen=True)
class ModelSpec:
    """A model to evaluate: ``label`` names its table row and sample file; ``name`` is what gets loaded
    (an alias, a checkpoint directory, a hub id) or, with an endpoint, the served model's name."""

    label: str
    name: str

    @property
    def file_stem(self) -> str:
        """The label made safe as a file name (``/`` and other odd characters become ``_``)."""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.label).strip("._") or "model"


def parse_model_specs(values: Iterable[str]) -> list[ModelSpec]:
    """``["smollm2-135m", "sft=runs/sft/ckpt"]`` → specs; ``label=name`` sets a label (default: the name).

    A value that is an existing path is a name even if it holds ``=``. Two specs may not share a label.
    """
    specs = []
    for value in values:
        label, sep, name = value.partition("=")
        if not sep or Path(value).exists() or not label.strip() or not name.strip():
            label, name = value, value
        specs.append(ModelSpec(label.strip(), name.strip()))
    stems = [s.file_stem for s in specs]
    duplicates = sorted({s.label for s in specs if stems.count(s.file_stem) > 1})
    if duplicates:
        raise UserError(f"two models share the label(s) {', '.join(duplicates)}: name them with label=model")
    return specs


def rescored_files(out: Path, specs: Sequence[ModelSpec], rescore: bool) -> list[Path]:
    """The sample files a ``--rescore`` rewrites (none for a run that generates: its files are new), which a
    failure puts back (`logicrl.io.restored_on_failure`)."""
    return [samples_path(out, spec) for spec in specs] if rescore else []


def samples_path(out: Path, spec: ModelSpec) -> Path:
    return out / SAMPLES_DIR / f"{spec.file_stem}.jsonl"


def generation_path(out: Path, spec: ModelSpec) -> Path:
    """``samples/<label>.generation.json``: how the sample file beside it was made."""
    return out / SAMPLES_DIR / f"{spec.file_stem}.generation.json"


def save_generated(out: Path, spec: ModelSpec, rows: Sequence[Mapping[str, Any]], cfg: BackendConfig,
                   n: int) -> None:
    """Write a generation's sample file and, beside it, its record: the model and the settings that made the
    samples (`GENERATION_KEYS`, with ``samples``: ``n`` per question), which a ``--rescore`` reports. The old
    record goes first, so a kill between the two writes leaves new samples with no record, never an old one."""
    record = generation_path(out, spec)
    record.unlink(missing_ok=True)
    write_jsonl(samples_path(out, spec), rows)
    settings = {k: v for k, v in cfg.model_dump(mode="json").items() if k in GENERATION_KEYS}
    atomic_write_text(record, json.dumps({"model": spec.name, "settings": {**settings, "samples": n}},
                                         indent=2) + "\n")


def read_generation(out: Path, spec: ModelSpec) -> dict[str, Any] | None:
    """The settings a sample file was made with (`save_generated`), or None when it has no readable record."""
    settings = read_json_object(generation_path(out, spec)).get("settings")
    return settings if isinstance(settings, dict) else None


def saved_specs(out: Path, summary: str) -> list[ModelSpec]:
    """The models that have a sample file under ``out`` (for rescoring without ``--model``): in the order of the
    earlier ``summary`` file (results.json, memorization.json), so that its first model stays the baseline of the
    paired differences, then by file name; each with the name its generation record (else ``summary``) gives."""
    files = sorted((out / SAMPLES_DIR).glob("*.jsonl"))
    if not files:
        raise DataError(f"{out / SAMPLES_DIR}: no sample files to rescore (run without --rescore first)")
    earlier = read_json_object(out / summary).get("models")
    earlier = earlier if isinstance(earlier, dict) else {}
    order = {label: k for k, label in enumerate(earlier)}
    specs = []
    for label in sorted(map(_saved_label, files), key=lambda label: order.get(label, len(order))):
        entry = earlier.get(label)
        name = read_json_object(generation_path(out, ModelSpec(label, label))).get("model")
        name = name or (entry.get("name") if isinstance(entry, dict) else None)
        specs.append(ModelSpec(label, name if isinstance(name, str) and name else label))
    return specs


def _saved_label(path: Path) -> str:
    """The ``model`` of the file's first row, if it still names this file; else the file's stem."""
    for _, row in read_jsonl(path):
        label = str(row.get("model") or "")
        return label if label and ModelSpec(label, label).file_stem == path.stem else path.stem
    return path.stem


def select_records(data: Path, split: str, people: Sequence[int], limit: int | None, *,
                   every_level: bool = False) -> list[dict[str, Any]]:
    """The puzzles of ``split`` with ``people`` people, the first ``limit`` of each level, by level: the levels
    the data holds (the default 2–8 takes what there is), or, with ``every_level`` (people the user listed),
    every one of them, a DataError naming those missing."""
    records = checked_records(dataset_files(data, split))
    by_level: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        by_level.setdefault(people_of(record), []).append(record)
    chosen = [n for n in people if n in by_level]
    missing = [n for n in people if n not in by_level]
    if not chosen or (every_level and missing):
        found = ", ".join(map(str, sorted(by_level))) or "none"
        raise DataError(f"{data}: no {split} puzzles with {_span(missing)} people (found: {found})")
    left_out = sorted(set(by_level) - set(people))
    if left_out and not every_level:
        print(f"warning: {data}: the {split} puzzles with {_span(left_out)} people are not evaluated (the default "
              f"--people is {_span(people)}; give --people to choose the levels)", file=sys.stderr)
    return [r for n in sorted(chosen) for r in by_level[n][:limit]]


def saved_levels(out: Path, specs: Sequence[ModelSpec]) -> list[int]:
    """The numbers of people of the samples saved in ``out`` for ``specs`` (those a ``--rescore`` scores when
    no ``--people`` is given)."""
    paths = [samples_path(out, spec) for spec in specs if samples_path(out, spec).is_file()]
    return sorted({int(row["n_people"]) for path in paths for _, row in read_jsonl(path)
                   if row.get("n_people") is not None})


def _span(people: Sequence[int]) -> str:
    return ",".join(map(str, people)) if len(people) < 3 else f"{min(people)}-{max(people)}"


def generate_rows(
    spec: ModelSpec, records: Sequence[Mapping[str, Any]], cfg: BackendConfig, *, n: int,
    progress: Callable[[int], None] | None = None, scorer: Scorer | None = None, journal: Journal | None = None,
    status: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """``n`` scored samples per record from ``spec``'s model (local or endpoint), labelled with the model.

    Scored by ``scorer`` (`logicrl.evaluate.scoring.Scorer`); without one, by the puzzle reward of
    ``cfg.reward`` (``cfg`` is then a `RunConfig`). The prompt is each record's ``quiz``. The records go in
    chunks (`chunk_size`); with a ``journal`` each chunk's rows are kept as soon as they are scored, and a
    rerun generates only the chunks the journal does not hold (`logicrl.evaluate.journal`; through an endpoint,
    only the puzzles it does not hold, whatever the ``concurrency`` then and now); the model is not
    loaded when it holds them all; a run that fails before the journal holds a row removes it. ``status``: the
    local backend's line on the batch being decoded (`logicrl.evaluate.scoring.generate_and_score`)."""
    chunk = chunk_size(cfg, n)
    rows: list[dict[str, Any]] = []
    if journal is not None:
        kept = journal.open(identity(spec.name, records, n, cfg.model_dump(mode="json")))
        # through an endpoint each sample has its own seed (its puzzle's index): every complete puzzle is kept,
        # whatever chunks --concurrency (not in the identity) cut; locally a chunk is one batch seeded by its
        # first puzzle, so only whole chunks are (batch_size, which sizes them, is in the identity)
        done = done_prefix(kept, records, n, 1 if cfg.endpoint else chunk)
        ids = {str(r.get("id")) for r in records[:done]}
        rows = [{**row, "model": spec.label} for row in kept if str(row.get("id")) in ids]
        if len(rows) != len(kept):
            journal.keep(rows)  # drop the rows of a chunk that did not finish
        if done:
            print(f"{spec.label}: resuming an interrupted run: {len(rows)} samples of its first {done} puzzles "
                  f"kept ({journal.rows_path})", file=sys.stderr)
            if progress:
                progress(done)
    else:
        done = 0
    if done == len(records):
        return rows
    try:
        with _sampler(spec, cfg, n=n, scorer=scorer, progress=progress, status=status) as sample:
            for first in range(done, len(records), chunk):
                new = [{"model": spec.label, **row}
                       for row in sample(records[first:first + chunk], first, len(records))]
                if journal is not None:
                    journal.append(new)
                rows += new
    except BaseException:
        if journal is not None and not rows:  # nothing to resume: a failure leaves no journal behind
            journal.remove()
        raise
    return rows


def chunk_size(cfg: BackendConfig, n: int) -> int:
    """Records per chunk: one generate call locally (``batch_size`` rows), 16 rounds of requests in flight
    through an endpoint."""
    rows = 16 * cfg.concurrency if cfg.endpoint else cfg.batch_size
    return max(1, rows // n)


@contextmanager
def _sampler(spec: ModelSpec, cfg: BackendConfig, *, n: int, scorer: Scorer | None,
             progress: Callable[[int], None] | None, status: Callable[[str], None] | None = None,
             ) -> Iterator[Callable[[Sequence[Mapping[str, Any]], int, int], list]]:
    """``sample(chunk, first_index, total)``: the scored rows of a chunk that starts at ``first_index`` of a list
    of ``total`` records, from the endpoint or the loaded model (closed or freed on exit)."""
    reward = None if scorer is not None else cfg.reward  # type: ignore[attr-defined]
    common = {"prompt": cfg.prompt, "reward": reward, "scorer": scorer, "max_new_tokens": cfg.max_tokens,
              "n": n, "top_p": cfg.top_p, "seed": cfg.seed, "progress": progress}
    if cfg.endpoint:
        client = endpoint_client(cfg.endpoint, spec.name, api_key_env=cfg.api_key_env,
                                 timeout_s=cfg.timeout_s, retries=cfg.retries)
        try:
            yield lambda chunk, first, total: endpoint_generate_and_score(
                client, chunk, temperature=cfg.temperature, concurrency=cfg.concurrency, first_index=first, **common)
        finally:
            client.close()
    else:
        model, tokenizer = _load(spec, cfg)
        try:
            yield lambda chunk, first, total: generate_and_score(
                model, tokenizer, chunk, greedy=cfg.greedy, temperature=cfg.temperature,
                batch_size=cfg.batch_size, first_index=first, total=total, status=status, **common)
        finally:
            del model
            gc.collect()


def remove_journals(out: Path, specs: Iterable[ModelSpec]) -> None:
    """Drop the models' journals: call once the command's results are written."""
    for spec in specs:
        Journal(out, spec.file_stem).remove()


def _load(spec: ModelSpec, cfg: BackendConfig) -> tuple[Any, Any]:
    try:
        model, tokenizer = load_model_and_tokenizer(spec.name, dtype=cfg.dtype, device=cfg.device,
                                                    trust_remote_code=cfg.trust_remote_code)
    except (ModelNotFoundError, ValueError) as err:
        raise UserError(str(err).splitlines()[0]) from None
    if model.device.type == "cpu":
        keep_freed_memory()
    return model, tokenizer


def rescore_row(row: Mapping[str, Any], record: Mapping[str, Any], cfg: RunConfig) -> dict[str, Any]:
    """A saved row scored again against its puzzle with ``cfg.reward`` (``prefilled_think`` as saved)."""
    prefilled = bool(row.get("prefilled_think", cfg.prompt.prefilled_think))
    new, _ = score_sample(record, sample=int(row.get("sample", 0)), response=str(row["response"]),
                          length=int(row.get("length", 0)), truncated=bool(row.get("truncated", False)),
                          prefilled_think=prefilled, reward=cfg.reward)
    return new


def model_rows(
    spec: ModelSpec, records: Sequence[Mapping[str, Any]], cfg: RunConfig, out: Path, *, n: int,
    rescore: bool, progress: Callable[[int], None] | None = None, status: Callable[[str], None] | None = None,
    aside: Callable[[str], bool] | None = None,
) -> list[dict[str, Any]]:
    """Scored rows of one model, saved to its sample file: generated, or (``rescore``) read back and rescored
    against ``records``, which must hold the puzzle of every saved row with ``cfg.people`` people (rows of
    other levels, and those whose puzzle id ``aside`` picks, stay in the file untouched and are not returned)."""
    path = samples_path(out, spec)
    if not rescore:
        rows = generate_rows(spec, records, cfg, n=n, progress=progress, journal=Journal(out, spec.file_stem),
                             status=status)
        save_generated(out, spec, rows, cfg, n)
        return rows
    if not path.is_file():
        raise DataError(f"{path}: no saved samples for model {spec.label!r} to rescore")
    by_id = {str(r["id"]): r for r in records}
    kept, chosen = [], []
    for line, row in read_jsonl(path):
        if _set_aside(row, cfg, aside):
            kept.append(row)  # kept in the file as it was, left out of the tables
            continue
        record = by_id.get(str(row.get("id")))
        if record is None:
            raise DataError(f"{path}:{line}: puzzle {row.get('id')!r} is not in the data given (--data)")
        if row.get("quiz_sha1", quiz_digest(record)) != quiz_digest(record):  # rows from before it: unchecked
            raise DataError(f"{path}:{line}: puzzle {row.get('id')!r} of the data given is not the one this "
                            "response answered (its text differs): rescore with the puzzles the samples were "
                            "made with (the same --data; for eval memorization also --twins and perturb_seed)")
        chosen.append({"model": spec.label, **rescore_row(row, record, cfg)})
        kept.append(chosen[-1])
    if not chosen:  # tables of no row would replace the earlier ones
        raise DataError(f"{path}: no saved samples of model {spec.label!r} with {_span(cfg.people)} people to "
                        "rescore; give the --people they were made with")
    write_jsonl(path, kept)
    return chosen


def _set_aside(row: Mapping[str, Any], cfg: RunConfig, aside: Callable[[str], bool] | None) -> bool:
    """Whether a rescore leaves a saved ``row`` as it is: a row of a level not in ``cfg.people``, or one whose
    puzzle id ``aside`` picks."""
    if row.get("n_people") is not None and int(row["n_people"]) not in cfg.people:
        return True
    return aside is not None and aside(str(row.get("id")))

"""Records held as their JSONL text: what the compiled generator (`logicrl.puzzles.compiled`) hands back, written to
a file as they are and decoded only where a record is read; and the few numbers of a record that the dataset
summary reads (`RecordFacts`), which the generator gives alongside so that the summary decodes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, overload

from logicrl.io import jsonl_bytes
from logicrl.puzzles.logic import json_depth
from logicrl.puzzles.record import decode_statements_field


class RecordFacts(NamedTuple):
    """What `dataset.summarize` reads of one record."""

    people: int  # the number of names
    depth_sum: int  # the statement trees' depths, summed over the record's statements
    depth_max: int
    knights: int  # knights in the solution
    quiz_chars: int  # characters of the quiz text


def record_facts(record: dict[str, Any]) -> RecordFacts:
    """The facts of a validated record (generated, or read by `files.load_records`); the statement trees are measured
    in their JSON form, without being rebuilt."""
    depths = [json_depth(statement) for statement in decode_statements_field(record["statements"])]
    return RecordFacts(len(record["names"]), sum(depths), max(depths), sum(record["solution"]), len(record["quiz"]))


@dataclass(frozen=True)
class RecordLines(Sequence):
    """Records as JSONL text: ``text[ends[i - 1]:ends[i]]`` is record i's line (``ends[-1]`` is the text's end), as
    `logicrl.io.jsonl_bytes` writes it; ``facts[i]`` its `RecordFacts`. Indexing decodes a line; slicing keeps text."""

    text: bytes
    ends: Sequence[int]
    facts: Sequence[RecordFacts]

    def __len__(self) -> int:
        return len(self.ends)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> RecordLines: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | RecordLines:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise ValueError("RecordLines slices take every line (step 1)")
            stop = max(start, stop)
            first, last = self._start(start), self._start(stop)
            return RecordLines(self.text[first:last], [end - first for end in self.ends[start:stop]],
                               self.facts[start:stop])
        position = range(len(self))[index]  # IndexError beyond the end; negative indices count from it
        return json.loads(self.text[self._start(position):self.ends[position]])

    def _start(self, position: int) -> int:
        return self.ends[position - 1] if position else 0


def records_jsonl(records: Sequence[dict[str, Any]]) -> bytes:
    """The JSONL text of ``records``: a `RecordLines`' own text, else `logicrl.io.jsonl_bytes`."""
    return records.text if isinstance(records, RecordLines) else jsonl_bytes(records)


def facts_of(records: Iterable[dict[str, Any]]) -> Sequence[RecordFacts]:
    """The `RecordFacts` of ``records``: a `RecordLines`' own, else measured from each record."""
    return records.facts if isinstance(records, RecordLines) else [record_facts(record) for record in records]

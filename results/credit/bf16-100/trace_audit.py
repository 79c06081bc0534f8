"""The ninth attempt's trace audit (docs/experiments.md "Ninth attempt"), from the committed test samples.

    python results/credit/bf16-100/trace_audit.py outputs/credit/data

DATA is the recipe's dataset (`logicrl data generate --people 2-4 --train 200 --test 100 --val 30 --seed 0 test_first=false --out
outputs/credit/data`). For the cold start, step 50 and step 100, per number of people: the pooled audit
(`logicrl.analysis.cases.audit_summary`: truth values, role words and verdicts right), and per response whether the
answer is the last case line's assignment, whether it gives the speakers the roles that the last case's check lines
give them, and whether those roles are the case line's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from logicrl.analysis.cases import audit_summary
from logicrl.puzzles.audit import CASE_LINE, CHECK_LINE, parse_cast
from logicrl.puzzles.record import Puzzle

HERE = Path(__file__).resolve().parent
SAMPLES = {"cold start": HERE / "eval/samples/cold-start.jsonl", "step 50": HERE / "../bf16/eval/samples/rl.jsonl",
           "step 100": HERE / "eval/samples/rl.jsonl"}


def last_block(row: dict, record: dict) -> tuple[bool, bool, bool]:
    """(answer = last case line, answer = roles of the last case's check lines, those roles = the case line),
    read from the think block; unlike `logicrl.puzzles.audit.last_case`, the last case line counts even when it
    does not name everyone (it then matches nothing)."""
    puzzle = Puzzle.from_record(dict(record))
    names = list(puzzle.names)
    words = {puzzle.roles.word(True): True, puzzle.roles.word(False): False}
    case, claimed = None, {}
    for line in (part.strip() for part in str(row["response"]).split("</think>")[0].split("\n")):
        if m := CASE_LINE.fullmatch(line):
            case, claimed = parse_cast(m[2], names, words), {}
        elif (m := CHECK_LINE.fullmatch(line)) and m[1] in names and m[2] in words:
            claimed[m[1]] = words[m[2]]
    given = row.get("assignment") or {}
    answer = tuple(words.get(given.get(name)) for name in names) if given else None
    return (case is not None and answer == case,
            bool(claimed) and answer is not None and all(answer[names.index(k)] == v for k, v in claimed.items()),
            case is not None and all(case[names.index(k)] == v for k, v in claimed.items()))


def main() -> None:
    data = Path(sys.argv[1])
    records = {str(r["id"]): r for path in sorted(data.glob("*ppl/*.jsonl"))
               for r in map(json.loads, path.read_text().splitlines())}
    print("| checkpoint | people | truth right | role words right | verdicts right | answer = last case line "
          "| answer = last checks' roles | last checks' roles = case line |")
    print("|---|---|---|---|---|---|---|---|")
    for name, path in SAMPLES.items():
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        for people in (2, 3, 4):
            level = [row for row in rows if row["n_people"] == people]
            audit = audit_summary(level, records)
            flags = [last_block(row, records[str(row["id"])]) for row in level]
            counts = [sum(flag[k] for flag in flags) for k in range(3)]
            print(f"| {name} | {people} | {audit['truth_acc']:.2f} | {audit['role_acc']:.2f} | {audit['verdict_acc']:.2f} "
                  f"| {counts[0]}/{len(level)} | {counts[1]}/{len(level)} | {counts[2]}/{len(level)} |")


if __name__ == "__main__":
    main()

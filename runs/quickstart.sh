#!/usr/bin/env bash
# The main job on the embedded default, on CPU: set up, then run the pipeline.
# Stage so far: generate the puzzle dataset (2..8 people, train/test) and print its summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash runs/setup.sh
OUT=${OUT:-outputs/quickstart}

echo "== 1/1 data: unique-solution K&K puzzles, 2..8 people, train/test splits -> $OUT/data"
.venv/bin/logicrl data generate --people 2-8 --train 200 --test 100 --seed 0 --out "$OUT/data"
.venv/bin/logicrl data show "$OUT/data/3ppl/test.jsonl" -n 1 --cot

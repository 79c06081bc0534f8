#!/usr/bin/env bash
# The main job on the embedded default (SmolLM2-135M-Instruct), on CPU:
#   data → cold start (SFT) → RL (REINFORCE++) → eval of both on the same held-out puzzles → report.
# A rerun skips finished stages and resumes an interrupted one; FORCE=1 starts over.
set -euo pipefail
cd "$(dirname "$0")/.."
bash runs/setup.sh
OUT=${OUT:-outputs/quickstart}
source runs/lib.sh
prefer_tcmalloc
if [ "${FORCE:-0}" = 1 ]; then remove_unless_busy "$OUT"; fi

say "1/5 data" "Unique-solution Knights-and-Knaves puzzles with 2 and 3 people: 120 per level to train on,
100 per level held out for evaluation (the 2-person level has only ~400 distinct puzzles)."
if [ -f "$OUT/data/manifest.json" ]; then echo "already done ($OUT/data)"; else
    # test_first=false: train drawn first, the order every committed result of this script was made with
    "$LOGICRL" data generate --people 2-3 --train 120 --test 100 --seed 0 test_first=false --out "$OUT/data"
fi

say "2/5 cold start (SFT)" "The model never writes <think>…</think><answer>…</answer> on its own, so every RL reward
would be −3. Supervised fine-tuning on the template reasoning (the solver's search written out) teaches the format."
run_stage "$OUT/cold" sft --config configs/cpu-demo-sft.yaml data.train="$OUT/data"

say "3/5 RL (REINFORCE++)" "Sample 4 answers per puzzle, score them with the rule-based reward (3 for a correct answer
in the right format … −3 for no format), and push the policy toward the better ones; KL to the cold start keeps it close."
run_stage "$OUT/rl" train --config configs/cpu-demo-rl.yaml --model "$(last_checkpoint "$OUT/cold")" \
    data.train="$OUT/data"

say "4/5 evaluation" "Greedy answers of the cold-start and the RL checkpoints to the same 200 held-out puzzles:
accuracy by number of people, and the RL − cold-start difference with a 95% interval."
if [ -f "$OUT/eval/compare.json" ]; then cat "$OUT/eval/table.md"; else
    "$LOGICRL" eval --model "cold-start=$(last_checkpoint "$OUT/cold")" --model "rl=$(last_checkpoint "$OUT/rl")" \
        --data "$OUT/data" --people 2-3 --max-tokens 384 --out "$OUT/eval"
fi

say "5/5 report" "Training curves, thinking words, language mixing and reflective behaviours of the RL run."
"$LOGICRL" report "$OUT/rl"
say "before/after" "The same 200 held-out puzzles, greedy, cold start vs RL ($OUT/eval/table.md):"
cat "$OUT/eval/table.md"
echo
echo "report: $OUT/rl/report/index.html · reward curve: $OUT/rl/report/curves.png"

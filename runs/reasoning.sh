#!/usr/bin/env bash
# The reasoning recipe on the embedded default (SmolLM2-135M-Instruct), on 2 CPU cores: 68 min on an AMD EPYC since the
# compiled decode step (2026-12-05, RL 100 steps in 41 min; results/credit/session29/README.md). Before it, ≈ 2.4 hours
# on an AMX Xeon (stages timed one by one, 2026-12-02: cold start 22 min, RL 100 bf16 steps of 47–57 s with validation ≈ 93 min,
# the two 300-puzzle greedy evals ≈ 30 min (the RL checkpoint's alone: 12 min); PASSK=1 adds pass@k, ≈ 28 min;
# docs/experiments.md "Ninth attempt"; the AMD EPYC of earlier sessions is slower: cold start 30 min):
#   data (train / val / test) → cold start (SFT) → RL (COMPARE=1: also with the paper's reward)
#   → greedy eval on 300 held-out puzzles (2, 3 and 4 people) (+ pass@k) → report.
# The question it answers: does RL raise held-out accuracy above the checkpoint it starts from?
# RECIPE picks the configs (docs/experiments.md has the search behind them and the results):
#   RECIPE=credit (default) one SFT pass of reasoning by cases, then GRPO with per-line credit and positive-only
#                 updates (configs/cpu-cases-sft.yaml, configs/cpu-credit-rl.yaml) → outputs/credit
#   RECIPE=cases  the third attempt: two SFT passes, GRPO with the paper's reward: configs/cpu-cases-{sft,sft2,rl}.yaml
#   RECIPE=reason the first pilot, the solver's search as the trace: configs/cpu-reason-{sft,rl}.yaml
# A rerun skips finished stages and resumes an interrupted one; FORCE=1 starts over.
set -euo pipefail
cd "$(dirname "$0")/.."
bash runs/setup.sh
RECIPE=${RECIPE:-credit}
# per recipe: output dir, training puzzles per level, eval cap and levels, the configs, and the run that
# COMPARE=1 adds beside the recipe's RL (its name and overrides: the paper's reward where the recipe shapes it)
case "$RECIPE" in
    credit) OUT=${OUT:-outputs/credit}; TRAIN=200; MAX_TOKENS=1024; EVAL_PEOPLE=2-4
            SFT_CONFIG=configs/cpu-cases-sft.yaml SFT2_CONFIG= RL_CONFIG=configs/cpu-credit-rl.yaml
            OTHER=rl-paper OTHER_OVERRIDES=(algorithm.check_line_credit=0 algorithm.positive_only=false) ;;
    cases)  OUT=${OUT:-outputs/cases}; TRAIN=200; MAX_TOKENS=512; EVAL_PEOPLE=2-3
            SFT_CONFIG=configs/cpu-cases-sft.yaml SFT2_CONFIG=configs/cpu-cases-sft2.yaml
            RL_CONFIG=configs/cpu-cases-rl.yaml OTHER=rl-partial OTHER_OVERRIDES=(reward.partial_credit=0.5) ;;
    reason) OUT=${OUT:-outputs/reasoning}; TRAIN=160; MAX_TOKENS=320; EVAL_PEOPLE=2-4
            SFT_CONFIG=configs/cpu-reason-sft.yaml SFT2_CONFIG= RL_CONFIG=configs/cpu-reason-rl.yaml
            OTHER=rl-paper OTHER_OVERRIDES=(reward.partial_credit=0) ;;
    *) echo "error: RECIPE=$RECIPE: choose credit, cases or reason" >&2; exit 2 ;;
esac
RL_TEMPERATURE=$(grep -E '^ *temperature:' "$RL_CONFIG" | head -1 | awk '{print $2}')
source runs/lib.sh
prefer_tcmalloc
if [ "${FORCE:-0}" = 1 ]; then remove_unless_busy "$OUT"; fi

say "1/6 data" "2, 3 and 4 people: $TRAIN training puzzles per level, 30 validation puzzles (the only ones that
training looks at) and 100 test puzzles (only the final evaluation reads them). The cold start trains on 2 and 3
people, RL on the levels its config names; 4 people is harder than anything trained on."
if [ -f "$OUT/data/manifest.json" ]; then echo "already done ($OUT/data)"; else
    # test_first=false: train drawn first, the order every committed result of this script was made with
    "$LOGICRL" data generate --people 2-4 --train "$TRAIN" --test 100 --val 30 --seed 0 test_first=false --out "$OUT/data"
fi

say "2/6 cold start (SFT)" "One pass over template reasoning for the 2- and 3-person training puzzles ($SFT_CONFIG):
the format and a procedure the model can follow, still far from solving the puzzles."
run_stage "$OUT/cold" sft --config "$SFT_CONFIG" data.train="$OUT/data"
COLD=$(last_checkpoint "$OUT/cold")
if [ -n "$SFT2_CONFIG" ]; then  # a second pass where the recipe has one
    say "2b/6 cold start, second pass" "The 2-person traces once more at a lower lr ($SFT2_CONFIG): one pass leaves
the model's statement lookups at chance; the second makes them right most of the time."
    run_stage "$OUT/cold2" sft --config "$SFT2_CONFIG" --model "$COLD" data.train="$OUT/data"
    COLD=$(last_checkpoint "$OUT/cold2")
fi

say "3/6 RL" "GRPO from the cold start ($RL_CONFIG) at T = $RL_TEMPERATURE, on the levels its config names; greedy
validation on val puzzles every few steps. COMPARE=1 also runs $OTHER (${OTHER_OVERRIDES[*]}) after it."
run_stage "$OUT/rl" train --config "$RL_CONFIG" --model "$COLD" data.train="$OUT/data"
MODELS=(-m "cold-start=$COLD" -m "rl=$(last_checkpoint "$OUT/rl")")
if [ "${COMPARE:-0}" = 1 ]; then
    run_stage "$OUT/$OTHER" train --config "$RL_CONFIG" --model "$COLD" data.train="$OUT/data" "${OTHER_OVERRIDES[@]}"
    MODELS+=(-m "$OTHER=$(last_checkpoint "$OUT/$OTHER")")
fi

say "4/6 evaluation (greedy)" "The cold start and the RL checkpoint(s) on the same test puzzles (100 per level,
people $EVAL_PEOPLE): accuracy by number of people (the paper's strict criterion), and RL − cold start, paired, with a 95% interval."
if [ -f "$OUT/eval/compare.json" ]; then cat "$OUT/eval/table.md"; else
    "$LOGICRL" eval "${MODELS[@]}" --data "$OUT/data" --people "$EVAL_PEOPLE" --limit 100 --max-tokens "$MAX_TOKENS" --out "$OUT/eval"
fi

say "5/6 pass@k" "PASSK=1: 8 samples at the RL temperature (T = $RL_TEMPERATURE) on 10 test puzzles per level: what
the policy sometimes finds (pass@k) against what it answers (pass@1), before and after RL."
if [ "${PASSK:-0}" != 1 ]; then echo "skipped (PASSK=1 runs it)"
elif [ -f "$OUT/eval-passk/compare.json" ]; then cat "$OUT/eval-passk/table.md"; else
    "$LOGICRL" eval -m "cold-start=$COLD" -m "rl=$(last_checkpoint "$OUT/rl")" \
        --data "$OUT/data" --people "$EVAL_PEOPLE" --limit 10 --samples 8 --temperature "$RL_TEMPERATURE" --max-tokens "$MAX_TOKENS" \
        --out "$OUT/eval-passk"
fi

say "6/6 report" "Training curves (reward, accuracy, validation accuracy), thinking words, length vs accuracy."
"$LOGICRL" report "$OUT/rl"
say "before/after" "300 test puzzles, greedy ($OUT/eval/table.md):"
cat "$OUT/eval/table.md"
echo
echo "report: $OUT/rl/report/index.html"
if [ -n "${RESULTS:-}" ]; then  # RESULTS=results/reasoning: copy the evidence (no checkpoints) for the repository
    export_results "$OUT" "$RESULTS"
    echo "evidence copied to $RESULTS"
fi

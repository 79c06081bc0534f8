# Shared helpers of the pipeline scripts (runs/quickstart.sh, runs/reasoning.sh); source it, don't run it.
LOGICRL=${LOGICRL:-.venv/bin/logicrl}

say() { printf '\n\033[1m== %s\033[0m\n%s\n' "$1" "$2"; }
last_checkpoint() { ls -d "$1"/checkpoints/step_* | sort | tail -1; }
run_stage() {  # run_stage DIR sft|train ARGS...: skip when finished, resume when interrupted, else start
    local dir=$1 command=$2; shift 2
    if [ -f "$dir/summary.json" ]; then echo "already done ($dir/summary.json)"; return; fi
    if ls "$dir"/checkpoints/step_*/trainer_state.pt >/dev/null 2>&1; then
        "$LOGICRL" "$command" --resume "$dir"
    else
        rm -rf "$dir"
        "$LOGICRL" "$command" "$@" --out "$dir"
    fi
}

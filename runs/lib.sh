# Shared helpers of the pipeline scripts (runs/quickstart.sh, runs/reasoning.sh); source it, don't run it.
LOGICRL=${LOGICRL:-.venv/bin/logicrl}

say() {  # a stage's heading: bold on a terminal, plain text when piped to a log
    if [ -t 1 ]; then printf '\n\033[1m== %s\033[0m\n%s\n' "$1" "$2"; else printf '\n== %s\n%s\n' "$1" "$2"; fi
}
prefer_tcmalloc() {  # preload gperftools' tcmalloc where the system has it (the same numbers; CPU RL steps ≈ 1.15–1.2× faster)
    [ -z "${LD_PRELOAD:-}" ] && [ "${LOGICRL_TCMALLOC:-1}" != 0 ] || return 0  # the user's own choice stands
    local lib
    lib=$(.venv/bin/python -m logicrl.engine.allocator)
    if [ -n "$lib" ]; then
        export LD_PRELOAD=$lib
        echo "malloc: $lib preloaded (LOGICRL_TCMALLOC=0 keeps glibc's)"
    else
        echo "malloc: glibc's (with gperftools' tcmalloc, e.g. apt install libtcmalloc-minimal4, CPU RL steps run ≈ 1.15–1.2× faster)"
    fi
}
last_checkpoint() { ls -d "$1"/checkpoints/step_* | sort | tail -1; }
remove_unless_busy() {  # remove_unless_busy DIR: delete DIR, unless a logicrl command holds a .lock in it
    local lock
    if command -v flock >/dev/null; then  # util-linux; without it (macOS), DIR goes unchecked
        while IFS= read -r lock; do  # 75: held by another process; other failures (no flock on the mount)
            flock --nonblock --conflict-exit-code 75 "$lock" true || [ $? -ne 75 ] || {  # pass, as FolderLock does
                echo "error: $(dirname "$lock") is in use by a logicrl command (pid $(cat "$lock")); wait for it" \
                     "to end or stop it, then rerun" >&2; exit 1; }
        done < <(find "$1" -name .lock -type f 2>/dev/null)
    fi
    rm -rf "$1"
}
run_stage() {  # run_stage DIR sft|train ARGS...: skip when finished, resume when interrupted, else start
    local dir=$1 command=$2; shift 2
    if [ -f "$dir/summary.json" ]; then echo "already done ($dir/summary.json; FORCE=1 reruns every stage with the current configs)"; return; fi
    if ls "$dir"/checkpoints/step_*/trainer_state.pt >/dev/null 2>&1; then
        "$LOGICRL" "$command" --resume "$dir"
    else
        remove_unless_busy "$dir"  # a run that died before its first checkpoint
        "$LOGICRL" "$command" "$@" --out "$dir"
    fi
}
export_results() {  # export_results OUT DEST: the small files behind a result (no checkpoints) for results/
    local out=$1 dest=$2 run
    mkdir -p "$dest"
    for run in "$out"/*/; do
        run=${run%/}
        [ -f "$run/metrics.jsonl" ] || continue
        mkdir -p "$dest/$(basename "$run")"
        cp "$run/config.yaml" "$run/metrics.jsonl" "$dest/$(basename "$run")/"
        [ -f "$run/resumes.jsonl" ] && cp "$run/resumes.jsonl" "$dest/$(basename "$run")/"
        [ -d "$run/report" ] && cp "$run"/report/*.png "$run"/report/index.html "$dest/$(basename "$run")/" 2>/dev/null
    done
    for run in "$out"/eval*/; do
        [ -d "$run" ] && cp -r "${run%/}" "$dest/"
    done
    cp "$out/data/manifest.json" "$dest/data-manifest.json"
    return 0
}

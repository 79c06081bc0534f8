#!/usr/bin/env bash
# The device check of issue #19 (benchmarks/gpu_check.py) through the device tool, in two steps.
#
# 1. Here, with the network, from the repository root:   bash benchmarks/gpu_check.sh fetch
#    downloads into .whl/ (git-ignored; 2.8 MB) the wheels of what the check imports and the device machine
#    lacks: pydantic and its needs (typing-extensions too: pydantic 2.14 needs >= 4.16). Everything else it
#    imports is there (torch, transformers, peft, tokenizers, safetensors, huggingface-hub, pyyaml, tqdm, numpy,
#    pyarrow; /work/.library/device/KINDS.md). Versions: those logicrl is tested with.
# 2. On the device machine, one call of the device tool:
#      command: bash benchmarks/gpu_check.sh device      carry: [".whl"]      timeout_s: 590
#    installs the wheels into /tmp/site and runs the check with src/ on PYTHONPATH (nothing is pip-installed
#    from this repository). Rows print as they come; $OUT receives gpu_check.json, gpu_check.md and log, even
#    when the call is cut short. Options after "device" go to gpu_check.py (e.g. --runs lora --rl-tokens 128).
set -euo pipefail

WHEELS=(pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
        typing-extensions==4.16.0)

case "${1:-}" in
  fetch)
    rm -rf .whl
    "${PYTHON:-python3}" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
    du -sh .whl
    ;;
  device)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .whl/*.whl
    export PYTHONPATH="$PWD/src:/tmp/site" PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    python3 benchmarks/gpu_check.py --out "$OUT" "${@:2}" 2>&1 | tee "$OUT/log"
    ;;
  *)
    echo "usage: bash benchmarks/gpu_check.sh fetch | device [gpu_check.py options]" >&2
    exit 2
    ;;
esac

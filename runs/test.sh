#!/usr/bin/env bash
# The test suite (CPU only). Slow tests (the real default model, minutes of CPU) run with: -m slow
set -euo pipefail
cd "$(dirname "$0")/.."
bash runs/setup.sh
exec .venv/bin/python -m pytest -m "not slow" -q "$@"

"""The veRL contract, for real: build the isolated venv with PyPI ``verl`` (runs/verl_contract.sh) and run
test_verl_contract_venv.py inside it (Hydra + veRL's config checks, RLHFDataset and rollout tokens, the
reward manager, the checkpoint merger). ≈ 1 min on a 2-core machine from scratch with a warm pip cache
(≈ 25 s of it building the venv); later runs reuse the venv.

Run: .venv/bin/python -m pytest tests/integrations/test_verl_contract.py -m slow
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_verl_contract_in_its_venv() -> None:
    build = subprocess.run(["bash", str(ROOT / "runs" / "verl_contract.sh")], capture_output=True, text=True,
                           timeout=1200, cwd=ROOT)
    assert build.returncode == 0, build.stderr[-3000:]
    python = build.stdout.strip().splitlines()[-1]
    assert Path(python).is_file() and python != sys.executable
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    inner = Path(__file__).with_name("test_verl_contract_venv.py")
    command = [python, "-m", "pytest", str(inner), "-q", "-p", "no:cacheprovider", "-W", "ignore::UserWarning"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]

"""glibc's malloc told to keep freed memory: a tensor freed and made again lands on pages it already touched."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from logicrl.engine import allocator

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")

# Each round makes a 40 MiB tensor, writes it and frees it: above the largest mmap threshold glibc chooses by itself
# (32 MiB), so by default every round maps fresh pages and the kernel faults each 4 KiB page in (10,240 a round).
# With freed memory kept, the heap grows for the first few rounds (PyTorch allocates through posix_memalign, which
# asks for a little more than a block of the same size), then reuses its blocks: no new faults.
ROUNDS = """
import resource, sys, torch
from logicrl.engine.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
def round_trip():
    tensor = torch.empty(40 << 20, dtype=torch.uint8)
    tensor.fill_(1)
    del tensor
for _ in range(20):
    round_trip()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    round_trip()
print(kept, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def faults_per_round(mode: str, **env: str) -> tuple[str, float]:
    clean = {k: v for k, v in os.environ.items() if k not in allocator.USER_SETTINGS} | env
    out = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, check=True, env=clean)
    kept, faults = out.stdout.split()
    return kept, float(faults)


def test_freed_tensors_are_reused_without_page_faults():
    _, default = faults_per_round("default")
    kept, keep = faults_per_round("keep")
    assert default > 5_000  # every round faults its 10,240 pages in again
    assert kept == "True" and keep < 100  # after the warm-up rounds, none


def test_the_users_own_glibc_settings_win():
    kept, faults = faults_per_round("keep", MALLOC_TRIM_THRESHOLD_="131072")
    assert kept == "False" and faults > 5_000


def test_tcmalloc_is_found_by_either_of_its_names(monkeypatch):
    """The malloc-only library first, then the full one; None where the system has neither."""
    from ctypes import util

    libraries = {"tcmalloc": "libtcmalloc.so.4"}
    monkeypatch.setattr(util, "find_library", libraries.get)
    assert allocator.tcmalloc_library() == "libtcmalloc.so.4"
    libraries["tcmalloc_minimal"] = "libtcmalloc_minimal.so.4"
    assert allocator.tcmalloc_library() == "libtcmalloc_minimal.so.4"
    libraries.clear()
    assert allocator.tcmalloc_library() is None


# A training step of the tiny model with the fused head (bf16 autocast, as the CPU recipes train): the bits of its
# loss and gradients.
STEP = """
import hashlib, torch
from logicrl.engine.allocator import keep_freed_memory
from logicrl.engine.logprobs import fused_head_logprobs
from logicrl.models import build_tiny_model
keep_freed_memory()
torch.manual_seed(0)
model, _ = build_tiny_model()
ids = torch.randint(0, model.config.vocab_size, (3, 40))
with torch.autocast("cpu", dtype=torch.bfloat16):
    hidden = model.model(input_ids=ids).last_hidden_state
    logp, entropy = fused_head_logprobs(model.lm_head, hidden[:, :-1], ids[:, 1:], torch.ones(3, 39), 16,
                                        with_entropy=True)
(logp.sum() + 0.1 * entropy.sum()).backward()
digest = hashlib.sha256(logp.detach().float().numpy().tobytes())
for parameter in model.parameters():
    digest.update(parameter.grad.numpy().tobytes())
print(digest.hexdigest())
"""


@pytest.mark.skipif(allocator.tcmalloc_library() is None, reason="gperftools' tcmalloc is not installed here")
def test_a_step_gives_the_same_bits_with_tcmalloc_preloaded():
    """The pipeline scripts preload tcmalloc where the system has it (runs/lib.sh): where tensors live, nothing else."""
    def step(**env: str) -> str:
        clean = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"} | env
        return subprocess.run([sys.executable, "-c", STEP], capture_output=True, text=True, check=True,
                              env=clean).stdout.strip()

    assert step() == step(LD_PRELOAD=allocator.tcmalloc_library())

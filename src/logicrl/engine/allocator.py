"""glibc's malloc told to keep freed memory, for a process that frees and reallocates the same large tensors.

glibc serves a request above its mmap threshold (128 KiB at start, raised to the largest block freed so far, at most
32 MiB) with a fresh ``mmap`` and unmaps it on free, and gives the top of its heap back to the kernel (trim) once
more than twice that threshold is free there. The next tensor of the same size then lands on new pages, and the
kernel zero-fills each 4 KiB page on first touch. A decode step allocates and frees tensors like that at every
step (logits, their float32 copy, the sampler's softmax and CDF: 3 MiB each at 16 rows), and a training step far
larger ones: 16 distinct prompts × 128 sampled tokens page-faulted ≈ 80,000 times a call. `keep_freed_memory` sets
glibc's mmap threshold to 256 MiB and its trim threshold to 1 GiB (``mallopt``), so freed blocks stay in the heap
and the next tensor reuses them. The heap grows for the first few rounds of a size (PyTorch allocates through
``posix_memalign``, which asks for a little more than a freed block of the same size holds) and then stops: peak RSS
rises by a bounded amount, ≈ 0.5 GB in the quick start's RL step (docs/performance.md, "Freed memory kept").

Even so glibc's heap fragments over a training step, and its allocator and the page faults of fresh blocks still
cost seconds a step. gperftools' tcmalloc, preloaded (``LD_PRELOAD``, as PyTorch's CPU tuning guide advises), avoids
most of it: the quick start's bf16 RL step 20.6 → 17.1 s on a 2-core Intel Xeon VM (docs/performance.md, "tcmalloc
preloaded"). `tcmalloc_library` finds it where the system has it, and the pipeline scripts (runs/lib.sh) preload it
then.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (<malloc.h>)
MMAP_THRESHOLD = 256 << 20
TRIM_THRESHOLD = 1 << 30
TCMALLOC = ("tcmalloc_minimal", "tcmalloc")  # gperftools' libraries, the malloc-only one first
# glibc's own settings: a user who sets any of them has chosen, and theirs win.
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
                 "GLIBC_TUNABLES")


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (module docstring); True when both were set.

    Nothing is done (False) where the C library is not glibc, or when the environment carries glibc's own malloc
    settings (``MALLOC_*_``, ``GLIBC_TUNABLES``)."""
    if any(name in os.environ for name in USER_SETTINGS) or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def tcmalloc_library() -> str | None:
    """gperftools' tcmalloc as ``LD_PRELOAD`` takes it (``libtcmalloc_minimal.so.4``: Debian's and Ubuntu's
    ``libtcmalloc-minimal4``, or the full ``libtcmalloc``) where the system has it; None elsewhere."""
    return next(filter(None, map(ctypes.util.find_library, TCMALLOC)), None)


if __name__ == "__main__":  # runs/lib.sh: the library to preload, or nothing
    print(tcmalloc_library() or "")

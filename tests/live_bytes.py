"""`LiveBytes`: the peak of live tensor bytes during a block of CPU code, for the tests that measure memory
(tests/test_memory_plan.py, tests/engine/test_logprobs.py). tests/conftest.py puts this folder on sys.path.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class LiveBytes(TorchDispatchMode):
    """Peak bytes of live tensor storages: the ones `add`ed, and every op's outputs while the mode is on (a
    storage counts once, however many views; it leaves the count when it is freed; a oneDNN opaque tensor
    counts its elements' bytes)."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int | tuple[str, int], int] = {}
        self.current = self.peak = 0
        self._refs: list[weakref.ref] = []

    def add(self, tensor) -> None:
        if not isinstance(tensor, torch.Tensor):
            return
        if tensor.is_mkldnn:  # oneDNN's opaque (pre-packed) tensors have no storage to read: their elements
            owner, key, nbytes = tensor, ("opaque", id(tensor)), tensor.numel() * tensor.element_size()
        else:
            owner = tensor.untyped_storage()
            key, nbytes = owner.data_ptr(), owner.nbytes()
        if nbytes == 0 or key in self.live:
            return
        self.live[key] = nbytes
        self.current += nbytes
        self.peak = max(self.peak, self.current)
        self._refs.append(weakref.ref(owner, lambda _, key=key: self._free(key)))

    def _free(self, key: int | tuple[str, int]) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            self.add(tensor)
        return out

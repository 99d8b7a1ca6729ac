"""Make large CPU tensor allocations cheap: huge pages and a heap that keeps freed memory.

Vectorised ensembles and per-sample gradients allocate fresh multi-megabyte tensors at every
step (the gradients ``torch.func`` returns, the ``(B, P)`` per-sample matrix).  With the
default glibc settings each such allocation is a fresh ``mmap``: the kernel zero-fills and
maps it 4 KiB page by page, and that page-fault work, not the arithmetic, dominates a step.
Measured on the project's 2-core AMD EPYC (``benchmarks/README.md``): a
``(50, 200, 10) @ (50, 10, 200)`` batched matmul into a fresh output takes 2.0 ms, into a
reused one 0.74 ms, and 0.84 ms with both switches below.

``thermo_nb``'s own defaults do not need it: :func:`thermo_nb.per_sample_gradients` takes
its ``(B, P)`` result from :mod:`thermo_nb.runtime.output_pool`, and the fused
``EnsembleTrainer`` step allocates only small activations (its time was measured the same
with and without these switches).  It helps scripts that allocate large fresh tensors of
their own at every step (e.g. ``torch.func`` per-sample gradients).

Two process-wide switches, both standard and both reversible only by restarting Python:

* ``THP_MEM_ALLOC_ENABLE=1``: PyTorch's own switch (``c10/core/alloc_cpu.cpp``) that aligns
  CPU allocations of 2 MiB and more to huge pages and ``madvise``\\s them, so one fault maps
  2 MiB.  PyTorch reads it once, at its first allocation: it only takes effect when set
  before ``import torch``.
* glibc ``mallopt``: raise the mmap threshold to its 32 MiB maximum and the trim threshold
  to 2 GiB, so freed blocks below 32 MiB stay in the heap and the next step reuses them
  without page faults.  The price: the process does not hand freed memory back to the OS
  (its resident size stays at its peak).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's upper limit on 64-bit systems
_TRIM_THRESHOLD = 2**31 - 1
_TOP_PAD = 64 * 2**20


def tune_cpu_allocator(huge_pages: bool = True, keep_freed_memory: bool = True) -> dict:
    """Switch on huge-page CPU allocations and glibc heap reuse for this process.

    Parameters
    ----------
    huge_pages : bool
        Set ``THP_MEM_ALLOC_ENABLE=1`` (effective only if ``torch`` has not been imported
        yet in this process; child processes inherit it either way).
    keep_freed_memory : bool
        Call glibc ``mallopt`` so that freed blocks under 32 MiB are reused instead of being
        unmapped (Linux with glibc only).

    Returns
    -------
    dict
        ``{"huge_pages": bool, "keep_freed_memory": bool}``: which switch is in effect;
        ``huge_pages`` is False when torch was already imported without it.

    Notes
    -----
    Nothing changes numerically: only where tensors live in memory.  Call it first thing in
    a script (the benchmarks in ``benchmarks/`` do, for both sides of every comparison).

    Examples
    --------
    >>> from thermo_nb.runtime.cpu_allocator import tune_cpu_allocator
    >>> sorted(tune_cpu_allocator(huge_pages=False, keep_freed_memory=False))
    ['huge_pages', 'keep_freed_memory']
    """
    state = {"huge_pages": False, "keep_freed_memory": False}
    if huge_pages:
        if "torch" not in sys.modules:
            os.environ["THP_MEM_ALLOC_ENABLE"] = "1"
        state["huge_pages"] = os.environ.get("THP_MEM_ALLOC_ENABLE") == "1"
    if keep_freed_memory and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            ok = (
                libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
                and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1
                and libc.mallopt(_M_TOP_PAD, _TOP_PAD) == 1
            )
        except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
            ok = False
        state["keep_freed_memory"] = ok
    return state

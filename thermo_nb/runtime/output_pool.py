"""Large CPU results without page faults: a small pool of reusable output buffers.

A function that returns a fresh multi-megabyte tensor at every call (the ``(B, P)`` matrix
of :func:`thermo_nb.per_sample_gradients`) pays, with glibc's default settings, for an
``mmap`` of fresh memory each time: blocks above 32 MiB (glibc's largest mmap threshold)
are never reused from the heap, so every call page-faults and zero-fills the whole result
in 4 KiB pages.  Measured on the project's 2-core AMD EPYC: filling a fresh 69 MB
``torch.empty`` takes 22-32 ms, filling a reused one 3 ms.

:func:`pooled_empty` hands out such results from buffers that are kept between calls and
reused only when nothing refers to them any more, so a tensor a caller still holds is never
overwritten.  The memory is allocated by numpy, which asks the kernel for transparent huge
pages for large blocks (``madvise``), so even a first allocation faults 2 MiB at a time.

How "nothing refers to it" is decided: the pool keeps the numpy array that owns the memory;
each tensor it hands out is ``torch.from_numpy`` of a fresh numpy *view* of that array, and
the pool keeps only a weak reference to the view.  Every tensor, view, storage or numpy
array derived from the result keeps the view alive (torch's storage holds a reference to
it until the storage itself is freed), so the buffer is free exactly when that weak
reference is dead.  Total pooled memory is bounded by :data:`MAX_POOLED_BYTES`; CUDA
tensors do not need this (torch's caching allocator already reuses device memory).
"""

from __future__ import annotations

import threading
import weakref

import numpy as np
import torch

#: results smaller than this are left to torch.empty (glibc's heap reuses them already)
MIN_POOLED_BYTES = 2**20
#: most bytes the pool keeps allocated (buffers in use and free ones together)
MAX_POOLED_BYTES = 256 * 2**20
#: byte alignment of every pooled buffer (a cache line, as torch's own allocator)
ALIGNMENT = 64

_NUMPY_DTYPES = {
    torch.float16: np.float16,
    torch.float32: np.float32,
    torch.float64: np.float64,
    torch.complex64: np.complex64,
    torch.complex128: np.complex128,
}


class _Buffer:
    """One pooled block: the owning numpy array and a weak reference to the view that
    the tensor handed out last is built on (dead when that tensor is gone)."""

    __slots__ = ("owner", "nbytes", "handed_out")

    def __init__(self, nbytes: int):
        self.owner = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)
        self.nbytes = nbytes
        self.handed_out: "weakref.ref | None" = None

    def is_free(self) -> bool:
        return self.handed_out is None or self.handed_out() is None

    def hand_out(self, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
        start = -self.owner.ctypes.data % ALIGNMENT
        view = self.owner[start : start + self.nbytes].view(_NUMPY_DTYPES[dtype])
        view = view.reshape(shape)
        self.handed_out = weakref.ref(view)
        return torch.from_numpy(view)


_lock = threading.Lock()
_buffers: list = []  # least recently handed out first


def _pooled_bytes() -> int:
    return sum(b.nbytes for b in _buffers)


def _take_free_buffer(nbytes: int) -> "_Buffer | None":
    """The most recently used free buffer of exactly ``nbytes`` (likely still cached),
    removed from the list; None if there is none."""
    for i in range(len(_buffers) - 1, -1, -1):
        if _buffers[i].nbytes == nbytes and _buffers[i].is_free():
            return _buffers.pop(i)
    return None


def _make_room(nbytes: int) -> bool:
    """Drop free buffers, least recently used first, until ``nbytes`` more fit under
    :data:`MAX_POOLED_BYTES`; False if the buffers in use leave no room."""
    while _pooled_bytes() + nbytes > MAX_POOLED_BYTES:
        free = [i for i, b in enumerate(_buffers) if b.is_free()]
        if not free:
            return False
        _buffers.pop(free[0])
    return True


def pooled_empty(
    shape, dtype: torch.dtype = torch.float32, device="cpu"
) -> torch.Tensor:
    """Uninitialised tensor like ``torch.empty(shape)``, from a reusable buffer on the CPU.

    Parameters
    ----------
    shape : tuple of int
    dtype : torch.dtype
        Pooled for float16/32/64 and complex64/128; other dtypes get ``torch.empty``.
    device : str or torch.device
        Anything but the CPU gets ``torch.empty`` (CUDA's caching allocator reuses memory
        already).

    Returns
    -------
    torch.Tensor
        Contiguous, uninitialised.  Large CPU results (at least :data:`MIN_POOLED_BYTES`)
        live in a buffer that a later call reuses only after every tensor, view, storage
        and numpy array made from this one has been freed; the buffer's storage is not
        resizable (``resize_`` to a larger size raises).

    Examples
    --------
    >>> a = pooled_empty((512, 1024))
    >>> b = pooled_empty((512, 1024))   # a is still alive: b gets other memory
    >>> a.data_ptr() != b.data_ptr()
    True
    >>> ptr = b.data_ptr(); del b
    >>> pooled_empty((512, 1024)).data_ptr() == ptr   # b is gone: its buffer is reused
    True
    """
    shape = tuple(int(s) for s in shape)
    device = torch.device(device)
    numel = int(np.prod(shape, dtype=np.int64))
    nbytes = numel * torch.empty((), dtype=dtype).element_size()
    if device.type != "cpu" or dtype not in _NUMPY_DTYPES or nbytes < MIN_POOLED_BYTES:
        return torch.empty(shape, dtype=dtype, device=device)
    with _lock:  # check-and-hand-out is atomic, so two threads never share a buffer
        buf = _take_free_buffer(nbytes)
        if buf is None:
            buf = _Buffer(nbytes)
            if not _make_room(nbytes):  # too much in use: a plain huge-page allocation
                return buf.hand_out(shape, dtype)
        _buffers.append(buf)
        return buf.hand_out(shape, dtype)


def clear_output_pool() -> int:
    """Release the pool's free buffers to the operating system; returns the bytes freed.

    Buffers still referenced by a live tensor stay (they are released when the pool next
    needs room after that tensor is gone).
    """
    with _lock:
        free = [b for b in _buffers if b.is_free()]
        _buffers[:] = [b for b in _buffers if not b.is_free()]
        return sum(b.nbytes for b in free)

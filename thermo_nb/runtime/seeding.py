"""Seeding every random number generator from one integer."""

from __future__ import annotations

import random

import numpy as np


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, numpy and torch (CPU and CUDA) and return a numpy ``Generator``.

    With the same seed, CPU computations in this package are bit-identical across runs
    (checked in ``tests/test_runtime.py``). On CUDA, some kernels are non-deterministic;
    results then agree to floating-point tolerance only.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch

        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    return np.random.default_rng(seed)

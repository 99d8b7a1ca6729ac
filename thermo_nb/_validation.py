"""Input checks shared by every estimator and process (one module, like scikit-learn's
``utils.validation``).  Each raises ``ValueError`` naming the argument and what is allowed.

Part of the bottom layer: imports numpy and torch, nothing else of ``thermo_nb``.
"""

from __future__ import annotations

import math

import numpy as np


def positive_int(value, name: str, low: int = 1) -> int:
    """``value`` as an ``int >= low`` (bools refused)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < low
    ):
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def positive_float(value, name: str) -> float:
    """``value`` as a finite ``float > 0`` (bools refused)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.floating, np.integer))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def positive_array(name: str, x) -> np.ndarray:
    """``x`` as a float array whose every element is finite and > 0."""
    x = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ValueError(f"{name} must be finite and > 0")
    return x


def per_coordinate(value, name: str, d: int, like):
    """A positive scalar or a length-``d`` vector, as a tensor broadcastable to (n, d) with
    the dtype and device of the tensor ``like``."""
    import torch

    v = torch.as_tensor(
        np.asarray(value, dtype=np.float64)
        if not isinstance(value, torch.Tensor)
        else value,
        dtype=like.dtype,
        device=like.device,
    )
    if v.ndim > 1 or (v.ndim == 1 and v.shape[0] not in (1, d)):
        raise ValueError(
            f"{name} must be a positive scalar or a vector of length d={d}, "
            f"got shape {tuple(v.shape)}"
        )
    if not torch.isfinite(v).all() or (v <= 0).any():
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return v

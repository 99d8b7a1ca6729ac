r"""The 3-D sphere toy of the free-energy paper: projected SGD on :math:`S^2` with a
scale-invariant per-sample loss, a whole learning-rate grid (times replicas) at once.

Following ``toy/3D-sphere.ipynb`` of Sadrtdinov et al. (arXiv:2505.23489): a parameter
:math:`x \in \mathbb R^3` on the unit sphere, data points :math:`d_i` and the
per-sample loss

.. math:: \ell_i(x) = \frac{(x\cdot d_i)^2}{\|x\|^2}, \qquad
          L(x) = \frac1n\sum_i \ell_i(x),

trained by SGD with batch size 1 (here any B, drawn with replacement) followed by the
radial projection ``x <- x / |x|``.  On the unit sphere

.. math:: \nabla\ell_i(x) = 2 (x\cdot d_i)\,\bigl(d_i - (x\cdot d_i)\,x\bigr),

which is already tangent (the loss is scale-invariant), so the projected step is the
paper's ``x <- x - eta P_x grad l`` with ``riemann_opt=False``.

* **OP** (two points, :data:`OP_POINTS`): both losses vanish at :math:`\pm e_z`, SGD can
  interpolate and every per-sample gradient vanishes there.
* **UP** (three points at 120 degrees, :data:`UP_POINTS`): no common zero; the minimum is
  at :math:`\pm e_z` with :math:`L_{\min} = 0.04/1.04`, where the full gradient vanishes
  but the per-sample ones do not (SNR -> 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from .._validation import positive_int

OP_POINTS = np.array(
    [[math.sqrt(3) / 2, 0.5, 0.0], [math.sqrt(3) / 2, -0.5, 0.0]], dtype=np.float64
)
"""The paper's over-parameterised data set: 2 unit vectors in the x-y plane."""

_UP_RAW = np.array(
    [[math.cos(a), math.sin(a), 0.2] for a in np.deg2rad([0.0, 120.0, 240.0])]
)
UP_POINTS = _UP_RAW / np.linalg.norm(_UP_RAW, axis=1, keepdims=True)
"""The paper's under-parameterised data set: (cos t, sin t, 0.2)/norm, t = 0, 120, 240 deg."""

UP_MIN_LOSS = 0.04 / 1.04
"""Minimum of the UP full loss, reached at x = +-e_z: (0.2)^2 / (1 + 0.2^2)."""

X0 = np.array([-0.8, 0.6, 0.1]) / np.linalg.norm([-0.8, 0.6, 0.1])
"""The paper's initial point (the same for every learning rate)."""


def sphere_toy_points(kind: str) -> np.ndarray:
    """Data set of the toy: ``"op"`` (2 points) or ``"up"`` (3 points), shape (n, 3)."""
    if kind not in ("op", "up"):
        raise ValueError(f"kind must be 'op' or 'up', got {kind!r}")
    return (OP_POINTS if kind == "op" else UP_POINTS).copy()


def paper_lr_grid() -> np.ndarray:
    """The paper's 80 learning rates from 1e-3 to 10 (``toy/3D-sphere.ipynb``)."""
    return np.concatenate(
        [
            np.logspace(-3, 0, 32)[:-1],
            np.logspace(0, math.log10(2.5), 33)[:-1],
            np.logspace(math.log10(2.5), 1, 17),
        ]
    )


def toy_losses_and_gradients(x: torch.Tensor, points: torch.Tensor):
    r"""Per-sample losses and (tangent) gradients at unit vectors ``x``.

    Parameters
    ----------
    x : tensor (..., 3)
        Points on the unit sphere.
    points : tensor (n, 3)
        The data :math:`d_i`.

    Returns
    -------
    losses : tensor (..., n)
        :math:`\ell_i(x) = (x\cdot d_i)^2` (|x| = 1).
    grads : tensor (..., n, 3)
        :math:`2 (x\cdot d_i)(d_i - (x\cdot d_i) x)`.

    Notes
    -----
    Closed forms of the toy's loss on :math:`S^2`; see the module docstring.
    """
    proj = x @ points.T  # (..., n)
    grads = 2 * proj[..., None] * (points - proj[..., None] * x[..., None, :])
    return proj**2, grads


def toy_gradient_statistics(x: torch.Tensor, points: torch.Tensor, batch_size: int = 1):
    r"""Full gradient norm, mean stochastic-gradient norm and SNR of the toy at ``x``.

    Parameters
    ----------
    x : tensor (..., 3) on the unit sphere
    points : tensor (n, 3)
    batch_size : int >= 1
        Size B of the minibatches (drawn with replacement).

    Returns
    -------
    dict of tensors (...)
        ``loss`` :math:`L(x)`, ``full_grad_norm`` :math:`\|\bar g\|`,
        ``stoch_grad_mean_norm`` :math:`\mathbb E\|g_i\|` (B = 1) and ``snr``
        :math:`\|\bar g\| / (\mathbb E_B\|g_B - \bar g\|^2)^{1/2}` with
        :math:`\mathbb E_B\|g_B-\bar g\|^2 = \frac1{B}\frac1n\sum_i\|g_i-\bar g\|^2`.

    Notes
    -----
    Exact expectations over the n data points (no sampling).  For the OP set and B = 1
    the SNR is the paper's :math:`\|g_1+g_2\|/\|g_1-g_2\|`.
    """
    b = positive_int(batch_size, "batch_size")
    losses, grads = toy_losses_and_gradients(x, points)
    gbar = grads.mean(dim=-2)
    dev2 = ((grads - gbar[..., None, :]) ** 2).sum(-1).mean(-1) / b
    full = gbar.norm(dim=-1)
    rms = dev2.sqrt()
    return {
        "loss": losses.mean(-1),
        "full_grad_norm": full,
        "stoch_grad_mean_norm": grads.norm(dim=-1).mean(-1),
        # 0/0 (every per-sample gradient exactly 0, e.g. after OP convergence) is NaN
        "snr": torch.where(
            rms > 0,
            full / rms.clamp_min(1e-300),
            torch.where(full > 0, torch.inf, torch.nan),
        ),
    }


def simulate_sphere_toy(
    points,
    lrs: Sequence[float],
    n_steps: int,
    *,
    n_replicas: int = 1,
    batch_size: int = 1,
    momentum: float = 0.0,
    record_steps: "Sequence[int] | None" = None,
    x0=X0,
    seed: int = 0,
    window: int = 0,
    window_replicas: int = 1,
) -> dict:
    r"""Projected SGD on the toy for a grid of learning rates and replicas, vectorised.

    Parameters
    ----------
    points : array (n, 3)
        Data set (:func:`sphere_toy_points`).
    lrs : sequence of floats > 0
        Learning rates :math:`\eta` (L of them).
    n_steps : int >= 1
        SGD steps.
    n_replicas : int >= 1
        Independent noise realisations per learning rate (R), all from ``x0``.
    batch_size : int >= 1
        Minibatch size B, indices drawn i.i.d. with replacement (the paper: 1).
    momentum : float in [0, 1)
        Heavy-ball momentum (``torch.optim.SGD`` convention; buffer in ambient
        coordinates), 0 in the paper.
    record_steps : sequence of int in [0, n_steps], optional
        Steps after which the state is recorded (default: 0 and ``n_steps``).
    x0 : array (3,)
        Initial point (normalised), shared by all trajectories (the paper's ``X0``).
    seed : int >= 0
        Seed of the minibatch indices.
    window : int >= 0
        If > 0, also keep the last ``window`` consecutive iterates before every record
        step (the paper's entropy window) of the first ``window_replicas`` replicas of
        each learning rate; record steps earlier than ``window`` get NaN windows.
    window_replicas : int in [1, n_replicas]

    Returns
    -------
    dict
        ``steps`` (K,), ``x`` (K, L, R, 3) float64 positions, ``loss``,
        ``full_grad_norm``, ``stoch_grad_mean_norm``, ``snr`` (K, L, R) at the recorded
        steps (exact expectations over the data, :func:`toy_gradient_statistics`),
        ``lrs`` (L,) and, with ``window``, ``windows`` (K, L, window_replicas, window, 3).

    Notes
    -----
    One step for every trajectory: draw B indices, ``g = mean_b grad l_{i_b}(x)``,
    ``v = mu v + g`` (``v = g`` when mu = 0), ``x <- (x - eta v) / |x - eta v|``.
    Float64 throughout; about 20 tensor operations per step for all L x R trajectories.

    Examples
    --------
    >>> out = simulate_sphere_toy(sphere_toy_points("up"), [0.01, 0.1], 2000)
    >>> out["x"].shape
    (2, 2, 1, 3)
    """
    n_steps = positive_int(n_steps, "n_steps")
    r = positive_int(n_replicas, "n_replicas")
    b = positive_int(batch_size, "batch_size")
    if not (0.0 <= float(momentum) < 1.0):
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
    eta = np.asarray(lrs, dtype=np.float64).reshape(-1)
    if eta.size < 1 or not np.all(np.isfinite(eta)) or np.any(eta <= 0):
        raise ValueError("lrs must be a non-empty sequence of finite floats > 0")
    pts = torch.as_tensor(np.asarray(points, dtype=np.float64))
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must have shape (n, 3), got {tuple(pts.shape)}")
    rec = sorted(
        {0, n_steps} if record_steps is None else {int(s) for s in record_steps}
    )
    if rec[0] < 0 or rec[-1] > n_steps:
        raise ValueError("record_steps must lie in [0, n_steps]")
    start = torch.as_tensor(np.asarray(x0, dtype=np.float64))
    start = start / start.norm()
    x = start.expand(eta.size, r, 3).clone()
    lr_t = torch.as_tensor(eta)[:, None, None]
    gen = torch.Generator().manual_seed(int(seed))
    n = pts.shape[0]
    v = torch.zeros_like(x)
    inv_b = torch.full((1, 1, 1), 1.0 / b, dtype=torch.float64)
    records = {
        k: [] for k in ("x", "loss", "full_grad_norm", "stoch_grad_mean_norm", "snr")
    }

    def record():
        stats = toy_gradient_statistics(x, pts, b)
        records["x"].append(x.clone())
        for k, val in stats.items():
            records[k].append(val)

    w = int(window)
    rw = positive_int(window_replicas, "window_replicas")
    if w < 0 or rw > r:
        raise ValueError("window must be >= 0 and window_replicas <= n_replicas")
    windows = (
        torch.full((len(rec), eta.size, rw, w, 3), torch.nan, dtype=torch.float64)
        if w
        else None
    )
    rec_set = set(rec)
    if 0 in rec_set:
        record()
    for t in range(1, n_steps + 1):
        idx = torch.randint(n, (eta.size, r, b), generator=gen)
        # batch gradient = sum_i (count_i / B) grad l_i: per-sample gradients of the n
        # points (cheap, n <= 3) weighted by how often each was drawn
        proj = x @ pts.T  # (L, R, n)
        grads = 2 * proj[..., None] * (pts - proj[..., None] * x[..., None, :])
        weights = torch.zeros(eta.size, r, n, dtype=x.dtype).scatter_add_(
            2, idx, inv_b.expand(eta.size, r, b)
        )
        g = (weights.unsqueeze(-2) @ grads).squeeze(-2)
        if momentum > 0:
            v = momentum * v + g if t > 1 else g
            g = v
        x = x - lr_t * g
        x = x / x.norm(dim=-1, keepdim=True)
        if windows is not None:
            for k, t_rec in enumerate(rec):
                if t_rec - w < t <= t_rec and t_rec >= w:
                    windows[k, :, :, w - 1 - (t_rec - t)] = x[:, :rw]
        if t in rec_set:
            record()
    out = {k: torch.stack(vals).numpy() for k, vals in records.items()}
    out["steps"] = np.array(rec)
    out["lrs"] = eta
    if windows is not None:
        out["windows"] = windows.numpy()
    return out

r"""Inferring the temperature of a learning rate from stationary (S, U) pairs.

The free-energy paper (Sadrtdinov, Klimov, Lobacheva, Vetrov, arXiv:2505.23489) posits
that SGD at a fixed learning rate :math:`\eta` settles where the free energy

.. math:: F_T(\eta') = U(\eta') - T\,S(\eta')                                   (F)

is minimal over the learning-rate grid for :math:`T = T(\eta)`: :math:`U` is the
stationary training loss and :math:`S` the entropy of the stationary weight distribution.
Given measured pairs :math:`(S_i, U_i)` the condition "point i minimises :math:`F_T`"
bounds the temperature of point i by the secants to every other point
(``free_energy.ipynb``, ``calculate_temps`` of the authors' code):

.. math:: \max_{j:\,S_j<S_i}\frac{U_i-U_j-\varepsilon}{S_i-S_j}
          \;\le\; T_i \;\le\;
          \min_{j:\,S_j>S_i}\frac{U_j-U_i+\varepsilon}{S_j-S_i}            (T)

with a slack :math:`\varepsilon \ge 0` and :math:`T_i \ge 0`.  An empty side takes the
other side's bound; the point estimate is the geometric mean of the two bounds.  A point
has a non-empty interval iff it lies on the lower convex hull of the :math:`(S, U)` cloud (up to
:math:`\varepsilon`), and then :math:`T_i` is the hull's slope :math:`dU/dS` there; all
points can be minimisers only if :math:`U(S)` is convex and increasing.

Before the intervals the paper smooths :math:`U` and :math:`S` over neighbouring learning
rates with a triangular kernel of half-width 0.3 in :math:`\ln\eta`
(:func:`smooth_in_log_lr`), and it fits :math:`T \approx b\,\eta^k` in log-log coordinates
without the first and last grid points.

Differences from the paper's code, on purpose: the paper orders the other points by
*learning rate* (j > i means "larger S"); here they are ordered by the measured S, which
is the exact minimiser condition and coincides with the paper's whenever S increases
with :math:`\eta`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class TemperatureIntervals(NamedTuple):
    """Result of :func:`temperature_intervals` (arrays of the points' length)."""

    t_low: np.ndarray
    """Lower bound of T for each point (secants to points of smaller S)."""
    t_high: np.ndarray
    """Upper bound of T for each point (secants to points of larger S)."""
    temperature: np.ndarray
    """Geometric mean of the bounds; NaN where the interval is empty or not positive."""
    consistent: np.ndarray
    """True where ``t_low <= t_high`` and ``t_high > 0``: the point minimises F_T for
    some T > 0 (within the slack)."""


def _as_1d(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if a.size < 2 or not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must hold at least 2 finite numbers, got {x!r}")
    return a


def smooth_in_log_lr(lrs, values, half_width: float = 0.3) -> np.ndarray:
    r"""Triangular-kernel smoothing of a quantity over neighbouring learning rates.

    Parameters
    ----------
    lrs : array (n,) of floats > 0
        The learning-rate grid :math:`\eta_i`.
    values : array (n,) or (n, ...)
        Quantity measured at each learning rate (e.g. U or S).
    half_width : float > 0
        Half-width of the kernel in :math:`\ln\eta` (the paper: 0.3).

    Returns
    -------
    numpy.ndarray
        :math:`\bar v = W v`, :math:`W_{ij}\propto\max(h-|\ln\eta_i-\ln\eta_j|, 0)`, rows
        normalised; the first and last rows are left unsmoothed (identity), as in the
        authors' ``free_energy.ipynb``.

    Notes
    -----
    On a uniform grid in :math:`\ln\eta` the symmetric kernel leaves a function linear in
    :math:`\ln\eta` unchanged at interior points.
    """
    log_lr = np.log(_as_1d(lrs, "lrs"))
    if np.any(np.diff(log_lr) <= 0):
        raise ValueError("lrs must be strictly increasing")
    v = np.asarray(values, dtype=np.float64)
    if v.shape[0] != log_lr.size:
        raise ValueError(f"values must have {log_lr.size} rows, got shape {v.shape}")
    if not half_width > 0:
        raise ValueError(f"half_width must be > 0, got {half_width!r}")
    w = np.maximum(half_width - np.abs(log_lr[:, None] - log_lr[None, :]), 0.0)
    w /= w.sum(axis=1, keepdims=True)
    w[0], w[-1] = 0.0, 0.0
    w[0, 0], w[-1, -1] = 1.0, 1.0
    return np.tensordot(w, v, axes=(1, 0))


def temperature_intervals(S, U, slack: float = 0.0) -> TemperatureIntervals:
    r"""The paper's interval (convex-hull) estimate of :math:`T` at each (S, U) point.

    Parameters
    ----------
    S : array (n,)
        Stationary entropies (nats; a constant common to all points drops out).
    U : array (n,)
        Stationary losses (nats).
    slack : float >= 0
        :math:`\varepsilon` of eq. (T) (the paper: 1e-2 to 4e-2 nats); it widens every
        interval to absorb measurement noise in U.

    Returns
    -------
    TemperatureIntervals
        ``t_low``, ``t_high``, ``temperature`` (geometric mean) and ``consistent``.

    Notes
    -----
    Eq. (T) of the module docstring: point i minimises :math:`F_T = U - T S` over the
    points iff :math:`T(S_j - S_i) \le U_j - U_i` for all j.  Points with equal S bound
    nothing.  As in the paper's code, the lower bound is at least 0, and a lower bound of 0
    (no point of smaller S, or only non-positive secants) is replaced by the upper bound; a
    missing upper bound (no point of larger S) by the lower bound.

    References
    ----------
    I. Sadrtdinov, I. Klimov, E. Lobacheva, D. Vetrov, "SGD as Free Energy Minimization:
    A Thermodynamic View on Neural Network Training", arXiv:2505.23489 (2025);
    code ``isadrtdinov/sgd-free-energy``, ``free_energy.ipynb`` (``calculate_temps``).

    Examples
    --------
    >>> S = np.array([0.0, 1.0, 2.0]); U = S ** 2          # convex: dU/dS = 2 S
    >>> iv = temperature_intervals(S, U)
    >>> iv.t_low.tolist(), iv.t_high.tolist()
    ([1.0, 1.0, 3.0], [1.0, 3.0, 3.0])
    """
    s, u = _as_1d(S, "S"), _as_1d(U, "U")
    if s.size != u.size:
        raise ValueError(f"S and U must have the same length, got {s.size}, {u.size}")
    if not (np.isfinite(slack) and slack >= 0):
        raise ValueError(f"slack must be a finite float >= 0, got {slack!r}")
    ds = s[None, :] - s[:, None]  # ds[i, j] = S_j - S_i
    du = u[None, :] - u[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        upper = np.where(ds > 0, (du + slack) / ds, np.inf)
        lower = np.where(ds < 0, (du + slack) / ds, -np.inf)  # (U_i-U_j-eps)/(S_i-S_j)
    t_high = upper.min(axis=1)
    t_low = np.maximum(lower.max(axis=1), 0.0)  # T >= 0: a missing lower bound is 0
    t_low = np.where(t_low == 0.0, t_high, t_low)
    t_high = np.where(np.isposinf(t_high), t_low, t_high)
    consistent = np.isfinite(t_low) & (t_high > 0) & (t_low <= t_high)
    with np.errstate(invalid="ignore", divide="ignore"):
        temp = np.where(consistent, np.sqrt(np.abs(t_low * t_high)), np.nan)
    return TemperatureIntervals(t_low, t_high, temp, consistent)


def infer_temperature(
    lrs,
    U,
    S,
    *,
    slack: float = 0.0,
    half_width: "float | None" = 0.3,
    lr_range: "tuple[float, float] | None" = None,
) -> dict:
    r"""The paper's whole procedure: smooth in :math:`\ln\eta`, restrict, intervals.

    Parameters
    ----------
    lrs : array (n,), strictly increasing
    U, S : arrays (n,)
        Stationary loss and entropy at each learning rate (NaN entries are dropped).
    slack : float >= 0
        :math:`\varepsilon` of eq. (T).
    half_width : float > 0 or None
        Smoothing half-width in :math:`\ln\eta` (the paper: 0.3); ``None`` = no smoothing.
    lr_range : (low, high), optional
        Keep :math:`low \le \eta < high` after smoothing (the paper's per-model range).

    Returns
    -------
    dict
        ``lrs``, ``U``, ``S`` (smoothed, restricted), ``t_low``, ``t_high``,
        ``temperature``, ``consistent`` (see :func:`temperature_intervals`).

    Notes
    -----
    Smoothing (:func:`smooth_in_log_lr`) is applied to the finite points over the full
    grid, before the restriction, as in the authors' notebook.

    References
    ----------
    arXiv:2505.23489, ``free_energy.ipynb`` (see :func:`temperature_intervals`).
    """
    eta = np.asarray(lrs, dtype=np.float64).reshape(-1)
    u = np.asarray(U, dtype=np.float64).reshape(-1)
    s = np.asarray(S, dtype=np.float64).reshape(-1)
    if not (eta.size == u.size == s.size):
        raise ValueError("lrs, U and S must have the same length")
    ok = np.isfinite(eta) & np.isfinite(u) & np.isfinite(s)
    eta, u, s = eta[ok], u[ok], s[ok]
    if eta.size < 2:
        raise ValueError("need at least 2 finite (lr, U, S) points")
    if half_width is not None:
        u, s = (
            smooth_in_log_lr(eta, u, half_width),
            smooth_in_log_lr(eta, s, half_width),
        )
    if lr_range is not None:
        keep = (eta >= lr_range[0]) & (eta < lr_range[1])
        eta, u, s = eta[keep], u[keep], s[keep]
        if eta.size < 2:
            raise ValueError(f"fewer than 2 points in lr_range {lr_range}")
    iv = temperature_intervals(s, u, slack)
    return {"lrs": eta, "U": u, "S": s, **iv._asdict()}


def trajectory_temperature(U, S, lag: int = 4) -> np.ndarray:
    r"""Temperature along one run, :math:`T(t) = dU/dS` by centred finite differences.

    Parameters
    ----------
    U, S : arrays (n,)
        Loss and entropy at consecutive log points of one training run.
    lag : int >= 1
        Half-width of the difference (the paper: 4 log points).

    Returns
    -------
    numpy.ndarray (n,)
        :math:`T_t = (U_{t+lag}-U_{t-lag})/(S_{t+lag}-S_{t-lag})` for
        ``lag <= t < n - lag``, NaN elsewhere (and where the entropy does not change).

    Notes
    -----
    The paper's "OP temperature decay": at small learning rates an over-parameterised net
    never becomes stationary; loss and entropy keep falling and their ratio tends to 0.

    References
    ----------
    arXiv:2505.23489, ``free_energy.ipynb`` ("OP Temperature Decay").
    """
    u = np.asarray(U, dtype=np.float64).reshape(-1)
    s = np.asarray(S, dtype=np.float64).reshape(-1)
    if u.size != s.size:
        raise ValueError("U and S must have the same length")
    if isinstance(lag, bool) or not isinstance(lag, (int, np.integer)) or lag < 1:
        raise ValueError(f"lag must be an int >= 1, got {lag!r}")
    out = np.full(u.size, np.nan)
    if u.size > 2 * lag:
        du = u[2 * lag :] - u[: -2 * lag]
        ds = s[2 * lag :] - s[: -2 * lag]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[lag:-lag] = np.where(ds != 0, du / ds, np.nan)
    return out


def free_energy_curves(U, S, temperatures) -> np.ndarray:
    r""":math:`F_T(\eta_i) = U_i - T S_i` for several temperatures.

    Parameters
    ----------
    U, S : arrays (n,)
    temperatures : array (m,)

    Returns
    -------
    numpy.ndarray (m, n)
        One free-energy curve per temperature (nats, up to T times the entropy constant).

    Notes
    -----
    Eq. (F) of the module docstring; ``argmin`` along axis 1 gives the minimiser of each
    curve, which should be the learning rate whose inferred temperature is T.
    """
    u, s = np.asarray(U, dtype=np.float64), np.asarray(S, dtype=np.float64)
    t = np.asarray(temperatures, dtype=np.float64).reshape(-1, 1)
    return u[None, :] - t * s[None, :]


def window_graph_entropies(windows, k: int = 50, intrinsic_dim: "int | None" = None):
    r"""The k-NN-graph-length entropy of many windows at once (same formula as
    :func:`thermo_nb.knn_graph_entropy`), for small windows in few dimensions.

    Parameters
    ----------
    windows : array (..., N, P)
        Independent windows of N samples each (e.g. the iterates of every learning rate
        and replica of the sphere toy).
    k : int, 2 <= k <= N
        Edges per point counting the zero self-distance (the paper: 50).
    intrinsic_dim : int, optional
        The d of the formula (default P; the sphere toy: 2).

    Returns
    -------
    numpy.ndarray (...)
        :math:`S_K = d[\log L_K - \frac{d-1}{d}\log N]` per window, nats (constant
        dropped); ``-inf`` for a collapsed window (all distances 0), NaN for a window
        holding NaN.

    Notes
    -----
    Exact distances by ``torch.cdist`` in float64 on the CPU, all windows in one batch;
    see :func:`thermo_nb.knn_graph_entropy` for the estimator and its reference
    (Hero & Michel 1999; arXiv:2505.23489).
    """
    import torch

    w = torch.as_tensor(np.asarray(windows, dtype=np.float64))
    if w.ndim < 2:
        raise ValueError(f"windows must have shape (..., N, P), got {tuple(w.shape)}")
    n, p = int(w.shape[-2]), int(w.shape[-1])
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= n:
        raise ValueError(f"k must be an int in [2, N={n}], got {k!r}")
    d = p if intrinsic_dim is None else int(intrinsic_dim)
    flat = w.reshape(-1, n, p)
    bad = ~torch.isfinite(flat).all(dim=(1, 2))
    flat = torch.where(bad[:, None, None], 0.0, flat)
    dist = torch.cdist(flat, flat)  # (B, N, N)
    smallest = dist.topk(int(k), dim=-1, largest=False).values  # self-distance included
    length = smallest.sum(dim=(1, 2)).numpy()
    with np.errstate(divide="ignore"):
        ent = d * (np.log(length) - (d - 1.0) / d * np.log(n))
    ent[bad.numpy()] = np.nan
    return ent.reshape(w.shape[:-2])

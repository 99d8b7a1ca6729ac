r"""The isotropic-noise model of the ideal-gas paper (arXiv 2511.07308, ``VMF.ipynb``).

A scale-invariant toy "network": :math:`x \in \mathbb R^D`, loss

.. math:: L(x) = 1 + \langle\mu, x/\|x\|\rangle, \qquad \nabla L = P_x\mu/\|x\|,

with :math:`P_x = I - \hat x\hat x^\top`, minimum 0 at :math:`\hat x = -\mu`, and a
stochastic gradient :math:`g = \nabla L + \sigma P_x\xi/\|x\|`, :math:`\xi\sim N(0, I_D)`
(isotropic tangent noise of variance :math:`\sigma^2` per dimension on the unit sphere).
Three protocols (``opt_mode`` of the paper's ``train.py``), each run for a whole grid of
hyperparameters and ``n_replicas`` replicas per grid point as **one** vectorised ensemble:

* ``fixed_elr``: :math:`x \leftarrow x - \eta\|x\|^2(g + \lambda x)`, the per-step
  learning rate recomputed from the current norm (grid: :math:`\eta\times\lambda`);
* ``fixed_lr``: :math:`x \leftarrow x - \eta(g + \lambda x)` (grid: :math:`\eta\times
  \lambda`);
* ``fixed_sphere``: :math:`x \leftarrow x - \eta r_0^2 g`, then
  :math:`x \leftarrow r_0 x/\|x\|` (no weight decay; grid: :math:`\eta\times r_0`). The
  pressure is measured from the norm after the step and before the projection.

Two optimisers beyond the paper (its open question) share the same code path:
heavy-ball momentum ``momentum=beta`` (PyTorch convention :math:`v \leftarrow \beta v + g
+ \lambda x`, :math:`x \leftarrow x - \text{lr}\,v`) and ``optimizer="adamw"``
(Adam with decoupled weight decay, :math:`x \leftarrow x - \text{lr}(\hat m/
(\sqrt{\hat v}+\epsilon) + \lambda x)`).

The minimum direction is :math:`-\mu = e_{D-1}` (the model is rotation invariant), placed
where the hyperspherical angles of :func:`thermo_nb.estimators.knn.hyperspherical_angles`
are regular (all :math:`\varphi_k = \pi/2` except the last, 0), so the k-NN entropy in
angle coordinates is not distorted by the coordinate poles.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from .._validation import positive_float, positive_int

PROTOCOLS = ("fixed_elr", "fixed_lr", "fixed_sphere")
OPTIMIZERS = ("sgd", "adamw")

__all__ = [
    "PROTOCOLS",
    "IsotropicGasRun",
    "simulate_isotropic_gas",
    "isotropic_minimum_direction",
    "stationary_sphere_entropies",
]


class IsotropicGasRun(NamedTuple):
    """Result of :func:`simulate_isotropic_gas` (numpy arrays; grid axes ``(n_a, n_b)``).

    ``a`` is the learning-rate axis (:math:`\\eta` or the ELR), ``b`` the weight decay
    (``fixed_elr``/``fixed_lr``) or the sphere radius :math:`r_0` (``fixed_sphere``).
    Stationary quantities are time averages over the last ``n_steps - burn_in`` steps:
    ``*_mean`` over replicas, ``*_se`` the standard error across the (independent)
    replicas.
    """

    protocol: str
    dim: int
    sigma: float
    a: np.ndarray
    b: np.ndarray
    r2_mean: np.ndarray
    r2_se: np.ndarray
    r4_mean: np.ndarray
    r4_se: np.ndarray
    energy_mean: np.ndarray
    energy_se: np.ndarray
    grad_sq_mean: np.ndarray
    grad_sq_se: np.ndarray
    pressure_mean: np.ndarray
    pressure_se: np.ndarray
    drift_z: np.ndarray
    drift_rel: np.ndarray
    snapshots: np.ndarray
    history_steps: np.ndarray
    history_r2: np.ndarray
    history_r4: np.ndarray
    history_energy: np.ndarray
    n_replicas: int
    n_steps: int
    burn_in: int
    momentum: float
    optimizer: str


def isotropic_minimum_direction(dim: int, dtype=torch.float64, device=None):
    """The minimum :math:`-\\mu = e_{D-1}` of the isotropic model (returns :math:`\\mu`)."""
    mu = torch.zeros(dim, dtype=dtype, device=device)
    mu[dim - 2] = -1.0
    return mu


def _batch_se(per_replica: torch.Tensor) -> torch.Tensor:
    n = per_replica.shape[-1]
    return per_replica.std(dim=-1, unbiased=True) / math.sqrt(n)


def simulate_isotropic_gas(
    protocol: str,
    a_values,
    b_values,
    *,
    dim: int,
    sigma: float = 1.0,
    n_replicas: int = 256,
    n_steps: int = 10000,
    burn_in: int | None = None,
    n_snapshots: int = 8,
    n_history: int = 200,
    radius0: float = 1.0,
    momentum: float = 0.0,
    optimizer: str = "sgd",
    adam_betas: tuple = (0.9, 0.999),
    adam_eps: float = 1e-8,
    seed: int = 0,
    device=None,
    dtype=torch.float64,
) -> IsotropicGasRun:
    r"""Simulate the isotropic-noise model for a hyperparameter grid as one ensemble.

    Parameters
    ----------
    protocol : {"fixed_elr", "fixed_lr", "fixed_sphere"}
    a_values : sequence of float
        Learning rates :math:`\eta` (``fixed_lr``) or effective learning rates (the others).
    b_values : sequence of float
        Weight decays :math:`\lambda` or, for ``fixed_sphere``, radii :math:`r_0`.
    dim : int >= 2
        Ambient dimension ``D``.
    sigma : float
        Noise level :math:`\sigma` (per dimension, on the unit sphere).
    n_replicas : int
        Independent replicas per grid point.
    n_steps, burn_in : int
        Total steps and the steps discarded before the stationary averages
        (default ``n_steps // 2``).
    n_snapshots : int
        Positions stored per replica, evenly spaced over the stationary window (for the
        entropy: ``n_snapshots * n_replicas`` samples per grid point).
    n_history : int
        Number of (log-spaced) times at which replica means of :math:`r^2`,
        :math:`r^4` and the loss are recorded (relaxation curves).
    radius0 : float
        Initial norm (``fixed_elr``/``fixed_lr``); the direction starts uniform.
    momentum : float in [0, 1)
        Heavy-ball momentum (``optimizer="sgd"``).
    optimizer : {"sgd", "adamw"}
    adam_betas, adam_eps : Adam's constants (``optimizer="adamw"``).
    seed : int
    device : torch device or None
    dtype : torch dtype

    Returns
    -------
    IsotropicGasRun

    Notes
    -----
    Stationary predictions: :mod:`thermo_nb.theory.ideal_gas` (vMF direction with
    :math:`\kappa = 1/T`, :math:`T=\eta_\text{eff}\sigma^2/2`; :math:`r^2 = (D-1)T/\lambda`).
    The unit-sphere gradient :math:`g_\text{unit} = \|x\|g` is recorded as
    ``grad_sq_mean`` :math:`=\mathbb E\|g_\text{unit}\|^2`. Pressure (``fixed_sphere``):
    :math:`p = (\|x'\| - r_0)/(\eta r_0^3)` with :math:`x'` the point after the step and
    before the projection (paper's ``running_radius``).

    References
    ----------
    arXiv:2511.07308, code ``isadrtdinov/neural-nets-ideal-gas``, ``notebooks/VMF.ipynb``.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    dim = positive_int(dim, "dim", low=2)
    n_replicas = positive_int(n_replicas, "n_replicas", low=2)
    n_steps = positive_int(n_steps, "n_steps", low=2)
    sigma = positive_float(sigma, "sigma")
    burn_in = n_steps // 2 if burn_in is None else int(burn_in)
    if not 0 <= burn_in < n_steps - 1:
        raise ValueError(f"burn_in must be in [0, n_steps - 1), got {burn_in}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    a = np.asarray(a_values, dtype=float).ravel()
    b = np.asarray(b_values, dtype=float).ravel()
    if (a <= 0).any() or (b <= 0).any():
        raise ValueError("grid values must be positive")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    n_a, n_b = a.size, b.size
    n_grid = n_a * n_b
    aa = torch.as_tensor(np.repeat(a, n_b), dtype=dtype, device=dev).view(-1, 1, 1)
    bb = torch.as_tensor(np.tile(b, n_a), dtype=dtype, device=dev).view(-1, 1, 1)
    mu = isotropic_minimum_direction(dim, dtype, dev)

    x = torch.randn(n_grid, n_replicas, dim, generator=gen, dtype=dtype, device=dev)
    x = x / x.norm(dim=-1, keepdim=True)
    x = x * (bb if protocol == "fixed_sphere" else radius0)
    buf = torch.zeros_like(x) if (momentum > 0 or optimizer == "adamw") else None
    sq = torch.zeros_like(x) if optimizer == "adamw" else None
    wd = torch.zeros_like(bb) if protocol == "fixed_sphere" else bb

    n_window = n_steps - burn_in
    snap_at = set(
        (burn_in + np.linspace(0, n_window - 1, n_snapshots).round()).astype(int)
    )
    hist_at = set(
        np.unique(np.geomspace(1, n_steps, n_history).round().astype(int) - 1)
    )
    half = burn_in + n_window // 2
    shape = (2, n_grid, n_replicas)
    acc = {
        k: torch.zeros(shape, dtype=dtype, device=dev)
        for k in ("r2", "r4", "u", "g2", "p")
    }
    counts = [0, 0]
    snaps, h_steps, h_r2, h_r4, h_u = [], [], [], [], []
    b1, b2 = adam_betas

    for t in range(n_steps):
        r2 = (x * x).sum(-1, keepdim=True)
        r = r2.sqrt()
        xhat = x / r
        cos = xhat @ mu  # <mu, xhat>, shape (G, R)
        xi = torch.randn(x.shape, generator=gen, dtype=dtype, device=dev)
        g_unit = mu + sigma * xi
        g_unit = g_unit - (g_unit * xhat).sum(-1, keepdim=True) * xhat
        grad = g_unit / r
        if protocol == "fixed_elr":
            lr = aa * r2
        elif protocol == "fixed_lr":
            lr = aa
        else:
            lr = aa * bb * bb
        if optimizer == "adamw":
            buf.mul_(b1).add_(grad, alpha=1 - b1)
            sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            m_hat = buf / (1 - b1 ** (t + 1))
            v_hat = sq / (1 - b2 ** (t + 1))
            x_new = x - lr * (m_hat / (v_hat.sqrt() + adam_eps) + wd * x)
        elif momentum > 0:
            buf.mul_(momentum).add_(grad + wd * x)
            x_new = x - lr * buf
        else:
            x_new = x - lr * (grad + wd * x)
        if t >= burn_in:
            i = 0 if t < half else 1
            counts[i] += 1
            r2s = r2.squeeze(-1)
            acc["r2"][i] += r2s
            acc["r4"][i] += r2s * r2s
            acc["u"][i] += 1.0 + cos
            acc["g2"][i] += (g_unit * g_unit).sum(-1)
            if protocol == "fixed_sphere":
                p = (x_new.norm(dim=-1) - bb.squeeze(-1)) / (
                    aa.squeeze(-1) * bb.squeeze(-1) ** 3
                )
                acc["p"][i] += p
            if t in snap_at:
                snaps.append(x.to(torch.float32 if dim > 3 else dtype).clone())
        if t in hist_at:
            h_steps.append(t)
            r2s = r2.squeeze(-1)
            h_r2.append(r2s.mean(-1))
            h_r4.append((r2s * r2s).mean(-1))
            h_u.append((1.0 + cos).mean(-1))
        x = x_new
        if protocol == "fixed_sphere":
            x = x * (bb / x.norm(dim=-1, keepdim=True))

    def stat(key):
        halves = acc[key] / torch.tensor(counts, dtype=dtype, device=dev).view(2, 1, 1)
        per_rep = (acc[key][0] + acc[key][1]) / sum(counts)
        mean = per_rep.mean(-1)
        se = _batch_se(per_rep)
        drift = halves[1].mean(-1) - halves[0].mean(-1)
        drift_se = torch.sqrt(_batch_se(halves[0]) ** 2 + _batch_se(halves[1]) ** 2)
        return mean, se, drift, drift_se

    def np2(t):
        return t.detach().cpu().numpy().reshape(n_a, n_b)

    out = {}
    drift_z, drift_rel = [], []
    for key in ("r2", "r4", "u", "g2", "p"):
        mean, se, drift, drift_se = stat(key)
        out[key] = (np2(mean), np2(se))
        if key in ("r2", "u"):
            drift_z.append(np2((drift / drift_se.clamp_min(1e-300)).abs()))
            drift_rel.append(np2((drift / mean.abs().clamp_min(1e-300)).abs()))
    snap = torch.stack(snaps, dim=2)  # (G, R, S, D)
    snap = snap.reshape(n_a, n_b, n_replicas * len(snaps), dim).cpu().numpy()
    hist = torch.stack(h_r2, -1).cpu().numpy().reshape(n_a, n_b, -1)
    return IsotropicGasRun(
        protocol=protocol,
        dim=dim,
        sigma=sigma,
        a=a,
        b=b,
        r2_mean=out["r2"][0],
        r2_se=out["r2"][1],
        r4_mean=out["r4"][0],
        r4_se=out["r4"][1],
        energy_mean=out["u"][0],
        energy_se=out["u"][1],
        grad_sq_mean=out["g2"][0],
        grad_sq_se=out["g2"][1],
        pressure_mean=out["p"][0]
        if protocol == "fixed_sphere"
        else np.full_like(out["p"][0], np.nan),
        pressure_se=out["p"][1]
        if protocol == "fixed_sphere"
        else np.full_like(out["p"][1], np.nan),
        drift_z=np.maximum(*drift_z),
        drift_rel=np.maximum(*drift_rel),
        snapshots=snap,
        history_steps=np.asarray(h_steps),
        history_r2=hist,
        history_r4=torch.stack(h_r4, -1).cpu().numpy().reshape(n_a, n_b, -1),
        history_energy=torch.stack(h_u, -1).cpu().numpy().reshape(n_a, n_b, -1),
        n_replicas=n_replicas,
        n_steps=n_steps,
        burn_in=burn_in,
        momentum=float(momentum),
        optimizer=optimizer,
    )


def stationary_sphere_entropies(snapshots, n_groups: int = 4, k: int = 1):
    r"""KL entropies (paper's estimator) of every grid point's stationary samples.

    Parameters
    ----------
    snapshots : ndarray, shape (n_a, n_b, N, D)
        Samples per grid point (``IsotropicGasRun.snapshots``).
    n_groups : int
        The samples are split into this many interleaved groups; the standard error of the
        full-sample estimate is ``std(group estimates) / sqrt(n_groups)``.
    k : int
        Neighbour order (the paper: 1).

    Returns
    -------
    dict of ndarray, shape (n_a, n_b)
        ``sphere``, ``full`` (:math:`S_\text{sphere} + (D-1)\log\bar r`), their standard
        errors ``sphere_se``, ``full_se``, and ``mean_radius``.

    Notes
    -----
    Uses :func:`thermo_nb.estimators.knn.sphere_kl_entropy` (Kozachenko-Leonenko in
    hyperspherical angles plus the Jacobian term, arXiv:2511.07308 ``entropy.py``).
    Replicas are independent; snapshots of one replica are spaced over the stationary
    window. Non-finite rows (diverged replicas) are dropped; fewer than
    ``4 * n_groups`` finite rows give NaN.
    """
    from ..estimators.knn import sphere_kl_entropy

    s = np.asarray(snapshots)
    n_a, n_b, n, _ = s.shape
    res = {k_: np.zeros((n_a, n_b)) for k_ in ("sphere", "full", "mean_radius")}
    res["sphere_se"] = np.zeros((n_a, n_b))
    res["full_se"] = np.zeros((n_a, n_b))
    for i in range(n_a):
        for j in range(n_b):
            w = torch.as_tensor(s[i, j], dtype=torch.float64)
            w = w[torch.isfinite(w).all(dim=1)]
            if w.shape[0] < 4 * n_groups:  # diverged replicas: no estimate
                for key in res:
                    res[key][i, j] = np.nan
                continue
            e = sphere_kl_entropy(w, k=k)
            res["sphere"][i, j] = e.sphere
            res["full"][i, j] = e.full
            res["mean_radius"][i, j] = e.mean_radius
            groups = [sphere_kl_entropy(w[g::n_groups], k=k) for g in range(n_groups)]
            sd = np.std([g.sphere for g in groups], ddof=1)
            sdf = np.std([g.full for g in groups], ddof=1)
            res["sphere_se"][i, j] = sd / math.sqrt(n_groups)
            res["full_se"][i, j] = sdf / math.sqrt(n_groups)
    return res

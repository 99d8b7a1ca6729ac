r"""Stationarity gate and steady-state entropy production from the probability current.

Trajectory convention: ``Z`` has shape ``(n_times, n_replicas, k)``, recorded every
``dt`` (one SGD step, or one epoch), coordinates already centred or not.

* :func:`stationarity_gate` decides, **before** any steady-state estimate, whether an
  ensemble is stationary over a window: the drift of the ensemble mean across the window,
  in units of the ensemble's own spread (a Mahalanobis length), and the relative drift of
  the covariance between the two halves of the window, each with a replica-bootstrap
  standard error. Both must lie below stated thresholds.
* :func:`areal_velocity_matrix` measures the circulation of a NESS, the stochastic area
  swept per unit time in every coordinate plane,
  :math:`\Omega_{ij} = \langle\delta z_i\Delta z_j - \delta z_j\Delta z_i\rangle/(2dt)`,
  :math:`\delta z = z - \langle z\rangle` (Adhikari et al. 2023, their "stochastic area
  matrix").
* :func:`entropy_production_from_current`: for a linear (Ornstein-Uhlenbeck) NESS
  :math:`dz = -Az\,dt + \sqrt{2D}\,dW` with stationary covariance :math:`C`, the mean local
  velocity is :math:`\nu(z) = j/p = -\Omega C^{-1}\delta z` with :math:`\Omega = (AC-CA^\top)/2`
  equal to the areal-velocity matrix, and the steady-state entropy production rate
  (seed 000 sec. 4.2, :math:`\int j^\top D^{-1} j / p`) is

  .. math:: \sigma = \langle \nu^\top D^{-1}\nu\rangle = -\mathrm{tr}(\Omega D^{-1}\Omega C^{-1})

  (Adhikari et al. 2023, eq. 29 of arXiv 2306.03521 v1).  Every factor is measured from the
  trajectories (:math:`\Omega`, :math:`C`) or from the noise (:math:`D`), none from the
  loss landscape.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "stationarity_gate",
    "areal_velocity_matrix",
    "entropy_production_from_current",
    "stochastic_entropy_production_from_current",
    "fit_linear_chain",
    "gaussian_chain_entropy_production",
    "linear_chain_statistics",
    "linear_chain_from_statistics",
]


def _as_traj(Z) -> np.ndarray:
    if hasattr(Z, "detach"):
        Z = Z.detach().cpu().numpy()
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim == 2:
        Z = Z[:, :, None]
    if Z.ndim != 3 or Z.shape[0] < 4 or Z.shape[1] < 4:
        raise ValueError(
            f"Z must have shape (n_times >= 4, n_replicas >= 4, k), got {np.shape(Z)}"
        )
    if not np.all(np.isfinite(Z)):
        raise ValueError("Z must be finite")
    return Z


def _half_stats(Z: np.ndarray):
    K = Z.shape[0]
    halves = (Z[: K // 2], Z[K // 2 :])
    return [(h.shape[0], h.sum(0), np.einsum("tmi,tmj->mij", h, h)) for h in halves]


def _gate_statistics(stats, w) -> tuple[float, float]:
    means, covs, n_tot, s_tot, S_tot = [], [], 0.0, 0.0, 0.0
    for n, s, S in stats:
        nn = n * w.sum()
        m = w @ s / nn
        means.append(m)
        covs.append(np.einsum("m,mij->ij", w, S) / nn - np.outer(m, m))
        n_tot, s_tot = n_tot + nn, s_tot + w @ s
        S_tot = S_tot + np.einsum("m,mij->ij", w, S)
    mu = s_tot / n_tot
    C = S_tot / n_tot - np.outer(mu, mu)
    dm = means[1] - means[0]
    mean_shift = float(np.sqrt(dm @ np.linalg.solve(C, dm)))
    cov_drift = float(np.linalg.norm(covs[1] - covs[0]) / np.linalg.norm(C))
    return mean_shift, cov_drift


def stationarity_gate(
    Z,
    mean_tol: float = 0.2,
    cov_tol: float = 0.1,
    n_boot: int = 100,
    seed: int = 0,
) -> dict:
    r"""Is the ensemble stationary across the window? Decide before estimating a NESS EP.

    Parameters
    ----------
    Z : array, shape (n_times, n_replicas, k)
        Ensemble trajectories over the window (e.g. projected on a k-dim subspace).
    mean_tol : float
        Largest allowed drift of the ensemble mean across the window, in units of the
        ensemble spread: :math:`\sqrt{\Delta m^\top C^{-1}\Delta m}`, :math:`\Delta m` the
        ensemble-and-time mean over the second half of the window minus that over the
        first half, :math:`C` the pooled covariance. (A drift velocity ``v`` moves the
        mean by about ``v K / 2`` between the halves.)
    cov_tol : float
        Largest allowed relative covariance drift
        :math:`\|C_2 - C_1\|_F / \|C\|_F` between the two halves of the window.
    n_boot : int
        Replica-bootstrap resamples for the standard errors.

    Returns
    -------
    dict
        ``mean_shift``, ``mean_shift_se``, ``cov_drift``, ``cov_drift_se`` (bootstrap s.e.
        over replicas), ``passed`` (both statistics below their thresholds) and the
        thresholds.

    Notes
    -----
    Both statistics are positive even for a stationary ensemble (sampling noise of order
    :math:`\sqrt{k/M_{\rm eff}}`); the thresholds must sit well above that floor, which the
    returned s.e. shows. A loss plateau is not a stationarity test: the parameters can drift
    (weight-norm growth of cross-entropy on separable data) while the loss barely moves.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.random.default_rng(0).standard_normal((50, 400, 2))
    >>> stationarity_gate(Z)["passed"]
    True
    >>> stationarity_gate(Z + np.linspace(0, 1, 50)[:, None, None])["passed"]
    False
    """
    Z = _as_traj(Z)
    stats = _half_stats(Z)
    M = Z.shape[1]
    ms, cd = _gate_statistics(stats, np.ones(M))
    g = np.random.default_rng(seed)
    boot = np.array(
        [
            _gate_statistics(stats, np.bincount(g.integers(0, M, M), minlength=M))
            for _ in range(int(n_boot))
        ]
    )
    return dict(
        mean_shift=ms,
        mean_shift_se=float(boot[:, 0].std(ddof=1)),
        cov_drift=cd,
        cov_drift_se=float(boot[:, 1].std(ddof=1)),
        mean_tol=float(mean_tol),
        cov_tol=float(cov_tol),
        passed=bool(ms <= mean_tol and cd <= cov_tol),
    )


def areal_velocity_matrix(Z, dt: float = 1.0, center=None) -> np.ndarray:
    r"""Areal velocity (stochastic area per unit time) of stationary trajectories.

    :math:`\Omega_{ij} = \frac{1}{2\,dt}\langle \delta z_i(t)\,\delta z_j(t+dt) -
    \delta z_j(t)\,\delta z_i(t+dt)\rangle`, averaged over replicas and times,
    :math:`\delta z = z - c` with ``c`` the pooled mean (or ``center``). Antisymmetric;
    zero in equilibrium (detailed balance), :math:`(AC - CA^\top)/2` for a linear NESS.

    Parameters
    ----------
    Z : array, shape (n_times, n_replicas, k)
    dt : float, time between records
    center : array (k,), optional

    Returns
    -------
    ndarray (k, k)
    """
    Z = _as_traj(Z)
    c = Z.reshape(-1, Z.shape[2]).mean(0) if center is None else np.asarray(center)
    a, b = (Z[:-1] - c).reshape(-1, Z.shape[2]), (Z[1:] - c).reshape(-1, Z.shape[2])
    S = a.T @ b / a.shape[0]
    return (S - S.T) / (2.0 * dt)


def entropy_production_from_current(Omega, D, C) -> float:
    r"""Steady-state entropy production rate :math:`-\mathrm{tr}(\Omega D^{-1}\Omega C^{-1})`.

    Parameters
    ----------
    Omega : (k, k) antisymmetric areal-velocity (circulation) matrix, per unit time
    D : (k, k) diffusion matrix per unit time (half the noise covariance per step)
    C : (k, k) stationary covariance

    Returns
    -------
    float, nats per unit time (>= 0).

    Notes
    -----
    :math:`\sigma=\int j^\top D^{-1} j/p\,dz` with :math:`j/p = -\Omega C^{-1}\delta z`
    (seed 000 sec. 4.2; Adhikari et al. 2023, eq. 29).

    Examples
    --------
    >>> import numpy as np
    >>> entropy_production_from_current(np.zeros((2, 2)), np.eye(2), np.eye(2)) == 0
    True
    """
    Om = np.atleast_2d(np.asarray(Omega, dtype=float))
    D = np.atleast_2d(np.asarray(D, dtype=float))
    C = np.atleast_2d(np.asarray(C, dtype=float))
    return float(-np.trace(Om @ np.linalg.solve(D, Om) @ np.linalg.inv(C)))


def stochastic_entropy_production_from_current(Z, Omega, D, C, center=None):
    r"""Per-step stochastic entropy production along stationary trajectories.

    :math:`\sigma_k = \nu(z_k)^\top D^{-1}\Delta z_k`, :math:`\nu = -\Omega C^{-1}\delta z`
    (Adhikari et al. 2023, their single-step ``ep``; pre-point product). Its mean is
    :func:`entropy_production_from_current` per step; its distribution is what the
    integral and detailed fluctuation theorems are checked on.

    Returns
    -------
    ndarray, shape (n_times - 1, n_replicas), nats.
    """
    Z = _as_traj(Z)
    c = Z.reshape(-1, Z.shape[2]).mean(0) if center is None else np.asarray(center)
    nu = -(Z[:-1] - c) @ np.linalg.solve(np.atleast_2d(C), np.asarray(Omega).T)
    Dinv = np.linalg.inv(np.atleast_2d(D))
    return np.einsum("tmi,ij,tmj->tm", nu, Dinv, np.diff(Z, axis=0))


def fit_linear_chain(Z) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Least-squares fit of the Gauss-Markov chain :math:`\delta z' = A\,\delta z + \xi`,
    :math:`\xi\sim N(0, Q)`, to stationary trajectories (pooled over replicas and times).

    Returns
    -------
    (A, Q, center): the transition matrix, the residual (noise) covariance per record
    interval and the pooled mean. With them,
    :func:`thermo_nb.dynamics.sgd_linear.linear_chain_entropy_production_per_step` gives
    a data-only estimate of the stationary EP per record interval (exact for a linear
    Gaussian chain; Roldan & Parrondo 2012), and ``Q / 2`` is the diffusion matrix that
    :func:`entropy_production_from_current` needs.
    """
    Z = _as_traj(Z)
    k = Z.shape[2]
    c = Z.reshape(-1, k).mean(0)
    a, b = (Z[:-1] - c).reshape(-1, k), (Z[1:] - c).reshape(-1, k)
    A = np.linalg.lstsq(a, b, rcond=None)[0].T
    res = b - a @ A.T
    return A, np.cov(res, rowvar=False), c


def gaussian_chain_entropy_production(Z, A, Q, center) -> np.ndarray:
    r"""Stochastic entropy production of each step of stationary trajectories under the
    Gaussian chain ``(A, Q)`` with its stationary density :math:`N(c, C)`:
    :math:`\ln\frac{p(z)K(z'|z)}{p(z')K(z|z')}`, shape (n_times - 1, n_replicas), nats.
    Its integral and detailed fluctuation theorems hold exactly when the chain is the
    true dynamics (Seifert 2005; reference note sec. 1.4)."""
    from scipy import linalg

    Z = _as_traj(Z) - np.asarray(center)
    C = linalg.solve_discrete_lyapunov(A, Q)
    Qi, Ci = np.linalg.inv(Q), np.linalg.inv(0.5 * (C + C.T))

    def quad(u, M):
        return np.einsum("...i,ij,...j->...", u, M, u)

    z0, z1 = Z[:-1], Z[1:]
    fwd = quad(z1 - z0 @ A.T, Qi)
    bwd = quad(z0 - z1 @ A.T, Qi)
    return 0.5 * (bwd - fwd) + 0.5 * (quad(z1, Ci) - quad(z0, Ci))


def linear_chain_statistics(Z) -> dict:
    """Per-replica sufficient statistics of one-step pairs (for fast replica bootstraps):
    ``n`` pairs per replica, sums ``sa, sb`` (M, k) and moments ``Saa, Sab, Sbb``
    (M, k, k) of ``a = z_t``, ``b = z_{t+1}``."""
    Z = _as_traj(Z)
    a, b = Z[:-1], Z[1:]
    return dict(
        n=a.shape[0],
        sa=a.sum(0),
        sb=b.sum(0),
        Saa=np.einsum("tmi,tmj->mij", a, a),
        Sab=np.einsum("tmi,tmj->mij", a, b),
        Sbb=np.einsum("tmi,tmj->mij", b, b),
    )


def linear_chain_from_statistics(stats: dict, weights=None) -> dict:
    r"""The fitted chain of :func:`fit_linear_chain` (pooled mean ``c``) from
    :func:`linear_chain_statistics`, replicas weighted by ``weights`` (bootstrap counts).

    Returns
    -------
    dict: ``A``, ``Q`` (residual covariance), ``C`` (pooled covariance of the pairs'
    first members), ``Omega`` (areal velocity per interval), ``center``.
    """
    M = stats["sa"].shape[0]
    w = np.ones(M) if weights is None else np.asarray(weights, dtype=float)
    n = stats["n"] * w.sum()
    sa, sb = w @ stats["sa"] / n, w @ stats["sb"] / n
    Saa = np.einsum("m,mij->ij", w, stats["Saa"]) / n
    Sab = np.einsum("m,mij->ij", w, stats["Sab"]) / n
    Sbb = np.einsum("m,mij->ij", w, stats["Sbb"]) / n
    c = 0.5 * (sa + sb)
    Caa = Saa - np.outer(sa, c) - np.outer(c, sa) + np.outer(c, c)
    Cab = Sab - np.outer(sa, c) - np.outer(c, sb) + np.outer(c, c)
    Cbb = Sbb - np.outer(sb, c) - np.outer(c, sb) + np.outer(c, c)
    A = np.linalg.solve(Caa, Cab).T
    Q = Cbb - A @ Cab - Cab.T @ A.T + A @ Caa @ A.T
    return dict(
        A=A, Q=0.5 * (Q + Q.T), C=Caa, Omega=0.5 * (Cab - Cab.T), center=c
    )  # fmt: skip

r"""SGD on a quadratic loss as a discrete linear Gaussian process.

Near a minimum, ``L(theta) = 1/2 theta^T H theta`` (linear regression is exactly quadratic),
and with the Gaussian model of minibatch noise (covariance ``Sigma / B`` of the minibatch
gradient around the full gradient) one SGD step is the AR(1) process

    theta_{k+1} = A theta_k + xi_k,     A = I - eta H,     xi_k ~ N(0, Q),  Q = eta^2 Sigma / B.

Everything about its entropy production is then Gaussian and exact:

* stationary covariance: ``C = A C A^T + Q`` (discrete Lyapunov equation);
* stationary entropy production per step (the kernel-ratio EP of Seifert's section 1.4 in
  discrete time, averaged): the Kullback-Leibler divergence between the forward and the
  time-reversed pair statistics,
  ``sigma_step = KL( N(0, G_f) || N(0, G_r) ) = 1/2 [tr(G_r^{-1} G_f) - 2d]``, with
  ``G_f = [[C, C A^T], [A C, C]]`` and ``G_r = [[C, A C], [C A^T, C]]``
  (Roldan & Parrondo, PRE 85, 031129 (2012), eq. 3, for a Gauss-Markov chain);
* its small-step limit is the linear SDE ``d theta = -eta H theta dt + sqrt(2 D) dW`` with
  ``D = eta^2 Sigma / (2B)`` per unit time = one step, whose NESS entropy production rate is
  ``tr[(A_c - D C^{-1})^T D^{-1} (A_c - D C^{-1}) C]`` (``A_c = eta H``; see
  :func:`thermo_nb.linear_sde_entropy_production_rate`); it vanishes iff
  ``H Sigma = Sigma H`` (Chaudhari & Soatto, arXiv 1710.11029, sec. 5).

The probability current of the NESS is ``j(x) = (-A_c + D C^{-1}) x p(x)``.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

__all__ = [
    "sgd_quadratic_linear_process",
    "discrete_lyapunov_covariance",
    "linear_chain_entropy_production_per_step",
    "linear_sde_probability_current",
    "simulate_linear_chain",
    "linear_regression_gradient_noise_covariance",
    "commutator_norm",
    "linear_regression_sgd",
    "linear_chain_mean_squared_distance",
    "linear_chain_gaussian_moments",
]


def _mat(name: str, M, d: int | None = None) -> np.ndarray:
    if hasattr(M, "detach"):
        M = M.detach().cpu().numpy()
    M = np.atleast_2d(np.asarray(M, dtype=float))
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {M.shape}")
    if d is not None and M.shape[0] != d:
        raise ValueError(f"{name} must be {d}x{d}, got {M.shape}")
    if not np.all(np.isfinite(M)):
        raise ValueError(f"{name} must be finite")
    return M


def sgd_quadratic_linear_process(H, Sigma, lr: float, batch_size: int):
    """Transition matrix and noise covariance of SGD on ``L = 1/2 theta^T H theta``.

    Parameters
    ----------
    H : (d, d) symmetric positive semi-definite Hessian
    Sigma : (d, d) per-sample gradient-noise covariance at the minimum
    lr : float > 0, learning rate eta
    batch_size : int >= 1, B (Gaussian noise model: covariance Sigma / B)

    Returns
    -------
    A : (d, d) array, ``I - eta H``
    Q : (d, d) array, ``eta^2 Sigma / B``

    Examples
    --------
    >>> A, Q = sgd_quadratic_linear_process([[2.0]], [[1.0]], 0.1, 4)
    >>> round(float(A[0, 0]), 12), round(float(Q[0, 0]), 12)
    (0.8, 0.0025)
    """
    H = _mat("H", H)
    Sigma = _mat("Sigma", Sigma, H.shape[0])
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    d = H.shape[0]
    return np.eye(d) - lr * H, lr**2 * Sigma / batch_size


def discrete_lyapunov_covariance(A, Q) -> np.ndarray:
    """Stationary covariance C of ``x' = A x + N(0, Q)``: ``C = A C A^T + Q``.

    Raises ValueError if the chain is not stable (spectral radius of A >= 1).

    Examples
    --------
    >>> float(discrete_lyapunov_covariance([[0.5]], [[0.75]])[0, 0])
    1.0
    """
    A = _mat("A", A)
    Q = _mat("Q", Q, A.shape[0])
    rho = np.max(np.abs(np.linalg.eigvals(A)))
    if rho >= 1:
        raise ValueError(
            f"A must have spectral radius < 1 for a stationary state, got {rho:.4g}"
            " (flat directions diffuse freely; the lr may be above 2/lambda_max)"
        )
    C = linalg.solve_discrete_lyapunov(A, Q)
    return 0.5 * (C + C.T)


def linear_chain_entropy_production_per_step(A, Q) -> float:
    r"""Exact stationary entropy production per step of ``x' = A x + N(0, Q)``, in nats.

    Parameters
    ----------
    A : (d, d) stable transition matrix
    Q : (d, d) positive-definite noise covariance

    Returns
    -------
    float
        ``<ln[p(x) K(x'|x) / (p(x') K(x|x'))]>`` in the stationary state (nats per step);
        zero iff the chain is reversible (``A C = C A^T``).

    Notes
    -----
    With :math:`G_f = [[C, CA^T],[AC, C]]` and :math:`G_r = [[C, AC],[CA^T, C]]`,
    :math:`\sigma = \tfrac12[\mathrm{tr}(G_r^{-1}G_f) - 2d]` (the log-determinants cancel).
    Per-trajectory this is the average of the kernel-ratio medium entropy
    (:func:`thermo_nb.medium_entropy_kernel_ratio` with ``step_mean = A x``, ``step_cov = Q``);
    in the stationary state the system entropy
    does not change on average.

    Examples
    --------
    >>> round(linear_chain_entropy_production_per_step([[0.5]], [[1.0]]), 12)  # 1-D: reversible
    0.0
    """
    A = _mat("A", A)
    Q = _mat("Q", Q, A.shape[0])
    if np.min(np.linalg.eigvalsh(0.5 * (Q + Q.T))) <= 0:
        raise ValueError(
            "Q must be positive definite (the EP is infinite in noiseless "
            "directions; project onto the noise support first)"
        )
    C = discrete_lyapunov_covariance(A, Q)
    d = A.shape[0]
    Gf = np.block([[C, C @ A.T], [A @ C, C]])
    Gr = np.block([[C, A @ C], [C @ A.T, C]])
    val = 0.5 * (np.trace(np.linalg.solve(Gr, Gf)) - 2 * d)
    return float(max(val, 0.0)) if val > -1e-10 else float(val)


def linear_sde_probability_current(A, D, points) -> tuple[np.ndarray, np.ndarray]:
    """Stationary density and probability current of ``dx = -A x dt + sqrt(2D) dW``.

    Parameters
    ----------
    A : (d, d) stable drift matrix; D : (d, d) positive-definite diffusion matrix
    points : (n, d) positions

    Returns
    -------
    p : (n,) stationary density N(0, C), with A C + C A^T = 2D
    j : (n, d) current ``j = (-A + D C^{-1}) x p(x)`` (zero everywhere iff equilibrium)
    """
    A = _mat("A", A)
    D = _mat("D", D, A.shape[0])
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != A.shape[0]:
        raise ValueError(
            f"points must have shape (n, {A.shape[0]}), got {points.shape}"
        )
    C = linalg.solve_continuous_lyapunov(A, 2 * D)
    C = 0.5 * (C + C.T)
    Ci = np.linalg.inv(C)
    d = A.shape[0]
    quad = np.einsum("ni,ij,nj->n", points, Ci, points)
    p = np.exp(-0.5 * quad) / np.sqrt((2 * np.pi) ** d * np.linalg.det(C))
    v = points @ (-A + D @ Ci).T
    return p, v * p[:, None]


def simulate_linear_chain(
    A,
    Q,
    x0,
    n_steps: int,
    generator: np.random.Generator,
    record_every: int = 1,
    record_at=None,
) -> np.ndarray:
    """Simulate ``x_{k+1} = A x_k + N(0, Q)`` for an ensemble.

    Parameters
    ----------
    A, Q : (d, d) arrays (Q positive semi-definite)
    x0 : (n_traj, d) initial states
    n_steps : int >= 1
    generator : numpy Generator
    record_every : int >= 1, keep every k-th state
    record_at : sorted integer steps in [0, n_steps], optional
        Keep exactly these steps instead (e.g. log-spaced); overrides ``record_every``.

    Returns
    -------
    (n_records, n_traj, d) array of states (``n_steps // record_every + 1`` records, or
    ``len(record_at)``)
    """
    A = _mat("A", A)
    Q = _mat("Q", Q, A.shape[0])
    x = np.array(x0, dtype=float)
    if x.ndim != 2 or x.shape[1] != A.shape[0]:
        raise ValueError(f"x0 must have shape (n_traj, {A.shape[0]}), got {x.shape}")
    if n_steps < 1 or record_every < 1:
        raise ValueError("n_steps and record_every must be >= 1")
    w, V = np.linalg.eigh(0.5 * (Q + Q.T))
    L = V * np.sqrt(np.clip(w, 0, None))
    keep = None if record_at is None else set(int(k) for k in record_at)
    if keep is not None and (min(keep) < 0 or max(keep) > n_steps):
        raise ValueError(f"record_at must lie in [0, n_steps={n_steps}]")
    out = [x.copy()] if keep is None or 0 in keep else []
    for k in range(n_steps):
        x = x @ A.T + generator.standard_normal(x.shape) @ L.T
        if (keep is None and (k + 1) % record_every == 0) or (
            keep is not None and k + 1 in keep
        ):
            out.append(x.copy())
    return np.stack(out)


def linear_chain_mean_squared_distance(a, q, s0_sq: float, steps) -> np.ndarray:
    r"""Exact E ||x_t - x_0||^2 for a diagonal chain x' = a x + N(0, diag q), x_0 ~ N(0, s0_sq I).

    Per coordinate: :math:`(a^t - 1)^2 s_0^2 + q (1 - a^{2t})/(1 - a^2)`, and
    :math:`q t` for a flat direction (a = 1: free diffusion).

    Parameters
    ----------
    a, q : (d,) arrays (|a| <= 1, q >= 0); s0_sq : float >= 0; steps : array of t >= 0

    Returns
    -------
    (len(steps),) array

    Examples
    --------
    >>> float(linear_chain_mean_squared_distance([1.0], [0.5], 1.0, [4])[0])   # q t
    2.0
    """
    a = np.asarray(a, dtype=float)[None, :]
    q = np.asarray(q, dtype=float)[None, :]
    t = np.asarray(steps, dtype=float)[:, None]
    if np.any(np.abs(a) > 1) or np.any(q < 0) or s0_sq < 0 or np.any(t < 0):
        raise ValueError("need |a| <= 1, q >= 0, s0_sq >= 0 and steps >= 0")
    at = a**t
    flat = np.isclose(a, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        stiff = np.where(flat, q * t, q * (1 - at**2) / (1 - a**2))
    return ((at - 1) ** 2 * s0_sq + stiff).sum(axis=1)


def linear_regression_gradient_noise_covariance(features, targets, theta) -> np.ndarray:
    r"""Per-sample gradient covariance of the squared loss at ``theta``.

    ``l_i = 1/2 (x_i^T theta - y_i)^2``, ``g_i = x_i (x_i^T theta - y_i)``;
    ``Sigma = (1/N) sum_i g_i g_i^T - g g^T`` (Chaudhari & Soatto 2018, eq. 5). For batches
    of size B drawn with replacement the minibatch-gradient covariance is ``Sigma / B``.

    Parameters
    ----------
    features : (N, d); targets : (N,); theta : (d,)

    Returns
    -------
    (d, d) array
    """
    Xf = np.asarray(features, dtype=float)
    y = np.asarray(targets, dtype=float)
    th = np.asarray(theta, dtype=float)
    if Xf.ndim != 2 or y.shape != (Xf.shape[0],) or th.shape != (Xf.shape[1],):
        raise ValueError(
            f"shapes must be features (N, d), targets (N,), theta (d,); got "
            f"{Xf.shape}, {y.shape}, {th.shape}"
        )
    g = Xf * (Xf @ th - y)[:, None]
    gm = g.mean(axis=0)
    return g.T @ g / Xf.shape[0] - np.outer(gm, gm)


def commutator_norm(H, Sigma) -> float:
    """Relative Frobenius norm ``||H Sigma - Sigma H|| / (||H|| ||Sigma||)`` (0 = commuting)."""
    H = _mat("H", H)
    Sigma = _mat("Sigma", Sigma, H.shape[0])
    c = H @ Sigma - Sigma @ H
    return float(np.linalg.norm(c) / (np.linalg.norm(H) * np.linalg.norm(Sigma)))


def linear_regression_sgd(
    features,
    targets,
    theta0,
    lr: float,
    batch_size: int,
    n_steps: int,
    generator: np.random.Generator,
    record_every: int = 1,
) -> np.ndarray:
    """Plain minibatch SGD on ``L = (1/2N) sum_i (x_i^T theta - y_i)^2`` for many replicas.

    Each replica draws its own minibatch of ``batch_size`` indices with replacement at every
    step: ``theta <- theta - lr * (1/B) sum_{i in b} x_i (x_i^T theta - y_i)``. The noise is
    the real (state-dependent) minibatch noise, not the Gaussian model.

    Parameters
    ----------
    features : (N, d); targets : (N,); theta0 : (n_rep, d)
    lr : float > 0; batch_size : int >= 1; n_steps : int >= 1
    generator : numpy Generator; record_every : int >= 1

    Returns
    -------
    (n_steps // record_every + 1, n_rep, d) array
    """
    Xf = np.asarray(features, dtype=float)
    y = np.asarray(targets, dtype=float)
    th = np.array(theta0, dtype=float)
    if (
        Xf.ndim != 2
        or y.shape != (Xf.shape[0],)
        or th.ndim != 2
        or th.shape[1] != Xf.shape[1]
    ):
        raise ValueError(
            f"shapes must be features (N, d), targets (N,), theta0 (n_rep, d); got "
            f"{Xf.shape}, {y.shape}, {th.shape}"
        )
    if not lr > 0 or batch_size < 1 or n_steps < 1 or record_every < 1:
        raise ValueError("lr must be > 0 and batch_size, n_steps, record_every >= 1")
    out = [th.copy()]
    n_rep = th.shape[0]
    for k in range(n_steps):
        idx = generator.integers(0, Xf.shape[0], size=(n_rep, batch_size))
        xb = Xf[idx]  # (n_rep, B, d)
        resid = np.einsum("rbd,rd->rb", xb, th) - y[idx]
        th = th - lr * np.einsum("rbd,rb->rd", xb, resid) / batch_size
        if (k + 1) % record_every == 0:
            out.append(th.copy())
    return np.stack(out)


def linear_chain_gaussian_moments(
    A, Q, m0, C0, n_steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact density of ``x_k`` for ``x' = A x + N(0, Q)`` from ``x_0 ~ N(m0, C0)``.

    ``m_{k+1} = A m_k``, ``C_{k+1} = A C_k A^T + Q``: p_k = N(m_k, C_k), the density that
    enters the system entropy s_k = -ln p_k(x_k) of the discrete-time IFT.

    Returns
    -------
    means (n_steps + 1, d), covs (n_steps + 1, d, d)

    Examples
    --------
    >>> m, C = linear_chain_gaussian_moments([[0.5]], [[0.75]], [2.0], [[0.0]], 50)
    >>> round(float(m[1, 0]), 6), round(float(C[-1, 0, 0]), 6)   # stationary variance 1
    (1.0, 1.0)
    """
    A = _mat("A", A)
    d = A.shape[0]
    Q = _mat("Q", Q, d)
    C = _mat("C0", C0, d)
    m = np.asarray(m0, dtype=float).reshape(d)
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    ms, Cs = [m], [C]
    for _ in range(n_steps):
        m, C = A @ m, A @ C @ A.T + Q
        ms.append(m)
        Cs.append(0.5 * (C + C.T))
    return np.stack(ms), np.stack(Cs)

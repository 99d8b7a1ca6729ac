"""Entropy production along stochastic trajectories (Seifert 2005) and its estimators.

Trajectory arrays follow one convention throughout: ``X`` has shape
``(n_steps + 1, n_traj, d)`` (time first, then trajectories, then coordinates) and ``t`` has
shape ``(n_steps + 1,)``. Entropies are in nats (k_B = 1).

Trajectory-level decomposition (Seifert, PRL 95, 040602, 2005):

- medium entropy  Delta s_m = q / T, heat q = int F o dx (Stratonovich product):
  :func:`medium_entropy_stratonovich` (midpoint rule), :func:`medium_entropy_ito`
  (pre-point rule, biased; for comparison only);
- system entropy  s(t) = -ln p(x(t), t):  :func:`system_entropy`;
- total           Delta s_tot = Delta s + Delta s_m:  :func:`total_entropy_production`;
- integral fluctuation theorem  <exp(-Delta s_tot)> = 1:  :func:`ift_average`.

Discrete time (ULA, SGD with Gaussian noise): :func:`medium_entropy_kernel_ratio`, exact
for any step size. Linear steady states: :func:`linear_sde_stationary_covariance`,
:func:`linear_sde_entropy_production_rate`. Model-free estimators of a steady-state rate
from trajectories: :func:`tur_entropy_production_rate` (short-time TUR) and
:func:`neep_entropy_production_rate` (NEEP).

The per-trajectory functions treat trajectories independently, so a large ensemble can be
simulated and evaluated in chunks of trajectories and the results concatenated (memory of
``X`` is (n_steps + 1) * n_traj * d floats). Seifert's definitions are quoted as in the
reference note (Sec. 1.1); his equation numbers are not given here because they were not
checked against the paper's text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from .._validation import per_coordinate, positive_float, positive_int
from ..runtime import progress, resolve_device

__all__ = [
    "EntropyProduction",
    "medium_entropy_stratonovich",
    "medium_entropy_ito",
    "system_entropy",
    "total_entropy_production",
    "ift_average",
    "medium_entropy_kernel_ratio",
    "linear_sde_stationary_covariance",
    "linear_sde_entropy_production_rate",
    "tur_entropy_production_rate",
    "neep_entropy_production_rate",
]


# ------------------------------------------------------------------ input validation


def _to_tensor(value, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        out = value
    else:
        try:
            out = torch.from_numpy(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError):
            raise ValueError(
                f"{name} must be a numpy array or torch tensor, got "
                f"{type(value).__name__}"
            ) from None
    if not torch.is_floating_point(out):
        out = out.to(torch.float64)
    return out


def _as_trajectories(X, name: str = "X", min_steps: int = 1) -> torch.Tensor:
    X = _to_tensor(X, name)
    if X.ndim != 3:
        raise ValueError(
            f"{name} must have shape (n_steps + 1, n_traj, d), got shape "
            f"{tuple(X.shape)} (for one coordinate use X[..., None])"
        )
    if X.shape[0] < min_steps + 1 or X.shape[1] < 1 or X.shape[2] < 1:
        raise ValueError(
            f"{name} must hold at least {min_steps + 1} time points, one trajectory "
            f"and one coordinate, got shape {tuple(X.shape)}"
        )
    if not torch.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


def _as_times(t, n_points: int) -> list[float]:
    t = _to_tensor(t, "t")
    if t.ndim != 1 or t.shape[0] != n_points:
        raise ValueError(
            f"t must have shape (n_steps + 1,) = ({n_points},) to match X, got "
            f"shape {tuple(t.shape)}"
        )
    if not torch.isfinite(t).all() or not (t[1:] > t[:-1]).all():
        raise ValueError("t must be finite and strictly increasing")
    return t.to(torch.float64).tolist()


def _check_callable_output(
    out, expected_shape, name: str, like: "torch.Tensor | None" = None
) -> torch.Tensor:
    if isinstance(out, np.ndarray) and like is not None:
        out = torch.as_tensor(out, dtype=like.dtype, device=like.device)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(expected_shape):
        raise ValueError(
            f"{name} must return a tensor of shape {tuple(expected_shape)}, got "
            f"{tuple(out.shape) if hasattr(out, 'shape') else type(out).__name__}"
        )
    if not torch.isfinite(out).all():
        raise ValueError(f"{name} returned NaN or infinite values")
    return out


# ---------------------------------------------------------- trajectory decomposition


def _medium_entropy(X, t, force, temperature, rule: str) -> torch.Tensor:
    if not callable(force):
        raise ValueError(
            "force must be a callable force(x, t) -> tensor of the shape of x"
        )
    X = _as_trajectories(X)
    times = _as_times(t, X.shape[0])
    T = per_coordinate(temperature, "temperature", X.shape[2], X)
    total = torch.zeros(X.shape[1], dtype=X.dtype, device=X.device)
    for i in range(X.shape[0] - 1):
        if rule == "midpoint":
            x_eval, t_eval = 0.5 * (X[i] + X[i + 1]), 0.5 * (times[i] + times[i + 1])
        else:
            x_eval, t_eval = X[i], times[i]
        F = _check_callable_output(force(x_eval, t_eval), X[i].shape, "force(x, t)")
        total += (F * (X[i + 1] - X[i]) / T).sum(dim=-1)
    return total


def medium_entropy_stratonovich(X, t, force: Callable, temperature=1.0) -> torch.Tensor:
    """Medium entropy Delta s_m = (1/T) int F o dx along each trajectory (Stratonovich), nats.

    Parameters
    ----------
    X : array or tensor, shape (n_steps + 1, n_traj, d)
        Trajectories (time first).
    t : array or tensor, shape (n_steps + 1,)
        Strictly increasing times of the rows of ``X``.
    force : callable
        ``force(x, t) -> F`` with ``x`` of shape (n_traj, d) and ``t`` a float; returns the
        total force (-grad V plus non-conservative parts) with the shape of ``x``.
        For SGD on a loss L the force is -grad L (Seifert's sign: s_m = -int grad L o dtheta / T).
    temperature : float or array of shape (d,)
        Bath temperature T > 0 (k_B = 1); a vector gives one bath per coordinate, and then
        Delta s_m = sum_j q_j / T_j.

    Returns
    -------
    torch.Tensor, shape (n_traj,)
        Delta s_m = sum_i F((x_i + x_{i+1})/2, (t_i + t_{i+1})/2) . (x_{i+1} - x_i) / T, nats.

    Notes
    -----
    Seifert (2005): the heat dissipated into the medium is dq = F o dx (Sekimoto's first law,
    Stratonovich product), and the medium entropy is s_m = q/T. The midpoint rule is the
    Stratonovich discretisation: for a potential force it reproduces -Delta V/T exactly on any
    linear force and converges for any smooth force as dt -> 0. The pre-point (Ito) rule,
    :func:`medium_entropy_ito`, is smaller by (1/2T) sum_i F'(x_i) (Delta x_i)^2, which tends
    to mu int div F dt (an O(1) bias that does not vanish as dt -> 0).

    References
    ----------
    U. Seifert, "Entropy production along a stochastic trajectory and an integral fluctuation
    theorem", Phys. Rev. Lett. 95, 040602 (2005).
    K. Sekimoto, "Langevin equation and thermodynamics", Prog. Theor. Phys. Suppl. 130, 17 (1998).

    Examples
    --------
    >>> import torch
    >>> X = torch.tensor([[[0.0]], [[1.0]]])          # one step from x = 0 to x = 1
    >>> medium_entropy_stratonovich(X, [0.0, 1.0], lambda x, t: -x)   # -Delta(x^2/2)
    tensor([-0.5000])
    """
    return _medium_entropy(X, t, force, temperature, "midpoint")


def medium_entropy_ito(X, t, force: Callable, temperature=1.0) -> torch.Tensor:
    """Medium entropy with the pre-point (Ito) rule, sum_i F(x_i, t_i) . Delta x_i / T (biased).

    Parameters
    ----------
    X, t, force, temperature
        As in :func:`medium_entropy_stratonovich`: trajectories ``(n_steps + 1, n_traj, d)``,
        times ``(n_steps + 1,)``, ``force(x, t)`` and the bath temperature(s).

    Returns
    -------
    torch.Tensor, shape (n_traj,)
        sum_i F(x_i, t_i) . (x_{i+1} - x_i) / T, in nats.

    Notes
    -----
    This is **not** the heat of stochastic thermodynamics (Sekimoto's heat uses the
    Stratonovich product; Seifert 2005): along diffusive paths it differs from the
    Stratonovich value by -(1/2T) sum_i F'(x_i) (Delta x_i)^2 -> -mu int div F dt, e.g.
    +mu k t for a harmonic trap of stiffness k. Kept so the book can show the bias.

    Examples
    --------
    >>> import torch
    >>> X = torch.tensor([[[0.0]], [[1.0]]])
    >>> medium_entropy_ito(X, [0.0, 1.0], lambda x, t: -x)   # F(0) * 1 = 0
    tensor([0.])
    """
    return _medium_entropy(X, t, force, temperature, "prepoint")


def system_entropy(X, t, log_density: Callable) -> torch.Tensor:
    """Change of system entropy Delta s = ln p(x_0, t_0) - ln p(x_N, t_N) per trajectory, nats.

    Parameters
    ----------
    X : array or tensor, shape (n_steps + 1, n_traj, d)
    t : array or tensor, shape (n_steps + 1,)
    log_density : callable
        ``log_density(x, t) -> ln p(x, t)`` with ``x`` of shape (n_traj, d), ``t`` a float,
        returning a tensor (or numpy array) of shape (n_traj,). It must be the density of
        the actual ensemble at time t (the solution of the Fokker-Planck equation for the
        real initial density and protocol), not the equilibrium density.

    Returns
    -------
    torch.Tensor, shape (n_traj,)

    Notes
    -----
    Seifert (2005): s(t) = -ln p(x(t), t), so Delta s = -ln p(x_N, t_N) + ln p(x_0, t_0).

    Examples
    --------
    >>> import torch
    >>> from thermo_nb.dynamics.exact import ou_relaxation_log_density
    >>> X = torch.zeros(2, 3, 1, dtype=torch.float64)
    >>> logp = lambda x, t: ou_relaxation_log_density(x, t, m0=0.0, s0_sq=1.0)
    >>> system_entropy(X, [0.0, 1.0], logp)   # equilibrium start: p does not change
    tensor([0., 0., 0.], dtype=torch.float64)
    """
    if not callable(log_density):
        raise ValueError(
            "log_density must be a callable log_density(x, t) -> tensor (n_traj,)"
        )
    X = _as_trajectories(X)
    times = _as_times(t, X.shape[0])
    shape = (X.shape[1],)
    lp0 = _check_callable_output(
        log_density(X[0], times[0]), shape, "log_density(x, t)", like=X
    )
    lpN = _check_callable_output(
        log_density(X[-1], times[-1]), shape, "log_density(x, t)", like=X
    )
    return lp0 - lpN


class EntropyProduction(NamedTuple):
    """Per-trajectory entropy changes in nats, each of shape (n_traj,)."""

    system: torch.Tensor
    """Delta s = ln p(x_0, t_0) - ln p(x_N, t_N)."""
    medium: torch.Tensor
    """Delta s_m = q / T (Stratonovich heat unless another convention was asked for)."""
    total: torch.Tensor
    """Delta s_tot = system + medium."""


def total_entropy_production(
    X,
    t,
    force: Callable,
    log_density: Callable,
    temperature=1.0,
    convention: str = "stratonovich",
) -> EntropyProduction:
    """Seifert's decomposition Delta s_tot = Delta s + Delta s_m for each trajectory, nats.

    Parameters
    ----------
    X, t, force, temperature
        As in :func:`medium_entropy_stratonovich`.
    log_density
        As in :func:`system_entropy`.
    convention : {"stratonovich", "ito"}
        Discretisation of the heat; "ito" exists only to show its bias.

    Returns
    -------
    EntropyProduction
        NamedTuple ``(system, medium, total)`` of tensors of shape (n_traj,).

    Notes
    -----
    Seifert (2005): Delta s_tot = Delta s_m + Delta s with s = -ln p(x, t) and s_m = q/T; the
    integral fluctuation theorem <exp(-Delta s_tot)> = 1 holds for any initial density,
    protocol and duration (check with :func:`ift_average`), and <Delta s_tot> >= 0.

    References
    ----------
    U. Seifert, Phys. Rev. Lett. 95, 040602 (2005).

    Examples
    --------
    >>> import torch
    >>> from thermo_nb.dynamics.langevin import euler_maruyama
    >>> from thermo_nb.dynamics.exact import ou_relaxation_log_density
    >>> g = torch.Generator().manual_seed(0)
    >>> t = torch.linspace(0.0, 1.0, 101)
    >>> x0 = 1.0 + 2.0 ** 0.5 * torch.randn(20000, 1, generator=g, dtype=torch.float64)
    >>> X = euler_maruyama(lambda x, s: -x, x0, t, generator=g)
    >>> ep = total_entropy_production(X, t, lambda x, s: -x,
    ...                               lambda x, s: ou_relaxation_log_density(x, s, 1.0, 2.0))
    >>> round(float(ep.total.mean()), 1)   # closed form 0.5658
    0.6
    """
    if convention == "stratonovich":
        medium = medium_entropy_stratonovich(X, t, force, temperature)
    elif convention == "ito":
        medium = medium_entropy_ito(X, t, force, temperature)
    else:
        raise ValueError(
            f"convention must be 'stratonovich' or 'ito', got {convention!r}"
        )
    system = system_entropy(X, t, log_density).to(medium.dtype)
    return EntropyProduction(system=system, medium=medium, total=system + medium)


def ift_average(delta_s_tot, n_batches: int = 20) -> tuple[float, float]:
    """Integral fluctuation theorem average <exp(-Delta s_tot)> and its batch-means error.

    Parameters
    ----------
    delta_s_tot : array or tensor, shape (n_traj,)
        Total entropy production of independent trajectories (nats).
    n_batches : int
        Number of contiguous batches for the standard error (2 <= n_batches <= n_traj).

    Returns
    -------
    mean : float
        (1/N) sum_n exp(-Delta s_tot,n), computed as exp(logsumexp(-Delta s_tot) - ln N).
    stderr : float
        Standard deviation of the n_batches batch means / sqrt(n_batches).

    Notes
    -----
    Seifert (2005) IFT: <exp(-Delta s_tot)> = 1. exp(-Delta s_tot) is heavy-tailed when
    <Delta s_tot> is larger than about 1-2 nats; the sample mean then converges slowly and
    is typically *below* 1, and the batch-means error underestimates the true error. Report
    <Delta s_tot> >= 0 and closed-form means alongside.

    Examples
    --------
    >>> import torch
    >>> mean, se = ift_average(torch.zeros(100))
    >>> mean, se
    (1.0, 0.0)
    """
    s = _to_tensor(delta_s_tot, "delta_s_tot")
    if s.ndim != 1:
        raise ValueError(
            f"delta_s_tot must be 1-D (n_traj,), got shape {tuple(s.shape)}"
        )
    if not torch.isfinite(s).all():
        raise ValueError("delta_s_tot contains NaN or infinite values")
    n_batches = positive_int(n_batches, "n_batches", low=2)
    n = s.shape[0]
    if n < n_batches:
        raise ValueError(f"need at least n_batches={n_batches} trajectories, got {n}")
    s = s.to(torch.float64)
    mean = math.exp(float(torch.logsumexp(-s, 0)) - math.log(n))
    size = n // n_batches
    batches = (-s[: size * n_batches]).reshape(n_batches, size)
    batch_means = torch.exp(torch.logsumexp(batches, dim=1) - math.log(size))
    stderr = float(batch_means.std(unbiased=True)) / math.sqrt(n_batches)
    return mean, stderr


# ----------------------------------------------------------------- discrete time


def _precision_matrix(cov, d: int, like: torch.Tensor) -> torch.Tensor:
    C = _to_tensor(cov, "step_cov").to(dtype=like.dtype, device=like.device)
    if C.ndim == 0 or (C.ndim == 1 and C.shape[0] == 1):
        C = C.reshape(()) * torch.eye(d, dtype=like.dtype, device=like.device)
    elif C.ndim == 1 and C.shape[0] == d:
        C = torch.diag(C)
    elif not (C.ndim == 2 and C.shape == (d, d)):
        raise ValueError(
            f"step_cov must be a scalar, a vector of length d={d} (diagonal) or a "
            f"(d, d) matrix, got shape {tuple(C.shape)}"
        )
    if not torch.isfinite(C).all():
        raise ValueError("step_cov contains NaN or infinite values")
    if not torch.allclose(C, C.T, rtol=1e-10, atol=1e-12):
        raise ValueError("step_cov must be symmetric")
    eig = torch.linalg.eigvalsh(C)
    if (eig <= 0).any():
        raise ValueError(
            f"step_cov must be positive definite (smallest eigenvalue "
            f"{float(eig.min()):.3g}); with singular noise the kernel ratio, hence "
            "the medium entropy, is undefined: project onto the noise support"
        )
    return torch.linalg.inv(C)


def medium_entropy_kernel_ratio(X, step_mean: Callable, step_cov) -> torch.Tensor:
    """Exact medium entropy of a Gaussian-kernel Markov chain: sum of log kernel ratios, nats.

    Parameters
    ----------
    X : array or tensor, shape (n_steps + 1, n_traj, d)
        Trajectories of the chain x_{n+1} = m(x_n, n) + xi_n, xi_n ~ N(0, C_n).
    step_mean : callable
        ``step_mean(x, n) -> m(x, n)`` with ``x`` of shape (n_traj, d) and ``n`` the step
        index (int), same shape as ``x``. For ULA, ``x - h * grad U(x)``; for SGD with
        Gaussian noise, ``theta - eta * grad L(theta)``.
    step_cov : float, array of shape (d,) or (d, d), or callable
        Noise covariance C (scalar: C = c I; vector: diagonal). A callable ``step_cov(n)``
        returning one of these allows a schedule. Must be positive definite.

    Returns
    -------
    torch.Tensor, shape (n_traj,)
        Delta s_m = sum_n [ln K_n(x_{n+1} | x_n) - ln K_n(x_n | x_{n+1})]
                  = sum_n (1/2) [r_b^T C^-1 r_b - r_f^T C^-1 r_f],
        with r_f = x_{n+1} - m(x_n, n) and r_b = x_n - m(x_{n+1}, n).

    Notes
    -----
    For any Markov chain with kernels K_n, the reversed process that starts from the final
    density p_N and applies K_{N-1}, ..., K_0 gives
    P_rev / P_fwd = exp(-Delta s_tot) with Delta s_tot = Delta s_m + ln p_0(x_0) - ln p_N(x_N),
    hence <exp(-Delta s_tot)> = 1 exactly for any step size (reference note, Sec. 1.4; the
    discrete-time form of Seifert's decomposition, cf. Crooks, J. Stat. Phys. 90, 1481, 1998).
    For ULA, K(x'|x) = N(x - h grad U(x), 2hT), and the log ratio is
    -Delta x . (grad U(x) + grad U(x'))/(2T) - h (|grad U(x)|^2 - |grad U(x')|^2)/(4T),
    which tends to the Stratonovich -Delta U/T only as h -> 0.
    The Gaussian normalisation constants cancel because forward and reverse steps use the
    same C_n.

    Examples
    --------
    >>> import torch
    >>> X = torch.tensor([[[0.0]], [[1.0]]])
    >>> h = 0.1   # ULA on U = x^2/2 at T = 1: -(0 + 1)/2 * 1 - h (0 - 1)/4 = -0.475
    >>> medium_entropy_kernel_ratio(X, lambda x, n: x - h * x, 2 * h)
    tensor([-0.4750])
    """
    if not callable(step_mean):
        raise ValueError(
            "step_mean must be a callable step_mean(x, n) -> tensor of x's shape"
        )
    X = _as_trajectories(X)
    d = X.shape[2]
    P_fixed = None if callable(step_cov) else _precision_matrix(step_cov, d, X)
    total = torch.zeros(X.shape[1], dtype=X.dtype, device=X.device)
    for n in range(X.shape[0] - 1):
        P = P_fixed if P_fixed is not None else _precision_matrix(step_cov(n), d, X)
        x, x_next = X[n], X[n + 1]
        r_f = x_next - _check_callable_output(
            step_mean(x, n), x.shape, "step_mean(x, n)"
        )
        r_b = x - _check_callable_output(
            step_mean(x_next, n), x.shape, "step_mean(x, n)"
        )
        total += 0.5 * (((r_b @ P) * r_b).sum(-1) - ((r_f @ P) * r_f).sum(-1))
    return total


# ------------------------------------------------------------ linear steady states


def _square_matrix(M, name: str) -> np.ndarray:
    if isinstance(M, torch.Tensor):
        M = M.detach().cpu().numpy()
    M = np.asarray(M, dtype=np.float64)
    if M.ndim == 0:
        M = M.reshape(1, 1)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"{name} must be a square (d, d) matrix, got shape {M.shape}")
    if not np.isfinite(M).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return M


def _checked_linear_sde(A, D) -> tuple[np.ndarray, np.ndarray]:
    A, D = _square_matrix(A, "A"), _square_matrix(D, "D")
    if A.shape != D.shape:
        raise ValueError(
            f"A and D must have the same shape, got {A.shape} and {D.shape}"
        )
    if not np.allclose(D, D.T, rtol=1e-10, atol=1e-12):
        raise ValueError("D must be symmetric")
    eig_d = np.linalg.eigvalsh(D)
    if eig_d.min() <= 0:
        raise ValueError(
            f"D must be positive definite (smallest eigenvalue {eig_d.min():.3g}); "
            "with singular noise (as for minibatch SGD) the entropy production is "
            "undefined or infinite in the noiseless directions"
        )
    if np.linalg.eigvals(A).real.min() <= 0:
        raise ValueError(
            "A must be stable (all eigenvalues with positive real part) for a "
            "steady state of dx = -A x dt + sqrt(2D) dW to exist"
        )
    return A, D


def linear_sde_stationary_covariance(A, D) -> np.ndarray:
    """Stationary covariance C of dx = -A x dt + sqrt(2D) dW: solves A C + C A^T = 2D.

    Parameters
    ----------
    A : array or tensor, shape (d, d)
        Drift matrix, all eigenvalues with positive real part.
    D : array or tensor, shape (d, d)
        Diffusion matrix, symmetric positive definite.

    Returns
    -------
    ndarray, shape (d, d)
        C (float64), via ``scipy.linalg.solve_continuous_lyapunov``.

    Notes
    -----
    Lyapunov equation of the stationary Fokker-Planck solution N(0, C) (reference note,
    Sec. 1.5; Risken, *The Fokker-Planck Equation*, Sec. 3.2).

    Examples
    --------
    >>> linear_sde_stationary_covariance([[2.0]], [[1.0]])   # C = D/A
    array([[0.5]])
    """
    from scipy.linalg import solve_continuous_lyapunov

    A, D = _checked_linear_sde(A, D)
    C = solve_continuous_lyapunov(A, 2.0 * D)
    return 0.5 * (C + C.T)


def linear_sde_entropy_production_rate(A, D) -> float:
    """Steady-state entropy production rate of dx = -A x dt + sqrt(2D) dW (nats per unit time).

    Parameters
    ----------
    A, D
        As in :func:`linear_sde_stationary_covariance`. D = mu T per coordinate, so several
        baths at different temperatures are a diagonal D.

    Returns
    -------
    float
        sigma = tr(A^T D^-1 A C) - tr(A) >= 0.

    Notes
    -----
    With the stationary density N(0, C) the local mean velocity is
    nu(x) = j/p = -(A - D C^-1) x, and sigma = <nu^T D^-1 nu>
    = tr[(A - D C^-1)^T D^-1 (A - D C^-1) C] (Seifert 2005 / 2012 review, Eq. for
    <s_tot dot> = int j D^-1 j / p; reference note Sec. 1.5). Expanding and using
    tr(C^-1 D) = tr(A) (from the Lyapunov equation) gives the form computed here.
    sigma = 0 exactly when D^-1 A is symmetric (detailed balance: then C = A^-1 D and j = 0).
    Two beads at T = (1, 10) with k = e = 1 give 2.025 (Kim et al. 2020).

    References
    ----------
    U. Seifert, "Stochastic thermodynamics, fluctuation theorems and molecular machines",
    Rep. Prog. Phys. 75, 126001 (2012), Sec. 8.
    D.-K. Kim, Y. Bae, S. Lee, H. Jeong, "Learning entropy production via neural networks",
    Phys. Rev. Lett. 125, 140604 (2020).

    Examples
    --------
    >>> from thermo_nb.dynamics.exact import two_bead_linear_system
    >>> round(linear_sde_entropy_production_rate(*two_bead_linear_system(1.0, 10.0)), 10)
    2.025
    """
    A, D = _checked_linear_sde(A, D)
    C = linear_sde_stationary_covariance(A, D)
    DinvA = np.linalg.solve(D, A)
    sigma = float(np.trace(A.T @ DinvA @ C) - np.trace(A))
    # round-off can leave a tiny negative number at detailed balance
    return max(sigma, 0.0) if sigma > -1e-10 * max(1.0, abs(np.trace(A))) else sigma


# ---------------------------------------------------------- estimators from data


def _pair_views(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened (x_n, x_{n+1}) pairs, each of shape (n_steps * n_traj, d)."""
    d = X.shape[2]
    return X[:-1].reshape(-1, d), X[1:].reshape(-1, d)


def _polynomial_basis(x: torch.Tensor, degree: int) -> torch.Tensor:
    cols = [torch.ones_like(x[:, :1]), x]
    if degree == 2:
        d = x.shape[1]
        iu = torch.triu_indices(d, d)
        cols.append(x[:, iu[0]] * x[:, iu[1]])
    return torch.cat(cols, dim=1)


def tur_entropy_production_rate(
    X, dt: float, degree: int = 1, chunk_size: int = 262_144
) -> float:
    """Short-time TUR estimate of a steady-state entropy production rate (nats per unit time).

    Parameters
    ----------
    X : array or tensor, shape (n_steps + 1, n_traj, d)
        Stationary trajectories sampled every ``dt`` (short compared with relaxation times).
    dt : float
        Sampling interval > 0.
    degree : {1, 2}
        Degree of the polynomial coefficient field d(x) of the currents: 1 (constant + linear,
        exact for linear systems), 2 (adds all quadratic monomials).
    chunk_size : int
        Pairs processed at a time (bounds memory).

    Returns
    -------
    float
        sigma_TUR = max_w 2 <J_w>^2 / (dt Var J_w) = (2/dt) mu^T Sigma^-1 mu, where
        J_w = sum_k w_k phi_k, phi_{jk} = psi_k(x_mid) Delta x_j, x_mid = (x_n + x_{n+1})/2,
        mu = <phi> and Sigma = Cov(phi).

    Notes
    -----
    Short-time thermodynamic uncertainty relation: for an overdamped NESS and any current
    J_d = d(x_mid) . Delta x over one interval, sigma >= 2 <J_d>^2 / (dt Var J_d), with
    equality as dt -> 0 when d is proportional to the thermodynamic force D^-1 nu(x)
    (Manikandan, Gupta & Krishnamurthy 2020; Otsubo, Ito, Dechant & Sagawa 2020). The
    maximum over linear combinations of the current features phi is a generalised
    Rayleigh quotient, maximised in closed form by w = Sigma^-1 mu (no gradient ascent).
    It is a lower bound in general and an estimator when the thermodynamic force lies in
    the span of the basis (linear systems with ``degree=1``); O(dt) bias at finite dt.
    **Not valid for time-dependent driving** (learning dynamics): use exact p(x, t) or the
    time-dependent variant (Otsubo et al., Commun. Phys. 5, 11, 2022).

    References
    ----------
    S. K. Manikandan, D. Gupta, S. Krishnamurthy, Phys. Rev. Lett. 124, 120603 (2020).
    S. Otsubo, S. Ito, A. Dechant, T. Sagawa, Phys. Rev. E 101, 062106 (2020).

    Examples
    --------
    >>> import torch
    >>> from thermo_nb.dynamics.langevin import euler_maruyama
    >>> g = torch.Generator().manual_seed(0)
    >>> F = lambda x, t: torch.stack([-x[:, 0] + 2 * x[:, 1], -x[:, 1] - 2 * x[:, 0]], 1)
    >>> X = euler_maruyama(F, torch.randn(200, 2, generator=g, dtype=torch.float64),
    ...                    torch.arange(2001) * 0.01, generator=g)
    >>> rate = tur_entropy_production_rate(X[500:], 0.01)  # closed form: 8
    """
    X = _as_trajectories(X)
    dt = positive_float(dt, "dt")
    if degree not in (1, 2):
        raise ValueError(f"degree must be 1 or 2, got {degree!r}")
    chunk_size = positive_int(chunk_size, "chunk_size")
    d = X.shape[2]
    n_basis = 1 + d + (d * (d + 1) // 2 if degree == 2 else 0)
    n_features = d * n_basis
    x_prev, x_next = _pair_views(X)
    n_pairs = x_prev.shape[0]
    if n_pairs < 20 * n_features:
        raise ValueError(
            f"too few transitions for the TUR estimate: {n_pairs} pairs for "
            f"{n_features} current features (need >= {20 * n_features})"
        )
    s1 = torch.zeros(n_features, dtype=torch.float64, device=X.device)
    s2 = torch.zeros(n_features, n_features, dtype=torch.float64, device=X.device)
    for start in range(0, n_pairs, chunk_size):
        a = x_prev[start : start + chunk_size].to(torch.float64)
        b = x_next[start : start + chunk_size].to(torch.float64)
        psi = _polynomial_basis(0.5 * (a + b), degree)
        phi = ((b - a)[:, :, None] * psi[:, None, :]).reshape(a.shape[0], n_features)
        s1 += phi.sum(0)
        s2 += phi.T @ phi
    mu = s1 / n_pairs
    Sigma = (s2 - n_pairs * torch.outer(mu, mu)) / (n_pairs - 1)
    Sigma = Sigma + 1e-12 * torch.trace(Sigma) / n_features * torch.eye(
        n_features, dtype=Sigma.dtype, device=Sigma.device
    )
    w = torch.linalg.solve(Sigma, mu)
    return float(2.0 * (mu @ w) / dt)


class _AntisymmetricPairNet(torch.nn.Module):
    """Delta S(x, x') = g([x, x']) - g([x', x]) with g an MLP: antisymmetric by construction."""

    def __init__(self, d: int, hidden: int, n_layers: int):
        super().__init__()
        self.g = _mlp(2 * d, hidden, n_layers, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.g(torch.cat([x, y], 1)) - self.g(torch.cat([y, x], 1))).squeeze(1)


class _CurrentNet(torch.nn.Module):
    """Delta S(x, x') = f((x + x')/2) . (x' - x) with f an MLP: odd under x <-> x'."""

    def __init__(self, d: int, hidden: int, n_layers: int):
        super().__init__()
        self.f = _mlp(d, hidden, n_layers, d)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.f(0.5 * (x + y)) * (y - x)).sum(1)


def _mlp(n_in: int, hidden: int, n_layers: int, n_out: int) -> torch.nn.Sequential:
    layers, width = [], n_in
    for _ in range(n_layers):
        layers += [torch.nn.Linear(width, hidden), torch.nn.SiLU()]
        width = hidden
    layers.append(torch.nn.Linear(width, n_out))
    return torch.nn.Sequential(*layers)


def neep_entropy_production_rate(
    X,
    dt: float,
    representation: str = "current",
    hidden: int = 32,
    n_layers: int = 2,
    n_iter: int = 1000,
    batch_size: int = 4096,
    lr: float = 1e-2,
    test_fraction: float = 0.5,
    seed: int = 0,
    device=None,
    progress_bar: "bool | None" = None,
) -> float:
    """NEEP estimate of a steady-state entropy production rate (nats per unit time).

    Parameters
    ----------
    X : array or tensor, shape (n_steps + 1, n_traj, d)
        Stationary trajectories sampled every ``dt``; dt must be short compared with the
        relaxation times (see Notes: coarser sampling underestimates the rate).
    dt : float
        Sampling interval > 0.
    representation : {"current", "pair"}
        Form of the antisymmetric network output Delta S_theta(x, x'):
        ``"current"``: f_theta((x + x')/2) . (x' - x), an MLP f: R^d -> R^d (the current
        representation of Otsubo et al. 2020, fast to train);
        ``"pair"``: g_theta([x, x']) - g_theta([x', x]), an MLP g: R^{2d} -> R (the original
        NEEP of Kim et al. 2020; needs many more iterations at small dt).
    hidden, n_layers : int
        Width and number of hidden layers of the MLP (SiLU activations).
    n_iter : int
        Adam iterations (learning rate decays by cosine annealing to 0).
    batch_size : int
        Pairs per iteration.
    lr : float
        Initial Adam learning rate.
    test_fraction : float in (0, 1)
        Fraction of the **trajectories** held out; the rate is evaluated on them only
        (training pairs give an upward-biased value).
    seed : int
        Seeds weight initialisation and batch sampling (global RNG state is left untouched).
    device : {"auto", "cpu", "cuda"} or torch.device, optional
        Default: the device of ``X``.
    progress_bar : bool, optional
        ``None`` shows a bar when n_iter >= 2000.

    Returns
    -------
    float
        <Delta S_theta(x_n, x_{n+1})>_test / dt.

    Notes
    -----
    Neural estimator for entropy production (Kim, Bae, Lee & Jeong 2020): for an
    antisymmetric Delta S_theta(x, x') = -Delta S_theta(x', x), the objective
    J = <Delta S_theta - exp(-Delta S_theta)> over forward pairs is maximised by
    Delta S = ln[p(x, x') / p(x', x)] (pointwise: p (1 + e^{-S}) = p' (1 + e^{S})), so
    <Delta S>/dt estimates the rate. For a Markov NESS this pair log-ratio is the entropy
    production of one interval only as dt -> 0: over a finite interval it is the
    coarse-grained (pair) value, which is smaller (data processing). For the two-bead system
    the exact pair value is 2.04, 1.68 and 1.32 at dt = 0.01, 0.1 and 0.2 (EM chain at
    dt = 0.01, subsampled) against sigma = 2.025. Inputs are standardised with the training
    mean and standard deviation (one affine map for x and x', which keeps antisymmetry).
    Written from the papers' descriptions; no code taken from ``kdkyum/neep`` or
    ``tsuboshun/LearnEntropy``.

    References
    ----------
    D.-K. Kim, Y. Bae, S. Lee, H. Jeong, "Learning entropy production via neural networks",
    Phys. Rev. Lett. 125, 140604 (2020), arXiv:2003.04166.
    S. Otsubo, S. Ito, A. Dechant, T. Sagawa, "Estimating entropy production by machine
    learning of short-time fluctuating currents", Phys. Rev. E 101, 062106 (2020).

    Examples
    --------
    >>> import torch
    >>> X = torch.randn(101, 400, 2, dtype=torch.float64)   # i.i.d. noise: reversible
    >>> rate = neep_entropy_production_rate(X, 0.1, n_iter=100)   # close to 0
    """
    X = _as_trajectories(X)
    dt = positive_float(dt, "dt")
    if representation not in ("current", "pair"):
        raise ValueError(
            f"representation must be 'current' or 'pair', got {representation!r}"
        )
    hidden = positive_int(hidden, "hidden")
    n_layers = positive_int(n_layers, "n_layers")
    n_iter = positive_int(n_iter, "n_iter")
    batch_size = positive_int(batch_size, "batch_size")
    lr = positive_float(lr, "lr")
    seed = positive_int(seed, "seed", low=0)
    if isinstance(test_fraction, bool) or not (
        isinstance(test_fraction, (float, int)) and 0.0 < test_fraction < 1.0
    ):
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    n_traj, d = X.shape[1], X.shape[2]
    n_test = int(round(test_fraction * n_traj))
    if n_test < 1 or n_traj - n_test < 1:
        raise ValueError(
            f"need at least one training and one test trajectory: n_traj={n_traj}, "
            f"test_fraction={test_fraction}"
        )
    dev = X.device if device is None else resolve_device(device)
    X = X.to(device=dev, dtype=torch.float32)
    train_prev, train_next = _pair_views(X[:, : n_traj - n_test])
    test_prev, test_next = _pair_views(X[:, n_traj - n_test :])
    loc = train_prev.mean(0)
    scale = train_prev.std(0).clamp_min(1e-12)

    def standardise(z):
        return (z - loc) / scale

    train_prev, train_next = standardise(train_prev), standardise(train_next)
    n_pairs = train_prev.shape[0]
    net_class = _CurrentNet if representation == "current" else _AntisymmetricPairNet
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = net_class(d, hidden, n_layers)
    net = net.to(dev)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n_iter)
    if progress_bar is None:
        progress_bar = n_iter >= 2000
    for _ in progress(
        range(n_iter), total=n_iter, desc="NEEP", disable=not progress_bar
    ):
        idx = torch.randint(0, n_pairs, (min(batch_size, n_pairs),), generator=gen).to(
            dev
        )
        ds = net(train_prev[idx], train_next[idx])
        loss = (torch.exp(-ds) - ds).mean()  # minimise the negative NEEP objective
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, test_prev.shape[0], 262_144):
            a = standardise(test_prev[start : start + 262_144])
            b = standardise(test_next[start : start + 262_144])
            total += float(net(a, b).to(torch.float64).sum())
            count += a.shape[0]
    return total / count / dt

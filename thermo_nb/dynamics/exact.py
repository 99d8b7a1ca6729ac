"""Closed-form Langevin processes: the benchmarks that anchor trajectory entropy production.

Each process here has an exactly known density p(x, t), so the system entropy
s = -ln p(x(t), t) of Seifert (2005) can be evaluated along simulated trajectories and the
mean total entropy production is known in closed form:

- the **dragged harmonic trap** V = k (x - v t)^2 / 2 started in equilibrium;
- the **OU relaxation** in a fixed trap V = k x^2 / 2 from a Gaussian initial density;
- the **ULA chain** in a harmonic potential (a Gaussian AR(1) process, any step size);
- the **two-bead linear system** (two coupled overdamped beads at temperatures T_c, T_h),
  a non-equilibrium steady state with entropy production rate k (T_c - T_h)^2 /(4 e T_c T_h).

Conventions: k_B = 1, one coordinate per dimension (d-dimensional inputs are treated as d
independent copies: log-densities are summed over the last axis, mean entropy productions
are **per coordinate**). Times are floats; positions are torch tensors of shape (n_traj, d).
All formulas are derived in the reference note
``shared/reference/stochastic_thermodynamics_and_parsi.md`` (Secs. 1.2-1.5) and checked
against simulations in ``tests/test_entropy_production.py``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._validation import positive_float

__all__ = [
    "dragged_trap_force",
    "dragged_trap_mean",
    "dragged_trap_log_density",
    "dragged_trap_mean_work",
    "dragged_trap_mean_entropy_production",
    "ou_relaxation_moments",
    "ou_relaxation_log_density",
    "ou_relaxation_mean_entropy_production",
    "gaussian_kl_divergence_1d",
    "ula_harmonic_moments",
    "two_bead_linear_system",
    "two_bead_entropy_production_rate",
]

_LOG_2PI = math.log(2.0 * math.pi)


def _positive(**kwargs) -> None:
    for name, value in kwargs.items():
        positive_float(value, name)


def _gaussian_log_density(x: torch.Tensor, mean: float, var: float) -> torch.Tensor:
    """Sum over the last axis of ln N(x_i; mean, var), shape (n_traj,)."""
    if x.ndim == 1:
        x = x[:, None]
    return (-0.5 * (x - mean) ** 2 / var - 0.5 * (_LOG_2PI + math.log(var))).sum(dim=-1)


# ------------------------------------------------------------------------ dragged trap


def dragged_trap_force(
    x: torch.Tensor, t: float, stiffness: float = 1.0, velocity: float = 1.0
) -> torch.Tensor:
    """Force F = -k (x - v t) of a harmonic trap whose centre moves at constant velocity.

    Parameters
    ----------
    x : torch.Tensor, shape (n_traj, d)
    t : float
    stiffness, velocity : float
        k > 0 and v (any sign).

    Returns
    -------
    torch.Tensor, same shape as ``x``.
    """
    return -stiffness * (x - velocity * t)


def dragged_trap_mean(
    t: float, stiffness: float = 1.0, mobility: float = 1.0, velocity: float = 1.0
) -> float:
    """Mean position m(t) = v t - v tau (1 - exp(-t/tau)), tau = 1/(mu k), of the dragged trap.

    The density stays Gaussian N(m(t), T/k) when started in equilibrium N(0, T/k) at t = 0
    (moment equations dm/dt = -mu k (m - v t), d sigma^2/dt = -2 mu k sigma^2 + 2 mu T).
    """
    _positive(stiffness=stiffness, mobility=mobility)
    tau = 1.0 / (mobility * stiffness)
    return velocity * t - velocity * tau * (1.0 - math.exp(-t / tau))


def dragged_trap_log_density(
    x: torch.Tensor,
    t: float,
    stiffness: float = 1.0,
    mobility: float = 1.0,
    temperature: float = 1.0,
    velocity: float = 1.0,
) -> torch.Tensor:
    """Exact ln p(x, t) for the dragged trap started in equilibrium at t = 0 (nats).

    Parameters
    ----------
    x : torch.Tensor, shape (n_traj, d)
    t : float
    stiffness, mobility, temperature : float
        k, mu, T > 0.
    velocity : float
        Trap speed v.

    Returns
    -------
    torch.Tensor, shape (n_traj,)
        sum_i ln N(x_i; m(t), T/k).

    Examples
    --------
    >>> import torch
    >>> round(float(dragged_trap_log_density(torch.zeros(1, 1), 0.0)), 6)  # ln N(0; 0, 1)
    -0.918939
    """
    _positive(temperature=temperature)
    m = dragged_trap_mean(t, stiffness, mobility, velocity)
    return _gaussian_log_density(x, m, temperature / stiffness)


def dragged_trap_mean_work(
    t: float, stiffness: float = 1.0, mobility: float = 1.0, velocity: float = 1.0
) -> float:
    """<W>(t) = (v^2/mu) [t - tau (1 - exp(-t/tau))], per coordinate (energy units).

    W = int (dV/d lambda) lambda_dot dt = int k v (v t - x) dt with lambda = v t; W is
    Gaussian with Var W = 2 T <W> (reference note, Sec. 1.2).
    """
    _positive(stiffness=stiffness, mobility=mobility)
    tau = 1.0 / (mobility * stiffness)
    return velocity**2 / mobility * (t - tau * (1.0 - math.exp(-t / tau)))


def dragged_trap_mean_entropy_production(
    t: float,
    stiffness: float = 1.0,
    mobility: float = 1.0,
    temperature: float = 1.0,
    velocity: float = 1.0,
) -> float:
    """Mean total entropy production <Delta s_tot>(t) of the dragged trap, nats per coordinate.

    Notes
    -----
    <Delta s_tot> = <W>/T - (k / 2T) (v tau (1 - e^{-t/tau}))^2: the system entropy has zero
    mean change (the variance stays T/k) and the mean potential energy rises by
    (k/2) lag(t)^2 with lag = v t - m(t). For t >> tau the rate tends to v^2/(mu T).
    """
    _positive(temperature=temperature)
    tau = 1.0 / (mobility * stiffness)
    lag = velocity * tau * (1.0 - math.exp(-t / tau))
    work = dragged_trap_mean_work(t, stiffness, mobility, velocity)
    return work / temperature - stiffness / (2.0 * temperature) * lag**2


# ----------------------------------------------------------------------- OU relaxation


def ou_relaxation_moments(
    t: float,
    m0: float,
    s0_sq: float,
    stiffness: float = 1.0,
    mobility: float = 1.0,
    temperature: float = 1.0,
) -> tuple[float, float]:
    """Mean and variance of p(x, t) for dx = -mu k x dt + sqrt(2 mu T) dW from N(m0, s0_sq).

    m(t) = m0 e^{-t/tau}, s^2(t) = T/k + (s0_sq - T/k) e^{-2t/tau}, tau = 1/(mu k).
    """
    _positive(
        s0_sq=s0_sq, stiffness=stiffness, mobility=mobility, temperature=temperature
    )
    tau = 1.0 / (mobility * stiffness)
    var_eq = temperature / stiffness
    return m0 * math.exp(-t / tau), var_eq + (s0_sq - var_eq) * math.exp(-2.0 * t / tau)


def ou_relaxation_log_density(
    x: torch.Tensor,
    t: float,
    m0: float,
    s0_sq: float,
    stiffness: float = 1.0,
    mobility: float = 1.0,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Exact ln p(x, t) of the OU relaxation from N(m0, s0_sq), summed over coordinates (nats).

    Returns
    -------
    torch.Tensor, shape (n_traj,)
    """
    m, v = ou_relaxation_moments(t, m0, s0_sq, stiffness, mobility, temperature)
    return _gaussian_log_density(x, m, v)


def gaussian_kl_divergence_1d(
    m: float, s_sq: float, m_ref: float, s_ref_sq: float
) -> float:
    """KL(N(m, s_sq) || N(m_ref, s_ref_sq)) in nats.

    = 1/2 [ (s_sq + (m - m_ref)^2) / s_ref_sq - 1 - ln(s_sq / s_ref_sq) ].
    """
    _positive(s_sq=s_sq, s_ref_sq=s_ref_sq)
    return 0.5 * (
        (s_sq + (m - m_ref) ** 2) / s_ref_sq - 1.0 - math.log(s_sq / s_ref_sq)
    )


def ou_relaxation_mean_entropy_production(
    t: float,
    m0: float,
    s0_sq: float,
    stiffness: float = 1.0,
    mobility: float = 1.0,
    temperature: float = 1.0,
) -> float:
    """Mean total entropy production of the OU relaxation, nats per coordinate.

    Notes
    -----
    With no work done, T <Delta s_tot> is the drop in non-equilibrium free energy, so
    <Delta s_tot>(t) = KL(p_0 || p_eq) - KL(p_t || p_eq), p_eq = N(0, T/k)
    (reference note, Sec. 1.3).

    Examples
    --------
    >>> round(ou_relaxation_mean_entropy_production(50.0, 1.0, 2.0), 6)  # -> KL(p0||p_eq)
    0.653426
    """
    var_eq = temperature / stiffness
    m, v = ou_relaxation_moments(t, m0, s0_sq, stiffness, mobility, temperature)
    return gaussian_kl_divergence_1d(
        m0, s0_sq, 0.0, var_eq
    ) - gaussian_kl_divergence_1d(m, v, 0.0, var_eq)


# ---------------------------------------------------------------------------- ULA chain


def ula_harmonic_moments(
    n: int,
    m0: float,
    s0_sq: float,
    step: float,
    stiffness: float = 1.0,
    temperature: float = 1.0,
) -> tuple[float, float]:
    """Mean and variance after n ULA steps in U = k x^2/2 from N(m0, s0_sq).

    Notes
    -----
    x_{n+1} = a x_n + sqrt(2 h T) xi with a = 1 - h k, so
    m_n = a^n m0 and s_n^2 = a^{2n} s0_sq + 2 h T (1 - a^{2n}) / (1 - a^2); the stationary
    variance 2hT/(1 - a^2) = T / (k (1 - hk/2)) exceeds T/k (reference note, Sec. 1.4).
    Requires 0 < h k < 2 (stable chain).
    """
    _positive(s0_sq=s0_sq, step=step, stiffness=stiffness, temperature=temperature)
    a = 1.0 - step * stiffness
    if abs(a) >= 1.0:
        raise ValueError(
            f"step * stiffness must lie in (0, 2) for a stable ULA chain, got "
            f"{step * stiffness!r}"
        )
    a2n = a ** (2 * n)
    return m0 * a**n, a2n * s0_sq + 2.0 * step * temperature * (1.0 - a2n) / (
        1.0 - a * a
    )


# ---------------------------------------------------------------------- two-bead model


def two_bead_linear_system(
    t_cold: float = 1.0,
    t_hot: float = 10.0,
    stiffness: float = 1.0,
    friction: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Matrices (A, D) of two beads between walls, for dx = -A x dt + sqrt(2D) dW.

    Parameters
    ----------
    t_cold, t_hot : float
        Bath temperatures T_1, T_2 > 0 of bead 1 and bead 2.
    stiffness : float
        Spring constant k of the three springs (wall-bead, bead-bead, bead-wall).
    friction : float
        Friction coefficient e (mobility 1/e).

    Returns
    -------
    A : ndarray, shape (2, 2)
        (k/e) [[2, -1], [-1, 2]].
    D : ndarray, shape (2, 2)
        diag(T_1, T_2) / e.

    Notes
    -----
    The NEEP benchmark of Kim et al. (2020) (``kdkyum/neep``, ``toy/bead_spring.py``).
    The steady-state entropy production rate is k (T_1 - T_2)^2 / (4 e T_1 T_2), 2.025 at
    (T_1, T_2) = (1, 10) with k = e = 1 (see :func:`two_bead_entropy_production_rate`).
    """
    _positive(t_cold=t_cold, t_hot=t_hot, stiffness=stiffness, friction=friction)
    A = stiffness / friction * np.array([[2.0, -1.0], [-1.0, 2.0]])
    D = np.diag([t_cold, t_hot]) / friction
    return A, D


def two_bead_entropy_production_rate(
    t_cold: float = 1.0,
    t_hot: float = 10.0,
    stiffness: float = 1.0,
    friction: float = 1.0,
) -> float:
    """Steady-state entropy production rate k (T_1 - T_2)^2 / (4 e T_1 T_2) (nats per unit time).

    Kim, Bae, Lee & Jeong, PRL 125, 140604 (2020), two-bead benchmark. An independent check of
    :func:`thermo_nb.estimators.entropy_production.linear_sde_entropy_production_rate`.

    Examples
    --------
    >>> two_bead_entropy_production_rate(1.0, 10.0)
    2.025
    """
    _positive(t_cold=t_cold, t_hot=t_hot, stiffness=stiffness, friction=friction)
    return stiffness * (t_cold - t_hot) ** 2 / (4.0 * friction * t_cold * t_hot)

r"""Simulated Langevin benchmarks with Seifert's entropy decomposition along each trajectory.

Each runner simulates an ensemble with Euler-Maruyama and returns, per trajectory (nats):
``system`` (Delta s = ln p_0(x_0) - ln p_t(x_t)), ``medium`` (Stratonovich heat / T),
``medium_ito`` (pre-point rule, biased), ``total`` = system + medium, and where a protocol
does work, ``work`` (energy units) and the free-energy change ``delta_f``.  Closed-form
means are returned next to them (``expected_*``), computed by
:mod:`thermo_nb.dynamics.exact` or by quadrature / the Fokker-Planck solver.

Benchmarks (k_B = 1, mu = k = T = 1 unless given):

* dragged trap V = k (x - v t)^2/2 from N(0, T/k)  (reference note sec. 1.2);
* OU relaxation V = k x^2/2 from N(m0, s0^2)     (sec. 1.3);
* tilted double well V = b (x^2-1)^2 - r t x from equilibrium, p(x, t) by Fokker-Planck.
"""

from __future__ import annotations

import numpy as np
import torch

from . import exact
from .driven_potentials import (
    protocol_work,
    tilted_double_well_force,
    tilted_double_well_free_energy,
    tilted_double_well_potential,
)
from .fokker_planck import (
    boltzmann_density_1d,
    sample_grid_density,
    solve_fokker_planck_1d,
)
from .langevin import euler_maruyama

__all__ = ["run_dragged_trap", "run_ou_relaxation", "run_tilted_double_well"]


def _time_grid(t_final: float, dt: float) -> torch.Tensor:
    if not (t_final > 0 and dt > 0 and dt < t_final):
        raise ValueError(f"need 0 < dt < t_final, got dt={dt}, t_final={t_final}")
    n = int(round(t_final / dt))
    return torch.linspace(0.0, t_final, n + 1, dtype=torch.float64)


def _decompose(X, t, force, log_density, temperature):
    from ..estimators.entropy_production import (
        medium_entropy_ito,
        medium_entropy_stratonovich,
        system_entropy,
    )

    system = system_entropy(X, t, log_density)
    medium = medium_entropy_stratonovich(X, t, force, temperature)
    medium_ito = medium_entropy_ito(X, t, force, temperature)
    return {
        "system": system.numpy(),
        "medium": medium.numpy(),
        "medium_ito": medium_ito.numpy(),
        "total": (system + medium).numpy(),
        "total_ito": (system + medium_ito).numpy(),
    }


def run_dragged_trap(
    n_traj: int,
    dt: float,
    seed: int,
    t_final: float = 2.0,
    stiffness: float = 1.0,
    mobility: float = 1.0,
    temperature: float = 1.0,
    velocity: float = 1.0,
) -> dict:
    """Dragged harmonic trap from equilibrium: decomposition, work and closed forms.

    Returns
    -------
    dict of per-trajectory numpy arrays (see module docstring) plus
    ``expected_total`` (<Delta s_tot>), ``expected_work`` (<W>), ``delta_f`` (= 0) and
    ``expected_ito_bias`` (<medium_ito - medium> = mu k t_final).
    """
    g = torch.Generator().manual_seed(int(seed))
    t = _time_grid(t_final, dt)
    x0 = (
        torch.randn(n_traj, 1, generator=g, dtype=torch.float64)
        * (temperature / stiffness) ** 0.5
    )
    force = lambda x, s: exact.dragged_trap_force(x, s, stiffness, velocity)  # noqa: E731
    X = euler_maruyama(force, x0, t, mobility, temperature, generator=g)
    logp = lambda x, s: exact.dragged_trap_log_density(  # noqa: E731
        x, s, stiffness, mobility, temperature, velocity
    )
    out = _decompose(X, t, force, logp, temperature)
    # d_t V(x, t) = -k v (x - v t)
    out["work"] = protocol_work(
        X, t, lambda x, s: -stiffness * velocity * (x[:, 0] - velocity * s)
    ).numpy()
    out.update(
        x_final=X[-1, :, 0].numpy(),
        delta_f=0.0,
        expected_total=exact.dragged_trap_mean_entropy_production(
            t_final, stiffness, mobility, temperature, velocity
        ),
        expected_work=exact.dragged_trap_mean_work(
            t_final, stiffness, mobility, velocity
        ),
        expected_ito_bias=mobility * stiffness * t_final,
    )
    return out


def run_ou_relaxation(
    n_traj: int,
    dt: float,
    seed: int,
    m0: float,
    s0_sq: float,
    t_final: float = 1.0,
    stiffness: float = 1.0,
    mobility: float = 1.0,
    temperature: float = 1.0,
) -> dict:
    """Relaxation in a fixed trap from N(m0, s0_sq): decomposition and the KL closed form.

    ``expected_total`` = KL(p_0 || p_eq) - KL(p_t || p_eq). Also returns ``medium_seed``,
    the medium entropy with the seed's sign (+(1/T) int grad V o dx = -medium) and
    ``total_seed`` = system + medium_seed, and ``total_seed_rate``: the time integral of
    the seed's total rate ``-d_t ln p + (1/T) grad V . x_dot`` (its sec. 4.1) along each path.
    """
    g = torch.Generator().manual_seed(int(seed))
    t = _time_grid(t_final, dt)
    x0 = m0 + s0_sq**0.5 * torch.randn(n_traj, 1, generator=g, dtype=torch.float64)
    force = lambda x, s: -stiffness * x  # noqa: E731
    X = euler_maruyama(force, x0, t, mobility, temperature, generator=g)
    logp = lambda x, s: exact.ou_relaxation_log_density(  # noqa: E731
        x, s, m0, s0_sq, stiffness, mobility, temperature
    )
    out = _decompose(X, t, force, logp, temperature)
    out["medium_seed"] = -out["medium"]
    out["total_seed"] = out["system"] + out["medium_seed"]
    # the seed's total rate -d_t ln p + (1/T) grad V . x_dot, integrated along the path:
    # int -d_t ln p dt = Delta s + int grad ln p o dx  (chain rule for s = -ln p(x(t), t))
    from ..estimators.entropy_production import medium_entropy_stratonovich

    def grad_log_p(x, s):
        m, v = exact.ou_relaxation_moments(
            s, m0, s0_sq, stiffness, mobility, temperature
        )
        return -(x - m) / v

    grad_term = medium_entropy_stratonovich(X, t, grad_log_p, 1.0).numpy()
    out["total_seed_rate"] = out["system"] + grad_term + out["medium_seed"]
    out.update(
        x_final=X[-1, :, 0].numpy(),
        expected_total=exact.ou_relaxation_mean_entropy_production(
            t_final, m0, s0_sq, stiffness, mobility, temperature
        ),
        expected_ito_bias=mobility * stiffness * t_final,
    )
    return out


def run_tilted_double_well(
    n_traj: int,
    dt: float,
    seed: int,
    t_final: float = 2.0,
    barrier: float = 1.0,
    tilt_rate: float = 1.0,
    temperature: float = 1.0,
    mobility: float = 1.0,
    x_max: float = 4.0,
    n_cells: int = 800,
    n_out: int = 201,
) -> dict:
    """Tilted double well from equilibrium, p(x, t) from the Fokker-Planck solver.

    The initial positions are drawn from the solver's own initial density (the cell-wise
    Boltzmann density), so simulation and solver start from the same p_0.

    Returns
    -------
    dict: the decomposition and ``work`` per trajectory, ``delta_f`` (quadrature),
    ``x_final`` (for the histogram check), ``fp`` (the FokkerPlanckSolution) and
    ``fp_total_mean`` = <Delta s_tot> from the density alone,
    ``(S(t) - S(0)) + (<W> - (<V_t> - <V_0>)) / T`` with
    ``<W> = fp_work_mean = -r int_0^t <x>_{p(s)} ds`` from the solver's densities (no
    ensemble average enters the reference), and ``fp_total_mean_ensemble_work``, the same
    with the ensemble's <W> (circular as a reference; kept for comparison).
    """
    g = torch.Generator().manual_seed(int(seed))
    rng = np.random.default_rng(int(seed))
    t = _time_grid(t_final, dt)
    edges = np.linspace(-x_max, x_max, n_cells + 1)
    p0 = boltzmann_density_1d(
        lambda x: tilted_double_well_potential(x, 0.0, barrier, tilt_rate),
        edges,
        temperature,
    )
    fp = solve_fokker_planck_1d(
        lambda x, s: tilted_double_well_force(x, s, barrier, tilt_rate),
        edges,
        p0,
        np.linspace(0.0, t_final, n_out),
        mobility=mobility,
        temperature=temperature,
        dt=min(float(dt) * 5, t_final / (n_out - 1)),
    )
    x0 = torch.as_tensor(sample_grid_density(edges, p0, n_traj, rng))[:, None]
    force = lambda x, s: tilted_double_well_force(x, s, barrier, tilt_rate)  # noqa: E731

    def logp(x, s):
        return torch.as_tensor(fp.log_density(x[:, 0].numpy(), s))

    X = euler_maruyama(force, x0, t, mobility, temperature, generator=g)
    out = _decompose(X, t, force, logp, temperature)
    out["work"] = protocol_work(X, t, lambda x, s: -tilt_rate * x[:, 0]).numpy()
    f0 = tilted_double_well_free_energy(0.0, barrier, tilt_rate, temperature)
    f1 = tilted_double_well_free_energy(t_final, barrier, tilt_rate, temperature)
    # ensemble average of Delta s_tot from the density: Delta S_shannon + <Q>/T,
    # Q = W - Delta V with <Delta V> from the FP densities
    v0 = (
        fp.p[0] * tilted_double_well_potential(fp.x, 0.0, barrier, tilt_rate)
    ).sum() * fp.h
    v1 = (
        fp.p[-1] * tilted_double_well_potential(fp.x, t_final, barrier, tilt_rate)
    ).sum() * fp.h
    S = fp.shannon_entropy()
    # <W> from the density alone: int_0^t <d_s V>_{p(s)} ds, d_s V = -r x (trapezoid)
    mean_x = (fp.p * fp.x[None, :]).sum(1) * fp.h
    fp_work = float(-tilt_rate * np.trapezoid(mean_x, fp.t))
    out.update(
        x_final=X[-1, :, 0].numpy(),
        delta_f=f1 - f0,
        fp=fp,
        edges=edges,
        fp_work_mean=fp_work,
        fp_total_mean=float(S[-1] - S[0] + (fp_work - (v1 - v0)) / temperature),
        fp_total_mean_ensemble_work=float(
            S[-1] - S[0] + (out["work"].mean() - (v1 - v0)) / temperature
        ),
    )
    return out

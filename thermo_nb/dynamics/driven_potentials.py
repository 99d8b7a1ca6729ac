r"""A non-Gaussian driven benchmark: the double well with a linearly growing tilt.

    V(x, t) = b (x^2 - 1)^2 - lambda(t) x,     lambda(t) = r t,
    F(x, t) = -d_x V = -4 b x (x^2 - 1) + lambda(t).

Started in equilibrium at lambda = 0, the density p(x, t) has no closed form; it is
obtained from :func:`thermo_nb.solve_fokker_planck_1d`.  The work of the protocol is
(Sekimoto; Seifert 2005)

    W = int_0^t d_lambda V(x(s), lambda(s)) lambda_dot ds = -r int_0^t x(s) ds,

and Jarzynski's equality reads ``<e^{-W/T}> = e^{-Delta F/T}`` with
``F(lambda) = -T ln int e^{-V(x, lambda)/T} dx`` (computed by quadrature).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "tilted_double_well_force",
    "tilted_double_well_potential",
    "tilted_double_well_free_energy",
    "protocol_work",
]


def tilted_double_well_potential(
    x, t: float, barrier: float = 1.0, tilt_rate: float = 1.0
):
    """V(x, t) = b (x^2 - 1)^2 - r t x (numpy or torch input, same type out)."""
    return barrier * (x * x - 1) ** 2 - tilt_rate * t * x


def tilted_double_well_force(x, t: float, barrier: float = 1.0, tilt_rate: float = 1.0):
    """F(x, t) = -4 b x (x^2 - 1) + r t (numpy or torch input, same type out).

    Examples
    --------
    >>> float(tilted_double_well_force(np.array(1.0), 2.0, tilt_rate=0.5))
    1.0
    """
    return -4.0 * barrier * x * (x * x - 1) + tilt_rate * t


def tilted_double_well_free_energy(
    t: float,
    barrier: float = 1.0,
    tilt_rate: float = 1.0,
    temperature: float = 1.0,
    x_max: float = 6.0,
    n_grid: int = 20001,
) -> float:
    """Equilibrium free energy F(lambda(t)) = -T ln int e^{-V(x,t)/T} dx (trapezoid rule).

    Examples
    --------
    >>> round(tilted_double_well_free_energy(0.0, barrier=0.0 + 1e-300, temperature=1.0,
    ...       x_max=3.0) - (-math.log(6.0)), 3)   # flat box of width 6
    0.0
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    x = np.linspace(-x_max, x_max, n_grid)
    v = tilted_double_well_potential(x, t, barrier, tilt_rate) / temperature
    vmin = v.min()
    return float(temperature * (vmin - math.log(np.trapezoid(np.exp(-(v - vmin)), x))))


def protocol_work(X, t, dV_dt) -> torch.Tensor:
    r"""Work W = int d_t V(x(s), s) ds along each trajectory (trapezoid rule), energy units.

    Parameters
    ----------
    X : (n_steps + 1, n_traj, d) tensor or array
    t : (n_steps + 1,) times
    dV_dt : callable ``(x, t) -> (n_traj,)``, the explicit time derivative of V at fixed x
        (for V(x, lambda(t)): d_lambda V * lambda_dot).

    Returns
    -------
    torch.Tensor (n_traj,)

    Notes
    -----
    Sekimoto's first law dV = dw - dq with dw = d_t V dt (Seifert 2005, below eq. 5).
    """
    X = torch.as_tensor(X)
    t = [float(s) for s in (t.tolist() if hasattr(t, "tolist") else t)]
    if X.ndim != 3 or X.shape[0] != len(t):
        raise ValueError(f"X must have shape (len(t), n_traj, d), got {tuple(X.shape)}")
    vals = torch.stack(
        [torch.as_tensor(dV_dt(X[i], t[i]), dtype=X.dtype) for i in range(len(t))]
    )
    dt = torch.as_tensor(np.diff(t), dtype=X.dtype)[:, None]
    return (0.5 * (vals[1:] + vals[:-1]) * dt).sum(0)

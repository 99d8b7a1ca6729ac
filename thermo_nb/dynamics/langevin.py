"""Overdamped Langevin integrators, vectorised over an ensemble of trajectories.

Two samplers share one array convention, ``X`` of shape ``(n_steps + 1, n_traj, d)``
(time first), which is what every trajectory estimator in
:mod:`thermo_nb.estimators.entropy_production` takes:

- :func:`euler_maruyama` integrates the continuous-time SDE
  ``dx = mu F(x, t) dt + sqrt(2 mu T) dW`` on a time grid;
- :func:`unadjusted_langevin` runs the discrete-time ULA chain
  ``x' = x - h grad U(x) + sqrt(2 h T) xi``, the Markov chain whose exact kernel-ratio
  entropy production is
  :func:`~thermo_nb.estimators.entropy_production.medium_entropy_kernel_ratio`.

Both run in torch on the device of ``x0`` and take an optional ``torch.Generator`` (on that
device) for reproducible noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from .._validation import per_coordinate
from ..runtime import progress

__all__ = ["euler_maruyama", "unadjusted_langevin"]

# Show a progress bar when a run costs more than this many (step x coordinate) updates.
_PROGRESS_THRESHOLD = 20_000_000


def _as_ensemble(x0, name: str = "x0") -> torch.Tensor:
    """Return ``x0`` as a float torch tensor of shape (n_traj, d)."""
    if isinstance(x0, np.ndarray):
        x0 = torch.from_numpy(np.asarray(x0, dtype=np.float64))
    if not isinstance(x0, torch.Tensor):
        raise ValueError(
            f"{name} must be a numpy array or torch tensor of shape (n_traj, d), "
            f"got {type(x0).__name__}"
        )
    if not torch.is_floating_point(x0):
        x0 = x0.to(torch.float64)
    if x0.ndim == 1:
        x0 = x0[:, None]
    if x0.ndim != 2 or x0.shape[0] < 1 or x0.shape[1] < 1:
        raise ValueError(
            f"{name} must have shape (n_traj, d) with n_traj, d >= 1, "
            f"got shape {tuple(x0.shape)}"
        )
    if not torch.isfinite(x0).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x0


def euler_maruyama(
    force: Callable,
    x0,
    t,
    mobility=1.0,
    temperature=1.0,
    generator: "torch.Generator | None" = None,
    progress_bar: "bool | None" = None,
) -> torch.Tensor:
    """Integrate overdamped Langevin dynamics with the Euler-Maruyama scheme.

    Parameters
    ----------
    force : callable
        ``force(x, t) -> F`` with ``x`` of shape (n_traj, d), ``t`` a Python float, and ``F``
        of the same shape as ``x`` (total force: ``-grad V`` plus any non-conservative part).
    x0 : array or tensor, shape (n_traj, d) or (n_traj,)
        Initial positions, one row per trajectory; sets device and dtype (numpy -> float64).
    t : array or tensor, shape (n_steps + 1,)
        Strictly increasing time grid (need not be uniform).
    mobility : float or array of shape (d,)
        mu > 0 (per coordinate allowed).
    temperature : float or array of shape (d,)
        T > 0 (k_B = 1; per coordinate allowed, e.g. beads coupled to different baths).
        The diffusion coefficient is the Einstein value D = mu T.
    generator : torch.Generator, optional
        Source of the Gaussian noise (on the device of ``x0``); ``None`` uses torch's global RNG.
    progress_bar : bool, optional
        ``None`` shows a bar only for large runs.

    Returns
    -------
    torch.Tensor, shape (n_steps + 1, n_traj, d)
        ``X[0] = x0`` and ``X[i+1] = X[i] + mu F(X[i], t_i) dt_i + sqrt(2 mu T dt_i) xi_i``.

    Notes
    -----
    Ito discretisation of dx = mu F(x, t) dt + sqrt(2 mu T) dW (Seifert 2005, Langevin
    equation; Einstein relation D = mu T). Weak order 1: averages carry an O(dt) bias, e.g. the
    stationary variance in a harmonic trap of stiffness k is (T/k)/(1 - mu k dt/2).

    References
    ----------
    P. E. Kloeden and E. Platen, *Numerical Solution of Stochastic Differential Equations*
    (Springer, 1992), Sec. 9.1.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> X = euler_maruyama(lambda x, t: -x, torch.zeros(1000, 1), torch.linspace(0, 1, 101),
    ...                    generator=g)
    >>> tuple(X.shape)
    (101, 1000, 1)
    """
    if not callable(force):
        raise ValueError(
            "force must be a callable force(x, t) -> tensor of the shape of x"
        )
    x0 = _as_ensemble(x0)
    n_traj, d = x0.shape
    t = torch.as_tensor(
        np.asarray(t, dtype=np.float64) if not isinstance(t, torch.Tensor) else t,
        dtype=torch.float64,
    )
    if t.ndim != 1 or t.shape[0] < 2:
        raise ValueError(
            f"t must be a 1-D time grid with at least 2 points, got shape "
            f"{tuple(t.shape)}"
        )
    if not torch.isfinite(t).all() or not (t[1:] > t[:-1]).all():
        raise ValueError("t must be finite and strictly increasing")
    mu = per_coordinate(mobility, "mobility", d, x0)
    T = per_coordinate(temperature, "temperature", d, x0)
    n_steps = t.shape[0] - 1
    times = t.tolist()
    X = torch.empty((n_steps + 1, n_traj, d), dtype=x0.dtype, device=x0.device)
    X[0] = x0
    noise_amp = torch.sqrt(2.0 * mu * T)
    if progress_bar is None:
        progress_bar = n_steps * n_traj * d > _PROGRESS_THRESHOLD
    steps = progress(
        range(n_steps), total=n_steps, desc="Euler-Maruyama", disable=not progress_bar
    )
    for i in steps:
        dt = times[i + 1] - times[i]
        x = X[i]
        F = force(x, times[i])
        if not isinstance(F, torch.Tensor) or F.shape != x.shape:
            raise ValueError(
                f"force(x, t) must return a tensor of shape {tuple(x.shape)}, got "
                f"{getattr(F, 'shape', type(F).__name__)}"
            )
        xi = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        X[i + 1] = x + mu * F * dt + noise_amp * math.sqrt(dt) * xi
    return X


def unadjusted_langevin(
    grad_potential: Callable,
    x0,
    n_steps: int,
    step: float,
    temperature=1.0,
    generator: "torch.Generator | None" = None,
    progress_bar: "bool | None" = None,
) -> torch.Tensor:
    """Run the unadjusted Langevin algorithm (ULA), a Gaussian-kernel Markov chain.

    Parameters
    ----------
    grad_potential : callable
        ``grad_potential(x, n) -> grad U`` with ``x`` of shape (n_traj, d) and ``n`` the step
        index (an int; lets the potential follow a protocol), same shape as ``x``.
    x0 : array or tensor, shape (n_traj, d) or (n_traj,)
        Initial states.
    n_steps : int
        Number of ULA steps (>= 1).
    step : float
        Step size h > 0.
    temperature : float or array of shape (d,)
        T > 0.
    generator : torch.Generator, optional
        Noise source on the device of ``x0``.
    progress_bar : bool, optional
        ``None`` shows a bar only for large runs.

    Returns
    -------
    torch.Tensor, shape (n_steps + 1, n_traj, d)

    Notes
    -----
    x_{n+1} = x_n - h grad U(x_n) + sqrt(2 h T) xi_n, i.e. the transition kernel
    K_n(x'|x) = N(x'; x - h grad U(x), 2hT I). Its stationary law is not exp(-U/T): for
    U = k x^2/2 the stationary variance is T/(k(1 - hk/2)) (reference note, Sec. 1.4).
    Use ``medium_entropy_kernel_ratio(X, lambda x, n: x - h*grad_potential(x, n), 2*h*T)``
    for the exact discrete-time medium entropy of these trajectories.

    References
    ----------
    G. O. Roberts and R. L. Tweedie, "Exponential convergence of Langevin distributions and
    their discrete approximations", Bernoulli 2, 341 (1996).

    Examples
    --------
    >>> import torch
    >>> X = unadjusted_langevin(lambda x, n: x, torch.zeros(500, 2), 50, 0.1)
    >>> tuple(X.shape)
    (51, 500, 2)
    """
    if not callable(grad_potential):
        raise ValueError(
            "grad_potential must be a callable grad_potential(x, n) -> tensor"
        )
    x0 = _as_ensemble(x0)
    if (
        isinstance(n_steps, bool)
        or not isinstance(n_steps, (int, np.integer))
        or n_steps < 1
    ):
        raise ValueError(f"n_steps must be an int >= 1, got {n_steps!r}")
    if not (
        isinstance(step, (int, float, np.floating)) and math.isfinite(step) and step > 0
    ):
        raise ValueError(f"step must be a finite float > 0, got {step!r}")
    n_traj, d = x0.shape
    T = per_coordinate(temperature, "temperature", d, x0)
    amp = torch.sqrt(2.0 * step * T)
    X = torch.empty((n_steps + 1, n_traj, d), dtype=x0.dtype, device=x0.device)
    X[0] = x0
    if progress_bar is None:
        progress_bar = n_steps * n_traj * d > _PROGRESS_THRESHOLD
    for n in progress(
        range(n_steps), total=n_steps, desc="ULA", disable=not progress_bar
    ):
        x = X[n]
        g = grad_potential(x, n)
        if not isinstance(g, torch.Tensor) or g.shape != x.shape:
            raise ValueError(
                f"grad_potential(x, n) must return a tensor of shape "
                f"{tuple(x.shape)}, got {getattr(g, 'shape', type(g).__name__)}"
            )
        xi = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        X[n + 1] = x - step * g + amp * xi
    return X

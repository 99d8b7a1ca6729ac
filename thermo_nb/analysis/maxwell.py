r"""The ideal-gas paper's quadratic-surface test of the Maxwell-type relations.

The stationary entropy :math:`S(\log\eta, \log\lambda)` measured on a hyperparameter grid
is smoothed by a quadratic polynomial (natural logarithms, as in the paper's notebooks)

.. math::

    S \approx a_0 + a_1 x + a_2 y + a_3 x^2 + a_4 y^2 + a_5 xy, \qquad
    x = \log\eta,\ y = \log\lambda,

whose derivatives :math:`\partial S/\partial x = a_1 + 2a_3x + a_5y` and
:math:`\partial S/\partial y = a_2 + 2a_4y + a_5x` are compared with the ideal-gas
predictions (:func:`thermo_nb.theory.ideal_gas.maxwell_slopes`):

* fixed ELR: :math:`\partial S/\partial\log\lambda = -(D-1)/2`;
* fixed LR: :math:`\partial S/\partial\log\eta - \partial S/\partial\log\lambda = (D-1)/2`.

Reported, as in the paper's table: :math:`R^2` of the fit, the maximal relative error of
the tested combination over the grid, and the normalised linear coefficient
(:math:`a_2/((D-1)/2)` or :math:`(a_1-a_2)/((D-1)/2)`); in addition the combination at the
centre of the grid, with standard errors from the fit's covariance.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["MaxwellFit", "fit_maxwell_surface", "zero_step_extrapolation"]


class MaxwellFit(NamedTuple):
    """Result of :func:`fit_maxwell_surface` (see the module docstring)."""

    coef: np.ndarray
    """``(a0, ..., a5)``."""
    cov: np.ndarray
    """Covariance of ``coef`` (6 x 6)."""
    r2: float
    """Coefficient of determination of the quadratic fit."""
    combination: np.ndarray
    """Tested slope combination at every grid point, normalised by ``(D-1)/2``."""
    expected: float
    """Its predicted value (-1 for fixed ELR, +1 for fixed LR, normalised)."""
    max_rel_error: float
    """``max |combination - expected| / |expected|`` over the grid."""
    max_rel_error_se: float
    """Standard error of ``max_rel_error`` (parametric bootstrap of ``coef``)."""
    linear: float
    """The paper's normalised linear coefficient: ``a2/h`` (ELR) or ``(a1-a2)/h`` (LR)."""
    linear_se: float
    centre: float
    """The normalised combination at the centre of the grid."""
    centre_se: float
    slopes_centre: tuple
    """``(dS/dlog eta, dS/dlog wd)`` at the grid centre (not normalised)."""
    slopes_centre_se: tuple


def _design(x, y):
    return np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=-1)


def fit_maxwell_surface(
    eta, wd, entropy, *, dim, protocol, entropy_se=None, n_boot=2000, seed=0
) -> MaxwellFit:
    r"""Fit the quadratic entropy surface and evaluate the Maxwell-type relation.

    Parameters
    ----------
    eta, wd : array_like, shape (n_a,), (n_b,)
        Grid axes: (effective) learning rate and weight decay (positive).
    entropy : array_like, shape (n_a, n_b)
        Stationary entropy :math:`S_\text{full}` (nats) at every grid point; NaN entries
        (for example grid points that failed a stationarity gate) are left out of the fit.
    dim : int
        ``D`` (the normalisation is :math:`h=(D-1)/2`).
    protocol : {"fixed_elr", "fixed_lr"}
    entropy_se : array_like, optional
        Standard errors of ``entropy``: weighted least squares, covariance scaled by the
        reduced chi-square when it exceeds 1. Without it: ordinary least squares with the
        residual variance.
    n_boot : int
        Parametric-bootstrap draws for the error of ``max_rel_error``.
    seed : int

    Returns
    -------
    MaxwellFit

    Notes
    -----
    Quadratic smoothing in :math:`(\log\eta, \log\lambda)`, natural logarithms, as in the
    ideal-gas paper's plot notebooks (arXiv:2511.07308, code
    ``isadrtdinov/neural-nets-ideal-gas``); cross terms :math:`a_5` near 0 mean nearly
    constant derivatives.
    """
    if protocol not in ("fixed_elr", "fixed_lr"):
        raise ValueError(
            f"protocol must be 'fixed_elr' or 'fixed_lr', got {protocol!r}"
        )
    lx, ly = np.log(np.asarray(eta, float)), np.log(np.asarray(wd, float))
    s = np.asarray(entropy, float)
    if s.shape != (lx.size, ly.size):
        raise ValueError(f"entropy must have shape {(lx.size, ly.size)}, got {s.shape}")
    gx, gy = np.meshgrid(lx, ly, indexing="ij")
    ok = np.isfinite(s)
    if ok.sum() < 7:
        raise ValueError("need at least 7 finite grid points for a 6-parameter fit")
    xf, yf, sf = gx[ok], gy[ok], s[ok]
    a = _design(xf, yf)
    if entropy_se is not None:
        w = 1.0 / np.asarray(entropy_se, float)[ok] ** 2
    else:
        w = np.ones_like(sf)
    aw = a * w[:, None]
    xtwx = a.T @ aw
    coef = np.linalg.solve(xtwx, aw.T @ sf)
    resid = sf - a @ coef
    dof = max(sf.size - 6, 1)
    chi2 = float((w * resid**2).sum() / dof)
    scale = max(chi2, 1.0) if entropy_se is not None else chi2
    cov = np.linalg.inv(xtwx) * scale
    cov = 0.5 * (cov + cov.T)  # exact symmetry for the bootstrap draws
    r2 = 1.0 - float((resid**2).sum() / ((sf - sf.mean()) ** 2).sum())
    h = (dim - 1) / 2.0

    def combo(c, x, y):
        d_eta = c[..., 1, None] + 2 * c[..., 3, None] * x + c[..., 5, None] * y
        d_wd = c[..., 2, None] + 2 * c[..., 4, None] * y + c[..., 5, None] * x
        return (d_wd if protocol == "fixed_elr" else d_eta - d_wd) / h

    expected = -1.0 if protocol == "fixed_elr" else 1.0
    comb = combo(coef, gx.ravel(), gy.ravel()).reshape(gx.shape)
    max_rel = float(np.max(np.abs(comb[ok] - expected)) / abs(expected))
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal(coef, cov, size=n_boot, method="eigh")
    boot = np.abs(combo(draws, xf, yf) - expected).max(axis=1)
    lin_vec = np.zeros(6)
    if protocol == "fixed_elr":
        lin_vec[2] = 1.0
    else:
        lin_vec[1], lin_vec[2] = 1.0, -1.0
    lin_vec /= h
    xc, yc = 0.5 * (lx.min() + lx.max()), 0.5 * (ly.min() + ly.max())
    g_eta = np.array([0, 1, 0, 2 * xc, 0, yc])
    g_wd = np.array([0, 0, 1, 0, 2 * yc, xc])
    c_vec = (g_wd if protocol == "fixed_elr" else g_eta - g_wd) / h
    se = lambda v: float(np.sqrt(v @ cov @ v))  # noqa: E731
    return MaxwellFit(
        coef=coef,
        cov=cov,
        r2=r2,
        combination=comb,
        expected=expected,
        max_rel_error=max_rel,
        max_rel_error_se=float(boot.std(ddof=1)),
        linear=float(lin_vec @ coef),
        linear_se=se(lin_vec),
        centre=float(c_vec @ coef),
        centre_se=se(c_vec),
        slopes_centre=(float(g_eta @ coef), float(g_wd @ coef)),
        slopes_centre_se=(se(g_eta), se(g_wd)),
    )


def zero_step_extrapolation(x, y, y_se, degree: int = 2):
    r"""Weighted polynomial fit :math:`y = c_0 + c_1x + \dots + c_kx^k`; returns the
    intercept, the value as the step parameter :math:`x\to0`.

    Parameters
    ----------
    x : array_like
        Small parameter of the discretisation (e.g. the temperature :math:`T\propto\eta`).
    y : array_like
        Measured deviation from a continuous-time law (e.g. relative radius error).
    y_se : array_like
        Standard errors of ``y`` (weights :math:`1/\mathrm{se}^2`).
    degree : int
        Polynomial degree ``k`` (>= 1).

    Returns
    -------
    tuple
        ``(c0, se(c0), coefficients, reduced_chi2)``; the covariance is scaled by the
        reduced chi-square when it exceeds 1.

    Notes
    -----
    A Richardson-type extrapolation in the step size: a continuous-time law holds if the
    extrapolated deviation :math:`c_0` is zero within its error, whatever the
    :math:`O(\eta)` bias at finite step.
    """
    x, y, se = (np.asarray(v, float).ravel() for v in (x, y, y_se))
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(se) & (se > 0)
    x, y, se = x[ok], y[ok], se[ok]
    if x.size < degree + 2:
        raise ValueError(f"need at least {degree + 2} finite points, got {x.size}")
    a = np.vander(x, degree + 1, increasing=True)
    w = 1.0 / se**2
    aw = a * w[:, None]
    xtwx = a.T @ aw
    coef = np.linalg.solve(xtwx, aw.T @ y)
    chi2 = float((w * (y - a @ coef) ** 2).sum() / max(x.size - degree - 1, 1))
    cov = np.linalg.inv(xtwx) * max(chi2, 1.0)
    return float(coef[0]), float(np.sqrt(cov[0, 0])), coef, chi2

r"""Closed forms of the ideal-gas picture of scale-invariant SGD (arXiv 2511.07308).

Symbols (those of ``book/ideal_gas.ipynb``): ``D`` the number of scale-invariant
parameters (the weights live in :math:`\mathbb R^D`, their direction on
:math:`S^{D-1}`), ``eta`` the (effective) learning rate, ``wd`` the weight decay
:math:`\lambda`, ``sigma_sq`` the per-dimension gradient-noise variance on the unit sphere
:math:`\sigma^2 = \operatorname{tr}\Sigma_\text{unit}/(D-1)`, ``grad_sq`` the mean squared
unit-sphere gradient :math:`G = \mathbb E\|g_\text{unit}\|^2 =
\operatorname{tr}\Sigma_\text{unit} + \|\bar g_\text{unit}\|^2`.

Thermodynamic dictionary: temperature :math:`T`, pressure :math:`p = \lambda`, volume
:math:`V = r^2/2`, "particle number" :math:`(D-1)/2`, ideal-gas law
:math:`pV = \frac{D-1}{2}T` (eq. ``ideal-gas-law`` of the chapter).

The stationary direction of the isotropic-noise model (loss :math:`1 + \langle\mu,
\hat x\rangle`) is von Mises-Fisher with concentration :math:`\kappa = 1/T` and mean
direction :math:`-\mu`; its energy and entropy are given here exactly (log-Bessel
normaliser) and in the large-:math:`\kappa` (equipartition) limit.

References
----------
I. Sadrtdinov, E. Lobacheva, I. Klimov, M. Katsnelson, D. Vetrov, "Can training dynamics
of scale-invariant neural networks be explained by the thermodynamics of an ideal gas?",
arXiv:2511.07308 (2025). Z. Li, K. Lyu, S. Arora, "Reconciling modern deep learning with
traditional optimization analyses: the intrinsic learning rate", arXiv:2010.02916 (2020).
R. Wan et al., "Spherical motion dynamics", arXiv:2006.08419 (2021).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "temperature_fixed_elr",
    "temperature_fixed_lr",
    "ideal_gas_radius_sq_fixed_elr",
    "ideal_gas_radius_fixed_lr",
    "discrete_radius_sq_fixed_elr",
    "discrete_radius_fixed_lr",
    "ideal_gas_pressure",
    "discrete_pressure_fixed_sphere",
    "vmf_log_normaliser",
    "vmf_mean_resultant",
    "vmf_energy",
    "vmf_entropy",
    "vmf_mean_sin_sq",
    "vmf_energy_large_kappa",
    "vmf_entropy_large_kappa",
    "gibbs_potential",
    "maxwell_slopes",
    "norm_relaxation_time",
    "vmf_kappa_from_energy",
]


def _arr(x):
    return np.asarray(x, dtype=float)


def temperature_fixed_elr(eta_eff, sigma_sq):
    r"""Temperature at a fixed effective (angular) learning rate.

    Parameters
    ----------
    eta_eff : float or array
        Effective learning rate :math:`\eta_\text{eff} = \text{lr}/\|w\|^2`.
    sigma_sq : float or array
        Per-dimension gradient-noise variance on the unit sphere.

    Returns
    -------
    float or ndarray
        :math:`T = \eta_\text{eff}\sigma^2/2`.

    Notes
    -----
    Langevin limit of SGD on the sphere with isotropic tangent noise of variance
    :math:`\sigma^2` per dimension: the step :math:`-\eta(\nabla L + \sigma\xi)` has
    diffusion :math:`\eta^2\sigma^2/2` and mobility :math:`\eta`, so :math:`T = D/\mu =
    \eta\sigma^2/2` (fixed ELR and fixed sphere, arXiv:2511.07308).
    """
    return _arr(eta_eff) * _arr(sigma_sq) / 2.0


def temperature_fixed_lr(eta, wd, sigma_sq, dim):
    r"""Temperature at a fixed learning rate with weight decay.

    Parameters
    ----------
    eta, wd : float or array
        Learning rate :math:`\eta` and weight decay :math:`\lambda`.
    sigma_sq : float or array
        Per-dimension unit-sphere noise variance :math:`\sigma^2`.
    dim : int
        Number of scale-invariant parameters ``D``.

    Returns
    -------
    float or ndarray
        :math:`T = \sqrt{\eta\lambda\sigma^2/(2(D-1))}`.

    Notes
    -----
    :math:`T = \eta_\text{eff}\sigma^2/2` with :math:`\eta_\text{eff} = \eta/r^2` at the
    stationary radius :func:`ideal_gas_radius_fixed_lr`.
    """
    return np.sqrt(_arr(eta) * _arr(wd) * _arr(sigma_sq) / (2.0 * (dim - 1)))


def ideal_gas_radius_sq_fixed_elr(eta_eff, wd, sigma_sq, dim):
    r"""Stationary squared radius at fixed ELR from the ideal-gas law.

    Parameters
    ----------
    eta_eff, wd, sigma_sq : float or array
    dim : int

    Returns
    -------
    float or ndarray
        :math:`r^2 = (D-1)T/\lambda = (D-1)\eta_\text{eff}\sigma^2/(2\lambda)`.

    Notes
    -----
    :math:`pV = \frac{D-1}{2}T` with :math:`p=\lambda`, :math:`V=r^2/2`.
    """
    return (dim - 1) * temperature_fixed_elr(eta_eff, sigma_sq) / _arr(wd)


def ideal_gas_radius_fixed_lr(eta, wd, sigma_sq, dim):
    r"""Stationary radius at fixed LR from the ideal-gas law (Li, Lyu & Arora 2020).

    Parameters
    ----------
    eta, wd, sigma_sq : float or array
    dim : int

    Returns
    -------
    float or ndarray
        :math:`r = \big((D-1)\eta\sigma^2/(2\lambda)\big)^{1/4}`.

    Notes
    -----
    :math:`r^2 = (D-1)T/\lambda` with :math:`T` of :func:`temperature_fixed_lr`.
    """
    return ((dim - 1) * _arr(eta) * _arr(sigma_sq) / (2.0 * _arr(wd))) ** 0.25


def discrete_radius_sq_fixed_elr(eta_eff, wd, grad_sq, exact=False):
    r"""Discretised stationary squared radius at fixed ELR.

    Parameters
    ----------
    eta_eff, wd : float or array
    grad_sq : float or array
        :math:`G = \mathbb E\|g_\text{unit}\|^2` (noise trace plus squared mean gradient).
    exact : bool
        False: the paper's first-order form; True: the fixed point of the mean recursion.

    Returns
    -------
    float or ndarray
        :math:`r^2 = \eta G/(2\lambda)` or, exactly,
        :math:`r^2 = (1-\sqrt{1-\eta^2G})/(\eta\lambda)`.

    Notes
    -----
    From the norm recursion of coupled weight decay with :math:`g \perp w`
    (van Laarhoven 2017): :math:`\|w'\|^2 = (1-\text{lr}\,\lambda)^2\|w\|^2 +
    \text{lr}^2\|g\|^2` with :math:`\text{lr} = \eta r^2`, :math:`\|g\|^2 =
    \|g_\text{unit}\|^2/r^2`, averaged over the noise at fixed :math:`r`.
    """
    eta, wd, g = _arr(eta_eff), _arr(wd), _arr(grad_sq)
    if exact:
        return (1.0 - np.sqrt(1.0 - eta**2 * g)) / (eta * wd)
    return eta * g / (2.0 * wd)


def discrete_radius_fixed_lr(eta, wd, grad_sq, exact=False):
    r"""Discretised stationary radius at fixed LR.

    Parameters
    ----------
    eta, wd : float or array
    grad_sq : float or array
        :math:`G = \mathbb E\|g_\text{unit}\|^2`.
    exact : bool
        False: :math:`r^4 = \eta G/(2\lambda)`; True: :math:`r^4 = \eta G/(\lambda(2-\eta
        \lambda))`, the fixed point of the mean recursion.

    Returns
    -------
    float or ndarray
        The radius :math:`r`.

    Notes
    -----
    :math:`r'^2 = (1-\eta\lambda)^2 r^2 + \eta^2 G/r^2` (van Laarhoven 2017).
    """
    eta, wd, g = _arr(eta), _arr(wd), _arr(grad_sq)
    denom = wd * (2.0 - eta * wd) if exact else 2.0 * wd
    return (eta * g / denom) ** 0.25


def ideal_gas_pressure(temperature, radius, dim):
    r"""Pressure of the ideal gas at temperature ``T`` on the sphere of radius ``r``.

    Parameters
    ----------
    temperature, radius : float or array
    dim : int

    Returns
    -------
    float or ndarray
        :math:`p = (D-1)T/r^2` (:math:`pV = \frac{D-1}{2}T`, :math:`V = r^2/2`).

    Notes
    -----
    Fixed-sphere protocol of arXiv:2511.07308: the measured pressure is the weight decay
    that would balance the outward radial drift of one SGD step.
    """
    return (dim - 1) * _arr(temperature) / _arr(radius) ** 2


def discrete_pressure_fixed_sphere(eta_eff, grad_sq, radius):
    r"""Discretised pressure on the fixed sphere.

    Parameters
    ----------
    eta_eff, grad_sq, radius : float or array

    Returns
    -------
    float or ndarray
        :math:`p = \eta G/(2r^2)`.

    Notes
    -----
    One step of lr :math:`\eta r^2` moves :math:`\|w\|` from :math:`r` to
    :math:`r\sqrt{1+\eta^2\|g_\text{unit}\|^2}`; the measured pressure is
    :math:`(\mathbb E\|w'\| - r)/(\eta r^3) \approx \eta G/(2r^2)`.
    """
    return _arr(eta_eff) * _arr(grad_sq) / (2.0 * _arr(radius) ** 2)


# ----------------------------------------------------------------- von Mises-Fisher


def _log_bessel_iv(nu, kappa):
    from scipy.special import ive

    kappa = _arr(kappa)
    return np.log(ive(nu, kappa)) + kappa


def vmf_log_normaliser(kappa, dim):
    r"""Log normaliser :math:`\log C_D(\kappa)` of the von Mises-Fisher density on
    :math:`S^{D-1}`.

    Parameters
    ----------
    kappa : float or array, > 0
    dim : int >= 2
        Ambient dimension ``D``.

    Returns
    -------
    float or ndarray
        :math:`\log C_D(\kappa) = (D/2-1)\log\kappa - (D/2)\log 2\pi - \log
        I_{D/2-1}(\kappa)`, density :math:`C_D(\kappa)e^{\kappa\langle\nu,x\rangle}` with
        respect to the surface measure.

    Notes
    -----
    Evaluated with the exponentially scaled Bessel function (``scipy.special.ive``).
    """
    kappa = _arr(kappa)
    nu = dim / 2.0 - 1.0
    return (
        nu * np.log(kappa)
        - (dim / 2.0) * math.log(2 * math.pi)
        - _log_bessel_iv(nu, kappa)
    )


def vmf_mean_resultant(kappa, dim):
    r"""Mean resultant length :math:`A_D(\kappa) = I_{D/2}(\kappa)/I_{D/2-1}(\kappa)`.

    Parameters
    ----------
    kappa : float or array
    dim : int

    Returns
    -------
    float or ndarray
        :math:`\mathbb E\langle\nu, x\rangle` under vMF(:math:`\nu, \kappa`).

    Notes
    -----
    For ``D = 3``: :math:`\coth\kappa - 1/\kappa`.
    """
    from scipy.special import ive

    kappa = _arr(kappa)
    return ive(dim / 2.0, kappa) / ive(dim / 2.0 - 1.0, kappa)


def vmf_energy(kappa, dim):
    r"""Mean loss :math:`U = 1 - A_D(\kappa)` of the isotropic model at vMF equilibrium.

    Parameters
    ----------
    kappa : float or array
    dim : int

    Returns
    -------
    float or ndarray
        :math:`U = \mathbb E[1 + \langle\mu, \hat x\rangle] = 1 - A_D(\kappa)`.

    Notes
    -----
    Mean direction :math:`-\mu`, :math:`\kappa = 1/T`.
    """
    return 1.0 - vmf_mean_resultant(kappa, dim)


def vmf_entropy(kappa, dim):
    r"""Differential entropy of vMF on :math:`S^{D-1}` (surface measure), nats.

    Parameters
    ----------
    kappa : float or array
    dim : int

    Returns
    -------
    float or ndarray
        :math:`S = -\log C_D(\kappa) - \kappa A_D(\kappa)`.

    Notes
    -----
    ``D = 3``: :math:`S = \log(4\pi\sinh\kappa/\kappa) - \kappa\coth\kappa + 1`.
    As :math:`\kappa\to0`, :math:`S \to \log|S^{D-1}|`.
    """
    kappa = _arr(kappa)
    return -vmf_log_normaliser(kappa, dim) - kappa * vmf_mean_resultant(kappa, dim)


def vmf_mean_sin_sq(kappa, dim):
    r"""Mean squared tangent gradient :math:`\mathbb E\|P_x\mu\|^2 = \mathbb E\sin^2\theta`.

    Parameters
    ----------
    kappa : float or array
    dim : int

    Returns
    -------
    float or ndarray
        :math:`(D-1)A_D(\kappa)/\kappa`.

    Notes
    -----
    From :math:`\mathbb E\cos^2\theta = 1 - (D-1)A_D(\kappa)/\kappa` (second moment of vMF).
    The unit-sphere gradient of the isotropic model is :math:`P_x\mu + \sigma P_x\xi`, so
    :math:`G = (D-1)\sigma^2 + (D-1)A_D/\kappa`.
    """
    kappa = _arr(kappa)
    return (dim - 1) * vmf_mean_resultant(kappa, dim) / kappa


def vmf_energy_large_kappa(temperature, dim):
    r"""Equipartition energy :math:`U = (D-1)T/2`.

    Parameters
    ----------
    temperature : float or array
    dim : int

    Returns
    -------
    float or ndarray

    Notes
    -----
    Large-:math:`\kappa` limit of :func:`vmf_energy` (arXiv:2511.07308, ``VMF.ipynb``).
    """
    return (dim - 1) * _arr(temperature) / 2.0


def vmf_entropy_large_kappa(temperature, dim):
    r"""Large-:math:`\kappa` entropy on the unit sphere, :math:`\frac{D-1}{2}\log(2\pi eT)`.

    Parameters
    ----------
    temperature : float or array
    dim : int

    Returns
    -------
    float or ndarray

    Notes
    -----
    A Gaussian of variance :math:`T` in each of the :math:`D-1` tangent directions.
    """
    return (dim - 1) / 2.0 * np.log(2 * math.pi * math.e * _arr(temperature))


def gibbs_potential(energy, entropy_full, volume, temperature, pressure):
    r"""Gibbs potential :math:`G = U - TS + pV` at a target ``(T, p)``.

    Parameters
    ----------
    energy, entropy_full, volume : float or array
        :math:`U`, :math:`S_\text{full}` and :math:`V = r^2/2` of candidate states (e.g.
        every point of a hyperparameter grid).
    temperature, pressure : float
        The target :math:`T` and :math:`p`.

    Returns
    -------
    float or ndarray

    Notes
    -----
    :math:`S_\text{full} = S_\text{sphere} + (D-1)\log r`. With the vMF forms,
    :math:`\partial G/\partial T' = 0` gives :math:`T'=T` and :math:`\partial G/\partial
    V'=0` gives the ideal-gas law, so the minimiser over the grid is the training point.
    """
    return _arr(energy) - temperature * _arr(entropy_full) + pressure * _arr(volume)


def maxwell_slopes(protocol, dim):
    r"""Predicted entropy derivatives :math:`(\partial S/\partial\log\eta,
    \partial S/\partial\log\lambda)` of the isotropic ideal gas.

    Parameters
    ----------
    protocol : {"fixed_elr", "fixed_lr"}
    dim : int

    Returns
    -------
    dict
        ``{"d_log_eta", "d_log_wd", "combination", "combination_expected"}``. The
        combination tested on networks is :math:`\partial S/\partial\log\lambda` (fixed
        ELR, expected :math:`-(D-1)/2`) and :math:`\partial S/\partial\log\eta -
        \partial S/\partial\log\lambda` (fixed LR, expected :math:`(D-1)/2`).

    Notes
    -----
    Large-:math:`\kappa` forms: :math:`S_\text{full} = \frac{D-1}{2}\log(2\pi eT) +
    \frac{D-1}{2}\log r^2`. Fixed ELR: :math:`T\propto\eta`, :math:`r^2\propto\eta/
    \lambda`. Fixed LR: :math:`T\propto\sqrt{\eta\lambda}`, :math:`r^2\propto
    \sqrt{\eta/\lambda}`.
    """
    h = (dim - 1) / 2.0
    if protocol == "fixed_elr":
        return {
            "d_log_eta": 2 * h,
            "d_log_wd": -h,
            "combination": "dS/dlog(wd)",
            "combination_expected": -h,
        }
    if protocol == "fixed_lr":
        return {
            "d_log_eta": h,
            "d_log_wd": 0.0,
            "combination": "dS/dlog(eta) - dS/dlog(wd)",
            "combination_expected": h,
        }
    raise ValueError(f"protocol must be 'fixed_elr' or 'fixed_lr', got {protocol!r}")


def norm_relaxation_time(protocol, eta, wd, grad_sq=None):
    r"""Relaxation time (steps) of the squared norm to its stationary value.

    Parameters
    ----------
    protocol : {"fixed_lr", "fixed_elr"}
    eta, wd : float or array
    grad_sq : float or array, optional
        :math:`G` (needed for ``fixed_elr``).

    Returns
    -------
    float or ndarray
        Fixed LR: :math:`\tau = 1/(4\eta\lambda)` (the e-folding time of
        :math:`r^4 - r_*^4`, exact in the continuous limit). Fixed ELR:
        :math:`\tau = 1/(\eta^2 G) = 1/(2\eta\lambda r_*^2)` (linearised).

    Notes
    -----
    Continuous limit of :math:`u' = (1-\eta\lambda)^2u + \eta^2G/u` (:math:`u=r^2`):
    :math:`\frac{d}{dt}u^2 = -4\eta\lambda u^2 + 2\eta^2 G`, so :math:`u^2` relaxes
    exponentially at rate :math:`4\eta\lambda`, the constant in Li, Lyu & Arora's
    :math:`O(1/(\eta\lambda))`. Fixed ELR: :math:`\dot u = \eta^2Gu - 2\eta\lambda u^2`
    (logistic), linear rate :math:`\eta^2 G`.
    """
    eta, wd = _arr(eta), _arr(wd)
    if protocol == "fixed_lr":
        return 1.0 / (4.0 * eta * wd)
    if protocol == "fixed_elr":
        if grad_sq is None:
            raise ValueError("fixed_elr needs grad_sq")
        return 1.0 / (eta**2 * _arr(grad_sq))
    raise ValueError(f"protocol must be 'fixed_elr' or 'fixed_lr', got {protocol!r}")


def vmf_kappa_from_energy(energy, dim):
    r"""Invert :func:`vmf_energy`: the concentration whose vMF mean loss is ``energy``.

    Parameters
    ----------
    energy : float or array, in (0, 1)
        Measured mean loss :math:`U` of the isotropic model.
    dim : int

    Returns
    -------
    float or ndarray
        :math:`\kappa` with :math:`1 - A_D(\kappa) = U` (NaN outside (0, 1)); the
        temperature read off the angular distribution is :math:`T_U = 1/\kappa`.

    Notes
    -----
    Root of a monotone function of :math:`\log\kappa` (Brent's method), bracketed in
    :math:`[10^{-6}, 10^{8}]`.
    """
    from scipy.optimize import brentq

    u = _arr(energy)
    out = np.full(u.shape, np.nan)
    flat = out.reshape(-1)
    for i, ui in enumerate(u.reshape(-1)):
        if 0.0 < ui < 1.0:
            f = lambda lk, u0=ui: float(vmf_energy(np.exp(lk), dim)) - u0  # noqa: E731
            lo, hi = math.log(1e-6), math.log(1e8)
            if f(lo) * f(hi) < 0:
                flat[i] = math.exp(brentq(f, lo, hi, xtol=1e-12))
    return out if out.ndim else float(out)

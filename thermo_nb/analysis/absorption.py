"""Information-absorption kinetics: exponential (constant rate) against power-law decay.

The seed (002, "Information Absorption Efficiency") writes the uptake of information per
unit compute as

    dI/dC = eta(C) [I(theta_inf) - I(theta_t)],

so a *constant* ``eta`` predicts an exponential approach ``I_inf - I(C) ∝ exp(-eta C)``,
while scaling laws (Kaplan et al. 2020; Hoffmann et al. 2022) report a power law in
compute. Here the information still to absorb is read as the excess training loss
``L(C) - L_inf`` (nats per example), and both laws are fitted to a measured loss curve.
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import positive_array

__all__ = ["fit_absorption_kinetics", "binned_loss_curve"]


def binned_loss_curve(C, loss, *, n_bins: int = 24) -> dict:
    """Mean loss in logarithmically spaced bins of compute, with standard errors.

    Parameters
    ----------
    C : array_like (n,)
        Cumulative compute (FLOP) at each recorded step, > 0.
    loss : array_like (n,)
        Loss recorded at those steps (e.g. noisy minibatch losses), finite.
    n_bins : int
        Bins over ``[min C, max C]`` on a log scale, >= 4; bins with fewer than 2 points
        are dropped.

    Returns
    -------
    dict of ndarrays
        ``C`` (geometric mean of the bin), ``loss`` (mean), ``loss_se`` (standard error of
        the mean), ``count``.
    """
    C = positive_array("C", C).ravel()
    loss = np.asarray(loss, float).ravel()
    if loss.size != C.size or not np.all(np.isfinite(loss)):
        raise ValueError("loss must be finite and as long as C")
    if not isinstance(n_bins, int) or n_bins < 4:
        raise ValueError(f"n_bins must be an int >= 4; got {n_bins!r}")
    edges = np.geomspace(C.min(), C.max() * (1 + 1e-12), n_bins + 1)
    which = np.digitize(C, edges) - 1
    out = {"C": [], "loss": [], "loss_se": [], "count": []}
    for b in range(n_bins):
        sel = which == b
        k = int(sel.sum())
        if k < 2:
            continue
        out["C"].append(float(np.exp(np.log(C[sel]).mean())))
        out["loss"].append(float(loss[sel].mean()))
        out["loss_se"].append(float(loss[sel].std(ddof=1) / math.sqrt(k)))
        out["count"].append(k)
    return {k: np.array(v) for k, v in out.items()}


def fit_absorption_kinetics(C, loss, loss_se) -> dict:
    """Fit ``L(C) = L_inf + A exp(-eta C)`` and ``L(C) = L_inf + A C^(-gamma)``.

    Parameters
    ----------
    C, loss, loss_se : array_like (n,)
        Compute (FLOP, > 0), mean loss and its standard error (> 0), n >= 5; e.g. from
        :func:`binned_loss_curve`.

    Returns
    -------
    dict
        ``exponential``: ``L_inf, A, eta`` (per FLOP), ``chi2``; ``power``: ``L_inf, A,
        gamma``, ``chi2``; ``n``; ``delta_aic`` = ``chi2_exp - chi2_power`` (both laws
        have 3 parameters, so this is their AIC difference; > 10 means the data give the
        exponential essentially no support against the power law, Burnham & Anderson
        2002, Sec. 2.6).

    Notes
    -----
    The seed's ``dI/dC = eta [I_inf - I]`` with constant ``eta`` integrates to
    ``I_inf - I(C) = (I_inf - I_0) exp(-eta C)``; a power law corresponds to
    ``eta(C) = gamma / C``, a rate that falls as compute is spent. Weighted least squares
    (weights ``1/loss_se^2``), ``L_inf`` constrained to ``[0, min loss]``.

    Examples
    --------
    >>> C = np.geomspace(1e3, 1e7, 30)
    >>> L = 0.1 + 5 * C ** -0.5
    >>> r = fit_absorption_kinetics(C, L, np.full(30, 1e-3))
    >>> round(r["power"]["gamma"], 3), r["delta_aic"] > 10
    (0.5, True)
    """
    from scipy.optimize import least_squares

    C = positive_array("C", C).ravel()
    L = np.asarray(loss, float).ravel()
    se = positive_array("loss_se", loss_se).ravel()
    if not (C.size == L.size == se.size) or C.size < 5:
        raise ValueError("C, loss and loss_se must have the same length >= 5")
    Lmin = float(L.min())
    x = C / C.max()  # compute in units of the largest C

    def exp_model(p):
        return p[0] + np.exp(p[1]) * np.exp(-np.exp(p[2]) * x)

    def pow_model(p):
        return p[0] + np.exp(p[1]) * x ** (-p[2])

    fits = {}
    for name, model, starts in (
        (
            "exponential",
            exp_model,
            [(0.5, e) for e in np.log([1, 3, 10, 30, 100, 300])],
        ),
        ("power", pow_model, [(0.5, g) for g in (0.1, 0.3, 0.6, 1.0, 2.0)]),
    ):
        best = None
        for frac, third in starts:
            amp = max(L.max() - frac * Lmin, 1e-6)
            p0 = np.array([frac * Lmin, math.log(amp), third])
            if name == "power":
                p0[1] = math.log(max(L[np.argmax(x)] - frac * Lmin, 1e-6))
            res = least_squares(
                lambda p, m=model: (m(p) - L) / se,
                p0,
                bounds=([0.0, -50, -50 if name == "exponential" else 0.0],
                        [Lmin, 50, 50 if name == "exponential" else 10.0]),
            )  # fmt: skip
            if best is None or res.cost < best.cost:
                best = res
        p = best.x
        fits[name] = {
            "L_inf": float(p[0]),
            "A": float(np.exp(p[1])),
            "chi2": float(2 * best.cost),
        }
        if name == "exponential":
            fits[name]["eta"] = float(np.exp(p[2]) / C.max())
        else:
            fits[name]["gamma"] = float(p[2])
            fits[name]["A"] = float(np.exp(p[1]) * C.max() ** p[2])
    return {
        **fits,
        "n": int(C.size),
        "delta_aic": fits["exponential"]["chi2"] - fits["power"]["chi2"],
    }

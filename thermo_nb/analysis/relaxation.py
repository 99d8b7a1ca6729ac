r"""Relaxation times of noisy averages towards their stationary value."""

from __future__ import annotations

import numpy as np

__all__ = ["exponential_relaxation_time"]


def exponential_relaxation_time(steps, values, stationary, *, lo=0.05, hi=0.7):
    r"""E-folding time of ``values(t) - stationary``, fitted where the gap is between
    ``lo`` and ``hi`` of its initial size.

    Parameters
    ----------
    steps : array_like, shape (n,)
        Record times (increasing).
    values : array_like, shape (..., n)
        Averages (e.g. the ensemble mean of :math:`r^4`) at those times.
    stationary : array_like, shape (...)
        Their stationary values.
    lo, hi : float
        Fraction window of :math:`|\text{gap}(t)/\text{gap}(0)|` used in the fit (the
        initial transient and the noise floor are left out).

    Returns
    -------
    ndarray, shape (...)
        :math:`\tau` from the least-squares slope of :math:`\log|\text{gap}|` against
        :math:`t` (NaN when fewer than 3 points lie in the window or the gap changes sign
        first).

    Notes
    -----
    For the fixed-LR norm, :math:`\mathbb E r^4 - r_*^4 \propto e^{-4\eta\lambda t}`
    (:func:`thermo_nb.theory.ideal_gas.norm_relaxation_time`).
    """
    t = np.asarray(steps, float)
    v = np.asarray(values, float)
    s = np.asarray(stationary, float)
    flat_v = v.reshape(-1, t.size)
    flat_s = np.broadcast_to(s, v.shape[:-1]).reshape(-1)
    out = np.full(flat_s.shape, np.nan)
    for i, (row, si) in enumerate(zip(flat_v, flat_s)):
        gap = row - si
        if gap[0] == 0:
            continue
        rel = gap / gap[0]
        # stop at the first sign change (noise floor reached)
        neg = np.nonzero(rel <= 0)[0]
        end = neg[0] if neg.size else rel.size
        sel = np.arange(end)
        sel = sel[(rel[sel] >= lo) & (rel[sel] <= hi)]
        if sel.size < 3:
            continue
        slope = np.polyfit(t[sel], np.log(rel[sel]), 1)[0]
        out[i] = -1.0 / slope if slope < 0 else np.nan
    return out.reshape(v.shape[:-1])

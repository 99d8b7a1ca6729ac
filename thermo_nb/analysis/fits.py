"""Growth laws for the distance from initialisation R(t) = ||theta(t) - theta(0)||.

Three laws, each a straight line in its own coordinates, fitted to the same data:

=============  =====================================  ==================================
law            model                                  source
=============  =====================================  ==================================
exponential    ln R = a + b t      (R ~ e^{b t})      the seed (000), sec. 5: b = <s_tot_dot>/d
logarithmic    R = a + b ln t      (R ~ ln t)         Hoffer, Hubara & Soudry, NeurIPS 2017
power          ln R = a + b ln t   (R ~ t^b)          Kunin et al., arXiv 2107.09133
=============  =====================================  ==================================

Model comparison is done on the *same response* R: a fit in ln R with Gaussian residuals
is a log-normal model for R, whose log-likelihood for R carries the Jacobian
``-sum_i ln R_i``; with that correction the three AIC/BIC values are comparable
(Burnham & Anderson 2002, sec. 2.11.3).  Confidence intervals are ordinary least-squares
intervals (Student t) when one curve is given, and replica-bootstrap percentile intervals
when R is given per replica (rows = replicas), because the residuals of one trajectory's
R(t) are strongly autocorrelated and OLS intervals would be too narrow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

__all__ = [
    "GrowthFit",
    "GROWTH_LAWS",
    "fit_growth_law",
    "fit_growth_laws",
    "best_growth_law",
]

GROWTH_LAWS = ("exponential", "logarithmic", "power")


@dataclass
class GrowthFit:
    """Result of fitting one growth law.

    Attributes
    ----------
    law : str, one of GROWTH_LAWS
    a, b : float, intercept and slope in the law's linear coordinates
    a_ci, b_ci : (low, high), confidence intervals at ``level``
    level : float, confidence level
    r2 : float, coefficient of determination in the law's coordinates
    log_likelihood : float, Gaussian log-likelihood of R (Jacobian-corrected for ln R fits)
    aic, bic : float, information criteria on R (k = 3: a, b, residual variance)
    ci_method : "ols" or "bootstrap"
    """

    law: str
    a: float
    b: float
    a_ci: tuple
    b_ci: tuple
    level: float
    r2: float
    log_likelihood: float
    aic: float
    bic: float
    n: int
    ci_method: str
    extra: dict = field(default_factory=dict)

    def predict(self, t) -> np.ndarray:
        """R predicted at times t."""
        t = np.asarray(t, dtype=float)
        if self.law == "exponential":
            return np.exp(self.a + self.b * t)
        if self.law == "logarithmic":
            return self.a + self.b * np.log(t)
        return np.exp(self.a + self.b * np.log(t))


def _coords(law: str, t: np.ndarray, R: np.ndarray):
    if law == "exponential":
        return t, np.log(R)
    if law == "logarithmic":
        return np.log(t), R
    if law == "power":
        return np.log(t), np.log(R)
    raise ValueError(f"law must be one of {GROWTH_LAWS}, got {law!r}")


def _ols(u: np.ndarray, y: np.ndarray):
    X = np.column_stack([np.ones_like(u), u])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    return coef, resid, X


def _check(t, R):
    t = np.asarray(t, dtype=float)
    R = np.asarray(R, dtype=float)
    if t.ndim != 1:
        raise ValueError(f"t must be 1-D, got shape {t.shape}")
    if R.ndim not in (1, 2) or R.shape[-1] != t.size:
        raise ValueError(
            f"R must have shape (n_t,) or (n_replicas, n_t) with n_t = {t.size}, "
            f"got {R.shape}"
        )
    if t.size < 4:
        raise ValueError(
            f"need at least 4 time points to fit a 2-parameter law, got {t.size}"
        )
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(R))):
        raise ValueError("t and R must be finite (drop diverged replicas first)")
    if np.any(t <= 0):
        raise ValueError("t must be > 0 (ln t enters the logarithmic and power laws)")
    if np.any(R <= 0):
        raise ValueError("R must be > 0 (ln R enters the exponential and power laws)")
    return t, R


def fit_growth_law(
    t,
    R,
    law: str,
    *,
    level: float = 0.95,
    n_boot: int = 500,
    generator: np.random.Generator | None = None,
) -> GrowthFit:
    r"""Fit one growth law of R(t) by least squares in the law's linear coordinates.

    Parameters
    ----------
    t : (n_t,) array of times (steps) > 0
    R : (n_t,) or (n_replicas, n_t) array of distances > 0
        With replicas the law is fitted to the replica mean curve and the CIs come from
        ``n_boot`` bootstrap resamples of the replicas.
    law : "exponential" (ln R = a + b t), "logarithmic" (R = a + b ln t) or
        "power" (ln R = a + b ln t)
    level : confidence level in (0, 1)
    n_boot : bootstrap resamples (replica input only)
    generator : numpy Generator for the bootstrap (default: seeded with 0)

    Returns
    -------
    GrowthFit

    Notes
    -----
    With residual variance :math:`\hat\sigma^2 = \mathrm{RSS}/n` in the coordinates
    (u, y), the Gaussian log-likelihood is
    :math:`\ell = -\tfrac n2[\ln(2\pi\hat\sigma^2) + 1]`; for y = ln R the likelihood of R
    adds :math:`-\sum_i \ln R_i`. AIC = 2k - 2l, BIC = k ln n - 2l with k = 3.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(1, 101.0)
    >>> fit = fit_growth_law(t, 2 * t ** 0.5, "power")
    >>> round(fit.b, 6)
    0.5
    """
    t, R = _check(t, R)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if law not in GROWTH_LAWS:
        raise ValueError(f"law must be one of {GROWTH_LAWS}, got {law!r}")
    curve = R if R.ndim == 1 else R.mean(axis=0)
    u, y = _coords(law, t, curve)
    coef, resid, X = _ols(u, y)
    n = t.size
    rss = float(resid @ resid)
    sigma2 = max(rss / n, 1e-300)
    ll = -0.5 * n * (np.log(2 * np.pi * sigma2) + 1.0)
    if law in ("exponential", "power"):
        ll -= float(np.log(curve).sum())
    k = 3
    tss = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - rss / tss if tss > 0 else 1.0
    alpha = 1 - level
    if R.ndim == 1:
        s2 = rss / max(n - 2, 1)
        cov = s2 * np.linalg.inv(X.T @ X)
        q = stats.t.ppf(1 - alpha / 2, df=max(n - 2, 1))
        se = np.sqrt(np.diag(cov))
        a_ci = (coef[0] - q * se[0], coef[0] + q * se[0])
        b_ci = (coef[1] - q * se[1], coef[1] + q * se[1])
        method = "ols"
    else:
        if R.shape[0] < 2:
            raise ValueError("need at least 2 replicas for bootstrap intervals")
        gen = generator if generator is not None else np.random.default_rng(0)
        boots = np.empty((n_boot, 2))
        for i in range(n_boot):
            idx = gen.integers(0, R.shape[0], R.shape[0])
            ub, yb = _coords(law, t, R[idx].mean(axis=0))
            boots[i] = _ols(ub, yb)[0]
        lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2], axis=0)
        a_ci, b_ci = (lo[0], hi[0]), (lo[1], hi[1])
        method = "bootstrap"
    return GrowthFit(
        law=law,
        a=float(coef[0]),
        b=float(coef[1]),
        a_ci=(float(a_ci[0]), float(a_ci[1])),
        b_ci=(float(b_ci[0]), float(b_ci[1])),
        level=level,
        r2=float(r2),
        log_likelihood=float(ll),
        aic=float(2 * k - 2 * ll),
        bic=float(k * np.log(n) - 2 * ll),
        n=n,
        ci_method=method,
    )


def fit_growth_laws(
    t,
    R,
    *,
    laws=GROWTH_LAWS,
    level: float = 0.95,
    n_boot: int = 500,
    generator: np.random.Generator | None = None,
) -> dict:
    """Fit every law in ``laws`` to the same data; returns ``{law: GrowthFit}``.

    The AIC weights ``w_law = exp(-dAIC/2) / sum exp(-dAIC/2)`` are stored in each
    fit's ``extra["aic_weight"]``, and ``extra["delta_aic"]`` is the gap to the best law.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(1, 200.0)
    >>> fits = fit_growth_laws(t, 1 + 0.3 * np.log(t))
    >>> best_growth_law(fits)
    'logarithmic'
    """
    fits = {
        law: fit_growth_law(t, R, law, level=level, n_boot=n_boot, generator=generator)
        for law in laws
    }
    aic = np.array([f.aic for f in fits.values()])
    d = aic - aic.min()
    w = np.exp(-d / 2)
    w /= w.sum()
    for f, di, wi in zip(fits.values(), d, w):
        f.extra["delta_aic"] = float(di)
        f.extra["aic_weight"] = float(wi)
    return fits


def best_growth_law(fits: dict, criterion: str = "aic") -> str:
    """Name of the law with the smallest ``criterion`` ("aic" or "bic")."""
    if criterion not in ("aic", "bic"):
        raise ValueError(f"criterion must be 'aic' or 'bic', got {criterion!r}")
    return min(fits, key=lambda k: getattr(fits[k], criterion))
